//! The bounded multi-producer, single-consumer event ring of `ringside.sys`.
//!
//! The driver hands [`Ring::init_in`] its pre-allocated non-paged memory,
//! split into per-CPU lanes. Its callbacks, on any CPU at IRQL <=
//! DISPATCH_LEVEL, reserve a slot in their CPU's lane
//! ([`Ring::reserve_exclusive`]: no lock; or [`Ring::reserve_in`] when CPUs
//! share lanes), encode one wire record into [`Reservation::buffer`] and
//! [`Reservation::commit`] it; its READ path calls [`Ring::drain_into`] to
//! copy whole records out. In user mode a thread [`Ring::claim`]s a lane as a
//! [`Producer`]. Everything is atomics over caller memory: no allocation, no
//! waiting on another producer beyond a bounded spin, no panics. Every event
//! is counted — produced, delivered, dropped per kind and reason — and drops
//! are reported in-band with `Lost` records. See [`ring`] for the protocol.
//!
//! ```
//! use ringside_ring::Ring;
//! use ringside_wire::{EventKind, FileWrite, Field, Origin, encode, encoded_len};
//!
//! let mut memory = vec![0u64; 512]; // 4 KiB, 8-byte aligned
//! let ring = Ring::new(zerocopy::IntoBytes::as_mut_bytes(memory.as_mut_slice())).unwrap();
//! let name = [b'a', 0, b'b', 0];
//! let fields = [Field::new(&name, 512)];
//! let len = encoded_len::<FileWrite>(&fields).unwrap();
//! let mut slot = ring.reserve(EventKind::FileWrite, len).unwrap();
//! encode(slot.buffer(), Origin::default(), FileWrite::default(), &fields).unwrap();
//! slot.commit();
//!
//! let mut out = [0u8; 256];
//! let n = ring.drain_into(&mut out);
//! assert_eq!(n, len);
//! assert_eq!(ring.stats().delivered[EventKind::FileWrite.index()], 1);
//! ```

#![no_std]
// unsafe fns are about contract, not implementation.
#![forbid(unsafe_op_in_unsafe_fn)]
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

// The loom side table of tag words (see `sync`) is the only allocation, and
// it exists only in model-checking builds.
#[cfg(loom)]
extern crate std;

pub mod reservation;
pub mod ring;
mod sync;
mod tag;

pub use reservation::{Committed, Reservation};
pub use ring::{MAX_CLAIM_TRIES, MAX_LANES, Producer, Ring, RingError};
