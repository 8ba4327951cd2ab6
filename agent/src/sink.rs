//! Where events go: JSON lines to stdout, to a size-rotated file, or nowhere
//! (benchmarks: serialized, then discarded).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::sysmon::SysmonEvent;

/// A destination for events.
pub trait Sink {
    /// Writes one event.
    fn event(&mut self, event: &SysmonEvent) -> io::Result<()>;
    /// Writes a pre-serialized JSON object as one line (alerts).
    fn line(&mut self, json: &str) -> io::Result<()>;
    /// Pushes buffered output out.
    fn flush(&mut self) -> io::Result<()>;
}

/// JSON lines to any writer (stdout, a test buffer).
#[derive(Debug)]
pub struct JsonLines<W: Write> {
    out: BufWriter<W>,
    line: Vec<u8>,
}

impl<W: Write> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines {
            out: BufWriter::with_capacity(64 * 1024, out),
            line: Vec::with_capacity(1024),
        }
    }

    /// The inner writer, after flushing.
    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn event(&mut self, event: &SysmonEvent) -> io::Result<()> {
        self.line.clear();
        event.write_json(&mut self.line);
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }
    fn line(&mut self, json: &str) -> io::Result<()> {
        self.out.write_all(json.as_bytes())?;
        self.out.write_all(b"\n")
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Serializes every event into a reused buffer and drops it: measures the
/// JSON cost without the I/O.
#[derive(Debug, Default)]
pub struct Discard {
    buf: Vec<u8>,
    /// Bytes that would have been written.
    pub bytes: u64,
    pub events: u64,
}

impl Sink for Discard {
    fn event(&mut self, event: &SysmonEvent) -> io::Result<()> {
        self.buf.clear();
        event.write_json(&mut self.buf);
        self.bytes += self.buf.len() as u64 + 1;
        self.events += 1;
        Ok(())
    }
    fn line(&mut self, json: &str) -> io::Result<()> {
        self.bytes += json.len() as u64 + 1;
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// JSON lines to `PATH`, rotated when it would exceed `rotate_bytes`:
/// `PATH` → `PATH.1` → … → `PATH.K`, the oldest beyond `keep` deleted.
/// A single line longer than the limit still goes into a file of its own.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    rotate_bytes: u64,
    keep: usize,
    file: BufWriter<File>,
    written: u64,
    line: Vec<u8>,
    /// Rotations done.
    pub rotations: u64,
}

impl RotatingFile {
    /// Opens (appends to) `path`.
    pub fn open(path: &Path, rotate_bytes: u64, keep: usize) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_owned(),
            rotate_bytes: rotate_bytes.max(1),
            keep,
            file: BufWriter::with_capacity(64 * 1024, file),
            written,
            line: Vec::with_capacity(1024),
            rotations: 0,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let oldest = self.rotated(self.keep);
            if oldest.exists() {
                std::fs::remove_file(&oldest)?;
            }
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.file = BufWriter::with_capacity(64 * 1024, file);
        self.written = 0;
        self.rotations += 1;
        Ok(())
    }

    fn write_line(&mut self) -> io::Result<()> {
        self.line.push(b'\n');
        let len = self.line.len() as u64;
        if self.written > 0 && self.written + len > self.rotate_bytes {
            self.rotate()?;
        }
        self.file.write_all(&self.line)?;
        self.written += len;
        Ok(())
    }
}

impl Sink for RotatingFile {
    fn event(&mut self, event: &SysmonEvent) -> io::Result<()> {
        self.line.clear();
        event.write_json(&mut self.line);
        self.write_line()
    }
    fn line(&mut self, json: &str) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(json.as_bytes());
        self.write_line()
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysmon::EventType;

    #[test]
    fn rotates_by_size_and_keeps_k_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.jsonl");
        let mut sink = RotatingFile::open(&path, 200, 2).expect("open");
        let mut event = SysmonEvent::new(EventType::ProcessTerminate);
        for pid in 0..20u32 {
            event.set_named("ProcessId", &pid.to_string());
            sink.event(&event).expect("write");
        }
        sink.flush().expect("flush");
        assert!(sink.rotations >= 3, "{} rotations", sink.rotations);
        let mut lines = 0;
        for p in [path.clone(), sink.rotated(1), sink.rotated(2)] {
            let text = std::fs::read_to_string(&p).expect("kept file exists");
            assert!(text.len() <= 200, "{} is {} bytes", p.display(), text.len());
            for line in text.lines() {
                serde_json::from_str::<serde_json::Value>(line).expect("whole JSON lines");
                lines += 1;
            }
        }
        assert!(!sink.rotated(3).exists());
        // The newest events are in PATH: the last pid written is there.
        assert!(
            std::fs::read_to_string(&path)
                .expect("read")
                .contains("\"ProcessId\":19")
        );
        assert!(lines < 20, "older files were dropped");
    }
}
