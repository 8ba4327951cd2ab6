//! Writes replay files: the device source's `--record`, and test and
//! benchmark fixtures.

use std::io::{self, Write};

use ringside_wire::ioctl::StatsResponse;
use ringside_wire::replay::{FileHeader, FrameKind, MAX_FRAME_LEN, frame_header, padding};
use zerocopy::IntoBytes;

/// A replay-file writer over any byte sink.
#[derive(Debug)]
pub struct ReplayWriter<W: Write> {
    out: W,
    /// Bytes written so far.
    pub written: u64,
}

impl<W: Write> ReplayWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, created: u64) -> io::Result<Self> {
        out.write_all(FileHeader::new(created).as_bytes())?;
        Ok(ReplayWriter { out, written: 32 })
    }

    /// Appends one frame. Payloads over [`MAX_FRAME_LEN`] are refused (a
    /// reader would reject them).
    pub fn frame(&mut self, kind: FrameKind, timestamp: u64, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|len| *len <= MAX_FRAME_LEN)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "frame payload exceeds MAX_FRAME_LEN",
                )
            })?;
        self.out.write_all(&frame_header(kind, len, timestamp))?;
        self.out.write_all(payload)?;
        let pad = padding(payload.len());
        self.out.write_all(pad)?;
        self.written += (16 + payload.len() + pad.len()) as u64;
        Ok(())
    }

    /// Appends a batch exactly as one READ returned it.
    pub fn batch(&mut self, timestamp: u64, batch: &[u8]) -> io::Result<()> {
        self.frame(FrameKind::Batch, timestamp, batch)
    }

    /// Appends a STATS snapshot.
    pub fn stats(&mut self, timestamp: u64, stats: &StatsResponse) -> io::Result<()> {
        self.frame(FrameKind::Stats, timestamp, stats.as_bytes())
    }

    /// Pushes buffered frames out, so a recording is readable while the
    /// agent runs and little is lost if it is killed.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
