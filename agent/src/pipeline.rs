//! The pipeline: batches in, events out. Decodes records with
//! `ringside-wire`, keeps the process table, enriches, maps to Sysmon events
//! and hands them to a sink. Every problem is counted by class and reported
//! with its file (or stream) offset; the pipeline never stops on bad input.
//!
//! How records map to events:
//! - ProcessCreate → 1; ProcessExit → 5; ImageLoad → 7, or 6 DriverLoad
//!   when `IMAGE_INFO.Properties` has the `SystemModeImage` bit (see
//!   [`is_driver_load`]);
//! - FileCreate → 11 when the file was created, superseded or overwritten
//!   (`IoStatus.Information` 0, 2 or 3, success status) — Sysmon's 11 does not
//!   fire for opening an existing file, so those are counted as not mapped;
//! - FileRename → 1011; FileDelete → 23;
//! - RegistrySetValue → 13 (`EventType` SetValue; `TargetObject` and
//!   `Details` rendered by [`crate::registry`]); RegistryKey → 12
//!   (`EventType` CreateKey, DeleteKey or DeleteValue); RegistryRename → 14
//!   (`EventType` RenameKey, `NewName` the full new key path);
//! - RemoteThread → 8 (CreateRemoteThread; `StartModule` from the image
//!   loads seen in the target ([`crate::call_trace::Modules`], the table
//!   call traces resolve in too), `StartFunction` from
//!   that image's export table), except the first thread of a new process,
//!   which its creator starts in it and which Sysmon does not report:
//!   counted as not mapped;
//! - FileCloseModified → 15 (FileCreateStreamHash) when the handle wrote
//!   a named stream (`file:stream`, [`crate::stream`]), with the `Hash` of
//!   the file it belongs to and the stream's `Contents`; the close of any
//!   other modified handle, and FileWrite, have no Sysmon event: counted,
//!   not emitted;
//! - Lost → 1001 EventsLost; a jump in sequence numbers → 1002 SequenceGap;
//!   a frame or record that cannot be read → 1003 InputError; Stats →
//!   1004 SensorStats.
//! - Content (see [`crate::detect`]): a bundle refused or rolled back →
//!   1005 ContentRejected; a bundle activated → 1006 ContentActivated. The
//!   same two events report a Sysmon configuration (`--config`) refused or
//!   activated.
//! - A Sysmon configuration ([`crate::config`]) may drop an event: no line,
//!   counted in `not_mapped` and `filtered` (the detector still sees it).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use ringside_content::schema::Logsource;
use ringside_wire::ioctl::StatsResponse;
use ringside_wire::replay::FrameKind;
use ringside_wire::{
    DecodeError, DriverStats, EVENT_KIND_COUNT, EventKind, PIPE_OP_CREATED, REGISTRY_OP_CREATE_KEY,
    REGISTRY_OP_DELETE_KEY, REGISTRY_OP_DELETE_VALUE, REMOTE_THREAD_FLAG_START_ADDRESS, RawField,
    Record, Records,
};
use zerocopy::FromBytes;

use crate::config::ConfigFilter;
use crate::crosscheck::{AgentView, cross_check};
use crate::detect::{Detector, Notice};
use crate::enrich::authenticode::{Status, Verdict};
use crate::enrich::{EnrichConfig, Enricher, FileInfo};
use crate::paths::VolumeMap;
use crate::process_table::{NewProcess, ProcessGuid, ProcessInfo, ProcessTable};
use crate::sink::Sink;
use crate::source::replay::{FrameError, ReplayReader};
use crate::stats::StatsCheck;
use crate::sysmon::{EventType, Layout, Name, SysmonEvent};

/// Problems kept with their full message (the rest are only counted).
pub const PROBLEMS_KEPT: usize = 100;
/// 1003 InputError events emitted per class before they are summarized:
/// past it, only every power-of-two-th one is emitted, as "suppressed N
/// similar" (a hostile input yields at most this many plus log2 of its
/// errors as output lines, however many it has).
pub const PROBLEM_EVENTS_PER_CLASS: u64 = 100;

/// `IoStatus.Information` values of a create that made or replaced a file.
const FILE_SUPERSEDED: u32 = 0;
const FILE_CREATED: u32 = 2;
const FILE_OVERWRITTEN: u32 = 3;

/// How far the pipeline goes with each record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Decode and keep the process table, build no events (benchmarks).
    TableOnly,
    /// Everything: events to the sink.
    Emit,
}

/// Pipeline settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// First group of every ProcessGuid (and LogonGuid).
    pub machine_id: u32,
    pub table_capacity: usize,
    pub enrich: EnrichConfig,
    pub depth: Depth,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            machine_id: 0,
            table_capacity: crate::process_table::DEFAULT_CAPACITY,
            enrich: EnrichConfig::default(),
            depth: Depth::Emit,
        }
    }
}

/// One problem with the input, where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Byte offset in the file (or in the device stream).
    pub offset: u64,
    pub class: &'static str,
    pub message: String,
}

/// What the pipeline saw.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub frames: u64,
    pub batches: u64,
    pub records: u64,
    /// Event records received, per [`EventKind::index`].
    pub received: [u64; EVENT_KIND_COUNT],
    /// Events handed to the sink (all types).
    pub emitted: u64,
    /// Event records that wrote a line, per kind.
    pub written: [u64; EVENT_KIND_COUNT],
    /// Event records that wrote no line, per kind: no Sysmon event, or the
    /// Sysmon configuration dropped it (those also in `filtered`).
    pub not_mapped: [u64; EVENT_KIND_COUNT],
    /// Event records whose event the Sysmon configuration dropped, per kind.
    pub filtered: [u64; EVENT_KIND_COUNT],
    /// Events the Sysmon configuration dropped (all types).
    pub filtered_events: u64,
    pub decode_errors: BTreeMap<&'static str, u64>,
    pub frame_errors: BTreeMap<&'static str, u64>,
    /// Problems with their messages, the first [`PROBLEMS_KEPT`].
    pub problems: Vec<Problem>,
    /// 1003 events not emitted (summarized), per class.
    pub problems_suppressed: BTreeMap<&'static str, u64>,
    /// Problems seen per class (for the rate limit).
    pub problems_by_class: BTreeMap<&'static str, u64>,
    pub sequence_gaps: u64,
    pub missing_records: u64,
    pub sequence_regressions: u64,
    /// Regressions after a reconnect: a new driver lifetime (1004
    /// `DriverRestarts`). The sensor saw nothing while the driver was gone.
    pub driver_restarts: u64,
    pub lost_records: u64,
    /// Events the driver reported dropped (sum of `Lost` deltas), per kind.
    pub lost_events: [u64; EVENT_KIND_COUNT],
    pub truncated_fields: u64,
    pub stats_frames: u64,
    /// What reached the agent from the current driver lifetime.
    pub view: AgentView,
    /// The latest driver counters seen, and the agent's view at that time.
    pub last_stats: Option<(DriverStats, AgentView)>,
    /// Event-time span (FILETIME) of the records.
    pub first_time: Option<u64>,
    pub last_time: Option<u64>,
}

impl Counters {
    /// Decode and frame errors together.
    pub fn problem_count(&self) -> u64 {
        self.decode_errors.values().sum::<u64>() + self.frame_errors.values().sum::<u64>()
    }

