//! The account of a configuration's elements: each one applied, ignored
//! with a reason, or rejected with a reason, where it was. `config check`
//! prints it; a configuration with any rejection is rejected whole.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// What became of one element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// `kind` groups the summary (e.g. "event type not produced"); `why`
    /// says it for this element.
    Ignored {
        kind: &'static str,
        why: String,
    },
    Rejected {
        kind: &'static str,
        why: String,
    },
}

/// One element of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub line: u32,
    pub column: u32,
    /// The element's tag, e.g. `CommandLine`.
    pub name: String,
    /// The Sysmon event type it belongs to (`ProcessCreate`), for elements
    /// inside an event element (and the event element itself).
    pub event_type: Option<&'static str>,
    pub outcome: Outcome,
}

/// Every element of one configuration file, in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub path: PathBuf,
    pub elements: Vec<Element>,
}

/// Applied, ignored (by reason) and rejected (by reason) counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub applied: usize,
    pub ignored: BTreeMap<&'static str, usize>,
    pub rejected: BTreeMap<&'static str, usize>,
}

impl Counts {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Applied => self.applied += 1,
            Outcome::Ignored { kind, .. } => *self.ignored.entry(kind).or_default() += 1,
            Outcome::Rejected { kind, .. } => *self.rejected.entry(kind).or_default() += 1,
        }
    }

    pub fn ignored_total(&self) -> usize {
        self.ignored.values().sum()
    }

    pub fn rejected_total(&self) -> usize {
        self.rejected.values().sum()
    }
}

impl fmt::Display for Counts {
    /// `applied N, ignored M (by reason …), rejected K (by reason …)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = |map: &BTreeMap<&str, usize>| -> String {
            if map.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> = map.iter().map(|(k, n)| format!("{k}: {n}")).collect();
                format!(" ({})", parts.join(", "))
            }
        };
        write!(
            f,
            "applied {}, ignored {}{}, rejected {}{}",
            self.applied,
            self.ignored_total(),
            by(&self.ignored),
            self.rejected_total(),
            by(&self.rejected)
        )
    }
}

impl LoadReport {
    pub(crate) fn push(&mut self, element: Element) {
        self.elements.push(element);
    }

    pub fn rejected(&self) -> impl Iterator<Item = &Element> {
        self.elements
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Rejected { .. }))
    }

    pub fn is_rejected(&self) -> bool {
        self.rejected().next().is_some()
    }

    /// Counts over every element.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for element in &self.elements {
            counts.add(&element.outcome);
        }
        counts
    }

    /// Counts per event type (elements outside event elements under `-`).
    pub fn counts_by_event_type(&self) -> BTreeMap<&'static str, Counts> {
        let mut map: BTreeMap<&'static str, Counts> = BTreeMap::new();
        for element in &self.elements {
            map.entry(element.event_type.unwrap_or("-"))
                .or_default()
                .add(&element.outcome);
        }
        map
    }

    /// `path:line:column: <Name>: ignored|rejected: why` (None if applied).
    pub fn line_for(&self, element: &Element) -> String {
        let (verdict, why) = match &element.outcome {
            Outcome::Applied => ("applied", ""),
            Outcome::Ignored { why, .. } => ("ignored", why.as_str()),
            Outcome::Rejected { why, .. } => ("rejected", why.as_str()),
        };
        format!(
            "{}:{}:{}: <{}> {verdict}: {why}",
            self.path.display(),
            element.line,
            element.column,
            element.name
        )
    }
}

impl fmt::Display for LoadReport {
    /// One line per ignored or rejected element, then the summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for element in &self.elements {
            if element.outcome != Outcome::Applied {
                writeln!(f, "{}", self.line_for(element))?;
            }
        }
        writeln!(f, "{}", self.counts())
    }
}
