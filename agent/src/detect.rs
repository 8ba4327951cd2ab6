//! Detection: every emitted event that a Sigma logsource covers is evaluated
//! by the content engine (`ringside-content`), and each rule that fires is
//! written as one alert line next to the events.
//!
//! The bundle was compiled and validated against the sensor's schema before
//! it got here; nothing in this module parses content. New bundles arrive
//! compiled (from a [`WatchHandle`]) and are swapped in between two events.
//!
//! Runtime rollback. "The engine fails at run time" is defined as: a newly
//! activated bundle is on probation for its first [`Budget::window`] evaluated
//! events; evaluating one event (matching only, not writing alerts) taking
//! longer than [`Budget::per_event`] counts as over budget, and more than
//! [`Budget::max_over`] such events during probation roll the bundle back to
//! the one it replaced (a 1005 ContentRejected notice says so). Isolated
//! slow events (preemption, page faults) stay under `max_over`; a
//! pathological regex or an oversized rule set does not. A bundle that
//! completes probation becomes the last known good (saved to disk if a
//! state directory is configured); a bundle that fails it never does.
//! Measuring costs two clock reads per event during probation only.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringside_content::compile::CompiledRule;
use ringside_content::{
    Bundle, BundleError, BundleSource, LastKnownGood, LoadPolicy, LoadReport, Scratch, WatchEvent,
    WatchHandle,
};

use crate::sink::Sink;
use crate::sysmon::SysmonEvent;

/// A monotonic time source; injected so probation is testable without timing.
pub trait Clock: Send + fmt::Debug {
    /// Time since an arbitrary fixed origin; never decreases.
    fn now(&self) -> Duration;
}

/// The real clock.
#[derive(Debug)]
pub struct MonotonicClock(Instant);

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock(Instant::now())
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The runtime budget a newly activated bundle must keep (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Longest acceptable evaluation of one event.
    pub per_event: Duration,
    /// Over-budget events tolerated during probation.
    pub max_over: u32,
    /// Evaluated events a new bundle is on probation for (0: none).
    pub window: u32,
}

impl Default for Budget {
    /// 2 ms per event (the SigmaHQ Windows set evaluates in tens of
    /// microseconds), at most 100 slow events in the first 10,000.
    fn default() -> Self {
        Budget {
            per_event: Duration::from_millis(2),
            max_over: 100,
            window: 10_000,
        }
    }
}

/// Something the pipeline reports as an agent event (1005 / 1006).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// 1006: `source` now runs.
    Activated {
        source: PathBuf,
        rules: usize,
        files: usize,
        previous: Option<PathBuf>,
    },
    /// 1005: `source` was refused or rolled back; `running` stays in force.
    Rejected {
        source: PathBuf,
        running: PathBuf,
        reason: String,
    },
}

/// A bundle on probation.
#[derive(Debug)]
struct Probation {
    events: u32,
    over: u32,
}

/// The running bundle, its probation, and the per-thread buffers evaluation reuses.
#[derive(Debug)]
pub struct Detector {
    bundle: Arc<Bundle>,
    /// What a bundle on probation rolls back to.
    previous: Option<Arc<Bundle>>,
    probation: Option<Probation>,
    /// The sources of the bundle on probation, saved as last known good
    /// when it passes.
    pending_save: Option<BundleSource>,
    last_known_good: Option<LastKnownGood>,
    updates: Option<WatchHandle>,
    budget: Budget,
    clock: Box<dyn Clock>,
    notices: Vec<Notice>,
    scratch: Scratch,
    line: Vec<u8>,
    /// Alerts written so far.
    pub alerts: u64,
    /// Bundles rolled back for exceeding the budget.
    pub rollbacks: u64,
}

impl Detector {
    /// Compiles the bundle in `dir`; with [`LoadPolicy::Strict`] one rejected
    /// rule rejects the whole bundle.
    pub fn load(dir: &Path, policy: LoadPolicy) -> Result<(Detector, LoadReport), BundleError> {
        let report = Bundle::load_with(dir, policy)?;
        Ok((Detector::new(report.bundle.clone()), report))
    }

