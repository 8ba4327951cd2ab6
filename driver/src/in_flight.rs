//! Renames and deletes between their pre- and post-operation callbacks: a
//! fixed table of slots, each holding the two name-information references
//! (before, and the rename's target) that the post-operation callback
//! reports once the file system completed the request. FltMgr hands the
//! post-operation callback one pointer-sized completion context: the slot's
//! number. No allocation: the table lives in the driver image.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// One operation's names (opaque addresses to this module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Names {
    pub before: usize,
    /// The rename's target; 0 for a delete.
    pub after: usize,
}

#[derive(Debug)]
struct Slot {
    busy: AtomicBool,
    before: AtomicUsize,
    after: AtomicUsize,
}

/// `N` slots; more operations in flight at once than that are not tracked
/// (the caller counts them as dropped).
#[derive(Debug)]
pub struct InFlight<const N: usize> {
    slots: [Slot; N],
}

impl<const N: usize> Default for InFlight<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> InFlight<N> {
    pub const fn new() -> Self {
        InFlight {
            slots: [const {
                Slot {
                    busy: AtomicBool::new(false),
                    before: AtomicUsize::new(0),
                    after: AtomicUsize::new(0),
                }
            }; N],
        }
    }

    /// Keeps `names` until [`InFlight::take`]; the completion context to
    /// hand FltMgr (never 0), or `None` when every slot is taken.
    pub fn put(&self, names: Names) -> Option<usize> {
        for (i, slot) in self.slots.iter().enumerate() {
            // Acquire pairs with the Release in `take`: the previous
            // owner's reads of the slot come before our writes.
            if slot
                .busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // Relaxed: published to `take` by FltMgr's own ordering
                // between the pre- and post-operation callbacks of one
                // request (the same IRP, handed from one to the other).
                slot.before.store(names.before, Ordering::Relaxed);
                slot.after.store(names.after, Ordering::Relaxed);
                return i.checked_add(1);
            }
        }
        None
    }

    /// The names `put` kept under `context`, and the slot is free again.
    /// `None` for a context `put` did not return (then nothing changes).
    pub fn take(&self, context: usize) -> Option<Names> {
        let slot = self.slots.get(context.checked_sub(1)?)?;
        if !slot.busy.load(Ordering::Relaxed) {
            return None;
        }
        let names = Names {
            before: slot.before.load(Ordering::Relaxed),
            after: slot.after.load(Ordering::Relaxed),
        };
        // Release pairs with the Acquire in `put`.
        slot.busy.store(false, Ordering::Release);
        Some(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_back_once_from_their_context() {
        let table = InFlight::<2>::new();
        let a = table
            .put(Names {
                before: 0x10,
                after: 0x20,
            })
            .expect("room");
        let b = table
            .put(Names {
                before: 0x30,
                after: 0,
            })
            .expect("room");
        assert_ne!(a, b);
        assert_ne!(a, 0, "a context is never NULL");
        assert_eq!(
            table.put(Names {
                before: 1,
                after: 1
            }),
            None,
            "full"
        );
        assert_eq!(
            table.take(a),
            Some(Names {
                before: 0x10,
                after: 0x20
            })
        );
        assert_eq!(table.take(a), None, "taken once");
        assert_eq!(table.take(0), None);
        assert_eq!(table.take(99), None);
        let c = table
            .put(Names {
                before: 0x40,
                after: 0x50,
            })
            .expect("a slot was freed");
        assert_eq!(c, a);
        assert_eq!(
            table.take(b),
            Some(Names {
                before: 0x30,
                after: 0
            })
        );
    }
}
