//! The decision for one event, with Sysmon's evaluation order:
//!
//! 1. Exclude sets are tested first; a match drops the event.
//! 2. An include match logs it.
//! 3. Nothing matched: with a single set for the event type, its default
//!    applies (an include set drops, an exclude set logs); with several
//!    sets, the event is dropped.
//! 4. An event type with no rules at all gets Sysmon's default
//!    ([`Target::logged_without_rules`]).
//!
//! Inside a set: in a RuleGroup with `groupRelation="or"` any filter (or
//! `<Rule>`) matching is a match; with `"and"`, filters on the same field
//! are OR'ed and every field (and every `<Rule>`) must match. Inside a
//! `<Rule groupRelation="and">` every filter must match, repeated fields
//! included.
//!
//! The filters are answered from one automaton scan per field
//! ([`super::compiled`]); an OR set looks only at the filters the scan made
//! live.

use super::compiled::{Scratch, TypeCompiled, View, scan};
use super::events::{SysmonType, Target};
use super::{Item, OnMatch, Relation, RuleSet, SysmonConfig};

/// An event the configuration decides on.
pub trait FilterEvent {
    /// Which of ringside's filterable events it is (none: not filtered).
    fn target(&self) -> Option<Target>;
    /// The value of field `index` of `target().fields()`, if present.
    fn field(&self, index: usize) -> Option<&str>;
}

/// What decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By<'c> {
    /// A filter or `<Rule>` (or a whole AND RuleGroup) matched.
    Rule {
        sysmon_type: &'static str,
        onmatch: OnMatch,
        /// Line of the matching filter or `<Rule>` (of the event element
        /// for an AND RuleGroup).
        line: u32,
        rule_name: Option<&'c str>,
    },
    /// Nothing matched the single set: its default.
    SetDefault {
        sysmon_type: &'static str,
        onmatch: OnMatch,
        line: u32,
    },
    /// Nothing matched any of several sets.
    NoMatch { sysmon_type: &'static str },
    /// The event type has no rules: Sysmon's default.
    NoRules { target: Target },
}

/// Logged or dropped, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision<'c> {
    pub logged: bool,
    pub by: By<'c>,
}

impl Decision<'_> {
    /// The `RuleName` Sysmon writes: the matching include rule's name.
    pub fn rule_name(&self) -> Option<&str> {
        match self.by {
            By::Rule {
                onmatch: OnMatch::Include,
                rule_name,
                ..
            } if self.logged => rule_name,
            _ => None,
        }
    }
}

impl std::fmt::Display for By<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            By::Rule {
                sysmon_type,
                onmatch,
                line,
                rule_name,
            } => write!(
                f,
                "{sysmon_type} {} rule at line {line}, RuleName {}",
                onmatch.name(),
                rule_name.unwrap_or("-")
            ),
            By::SetDefault {
                sysmon_type,
                onmatch,
                line,
            } => write!(
                f,
                "nothing matched the only {sysmon_type} set ({} at line {line}): its default",
                onmatch.name()
            ),
            By::NoMatch { sysmon_type } => {
                write!(f, "nothing matched any of the {sysmon_type} sets")
            }
            By::NoRules { target } => write!(
                f,
                "no rules for event {}: Sysmon's default",
                target.event_id()
            ),
        }
    }
}

/// Compiled filters per Sysmon type ([`SysmonType::slot`]).
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    types: Vec<TypeCompiled>,
}

impl Compiled {
    pub(crate) fn new(sets: &[Vec<RuleSet>]) -> Compiled {
        Compiled {
            types: sets.iter().map(|sets| TypeCompiled::new(sets)).collect(),
        }
    }
}

/// A matching item: its line and RuleName.
struct Hit<'c> {
    line: u32,
    name: Option<&'c str>,
}

impl SysmonConfig {
    /// Logged or dropped, and why; `None` for events the configuration does
    /// not filter (ringside's own, and renames, which Sysmon has no event for).
    pub fn decide<'c>(
        &'c self,
        event: &dyn FilterEvent,
        scratch: &mut Scratch,
    ) -> Option<Decision<'c>> {
        let target = event.target()?;
        let mut first: Option<Decision<'c>> = None;
        for sysmon in target.sysmon_types() {
            let decision = self.decide_type(sysmon, target, event, scratch);
            if decision.logged {
                return Some(decision);
            }
            // Not logged by any: the reason worth showing is that of the
            // first type with rules.
            let has_rules = !matches!(decision.by, By::NoRules { .. });
            match &first {
                Some(f) if !matches!(f.by, By::NoRules { .. }) || !has_rules => {}
                _ => first = Some(decision),
            }
        }
        first
    }

    fn decide_type<'c>(
        &'c self,
        sysmon: &'static SysmonType,
        target: Target,
        event: &dyn FilterEvent,
        scratch: &mut Scratch,
    ) -> Decision<'c> {
        let sets = self.sets_of(sysmon);
        if sets.is_empty() {
            return Decision {
                logged: target.logged_without_rules(),
                by: By::NoRules { target },
            };
        }
        let Some(compiled) = self.compiled.types.get(sysmon.slot()) else {
            return Decision {
                logged: false,
                by: By::NoMatch {
                    sysmon_type: sysmon.name,
                },
            };
        };
        scan(compiled, event, scratch);
        let view = View {
            compiled,
            scratch: &*scratch,
        };
        let ranges = &compiled.set_ranges;
        for onmatch in [OnMatch::Exclude, OnMatch::Include] {
            for (set, range) in sets.iter().zip(ranges) {
                if set.onmatch != onmatch {
                    continue;
                }
                if let Some(hit) = set_match(set, range.clone(), &view) {
                    return Decision {
                        logged: onmatch == OnMatch::Include,
                        by: By::Rule {
                            sysmon_type: sysmon.name,
                            onmatch,
                            line: hit.line,
                            rule_name: hit.name,
                        },
                    };
                }
            }
        }
        match sets {
            [only] => Decision {
                logged: only.onmatch == OnMatch::Exclude,
                by: By::SetDefault {
                    sysmon_type: sysmon.name,
                    onmatch: only.onmatch,
                    line: only.line,
                },
            },
            _ => Decision {
                logged: false,
                by: By::NoMatch {
                    sysmon_type: sysmon.name,
                },
            },
        }
    }
}

