//! The record writer: encodes one record into a caller-provided buffer.
//!
//! The driver calls this on its event path, so it never allocates and never
//! panics: every size is checked and a mistake is an [`EncodeError`]. The
//! caller sizes its ring reservation with [`encoded_len`] first, then encodes
//! into exactly that space with [`encode_exact`], which measures nothing
//! again ([`encode`] does both for a buffer of any size).

use zerocopy::IntoBytes;

use crate::record::{
    Blob, Body, HEADER_FLAG_TRUNCATED, HEADER_SIZE, MAX_RECORD_SIZE, RECORD_ALIGN, RECORD_VERSION,
    RecordHeader,
};

/// Raw bytes for one blob, and the most of them the record may carry.
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    /// The source bytes (UTF-16LE for names, a binary SID for SIDs).
    pub data: &'a [u8],
    /// Cap in bytes; for UTF-16 fields the caller passes an even cap so a
    /// truncated name still holds whole code units.
    pub cap: u16,
}

impl<'a> Field<'a> {
    /// A field with the given cap.
    pub const fn new(data: &'a [u8], cap: u16) -> Self {
        Field { data, cap }
    }

    /// An absent field (encodes as an empty blob).
    pub const EMPTY: Field<'static> = Field { data: &[], cap: 0 };

    /// Bytes that will be stored, and whether that truncates the source.
    fn stored_len(&self) -> (u16, bool) {
        let full = self.data.len();
        let stored = if full > usize::from(self.cap) {
            self.cap
        } else {
            full as u16
        };
        (stored, usize::from(stored) < full)
    }

    /// Source length as recorded in [`Blob::full_len`] (saturating at `u16::MAX`).
    fn full_len(&self) -> u16 {
        u16::try_from(self.data.len()).unwrap_or(u16::MAX)
    }
}

/// Why a record could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The number of fields does not match the body's blob count.
    FieldCount { expected: usize, got: usize },
    /// The record would exceed [`MAX_RECORD_SIZE`].
    TooLarge,
    /// The output buffer is smaller than the record.
    BufferTooSmall { needed: usize, got: usize },
    /// [`encode_exact`] was given a buffer that is not the record's size.
    WrongSize { needed: usize, got: usize },
}

/// Header values the producer supplies; `size`, `kind`, `version` and
/// `flags` are filled in by the writer, `seq` by the ring's consumer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub pid: u32,
    pub tid: u32,
    pub timestamp: u64,
}

