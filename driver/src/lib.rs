//! The safe core of `ringside.sys`, host-testable.
//!
//! Everything the driver decides is here, as safe code over plain views
//! (structs of slices and integers) that the kernel trampolines in the
//! binary (`src/kernel/`) fill in: which records a callback produces and how
//! they are encoded ([`record`]), the bounded first-write set ([`first_write`]),
//! the registry clamping ([`params`]) and the control device's request
//! handling ([`control`]). This crate compiles for any target and is tested
//! with `cargo test -p ringside-driver`; the binary adds only FFI.

#![no_std]
#![deny(unsafe_code)]
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

#[cfg(test)]
extern crate std;

pub mod control;
pub mod first_write;
pub mod in_flight;
#[cfg(windows)]
pub mod ntoskrnl;
pub mod params;
pub mod pending;
pub mod record;
pub mod wdk;

/// The ring the driver records into.
pub use ringside_ring as ring;

/// Driver version reported by HELLO: `major << 16 | minor`.
pub const DRIVER_VERSION: u32 = 1;

/// Pool tag of every allocation the driver makes ('Rsid', little-endian).
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"Rsid");

/// Bugcheck code of the panic handler: 0xE0000052 (`'R'` for ringside in the
/// low byte, in the customer-defined range). Parameter 1 is the panic's
/// source line. A release image must never reach it (the binary gate
/// rejects an image that imports `KeBugCheckEx`).
pub const BUGCHECK_CODE: u32 = 0xE000_0052;

// The registry bounds fit what the ring accepts.
const _: () = assert!(
    params::RING_SIZE_MIN as usize >= ring::Ring::MIN_CAPACITY
        && params::RING_SIZE_MAX as usize <= ring::Ring::MAX_CAPACITY
);
