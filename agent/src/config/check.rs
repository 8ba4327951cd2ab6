//! `config check FILE` and `config test FILE EVENTS`.
//!
//! `config test` reads Sysmon-shaped JSON: the agent's own lines
//! (`{"EventID":…,"EventData":{…}}`) or Sysmon events rendered as JSON
//! (`{"Event":{"System":{"EventID":…},"EventData":{…}}}`, as SigmaHQ's
//! regression samples are), one or many documents per file; EVENTS is a
//! file or a directory searched for `*.json` and `*.jsonl`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ringside_content::sysmon_config::{FilterEvent, Scratch, SysmonConfig, Target};
use serde_json::Value;

/// An event read from JSON, its fields in the target's order.
#[derive(Debug)]
pub struct JsonEvent {
    pub target: Target,
    pub values: Vec<Option<String>>,
}

impl FilterEvent for JsonEvent {
    fn target(&self) -> Option<Target> {
        Some(self.target)
    }
    fn field(&self, index: usize) -> Option<&str> {
        self.values.get(index)?.as_deref()
    }
}

/// The event id of a document in either shape.
fn event_id(doc: &Value) -> Option<u64> {
    let event = doc.get("Event").unwrap_or(doc);
    let id = event
        .get("System")
        .and_then(|s| s.get("EventID"))
        .or_else(|| event.get("EventID"))?;
    match id {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(o) => o.get("#text").and_then(|t| t.as_u64()),
        _ => None,
    }
}

impl JsonEvent {
    /// The event of `doc`, if it is one the configuration filters. Fields
    /// ringside does not provide are left out, as the sensor would never
    /// have them; `-` (Sysmon's "no value") stays a value.
    pub fn from_json(doc: &Value) -> Option<JsonEvent> {
        let target = Target::from_event_id(event_id(doc)?)?;
        let data = doc
            .get("Event")
            .unwrap_or(doc)
            .get("EventData")?
            .as_object()?;
        let values = target
            .fields()
            .iter()
            .map(|field| match data.get(field.name)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
            .collect();
        Some(JsonEvent { target, values })
    }

    /// A short description: the event id and its most telling field.
    fn subject(&self) -> String {
        let field = match self.target {
            Target::ProcessCreate => "CommandLine",
            Target::ImageLoad | Target::DriverLoad => "ImageLoaded",
            Target::FileCreate | Target::FileDelete => "TargetFilename",
            Target::ProcessTerminate => "Image",
            Target::Registry => "TargetObject",
            Target::ProcessAccess => "TargetImage",
            Target::CreateRemoteThread => "TargetImage",
            Target::FileCreateStreamHash => "TargetFilename",
            Target::Pipe => "PipeName",
        };
        let value = self
            .target
            .fields()
            .iter()
            .position(|f| f.name == field)
            .and_then(|i| self.field(i))
            .unwrap_or("-");
        let value: String = value.chars().take(90).collect();
        format!("EventID {} {field}={value}", self.target.event_id())
    }
}

/// What `config test` found.
#[derive(Debug, Default)]
pub struct TestReport {
    /// One line per event.
    pub lines: Vec<String>,
    pub logged: usize,
    pub dropped: usize,
    /// Documents that are not events the configuration filters (alerts,
    /// ringside's own events, renames, other Sysmon events).
    pub not_filtered: usize,
    /// Logged and dropped per event id.
    pub by_event: BTreeMap<u16, (usize, usize)>,
    /// Files that could not be read or held invalid JSON.
    pub problems: Vec<String>,
}

impl TestReport {
    /// `N events: logged L, dropped D; not filtered U` and per event id.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} events: logged {}, dropped {}; {} not filtered (not an event a Sysmon configuration decides on)",
            self.logged + self.dropped,
            self.logged,
            self.dropped,
            self.not_filtered
        );
        let per: Vec<String> = self
            .by_event
            .iter()
            .map(|(id, (l, d))| format!("{id}: {l} logged / {d} dropped"))
            .collect();
        if !per.is_empty() {
            let _ = write!(out, " [{}]", per.join(", "));
        }
        out
    }
}

/// Files under `path` (itself if a file), sorted.
fn event_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "json" || e == "jsonl")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Decides every event under `events` with `config`.
pub fn test(config: &SysmonConfig, events: &Path) -> std::io::Result<TestReport> {
    let mut report = TestReport::default();
    let mut scratch = Scratch::default();
    for file in event_files(events)? {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                report.problems.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
        loop {
            let start = stream.byte_offset();
            let doc = match stream.next() {
                None => break,
                Some(Ok(doc)) => doc,
                Some(Err(e)) => {
                    report.problems.push(format!(
                        "{}:{}:{}: {e}",
                        file.display(),
                        e.line(),
                        e.column()
                    ));
                    break;
                }
            };
            // The document starts after the whitespace that ended the last.
            let start = start
                + text
                    .get(start..)
                    .map_or(0, |t| t.len() - t.trim_start().len());
            let line = text.get(..start).map_or(0, |t| t.matches('\n').count()) + 1;
            let Some(event) = JsonEvent::from_json(&doc) else {
                report.not_filtered += 1;
                continue;
            };
            let Some(decision) = config.decide(&event, &mut scratch) else {
                report.not_filtered += 1;
                continue;
            };
            let counts = report.by_event.entry(event.target.event_id()).or_default();
            let verdict = if decision.logged {
                report.logged += 1;
                counts.0 += 1;
                "logged "
            } else {
                report.dropped += 1;
                counts.1 += 1;
                "dropped"
            };
            report.lines.push(format!(
                "{}:{line}: {verdict} {} — by {}",
                file.display(),
                event.subject(),
                decision.by
            ));
        }
    }
    Ok(report)
}
