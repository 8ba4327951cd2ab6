//! The on-disk spool of a network sink: messages the collector has not
//! acknowledged yet, bounded in bytes, kept across restarts.
//!
//! Layout: `DIR/NNNNNNNNNNNNNNNNNNNN.seg` segment files, read in ascending
//! order, plus `DIR/cursor` (segment and offset of the first record not yet
//! delivered). A record is `len: u32 LE, crc32(payload): u32 LE, payload`.
//! Records are appended to the newest segment with one write each; a new
//! process always starts a new segment, so segments left by an earlier
//! process are never written again and a torn tail in one of them is a
//! crash's, not a write in progress.
//!
//! A record whose length runs past its segment's end or whose checksum does
//! not match ends that segment: the rest of it cannot be framed reliably, so
//! it is reported ([`Corrupt`]) and skipped, never returned.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes of a record's header (length and checksum).
const HEADER: u64 = 8;
/// Largest record accepted: a message is one event line, far below this.
pub const MAX_RECORD: u32 = 16 << 20;
/// Bytes of the bound kept for the sink's own drop reports (1007).
pub const RESERVE: u64 = 16 << 10;
/// Bytes of a record's header, as the sink sizes what fits.
pub const RECORD_HEADER: u64 = HEADER;
/// The first segment index of a new spool. Segments written in front of
/// the others at shutdown ([`Spool::prepend`]) count down from there.
const FIRST_SEGMENT: u64 = 1 << 40;

/// Where a record ends: what [`Spool::commit`] is given once it is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// Part of a segment that could not be read and was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corrupt {
    pub file: PathBuf,
    pub offset: u64,
    /// Bytes skipped (the rest of the segment).
    pub skipped: u64,
    pub reason: String,
}

/// Why the spool could not take a record.
#[derive(Debug)]
pub enum AppendError {
    /// `max_bytes` would be exceeded: the record is dropped by the caller.
    Full,
    Io(io::Error),
}

/// The spool directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Segment indices on disk, ascending; the last one is written to.
    segments: VecDeque<u64>,
    /// Bytes of all segment files.
    bytes: u64,
    writer: Option<(u64, File, u64)>,
    /// Next record to read (ahead of `committed` by what is in flight).
    read: Position,
    /// Buffered: a drain reads many small records in a row.
    reader: Option<(u64, BufReader<File>, u64)>,
    /// First record not yet delivered, as on disk in `cursor`.
    committed: Position,
    /// Damage found while reading, for the sink to report.
    pub corrupt: Vec<Corrupt>,
}