    /// Event records received, all kinds.
    pub fn events_received(&self) -> u64 {
        self.received.iter().sum()
    }
}

/// The pipeline.
#[derive(Debug)]
pub struct Pipeline {
    config: Config,
    pub table: ProcessTable,
    /// The user-mode images each live process loaded: for call traces
    /// (Sysmon 10) and a remote thread's `StartModule` (Sysmon 8).
    pub modules: crate::call_trace::Modules,
    pub enricher: Enricher,
    pub volumes: VolumeMap,
    pub counters: Counters,
    /// The content engine, when rules were given.
    pub detector: Option<Detector>,
    /// The Sysmon configuration, when one was given.
    pub filter: Option<ConfigFilter>,
    /// The event mask last sent with CONFIGURE.
    configured_mask: Option<u32>,
    layout: Layout,
    event: SysmonEvent,
    next_seq: Option<u64>,
    lost_baseline: [u64; EVENT_KIND_COUNT],
    /// The driver's `next_seq` in the latest Stats.
    driver_next_seq: Option<u64>,
    /// Set by [`Pipeline::reconnected`]: the driver's `next_seq` in the
    /// last Stats before the connection was lost (`Some(None)` when there
    /// was none), until the first record after it.
    reconnect: Option<Option<u64>>,
    scratch: String,
    /// New processes whose first thread has not been seen yet → the thread
    /// that created the process (pid, tid): that thread starts the first
    /// one, which the driver sees as a thread created in another process.
    initial_threads: std::collections::HashMap<u32, (u32, u32)>,
}

/// New processes remembered for their first thread ([`Pipeline`]); the map
/// is cleared when full.
const MAX_INITIAL_THREADS: usize = 16384;

/// Records that never arrived: numbers `expected..received`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Gap {
    expected: u64,
    received: u64,
}

/// Sum of counters that came from outside the agent (they may be anything).
pub fn saturating_sum(counts: &[u64]) -> u64 {
    counts.iter().fold(0, |sum, n| sum.saturating_add(*n))
}

/// Appends a raw UTF-16 field's characters.
fn push_raw(out: &mut String, field: &RawField<'_>) {
    out.extend(field.chars());
}

/// The device every pipe name starts with (`FLT_FILE_NAME_OPENED` on the
/// named-pipe file system); Sysmon's `PipeName` is what follows it.
const NAMED_PIPE_DEVICE: &str = r"\Device\NamedPipe";

/// Appends Sysmon's `PipeName` for a raw pipe name: `\Device\NamedPipe\x`
/// is `\x`; a name without the device prefix is kept as it is.
fn pipe_name(out: &mut String, field: &RawField<'_>) {
    let start = out.len();
    push_raw(out, field);
    if pipe_device_prefix(&out[start..]) {
        out.replace_range(start..start + NAMED_PIPE_DEVICE.len(), "");
    }
}

/// Whether `name` starts with the named-pipe device and a separator (the
/// device matched case-insensitively, as the object manager does).
fn pipe_device_prefix(name: &str) -> bool {
    let n = NAMED_PIPE_DEVICE.len();
    name.get(..n)
        .is_some_and(|device| device.eq_ignore_ascii_case(NAMED_PIPE_DEVICE))
        && name[n..].starts_with('\\')
}

impl Pipeline {
    pub fn new(config: Config) -> Self {
        Pipeline {
            table: ProcessTable::new(config.machine_id, config.table_capacity),
            modules: crate::call_trace::Modules::default(),
            enricher: Enricher::new(config.enrich.clone()),
            volumes: VolumeMap::default(),
            counters: Counters::default(),
            detector: None,
            filter: None,
            configured_mask: None,
            layout: Layout::default(),
            event: SysmonEvent::default(),
            next_seq: None,
            lost_baseline: [0; EVENT_KIND_COUNT],
            driver_next_seq: None,
            reconnect: None,
            scratch: String::new(),
            initial_threads: std::collections::HashMap::new(),
            config,
        }
    }

    /// The event kinds CONFIGURE asks the driver for: all it maps by
    /// default, less those the Sysmon configuration can never log and no
    /// loaded Sigma rule reads; and the kinds off by default
    /// ([`crate::config::OPT_IN`]: process access, the hottest path the
    /// driver observes, and closes of modified handles, which carry
    /// Sysmon's 15) when the configuration can log their event or a loaded
    /// Sigma rule reads it, as Sysmon logs events 10 and 15 only when its
    /// configuration asks.
    pub fn event_mask(&self) -> u32 {
        const RULES_MAY_ASK: u32 =
            ringside_wire::kind::DEFAULT_EVENTS_MASK | crate::config::OPT_IN_MASK;
        let rules = self
            .detector
            .as_ref()
            .map_or(0, |d| crate::config::detection_mask(d.bundle()));
        let Some(filter) = &self.filter else {
            return ringside_wire::kind::DEFAULT_EVENTS_MASK | (rules & crate::config::OPT_IN_MASK);
        };
        filter.event_mask() | (rules & RULES_MAY_ASK)
    }

    /// The mask to send with CONFIGURE now; remembered, so that
    /// [`Self::event_mask_changed`] can tell when it must be sent again.
    pub fn configure_mask(&mut self) -> u32 {
        let mask = self.event_mask();
        self.configured_mask = Some(mask);
        mask
    }

    /// Whether a reloaded configuration or bundle changed the mask since
    /// the last [`Self::configure_mask`] (the live source then sends
    /// CONFIGURE again).
    pub fn event_mask_changed(&self) -> bool {
        self.configured_mask
            .is_some_and(|sent| sent != self.event_mask())
    }

    /// The connection to the driver was lost and is being made again. The
    /// process table stays (the processes are still the same), and so does
    /// the expected sequence number: if the same driver carries on, a jump
    /// is a gap like any other; if it restarted (numbers begin again), the
    /// first record after the reconnect reports what was lost on both
    /// sides of the restart (see [`Pipeline::batch`]). Nothing is reset
    /// silently.
    pub fn reconnected(&mut self) {
        self.reconnect = Some(self.driver_next_seq);
    }

    fn problem(
        &mut self,
        offset: u64,
        class: &'static str,
        message: String,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        let seen = {
            let n = self.counters.problems_by_class.entry(class).or_default();
            *n += 1;
            *n
        };
        if self.counters.problems.len() < PROBLEMS_KEPT {
            self.counters.problems.push(Problem {
                offset,
                class,
                message: message.clone(),
            });
        }
        let message = if seen <= PROBLEM_EVENTS_PER_CLASS {
            message
        } else {
            let suppressed = seen - PROBLEM_EVENTS_PER_CLASS;
            if !suppressed.is_power_of_two() {
                *self.counters.problems_suppressed.entry(class).or_default() += 1;
                return Ok(());
            }
            format!("suppressed {suppressed} similar {class} errors so far; the latest: {message}")
        };
        let ty = EventType::InputError;
        self.event.reset(ty, None);
        let time = self.counters.last_time;
        if let Some(i) = self.layout_index(ty, "UtcTime") {
            if let Some(time) = time {
                self.event
                    .set_with(i, |out| crate::time::write_utc_time(out, time));
            }
        }
        self.event.set_named("Source", "replay");
        self.event.set_named("Offset", &offset.to_string());
        self.event.set_named("Class", class);
        self.event.set_named("Message", &message);
        self.emit(sink)
    }

