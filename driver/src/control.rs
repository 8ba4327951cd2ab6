//! The control device's request handling, minus the IRP plumbing: one
//! consumer at a time, HELLO before anything else, CONFIGURE validated by
//! `ringside-wire`, STATS. The kernel's `device.rs` passes the I/O manager's
//! system buffer as slices and completes the IRP with the returned length or
//! `ControlError::status()`.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use ringside_wire::ioctl::{
    self, Config, ControlError, HelloResponse, READ_MIN_BUFFER, StatsResponse, check_output,
};
use ringside_wire::kind::ALL_EVENTS_MASK;
use ringside_wire::{ABI_VERSION, DriverStats, EventKind, MAX_RECORD_SIZE};
use zerocopy::IntoBytes;

use crate::DRIVER_VERSION;
use crate::record::Caps;

/// The configuration callbacks read, one atomic per field: a callback may
/// see a mix of an old and a new CONFIGURE, which is harmless (each field is
/// valid on its own).
#[derive(Debug)]
pub struct SharedConfig {
    event_mask: AtomicU32,
    /// The three caps, packed by [`pack_caps`]: one load per event.
    caps: AtomicU64,
    batch_bytes: AtomicU32,
    /// log2 of the ring's lane count ([`SharedConfig::set_lanes`]).
    lane_shift: AtomicU32,
    /// `batch_bytes` split evenly over the lanes: precomputed because it is
    /// compared after every event.
    lane_batch_bytes: AtomicU32,
    max_latency_ms: AtomicU32,
}

impl SharedConfig {
    /// [`Config::DEFAULT`], usable in a `static`.
    pub const fn new() -> Self {
        SharedConfig {
            event_mask: AtomicU32::new(Config::DEFAULT.event_mask),
            caps: AtomicU64::new(pack_caps(&Config::DEFAULT)),
            batch_bytes: AtomicU32::new(Config::DEFAULT.batch_bytes),
            lane_shift: AtomicU32::new(0),
            // One lane until `set_lanes`.
            lane_batch_bytes: AtomicU32::new(Config::DEFAULT.batch_bytes),
            max_latency_ms: AtomicU32::new(Config::DEFAULT.max_latency_ms),
        }
    }

    pub fn set(&self, config: &Config) {
        self.event_mask.store(config.event_mask, Ordering::Relaxed);
        self.caps.store(pack_caps(config), Ordering::Relaxed);
        self.batch_bytes
            .store(config.batch_bytes, Ordering::Relaxed);
        self.split_batch();
        self.max_latency_ms
            .store(config.max_latency_ms, Ordering::Relaxed);
    }

    /// Splits the batch threshold over `lanes` (a power of two). Called once
    /// the ring exists, before a consumer can CONFIGURE.
    pub fn set_lanes(&self, lanes: usize) {
        self.lane_shift
            .store(lanes.trailing_zeros(), Ordering::Relaxed);
        self.split_batch();
    }

    fn split_batch(&self) {
        let share =
            self.batch_bytes.load(Ordering::Relaxed) >> self.lane_shift.load(Ordering::Relaxed);
        self.lane_batch_bytes.store(share, Ordering::Relaxed);
    }

    /// Back to the defaults (a new consumer starts from them).
    pub fn reset(&self) {
        self.set(&Config::DEFAULT);
    }

    /// Whether callbacks should observe `kind` at all.
    pub fn enabled(&self, kind: EventKind) -> bool {
        self.event_mask.load(Ordering::Relaxed) & kind.mask_bit() != 0
    }

    pub fn caps(&self) -> Caps {
        let packed = self.caps.load(Ordering::Relaxed);
        Caps {
            name: packed as u16,
            command_line: (packed >> 16) as u16,
            registry_data: (packed >> 32) as u16,
        }
    }

    /// One lane's share of `batch_bytes`: the backlog at which a producer
    /// wakes the READ.
    pub fn lane_batch_bytes(&self) -> usize {
        self.lane_batch_bytes.load(Ordering::Relaxed) as usize
    }

