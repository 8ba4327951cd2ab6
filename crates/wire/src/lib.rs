//! The contract between `ringside.sys` and the user-mode agent.
//!
//! Everything that crosses the kernel/user boundary is defined here, once: the
//! record layouts the driver writes into its ring ([`record`]), the writer it
//! uses to encode them without allocating ([`encode`]), the decoder the agent
//! runs over every byte it receives ([`decode`]), and the control-device IOCTLs
//! with their validation ([`ioctl`]). Both sides depend on this crate, so they
//! cannot disagree about a size or an offset.
//!
//! Wire structs follow one discipline: `#[repr(C)]`, fixed-width integers, no
//! `bool` and no Rust enums (kinds are `u16` converted with `TryFrom`),
//! explicit `_pad` fields, and a `const` assertion of every size and offset.
//! The decoder treats its input as hostile: every malformed byte sequence is a
//! typed [`decode::DecodeError`], never a panic. Views copy fixed parts out by
//! value, so a buffer of any alignment decodes.

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod decode;
pub mod encode;
pub mod ioctl;
pub mod kind;
pub mod record;
pub mod replay;

pub use decode::{DecodeError, Event, RawField, Record, Records, decode_record};
pub use encode::{EncodeError, Field, Origin, encode, encode_exact, encoded_len};
pub use kind::{DropReason, EVENT_KIND_COUNT, EventKind, RecordKind};
pub use record::*;

/// Version of the record layouts and IOCTL structs. HELLO refuses any other.
///
/// Bump it on any change to a wire struct; there is no partial compatibility.
/// Version 2: `ProcessCreate` gained `logon_id` (and `PROCESS_FLAG_LOGON_ID`);
/// before version 2 was released, `RegistrySetValue` (kind 9) was added,
/// which lengthened every per-kind array (`Lost`, `DriverStats`) to 9.
/// Version 3: the Sysmon-parity kinds after `RegistrySetValue` (kind 10 on),
/// each with its own record and a slot in every per-kind array:
/// `RemoteThread` (kind 13, counter index 9 until kinds 10-12 exist).
/// Version 4: `NamedPipe` (kind 14), every per-kind array at 14; CONFIGURE's
/// reserved last field became `max_registry_data_bytes` (0 still selects
/// what the reserved zero gave: the default cap).
pub const ABI_VERSION: u32 = 4;
