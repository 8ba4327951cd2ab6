//! The decoder: turns bytes from the driver (or a replay file) into typed,
//! borrowed views. Every malformed input is a [`DecodeError`] that says what
//! was wrong and at which byte offset; nothing here can panic.

use zerocopy::FromBytes;

use crate::kind::{EventKind, RecordKind};
use crate::record::{
    Blob, BlobEncoding, Body, DriverStats, FileCloseModified, FileCreate, FileDelete, FileRename,
    FileWrite, HEADER_SIZE, ImageLoad, Lost, MAX_RECORD_SIZE, NamedPipe, PIPE_OP_CONNECTED,
    PIPE_OP_CREATED, ProcessAccess, ProcessCreate, ProcessExit, RECORD_ALIGN, RECORD_VERSION,
    REGISTRY_OP_CREATE_KEY, REGISTRY_OP_DELETE_VALUE, RecordHeader, RegistryKey, RegistryRename,
    RegistrySetValue, RemoteThread,
};

/// What was wrong with a record. Offsets are relative to the start of the
/// buffer handed to [`Records`] (or to the record, for [`decode_record`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes remain than a header needs.
    Short {
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// `size` is below the header size, not a multiple of 8, above
    /// [`MAX_RECORD_SIZE`], or past the end of the buffer.
    BadLength {
        offset: usize,
        size: u32,
        available: usize,
    },
    /// The header's version is not [`RECORD_VERSION`].
    VersionMismatch { offset: usize, found: u8 },
    /// The kind is not one this decoder knows.
    UnknownKind { offset: usize, kind: u16 },
    /// The record is too small for its kind's fixed body.
    BodyTooShort {
        offset: usize,
        kind: RecordKind,
        size: u32,
        needed: usize,
    },
    /// A blob points outside the record's tail.
    BlobOutOfBounds {
        offset: usize,
        kind: RecordKind,
        blob: usize,
        blob_offset: u16,
        len: u16,
    },
    /// A UTF-16 blob has an odd number of bytes.
    OddUtf16Length {
        offset: usize,
        kind: RecordKind,
        blob: usize,
        len: u16,
    },
    /// An address blob's length is not a multiple of 8.
    PartialAddress {
        offset: usize,
        kind: RecordKind,
        blob: usize,
        len: u16,
    },
    /// A blob claims more bytes stored than its source had.
    BlobLongerThanSource {
        offset: usize,
        kind: RecordKind,
        blob: usize,
        len: u16,
        full_len: u16,
    },
    /// A registry key record names no known `REGISTRY_OP_*`.
    UnknownRegistryOperation { offset: usize, operation: u32 },
    /// A named-pipe record names no known `PIPE_OP_*`.
    UnknownPipeOperation { offset: usize, operation: u32 },
}

impl DecodeError {
    /// Offset of the record the error is about.
    pub fn offset(&self) -> usize {
        match *self {
            DecodeError::Short { offset, .. }
            | DecodeError::BadLength { offset, .. }
            | DecodeError::VersionMismatch { offset, .. }
            | DecodeError::UnknownKind { offset, .. }
            | DecodeError::BodyTooShort { offset, .. }
            | DecodeError::BlobOutOfBounds { offset, .. }
            | DecodeError::OddUtf16Length { offset, .. }
            | DecodeError::PartialAddress { offset, .. }
            | DecodeError::BlobLongerThanSource { offset, .. }
            | DecodeError::UnknownRegistryOperation { offset, .. }
            | DecodeError::UnknownPipeOperation { offset, .. } => offset,
        }
    }

