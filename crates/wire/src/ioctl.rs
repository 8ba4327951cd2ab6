//! The control device's IOCTL contract (`\Device\Ringside`, `\\.\Ringside`).
//!
//! Codes, the fixed request/response structs (each with explicit `size` and
//! `abi_version` fields), and the validation of every input field. The driver
//! runs these validators on the I/O manager's system buffer and converts a
//! [`ControlError`] to its NTSTATUS at one point; the agent and the fuzz
//! targets run the very same code.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::ABI_VERSION;
use crate::kind::{ALL_EVENTS_MASK, DEFAULT_EVENTS_MASK};
use crate::record::{DriverStats, MAX_RECORD_SIZE};

/// NT name of the control device.
pub const DEVICE_NAME: &str = r"\Device\Ringside";
/// Win32 path user mode opens (`\DosDevices\Ringside` symbolic link).
pub const DOS_DEVICE_PATH: &str = r"\\.\Ringside";
/// Name of the symbolic link the driver creates.
pub const SYMBOLIC_LINK_NAME: &str = r"\DosDevices\Ringside";

/// Vendor device type (values below 0x8000 are Microsoft's).
pub const DEVICE_TYPE: u32 = 0x8352;

/// `METHOD_BUFFERED`: the I/O manager copies input and output.
pub const METHOD_BUFFERED: u32 = 0;
/// `METHOD_OUT_DIRECT`: the output buffer is locked and described by an MDL.
pub const METHOD_OUT_DIRECT: u32 = 2;
/// `FILE_ANY_ACCESS`.
pub const FILE_ANY_ACCESS: u32 = 0;
/// `FILE_READ_ACCESS`: the handle needs `FILE_READ_DATA`.
pub const FILE_READ_ACCESS: u32 = 1;
/// `FILE_WRITE_ACCESS`: the handle needs `FILE_WRITE_DATA`.
pub const FILE_WRITE_ACCESS: u32 = 2;

/// `CTL_CODE` from `devioctl.h`.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// ABI negotiation; must be the first request on a handle.
pub const IOCTL_HELLO: u32 = ctl_code(DEVICE_TYPE, 0x800, METHOD_BUFFERED, FILE_ANY_ACCESS);
/// Sets the event mask, string caps and READ batching.
pub const IOCTL_CONFIGURE: u32 = ctl_code(DEVICE_TYPE, 0x801, METHOD_BUFFERED, FILE_WRITE_ACCESS);
/// Fills the output buffer with whole records; pends while the ring is empty.
pub const IOCTL_READ: u32 = ctl_code(DEVICE_TYPE, 0x802, METHOD_OUT_DIRECT, FILE_READ_ACCESS);
/// Returns [`StatsResponse`].
pub const IOCTL_STATS: u32 = ctl_code(DEVICE_TYPE, 0x803, METHOD_BUFFERED, FILE_READ_ACCESS);

/// Smallest READ output buffer: always holds the largest record.
pub const READ_MIN_BUFFER: u32 = 64 * 1024;

/// Bounds of [`ConfigureRequest::max_name_bytes`] (even, in bytes).
pub const NAME_CAP_RANGE: (u32, u32) = (64, 16 * 1024);
/// Bounds of [`ConfigureRequest::max_command_line_bytes`] (even, in bytes).
pub const COMMAND_LINE_CAP_RANGE: (u32, u32) = (64, 32 * 1024);
/// Bounds of [`ConfigureRequest::max_registry_data_bytes`] (even, in
/// bytes), when not 0.
pub const REGISTRY_DATA_CAP_RANGE: (u32, u32) = (64, 16 * 1024);
/// Bounds of [`ConfigureRequest::batch_bytes`].
pub const BATCH_BYTES_RANGE: (u32, u32) = (1, READ_MIN_BUFFER);
/// Bounds of [`ConfigureRequest::max_latency_ms`]: a pending READ completes
/// no later than this after the first record arrives, or one clock tick
/// (15.625 ms by default: kernel timers expire only on ticks) if that is
/// longer.
pub const LATENCY_MS_RANGE: (u32, u32) = (1, 50);