    fn layout_index(&self, ty: EventType, name: &str) -> Option<usize> {
        ty.field_index(name)
    }

    fn emit(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        // The Sysmon configuration decides what is written; the detector
        // still sees every event, so detections do not depend on it (an
        // alert carries the event's fields).
        let written = self
            .filter
            .as_mut()
            .is_none_or(|filter| filter.apply(&mut self.event));
        if written {
            self.counters.emitted += 1;
            sink.event(&self.event)?;
        } else {
            self.counters.filtered_events += 1;
        }
        match &mut self.detector {
            Some(detector) => {
                detector.evaluate(&self.event, sink)?;
                self.content_notices(sink)
            }
            None => Ok(()),
        }
    }

    /// Emits the detector's queued notices as 1005 / 1006 events. Each is
    /// also printed to stderr, where an operator watching the agent looks.
    pub fn content_notices(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        let mut notices = match &mut self.detector {
            Some(detector) => detector.take_notices(),
            None => Vec::new(),
        };
        if let Some(filter) = &mut self.filter {
            notices.extend(filter.take_notices());
        }
        for notice in notices {
            let ty = match notice {
                Notice::Activated { .. } => EventType::ContentActivated,
                Notice::Rejected { .. } => EventType::ContentRejected,
            };
            self.event.reset(ty, None);
            if let Some(time) = self.counters.last_time {
                self.event
                    .set_with(0, |out| crate::time::write_utc_time(out, time));
            }
            match &notice {
                Notice::Activated {
                    source,
                    rules,
                    files,
                    previous,
                } => {
                    eprintln!(
                        "ringside-agent: content {}: {rules} rules from {files} files active",
                        source.display()
                    );
                    self.event
                        .set_named("Source", &source.display().to_string());
                    self.event.set_named("Rules", &rules.to_string());
                    self.event.set_named("Files", &files.to_string());
                    if let Some(previous) = previous {
                        self.event
                            .set_named("Previous", &previous.display().to_string());
                    }
                }
                Notice::Rejected {
                    source,
                    running,
                    reason,
                } => {
                    eprintln!(
                        "ringside-agent: content {} rejected, {} stays in force: {reason}",
                        source.display(),
                        running.display()
                    );
                    self.event
                        .set_named("Source", &source.display().to_string());
                    self.event
                        .set_named("Running", &running.display().to_string());
                    self.event.set_named("Reason", reason.trim_end());
                }
            }
            self.emit(sink)?;
        }
        Ok(())
    }

    /// Applies content updates the watcher delivered (between batches, so
    /// no event is evaluated half by one bundle and half by another) and
    /// emits their notices.
    pub fn content_updates(&mut self, sink: &mut dyn Sink) -> io::Result<()> {
        if let Some(detector) = &mut self.detector {
            detector.poll_updates();
        }
        if let Some(filter) = &mut self.filter {
            filter.poll_updates();
            // As at start: a configuration's HashAlgorithms apply unless
            // hashing is off (--no-enrich).
            if let Some(hashes) = filter.take_hashes_change() {
                if !self.enricher.hashes().is_empty() {
                    self.enricher.set_hashes(crate::config::hash_set(hashes));
                }
            }
        }
        self.content_notices(sink)
    }

    /// A frame could not be read.
    pub fn frame_error(&mut self, error: &FrameError, sink: &mut dyn Sink) -> io::Result<()> {
        *self.counters.frame_errors.entry(error.class()).or_default() += 1;
        self.problem(error.offset(), error.class(), error.to_string(), sink)
    }

    /// A VolumeMap frame.
    pub fn volume_map(&mut self, payload: &[u8]) {
        self.volumes.load_frame(payload);
    }

    /// A Stats frame (a `StatsResponse`) at file offset `offset`.
    pub fn stats_frame(
        &mut self,
        payload: &[u8],
        offset: u64,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        self.counters.stats_frames += 1;
        match StatsResponse::read_from_bytes(payload) {
            Ok(response)
                if response.size as usize == core::mem::size_of::<StatsResponse>()
                    && response.abi_version == ringside_wire::ABI_VERSION =>
            {
                self.driver_stats(&response.stats, sink)
            }
            _ => {
                *self
                    .counters
                    .frame_errors
                    .entry("bad_stats_frame")
                    .or_default() += 1;
                let message = format!(
                    "byte {offset}: Stats frame of {} bytes is not a StatsResponse of ABI {} ({} bytes)",
                    payload.len(),
                    ringside_wire::ABI_VERSION,
                    core::mem::size_of::<StatsResponse>()
                );
                self.problem(offset, "bad_stats_frame", message, sink)
            }
        }
    }

    /// The driver's counters: checked, remembered, and emitted as 1004.
    pub fn driver_stats(&mut self, stats: &DriverStats, sink: &mut dyn Sink) -> io::Result<()> {
        self.counters.last_stats = Some((*stats, self.counters.view));
        self.driver_next_seq = Some(stats.next_seq);
        if self.config.depth != Depth::Emit {
            return Ok(());
        }
        let check = StatsCheck::new(stats);
        self.event.reset(EventType::SensorStats, None);
        if let Some(time) = self.counters.last_time {
            self.event
                .set_with(0, |out| crate::time::write_utc_time(out, time));
        }
        self.event
            .set_named("Produced", &check.total.produced.to_string());
        self.event
            .set_named("Delivered", &check.total.delivered.to_string());
        self.event
            .set_named("Dropped", &check.total.dropped.to_string());
        self.event
            .set_named("InRing", &check.total.in_ring.to_string());
        self.event.set_named("Balanced", check.verdict());
        self.event.set_named("PerKind", &check.per_kind_text());
        let c = &self.counters;
        let (received, written, unmapped) = (
            saturating_sum(&c.received),
            saturating_sum(&c.written),
            saturating_sum(&c.not_mapped),
        );
        let agent_per_kind = self.agent_per_kind_text();
        let accounted = cross_check(stats, &self.counters.view).verdict();
        self.event.set_named("Received", &received.to_string());
        self.event.set_named("Written", &written.to_string());
        self.event.set_named("Unmapped", &unmapped.to_string());
        self.event.set_named("AgentPerKind", &agent_per_kind);
        self.event.set_named("Accounted", &accounted);
        self.event.set_named(
            "DecodeErrors",
            &self
                .counters
                .decode_errors
                .values()
                .sum::<u64>()
                .to_string(),
        );
        let table = self.table.counters;
        self.event.set_named(
            "ProcessesEvicted",
            &(table.evicted_live + table.evicted_exited).to_string(),
        );
        self.event
            .set_named("VolumesDropped", &self.volumes.dropped.to_string());
        self.event
            .set_named("DriverRestarts", &self.counters.driver_restarts.to_string());
        let enrich = self.enricher.counters;
        self.event
            .set_named("EnrichDeferred", &enrich.deferred.to_string());
        self.event
            .set_named("EnrichOverflow", &enrich.overflow.to_string());
        let sinks: Vec<String> = sink.figures().iter().map(|f| f.text()).collect();
        if !sinks.is_empty() {
            self.event.set_named("Sinks", &sinks.join("; "));
        }
        self.emit(sink)
    }

