//! Where events go: JSON lines to stdout, to a size-rotated file, to a
//! collector over TLS ([`network`]: RELP or syslog, with a spool on disk),
//! to several of these at once ([`Fanout`]), or nowhere (benchmarks:
//! serialized, then discarded).

pub mod network;
pub mod relp;
pub mod spool;
pub mod syslog;
pub mod tls;

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
    /// Delivery figures of the sinks that deliver over a network (1004).
    fn figures(&self) -> Vec<SinkFigures> {
        Vec::new()
    }
}

/// What a network sink did with the messages it was given, since start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkFigures {
    /// `relp+tls://HOST:PORT` or `syslog+tls://HOST:PORT`.
    pub name: String,
    /// Messages given to the sink.
    pub produced: u64,
    /// Messages written to a connection (first time).
    pub sent: u64,
    /// Messages the collector acknowledged (RELP only).
    pub acknowledged: u64,
    /// Messages that went to the spool.
    pub spooled: u64,
    /// Messages neither memory nor the spool could take (reported by 1007).
    pub dropped: u64,
    /// Messages sent again after a reconnect (RELP: unacknowledged ones).
    pub resent: u64,
    /// Damaged spool segments skipped (each reported by a 1003).
    pub spool_corrupt: u64,
    /// Connection state: connecting, connected, disconnected (why), closed.
    pub state: String,
    pub last_error: Option<String>,
}

impl SinkFigures {
    /// `NAME sent=… acknowledged=… spooled=… dropped=… resent=… state=…`.
    pub fn text(&self) -> String {
        format!(
            "{} produced={} sent={} acknowledged={} spooled={} dropped={} resent={} spool_corrupt={} state={}",
            self.name,
            self.produced,
            self.sent,
            self.acknowledged,
            self.spooled,
            self.dropped,
            self.resent,
            self.spool_corrupt,
            self.state
        )
    }
}

/// Every event to each of several sinks, in order. A sink that fails does
/// not stop the others; the first error is returned after all were tried.
pub struct Fanout {
    pub sinks: Vec<Box<dyn Sink>>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fanout({} sinks)", self.sinks.len())
    }
}

impl Fanout {
    fn each(&mut self, mut f: impl FnMut(&mut dyn Sink) -> io::Result<()>) -> io::Result<()> {
        let mut first = Ok(());
        for sink in &mut self.sinks {
            if let Err(error) = f(sink.as_mut())
                && first.is_ok()
            {
                first = Err(error);
            }
        }
        first
    }
}

impl Sink for Fanout {
    fn event(&mut self, event: &SysmonEvent) -> io::Result<()> {
        self.each(|s| s.event(event))
    }
    fn line(&mut self, json: &str) -> io::Result<()> {
        self.each(|s| s.line(json))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.each(|s| s.flush())
    }
    fn figures(&self) -> Vec<SinkFigures> {
        self.sinks.iter().flat_map(|s| s.figures()).collect()
    }
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

    /// Lines in memory, and figures as a network sink would report them.
    struct Collector {
        lines: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
        figures: Vec<SinkFigures>,
    }

    impl Sink for Collector {
        fn event(&mut self, event: &SysmonEvent) -> io::Result<()> {
            self.lines.borrow_mut().push(event.to_json());
            Ok(())
        }
        fn line(&mut self, json: &str) -> io::Result<()> {
            self.lines.borrow_mut().push(json.to_owned());
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn figures(&self) -> Vec<SinkFigures> {
            self.figures.clone()
        }
    }

    /// Every sink of a fanout gets every event, and the 1004 event carries
    /// each network sink's figures.
    #[test]
    fn a_fanout_feeds_every_sink_and_1004_reports_each_network_sink() {
        let lines = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let figures = |name: &str, sent| SinkFigures {
            name: name.into(),
            produced: 9,
            sent,
            acknowledged: 4,
            spooled: 2,
            dropped: 1,
            resent: 3,
            state: "connected".into(),
            ..SinkFigures::default()
        };
        let mut fanout = Fanout {
            sinks: vec![
                Box::new(Collector {
                    lines: lines.clone(),
                    figures: vec![figures("relp+tls://a:1", 5)],
                }),
                Box::new(Collector {
                    lines: lines.clone(),
                    figures: vec![figures("syslog+tls://b:2", 7)],
                }),
            ],
        };
        let mut pipeline = crate::pipeline::Pipeline::new(crate::pipeline::Config::default());
        pipeline
            .driver_stats(&ringside_wire::DriverStats::default(), &mut fanout)
            .expect("emit");
        let lines = lines.borrow();
        assert_eq!(lines.len(), 2, "each sink got the 1004");
        let event: serde_json::Value = serde_json::from_str(&lines[0]).expect("JSON");
        assert_eq!(event["EventID"], 1004);
        assert_eq!(
            event["EventData"]["Sinks"],
            "relp+tls://a:1 produced=9 sent=5 acknowledged=4 spooled=2 dropped=1 resent=3 spool_corrupt=0 state=connected; \
             syslog+tls://b:2 produced=9 sent=7 acknowledged=4 spooled=2 dropped=1 resent=3 spool_corrupt=0 state=connected"
        );
    }

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