    pub fn max_latency_ms(&self) -> u32 {
        self.max_latency_ms.load(Ordering::Relaxed)
    }
}

/// The name cap in bits 0..16, the command-line cap in 16..32, the
/// registry data cap in 32..48. `Config`'s caps are even and in range
/// (CONFIGURE validated them), and `Caps` is what the encoder truncates to.
const fn pack_caps(config: &Config) -> u64 {
    config.max_name_bytes as u64
        | (config.max_command_line_bytes as u64) << 16
        | (config.max_registry_data_bytes as u64) << 32
}

impl Default for SharedConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A second open while a consumer is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

/// Connection state of the control device.
#[derive(Debug, Default)]
pub struct Control {
    consumer: AtomicBool,
    /// The consumer's process id while one is connected, else 0.
    consumer_pid: AtomicU32,
    negotiated: AtomicBool,
    /// The kinds HELLO reports: every kind, less any whose kernel
    /// registration failed at load (the driver then runs without it).
    supported: AtomicU32,
    pub config: SharedConfig,
}

impl Control {
    pub const fn new() -> Self {
        Control {
            consumer: AtomicBool::new(false),
            consumer_pid: AtomicU32::new(0),
            negotiated: AtomicBool::new(false),
            supported: AtomicU32::new(ALL_EVENTS_MASK),
            config: SharedConfig::new(),
        }
    }

    /// IRP_MJ_CREATE by process `pid`: admits one consumer; the device
    /// completes a second open with `STATUS_SHARING_VIOLATION`.
    pub fn open(&self, pid: u32) -> Result<(), Busy> {
        // Acquire pairs with the Release in `close`: the new consumer sees
        // the reset state.
        self.consumer
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .map_err(|_| Busy)?;
        // Relaxed: read by callbacks only to leave the consumer's own
        // handle operations out; a callback racing the open may still
        // report one, which is harmless.
        self.consumer_pid.store(pid, Ordering::Relaxed);
        Ok(())
    }

    /// IRP_MJ_CLOSE of the consumer's handle.
    pub fn close(&self) {
        self.negotiated.store(false, Ordering::Relaxed);
        self.config.reset();
        self.consumer_pid.store(0, Ordering::Relaxed);
        self.consumer.store(false, Ordering::Release);
    }

    /// The connected consumer's process id, 0 when none is connected.
    pub fn consumer_pid(&self) -> u32 {
        self.consumer_pid.load(Ordering::Relaxed)
    }

    /// Leaves `kind` out of HELLO's `supported_events`: its kernel
    /// registration failed and the driver runs without it (DriverEntry,
    /// before any consumer can say HELLO).
    pub fn withdraw(&self, kind: EventKind) {
        self.supported
            .fetch_and(!kind.mask_bit(), Ordering::Relaxed);
    }

    pub fn connected(&self) -> bool {
        self.consumer.load(Ordering::Relaxed)
    }

