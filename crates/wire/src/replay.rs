//! The replay file format: raw READ batches as the device delivered them.
//!
//! The agent's `--record` on Windows and the kernel model's demo on Linux
//! write it; `ringside-agent replay` reads it. A file is a [`FileHeader`]
//! followed by frames; each frame is a [`FrameHeader`], `len` payload bytes
//! and zero padding to a multiple of 8:
//!
//! | frame kind | payload |
//! |---|---|
//! | [`FrameKind::Batch`] | the exact bytes one READ returned (records, see [`crate::Records`]) |
//! | [`FrameKind::VolumeMap`] | UTF-8 lines `\Device\HarddiskVolume3<TAB>C:` mapping NT device names to drive letters, as seen on the recording machine |
//! | [`FrameKind::Stats`] | a [`crate::ioctl::StatsResponse`] taken at that time |
//!
//! All integers are little-endian (the structs are `repr(C)` on x86-64).
//! Readers must treat the file as hostile: every header is checked and every
//! problem is a [`ReplayError`] with the byte offset where it was found.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// First 8 bytes of every replay file.
pub const MAGIC: [u8; 8] = *b"RSREPLAY";
/// Version of this file format (independent of the record ABI, which the
/// header also carries).
pub const FORMAT_VERSION: u32 = 1;
/// Largest frame payload a reader accepts (a READ buffer is far smaller);
/// bounds what a hostile file can make a reader allocate.
pub const MAX_FRAME_LEN: u32 = 16 * 1024 * 1024;

/// Start of a replay file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FileHeader {
    pub magic: [u8; 8],
    pub format_version: u32,
    /// `size_of::<FileHeader>()`; frames start here.
    pub header_size: u32,
    /// [`crate::ABI_VERSION`] of the records inside.
    pub abi_version: u32,
    pub _pad: u32,
    /// When recording started: 100 ns units since 1601-01-01 UTC.
    pub created: u64,
}

/// Header of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct FrameHeader {
    /// A [`FrameKind`] value.
    pub kind: u32,
    /// Payload bytes (padding not included).
    pub len: u32,
    /// When the frame was captured: 100 ns units since 1601-01-01 UTC.
    pub timestamp: u64,
}

const _: () = assert!(core::mem::size_of::<FileHeader>() == 32);
const _: () = assert!(core::mem::size_of::<FrameHeader>() == 16);

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum FrameKind {
    Batch = 1,
    VolumeMap = 2,
    Stats = 3,
}

impl TryFrom<u32> for FrameKind {
    type Error = u32;
    fn try_from(value: u32) -> Result<Self, u32> {
        match value {
            1 => Ok(FrameKind::Batch),
            2 => Ok(FrameKind::VolumeMap),
            3 => Ok(FrameKind::Stats),
            other => Err(other),
        }
    }
}

/// What was wrong with a replay file, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// The file is shorter than its header.
    ShortHeader { len: usize },
    /// The file does not start with [`MAGIC`].
    BadMagic,
    /// A format version this reader does not know.
    FormatVersion { found: u32 },
    /// The header size field is not what this version defines.
    HeaderSize { found: u32 },
    /// The records inside are of another ABI version.
    AbiVersion { found: u32 },
    /// Fewer bytes remain than a frame header needs.
    TruncatedFrameHeader { offset: usize, available: usize },
    /// The frame kind is unknown.
    UnknownFrameKind { offset: usize, kind: u32 },
    /// The payload is larger than [`MAX_FRAME_LEN`].
    FrameTooLarge { offset: usize, len: u32 },
    /// The payload runs past the end of the file.
    TruncatedFrame {
        offset: usize,
        len: u32,
        available: usize,
    },
}

impl ReplayError {
    /// Byte offset in the file where the problem is.
    pub fn offset(&self) -> usize {
        match *self {
            ReplayError::ShortHeader { .. }
            | ReplayError::BadMagic
            | ReplayError::FormatVersion { .. }
            | ReplayError::HeaderSize { .. }
            | ReplayError::AbiVersion { .. } => 0,
            ReplayError::TruncatedFrameHeader { offset, .. }
            | ReplayError::UnknownFrameKind { offset, .. }
            | ReplayError::FrameTooLarge { offset, .. }
            | ReplayError::TruncatedFrame { offset, .. } => offset,
        }
    }
}