/// Whether `set` matches; its filters are numbered `filters`.
fn set_match<'c>(
    set: &'c RuleSet,
    filters: std::ops::Range<usize>,
    view: &View<'_>,
) -> Option<Hit<'c>> {
    match set.relation {
        Relation::Or => or_set_match(set, filters, view),
        Relation::And => and_set_match(set, filters.start, view),
    }
}

/// The first item (in document order) that matches. Only items holding a
/// live filter can: a positive filter none of whose patterns occurred
/// cannot match, and neither can a `<Rule>` made only of such filters.
fn or_set_match<'c>(
    set: &'c RuleSet,
    filters: std::ops::Range<usize>,
    view: &View<'_>,
) -> Option<Hit<'c>> {
    let group = set.group_name.as_deref();
    let mut last_item = None;
    for live in view.scratch.live_in(filters) {
        let (item, first) = view.item_of(live)?;
        if last_item == Some(item) {
            continue;
        }
        last_item = Some(item);
        match set.items.get(item)? {
            Item::Filter(filter) if view.filter(first) => {
                return Some(Hit {
                    line: filter.line,
                    name: filter.name.as_deref().or(group),
                });
            }
            Item::Rule(rule) => {
                let (matched, name) = rule_match(rule, first, view);
                if matched {
                    return Some(Hit {
                        line: rule.line,
                        name: rule.name.as_deref().or(name).or(group),
                    });
                }
            }
            Item::Filter(_) => {}
        }
    }
    None
}

fn item_len(item: &Item) -> usize {
    match item {
        Item::Filter(_) => 1,
        Item::Rule(rule) => rule.filters.len(),
    }
}

/// Every `<Rule>` matches, and every field named by a direct filter has a
/// filter that matched (filters repeated on a field are OR'ed).
fn and_set_match<'c>(set: &'c RuleSet, start: usize, view: &View<'_>) -> Option<Hit<'c>> {
    if set.items.is_empty() {
        return None;
    }
    let mut first_named: Option<&str> = None;
    let mut index = start;
    for item in &set.items {
        match item {
            Item::Filter(filter) => {
                if first_named.is_none() && filter.name.is_some() && view.filter(index) {
                    first_named = filter.name.as_deref();
                }
            }
            Item::Rule(rule) => {
                let (matched, name) = rule_match(rule, index, view);
                if !matched {
                    return None;
                }
                if first_named.is_none() {
                    first_named = rule.name.as_deref().or(name);
                }
            }
        }
        index += item_len(item);
    }
    for item in &set.items {
        if let Item::Filter(filter) = item {
            let mut other_index = start;
            let field_matched = set.items.iter().any(|other| {
                let i = other_index;
                other_index += item_len(other);
                matches!(other, Item::Filter(o) if o.field_name == filter.field_name && view.filter(i))
            });
            if !field_matched {
                return None;
            }
        }
    }
    Some(Hit {
        line: set.line,
        name: first_named.or(set.group_name.as_deref()),
    })
}

/// Whether a `<Rule>` matches, and the name of its first matching filter
/// that has one (the RuleName when the `<Rule>` itself has none).
fn rule_match<'c>(
    rule: &'c super::RuleBlock,
    start: usize,
    view: &View<'_>,
) -> (bool, Option<&'c str>) {
    let mut name = None;
    let mut any = false;
    for (i, filter) in rule.filters.iter().enumerate() {
        let matched = view.filter(start + i);
        if matched {
            any = true;
            if name.is_none() {
                name = filter.name.as_deref();
            }
            // An OR <Rule> has matched; without a name of its own, its
            // RuleName is the first matching filter that has one.
            if rule.relation == Relation::Or && (name.is_some() || rule.name.is_some()) {
                return (true, name);
            }
        } else if rule.relation == Relation::And {
            return (false, None);
        }
    }
    match rule.relation {
        Relation::And => (!rule.filters.is_empty(), name),
        Relation::Or => (any, name),
    }
}

/// Every Sysmon type's compiled filters line up with its sets (a debug aid
/// for tests).
#[cfg(test)]
pub(crate) fn filter_counts(config: &SysmonConfig) -> Vec<(usize, usize)> {
    super::events::ALL_TYPES
        .iter()
        .map(|t| {
            let sets: usize = config
                .sets_of(t)
                .iter()
                .map(|s| super::compiled::set_filters(s).count())
                .sum();
            let compiled = config
                .compiled
                .types
                .get(t.slot())
                .map_or(0, TypeCompiled::filter_count);
            (sets, compiled)
        })
        .collect()
}
