//! `content regression`: SigmaHQ's regression samples (real Sysmon events)
//! replayed through the schema mapping and the engine; each sample must fire
//! the rule its `info.yml` names.

use crate::bundle::{BundleError, rule_files};
use crate::check::check;
use crate::compile::Rejection;
use crate::engine::{Engine, Scratch};
use crate::schema::{Logsource, OwnedEvent};
use crate::yaml::{self, Node, Value};
use std::fmt;
use std::path::{Path, PathBuf};

/// Largest regression sample read (SigmaHQ's are a few KB; a multi-event
/// `.evtx` rendering stays far below this).
const MAX_SAMPLE_BYTES: u64 = 16 << 20;

/// What happened to one regression folder.
#[derive(Debug)]
pub enum Outcome {
    /// The rule fired on `fired` of the sample's `events`. SigmaHQ's
    /// `match_count` is kept for information only: several samples hold more
    /// matching events than it says (e.g. the AnyDesk sample has three writes
    /// to `user.conf*` and `match_count: 1`).
    Fired {
        events: usize,
        fired: usize,
        match_count: Option<usize>,
    },
    /// The rule fired on none of the sample's events.
    NotFired { events: usize },
    /// The rule was rejected by the compiler (e.g. it names a field we do not provide).
    RuleRejected(Rejection),
    /// The sample could not be read as a supported event.
    BadSample(String),
}

/// One regression folder with a supported logsource.
#[derive(Debug)]
pub struct Case {
    pub folder: PathBuf,
    pub rule_id: String,
    pub logsource: Logsource,
    pub outcome: Outcome,
}

/// All cases, plus how many folders were skipped and why.
#[derive(Debug, Default)]
pub struct RegressionReport {
    pub cases: Vec<Case>,
    /// Folders whose rule targets a logsource ringside does not provide.
    pub skipped_unsupported: usize,
    /// Folders whose rule id is not in the rules directory.
    pub rule_not_found: Vec<PathBuf>,
}

impl RegressionReport {
    pub fn fired(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fired { .. }))
            .count()
    }

    pub fn summary(&self) -> String {
        let count = |f: fn(&Outcome) -> bool| self.cases.iter().filter(|c| f(&c.outcome)).count();
        format!(
            "regression: {} cases, fired {}, not fired {}, rule rejected {}, bad sample {}; skipped {} (unsupported logsource), {} rule not found",
            self.cases.len(),
            self.fired(),
            count(|o| matches!(o, Outcome::NotFired { .. })),
            count(|o| matches!(o, Outcome::RuleRejected(_))),
            count(|o| matches!(o, Outcome::BadSample(_))),
            self.skipped_unsupported,
            self.rule_not_found.len()
        )
    }
}

impl fmt::Display for RegressionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for case in &self.cases {
            let folder = case.folder.display();
            match &case.outcome {
                Outcome::Fired { .. } => {}
                Outcome::NotFired { events } => writeln!(
                    f,
                    "{folder}: rule {} fired on none of {events} events",
                    case.rule_id
                )?,
                Outcome::RuleRejected(rejection) => {
                    writeln!(f, "{folder}: rule rejected: {rejection}")?
                }
                Outcome::BadSample(why) => writeln!(f, "{folder}: {why}")?,
            }
        }
        writeln!(f, "{}", self.summary())
    }
}

/// Rule id and logsource of a rule file, even if it was rejected.
fn id_and_logsource(path: &Path) -> Option<(String, Option<Logsource>)> {
    let bytes = crate::files::read_regular(path, yaml::MAX_BYTES as u64).ok()?;
    let doc = yaml::parse(std::str::from_utf8(&bytes).ok()?).ok()?;
    let id = doc.get("id")?.scalar_text()?;
    let logsource = doc.get("logsource");
    let text = |key: &str| {
        logsource
            .and_then(|l| l.get(key))
            .and_then(Node::scalar_text)
    };
    let supported = (text("product").as_deref() == Some("windows") && text("service").is_none())
        .then(|| {
            text("category")
                .as_deref()
                .and_then(Logsource::from_category)
        })
        .flatten();
    Some((id, supported))
}