impl Spool {
    /// Opens (creates) the spool in `dir`, keeping what an earlier process
    /// left there.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut indices = Vec::new();
        let mut bytes = 0;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(index) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            bytes += entry.metadata()?.len();
            indices.push(index);
        }
        indices.sort_unstable();
        let committed = read_cursor(&dir.join("cursor")).unwrap_or(Position {
            segment: indices.first().copied().unwrap_or(FIRST_SEGMENT),
            offset: 0,
        });
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            // Small enough that delivered records free space soon, large
            // enough that a segment is not a file per handful of events.
            segment_bytes: (max_bytes / 16).clamp(64 << 10, 64 << 20),
            segments: indices.into_iter().collect(),
            bytes,
            writer: None,
            read: committed,
            reader: None,
            committed,
            corrupt: Vec::new(),
        };
        // Segments wholly before the cursor were delivered (the process
        // stopped before deleting them).
        while let Some(&first) = spool.segments.front() {
            if first >= committed.segment {
                break;
            }
            spool.remove_front()?;
        }
        Ok(spool)
    }

    fn path(&self, segment: u64) -> PathBuf {
        self.dir.join(format!("{segment:020}.seg"))
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// True if there is no record left to read.
    pub fn is_drained(&mut self) -> bool {
        match self.segments.back() {
            None => true,
            Some(&last) => {
                self.read.segment > last
                    || (self.read.segment == last
                        && self.read.offset >= self.segment_len(last).unwrap_or(0))
            }
        }
    }

    fn segment_len(&self, segment: u64) -> io::Result<u64> {
        match &self.writer {
            Some((index, _, len)) if *index == segment => Ok(*len),
            _ => Ok(fs::metadata(self.path(segment))?.len()),
        }
    }

    /// Appends one record, leaving [`RESERVE`] bytes free.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), AppendError> {
        self.append_within(payload, self.max_bytes.saturating_sub(RESERVE))
    }

    /// Appends one of the sink's own reports, which may use the reserve:
    /// a full spool still has room to say what it dropped.
    pub fn append_report(&mut self, payload: &[u8]) -> Result<(), AppendError> {
        self.append_within(payload, self.max_bytes)
    }

    /// Bytes a prepend may still use (the reserve excluded).
    pub fn free(&self) -> u64 {
        self.max_bytes
            .saturating_sub(RESERVE)
            .saturating_sub(self.bytes)
    }

    fn append_within(&mut self, payload: &[u8], limit: u64) -> Result<(), AppendError> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&n| n <= MAX_RECORD)
            .ok_or(AppendError::Full)?;
        let size = HEADER + u64::from(len);
        if self.bytes + size > limit {
            return Err(AppendError::Full);
        }
        let rotate = match &self.writer {
            Some((_, _, written)) => *written > 0 && written + size > self.segment_bytes,
            None => true,
        };
        if rotate {
            // A new process never appends to an old segment (see the module
            // comment), so the first append opens a fresh one too.
            let index = self.segments.back().map_or(FIRST_SEGMENT, |last| last + 1);
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(self.path(index))
                .map_err(AppendError::Io)?;
            self.segments.push_back(index);
            self.writer = Some((index, file, 0));
        }
        let Some((_, file, written)) = &mut self.writer else {
            return Err(AppendError::Io(io::Error::other("no spool segment open")));
        };
        let mut record = Vec::with_capacity(size as usize);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        record.extend_from_slice(payload);
        if let Err(error) = file.write_all(&record) {
            // Leave no partial record behind for the reader to trip on.
            let _ = file.set_len(*written);
            return Err(AppendError::Io(error));
        }
        *written += size;
        self.bytes += size;
        Ok(())
    }

    /// The next record and where it ends, or None when drained. Damaged
    /// segment tails are skipped and recorded in [`Self::corrupt`].
    pub fn read(&mut self) -> io::Result<Option<(Vec<u8>, Position)>> {
        loop {
            let Some(segment) = self
                .segments
                .iter()
                .copied()
                .find(|&s| s >= self.read.segment)
            else {
                return Ok(None);
            };
            if segment != self.read.segment {
                self.read = Position { segment, offset: 0 };
            }
            let len = self.segment_len(segment)?;
            if self.read.offset >= len {
                if self.writer.as_ref().is_some_and(|(w, _, _)| *w == segment) {
                    return Ok(None);
                }
                self.read = Position {
                    segment: segment + 1,
                    offset: 0,
                };
                continue;
            }
            if self.reader.as_ref().is_none_or(|(r, _, _)| *r != segment) {
                let mut file = BufReader::with_capacity(256 << 10, File::open(self.path(segment))?);
                file.seek(SeekFrom::Start(self.read.offset))?;
                self.reader = Some((segment, file, self.read.offset));
            }
            match self.read_record(len)? {
                Ok(record) => return Ok(Some(record)),
                Err(reason) => {
                    self.corrupt.push(Corrupt {
                        file: self.path(segment),
                        offset: self.read.offset,
                        skipped: len - self.read.offset,
                        reason,
                    });
                    self.read = Position {
                        segment: segment + 1,
                        offset: 0,
                    };
                    self.reader = None;
                }
            }
        }
    }

    /// One record at the read position of the segment being read (`len`
    /// bytes long):
    /// the outer error is I/O, the inner one says why the bytes are not a
    /// record.
    fn read_record(&mut self, len: u64) -> io::Result<Result<(Vec<u8>, Position), String>> {
        let Some((_, file, at)) = &mut self.reader else {
            return Err(io::Error::other("no spool segment open for reading"));
        };
        if *at != self.read.offset {
            file.seek(SeekFrom::Start(self.read.offset))?;
            *at = self.read.offset;
        }
        let left = len - self.read.offset;
        if left < HEADER {
            return Ok(Err(format!("torn record header ({left} of 8 bytes)")));
        }
        let mut header = [0u8; 8];
        file.read_exact(&mut header)?;
        let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
        let size = u32::from_le_bytes([l0, l1, l2, l3]);
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        if size > MAX_RECORD || u64::from(size) > left - HEADER {
            return Ok(Err(format!(
                "record of {size} bytes runs past the segment's end ({} bytes left)",
                left - HEADER
            )));
        }
        let mut payload = vec![0u8; size as usize];
        file.read_exact(&mut payload)?;
        *at += HEADER + u64::from(size);
        if crc32fast::hash(&payload) != crc {
            return Ok(Err("record checksum does not match".to_owned()));
        }
        self.read.offset += HEADER + u64::from(size);
        Ok(Ok((payload, self.read)))
    }

    /// Every record up to `upto` was delivered: frees whole segments before
    /// it and records the cursor, so a restart resumes there.
    pub fn commit(&mut self, upto: Position) -> io::Result<()> {
        if upto <= self.committed {
            return Ok(());
        }
        self.committed = upto;
        while let Some(&first) = self.segments.front() {
            if first >= upto.segment {
                break;
            }
            self.remove_front()?;
        }
        // A segment read to its end that is no longer written to is done.
        let finished = self.segments.front().is_some_and(|&first| {
            first == upto.segment
                && self.writer.as_ref().is_none_or(|(w, _, _)| *w != first)
                && self.segment_len(first).is_ok_and(|len| upto.offset >= len)
        });
        if finished {
            self.remove_front()?;
        }
        write_cursor(&self.dir, self.committed)
    }

    /// Deletes the oldest segment.
    fn remove_front(&mut self) -> io::Result<()> {
        if let Some(first) = self.segments.pop_front() {
            let path = self.path(first);
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.bytes = self.bytes.saturating_sub(len);
            if self.reader.as_ref().is_some_and(|(r, _, _)| *r == first) {
                self.reader = None;
            }
            if self.writer.as_ref().is_some_and(|(w, _, _)| *w == first) {
                self.writer = None;
            }
        }
        Ok(())
    }

    /// At shutdown: `records`, which are older than everything unread in the
    /// spool, go in front of it, so a restart sends them first and in order.
    /// Records read but not committed are dropped from the segment they are
    /// in (the caller includes them in `records`).
    pub fn prepend(&mut self, records: &[Vec<u8>]) -> Result<(), AppendError> {
        if records.is_empty() {
            return Ok(());
        }
        let size: u64 = records.iter().map(|r| HEADER + r.len() as u64).sum();
        if self.bytes + size > self.max_bytes.saturating_sub(RESERVE) {
            return Err(AppendError::Full);
        }
        self.writer = None;
        self.reader = None;
        // Cut what was read off the segment being read: it is in `records`.
        if self.segments.contains(&self.read.segment) && self.read.offset > 0 {
            let path = self.path(self.read.segment);
            let mut rest = Vec::new();
            {
                // Closed before the rename below: Windows does not replace a
                // file that is open (found running these tests under Wine).
                let mut file = File::open(&path).map_err(AppendError::Io)?;
                file.seek(SeekFrom::Start(self.read.offset))
                    .map_err(AppendError::Io)?;
                file.read_to_end(&mut rest).map_err(AppendError::Io)?;
            }
            let tmp = self.dir.join("segment.tmp");
            fs::write(&tmp, &rest).map_err(AppendError::Io)?;
            fs::rename(&tmp, &path).map_err(AppendError::Io)?;
            self.bytes = self.bytes.saturating_sub(self.read.offset);
        }
        while self
            .segments
            .front()
            .is_some_and(|&first| first < self.read.segment)
        {
            self.remove_front().map_err(AppendError::Io)?;
        }
        let index = self
            .segments
            .front()
            .map_or(FIRST_SEGMENT, |first| first - 1);
        let mut data = Vec::with_capacity(size as usize);
        for record in records {
            let len = u32::try_from(record.len()).map_err(|_| AppendError::Full)?;
            data.extend_from_slice(&len.to_le_bytes());
            data.extend_from_slice(&crc32fast::hash(record).to_le_bytes());
            data.extend_from_slice(record);
        }
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(self.path(index))
            .map_err(AppendError::Io)?;
        file.write_all(&data).map_err(AppendError::Io)?;
        file.sync_all().map_err(AppendError::Io)?;
        self.segments.push_front(index);
        self.bytes += size;
        self.read = Position {
            segment: index,
            offset: 0,
        };
        self.committed = self.read;
        write_cursor(&self.dir, self.committed).map_err(AppendError::Io)
    }
}