    /// A short stable name for counting errors by class.
    pub fn class(&self) -> &'static str {
        match self {
            DecodeError::Short { .. } => "short",
            DecodeError::BadLength { .. } => "bad_length",
            DecodeError::VersionMismatch { .. } => "version_mismatch",
            DecodeError::UnknownKind { .. } => "unknown_kind",
            DecodeError::BodyTooShort { .. } => "body_too_short",
            DecodeError::BlobOutOfBounds { .. } => "blob_out_of_bounds",
            DecodeError::OddUtf16Length { .. } => "odd_utf16_length",
            DecodeError::PartialAddress { .. } => "partial_address",
            DecodeError::BlobLongerThanSource { .. } => "blob_longer_than_source",
            DecodeError::UnknownRegistryOperation { .. } => "unknown_registry_operation",
            DecodeError::UnknownPipeOperation { .. } => "unknown_pipe_operation",
        }
    }

    /// The record offset shifted by `base` (to report positions in a file).
    pub fn at(mut self, base: usize) -> Self {
        match &mut self {
            DecodeError::Short { offset, .. }
            | DecodeError::BadLength { offset, .. }
            | DecodeError::VersionMismatch { offset, .. }
            | DecodeError::UnknownKind { offset, .. }
            | DecodeError::BodyTooShort { offset, .. }
            | DecodeError::BlobOutOfBounds { offset, .. }
            | DecodeError::OddUtf16Length { offset, .. }
            | DecodeError::PartialAddress { offset, .. }
            | DecodeError::BlobLongerThanSource { offset, .. }
            | DecodeError::UnknownRegistryOperation { offset, .. }
            | DecodeError::UnknownPipeOperation { offset, .. } => {
                *offset = offset.saturating_add(base)
            }
        }
        self
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            DecodeError::Short {
                offset,
                needed,
                available,
            } => {
                write!(
                    f,
                    "record at byte {offset}: {available} bytes left, a header needs {needed}"
                )
            }
            DecodeError::BadLength {
                offset,
                size,
                available,
            } => write!(
                f,
                "record at byte {offset}: size {size} is invalid (must be {HEADER_SIZE}..={MAX_RECORD_SIZE}, a multiple of {RECORD_ALIGN}, and within the {available} bytes left)"
            ),
            DecodeError::VersionMismatch { offset, found } => {
                write!(
                    f,
                    "record at byte {offset}: version {found}, this agent reads version {RECORD_VERSION}"
                )
            }
            DecodeError::UnknownKind { offset, kind } => {
                write!(f, "record at byte {offset}: unknown kind {kind:#06x}")
            }
            DecodeError::BodyTooShort {
                offset,
                kind,
                size,
                needed,
            } => {
                write!(
                    f,
                    "record at byte {offset}: {kind:?} needs {needed} bytes, record has {size}"
                )
            }
            DecodeError::BlobOutOfBounds {
                offset,
                kind,
                blob,
                blob_offset,
                len,
            } => write!(
                f,
                "record at byte {offset}: {kind:?} field {blob} ({len} bytes at {blob_offset}) lies outside the record tail"
            ),
            DecodeError::OddUtf16Length {
                offset,
                kind,
                blob,
                len,
            } => {
                write!(
                    f,
                    "record at byte {offset}: {kind:?} field {blob} is UTF-16 but has odd length {len}"
                )
            }
            DecodeError::PartialAddress {
                offset,
                kind,
                blob,
                len,
            } => write!(
                f,
                "record at byte {offset}: {kind:?} field {blob} holds 8-byte addresses but has length {len}"
            ),
            DecodeError::BlobLongerThanSource {
                offset,
                kind,
                blob,
                len,
                full_len,
            } => write!(
                f,
                "record at byte {offset}: {kind:?} field {blob} stores {len} bytes of a {full_len}-byte source"
            ),
            DecodeError::UnknownRegistryOperation { offset, operation } => write!(
                f,
                "record at byte {offset}: registry key operation {operation} is not one this agent knows (1 create key, 2 delete key, 3 delete value)"
            ),
            DecodeError::UnknownPipeOperation { offset, operation } => write!(
                f,
                "record at byte {offset}: named pipe operation {operation} is not one this agent knows (1 created, 2 connected)"
            ),
        }
    }
}

/// Raw bytes of one blob, checked against the record at decode time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RawField<'a> {
    /// The stored bytes (UTF-16LE for names, a binary SID for SIDs).
    pub bytes: &'a [u8],
    /// The source was longer than its cap; `bytes` is a prefix of it.
    pub truncated: bool,
}

impl<'a> RawField<'a> {
    /// The UTF-16 code units (a trailing odd byte, impossible after
    /// decoding, would be ignored).
    pub fn utf16(&self) -> impl Iterator<Item = u16> + 'a {
        self.bytes.chunks_exact(2).map(|pair| match pair {
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            _ => 0,
        })
    }

    /// Characters, with unpaired surrogates replaced by U+FFFD.
    pub fn chars(&self) -> impl Iterator<Item = char> + 'a {
        char::decode_utf16(self.utf16()).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// True if the field holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A decoded record of one kind: header and body copied out by value (so the
/// input needs no alignment), and the record's bytes for its blobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a, B> {
    pub header: RecordHeader,
    pub body: B,
    bytes: &'a [u8],
}

