//! The record writer: encodes one record into a caller-provided buffer.
//!
//! The driver calls this on its event path, so it never allocates and never
//! panics: every size is checked and a mistake is an [`EncodeError`]. The
//! caller sizes its ring reservation with [`encoded_len`] first, then encodes
//! into exactly that space.

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
    let padded = size.checked_next_multiple_of(RECORD_ALIGN)?;
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
    mut body: B,
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

    let body_end = HEADER_SIZE.wrapping_add(core::mem::size_of::<B>());
    let mut cursor = body_end;
    let mut flags = 0u8;
    for (i, field) in fields.iter().enumerate() {
        let (stored, truncated) = field.stored_len();
        if truncated {
            flags |= HEADER_FLAG_TRUNCATED;
        }
        let end = cursor.wrapping_add(usize::from(stored));
        // Cannot fail: `encoded_len` summed exactly these lengths into `size`.
        let dest = record
            .get_mut(cursor..end)
            .ok_or(EncodeError::BufferTooSmall {
                needed: end,
                got: size,
            })?;
        let src = field.data.get(..usize::from(stored)).unwrap_or_default();
        if dest.len() == src.len() {
            dest.copy_from_slice(src);
        }
        let blob = Blob {
            // Cannot truncate: `size <= MAX_RECORD_SIZE < u16::MAX`.
            offset: if stored == 0 { 0 } else { cursor as u16 },
            len: stored,
            full_len: field.full_len(),
            _pad: 0,
        };
        if let Some(slot) = body.blob_mut(i) {
            *slot = blob;
        }
        cursor = end;
    }
    if let Some(padding) = record.get_mut(cursor..) {
        padding.fill(0);
    }

    let header = RecordHeader {
        size: size as u32,
        kind: B::KIND.wire(),
        version: RECORD_VERSION,
        flags,
        pid: origin.pid,
        tid: origin.tid,
        seq: 0,
        timestamp: origin.timestamp,
    };
    let (head, rest) =
        record
            .split_at_mut_checked(HEADER_SIZE)
            .ok_or(EncodeError::BufferTooSmall {
                needed: HEADER_SIZE,
                got: size,
            })?;
    header
        .write_to(head)
        .map_err(|_| EncodeError::BufferTooSmall {
            needed: HEADER_SIZE,
            got: size,
        })?;
    body.write_to_prefix(rest)
        .map_err(|_| EncodeError::BufferTooSmall {
            needed: body_end,
            got: size,
        })?;
    Ok(size)
}