    fn require_hello(&self) -> Result<(), ControlError> {
        if self.negotiated.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(ControlError::NotNegotiated)
        }
    }

    /// IOCTL_HELLO: returns the bytes written to `output`.
    pub fn hello(
        &self,
        input: &[u8],
        output: &mut [u8],
        ring_capacity: usize,
    ) -> Result<usize, ControlError> {
        ioctl::parse_hello(input)?;
        check_output::<HelloResponse>(output.len())?;
        let response = HelloResponse {
            size: size_of::<HelloResponse>() as u32,
            abi_version: ABI_VERSION,
            driver_version: DRIVER_VERSION,
            ring_capacity: u32::try_from(ring_capacity).unwrap_or(u32::MAX),
            max_record_size: MAX_RECORD_SIZE as u32,
            supported_events: self.supported.load(Ordering::Relaxed),
            read_min_buffer: READ_MIN_BUFFER,
            _pad: 0,
        };
        let written = write_response(&response, output)?;
        // Release pairs with the Acquire in `require_hello`.
        self.negotiated.store(true, Ordering::Release);
        Ok(written)
    }

    /// IOCTL_CONFIGURE.
    pub fn configure(&self, input: &[u8]) -> Result<usize, ControlError> {
        self.require_hello()?;
        let config = ioctl::parse_configure(input)?;
        self.config.set(&config);
        Ok(0)
    }

    /// IOCTL_STATS.
    pub fn stats(&self, output: &mut [u8], mut stats: DriverStats) -> Result<usize, ControlError> {
        self.require_hello()?;
        check_output::<StatsResponse>(output.len())?;
        stats.consumer_connected = u32::from(self.connected());
        let response = StatsResponse {
            size: size_of::<StatsResponse>() as u32,
            abi_version: ABI_VERSION,
            stats,
        };
        write_response(&response, output)
    }

    /// IOCTL_READ's checks before the IRP is drained or queued.
    pub fn read(&self, output_len: usize) -> Result<(), ControlError> {
        self.require_hello()?;
        ioctl::check_read_buffer(output_len)
    }
}

