//! The atomics the ring is built from, in one place: `core`'s in the product,
//! `loom`'s under `cfg(loom)` so the same code is model-checked (the
//! crossbeam-utils habit).
//!
//! The one structural difference: loom cannot model an atomic that lives
//! inside a byte buffer, so under `cfg(loom)` the slot tag words live in a
//! side table ([`TagTable`]) indexed by slot offset instead of in the ring's
//! memory. Only [`TagTable::get`] knows which. And because loom does not see
//! plain memory, under `cfg(loom)` every access to slot bytes is also
//! reported to a `loom::cell::UnsafeCell` per 8-byte unit
//! ([`TagTable::track_access`]), so loom checks that the ring's
//! Release/Acquire pairs order the record bytes, not only the atomics.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One turn of a bounded spin. Under loom a yield, so the model lets the
/// thread being waited for run instead of exploring a busy loop.
#[inline(always)]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Keeps `T` on its own cache line (and the adjacent-line prefetch pair), so
/// producers hammering one counter do not slow a consumer reading another.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Where the tag word of the slot at a given ring offset lives.
///
/// # Invariants
///
/// `base` points to `len` bytes that the ring owns for `'a`, 8-byte aligned,
/// `len` a power of two (established by `Ring::new`); `mask` is
/// `(len - 1) & !7`: any offset masked with it is a multiple of 8 below
/// `len`.
///
/// A table is cloned, not rebuilt, for each side of a lane (`ring.rs`): the
/// clone names the same words (under loom, it shares the side table).
#[derive(Clone, Debug)]
pub(crate) struct TagTable {
    #[cfg(not(loom))]
    base: core::ptr::NonNull<u8>,
    #[cfg(not(loom))]
    mask: usize,
    #[cfg(loom)]
    side: std::sync::Arc<[AtomicU64]>,
    #[cfg(loom)]
    bytes: std::sync::Arc<[loom::cell::UnsafeCell<()>]>,
}

impl TagTable {
    /// # Safety
    ///
    /// `base` must satisfy the type's invariants for as long as the table is used.
    pub(crate) unsafe fn new(base: core::ptr::NonNull<u8>, len: usize) -> Self {
        #[cfg(not(loom))]
        {
            // INVARIANT: the caller promised the rest.
            TagTable {
                base,
                mask: len.wrapping_sub(1) & !7,
            }
        }
        #[cfg(loom)]
        {
            let _ = base;
            TagTable {
                side: (0..len / 8).map(|_| AtomicU64::new(0)).collect(),
                bytes: (0..len / 8)
                    .map(|_| loom::cell::UnsafeCell::new(()))
                    .collect(),
            }
        }
    }

    /// The tag word at byte `offset` of the ring (rounded down to a multiple
    /// of 8 and wrapped into the ring, so any value is in bounds).
    #[inline]
    pub(crate) fn get(&self, offset: usize) -> &AtomicU64 {
        #[cfg(not(loom))]
        {
            let offset = offset & self.mask;
            // SAFETY: `offset` is below `len` and a multiple of 8 (masked
            // with `mask`), and `base` is 8-byte aligned and valid for `len`
            // bytes for our lifetime (type invariant), so the pointer is in
            // bounds and aligned for `AtomicU64`, which has the size and
            // alignment of `u64`. Tag words are only ever accessed
            // atomically while a slot starts at them; the non-atomic
            // accesses to the same bytes (payload writes and the consumer's
            // reads of an older or newer slot) are ordered against these by
            // the ring's Release/Acquire pairs (the consumer's `cons_pos`
            // release, the producer's acquire of it), so there is no data
            // race.
            unsafe { &*self.base.as_ptr().wrapping_add(offset).cast::<AtomicU64>() }
        }
        #[cfg(loom)]
        {
            let index = (offset & (self.side.len() * 8 - 1)) / 8;
            &self.side[index]
        }
    }

    /// The adversary of the loom models: after the consumer is done with
    /// the `len` bytes at ring offset `offset` (position `pos`), every tag
    /// word in them is overwritten with what an attacker could have shaped
    /// an earlier lap's payload into: a committed 8-byte slot tag naming
    /// the position the word will have in the *next* lap. (The side table
    /// does not alias record bytes as real memory does, so the forgery is
    /// written explicitly.) A consumer that ever reads a tag not stamped for
    /// the current lap delivers an extra record, which the models catch.
    /// Does nothing outside loom.
    #[inline(always)]
    pub(crate) fn forge_stale(&self, offset: usize, pos: u64, len: usize) {
        #[cfg(not(loom))]
        let _ = (offset, pos, len);
        #[cfg(loom)]
        {
            let capacity = self.side.len() * 8;
            for at in (0..len).step_by(8) {
                let next_lap = pos + (capacity + at) as u64;
                let forged = crate::tag::Tag {
                    state: crate::tag::State::Committed,
                    kind: 0,
                    slot_len: 8,
                };
                // Relaxed: ordered before any reuse by the Release store of
                // `cons_pos` that ends the drain, like the consumer's reads.
                self.get(offset + at)
                    .store(forged.encode(next_lap), Ordering::Relaxed);
            }
        }
    }

    /// Tells loom that `len` bytes from ring offset `offset` are about to be
    /// accessed (as if written), so it can flag an access that is not
    /// ordered after the previous one. Does nothing outside loom.
    #[inline(always)]
    pub(crate) fn track_access(&self, offset: usize, len: usize) {
        #[cfg(not(loom))]
        let _ = (offset, len);
        #[cfg(loom)]
        for unit in offset / 8..(offset + len).div_ceil(8) {
            self.bytes[unit].with_mut(|_| ());
        }
    }
}