// The largest record any valid configuration can produce fits the ring's and
// the decoder's record limit: a process create with both string caps at their
// maxima and two maximal SIDs (68 bytes each).
const _: () = assert!(
    32 + 48 + NAME_CAP_RANGE.1 as usize + COMMAND_LINE_CAP_RANGE.1 as usize + 2 * 68 + 8
        <= MAX_RECORD_SIZE
);
// A rename carries two names.
const _: () = assert!(32 + 24 + 2 * NAME_CAP_RANGE.1 as usize + 8 <= MAX_RECORD_SIZE);

/// Input of [`IOCTL_HELLO`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct HelloRequest {
    /// `size_of::<HelloRequest>()`.
    pub size: u32,
    /// [`ABI_VERSION`] of the caller.
    pub abi_version: u32,
    /// Caller's own version (for the driver's log), `major << 16 | minor`.
    pub agent_version: u32,
    pub _pad: u32,
}

/// Output of [`IOCTL_HELLO`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct HelloResponse {
    pub size: u32,
    pub abi_version: u32,
    /// Driver version, `major << 16 | minor`.
    pub driver_version: u32,
    /// Ring data capacity in bytes.
    pub ring_capacity: u32,
    /// [`MAX_RECORD_SIZE`].
    pub max_record_size: u32,
    /// Event kinds this driver can produce (mask of `EventKind::mask_bit`).
    pub supported_events: u32,
    /// [`READ_MIN_BUFFER`].
    pub read_min_buffer: u32,
    pub _pad: u32,
}

/// Input of [`IOCTL_CONFIGURE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ConfigureRequest {
    pub size: u32,
    pub abi_version: u32,
    /// Event kinds to produce; others are not observed at all.
    pub event_mask: u32,
    /// Cap for file and image names, in bytes (even).
    pub max_name_bytes: u32,
    /// Cap for process command lines, in bytes (even).
    pub max_command_line_bytes: u32,
    /// A pending READ completes once this many bytes are ready (checked
    /// per CPU: once one CPU's lane of the ring holds its even share).
    pub batch_bytes: u32,
    /// ... or this long after it found the first record, whichever is first.
    pub max_latency_ms: u32,
    /// Cap for a registry value's data (the raw bytes of a value set), in
    /// bytes (even); 0 selects [`Config::DEFAULT`]'s. The field was
    /// reserved (must be zero) until names and data had caps of their own,
    /// so an agent that sends 0 gets what it got before: 1024 bytes.
    pub max_registry_data_bytes: u32,
}

impl Default for ConfigureRequest {
    /// What the driver uses until the agent configures it.
    fn default() -> Self {
        ConfigureRequest {
            size: core::mem::size_of::<ConfigureRequest>() as u32,
            abi_version: ABI_VERSION,
            event_mask: Config::DEFAULT.event_mask,
            max_name_bytes: Config::DEFAULT.max_name_bytes as u32,
            max_command_line_bytes: Config::DEFAULT.max_command_line_bytes as u32,
            batch_bytes: Config::DEFAULT.batch_bytes,
            max_latency_ms: Config::DEFAULT.max_latency_ms,
            max_registry_data_bytes: Config::DEFAULT.max_registry_data_bytes as u32,
        }
    }
}

/// Output of [`IOCTL_STATS`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct StatsResponse {
    pub size: u32,
    pub abi_version: u32,
    pub stats: DriverStats,
}

const _: () = assert!(core::mem::size_of::<HelloRequest>() == 16);
const _: () = assert!(core::mem::size_of::<HelloResponse>() == 32);
const _: () = assert!(core::mem::size_of::<ConfigureRequest>() == 32);
const _: () = assert!(core::mem::size_of::<StatsResponse>() == 432);
const _: () = assert!(core::mem::offset_of!(ConfigureRequest, event_mask) == 8);
const _: () = assert!(core::mem::offset_of!(ConfigureRequest, max_latency_ms) == 24);
const _: () = assert!(core::mem::offset_of!(StatsResponse, stats) == 8);

