//! A producer's claim on one slot: write the record, then commit or discard.

use ringside_wire::{DropReason, EventKind};

use crate::ring::{Lane, Ring};
use crate::tag::{State, Tag};

/// Space for one record, exclusively the producer's until it commits or
/// discards. Dropping it without either discards it as
/// [`DropReason::EncodeFailed`].
///
/// Hold it briefly: the consumer cannot drain past an unpublished slot (other
/// producers are not affected).
///
/// # Invariants
///
/// `ring` has handed the slot at `pos` of `lane` (one of its lanes;
/// `slot_len` bytes, tag included) to this reservation alone, and it is unpublished while `published` is false.
/// `len <= slot_len - TAG_SIZE`.
#[derive(Debug)]
pub struct Reservation<'r> {
    ring: &'r Ring<'r>,
    lane: &'r Lane,
    pos: u64,
    kind: EventKind,
    len: usize,
    slot_len: usize,
    published: bool,
}

impl<'r> Reservation<'r> {
    pub(crate) fn new(
        ring: &'r Ring<'r>,
        lane: &'r Lane,
        pos: u64,
        kind: EventKind,
        len: usize,
        slot_len: usize,
    ) -> Self {
        // INVARIANT: the caller just claimed `[pos, pos + slot_len)`.
        Reservation {
            ring,
            lane,
            pos,
            kind,
            len,
            slot_len,
            published: false,
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
    pub fn commit(mut self) {
        self.publish(State::Committed);
    }

    /// Gives the space up and counts the event as dropped for `reason`.
    pub fn discard(mut self, reason: DropReason) {
        self.ring.count_drop(self.kind, reason);
        self.publish(State::Discarded);
    }

    fn publish(&mut self, state: State) {
        self.published = true;
        let tag = Tag {
            state,
            kind: self.kind.index() as u8,
            slot_len: self.slot_len,
        };
        self.lane.publish(self.pos, tag);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.published {
            self.ring.count_drop(self.kind, DropReason::EncodeFailed);
            self.publish(State::Discarded);
        }
    }
}