impl<'a, B: Body> Event<'a, B> {
    /// The bytes `blob` references. Blobs of `body` were bounds-checked by the
    /// decoder; any other blob out of bounds reads as empty.
    pub fn field(&self, blob: Blob) -> RawField<'a> {
        let start = usize::from(blob.offset);
        let end = start.saturating_add(usize::from(blob.len));
        RawField {
            bytes: self.bytes.get(start..end).unwrap_or_default(),
            truncated: blob.len < blob.full_len,
        }
    }

    /// The whole record as it was received.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<'a> Event<'a, ProcessCreate> {
    pub fn image_name(&self) -> RawField<'a> {
        self.field(self.body.image_name)
    }
    pub fn command_line(&self) -> RawField<'a> {
        self.field(self.body.command_line)
    }
    pub fn user_sid(&self) -> RawField<'a> {
        self.field(self.body.user_sid)
    }
    pub fn integrity_sid(&self) -> RawField<'a> {
        self.field(self.body.integrity_sid)
    }
    /// The primary token's logon session (`AuthenticationId`, see
    /// [`ProcessCreate::logon_id`]), or `None` when the driver could not
    /// query it ([`crate::PROCESS_FLAG_LOGON_ID`] clear).
    pub fn logon_id(&self) -> Option<u64> {
        (self.body.flags & crate::record::PROCESS_FLAG_LOGON_ID != 0).then_some(self.body.logon_id)
    }
}

impl<'a> Event<'a, ImageLoad> {
    pub fn image_name(&self) -> RawField<'a> {
        self.field(self.body.image_name)
    }
}

impl<'a> Event<'a, FileRename> {
    pub fn old_name(&self) -> RawField<'a> {
        self.field(self.body.old_name)
    }
    pub fn new_name(&self) -> RawField<'a> {
        self.field(self.body.new_name)
    }
}

impl<'a> Event<'a, RegistryKey> {
    pub fn key_name(&self) -> RawField<'a> {
        self.field(self.body.key_name)
    }
    pub fn value_name(&self) -> RawField<'a> {
        self.field(self.body.value_name)
    }
}

impl<'a> Event<'a, RegistryRename> {
    pub fn key_name(&self) -> RawField<'a> {
        self.field(self.body.key_name)
    }
    pub fn new_name(&self) -> RawField<'a> {
        self.field(self.body.new_name)
    }
}

impl<'a> Event<'a, RegistrySetValue> {
    pub fn key_name(&self) -> RawField<'a> {
        self.field(self.body.key_name)
    }
    pub fn value_name(&self) -> RawField<'a> {
        self.field(self.body.value_name)
    }
    pub fn data(&self) -> RawField<'a> {
        self.field(self.body.data)
    }
}

impl<'a> Event<'a, ProcessAccess> {
    /// The call trace's return addresses, innermost first.
    pub fn call_trace(&self) -> impl Iterator<Item = u64> + 'a {
        self.field(self.body.call_trace)
            .bytes
            .chunks_exact(8)
            .map(|c| c.iter().rev().fold(0u64, |v, b| v << 8 | u64::from(*b)))
    }
}

/// Gives the `name` blob of the file events one accessor.
macro_rules! file_name {
    ($($ty:ty),*) => {$(
        impl<'a> Event<'a, $ty> {
            pub fn name(&self) -> RawField<'a> {
                self.field(self.body.name)
            }
        }
    )*};
}
file_name!(
    FileCreate,
    FileWrite,
    FileDelete,
    FileCloseModified,
    NamedPipe
);

