//! The slot tag word: the first 8 bytes of every slot, the only part of a
//! slot both sides touch concurrently (atomically).
//!
//! ```text
//!  63                32 31            16 15      8 7       0
//! +--------------------+----------------+---------+---------+
//! | slot position / 8  | slot length / 8|  kind   |  state  |
//! |   (low 32 bits)    |                |         |         |
//! +--------------------+----------------+---------+---------+
//! ```
//!
//! A slot's tag is written while the producer holds the reservation lock,
//! *before* the new `prod_pos` is published: [`State::Busy`] for a slot
//! being written, [`State::Pad`] for a skipped tail. The owner later replaces
//! a busy tag with one Release store: committed or discarded. The consumer
//! reads tags only below the `prod_pos` it loaded with Acquire, so every tag
//! it reads was written for this lap; bytes left over from an earlier lap
//! (which may be attacker-shaped payload) are never interpreted, and nothing
//! has to be zeroed. The position bits are a second, independent check: a
//! word left over from an earlier lap names an earlier position.

/// Bytes taken by the tag word at the start of every slot.
pub(crate) const TAG_SIZE: usize = 8;

/// The `kind` byte of a `Lost` record's slot (event kinds use their index).
pub(crate) const KIND_LOST: u8 = 0xFF;

/// A slot's state, the low byte of its tag. Any other value (a zero word
/// from `Ring::new` included) decodes as nothing: the consumer stops there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// A whole record the consumer copies out.
    Committed = 1,
    /// A reservation given up; the consumer skips it.
    Discarded = 2,
    /// The tail of the ring that a slot did not fit in; the consumer skips
    /// to the start of the ring.
    Pad = 3,
    /// Reserved and still being written: the consumer stops here until the
    /// owner commits or discards it.
    Busy = 4,
}

/// A decoded tag word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tag {
    pub state: State,
    /// [`KIND_LOST`] or an [`ringside_wire::EventKind::index`].
    pub kind: u8,
    /// Bytes in the slot, tag included; a multiple of 8.
    pub slot_len: usize,
}

impl Tag {
    /// The word for a slot at byte position `pos`. `slot_len` must be a
    /// multiple of 8 below 512 KiB (the ring keeps slots below 64 KiB + 112).
    #[inline]
    pub(crate) fn encode(self, pos: u64) -> u64 {
        let len_units = (self.slot_len / 8) as u64 & 0xFFFF;
        ((pos >> 3) << 32) | (len_units << 16) | (u64::from(self.kind) << 8) | self.state as u64
    }

    /// `word` (a tag word) with its state replaced by `state`: how a busy
    /// slot's word becomes its committed or discarded word.
    #[inline]
    pub(crate) fn with_state(word: u64, state: State) -> u64 {
        (word & !0xFF) | state as u64
    }

    /// Decodes a word read at position `pos`: `None` if it is free or was
    /// not written for this position (then the consumer stops there).
    #[inline]
    pub(crate) fn decode(word: u64, pos: u64) -> Option<Tag> {
        if (word >> 32) as u32 != (pos >> 3) as u32 {
            return None;
        }
        let state = match word & 0xFF {
            1 => State::Committed,
            2 => State::Discarded,
            3 => State::Pad,
            4 => State::Busy,
            _ => return None,
        };
        Some(Tag {
            state,
            kind: (word >> 8) as u8,
            slot_len: (((word >> 16) & 0xFFFF) as usize).wrapping_mul(8),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_reject_other_positions() {
        let tag = Tag {
            state: State::Committed,
            kind: 3,
            slot_len: 0x10000,
        };
        let pos = (7u64 << 40) | 0x1238;
        assert_eq!(Tag::decode(tag.encode(pos), pos), Some(tag));
        // The same slot one lap of a 4 KiB ring earlier is stale.
        assert_eq!(Tag::decode(tag.encode(pos - 4096), pos), None);
        assert_eq!(Tag::decode(0, 0), None);
        let pad = Tag {
            state: State::Pad,
            kind: 0,
            slot_len: 8,
        };
        assert_eq!(Tag::decode(pad.encode(0), 0), Some(pad));
        let busy = Tag {
            state: State::Busy,
            ..tag
        };
        assert_eq!(Tag::decode(busy.encode(pos), pos), Some(busy));
        let committed = Tag::with_state(busy.encode(pos), State::Committed);
        assert_eq!(committed, tag.encode(pos));
    }
}