/// NTSTATUS values the control device completes requests with.
pub mod status {
    pub const SUCCESS: i32 = 0;
    pub const PENDING: i32 = 0x0000_0103;
    pub const CANCELLED: i32 = 0xC000_0120_u32 as i32;
    pub const INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32;
    pub const INVALID_DEVICE_REQUEST: i32 = 0xC000_0010_u32 as i32;
    pub const INFO_LENGTH_MISMATCH: i32 = 0xC000_0004_u32 as i32;
    pub const BUFFER_TOO_SMALL: i32 = 0xC000_0023_u32 as i32;
    pub const REVISION_MISMATCH: i32 = 0xC000_0059_u32 as i32;
    pub const INVALID_DEVICE_STATE: i32 = 0xC000_0184_u32 as i32;
    pub const ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32;
    pub const SHARING_VIOLATION: i32 = 0xC000_0043_u32 as i32;
    pub const DEVICE_BUSY: i32 = 0x8000_0011_u32 as i32;
    pub const DELETE_PENDING: i32 = 0xC000_0056_u32 as i32;
}

/// A CONFIGURE field that failed validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigField {
    EventMask,
    MaxNameBytes,
    MaxCommandLineBytes,
    BatchBytes,
    MaxLatencyMs,
    MaxRegistryDataBytes,
}

/// Why a control request was refused. [`ControlError::status`] is the
/// NTSTATUS the driver completes it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// Not one of the `IOCTL_*` codes.
    UnknownCode { code: u32 },
    /// The input buffer is not exactly the request struct's size.
    InputLength { expected: usize, got: usize },
    /// The output buffer is too small for the response.
    OutputTooSmall { needed: usize, got: usize },
    /// The struct's own `size` field is wrong.
    StructSize { expected: u32, got: u32 },
    /// The caller speaks another ABI version.
    AbiMismatch { driver: u32, caller: u32 },
    /// A CONFIGURE field is out of its documented range.
    InvalidField { field: ConfigField, value: u32 },
    /// HELLO has not been completed on this handle.
    NotNegotiated,
}

impl ControlError {
    /// The NTSTATUS for this refusal.
    pub const fn status(&self) -> i32 {
        match self {
            ControlError::UnknownCode { .. } => status::INVALID_DEVICE_REQUEST,
            ControlError::InputLength { .. } | ControlError::StructSize { .. } => {
                status::INFO_LENGTH_MISMATCH
            }
            ControlError::OutputTooSmall { .. } => status::BUFFER_TOO_SMALL,
            ControlError::AbiMismatch { .. } => status::REVISION_MISMATCH,
            ControlError::InvalidField { .. } => status::INVALID_PARAMETER,
            ControlError::NotNegotiated => status::INVALID_DEVICE_STATE,
        }
    }
}

/// Reads a request struct that must fill `input` exactly and whose first two
/// fields are `size` and `abi_version`.
fn fixed_request<T: FromBytes + KnownLayout + Immutable + Copy>(
    input: &[u8],
    size_and_version: impl Fn(&T) -> (u32, u32),
) -> Result<T, ControlError> {
    let expected = core::mem::size_of::<T>();
    let request = T::read_from_bytes(input).map_err(|_| ControlError::InputLength {
        expected,
        got: input.len(),
    })?;
    let (size, abi_version) = size_and_version(&request);
    if size as usize != expected {
        return Err(ControlError::StructSize {
            expected: expected as u32,
            got: size,
        });
    }
    if abi_version != ABI_VERSION {
        return Err(ControlError::AbiMismatch {
            driver: ABI_VERSION,
            caller: abi_version,
        });
    }
    Ok(request)
}

/// Validates a HELLO input buffer.
pub fn parse_hello(input: &[u8]) -> Result<HelloRequest, ControlError> {
    fixed_request(input, |r: &HelloRequest| (r.size, r.abi_version))
}

/// A CONFIGURE request whose every field was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub event_mask: u32,
    pub max_name_bytes: u16,
    pub max_command_line_bytes: u16,
    pub batch_bytes: u32,
    pub max_latency_ms: u32,
    pub max_registry_data_bytes: u16,
}

