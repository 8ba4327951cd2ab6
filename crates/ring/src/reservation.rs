//! A producer's claim on one slot: write the record, then commit or discard.

use core::mem::ManuallyDrop;

use ringside_wire::{DropReason, EventKind};

use crate::ring::{Lane, Ring};
use crate::sync::{AtomicU64, Ordering};
use crate::tag::{State, TAG_SIZE, Tag};

/// Space for one record, exclusively the producer's until it commits or
/// discards. Dropping it without either discards it as
/// [`DropReason::EncodeFailed`].
///
/// Hold it briefly: the consumer cannot drain past an unpublished slot (other
/// producers are not affected).
///
/// # Invariants
///
/// `ring` has handed the slot at `pos` of `lane` (one of its lanes) to this
/// reservation alone, unpublished until `commit`, `discard` or drop; `tag`
/// is that slot's tag word, holding its busy tag (only this reservation
/// writes it until then), so publishing is one store of that word with its
/// state replaced; `len` bytes fit the slot after its tag.
#[derive(Debug)]
pub struct Reservation<'r> {
    ring: &'r Ring<'r>,
    lane: &'r Lane,
    tag: &'r AtomicU64,
    pos: u64,
    len: usize,
    kind: EventKind,
}

impl<'r> Reservation<'r> {
    pub(crate) fn new(
        ring: &'r Ring<'r>,
        lane: &'r Lane,
        pos: u64,
        tag: &'r AtomicU64,
        kind: EventKind,
        len: usize,
    ) -> Self {
        // INVARIANT: the caller just claimed the slot at `pos` and stamped
        // its busy tag into `tag`.
        Reservation {
            ring,
            lane,
            tag,
            pos,
            len,
            kind,
        }
    }

    /// The record's bytes: exactly the `len` asked for. The producer encodes
    /// one wire record into it (its header's `seq` is stamped on drain).
    /// Bytes between `len` and the next multiple of 8 are zero.
    pub fn buffer(&mut self) -> &mut [u8] {
        // SAFETY: the slot is ours alone and unpublished (type invariant);
        // `&mut self` makes this the only live view of it; `len` fits the
        // slot after its tag.
        unsafe { self.lane.slot_record(self.pos, self.len) }
    }

    /// The event kind this space was reserved for.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// Publishes the record: the consumer will copy it out.
    pub fn commit(self) -> Committed<'r> {
        // Published here, so the drop's discard must not run.
        let this = ManuallyDrop::new(self);
        this.publish(State::Committed);
        // Cannot overflow: `len` <= MAX_RECORD_SIZE (invariant).
        let slot_len = this.len.next_multiple_of(8).wrapping_add(TAG_SIZE);
        Committed {
            lane: this.lane,
            end: this.pos.wrapping_add(slot_len as u64),
        }
    }

    /// Gives the space up and counts the event as dropped for `reason`.
    pub fn discard(self, reason: DropReason) {
        ManuallyDrop::new(self).give_up(reason);
    }

    fn give_up(&self, reason: DropReason) {
        self.ring.count_drop(self.kind, reason);
        self.publish(State::Discarded);
    }

    /// Replaces the busy tag; after this the producer no longer touches the
    /// slot.
    #[inline]
    fn publish(&self, state: State) {
        // Relaxed: the busy tag is our own store (nobody else writes the
        // word until we publish).
        let busy = self.tag.load(Ordering::Relaxed);
        // Release pairs with the Acquire load of the tag in `drain_lane`:
        // everything written into the slot is visible to the consumer that
        // sees the tag.
        self.tag
            .store(Tag::with_state(busy, state), Ordering::Release);
    }
}

/// A published record's place in its lane, for a producer deciding whether
/// to wake the consumer.
#[derive(Clone, Copy, Debug)]
pub struct Committed<'r> {
    lane: &'r Lane,
    /// The position just past the record's slot.
    end: u64,
}

impl Committed<'_> {
    /// The bytes then pending in the record's lane, up to and including its
    /// slot (slot tags and padding counted, later reservations not): one
    /// lane's share of [`Ring::pending_bytes`], cheap enough to check after
    /// every event.
    ///
    /// It reads the consumer's position, a line the consumer writes on
    /// every drain: a producer that does not need the figure should not ask
    /// (committing alone reads nothing of the consumer's).
    pub fn lane_backlog(&self) -> usize {
        self.lane.pending_bytes_before(self.end)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        // Neither committed nor discarded (those forget the reservation).
        self.give_up(DropReason::EncodeFailed);
    }
}