/// Size in bytes of the record [`encode`] writes for these fields, padding
/// included, or `None` if the field count is wrong or it exceeds
/// [`MAX_RECORD_SIZE`].
pub fn encoded_len<B: Body>(fields: &[Field<'_>]) -> Option<usize> {
    if fields.len() != B::BLOBS.len() {
        return None;
    }
    let mut size = HEADER_SIZE.checked_add(core::mem::size_of::<B>())?;
    for field in fields {
        size = size.checked_add(usize::from(field.stored_len().0))?;
    }
    // A power of two: rounding up is an add and a mask (cheaper than
    // `checked_next_multiple_of`, which this runs on every kernel event).
    let padded = size.checked_add(RECORD_ALIGN - 1)? & !(RECORD_ALIGN - 1);
    (padded <= MAX_RECORD_SIZE).then_some(padded)
}

/// Encodes one record into the front of `out` and returns its size.
///
/// `body`'s blob references are overwritten with the places the fields were
/// stored; everything else in it is copied as given. Each field is truncated
/// at its cap, and [`HEADER_FLAG_TRUNCATED`] is set if any was. Bytes between
/// the end of the data and the padded size are zeroed.
pub fn encode<B: Body>(
    out: &mut [u8],
    origin: Origin,
    body: B,
    fields: &[Field<'_>],
) -> Result<usize, EncodeError> {
    if fields.len() != B::BLOBS.len() {
        return Err(EncodeError::FieldCount {
            expected: B::BLOBS.len(),
            got: fields.len(),
        });
    }
    let size = encoded_len::<B>(fields).ok_or(EncodeError::TooLarge)?;
    let got = out.len();
    let record = out
        .get_mut(..size)
        .ok_or(EncodeError::BufferTooSmall { needed: size, got })?;
    encode_exact(record, origin, body, fields)?;
    Ok(size)
}

/// [`encode`] into all of `record`, whose length is what [`encoded_len`]
/// returned for these fields (a ring reservation of that size): the fields
/// are measured once, in `encoded_len`, and not again here. A record whose
/// fields do not fill `record` to the padded size is a
/// [`EncodeError::WrongSize`] (with `record` partly written).
pub fn encode_exact<B: Body>(
    record: &mut [u8],
    origin: Origin,
    mut body: B,
    fields: &[Field<'_>],
) -> Result<(), EncodeError> {
    if fields.len() != B::BLOBS.len() {
        return Err(EncodeError::FieldCount {
            expected: B::BLOBS.len(),
            got: fields.len(),
        });
    }
    let size = record.len();
    if size > MAX_RECORD_SIZE {
        return Err(EncodeError::TooLarge);
    }
    // Lay the fields out first: their places follow from their stored
    // lengths alone, so the header and body are written before any data is
    // copied, and the copies below carry nothing else across their calls.
    let body_end = HEADER_SIZE.wrapping_add(core::mem::size_of::<B>());
    let mut cursor = body_end;
    let mut flags = 0u8;
    for (i, field) in fields.iter().enumerate() {
        let (stored, truncated) = field.stored_len();
        if truncated {
            flags |= HEADER_FLAG_TRUNCATED;
        }
        let blob = Blob {
            // Cannot truncate: checked against `size <= MAX_RECORD_SIZE`
            // below, before anything is written.
            offset: if stored == 0 { 0 } else { cursor as u16 },
            len: stored,
            full_len: field.full_len(),
            _pad: 0,
        };
        if let Some(slot) = body.blob_mut(i) {
            *slot = blob;
        }
        // Saturating, so that an impossible overflow still fails the check
        // below.
        cursor = cursor.saturating_add(usize::from(stored));
    }
    // The fields fill `record` up to its padding exactly when `cursor` is
    // within RECORD_ALIGN below `size` and `size` is aligned. (Cheaper than
    // rounding `cursor` up again.)
    if cursor > size || size.wrapping_sub(cursor) >= RECORD_ALIGN || size % RECORD_ALIGN != 0 {
        return Err(EncodeError::WrongSize {
            needed: cursor,
            got: size,
        });
    }
    // The padding is the last `size - cursor < RECORD_ALIGN` bytes: zero
    // the last 8, and let the data, body and header overwrite whatever of
    // them is theirs. (One store instead of a fill call.)
    if let Some(last) = size
        .checked_sub(RECORD_ALIGN)
        .and_then(|start| record.get_mut(start..))
    {
        last.copy_from_slice(&[0; RECORD_ALIGN]);
    }

    let header = RecordHeader {
        // Cannot truncate: `size <= MAX_RECORD_SIZE`.
        size: size as u32,
        kind: B::KIND.wire(),
        version: RECORD_VERSION,
        flags,
        pid: origin.pid,
        tid: origin.tid,
        seq: 0,
        timestamp: origin.timestamp,
    };
    let (head, rest) = record
        .split_at_mut_checked(HEADER_SIZE)
        .ok_or(EncodeError::WrongSize {
            needed: HEADER_SIZE,
            got: size,
        })?;
    header.write_to(head).map_err(|_| EncodeError::WrongSize {
        needed: HEADER_SIZE,
        got: size,
    })?;
    let (body_bytes, tail) =
        rest.split_at_mut_checked(core::mem::size_of::<B>())
            .ok_or(EncodeError::WrongSize {
                needed: body_end,
                got: size,
            })?;
    body.write_to(body_bytes)
        .map_err(|_| EncodeError::WrongSize {
            needed: body_end,
            got: size,
        })?;

    // The data, in layout order, into the tail.
    let mut tail = tail;
    for field in fields {
        let stored = usize::from(field.stored_len().0);
        let src = field.data.get(..stored).unwrap_or_default();
        // Cannot fail: the layout above fitted every field in `record`.
        let Some((dest, rest)) = tail.split_at_mut_checked(stored) else {
            return Err(EncodeError::WrongSize {
                needed: cursor,
                got: size,
            });
        };
        if dest.len() == src.len() {
            dest.copy_from_slice(src);
        }
        tail = rest;
    }
    Ok(())
}
