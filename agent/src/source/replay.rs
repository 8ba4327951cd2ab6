//! Streaming reader of replay files (`crates/wire/src/replay.rs` format).
//!
//! Reads one frame at a time into a reused buffer, so memory is bounded by
//! the largest frame the format allows ([`MAX_FRAME_LEN`]) whatever the file
//! size; a frame header claiming more is rejected before anything is
//! allocated, and a payload is read incrementally so a truncated file cannot
//! make the reader reserve the claimed length up front.
//!
//! Problems are reported with the byte offset of the frame in the file. A
//! frame of unknown kind is skipped (its length is still trustworthy); a
//! frame whose length cannot be trusted, or a truncated one, ends the file.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use ringside_wire::replay::{FileHeader, FrameHeader, FrameKind, MAX_FRAME_LEN, ReplayError};
use zerocopy::FromBytes;

const FILE_HEADER_LEN: usize = core::mem::size_of::<FileHeader>();
const FRAME_HEADER_LEN: usize = core::mem::size_of::<FrameHeader>();

/// A problem reading a replay file.
#[derive(Debug)]
pub enum FrameError {
    /// The bytes are not what the format allows (offset inside).
    Format(ReplayError),
    /// The operating system failed to read at `offset`.
    Io { offset: u64, error: io::Error },
}

impl FrameError {
    /// File offset of the problem.
    pub fn offset(&self) -> u64 {
        match self {
            FrameError::Format(error) => error.offset() as u64,
            FrameError::Io { offset, .. } => *offset,
        }
    }

    /// A short stable name for counting.
    pub fn class(&self) -> &'static str {
        match self {
            FrameError::Format(error) => match error {
                ReplayError::ShortHeader { .. } => "short_file_header",
                ReplayError::BadMagic => "bad_magic",
                ReplayError::FormatVersion { .. } => "format_version",
                ReplayError::HeaderSize { .. } => "header_size",
                ReplayError::AbiVersion { .. } => "abi_version",
                ReplayError::TruncatedFrameHeader { .. } => "truncated_frame_header",
                ReplayError::UnknownFrameKind { .. } => "unknown_frame_kind",
                ReplayError::FrameTooLarge { .. } => "frame_too_large",
                ReplayError::TruncatedFrame { .. } => "truncated_frame",
            },
            FrameError::Io { .. } => "io",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Format(error) => error.fmt(f),
            FrameError::Io { offset, error } => write!(f, "byte {offset}: read failed: {error}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// One frame, borrowed from the reader's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct FrameRef<'a> {
    pub kind: FrameKind,
    pub timestamp: u64,
    /// File offset of the frame header; the payload starts 16 bytes later.
    pub offset: u64,
    pub payload: &'a [u8],
}

impl FrameRef<'_> {
    /// File offset of the first payload byte.
    pub fn payload_offset(&self) -> u64 {
        self.offset + FRAME_HEADER_LEN as u64
    }
}

/// A streaming replay reader.
#[derive(Debug)]
pub struct ReplayReader<R> {
    input: R,
    offset: u64,
    payload: Vec<u8>,
    header: FileHeader,
    done: bool,
}

impl ReplayReader<BufReader<File>> {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self, FrameError> {
        let file = File::open(path).map_err(|error| FrameError::Io { offset: 0, error })?;
        ReplayReader::new(BufReader::with_capacity(256 * 1024, file))
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl<R: Read> ReplayReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut input: R) -> Result<Self, FrameError> {
        let mut bytes = [0u8; FILE_HEADER_LEN];
        let got = read_full(&mut input, &mut bytes)
            .map_err(|error| FrameError::Io { offset: 0, error })?;
        let header = FileHeader::parse(&bytes[..got]).map_err(FrameError::Format)?;
        Ok(ReplayReader {
            input,
            offset: FILE_HEADER_LEN as u64,
            payload: Vec::new(),
            header,
            done: false,
        })
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Bytes consumed so far (the offset of the next frame).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn fail(&mut self, error: FrameError) -> Option<Result<FrameRef<'_>, FrameError>> {
        self.done = true;
        Some(Err(error))
    }

    /// The next frame, or a problem with it; `None` at the end of the file.
    /// After an unknown frame kind the reader continues; after any other
    /// problem it ends.
    pub fn next_frame(&mut self) -> Option<Result<FrameRef<'_>, FrameError>> {
        if self.done {
            return None;
        }
        let at = self.offset;
        let at_usize = usize::try_from(at).unwrap_or(usize::MAX);
        let mut raw = [0u8; FRAME_HEADER_LEN];
        let got = match read_full(&mut self.input, &mut raw) {
            Ok(got) => got,
            Err(error) => return self.fail(FrameError::Io { offset: at, error }),
        };
        if got == 0 {
            self.done = true;
            return None;
        }
        let Ok(header) = FrameHeader::read_from_bytes(&raw[..got]) else {
            return self.fail(FrameError::Format(ReplayError::TruncatedFrameHeader {
                offset: at_usize,
                available: got,
            }));
        };
        // The length decides whether anything after this frame can be found,
        // so it is checked before the kind.
        if header.len > MAX_FRAME_LEN {
            return self.fail(FrameError::Format(ReplayError::FrameTooLarge {
                offset: at_usize,
                len: header.len,
            }));
        }
        self.payload.clear();
        let read = (&mut self.input)
            .take(u64::from(header.len))
            .read_to_end(&mut self.payload);
        let got = match read {
            Ok(got) => got,
            Err(error) => return self.fail(FrameError::Io { offset: at, error }),
        };
        if got < header.len as usize {
            return self.fail(FrameError::Format(ReplayError::TruncatedFrame {
                offset: at_usize,
                len: header.len,
                available: got,
            }));
        }
        let padding = header.padded_len() - header.len as usize;
        let mut pad = [0u8; 8];
        let pad_got = match read_full(&mut self.input, &mut pad[..padding]) {
            Ok(n) => n,
            Err(error) => return self.fail(FrameError::Io { offset: at, error }),
        };
        self.offset = at + (FRAME_HEADER_LEN + got + pad_got) as u64;
        match FrameHeader::parse(&raw, at_usize) {
            Ok((_, kind)) => Some(Ok(FrameRef {
                kind,
                timestamp: header.timestamp,
                offset: at,
                payload: &self.payload,
            })),
            // Unknown kind: reported, and the reader goes on with the next frame.
            Err(error) => Some(Err(FrameError::Format(error))),
        }
    }
}
