//! The network sinks, `relp+tls://HOST:PORT` and `syslog+tls://HOST:PORT`:
//! the pipeline thread only formats a message and queues it; a sender
//! thread per sink connects, sends, waits for acknowledgments and
//! reconnects, so a slow or absent collector never blocks the pipeline.
//!
//! Queueing: a bounded memory queue, and behind it the optional spool
//! ([`super::spool`]). A message goes to memory while the spool has nothing
//! unread and memory has room, else to the spool; the sender takes from
//! memory first. So every message in memory is older than every unread
//! spooled one, and messages leave in the order they came. A message
//! neither can take is dropped and counted; the next message that fits is
//! preceded by a 1007 DeliveryDropped event saying how many and which
//! sequence numbers, so `produced == delivered + dropped` holds at the
//! collector.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::relp::RelpSession;
use super::spool::{AppendError, Position, Spool};
use super::syslog::{self, SyslogSession};
use super::tls::{TlsClient, TlsError, TlsOptions};
use super::{Sink, SinkFigures};
use crate::sysmon::{EventType, SysmonEvent};
use crate::time::{now_filetime, write_utc_time};

/// Which protocol a network sink speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Relp,
    Syslog,
}

/// A parsed `relp+tls://HOST:PORT` or `syslog+tls://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.protocol {
            Protocol::Relp => "relp+tls",
            Protocol::Syslog => "syslog+tls",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl Target {
    /// The target `output` names; None if it is not a network URL, an
    /// error saying what is wrong if it is one but malformed.
    pub fn parse(output: &str) -> Option<Result<Target, String>> {
        let (protocol, rest) = if let Some(rest) = output.strip_prefix("relp+tls://") {
            (Protocol::Relp, rest)
        } else if let Some(rest) = output.strip_prefix("syslog+tls://") {
            (Protocol::Syslog, rest)
        } else {
            return None;
        };
        let parsed = rest
            .rsplit_once(':')
            .and_then(|(host, port)| {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let port = port.parse::<u16>().ok().filter(|&p| p != 0)?;
                (!host.is_empty()).then(|| (host.to_owned(), port))
            })
            .map(|(host, port)| Target {
                protocol,
                host,
                port,
            })
            .ok_or_else(|| format!("--output `{output}`: expected HOST:PORT after `://`"));
        Some(parsed)
    }

    fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How a network sink queues and waits.
#[derive(Clone, Debug)]
pub struct NetworkOptions {
    pub tls: TlsOptions,
    /// The on-disk spool, if any, and its bound in bytes.
    pub spool: Option<(PathBuf, u64)>,
    /// Bytes of messages the memory queue holds (in front of the spool).
    pub memory_bytes: usize,
    /// RELP messages sent and not yet acknowledged, at most.
    pub window: usize,
    /// At exit, how long to keep trying to deliver before leaving the rest
    /// in the spool.
    pub drain_timeout: Duration,
    /// Connect, handshake and acknowledgment timeout.
    pub io_timeout: Duration,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            tls: TlsOptions::default(),
            spool: None,
            memory_bytes: 16 << 20,
            window: 1024,
            drain_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
        }
    }
}

/// A network sink that cannot start.
#[derive(Debug)]
pub enum NetworkError {
    Tls(TlsError),
    Spool(PathBuf, io::Error),
    Thread(io::Error),
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkError::Tls(e) => e.fmt(f),
            NetworkError::Spool(dir, e) => {
                write!(f, "spool {}: cannot open: {e}", dir.display())
            }
            NetworkError::Thread(e) => write!(f, "cannot start the sender thread: {e}"),
        }
    }
}

impl std::error::Error for NetworkError {}

/// Connection state, as 1004 reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ConnectionState {
    #[default]
    Connecting,
    Connected,
    Disconnected(String),
    Closed,
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionState::Connecting => f.write_str("connecting"),
            ConnectionState::Connected => f.write_str("connected"),
            ConnectionState::Disconnected(why) => write!(f, "disconnected ({why})"),
            ConnectionState::Closed => f.write_str("closed"),
        }
    }
}