fn read_cursor(path: &Path) -> Option<Position> {
    let text = fs::read_to_string(path).ok()?;
    let (segment, offset) = text.trim().split_once(' ')?;
    Some(Position {
        segment: segment.parse().ok()?,
        offset: offset.parse().ok()?,
    })
}

/// Replaces the cursor file in one rename, so a crash leaves the old one
/// or the new one, never half of either.
fn write_cursor(dir: &Path, at: Position) -> io::Result<()> {
    let tmp = dir.join("cursor.tmp");
    fs::write(&tmp, format!("{} {}\n", at.segment, at.offset))?;
    fs::rename(&tmp, dir.join("cursor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(spool: &mut Spool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((record, at)) = spool.read().expect("read") {
            out.push(record);
            spool.commit(at).expect("commit");
        }
        out
    }

    fn msg(i: usize) -> Vec<u8> {
        format!("message {i} {}", "x".repeat(i % 50)).into_bytes()
    }

    #[test]
    fn records_come_back_in_order_across_segments_and_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("open");
        for i in 0..3000 {
            spool.append(&msg(i)).expect("append");
        }
        assert!(
            spool.segments.len() > 2,
            "{} segments",
            spool.segments.len()
        );
        // Half delivered, then the process stops.
        for i in 0..1500 {
            let (record, at) = spool.read().expect("read").expect("record");
            assert_eq!(record, msg(i));
            spool.commit(at).expect("commit");
        }
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("reopen");
        spool.append(&msg(3000)).expect("append after restart");
        let rest = drain(&mut spool);
        assert_eq!(rest, (1500..=3000).map(msg).collect::<Vec<_>>());
        assert!(spool.corrupt.is_empty());
        assert!(spool.is_drained());
    }

    #[test]
    fn a_full_spool_refuses_and_takes_again_once_delivered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), 200 << 10).expect("open");
        let mut taken = 0;
        while spool.append(&[7u8; 1000]).is_ok() {
            taken += 1;
        }
        assert!(spool.bytes() <= (200 << 10) - RESERVE);
        assert!(taken >= 170, "{taken}");
        assert!(matches!(spool.append(&[7u8; 1000]), Err(AppendError::Full)));
        // The reserve still takes a report, and the bound holds.
        spool.append_report(&[1u8; 200]).expect("report fits");
        taken += 1;
        assert!(spool.bytes() <= 200 << 10);
        assert_eq!(drain(&mut spool).len(), taken);
        spool.append(&[7u8; 1000]).expect("space returned");
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_reported_and_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("open");
        for i in 0..10 {
            spool.append(&msg(i)).expect("append");
        }
        let first = *spool.segments.front().expect("segment");
        drop(spool);
        let path = dir.path().join(format!("{first:020}.seg"));
        let len = fs::metadata(&path).expect("seg").len();
        // A crash in the middle of the last record.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open seg")
            .set_len(len - 3)
            .expect("truncate");
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("reopen");
        spool.append(&msg(10)).expect("append");
        let got = drain(&mut spool);
        assert_eq!(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 10].map(msg));
        assert_eq!(spool.corrupt.len(), 1, "{:?}", spool.corrupt);
        assert!(spool.corrupt[0].reason.contains("past the segment's end"));

        // A flipped byte inside a payload.
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("open");
        for i in 0..3 {
            spool.append(&msg(i)).expect("append");
        }
        let seg = *spool.segments.back().expect("segment");
        drop(spool);
        let path = dir.path().join(format!("{seg:020}.seg"));
        let mut bytes = fs::read(&path).expect("read");
        let at = bytes.len() - 2;
        bytes[at] ^= 0xff;
        fs::write(&path, bytes).expect("write");
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(drain(&mut spool), [0, 1].map(msg));
        assert!(spool.corrupt[0].reason.contains("checksum"));
    }

    #[test]
    fn prepended_records_come_first_and_read_ones_are_not_repeated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("open");
        for i in 10..20 {
            spool.append(&msg(i)).expect("append");
        }
        // Two read, in flight, not acknowledged.
        spool.read().expect("read").expect("10");
        spool.read().expect("read").expect("11");
        let older: Vec<Vec<u8>> = (0..12).map(msg).collect();
        spool.prepend(&older).expect("prepend");
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(drain(&mut spool), (0..20).map(msg).collect::<Vec<_>>());
    }
}