impl Config {
    /// What the driver uses until the agent configures it; the default
    /// request carries it (a unit test checks it validates to itself).
    pub const DEFAULT: Config = Config {
        event_mask: DEFAULT_EVENTS_MASK,
        max_name_bytes: 1024,
        max_command_line_bytes: 8192,
        batch_bytes: 16 * 1024,
        max_latency_ms: 20,
        max_registry_data_bytes: 1024,
    };
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

fn in_range(
    field: ConfigField,
    value: u32,
    (low, high): (u32, u32),
    even: bool,
) -> Result<u32, ControlError> {
    if value < low || value > high || (even && value % 2 != 0) {
        return Err(ControlError::InvalidField { field, value });
    }
    Ok(value)
}

/// Checks every field of a CONFIGURE request against its documented range.
pub fn validate_configure(request: &ConfigureRequest) -> Result<Config, ControlError> {
    if request.event_mask & !ALL_EVENTS_MASK != 0 {
        return Err(ControlError::InvalidField {
            field: ConfigField::EventMask,
            value: request.event_mask,
        });
    }
    let name = in_range(
        ConfigField::MaxNameBytes,
        request.max_name_bytes,
        NAME_CAP_RANGE,
        true,
    )?;
    let command_line = in_range(
        ConfigField::MaxCommandLineBytes,
        request.max_command_line_bytes,
        COMMAND_LINE_CAP_RANGE,
        true,
    )?;
    let batch_bytes = in_range(
        ConfigField::BatchBytes,
        request.batch_bytes,
        BATCH_BYTES_RANGE,
        false,
    )?;
    let max_latency_ms = in_range(
        ConfigField::MaxLatencyMs,
        request.max_latency_ms,
        LATENCY_MS_RANGE,
        false,
    )?;
    let registry_data = match request.max_registry_data_bytes {
        0 => u32::from(Config::DEFAULT.max_registry_data_bytes),
        cap => in_range(
            ConfigField::MaxRegistryDataBytes,
            cap,
            REGISTRY_DATA_CAP_RANGE,
            true,
        )?,
    };
    Ok(Config {
        event_mask: request.event_mask,
        // The ranges end at or below 32 KiB, so these conversions are exact.
        max_name_bytes: u16::try_from(name).unwrap_or(0xFFFE),
        max_command_line_bytes: u16::try_from(command_line).unwrap_or(0xFFFE),
        batch_bytes,
        max_latency_ms,
        max_registry_data_bytes: u16::try_from(registry_data).unwrap_or(0xFFFE),
    })
}

/// Validates a CONFIGURE input buffer: layout first, then every field.
pub fn parse_configure(input: &[u8]) -> Result<Config, ControlError> {
    let request = fixed_request(input, |r: &ConfigureRequest| (r.size, r.abi_version))?;
    validate_configure(&request)
}

/// Checks a READ output buffer length.
pub fn check_read_buffer(output_len: usize) -> Result<(), ControlError> {
    if output_len < READ_MIN_BUFFER as usize {
        return Err(ControlError::OutputTooSmall {
            needed: READ_MIN_BUFFER as usize,
            got: output_len,
        });
    }
    Ok(())
}

/// Checks an output buffer for a fixed response struct `T`.
pub fn check_output<T>(output_len: usize) -> Result<(), ControlError> {
    let needed = core::mem::size_of::<T>();
    if output_len < needed {
        return Err(ControlError::OutputTooSmall {
            needed,
            got: output_len,
        });
    }
    Ok(())
}

/// Which request a code names, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Hello,
    Configure,
    Read,
    Stats,
}

impl TryFrom<u32> for Request {
    type Error = ControlError;
    fn try_from(code: u32) -> Result<Self, ControlError> {
        match code {
            IOCTL_HELLO => Ok(Request::Hello),
            IOCTL_CONFIGURE => Ok(Request::Configure),
            IOCTL_READ => Ok(Request::Read),
            IOCTL_STATS => Ok(Request::Stats),
            code => Err(ControlError::UnknownCode { code }),
        }
    }
}