/// A message and, if it came from the spool, where its record ends.
struct Message {
    bytes: Vec<u8>,
    spooled_at: Option<Position>,
}

/// What the pipeline thread and the sender thread share.
struct Queue {
    memory: VecDeque<Vec<u8>>,
    memory_bytes: usize,
    memory_max: usize,
    spool: Option<Spool>,
    /// Messages made by the sink itself (spool damage reports), sent next.
    reports: VecDeque<Vec<u8>>,
    /// Drops not yet reported by a 1007 event.
    unreported: Drops,
    figures: SinkFigures,
    state: ConnectionState,
    closing: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct Drops {
    count: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
}

impl Queue {
    /// Takes `message` into memory or the spool; false if neither has room.
    fn enqueue(&mut self, message: Vec<u8>) -> bool {
        let spool_drained = self.spool.as_mut().is_none_or(Spool::is_drained);
        if spool_drained && self.memory_bytes + message.len() <= self.memory_max {
            self.memory_bytes += message.len();
            self.memory.push_back(message);
            return true;
        }
        let Some(spool) = &mut self.spool else {
            return false;
        };
        match spool.append(&message) {
            Ok(()) => {
                self.figures.spooled += 1;
                true
            }
            Err(AppendError::Full) => false,
            Err(AppendError::Io(error)) => {
                self.figures.last_error = Some(format!("spool write failed: {error}"));
                false
            }
        }
    }

    /// The next message for the sender.
    fn take(&mut self) -> io::Result<Option<Message>> {
        if let Some(bytes) = self.reports.pop_front() {
            return Ok(Some(Message {
                bytes,
                spooled_at: None,
            }));
        }
        if let Some(bytes) = self.memory.pop_front() {
            self.memory_bytes -= bytes.len();
            return Ok(Some(Message {
                bytes,
                spooled_at: None,
            }));
        }
        let Some(spool) = &mut self.spool else {
            return Ok(None);
        };
        let next = spool.read()?;
        let damage: Vec<_> = spool.corrupt.drain(..).collect();
        self.figures.spool_corrupt += damage.len() as u64;
        for corrupt in damage {
            eprintln!(
                "ringside-agent: spool {}: {} bytes at offset {} skipped: {}",
                corrupt.file.display(),
                corrupt.skipped,
                corrupt.offset,
                corrupt.reason
            );
            let mut event = SysmonEvent::new(EventType::InputError);
            event.set_with(0, |out| write_utc_time(out, now_filetime()));
            event.set_named("Source", &corrupt.file.display().to_string());
            event.set_named("Offset", &corrupt.offset.to_string());
            event.set_named("Class", "spool_corrupt");
            event.set_named(
                "Message",
                &format!(
                    "{} bytes skipped, not sent: {}",
                    corrupt.skipped, corrupt.reason
                ),
            );
            self.reports.push_back(format_event(&event));
        }
        if let Some(bytes) = self.reports.pop_front() {
            // The damage report goes first; the record read comes next time.
            if let Some((record, at)) = next {
                self.reports.push_back(record);
                // Its spool position is given up: committing it later is
                // harmless (positions only move forward).
                let _ = at;
            }
            return Ok(Some(Message {
                bytes,
                spooled_at: None,
            }));
        }
        Ok(next.map(|(bytes, at)| Message {
            bytes,
            spooled_at: Some(at),
        }))
    }

