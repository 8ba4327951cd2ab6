//! A bounded, lock-free set of stream handles (file object addresses) that
//! have been written through: the first write per handle is reported, later
//! ones are not, and cleanup of a handle in the set reports
//! close-after-modify. No allocation: a fixed table of atomics in the
//! driver image, probed a bounded number of times.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Slots probed per lookup; bounds every loop on the write path.
const MAX_PROBE: usize = 16;

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
#[derive(Debug)]
pub struct FirstWriteSet<const N: usize> {
    // Invariant: 0 means empty; any other value is a file object address.
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
            slots: [const { AtomicUsize::new(0) }; N],
        }
    }

    /// Fibonacci hashing keeps the product's top log2(N) bits.
    const SHIFT: u32 = usize::BITS - N.trailing_zeros();

    fn probe(key: usize) -> impl Iterator<Item = usize> {
        // Fibonacci hashing of the address: the multiplication mixes every
        // bit of the key into the top bits of the product, which pick the
        // home slot. (The low bits of the product depend only on the low
        // bits of the key, so page-aligned file objects, as the pool hands
        // out under special pool, would share a few home slots.)
        let home = key
            .wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize)
            .wrapping_shr(Self::SHIFT);
        (0..MAX_PROBE).map(move |i| home.wrapping_add(i) & N.wrapping_sub(1))
    }

    /// Notes a write through `key`; says whether it is the first.
    pub fn record_write(&self, key: usize) -> WriteSeen {
        if key == 0 {
            return WriteSeen::Untracked;
        }
        // Look for the key first, so a hole left by a removal in front of
        // it does not make us insert it twice.
        if Self::probe(key).any(|i| self.slot(i) == key) {
            return WriteSeen::Again;
        }
        for i in Self::probe(key) {
            let Some(slot) = self.slots.get(i) else {
                continue;
            };
            // Relaxed suffices: the set carries no data besides the key itself.
            match slot.compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return WriteSeen::First,
                Err(existing) if existing == key => return WriteSeen::Again,
                Err(_) => {}
            }
        }
        WriteSeen::Untracked
    }

    /// Removes `key` (handle cleanup); true if it had been written through.
    pub fn remove(&self, key: usize) -> bool {
        if key == 0 {
            return false;
        }
        let mut found = false;
        for i in Self::probe(key) {
            if let Some(slot) = self.slots.get(i) {
                found |= slot
                    .compare_exchange(key, 0, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok();
            }
        }
        found
    }

    fn slot(&self, i: usize) -> usize {
        self.slots.get(i).map_or(0, |s| s.load(Ordering::Relaxed))
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
}