impl core::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ReplayError::ShortHeader { len } => {
                write!(f, "file has {len} bytes, a replay header needs 32")
            }
            ReplayError::BadMagic => write!(f, "not a ringside replay file (bad magic at byte 0)"),
            ReplayError::FormatVersion { found } => {
                write!(
                    f,
                    "replay format version {found}, this agent reads version {FORMAT_VERSION}"
                )
            }
            ReplayError::HeaderSize { found } => {
                write!(f, "replay header size {found}, expected 32")
            }
            ReplayError::AbiVersion { found } => {
                write!(
                    f,
                    "records are ABI version {found}, this agent reads version {}",
                    crate::ABI_VERSION
                )
            }
            ReplayError::TruncatedFrameHeader { offset, available } => {
                write!(
                    f,
                    "byte {offset}: frame header needs 16 bytes, {available} left"
                )
            }
            ReplayError::UnknownFrameKind { offset, kind } => {
                write!(f, "byte {offset}: unknown frame kind {kind}")
            }
            ReplayError::FrameTooLarge { offset, len } => {
                write!(
                    f,
                    "byte {offset}: frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit"
                )
            }
            ReplayError::TruncatedFrame {
                offset,
                len,
                available,
            } => {
                write!(
                    f,
                    "byte {offset}: frame of {len} bytes, only {available} left in the file"
                )
            }
        }
    }
}

impl FileHeader {
    /// A header for a new recording.
    pub fn new(created: u64) -> Self {
        FileHeader {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            header_size: core::mem::size_of::<FileHeader>() as u32,
            abi_version: crate::ABI_VERSION,
            _pad: 0,
            created,
        }
    }

    /// Reads and checks the header at the front of a file.
    pub fn parse(bytes: &[u8]) -> Result<FileHeader, ReplayError> {
        let (header, _) = FileHeader::read_from_prefix(bytes)
            .map_err(|_| ReplayError::ShortHeader { len: bytes.len() })?;
        if header.magic != MAGIC {
            return Err(ReplayError::BadMagic);
        }
        if header.format_version != FORMAT_VERSION {
            return Err(ReplayError::FormatVersion {
                found: header.format_version,
            });
        }
        if header.header_size as usize != core::mem::size_of::<FileHeader>() {
            return Err(ReplayError::HeaderSize {
                found: header.header_size,
            });
        }
        if header.abi_version != crate::ABI_VERSION {
            return Err(ReplayError::AbiVersion {
                found: header.abi_version,
            });
        }
        Ok(header)
    }
}

impl FrameHeader {
    /// Reads and checks a frame header found at file offset `offset`
    /// (`bytes` starts at that offset). Does not check that the payload is
    /// present: streaming readers check that when they read it.
    pub fn parse(bytes: &[u8], offset: usize) -> Result<(FrameHeader, FrameKind), ReplayError> {
        let (header, _) = FrameHeader::read_from_prefix(bytes).map_err(|_| {
            ReplayError::TruncatedFrameHeader {
                offset,
                available: bytes.len(),
            }
        })?;
        let kind = FrameKind::try_from(header.kind)
            .map_err(|kind| ReplayError::UnknownFrameKind { offset, kind })?;
        if header.len > MAX_FRAME_LEN {
            return Err(ReplayError::FrameTooLarge {
                offset,
                len: header.len,
            });
        }
        Ok((header, kind))
    }

    /// Bytes the frame occupies after its header: payload plus padding.
    pub fn padded_len(&self) -> usize {
        (self.len as usize).next_multiple_of(8)
    }
}

/// One frame of a replay file held in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: FrameKind,
    pub timestamp: u64,
    pub payload: &'a [u8],
    /// File offset of the frame header.
    pub offset: usize,
}

/// Iterator over the frames of a replay file held in memory. After an error
/// nothing further can be located, so iteration ends.
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    bytes: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Frames<'a> {
    /// Checks the file header and iterates over the frames after it.
    pub fn new(bytes: &'a [u8]) -> Result<(FileHeader, Frames<'a>), ReplayError> {
        let header = FileHeader::parse(bytes)?;
        Ok((
            header,
            Frames {
                bytes,
                offset: core::mem::size_of::<FileHeader>(),
                done: false,
            },
        ))
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.bytes.get(self.offset..).unwrap_or_default();
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let at = self.offset;
        let result = FrameHeader::parse(rest, at).and_then(|(header, kind)| {
            let body = rest
                .get(core::mem::size_of::<FrameHeader>()..)
                .unwrap_or_default();
            let payload = body
                .get(..header.len as usize)
                .ok_or(ReplayError::TruncatedFrame {
                    offset: at,
                    len: header.len,
                    available: body.len(),
                })?;
            // A final frame may omit its padding.
            let advance = core::mem::size_of::<FrameHeader>()
                .saturating_add(header.padded_len().min(body.len()));
            self.offset = at.saturating_add(advance);
            Ok(Frame {
                kind,
                timestamp: header.timestamp,
                payload,
                offset: at,
            })
        });
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

/// The header to write before a frame's payload. The writer appends the
/// payload and then [`padding`] zero bytes.
pub fn frame_header(kind: FrameKind, len: u32, timestamp: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    let header = FrameHeader {
        kind: kind as u32,
        len,
        timestamp,
    };
    out.copy_from_slice(header.as_bytes());
    out
}

/// Zero bytes to write after a payload of `len` bytes.
pub fn padding(len: usize) -> &'static [u8] {
    const ZEROS: [u8; 8] = [0; 8];
    ZEROS
        .get(..len.next_multiple_of(8).wrapping_sub(len))
        .unwrap_or_default()
}