    /// `file_create=8/7/1,…` (received/written/unmapped) for kinds the
    /// agent received; received == written + unmapped for each.
    fn agent_per_kind_text(&self) -> String {
        let c = &self.counters;
        crate::stats::per_kind_text(
            (0..EVENT_KIND_COUNT).map(|i| [c.received[i], c.written[i], c.not_mapped[i]]),
        )
    }

    /// Reads a whole replay, frame by frame. `progress` is called after each
    /// frame with the file offset reached.
    pub fn replay<R: io::Read>(
        &mut self,
        reader: &mut ReplayReader<R>,
        sink: &mut dyn Sink,
        mut progress: impl FnMut(u64, &Counters),
    ) -> io::Result<()> {
        while let Some(frame) = reader.next_frame() {
            self.counters.frames += 1;
            match frame {
                Err(error) => self.frame_error(&error, sink)?,
                Ok(frame) => match frame.kind {
                    FrameKind::Batch => self.batch(frame.payload, frame.payload_offset(), sink)?,
                    FrameKind::VolumeMap => self.volume_map(frame.payload),
                    FrameKind::Stats => self.stats_frame(frame.payload, frame.offset, sink)?,
                },
            }
            progress(reader.offset(), &self.counters);
        }
        sink.flush()
    }

    /// One READ batch whose first byte is at stream offset `base`.
    ///
    /// Sequence numbers are checked in delivery order (the device source
    /// puts concurrently completed READs back in order first, see
    /// [`crate::source::reorder`]); the records are then
    /// handled in the order their callbacks ran. The driver gives each CPU
    /// a lane of its own and a READ drains the lanes one after another, so
    /// a batch can hold a child's first file event (CPU 0's lane) ahead of
    /// its creation (CPU 1's lane); handled in that order, the event would
    /// miss the new process in the table. The callbacks' timestamps put
    /// them back in order: a stable sort, so one lane's records keep their
    /// order, and a record without a timestamp of its own (`Lost`) stays
    /// right after the record delivered before it (a sequence gap is
    /// reported in front of the record that revealed it).
    ///
    /// Numbers that go back are a driver restart or a spliced file and are
    /// counted as a regression. After [`Pipeline::reconnected`] they are a
    /// driver restart, and what was lost is reported as 1002: the old
    /// driver's records from the one expected up to the `next_seq` of its
    /// last Stats (delivered, never received; records stamped after that
    /// snapshot cannot be known), and the new driver's records before the
    /// first one received (`0..seq`).
    pub fn batch(&mut self, batch: &[u8], base: u64, sink: &mut dyn Sink) -> io::Result<()> {
        self.counters.batches += 1;
        self.enricher.new_batch();
        self.content_updates(sink)?;
        let mut records = Vec::new();
        let mut last_time = 0;
        for record in Records::new(batch) {
            match record {
                Ok(record) => {
                    let header = record.header();
                    let gaps = self.sequence(header.seq);
                    self.counters.view.sequence(header.seq, header.timestamp);
                    if let ringside_wire::RecordKind::Event(_) = record.kind() {
                        last_time = header.timestamp;
                    }
                    records.push((last_time, gaps, record));
                }
                Err(error) => self.decode_error(&error, base, sink)?,
            }
        }
        records.sort_by_key(|&(time, _, _)| time);
        for (_, gaps, record) in &records {
            let header = record.header();
            for gap in gaps {
                self.sequence_gap(*gap, header.seq, header.timestamp, sink)?;
            }
            self.record(record, sink)?;
        }
        Ok(())
    }

    fn decode_error(
        &mut self,
        error: &DecodeError,
        base: u64,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        *self
            .counters
            .decode_errors
            .entry(error.class())
            .or_default() += 1;
        let offset = base + error.offset() as u64;
        // The wire message names the offset within the batch; the prefix
        // names the file offset a person can seek to.
        let message = format!("byte {offset} (batch at byte {base}): {error}");
        self.problem(offset, error.class(), message, sink)
    }