/// One decoded record.
#[expect(
    clippy::large_enum_variant,
    reason = "bodies are copied out by value so any alignment decodes; a Stats record (424 bytes) on the stack is cheap"
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    ProcessCreate(Event<'a, ProcessCreate>),
    ProcessExit(Event<'a, ProcessExit>),
    ImageLoad(Event<'a, ImageLoad>),
    FileCreate(Event<'a, FileCreate>),
    FileWrite(Event<'a, FileWrite>),
    FileRename(Event<'a, FileRename>),
    FileDelete(Event<'a, FileDelete>),
    FileCloseModified(Event<'a, FileCloseModified>),
    RegistrySetValue(Event<'a, RegistrySetValue>),
    RegistryKey(Event<'a, RegistryKey>),
    RegistryRename(Event<'a, RegistryRename>),
    ProcessAccess(Event<'a, ProcessAccess>),
    RemoteThread(Event<'a, RemoteThread>),
    NamedPipe(Event<'a, NamedPipe>),
    Lost(Event<'a, Lost>),
    Stats(Event<'a, DriverStats>),
}

impl<'a> Record<'a> {
    /// The record's header.
    pub fn header(&self) -> &RecordHeader {
        match self {
            Record::ProcessCreate(e) => &e.header,
            Record::ProcessExit(e) => &e.header,
            Record::ImageLoad(e) => &e.header,
            Record::FileCreate(e) => &e.header,
            Record::FileWrite(e) => &e.header,
            Record::FileRename(e) => &e.header,
            Record::FileDelete(e) => &e.header,
            Record::FileCloseModified(e) => &e.header,
            Record::RegistrySetValue(e) => &e.header,
            Record::RegistryKey(e) => &e.header,
            Record::RegistryRename(e) => &e.header,
            Record::ProcessAccess(e) => &e.header,
            Record::RemoteThread(e) => &e.header,
            Record::NamedPipe(e) => &e.header,
            Record::Lost(e) => &e.header,
            Record::Stats(e) => &e.header,
        }
    }

    /// The record's kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::ProcessCreate(_) => RecordKind::Event(EventKind::ProcessCreate),
            Record::ProcessExit(_) => RecordKind::Event(EventKind::ProcessExit),
            Record::ImageLoad(_) => RecordKind::Event(EventKind::ImageLoad),
            Record::FileCreate(_) => RecordKind::Event(EventKind::FileCreate),
            Record::FileWrite(_) => RecordKind::Event(EventKind::FileWrite),
            Record::FileRename(_) => RecordKind::Event(EventKind::FileRename),
            Record::FileDelete(_) => RecordKind::Event(EventKind::FileDelete),
            Record::FileCloseModified(_) => RecordKind::Event(EventKind::FileCloseModified),
            Record::RegistrySetValue(_) => RecordKind::Event(EventKind::RegistrySetValue),
            Record::RegistryKey(_) => RecordKind::Event(EventKind::RegistryKey),
            Record::RegistryRename(_) => RecordKind::Event(EventKind::RegistryRename),
            Record::ProcessAccess(_) => RecordKind::Event(EventKind::ProcessAccess),
            Record::RemoteThread(_) => RecordKind::Event(EventKind::RemoteThread),
            Record::NamedPipe(_) => RecordKind::Event(EventKind::NamedPipe),
            Record::Lost(_) => RecordKind::Lost,
            Record::Stats(_) => RecordKind::Stats,
        }
    }
}

/// Reads and checks a header at the front of `bytes`: enough bytes, a sane
/// size within `bytes`, the right version. Returns the header and the exact
/// record slice.
fn checked_header(bytes: &[u8]) -> Result<(RecordHeader, &[u8]), DecodeError> {
    let available = bytes.len();
    let (header, _) = RecordHeader::read_from_prefix(bytes).map_err(|_| DecodeError::Short {
        offset: 0,
        needed: HEADER_SIZE,
        available,
    })?;
    let size = usize::try_from(header.size).unwrap_or(usize::MAX);
    if size < HEADER_SIZE || size % RECORD_ALIGN != 0 || size > MAX_RECORD_SIZE || size > available
    {
        return Err(DecodeError::BadLength {
            offset: 0,
            size: header.size,
            available,
        });
    }
    if header.version != RECORD_VERSION {
        return Err(DecodeError::VersionMismatch {
            offset: 0,
            found: header.version,
        });
    }
    let record = bytes.get(..size).ok_or(DecodeError::BadLength {
        offset: 0,
        size: header.size,
        available,
    })?;
    Ok((header, record))
}

/// Decodes the body of kind `B` and checks every blob against the tail.
fn event<B: Body>(header: RecordHeader, record: &[u8]) -> Result<Event<'_, B>, DecodeError> {
    let kind = B::KIND;
    let body_end = HEADER_SIZE.saturating_add(core::mem::size_of::<B>());
    let body_bytes = record.get(HEADER_SIZE..).unwrap_or_default();
    let (body, _) = B::read_from_prefix(body_bytes).map_err(|_| DecodeError::BodyTooShort {
        offset: 0,
        kind,
        size: header.size,
        needed: body_end,
    })?;
    for (i, encoding) in B::BLOBS.iter().enumerate() {
        let Some(blob) = body.blob(i) else { continue };
        if blob.len > blob.full_len {
            return Err(DecodeError::BlobLongerThanSource {
                offset: 0,
                kind,
                blob: i,
                len: blob.len,
                full_len: blob.full_len,
            });
        }
        if blob.len == 0 {
            continue;
        }
        let start = usize::from(blob.offset);
        let end = start.saturating_add(usize::from(blob.len));
        if start < body_end || end > record.len() {
            return Err(DecodeError::BlobOutOfBounds {
                offset: 0,
                kind,
                blob: i,
                blob_offset: blob.offset,
                len: blob.len,
            });
        }
        if *encoding == BlobEncoding::Utf16 && blob.len % 2 != 0 {
            return Err(DecodeError::OddUtf16Length {
                offset: 0,
                kind,
                blob: i,
                len: blob.len,
            });
        }
        if *encoding == BlobEncoding::Addresses && blob.len % 8 != 0 {
            return Err(DecodeError::PartialAddress {
                offset: 0,
                kind,
                blob: i,
                len: blob.len,
            });
        }
    }
    Ok(Event {
        header,
        body,
        bytes: record,
    })
}

/// Decodes the one record at the front of `bytes` (trailing bytes are
/// ignored). Error offsets are 0-based from `bytes`.
pub fn decode_record(bytes: &[u8]) -> Result<Record<'_>, DecodeError> {
    let (header, record) = checked_header(bytes)?;
    let kind = RecordKind::try_from(header.kind).map_err(|e| DecodeError::UnknownKind {
        offset: 0,
        kind: e.0,
    })?;
    Ok(match kind {
        RecordKind::Event(EventKind::ProcessCreate) => {
            Record::ProcessCreate(event(header, record)?)
        }
        RecordKind::Event(EventKind::ProcessExit) => Record::ProcessExit(event(header, record)?),
        RecordKind::Event(EventKind::ImageLoad) => Record::ImageLoad(event(header, record)?),
        RecordKind::Event(EventKind::FileCreate) => Record::FileCreate(event(header, record)?),
        RecordKind::Event(EventKind::FileWrite) => Record::FileWrite(event(header, record)?),
        RecordKind::Event(EventKind::FileRename) => Record::FileRename(event(header, record)?),
        RecordKind::Event(EventKind::FileDelete) => Record::FileDelete(event(header, record)?),
        RecordKind::Event(EventKind::FileCloseModified) => {
            Record::FileCloseModified(event(header, record)?)
        }
        RecordKind::Event(EventKind::RegistrySetValue) => {
            Record::RegistrySetValue(event(header, record)?)
        }
        RecordKind::Event(EventKind::RegistryKey) => {
            let event: Event<'_, RegistryKey> = event(header, record)?;
            let operation = event.body.operation;
            if !(REGISTRY_OP_CREATE_KEY..=REGISTRY_OP_DELETE_VALUE).contains(&operation) {
                return Err(DecodeError::UnknownRegistryOperation {
                    offset: 0,
                    operation,
                });
            }
            Record::RegistryKey(event)
        }
        RecordKind::Event(EventKind::RegistryRename) => {
            Record::RegistryRename(event(header, record)?)
        }
        RecordKind::Event(EventKind::ProcessAccess) => {
            Record::ProcessAccess(event(header, record)?)
        }
        RecordKind::Event(EventKind::RemoteThread) => Record::RemoteThread(event(header, record)?),
        RecordKind::Event(EventKind::NamedPipe) => {
            let event: Event<'_, NamedPipe> = event(header, record)?;
            let operation = event.body.operation;
            if !(PIPE_OP_CREATED..=PIPE_OP_CONNECTED).contains(&operation) {
                return Err(DecodeError::UnknownPipeOperation {
                    offset: 0,
                    operation,
                });
            }
            Record::NamedPipe(event)
        }
        RecordKind::Lost => Record::Lost(event(header, record)?),
        RecordKind::Stats => Record::Stats(event(header, record)?),
    })
}

/// Iterator over the records of a READ batch: records back to back, each at
/// a multiple of 8 bytes.
///
/// A record whose size is sound but whose content is not (unknown kind, bad
/// blob) yields its error and iteration continues with the next record. A
/// record whose size cannot be trusted yields its error and ends iteration:
/// nothing after it can be located.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    buf: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Records<'a> {
    /// Records of one batch.
    pub fn new(buf: &'a [u8]) -> Self {
        Records {
            buf,
            offset: 0,
            done: false,
        }
    }

    /// Offset of the next record to be decoded.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.buf.get(self.offset..).unwrap_or_default();
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let at = self.offset;
        match checked_header(rest) {
            Err(error) => {
                self.done = true;
                Some(Err(error.at(at)))
            }
            Ok((header, _)) => {
                // `checked_header` bounded `size` by `rest.len()`.
                self.offset = at.saturating_add(header.size as usize);
                Some(decode_record(rest).map_err(|e| e.at(at)))
            }
        }
    }
}