    /// If drops are unreported and there is room, queues the 1007 event.
    /// While running, only when space returned; at exit (`at_exit`) the
    /// spool's reserve takes it, so a full spool still says what it dropped.
    fn report_drops(&mut self, sink: &str, at_exit: bool) {
        if self.unreported.count == 0 {
            return;
        }
        let drops = self.unreported;
        let mut event = SysmonEvent::new(EventType::DeliveryDropped);
        event.set_with(0, |out| write_utc_time(out, now_filetime()));
        event.set_named("Sink", sink);
        event.set_named("Dropped", &drops.count.to_string());
        event.set_named("DroppedTotal", &self.figures.dropped.to_string());
        if let Some(first) = drops.first_seq {
            event.set_named("FirstSeq", &first.to_string());
        }
        if let Some(last) = drops.last_seq {
            event.set_named("LastSeq", &last.to_string());
        }
        let message = format_event(&event);
        // Memory if it may take it (order), else the spool's reserve.
        let spooling = self.spool.as_mut().is_some_and(|s| !s.is_drained());
        let taken = if spooling {
            at_exit
                && self
                    .spool
                    .as_mut()
                    .is_some_and(|s| s.append_report(&message).is_ok())
        } else {
            self.enqueue(message.clone())
                || (at_exit
                    && self
                        .spool
                        .as_mut()
                        .is_some_and(|s| s.append_report(&message).is_ok()))
        };
        if taken {
            self.unreported = Drops::default();
        }
    }

    /// Counts `message` as dropped, for the next 1007 report.
    fn drop_message(&mut self, seq: Option<u64>) {
        self.figures.dropped += 1;
        let drops = &mut self.unreported;
        drops.count += 1;
        if drops.first_seq.is_none() {
            drops.first_seq = seq;
        }
        if seq.is_some() {
            drops.last_seq = seq;
        }
    }
}

/// The RFC 5424 message for one event (sink-made events carry no MSGID
/// beyond their id either).
fn format_event(event: &SysmonEvent) -> Vec<u8> {
    let mut json = Vec::with_capacity(512);
    event.write_json(&mut json);
    let mut out = Vec::with_capacity(json.len() + 96);
    syslog::message(
        &mut out,
        &syslog::hostname(),
        event.event_type().event_id(),
        &json,
    );
    out
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a message is queued or the sink closes.
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A sender thread that panicked leaves the queue as it was; go on.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A network sink (see the module comment).
pub struct NetworkSink {
    name: String,
    hostname: String,
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
    json: Vec<u8>,
}

impl fmt::Debug for NetworkSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkSink")
            .field("name", &self.name)
            .finish()
    }
}

impl NetworkSink {
    /// Reads the TLS files, opens the spool and starts the sender thread.
    /// Connecting happens there: a collector that is down at start is
    /// retried, its messages queued.
    pub fn start(target: Target, options: NetworkOptions) -> Result<NetworkSink, NetworkError> {
        let tls = TlsClient::new(&options.tls, &target.host).map_err(NetworkError::Tls)?;
        let spool = match &options.spool {
            Some((dir, max)) => {
                // Each network sink has a spool of its own under the
                // directory, named for its target.
                let sub = dir.join(
                    target
                        .to_string()
                        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_"),
                );
                Some(Spool::open(&sub, *max).map_err(|e| NetworkError::Spool(sub.clone(), e))?)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                memory: VecDeque::new(),
                memory_bytes: 0,
                memory_max: options.memory_bytes,
                spool,
                reports: VecDeque::new(),
                unreported: Drops::default(),
                figures: SinkFigures {
                    name: target.to_string(),
                    ..SinkFigures::default()
                },
                state: ConnectionState::Connecting,
                closing: false,
            }),
            ready: Condvar::new(),
        });
        let name = target.to_string();
        let sender = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("sink {name}"))
                .spawn(move || Sender::new(target, tls, options, shared).run())
                .map_err(NetworkError::Thread)?
        };
        Ok(NetworkSink {
            name,
            hostname: syslog::hostname(),
            shared,
            sender: Some(sender),
            json: Vec::with_capacity(1024),
        })
    }

    fn push(&mut self, msgid: u16, seq: Option<u64>) {
        let mut message = Vec::with_capacity(self.json.len() + 96);
        syslog::message(&mut message, &self.hostname, msgid, &self.json);
        let mut queue = self.shared.lock();
        queue.figures.produced += 1;
        queue.report_drops(&self.name, false);
        if queue.unreported.count > 0 || !queue.enqueue(message) {
            queue.drop_message(seq);
        }
        drop(queue);
        self.shared.ready.notify_one();
    }

    /// Stops the sender after it delivered what it could within the drain
    /// timeout; the rest stays in the spool.
    pub fn close(&mut self) {
        {
            let mut queue = self.shared.lock();
            queue.closing = true;
        }
        self.shared.ready.notify_all();
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
            // What happened to every message, once, at exit.
            for figures in self.figures() {
                eprintln!("ringside-agent: {}", figures.text());
            }
        }
    }
}