/// Replays every regression folder under `regression_dir` whose rule (found
/// by id under `rules_dir`) targets a supported logsource.
pub fn regression(
    rules_dir: &Path,
    regression_dir: &Path,
) -> Result<RegressionReport, BundleError> {
    let checked = check(rules_dir)?;
    let engine = Engine::new(checked.accepted.clone());
    let mut report = RegressionReport::default();
    let mut scratch = Scratch::default();
    let infos: Vec<PathBuf> = rule_files(regression_dir)?
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "info.yml"))
        .collect();
    let all_rules = rule_files(rules_dir)?;
    let index: Vec<(String, Option<Logsource>, PathBuf)> = all_rules
        .iter()
        .filter_map(|p| id_and_logsource(p).map(|(id, l)| (id, l, p.clone())))
        .collect();
    for info in infos {
        let folder = info.parent().map(Path::to_path_buf).unwrap_or_default();
        let Some(doc) = crate::files::read_regular(&info, yaml::MAX_BYTES as u64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| yaml::parse(&t).ok())
        else {
            report.rule_not_found.push(folder);
            continue;
        };
        let first = |key: &str| match doc.get(key).map(|n| &n.value) {
            Some(Value::Seq(items)) => items.first().cloned(),
            _ => None,
        };
        let rule_id = first("rule_metadata")
            .and_then(|m| m.get("id").and_then(Node::scalar_text))
            .unwrap_or_default();
        let expected = first("regression_tests_info")
            .and_then(|t| t.get("match_count").and_then(Node::scalar_text))
            .and_then(|n| n.parse().ok());
        let Some((_, logsource, rule_path)) = index.iter().find(|(id, _, _)| *id == rule_id) else {
            report.rule_not_found.push(folder);
            continue;
        };
        let Some(logsource) = *logsource else {
            report.skipped_unsupported += 1;
            continue;
        };
        let outcome =
            if let Some(rejection) = checked.rejections.iter().find(|r| r.path == *rule_path) {
                Outcome::RuleRejected(rejection.clone())
            } else {
                replay(&folder, &rule_id, &engine, &mut scratch, expected)
            };
        report.cases.push(Case {
            folder,
            rule_id,
            logsource,
            outcome,
        });
    }
    Ok(report)
}

/// Loads every `*.json` sample of `folder` (an event or a list of events)
/// and counts the events on which `rule_id` fires.
fn replay(
    folder: &Path,
    rule_id: &str,
    engine: &Engine,
    scratch: &mut Scratch,
    match_count: Option<usize>,
) -> Outcome {
    let mut samples: Vec<PathBuf> = match std::fs::read_dir(folder) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(e) => return Outcome::BadSample(format!("cannot list samples: {e}")),
    };
    samples.sort();
    let (mut events, mut fired) = (0, 0);
    for sample in samples {
        let bytes = match crate::files::read_regular(&sample, MAX_SAMPLE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) => return Outcome::BadSample(format!("{}: {e}", sample.display())),
        };
        // A sample is one event, a list of events, or several concatenated
        // JSON documents (how SigmaHQ renders multi-event .evtx files).
        let mut list = Vec::new();
        for document in
            serde_json::Deserializer::from_slice(&bytes).into_iter::<serde_json::Value>()
        {
            match document {
                Ok(serde_json::Value::Array(items)) => list.extend(items),
                Ok(one) => list.push(one),
                Err(e) => return Outcome::BadSample(format!("{}: {e}", sample.display())),
            }
        }
        for item in list {
            let event = match OwnedEvent::from_sysmon_json(&item) {
                Ok(event) => event,
                Err(e) => return Outcome::BadSample(format!("{}: {e}", sample.display())),
            };
            events += 1;
            let mut hit = false;
            engine.for_each_match(&event, scratch, |rule| hit |= rule.id == rule_id);
            fired += usize::from(hit);
        }
    }
    if fired > 0 {
        Outcome::Fired {
            events,
            fired,
            match_count,
        }
    } else {
        Outcome::NotFired { events }
    }
}