    /// A detector running `bundle`, with no probation and nothing to save.
    pub fn new(bundle: Arc<Bundle>) -> Detector {
        Detector {
            bundle,
            previous: None,
            probation: None,
            pending_save: None,
            last_known_good: None,
            updates: None,
            budget: Budget::default(),
            clock: Box::new(MonotonicClock::default()),
            notices: Vec::new(),
            scratch: Scratch::default(),
            line: Vec::with_capacity(1024),
            alerts: 0,
            rollbacks: 0,
        }
    }

    /// A detector starting with a freshly compiled bundle: on probation (with
    /// nothing to roll back to) and, once it passes, saved as last known good.
    pub fn start(report: LoadReport) -> Detector {
        let mut detector = Detector::new(Arc::clone(&report.bundle));
        detector.probation = Some(Probation { events: 0, over: 0 });
        detector.pending_save = Some(report.sources);
        detector
    }

    /// Sets the runtime budget (applies from the next activation on; the
    /// bundle on probation now keeps counting against the new budget).
    pub fn with_budget(mut self, budget: Budget) -> Detector {
        self.budget = budget;
        self.check_probation_end();
        self
    }

    /// Replaces the clock (tests inject a deterministic one).
    pub fn with_clock(mut self, clock: Box<dyn Clock>) -> Detector {
        self.clock = clock;
        self
    }

    /// Keeps bundles that pass probation in `last_known_good`.
    pub fn with_last_known_good(mut self, last_known_good: LastKnownGood) -> Detector {
        self.last_known_good = Some(last_known_good);
        self.check_probation_end();
        self
    }

    /// Takes new bundles from a spawned watcher (see [`Detector::poll_updates`]).
    pub fn with_updates(mut self, updates: WatchHandle) -> Detector {
        self.updates = Some(updates);
        self
    }

    /// Queues a notice for the pipeline to emit (e.g. a start-up fallback).
    pub fn notify(&mut self, notice: Notice) {
        self.notices.push(notice);
    }

    /// Notices to emit, oldest first.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Applies what the watcher has delivered since the last call. Called
    /// between batches, so a swap never splits an event's evaluation.
    pub fn poll_updates(&mut self) {
        while let Some(event) = self.updates.as_ref().and_then(WatchHandle::try_next) {
            self.apply(event);
        }
    }

    /// Applies one watcher result: activates a compiled bundle, reports a
    /// rejected one (the running bundle stays).
    pub fn apply(&mut self, event: WatchEvent) {
        match event {
            WatchEvent::Compiled(report) => self.activate(report),
            WatchEvent::Rejected { source, error } => self.notices.push(Notice::Rejected {
                source,
                running: self.bundle.source.clone(),
                reason: error.to_string(),
            }),
        }
    }

    /// Swaps in a bundle that has fully compiled and puts it on probation.
    /// If the running bundle is itself still on probation, the rollback
    /// target stays the bundle before it (the one that proved itself).
    pub fn activate(&mut self, report: LoadReport) {
        let old = std::mem::replace(&mut self.bundle, Arc::clone(&report.bundle));
        self.notices.push(Notice::Activated {
            source: report.bundle.source.clone(),
            rules: report.bundle.engine.rule_count(),
            files: report.files,
            previous: Some(old.source.clone()),
        });
        if self.probation.is_none() || self.previous.is_none() {
            self.previous = Some(old);
        }
        self.probation = Some(Probation { events: 0, over: 0 });
        self.pending_save = Some(report.sources);
        self.check_probation_end();
    }

    /// Swaps in `bundle` with no probation (tests and callers that manage
    /// content themselves).
    pub fn replace(&mut self, bundle: Arc<Bundle>) {
        self.bundle = bundle;
        self.previous = None;
        self.probation = None;
        self.pending_save = None;
    }

