//! Detection: every emitted event that a Sigma logsource covers is evaluated
//! by the content engine (`ringside-content`), and each rule that fires is
//! written as one alert line next to the events.
//!
//! The bundle was compiled and validated against the sensor's schema before
//! it got here; nothing in this module parses content.

use std::io;
use std::path::Path;
use std::sync::Arc;

use ringside_content::{Bundle, BundleError, LoadPolicy, LoadReport, Scratch};

use crate::sink::Sink;
use crate::sysmon::SysmonEvent;

/// The running bundle and the per-thread buffers evaluation reuses.
#[derive(Debug)]
pub struct Detector {
    bundle: Arc<Bundle>,
    scratch: Scratch,
    line: Vec<u8>,
    /// Alerts written so far.
    pub alerts: u64,
}

impl Detector {
    /// Compiles the bundle in `dir`; with [`LoadPolicy::Strict`] one rejected
    /// rule rejects the whole bundle.
    pub fn load(dir: &Path, policy: LoadPolicy) -> Result<(Detector, LoadReport), BundleError> {
        let report = Bundle::load_with(dir, policy)?;
        Ok((Detector::new(report.bundle.clone()), report))
    }

    /// A detector running `bundle`.
    pub fn new(bundle: Arc<Bundle>) -> Detector {
        Detector {
            bundle,
            scratch: Scratch::default(),
            line: Vec::with_capacity(1024),
            alerts: 0,
        }
    }

    /// Swaps in a bundle that has fully compiled; the old one is dropped
    /// once no evaluation uses it.
    pub fn replace(&mut self, bundle: Arc<Bundle>) {
        self.bundle = bundle;
    }

    /// The running bundle.
    pub fn bundle(&self) -> &Arc<Bundle> {
        &self.bundle
    }

    /// Evaluates `event` and writes one alert line per rule that fired:
    /// `{"Alert":{"RuleId",…},"EventID":…,"EventData":{…}}`, the event's own
    /// JSON with the alert in front so a consumer of events reads alerts too.
    pub fn evaluate(&mut self, event: &SysmonEvent, sink: &mut dyn Sink) -> io::Result<()> {
        if event.logsource_opt().is_none() {
            return Ok(());
        }
        let Detector {
            bundle,
            scratch,
            line,
            alerts,
        } = self;
        let mut result = Ok(());
        bundle.engine.for_each_match(event, scratch, |rule| {
            if result.is_err() {
                return;
            }
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
            result = sink.line(std::str::from_utf8(line).unwrap_or_default());
        });
        result
    }
}
