//! `content check`: compile every rule of a directory and report each
//! rejection as `path:line: reason`, then a summary by reason.

use crate::bundle::{BundleError, compile_files, rule_files};
use crate::compile::{CompiledRule, Rejection};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The per-rule outcome of compiling a directory.
#[derive(Debug)]
pub struct CheckReport {
    pub accepted: Vec<CompiledRule>,
    pub rejections: Vec<Rejection>,
}

impl CheckReport {
    /// Rejection counts by reason class, sorted by class name.
    pub fn by_reason(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for rejection in &self.rejections {
            *counts.entry(rejection.reason.class()).or_insert(0) += 1;
        }
        counts
    }

    /// `accepted N, rejected M (by reason: a X, b Y)`.
    pub fn summary(&self) -> String {
        let reasons: Vec<String> = self.by_reason().iter().map(|(class, n)| format!("{class} {n}")).collect();
        format!(
            "accepted {}, rejected {} (by reason: {})",
            self.accepted.len(),
            self.rejections.len(),
            if reasons.is_empty() { "none".into() } else { reasons.join(", ") }
        )
    }
}

/// One line per rejected rule, then the summary line.
impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for rejection in &self.rejections {
            writeln!(f, "{rejection}")?;
        }
        writeln!(f, "{}", self.summary())
    }
}

/// Compiles every `*.yml` under `dir` (lenient: every rule is reported).
pub fn check(dir: &Path) -> Result<CheckReport, BundleError> {
    let files = rule_files(dir)?;
    let (accepted, rejections) = compile_files(&files);
    Ok(CheckReport { accepted, rejections })
}