    /// The running bundle.
    pub fn bundle(&self) -> &Arc<Bundle> {
        &self.bundle
    }

    /// True while the running bundle is on probation.
    pub fn on_probation(&self) -> bool {
        self.probation.is_some()
    }

    /// Counts one evaluation that took `cost`; rolls back or ends probation.
    fn account(&mut self, cost: Duration) {
        let Some(probation) = &mut self.probation else {
            return;
        };
        probation.events = probation.events.saturating_add(1);
        if cost > self.budget.per_event {
            probation.over = probation.over.saturating_add(1);
        }
        if probation.over > self.budget.max_over {
            let reason = format!(
                "runtime budget exceeded: {} of its first {} evaluated events took longer than {:?} (at most {} allowed)",
                probation.over, probation.events, self.budget.per_event, self.budget.max_over
            );
            self.probation = None;
            self.pending_save = None;
            let failed = self.bundle.source.clone();
            match self.previous.take() {
                Some(previous) => {
                    self.bundle = previous;
                    self.rollbacks += 1;
                    self.notices.push(Notice::Rejected {
                        source: failed,
                        running: self.bundle.source.clone(),
                        reason: format!("{reason}; rolled back"),
                    });
                }
                None => self.notices.push(Notice::Rejected {
                    source: failed.clone(),
                    running: failed,
                    reason: format!(
                        "{reason}; no earlier bundle to roll back to, so it keeps running and is not kept as last known good"
                    ),
                }),
            }
            return;
        }
        self.check_probation_end();
    }

    /// Ends probation once the window is complete: the old bundle is
    /// released and the new one saved as last known good.
    fn check_probation_end(&mut self) {
        let Some(probation) = &self.probation else {
            return;
        };
        if probation.events < self.budget.window {
            return;
        }
        self.probation = None;
        self.previous = None;
        let Some(sources) = self.pending_save.take() else {
            return;
        };
        if let Some(last_known_good) = &self.last_known_good {
            if let Err(e) = last_known_good.save(&sources) {
                // Detection goes on with the bundle; only the copy is missing.
                eprintln!(
                    "ringside-agent: {}: cannot save the last known good bundle: {e}",
                    last_known_good.path().display()
                );
            }
        }
    }

    /// Evaluates `event` and writes one alert line per rule that fired:
    /// `{"Alert":{"RuleId",…},"EventID":…,"EventData":{…}}`, the event's own
    /// JSON with the alert in front so a consumer of events reads alerts too.
    pub fn evaluate(&mut self, event: &SysmonEvent, sink: &mut dyn Sink) -> io::Result<()> {
        if event.logsource_opt().is_none() {
            return Ok(());
        }
        // A clone of the Arc, so the fired rules borrow it and not `self`
        // (which `account` may swap).
        let bundle = Arc::clone(&self.bundle);
        let timed = self.probation.is_some();
        let started = if timed {
            self.clock.now()
        } else {
            Duration::ZERO
        };
        let mut fired: Vec<&CompiledRule> = Vec::new();
        bundle
            .engine
            .for_each_match(event, &mut self.scratch, |rule| fired.push(rule));
        if timed {
            let cost = self.clock.now().saturating_sub(started);
            self.account(cost);
        }
        let Detector { line, alerts, .. } = self;
        for rule in fired {
            line.clear();
            line.extend_from_slice(b"{\"Alert\":");
            let header = serde_json::json!({
                "RuleId": rule.id,
                "Title": rule.title,
                "Level": rule.level,
                "Tags": rule.tags,
                "RuleFile": rule.path.display().to_string(),
            });
            // Serializing a JSON value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *line, &header);
            line.push(b',');
            let event_start = line.len();
            event.write_json(line);
            // Drop the event object's opening brace: its members continue
            // the alert object.
            line.remove(event_start);
            *alerts += 1;
            sink.line(std::str::from_utf8(line).unwrap_or_default())?;
        }
        Ok(())
    }
}
