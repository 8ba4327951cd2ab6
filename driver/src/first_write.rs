//! A bounded, lock-free set of stream handles (file object addresses) that
//! have been written through: the first write per handle is reported, later
//! ones are not, and cleanup of a handle in the set reports
//! close-after-modify. No allocation: a fixed table of atomics in the
//! driver image, probed a bounded number of times.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Slots probed per lookup; bounds every loop on the write path.
const MAX_PROBE: usize = 16;

/// A slot that never held a key.
const EMPTY: usize = 0;
/// A slot whose key was removed. Never a file object address (those are
/// aligned), so it cannot collide with a key.
const TOMBSTONE: usize = usize::MAX;

/// What [`FirstWriteSet::record_write`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteSeen {
    /// First write through this handle: report it.
    First,
    /// The handle was already written through: do not report again.
    Again,
    /// No free slot within the probe bound: report it (may repeat), untracked.
    Untracked,
}

/// The set. `N` must be a power of two.
///
/// Open addressing with linear probing over at most [`MAX_PROBE`] slots.
/// A slot goes from [`EMPTY`] to a key, and from a key to [`TOMBSTONE`]
/// and back to a key, but never returns to `EMPTY`. A key is only ever
/// stored after every earlier slot of its probe sequence was seen taken, so
/// no key lies beyond an `EMPTY` slot of its sequence: lookups stop at the
/// first `EMPTY` slot. On a table with few used slots that is the first or
/// second probe; as slots get used over time, lookups probe further, and at
/// worst (every slot used once) the whole bound, which is what a table
/// without tombstones would probe for every missing key.
#[derive(Debug)]
pub struct FirstWriteSet<const N: usize> {
    // Invariant: EMPTY, TOMBSTONE, or a file object address (as above).
    slots: [AtomicUsize; N],
}

impl<const N: usize> Default for FirstWriteSet<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FirstWriteSet<N> {
    const POWER_OF_TWO: () = assert!(N.is_power_of_two());

    /// An empty set (usable in a `static`).
    pub const fn new() -> Self {
        let () = Self::POWER_OF_TWO;
        FirstWriteSet {
            slots: [const { AtomicUsize::new(EMPTY) }; N],
        }
    }

    /// Fibonacci hashing keeps the product's top log2(N) bits.
    const SHIFT: u32 = usize::BITS - N.trailing_zeros();

    /// The slots `key` may occupy, in probe order.
    #[inline]
    fn probe(&self, key: usize) -> impl Iterator<Item = &AtomicUsize> {
        // Fibonacci hashing of the address: the multiplication mixes every
        // bit of the key into the top bits of the product, which pick the
        // home slot. (The low bits of the product depend only on the low
        // bits of the key, so page-aligned file objects, as the pool hands
        // out under special pool, would share a few home slots.)
        let home = key
            .wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize)
            .wrapping_shr(Self::SHIFT);
        let mask = N.wrapping_sub(1);
        (0..MAX_PROBE).filter_map(move |i| self.slots.get(home.wrapping_add(i) & mask))
    }

    /// Notes a write through `key`; says whether it is the first.
    pub fn record_write(&self, key: usize) -> WriteSeen {
        if key == EMPTY || key == TOMBSTONE {
            return WriteSeen::Untracked;
        }
        // Relaxed throughout: the set carries no data besides the keys.
        // Look for the key first, up to the first never-used slot, so that
        // a tombstone in front of it does not make us insert it twice.
        for slot in self.probe(key) {
            match slot.load(Ordering::Relaxed) {
                existing if existing == key => return WriteSeen::Again,
                EMPTY => break,
                _ => {}
            }
        }
        // Take the first free slot in probe order, one attempt per slot:
        // concurrent first writes through the same handle race for the same
        // slot, and the loser sees the winner's key.
        for slot in self.probe(key) {
            let current = slot.load(Ordering::Relaxed);
            if current == EMPTY || current == TOMBSTONE {
                match slot.compare_exchange(current, key, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return WriteSeen::First,
                    Err(existing) if existing == key => return WriteSeen::Again,
                    Err(_) => {}
                }
            } else if current == key {
                return WriteSeen::Again;
            }
        }
        WriteSeen::Untracked
    }

    /// Removes `key` (handle cleanup); true if it had been written through.
    pub fn remove(&self, key: usize) -> bool {
        if key == EMPTY || key == TOMBSTONE {
            return false;
        }
        let mut found = false;
        for slot in self.probe(key) {
            match slot.load(Ordering::Relaxed) {
                EMPTY => break,
                existing if existing == key => {
                    found |= slot
                        .compare_exchange(key, TOMBSTONE, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok();
                }
                _ => {}
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_write_then_again_then_cleanup() {
        let set = FirstWriteSet::<64>::new();
        assert_eq!(set.record_write(0x1000), WriteSeen::First);
        assert_eq!(set.record_write(0x1000), WriteSeen::Again);
        assert_eq!(set.record_write(0x2000), WriteSeen::First);
        assert!(set.remove(0x1000));
        assert!(!set.remove(0x1000));
        assert_eq!(set.record_write(0x1000), WriteSeen::First);
        assert!(!set.remove(0x3000));
    }

    #[test]
    fn null_key_is_never_tracked() {
        let set = FirstWriteSet::<16>::new();
        assert_eq!(set.record_write(0), WriteSeen::Untracked);
        assert!(!set.remove(0));
    }

    #[test]
    fn full_table_reports_untracked_and_recovers() {
        let set = FirstWriteSet::<16>::new();
        for k in 1..=16usize {
            assert_eq!(set.record_write(k << 4), WriteSeen::First);
        }
        assert_eq!(set.record_write(17 << 4), WriteSeen::Untracked);
        assert!(set.remove(3 << 4));
        assert_eq!(set.record_write(17 << 4), WriteSeen::First);
        // Keys beyond a hole are still found.
        for k in 1..=16usize {
            if k != 3 {
                assert_eq!(set.record_write(k << 4), WriteSeen::Again);
            }
        }
    }

    #[test]
    fn tombstones_are_reused_and_never_hide_a_key() {
        let set = FirstWriteSet::<16>::new();
        for k in 1..=16usize {
            assert_eq!(set.record_write(k << 4), WriteSeen::First);
        }
        // Every slot now holds a key; free half of them, in an order that
        // leaves tombstones in front of keys that are still present.
        for k in (1..=16usize).step_by(2) {
            assert!(set.remove(k << 4));
            assert!(!set.remove(k << 4));
        }
        for k in (2..=16usize).step_by(2) {
            assert_eq!(set.record_write(k << 4), WriteSeen::Again);
        }
        for k in 17..=24usize {
            assert_eq!(set.record_write(k << 4), WriteSeen::First);
        }
        assert_eq!(set.record_write(25 << 4), WriteSeen::Untracked);
        for k in (2..=24usize).filter(|k| k % 2 == 0 || *k > 16) {
            assert_eq!(set.record_write(k << 4), WriteSeen::Again);
            assert!(set.remove(k << 4));
        }
        assert_eq!(set.record_write(1 << 4), WriteSeen::First);
    }

    #[test]
    fn the_tombstone_value_is_never_tracked() {
        let set = FirstWriteSet::<16>::new();
        assert_eq!(set.record_write(TOMBSTONE), WriteSeen::Untracked);
        assert!(!set.remove(TOMBSTONE));
    }
}