    /// Checks `seq` against the one expected next (in delivery order) and
    /// counts gaps and regressions; returns the gaps to report in front of
    /// the record (none allocates nothing).
    fn sequence(&mut self, seq: u64) -> Vec<Gap> {
        let reconnect = self.reconnect.take();
        let expected = self.next_seq.replace(seq.wrapping_add(1));
        let gaps = match expected {
            Some(expected) if seq > expected => vec![Gap {
                expected,
                received: seq,
            }],
            Some(expected) if seq < expected => {
                // The driver restarted (sequence numbers begin again) or the
                // file was spliced; either way, continue from here.
                self.counters.sequence_regressions += 1;
                match reconnect {
                    Some(stamped) => {
                        // A new driver lifetime: its counts begin again.
                        self.counters.driver_restarts += 1;
                        self.counters.view = AgentView::default();
                        self.lost_baseline = [0; EVENT_KIND_COUNT];
                        let old_tail = stamped.filter(|n| *n > expected).map(|n| Gap {
                            expected,
                            received: n,
                        });
                        let new_head = (seq > 0).then_some(Gap {
                            expected: 0,
                            received: seq,
                        });
                        old_tail.into_iter().chain(new_head).collect()
                    }
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        for gap in &gaps {
            self.counters.sequence_gaps += 1;
            // The numbers are the driver's (or a file's): saturate.
            self.counters.missing_records = self
                .counters
                .missing_records
                .saturating_add(gap.received - gap.expected);
        }
        gaps
    }

    /// The SequenceGap event in front of the record numbered `seq`.
    fn sequence_gap(
        &mut self,
        gap: Gap,
        seq: u64,
        time: u64,
        sink: &mut dyn Sink,
    ) -> io::Result<()> {
        if self.config.depth != Depth::Emit {
            return Ok(());
        }
        self.event.reset(EventType::SequenceGap, Some(seq));
        self.event
            .set_with(0, |out| crate::time::write_utc_time(out, time));
        self.event
            .set_named("ExpectedSeq", &gap.expected.to_string());
        self.event
            .set_named("ReceivedSeq", &gap.received.to_string());
        self.event
            .set_named("Missing", &(gap.received - gap.expected).to_string());
        self.emit(sink)
    }

    /// One decoded record, whose sequence number was checked.
    fn record(&mut self, record: &Record<'_>, sink: &mut dyn Sink) -> io::Result<()> {
        self.counters.records += 1;
        let header = *record.header();
        let time = header.timestamp;
        self.counters.first_time.get_or_insert(time);
        self.counters.last_time = Some(time);
        let kind = match record.kind() {
            ringside_wire::RecordKind::Event(kind) => {
                self.counters.received[kind.index()] += 1;
                self.counters.view.received[kind.index()] += 1;
                Some(kind)
            }
            _ => None,
        };
        let emitted = self.counters.emitted;
        let filtered = self.counters.filtered_events;
        self.record_body(record, sink)?;
        if let Some(kind) = kind {
            if self.counters.emitted > emitted {
                self.counters.written[kind.index()] += 1;
            } else if self.counters.filtered_events > filtered {
                self.counters.not_mapped[kind.index()] += 1;
                self.counters.filtered[kind.index()] += 1;
            }
        }
        Ok(())
    }

    /// The line (if any) of one record, and its effect on the agent's state.
    fn record_body(&mut self, record: &Record<'_>, sink: &mut dyn Sink) -> io::Result<()> {
        let header = *record.header();
        let time = header.timestamp;
        let emit = self.config.depth == Depth::Emit;
        let seq = Some(header.seq);
        let pid = header.pid;
        match record {
            Record::ProcessCreate(e) => {
                let mut image = String::new();
                push_raw(&mut image, &e.image_name());
                self.volumes.to_dos_in_place(&mut image, 0);
                let mut command_line = String::new();
                push_raw(&mut command_line, &e.command_line());
                self.count_truncated(&[e.image_name(), e.command_line()]);
                let user = self
                    .enricher
                    .account(e.user_sid().bytes)
                    .unwrap_or_default();
                let integrity_level = self
                    .enricher
                    .integrity_level(e.integrity_sid().bytes)
                    .unwrap_or_default();
                let parent_pid = e.body.parent_pid;
                let logon_id = e.logon_id();
                // A reused pid: the old process's images are not the new one's.
                self.modules.forget(pid);
                if self.initial_threads.len() >= MAX_INITIAL_THREADS {
                    self.initial_threads.clear();
                }
                self.initial_threads
                    .insert(pid, (e.body.creating_pid, e.body.creating_tid));
                self.table.create(NewProcess {
                    pid,
                    parent_pid,
                    create_time: time,
                    image,
                    command_line,
                    user,
                    integrity_level,
                });
                if emit {
                    self.process_create(pid, parent_pid, logon_id, time, seq);
                    self.emit(sink)?;
                }
            }
            Record::ProcessExit(_) => {
                self.table.exit(pid, time);
                self.modules.forget(pid);
                self.initial_threads.remove(&pid);
                if emit {
                    self.process_event(EventType::ProcessTerminate, pid, time, seq);
                    self.emit(sink)?;
                }
            }
            Record::ImageLoad(e) => {
                let driver = is_driver_load(e.body.properties);
                if !driver {
                    self.table.lookup(pid, time);
                    // Remembered for call traces, at every depth: a
                    // process access later resolves its frames here.
                    self.scratch.clear();
                    push_raw(&mut self.scratch, &e.image_name());
                    self.volumes.to_dos_in_place(&mut self.scratch, 0);
                    self.modules
                        .load(pid, e.body.image_base, e.body.image_size, &self.scratch);
                }
                if emit {
                    let ty = if driver {
                        EventType::Sigma(Logsource::DriverLoad)
                    } else {
                        EventType::Sigma(Logsource::ImageLoad)
                    };
                    // A driver is loaded into system space, not into the
                    // process that happened to be current: Sysmon's 6
                    // names no process, and the process fields are not in
                    // its table, so `process_event` sets only UtcTime.
                    self.process_event(ty, pid, time, seq);
                    self.scratch.clear();
                    push_raw(&mut self.scratch, &e.image_name());
                    self.volumes.to_dos_in_place(&mut self.scratch, 0);
                    let loaded = std::mem::take(&mut self.scratch);
                    self.put(ty, Name::ImageLoaded, &loaded);
                    let info = self.file_fields(ty, &loaded);
                    self.scratch = loaded;
                    let verdict = info.as_ref().and_then(|info| info.signature.as_ref());
                    let fields = signature_fields(e.body.signature_level, verdict);
                    for (name, value) in [
                        (Name::Signed, fields.signed),
                        (Name::Signature, fields.signature),
                        (Name::SignatureStatus, fields.status),
                    ] {
                        if let Some(value) = value {
                            self.put(ty, name, value);
                        }
                    }
                    self.emit(sink)?;
                }
                self.count_truncated(&[e.image_name()]);
            }
            Record::FileCreate(e) => {
                let made = matches!(
                    e.body.information,
                    FILE_SUPERSEDED | FILE_CREATED | FILE_OVERWRITTEN
                ) && (e.body.status as i32) >= 0;
                self.count_truncated(&[e.name()]);
                if !made {
                    self.counters.not_mapped[EventKind::FileCreate.index()] += 1;
                    return Ok(());
                }
                self.table.lookup(pid, time);
                if emit {
                    let ty = EventType::Sigma(Logsource::FileEvent);
                    self.process_event(ty, pid, time, seq);
                    self.put_path(ty, Name::TargetFilename, &e.name());
                    // Only a create knows the creation time: it is now.
                    if e.body.information == FILE_CREATED {
                        if let Some(i) = self.layout.get(ty, Name::CreationUtcTime) {
                            self.event
                                .set_with(i, |out| crate::time::write_utc_time(out, time));
                        }
                    }
                    self.emit(sink)?;
                }
            }
            Record::FileRename(e) => {
                self.count_truncated(&[e.old_name(), e.new_name()]);
                self.table.lookup(pid, time);
                if emit {
                    let ty = EventType::Sigma(Logsource::FileRename);
                    self.process_event(ty, pid, time, seq);
                    self.put_path(ty, Name::SourceFilename, &e.old_name());
                    self.put_path(ty, Name::TargetFilename, &e.new_name());
                    self.emit(sink)?;
                }
            }
            Record::FileDelete(e) => {
                self.count_truncated(&[e.name()]);
                self.table.lookup(pid, time);
                if emit {
                    let ty = EventType::Sigma(Logsource::FileDelete);
                    self.process_event(ty, pid, time, seq);
                    self.put_path(ty, Name::TargetFilename, &e.name());
                    self.emit(sink)?;
                }
            }
            Record::FileWrite(_) => self.counters.not_mapped[EventKind::FileWrite.index()] += 1,
            Record::FileCloseModified(e) => {
                self.count_truncated(&[e.name()]);
                let mut name = String::new();
                push_raw(&mut name, &e.name());
                self.volumes.to_dos_in_place(&mut name, 0);
                let Some(stream) = crate::stream::named(&name) else {
                    self.counters.not_mapped[EventKind::FileCloseModified.index()] += 1;
                    return Ok(());
                };
                self.table.lookup(pid, time);
                if emit {
                    self.stream_hash(stream, pid, time, seq);
                    self.emit(sink)?;
                }
            }
            Record::RegistryKey(e) => {
                self.count_truncated(&[e.key_name(), e.value_name()]);
                self.table.lookup(pid, time);
                if emit {
                    let (logsource, event_type) = match e.body.operation {
                        REGISTRY_OP_CREATE_KEY => (Logsource::RegistryAdd, "CreateKey"),
                        REGISTRY_OP_DELETE_KEY => (Logsource::RegistryDelete, "DeleteKey"),
                        // REGISTRY_OP_DELETE_VALUE: the decoder refuses any
                        // other operation.
                        _ => (Logsource::RegistryDelete, "DeleteValue"),
                    };
                    let ty = EventType::Sigma(logsource);
                    self.process_event(ty, pid, time, seq);
                    self.put(ty, Name::EventType, event_type);
                    if let Some(i) = self.layout.get(ty, Name::TargetObject) {
                        let key: String = e.key_name().chars().collect();
                        let value: Option<String> = (e.body.operation == REGISTRY_OP_DELETE_VALUE)
                            .then(|| e.value_name().chars().collect());
                        self.event.set_with(i, |out| {
                            crate::registry::object(out, &key, value.as_deref())
                        });
                    }
                    self.emit(sink)?;
                }
            }
            Record::RegistryRename(e) => {
                self.count_truncated(&[e.key_name(), e.new_name()]);
                self.table.lookup(pid, time);
                if emit {
                    let ty = EventType::Sigma(Logsource::RegistryRename);
                    self.process_event(ty, pid, time, seq);
                    self.put(ty, Name::EventType, "RenameKey");
                    let key: String = e.key_name().chars().collect();
                    if let Some(i) = self.layout.get(ty, Name::TargetObject) {
                        self.event
                            .set_with(i, |out| crate::registry::push_key(out, &key));
                    }
                    if let Some(i) = self.layout.get(ty, Name::NewName) {
                        let new_name: String = e.new_name().chars().collect();
                        self.event
                            .set_with(i, |out| crate::registry::renamed_key(out, &key, &new_name));
                    }
                    self.emit(sink)?;
                }
            }
            Record::RegistrySetValue(e) => {
                self.count_truncated(&[e.key_name(), e.value_name(), e.data()]);
                self.table.lookup(pid, time);
                if emit {
                    let ty = EventType::Sigma(Logsource::RegistrySet);
                    self.process_event(ty, pid, time, seq);
                    self.put(ty, Name::EventType, "SetValue");
                    if let Some(i) = self.layout.get(ty, Name::TargetObject) {
                        let key: String = e.key_name().chars().collect();
                        let value: String = e.value_name().chars().collect();
                        self.event
                            .set_with(i, |out| crate::registry::target_object(out, &key, &value));
                    }
                    if let Some(i) = self.layout.get(ty, Name::Details) {
                        let data = e.data().bytes;
                        let value_type = e.body.value_type;
                        self.event
                            .set_with(i, |out| crate::registry::details(out, value_type, data));
                    }
                    self.emit(sink)?;
                }
            }
            Record::ProcessAccess(e) => {
                self.table.lookup(pid, time);
                let target = e.body.target_pid;
                self.table.lookup(target, time);
                if emit {
                    self.process_access(e, time, seq);
                    self.emit(sink)?;
                }
            }
            Record::RemoteThread(e) => {
                let target = e.body.target_pid;
                if self.initial_threads.get(&target) == Some(&(pid, header.tid)) {
                    self.initial_threads.remove(&target);
                    self.counters.not_mapped[EventKind::RemoteThread.index()] += 1;
                    return Ok(());
                }
                self.table.lookup(pid, time);
                self.table.lookup(target, time);
                if emit {
                    let start = (e.body.flags & REMOTE_THREAD_FLAG_START_ADDRESS != 0)
                        .then_some(e.body.start_address);
                    self.remote_thread(pid, target, e.body.new_thread_id, start, time, seq);
                    self.emit(sink)?;
                }
            }
            Record::NamedPipe(e) => {
                self.count_truncated(&[e.name()]);
                self.table.lookup(pid, time);
                if emit {
                    let ty = EventType::Sigma(Logsource::PipeCreated);
                    self.process_event(ty, pid, time, seq);
                    // PIPE_OP_CONNECTED otherwise: the decoder refuses any
                    // other operation.
                    let event_type = if e.body.operation == PIPE_OP_CREATED {
                        "CreatePipe"
                    } else {
                        "ConnectPipe"
                    };
                    self.put(ty, Name::EventType, event_type);
                    if let Some(i) = self.layout.get(ty, Name::PipeName) {
                        let name = e.name();
                        self.event.set_with(i, |out| pipe_name(out, &name));
                    }
                    self.emit(sink)?;
                }
            }
            Record::Lost(e) => {
                self.counters.lost_records += 1;
                self.counters.view.lost(&e.body.dropped);
                let mut delta = [0u64; EVENT_KIND_COUNT];
                for (i, (now, before)) in e.body.dropped.iter().zip(self.lost_baseline).enumerate()
                {
                    // Cumulative counts; a smaller one means the driver
                    // restarted and counts from zero again.
                    delta[i] = if *now >= before { now - before } else { *now };
                    // The counts come from the driver or a replay file:
                    // hostile, so they saturate rather than overflow.
                    self.counters.lost_events[i] =
                        self.counters.lost_events[i].saturating_add(delta[i]);
                }
                self.lost_baseline = e.body.dropped;
                if emit {
                    self.event.reset(EventType::EventsLost, seq);
                    self.event
                        .set_with(0, |out| crate::time::write_utc_time(out, time));
                    self.event
                        .set_named("Dropped", &saturating_sum(&delta).to_string());
                    for (kind, count) in EventKind::ALL.iter().zip(delta) {
                        let name = crate::sysmon::EVENTS_LOST[2 + kind.index()].name;
                        self.event.set_named(name, &count.to_string());
                    }
                    self.emit(sink)?;
                }
            }
            Record::Stats(e) => {
                let stats = e.body;
                self.driver_stats(&stats, sink)?;
            }
        }
        Ok(())
    }

    fn count_truncated(&mut self, fields: &[RawField<'_>]) {
        self.counters.truncated_fields += fields.iter().filter(|f| f.truncated).count() as u64;
    }

    fn put(&mut self, ty: EventType, name: Name, value: &str) {
        if let Some(i) = self.layout.get(ty, name) {
            self.event.set(i, value);
        }
    }

    /// Sysmon 15 for a named stream written through a handle now closed:
    /// `Hash` of the file it belongs to, the file's `CreationUtcTime`, and
    /// the stream's own `Contents` when it is small text.
    fn stream_hash(
        &mut self,
        stream: crate::stream::NamedStream<'_>,
        pid: u32,
        time: u64,
        seq: Option<u64>,
    ) {
        let ty = EventType::Sigma(Logsource::CreateStreamHash);
        self.process_event(ty, pid, time, seq);
        self.put(ty, Name::TargetFilename, stream.name);
        if let Some(created) = self.enricher.created(stream.file) {
            if let Some(i) = self.layout.get(ty, Name::CreationUtcTime) {
                self.event
                    .set_with(i, |out| crate::time::write_utc_time(out, created));
            }
        }
        if let Some(info) = self.enricher.file(stream.file) {
            if !info.hashes.is_empty() {
                self.put(ty, Name::Hash, &info.hashes);
            }
        }
        if let Some(contents) = self.enricher.stream_contents(stream.name) {
            self.put(ty, Name::Contents, &contents);
        }
    }

    /// Sets `name` to the DOS form of a raw NT path.
    fn put_path(&mut self, ty: EventType, name: Name, raw: &RawField<'_>) {
        if let Some(i) = self.layout.get(ty, name) {
            let volumes = &self.volumes;
            self.event.set_with(i, |out| {
                let start = out.len();
                push_raw(out, raw);
                volumes.to_dos_in_place(out, start);
            });
        }
    }

    /// Starts an event of `ty` with the fields every process-scoped event
    /// has: UtcTime, ProcessGuid, ProcessId, Image, User.
    fn process_event(&mut self, ty: EventType, pid: u32, time: u64, seq: Option<u64>) {
        self.event.reset(ty, seq);
        let layout = &self.layout;
        let event = &mut self.event;
        if let Some(i) = layout.get(ty, Name::UtcTime) {
            event.set_with(i, |out| crate::time::write_utc_time(out, time));
        }
        if let Some(i) = layout.get(ty, Name::ProcessId) {
            event.set_with(i, |out| crate::time::push_decimal(out, u64::from(pid)));
        }
        if let Some(info) = self.table.get(pid) {
            fill_process(event, layout, ty, info);
        }
    }

    /// Starts an event of `ty` that names two processes (Sysmon 8 and 10):
    /// UtcTime, and for the source and the target their id and, from the
    /// process table, their GUID, image and user.
    fn two_processes(
        &mut self,
        ty: EventType,
        source: u32,
        target: u32,
        time: u64,
        seq: Option<u64>,
    ) {
        self.event.reset(ty, seq);
        let layout = &self.layout;
        let event = &mut self.event;
        if let Some(i) = layout.get(ty, Name::UtcTime) {
            event.set_with(i, |out| crate::time::write_utc_time(out, time));
        }
        for (pid, id, guid, image, user) in [
            (
                source,
                Name::SourceProcessId,
                Name::SourceProcessGuid,
                Name::SourceImage,
                Name::SourceUser,
            ),
            (
                target,
                Name::TargetProcessId,
                Name::TargetProcessGuid,
                Name::TargetImage,
                Name::TargetUser,
            ),
        ] {
            if let Some(i) = layout.get(ty, id) {
                event.set_with(i, |out| crate::time::push_decimal(out, u64::from(pid)));
            }
            let Some(info) = self.table.get(pid) else {
                continue;
            };
            if let Some(i) = layout.get(ty, guid) {
                event.set_with(i, |out| info.guid.write(out));
            }
            for (name, value) in [(image, &info.image), (user, &info.user)] {
                if let (Some(i), false) = (layout.get(ty, name), value.is_empty()) {
                    event.set(i, value);
                }
            }
        }
    }

    /// Fills a remote thread (Sysmon 8): source and target from the table,
    /// the start address, and the image and export it falls on.
    fn remote_thread(
        &mut self,
        source: u32,
        target: u32,
        new_thread_id: u32,
        start: Option<u64>,
        time: u64,
        seq: Option<u64>,
    ) {
        let ty = EventType::Sigma(Logsource::CreateRemoteThread);
        self.two_processes(ty, source, target, time, seq);
        let layout = &self.layout;
        let event = &mut self.event;
        if let Some(i) = layout.get(ty, Name::NewThreadId) {
            event.set_with(i, |out| {
                crate::time::push_decimal(out, u64::from(new_thread_id))
            });
        }
        let Some(start) = start else { return };
        if let Some(i) = layout.get(ty, Name::StartAddress) {
            event.set_with(i, |out| {
                use std::fmt::Write;
                let _ = write!(out, "0x{start:016X}");
            });
        }
        let Some((path, offset)) = self.modules.resolve(target, start) else {
            return;
        };
        if let Some(i) = layout.get(ty, Name::StartModule) {
            event.set(i, path);
        }
        let path = path.to_owned();
        let function = u32::try_from(offset)
            .ok()
            .and_then(|rva| Some(self.enricher.file(&path)?.export_at(rva)?.to_owned()));
        if let (Some(i), Some(function)) = (self.layout.get(ty, Name::StartFunction), function) {
            self.event.set(i, &function);
        }
    }

    /// Fills a process creation from the table (entry and parent) and the
    /// record's logon session (`None`: the driver could not query it, and
    /// LogonGuid and LogonId stay `-`, as any value the sensor lacks).
    fn process_create(
        &mut self,
        pid: u32,
        parent_pid: u32,
        logon_id: Option<u64>,
        time: u64,
        seq: Option<u64>,
    ) {
        let ty = EventType::Sigma(Logsource::ProcessCreation);
        self.process_event(ty, pid, time, seq);
        let layout = &self.layout;
        let event = &mut self.event;
        let Some(info) = self.table.get(pid) else {
            return;
        };
        let put = |event: &mut SysmonEvent, name: Name, value: &str| {
            if let (Some(i), false) = (layout.get(ty, name), value.is_empty()) {
                event.set(i, value);
            }
        };
        put(event, Name::CommandLine, &info.command_line);
        if let Some(dir) = self.enricher.current_directory(pid, info.create_time) {
            put(event, Name::CurrentDirectory, &dir);
        }
        if let Some(logon_id) = logon_id {
            if let Some(i) = layout.get(ty, Name::LogonGuid) {
                let guid = ProcessGuid::logon(self.config.machine_id, logon_id);
                event.set_with(i, |out| guid.write(out));
            }
            if let Some(i) = layout.get(ty, Name::LogonId) {
                // Sysmon's form (every SigmaHQ sample): `0x` and lower-case
                // hex without leading zeros, e.g. `0x3e7`, `0x529ae3`.
                event.set_with(i, |out| {
                    use std::fmt::Write as _;
                    let _ = write!(out, "{logon_id:#x}");
                });
            }
        }
        put(event, Name::IntegrityLevel, &info.integrity_level);
        if let Some(i) = layout.get(ty, Name::ParentProcessId) {
            event.set_with(i, |out| {
                crate::time::push_decimal(out, u64::from(parent_pid))
            });
        }
        if let Some(parent) = self
            .table
            .get(parent_pid)
            .filter(|p| Some(p.guid) == info.parent_guid)
        {
            if let Some(i) = layout.get(ty, Name::ParentProcessGuid) {
                event.set_with(i, |out| parent.guid.write(out));
            }
            put(event, Name::ParentImage, &parent.image);
            put(event, Name::ParentCommandLine, &parent.command_line);
            put(event, Name::ParentUser, &parent.user);
        }
        let image = info.image.clone();
        self.file_fields(ty, &image);
    }

    /// Sysmon 10 from a process access record: the source (the requesting
    /// process and thread) and the target from the process table, the
    /// granted access as Sysmon writes it (`0x1fffff`), and the call trace
    /// resolved against the source's images ([`crate::call_trace`]).
    fn process_access(
        &mut self,
        e: &ringside_wire::Event<'_, ringside_wire::ProcessAccess>,
        time: u64,
        seq: Option<u64>,
    ) {
        let ty = EventType::Sigma(Logsource::ProcessAccess);
        let (source, target) = (e.header.pid, e.body.target_pid);
        self.two_processes(ty, source, target, time, seq);
        let layout = &self.layout;
        let event = &mut self.event;
        let set_with = |event: &mut SysmonEvent, name: Name, f: &mut dyn FnMut(&mut String)| {
            if let Some(i) = layout.get(ty, name) {
                event.set_with(i, |out| f(out));
            }
        };
        set_with(event, Name::SourceThreadId, &mut |out| {
            crate::time::push_decimal(out, u64::from(e.header.tid))
        });
        let granted = e.body.granted_access;
        set_with(event, Name::GrantedAccess, &mut |out| {
            use std::fmt::Write as _;
            let _ = write!(out, "{granted:#x}");
        });
        let modules = &self.modules;
        set_with(event, Name::CallTrace, &mut |out| {
            modules.write_trace(out, source, e.call_trace())
        });
    }

    /// PE version fields and hashes of the file at `dos_path`, if readable;
    /// what was learned about the file, for the caller's other fields.
    fn file_fields(&mut self, ty: EventType, dos_path: &str) -> Option<Arc<FileInfo>> {
        let info = self.enricher.file(dos_path)?;
        let v = &info.version;
        for (name, value) in [
            (Name::FileVersion, &v.file_version),
            (Name::Description, &v.description),
            (Name::Product, &v.product),
            (Name::Company, &v.company),
            (Name::OriginalFileName, &v.original_file_name),
        ] {
            if let Some(value) = value {
                self.put(ty, name, value);
            }
        }
        if !info.hashes.is_empty() {
            self.put(ty, Name::Hashes, &info.hashes);
        }
        Some(info)
    }
}

/// Whether an image-load record is a driver load (Sysmon 6): its
/// `IMAGE_INFO.Properties` has the `SystemModeImage` bit (ntddk.h, bit 8),
/// which the kernel sets for every image mapped into system space (drivers,
/// and the kernel's own DLLs), and never for a user-mode image. The bit is
/// the kernel's own statement; ringside does not guess from the image base
/// or the process id.
pub fn is_driver_load(properties: u32) -> bool {
    properties & ringside_wire::IMAGE_PROPERTY_SYSTEM_MODE != 0
}

/// The `Signed`, `Signature` and `SignatureStatus` of an image or driver
/// load; `None` is Sysmon's `-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureFields<'a> {
    pub signed: Option<&'static str>,
    pub signature: Option<&'a str>,
    pub status: Option<&'static str>,
}

/// The signature fields from the kernel's `IMAGE_INFO.ImageSignatureLevel`
/// (an `SE_SIGNING_LEVEL_*` value, ntddk.h / winnt.h) and the agent's check
/// of the file (`verdict`, when the file could be read; see
/// [`crate::enrich::authenticode`]).
///
/// From the level alone (the file unread: enrichment off, the file gone or
/// above the size bound, or its check still running):
/// - 0 `SE_SIGNING_LEVEL_UNCHECKED`: Code Integrity did not label the image,
///   so nothing is claimed (all `-`);
/// - 1 `SE_SIGNING_LEVEL_UNSIGNED`: `false`, `Unavailable`;
/// - 2..=15 (`ENTERPRISE`, `AUTHENTICODE`, `STORE`, `ANTIMALWARE`,
///   `MICROSOFT`, `WINDOWS`, `WINDOWS_TCB` and the custom levels): Code
///   Integrity validated a signature of that level, so `true`, `Valid`.
///   The level says how an image was signed, never by whom: `Signature`
///   stays `-`.
///
/// With the file's verdict, the verdict speaks ([`Verdict::sysmon`]), and
/// its signer is the `Signature`, except where Code Integrity already
/// validated the image (level 2 and up) and the agent could not check the
/// chain itself (the portable check, off Windows): an intact embedded
/// signature is then `Valid` (the kernel checked the chain when it mapped
/// the image), and an image with no embedded signature is `true`, `Valid`
/// with `Signature` `-` (a catalog signed it; catalogs are only read on
/// Windows).
pub fn signature_fields(level: u8, verdict: Option<&Verdict>) -> SignatureFields<'_> {
    let kernel_validated = level >= 2;
    let Some(verdict) = verdict else {
        let (signed, status) = match level {
            0 => (None, None),
            1 => (Some("false"), Some("Unavailable")),
            _ => (Some("true"), Some("Valid")),
        };
        return SignatureFields {
            signed,
            signature: None,
            status,
        };
    };
    let (signed, status) = match verdict.status {
        Status::Intact | Status::Unsigned if kernel_validated => ("true", "Valid"),
        _ => verdict.sysmon(),
    };
    SignatureFields {
        signed: Some(signed),
        signature: verdict.signer.as_deref(),
        status: Some(status),
    }
}

/// The process-scoped fields from a table entry.
fn fill_process(event: &mut SysmonEvent, layout: &Layout, ty: EventType, info: &ProcessInfo) {
    if let Some(i) = layout.get(ty, Name::ProcessGuid) {
        event.set_with(i, |out| info.guid.write(out));
    }
    if let (Some(i), false) = (layout.get(ty, Name::Image), info.image.is_empty()) {
        event.set(i, &info.image);
    }
    if let (Some(i), false) = (layout.get(ty, Name::User), info.user.is_empty()) {
        event.set(i, &info.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::authenticode::Flaw;

    #[test]
    fn a_pipe_name_loses_only_the_named_pipe_device() {
        for (raw, sysmon) in [
            (r"\Device\NamedPipe\MSSE-1234-server", r"\MSSE-1234-server"),
            (r"\device\namedpipe\postex_ab12", r"\postex_ab12"),
            (r"\Device\NamedPipe\", r"\"),
            (r"\Device\NamedPipeX\a", r"\Device\NamedPipeX\a"),
            (r"\Device\NamedPip", r"\Device\NamedPip"),
            (r"\Device\Mailslot\a", r"\Device\Mailslot\a"),
            ("", ""),
        ] {
            let bytes: Vec<u8> = raw.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let field = RawField {
                bytes: &bytes,
                truncated: false,
            };
            // Appended after what the buffer already holds, which stays.
            let mut out = String::from("x");
            pipe_name(&mut out, &field);
            assert_eq!(out, format!("x{sysmon}"), "{raw}");
        }
    }

    /// Every way the kernel's level and the file's verdict combine.
    #[test]
    fn signature_fields_combine_the_kernel_level_and_the_file_verdict() {
        let verdict = |status: Status, signer: Option<&str>| Verdict {
            status,
            signer: signer.map(str::to_owned),
        };
        let fields = |level: u8, v: Option<&Verdict>| {
            let f = signature_fields(level, v);
            (f.signed, f.signature.map(str::to_owned), f.status)
        };
        let some = |s: &'static str| Some(s);
        // The file unread: the level alone, never a signer.
        assert_eq!(fields(0, None), (None, None, None));
        assert_eq!(fields(1, None), (some("false"), None, some("Unavailable")));
        assert_eq!(fields(12, None), (some("true"), None, some("Valid")));
        let intact = verdict(Status::Intact, Some("Contoso"));
        let signer = Some("Contoso".to_owned());
        // Intact off Windows: Valid only where Code Integrity validated.
        assert_eq!(
            fields(0, Some(&intact)),
            (some("true"), signer.clone(), some("Unverified"))
        );
        assert_eq!(
            fields(1, Some(&intact)),
            (some("true"), signer.clone(), some("Unverified"))
        );
        assert_eq!(
            fields(2, Some(&intact)),
            (some("true"), signer.clone(), some("Valid"))
        );
        // No embedded signature but validated: a catalog signed it.
        let unsigned = verdict(Status::Unsigned, None);
        assert_eq!(
            fields(12, Some(&unsigned)),
            (some("true"), None, some("Valid"))
        );
        assert_eq!(
            fields(0, Some(&unsigned)),
            (some("false"), None, some("Unavailable"))
        );
        // A broken signature is never rescued by the level.
        let broken = verdict(Status::Invalid(Flaw::DigestMismatch), Some("Contoso"));
        assert_eq!(
            fields(12, Some(&broken)),
            (some("false"), signer.clone(), some("Invalid"))
        );
        // WinVerifyTrust's answers stand as they are.
        let revoked = verdict(Status::Revoked, Some("Contoso"));
        assert_eq!(
            fields(12, Some(&revoked)),
            (some("true"), signer, some("Revoked"))
        );
    }
}
