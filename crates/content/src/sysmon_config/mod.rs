//! Sysmon XML configurations: parsed, validated against the sensor's schema
//! and applied in user mode with Sysmon's own semantics (SysmonCommon's
//! `rules.c`), so a team that runs Sysmon keeps its configuration.
//!
//! - [`parse`]: the XML ([`roxmltree`]) into rule sets; every element is
//!   accounted for as applied, ignored (with a reason) or rejected (with
//!   file:line:column and a reason). One rejection rejects the whole
//!   configuration, as one bad rule rejects a content bundle.
//! - [`condition`]: what each `condition=` means.
//! - [`eval`]: the decision for one event: logged or dropped, by which rule,
//!   with which `RuleName`.
//! - [`events`]: Sysmon's event types and fields, and which of ringside's
//!   events each filters.
//!
//! Schema versions accepted: 4.x (the public configurations use 4.50 and
//! 4.90; 4.00 through 4.90 share the elements read here). Other majors are
//! rejected with that reason.

pub mod compiled;
pub mod condition;
pub mod eval;
pub mod events;
pub mod parse;
pub mod report;

use std::path::{Path, PathBuf};

pub use compiled::Scratch;
pub use condition::Condition;
pub use eval::{By, Decision, FilterEvent};
pub use events::{SysmonType, Target};
pub use report::{Element, LoadReport, Outcome};

/// `onmatch=`: what a match in this set does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnMatch {
    Include,
    Exclude,
}

impl OnMatch {
    pub fn name(self) -> &'static str {
        match self {
            OnMatch::Include => "include",
            OnMatch::Exclude => "exclude",
        }
    }
}

/// `groupRelation=`: how the filters of a RuleGroup or `<Rule>` combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Relation {
    Or,
    And,
}

/// One field element: a field, a condition and its patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Index into the target's fields, or `None` when ringside does not
    /// provide the field (the filter was ignored and never matches).
    pub field: Option<usize>,
    pub field_name: String,
    pub condition: Condition,
    /// Lower-cased, `%ENV%`-expanded, split for list conditions.
    pub patterns: Vec<String>,
    /// `name=`, the RuleName it gives.
    pub name: Option<String>,
    pub line: u32,
}

/// A nested `<Rule name= groupRelation=>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleBlock {
    pub name: Option<String>,
    pub relation: Relation,
    pub filters: Vec<Filter>,
    pub line: u32,
}

/// What an event element holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Filter(Filter),
    Rule(RuleBlock),
}

/// One event element (`<ProcessCreate onmatch=…>`) with the relation of
/// its RuleGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSet {
    pub onmatch: OnMatch,
    pub relation: Relation,
    /// The RuleGroup's `name=`, the RuleName when a filter has none.
    pub group_name: Option<String>,
    pub items: Vec<Item>,
    pub line: u32,
}

/// `HashAlgorithms`: which hashes go into `Hashes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashAlgorithms {
    pub sha1: bool,
    pub md5: bool,
    pub sha256: bool,
    pub imphash: bool,
}

/// A configuration that loaded: every element applied or ignored.
#[derive(Debug)]
pub struct SysmonConfig {
    pub source: PathBuf,
    pub schema_version: String,
    /// `None` when the configuration does not say (the agent's own choice
    /// then stands).
    pub hash_algorithms: Option<HashAlgorithms>,
    /// Rule sets per [`SysmonType::slot`].
    pub sets: Vec<Vec<RuleSet>>,
    compiled: eval::Compiled,
}

/// Why a configuration could not be used; the last good one keeps running.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Not well-formed XML, or not a Sysmon configuration.
    Xml {
        path: PathBuf,
        line: u32,
        column: u32,
        message: String,
    },
    /// Well-formed, but at least one element was rejected.
    Rejected(LoadReport),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Io { path, error } => {
                write!(f, "{}: cannot read: {error}", path.display())
            }
            ConfigError::Xml {
                path,
                line,
                column,
                message,
            } => write!(f, "{}:{line}:{column}: {message}", path.display()),
            ConfigError::Rejected(report) => {
                let rejected: Vec<&Element> = report.rejected().collect();
                write!(
                    f,
                    "{}: rejected whole: {} element(s) rejected",
                    report.path.display(),
                    rejected.len()
                )?;
                for element in rejected {
                    write!(f, "\n{}", report.line_for(element))?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// A configuration and the account of its elements.
#[derive(Debug)]
pub struct Loaded {
    pub config: SysmonConfig,
    pub report: LoadReport,
}

/// Reads and parses `path`, expanding `%ENV%` from this process's
/// environment.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| ConfigError::Io {
        path: path.to_owned(),
        error,
    })?;
    parse::parse_bytes(&bytes, path, &|name| std::env::var(name).ok())
}

impl SysmonConfig {
    /// The rule sets of a Sysmon event type.
    pub fn sets_of(&self, sysmon: &SysmonType) -> &[RuleSet] {
        self.sets.get(sysmon.slot()).map_or(&[], Vec::as_slice)
    }

    /// Whether any event of `target` can ever be logged under this
    /// configuration: when none can, the kernel need not observe it.
    pub fn can_log(&self, target: Target) -> bool {
        target.sysmon_types().iter().any(|sysmon| {
            let sets = self.sets_of(sysmon);
            match sets {
                [] => target.logged_without_rules(),
                // A lone exclude set logs whatever it does not exclude.
                [only] if only.onmatch == OnMatch::Exclude => true,
                _ => sets
                    .iter()
                    .any(|set| set.onmatch == OnMatch::Include && set.can_match()),
            }
        })
    }

    /// Filter elements applied (counted for the 1006 notice).
    pub fn filter_count(&self) -> usize {
        self.sets
            .iter()
            .flatten()
            .flat_map(|set| &set.items)
            .map(|item| match item {
                Item::Filter(_) => 1,
                Item::Rule(rule) => rule.filters.len(),
            })
            .sum()
    }
}

impl RuleSet {
    /// False when no item can ever match (every filter names a field
    /// ringside does not provide, or there are none).
    fn can_match(&self) -> bool {
        let filter_can = |f: &Filter| f.field.is_some();
        match self.relation {
            Relation::Or => self.items.iter().any(|item| match item {
                Item::Filter(f) => filter_can(f),
                Item::Rule(rule) => rule.can_match(),
            }),
            Relation::And => {
                !self.items.is_empty()
                    && self.items.iter().all(|item| match item {
                        // In an AND group, filters on one field are OR'ed:
                        // one that can match keeps the group possible.
                        Item::Filter(f) => self.items.iter().any(|other| match other {
                            Item::Filter(o) => o.field_name == f.field_name && filter_can(o),
                            Item::Rule(_) => false,
                        }),
                        Item::Rule(rule) => rule.can_match(),
                    })
            }
        }
    }
}

impl RuleBlock {
    fn can_match(&self) -> bool {
        match self.relation {
            Relation::Or => self.filters.iter().any(|f| f.field.is_some()),
            Relation::And => {
                !self.filters.is_empty() && self.filters.iter().all(|f| f.field.is_some())
            }
        }
    }
}

#[cfg(test)]
mod tests;