fn write_response<T: IntoBytes + zerocopy::Immutable>(
    response: &T,
    output: &mut [u8],
) -> Result<usize, ControlError> {
    let needed = size_of::<T>();
    let got = output.len();
    response
        .write_to_prefix(output)
        .map_err(|_| ControlError::OutputTooSmall { needed, got })?;
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringside_wire::ioctl::{ConfigureRequest, HelloRequest, status};
    use zerocopy::FromBytes;

    fn hello_request(abi_version: u32) -> HelloRequest {
        HelloRequest {
            size: 16,
            abi_version,
            agent_version: 1,
            _pad: 0,
        }
    }

    /// A control with its consumer connected and HELLO done.
    fn negotiated() -> Control {
        let control = Control::new();
        control.open(1000).expect("open");
        control
            .hello(hello_request(ABI_VERSION).as_bytes(), &mut [0u8; 32], 0)
            .expect("hello");
        control
    }

    #[test]
    fn one_consumer_at_a_time() {
        let control = Control::new();
        assert_eq!(control.open(1000), Ok(()));
        assert_eq!(control.consumer_pid(), 1000);
        // A refused second open does not replace the consumer's pid.
        assert_eq!(control.open(2000), Err(Busy));
        assert_eq!(control.consumer_pid(), 1000);
        control.close();
        assert_eq!(control.consumer_pid(), 0);
        assert_eq!(control.open(3000), Ok(()));
        assert_eq!(control.consumer_pid(), 3000);
    }

    #[test]
    fn hello_reports_what_registered() {
        let control = negotiated();
        let mut out = [0u8; 32];
        control
            .hello(hello_request(ABI_VERSION).as_bytes(), &mut out, 0)
            .expect("hello");
        let all = HelloResponse::read_from_bytes(&out).expect("hello");
        assert_eq!(all.supported_events, ALL_EVENTS_MASK);
        control.withdraw(EventKind::ProcessAccess);
        control
            .hello(hello_request(ABI_VERSION).as_bytes(), &mut out, 0)
            .expect("hello");
        let less = HelloResponse::read_from_bytes(&out).expect("hello");
        assert_eq!(
            less.supported_events,
            ALL_EVENTS_MASK & !EventKind::ProcessAccess.mask_bit()
        );
    }

    #[test]
    fn hello_comes_first_and_checks_the_abi() {
        let control = Control::new();
        control.open(1000).expect("open");
        let mut out = [0u8; 64];
        let err = control
            .configure(ConfigureRequest::default().as_bytes())
            .unwrap_err();
        assert_eq!(err.status(), status::INVALID_DEVICE_STATE);
        assert_eq!(
            control.read(1 << 20).unwrap_err(),
            ControlError::NotNegotiated
        );
        let err = control
            .hello(hello_request(ABI_VERSION + 1).as_bytes(), &mut out, 4096)
            .unwrap_err();
        assert_eq!(err.status(), status::REVISION_MISMATCH);
        let n = control
            .hello(hello_request(ABI_VERSION).as_bytes(), &mut out, 1 << 20)
            .expect("hello");
        assert_eq!(n, 32);
        let response = HelloResponse::read_from_bytes(&out[..n]).expect("response");
        assert_eq!(response.ring_capacity, 1 << 20);
        assert_eq!(response.abi_version, ABI_VERSION);
        // Short output buffer.
        let err = control
            .hello(hello_request(ABI_VERSION).as_bytes(), &mut out[..31], 0)
            .unwrap_err();
        assert_eq!(err.status(), status::BUFFER_TOO_SMALL);
    }

    #[test]
    fn configure_is_validated_and_applied_then_reset_on_close() {
        let control = negotiated();
        let mut request = ConfigureRequest {
            event_mask: EventKind::ProcessCreate.mask_bit(),
            max_name_bytes: 128,
            ..ConfigureRequest::default()
        };
        assert_eq!(control.configure(request.as_bytes()), Ok(0));
        assert!(control.config.enabled(EventKind::ProcessCreate));
        assert!(!control.config.enabled(EventKind::FileWrite));
        assert_eq!(control.config.caps().name, 128);
        assert_eq!(control.config.caps().registry_data, 1024);
        request.max_registry_data_bytes = 4096;
        assert_eq!(control.configure(request.as_bytes()), Ok(0));
        assert_eq!(
            control.config.caps(),
            Caps {
                name: 128,
                command_line: 8192,
                registry_data: 4096
            }
        );
        request.max_latency_ms = 51;
        let err = control.configure(request.as_bytes()).unwrap_err();
        assert_eq!(err.status(), status::INVALID_PARAMETER);
        let err = control.configure(&request.as_bytes()[..31]).unwrap_err();
        assert_eq!(err.status(), status::INFO_LENGTH_MISMATCH);
        control.close();
        assert!(control.config.enabled(EventKind::ProcessExit));
        assert!(
            !control.config.enabled(EventKind::FileWrite),
            "FileWrite only when asked for"
        );
        assert_eq!(control.config.caps().name, 1024);
        assert_eq!(control.config.caps().registry_data, 1024);
    }

    #[test]
    fn each_lane_s_batch_share_follows_configure_and_close() {
        let control = negotiated();
        let default = control.config.lane_batch_bytes();
        assert_eq!(default, 16 * 1024, "one lane until the ring exists");
        control.config.set_lanes(4);
        assert_eq!(control.config.lane_batch_bytes(), default / 4);
        let request = ConfigureRequest {
            batch_bytes: 8 * 1024,
            ..ConfigureRequest::default()
        };
        assert_eq!(control.configure(request.as_bytes()), Ok(0));
        assert_eq!(control.config.lane_batch_bytes(), 2 * 1024);
        control.close();
        assert_eq!(
            control.config.lane_batch_bytes(),
            default / 4,
            "reset, still split"
        );
    }

    #[test]
    fn stats_and_read_checks() {
        let control = negotiated();
        const SIZE: usize = core::mem::size_of::<StatsResponse>();
        let mut out = [0u8; SIZE];
        let stats = DriverStats {
            next_seq: 9,
            ..DriverStats::default()
        };
        assert_eq!(control.stats(&mut out, stats), Ok(SIZE));
        let response = StatsResponse::read_from_bytes(&out).expect("stats");
        assert_eq!(response.stats.next_seq, 9);
        assert_eq!(response.stats.consumer_connected, 1);
        assert_eq!(
            control.stats(&mut out[..100], stats).unwrap_err().status(),
            status::BUFFER_TOO_SMALL
        );
        assert!(control.read(READ_MIN_BUFFER as usize).is_ok());
        assert_eq!(
            control.read(4096).unwrap_err().status(),
            status::BUFFER_TOO_SMALL
        );
    }
}