impl Drop for NetworkSink {
    fn drop(&mut self) {
        self.close();
    }
}

impl Sink for NetworkSink {
    fn event(&mut self, event: &SysmonEvent) -> io::Result<()> {
        self.json.clear();
        event.write_json(&mut self.json);
        self.push(event.event_type().event_id(), event.seq());
        Ok(())
    }

    fn line(&mut self, json: &str) -> io::Result<()> {
        self.json.clear();
        self.json.extend_from_slice(json.as_bytes());
        // Alerts: the EventID is in the JSON; MSGID says what it is.
        let id = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|v| v.get("EventID").and_then(serde_json::Value::as_u64))
            .and_then(|id| u16::try_from(id).ok())
            .unwrap_or(0);
        self.push(id, None);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn figures(&self) -> Vec<SinkFigures> {
        let queue = self.shared.lock();
        let mut figures = queue.figures.clone();
        figures.state = queue.state.to_string();
        vec![figures]
    }
}

/// A message sent and not yet acknowledged (RELP).
struct InFlight {
    txnr: u64,
    message: Message,
}

/// The sender thread's side.
struct Sender {
    target: Target,
    tls: TlsClient,
    options: NetworkOptions,
    shared: Arc<Shared>,
    in_flight: VecDeque<InFlight>,
    /// When closing began (the drain deadline runs from there).
    closing_since: Option<Instant>,
    last_logged: Option<String>,
}

enum Session {
    Relp(RelpSession<super::tls::TlsStream>),
    Syslog(SyslogSession<super::tls::TlsStream>),
}

impl Sender {
    fn new(target: Target, tls: TlsClient, options: NetworkOptions, shared: Arc<Shared>) -> Self {
        Sender {
            target,
            tls,
            options,
            shared,
            in_flight: VecDeque::new(),
            closing_since: None,
            last_logged: None,
        }
    }

    fn set_state(&mut self, state: ConnectionState) {
        if let ConnectionState::Disconnected(why) = &state {
            // Said once per distinct reason: a collector down for an hour
            // is one line, not one per retry.
            if self.last_logged.as_deref() != Some(why) {
                eprintln!("ringside-agent: {}: {why}", self.target);
                self.last_logged = Some(why.clone());
            }
        } else if state == ConnectionState::Connected && self.last_logged.take().is_some() {
            eprintln!("ringside-agent: {}: connected", self.target);
        }
        let mut queue = self.shared.lock();
        if let ConnectionState::Disconnected(why) = &state {
            queue.figures.last_error = Some(why.clone());
        }
        queue.state = state;
    }

    /// True once closing and the drain time is over (or there is nothing
    /// left to deliver).
    fn should_stop(&mut self) -> bool {
        let mut queue = self.shared.lock();
        if !queue.closing {
            return false;
        }
        let since = *self.closing_since.get_or_insert_with(Instant::now);
        let empty = self.in_flight.is_empty()
            && queue.memory.is_empty()
            && queue.reports.is_empty()
            && queue.spool.as_mut().is_none_or(Spool::is_drained);
        empty || since.elapsed() >= self.options.drain_timeout
    }

    fn run(mut self) {
        let mut backoff = Duration::from_millis(50);
        loop {
            if self.should_stop() {
                break;
            }
            self.set_state(ConnectionState::Connecting);
            let result = self.connect().and_then(|session| {
                backoff = Duration::from_millis(50);
                self.set_state(ConnectionState::Connected);
                self.deliver(session)
            });
            match result {
                Ok(()) => break,
                Err(error) => {
                    self.set_state(ConnectionState::Disconnected(error.to_string()));
                    if self.should_stop() {
                        break;
                    }
                    let queue = self.shared.lock();
                    // Woken early only by closing; new messages wait.
                    let _ = self.shared.ready.wait_timeout(queue, backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.persist();
        self.set_state(ConnectionState::Closed);
    }

    fn connect(&mut self) -> io::Result<Session> {
        let stream = self
            .tls
            .connect(&self.target.address(), self.options.io_timeout)?;
        Ok(match self.target.protocol {
            Protocol::Relp => Session::Relp(RelpSession::open(stream)?),
            Protocol::Syslog => Session::Syslog(SyslogSession::new(stream)),
        })
    }

    /// Sends until closing and drained (Ok) or the connection fails (Err).
    fn deliver(&mut self, mut session: Session) -> io::Result<()> {
        // What was in flight when the last connection broke goes first.
        if let Session::Relp(relp) = &mut session {
            let resent = self.in_flight.len() as u64;
            for entry in &mut self.in_flight {
                entry.txnr = relp.send(&entry.message.bytes);
            }
            if resent > 0 {
                relp.flush()?;
                self.shared.lock().figures.resent += resent;
            }
        }
        loop {
            // At exit, stop when drained or when the drain time is over,
            // even with a backlog: the rest stays in the spool.
            if self.should_stop() {
                let stream = match &mut session {
                    Session::Relp(relp) => {
                        if self.in_flight.is_empty() {
                            let _ = relp.close();
                        }
                        relp.stream_mut()
                    }
                    Session::Syslog(syslog) => syslog.stream_mut(),
                };
                if let Err(error) = super::tls::close(stream) {
                    eprintln!("ringside-agent: {}: closing: {error}", self.target);
                }
                return Ok(());
            }
            let room = match &session {
                Session::Relp(_) => self.options.window.saturating_sub(self.in_flight.len()),
                Session::Syslog(_) => 256,
            };
            let batch = self.take(room)?;
            let sent = batch.len() as u64;
            match &mut session {
                Session::Relp(relp) => {
                    for message in batch {
                        let txnr = relp.send(&message.bytes);
                        self.in_flight.push_back(InFlight { txnr, message });
                    }
                    if sent > 0 {
                        relp.flush()?;
                        self.shared.lock().figures.sent += sent;
                    }
                    if !self.in_flight.is_empty() {
                        self.acknowledgments(relp)?;
                        continue;
                    }
                }
                Session::Syslog(syslog) => {
                    let last = batch.iter().rev().find_map(|m| m.spooled_at);
                    for message in &batch {
                        syslog.send(&message.bytes);
                    }
                    if sent > 0 {
                        syslog.flush()?;
                        let mut queue = self.shared.lock();
                        queue.figures.sent += sent;
                        if let (Some(at), Some(spool)) = (last, &mut queue.spool) {
                            spool.commit(at)?;
                        }
                        continue;
                    }
                }
            }
            // Nothing to send and nothing in flight: wait for more (at
            // exit, the loop's first check ends it).
            let queue = self.shared.lock();
            if queue.memory.is_empty() && queue.reports.is_empty() && !queue.closing {
                let _ = self
                    .shared
                    .ready
                    .wait_timeout(queue, Duration::from_millis(100));
            }
        }
    }

    /// Up to `room` messages from the queue.
    fn take(&mut self, room: usize) -> io::Result<Vec<Message>> {
        let mut queue = self.shared.lock();
        let mut batch = Vec::new();
        while batch.len() < room {
            match queue.take()? {
                Some(message) => batch.push(message),
                None => break,
            }
        }
        Ok(batch)
    }

    /// Reads at least one acknowledgment, and every one already buffered.
    fn acknowledgments(&mut self, relp: &mut RelpSession<super::tls::TlsStream>) -> io::Result<()> {
        let mut acked = 0u64;
        let mut commit = None;
        loop {
            let response = relp.response()?;
            // rsyslog answers in order; an answer for something not in
            // flight is a protocol error.
            let Some(index) = self.in_flight.iter().position(|e| e.txnr == response.txnr) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("RELP: acknowledgment for unknown txnr {}", response.txnr),
                ));
            };
            // Everything before it was acknowledged earlier or is implied.
            for entry in self.in_flight.drain(..=index) {
                acked += 1;
                if let Some(at) = entry.message.spooled_at {
                    commit = Some(at);
                }
            }
            if !relp.response_ready() {
                break;
            }
        }
        let mut queue = self.shared.lock();
        queue.figures.acknowledged += acked;
        if let (Some(at), Some(spool)) = (commit, &mut queue.spool) {
            spool.commit(at)?;
        }
        Ok(())
    }

    /// At exit, what is still in flight or in memory goes in front of the
    /// spool; without a spool it is lost and counted as dropped.
    fn persist(&mut self) {
        let mut queue = self.shared.lock();
        let mut records: Vec<Vec<u8>> = self.in_flight.drain(..).map(|e| e.message.bytes).collect();
        records.extend(queue.reports.drain(..));
        records.extend(queue.memory.drain(..));
        queue.memory_bytes = 0;
        if records.is_empty() {
            let name = self.target.to_string();
            queue.report_drops(&name, true);
            return;
        }
        // The oldest that fit are kept; the rest are dropped and reported.
        let mut room = queue.spool.as_ref().map_or(0, Spool::free);
        let keep = records
            .iter()
            .take_while(|r| {
                let size = r.len() as u64 + super::spool::RECORD_HEADER;
                let fits = size <= room;
                room = room.saturating_sub(size);
                fits
            })
            .count();
        let dropped = records.split_off(keep);
        let kept = records.len() as u64;
        if let Some(spool) = &mut queue.spool
            && let Err(error) = spool.prepend(&records)
        {
            eprintln!(
                "ringside-agent: {}: {kept} message(s) not delivered at exit could not be spooled: {error:?}",
                self.target
            );
            queue.figures.dropped += kept;
        } else {
            queue.figures.spooled += kept;
        }
        if !dropped.is_empty() {
            eprintln!(
                "ringside-agent: {}: {} message(s) not delivered at exit and not kept ({})",
                self.target,
                dropped.len(),
                if queue.spool.is_some() {
                    "the spool is full"
                } else {
                    "no --spool-dir"
                }
            );
        }
        // The drops while running and these (older messages) are two
        // ranges of sequence numbers: one report each.
        let name = self.target.to_string();
        queue.report_drops(&name, true);
        for message in &dropped {
            queue.drop_message(seq_of(message));
        }
        queue.report_drops(&name, true);
    }
}

/// The `"Seq":N` of a formatted message, if it has one.
fn seq_of(message: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(message).ok()?;
    let at = text.find("\"Seq\":")? + 6;
    let digits: &str = text
        .get(at..)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?;
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_malformed_ones_say_why() {
        assert_eq!(
            Target::parse("relp+tls://collector.example:2514"),
            Some(Ok(Target {
                protocol: Protocol::Relp,
                host: "collector.example".into(),
                port: 2514
            }))
        );
        let t = Target::parse("syslog+tls://[::1]:6514")
            .expect("url")
            .expect("ok");
        assert_eq!(
            (t.protocol, t.host.as_str(), t.address()),
            (Protocol::Syslog, "::1", "[::1]:6514".to_owned())
        );
        assert!(Target::parse("file:/tmp/x").is_none());
        for bad in [
            "relp+tls://host",
            "relp+tls://:1",
            "syslog+tls://h:0",
            "relp+tls://h:99999",
        ] {
            let error = Target::parse(bad).expect("url").expect_err(bad);
            assert!(error.contains("HOST:PORT"), "{error}");
        }
    }
}
