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
//! Speed: a configuration holds hundreds of filters per event type, most of
//! them substring tests on a handful of fields. Each field's patterns are
//! compiled into one Aho-Corasick automaton; an event's field value is
//! lower-cased once and scanned once, which records for every pattern
//! whether it occurs, occurs at the start, at the end, or is the whole
//! value. Every filter is then answered from those flags
//! ([`Condition::matches`] is the definition they agree with).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::condition::{Condition, fold, image_matches};
use super::events::{SysmonType, Target};
use super::{Filter, Item, OnMatch, Relation, RuleSet, SysmonConfig};

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

/// Pattern flags found by one scan.
const OCCURS: u8 = 1;
const AT_START: u8 = 2;
const AT_END: u8 = 4;
const WHOLE: u8 = 8;

/// All patterns on one field of one Sysmon type.
#[derive(Debug)]
struct FieldScan {
    field: usize,
    patterns: Vec<String>,
    automaton: Option<AhoCorasick>,
    /// The automaton numbers only the non-empty patterns: its id `i` is
    /// pattern `ids[i]`.
    ids: Vec<usize>,
}

/// A filter as indices into its field's patterns.
#[derive(Debug)]
struct Compiled1 {
    /// Index into the type's scans; `None`: the field is not provided.
    scan: Option<usize>,
    condition: Condition,
    first: usize,
    count: usize,
}

/// Compiled filters, per Sysmon type, in the order of the rule sets.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    types: Vec<TypeCompiled>,
}

#[derive(Debug, Default)]
struct TypeCompiled {
    scans: Vec<FieldScan>,
    /// Per filter, in document order (sets, items, rule filters).
    filters: Vec<Compiled1>,
    /// Index of each set's first filter.
    set_starts: Vec<usize>,
}

impl Compiled {
    pub(crate) fn new(sets: &[Vec<RuleSet>]) -> Compiled {
        let types = sets
            .iter()
            .map(|sets| {
                let mut compiled = TypeCompiled::default();
                for filter in sets.iter().flat_map(set_filters) {
                    compiled.add(filter);
                }
                let mut next = 0;
                for set in sets {
                    compiled.set_starts.push(next);
                    next += set_filters(set).count();
                }
                for scan in &mut compiled.scans {
                    scan.ids = (0..scan.patterns.len())
                        .filter(|&i| scan.patterns.get(i).is_some_and(|p| !p.is_empty()))
                        .collect();
                    scan.automaton = AhoCorasickBuilder::new()
                        .match_kind(MatchKind::Standard)
                        .build(scan.patterns.iter().filter(|p| !p.is_empty()))
                        .ok();
                }
                compiled
            })
            .collect();
        Compiled { types }
    }
}

/// Every filter of a set, in document order.
fn set_filters(set: &RuleSet) -> impl Iterator<Item = &Filter> {
    set.items.iter().flat_map(|item| match item {
        Item::Filter(filter) => std::slice::from_ref(filter).iter(),
        Item::Rule(rule) => rule.filters.iter(),
    })
}

impl TypeCompiled {
    fn add(&mut self, filter: &Filter) {
        let Some(field) = filter.field else {
            self.filters.push(Compiled1 {
                scan: None,
                condition: filter.condition,
                first: 0,
                count: 0,
            });
            return;
        };
        let scan = match self.scans.iter().position(|s| s.field == field) {
            Some(scan) => scan,
            None => {
                self.scans.push(FieldScan {
                    field,
                    patterns: Vec::new(),
                    automaton: None,
                    ids: Vec::new(),
                });
                self.scans.len() - 1
            }
        };
        let patterns = &mut self.scans[scan].patterns;
        let first = patterns.len();
        patterns.extend(filter.patterns.iter().cloned());
        self.filters.push(Compiled1 {
            scan: Some(scan),
            condition: filter.condition,
            first,
            count: filter.patterns.len(),
        });
    }
}

/// Per-event buffers, reused: folded values and pattern flags per scan.
#[derive(Debug, Default)]
pub struct Scratch {
    values: Vec<String>,
    flags: Vec<Vec<u8>>,
}

/// What the unknown value of a provided field is compared as: Sysmon
/// writes `-` for a value it does not have, and so does ringside.
const ABSENT: &str = "-";

/// One event's view of one Sysmon type's compiled filters.
struct View<'a> {
    compiled: &'a TypeCompiled,
    scratch: &'a Scratch,
}

impl View<'_> {
    fn filter(&self, index: usize) -> bool {
        let Some(f) = self.compiled.filters.get(index) else {
            return false;
        };
        let Some(scan) = f.scan else {
            return false;
        };
        let value = self.scratch.values.get(scan).map_or("", String::as_str);
        let patterns = &self.compiled.scans[scan].patterns;
        let flags = self.scratch.flags.get(scan);
        let range = f.first..f.first + f.count;
        let flag = |i: usize, bit: u8| -> bool {
            let pattern = patterns.get(i).map_or("", String::as_str);
            if pattern.is_empty() {
                // The automaton holds no empty pattern: it occurs
                // everywhere, and is the whole value only of an empty one.
                return bit != WHOLE || value.is_empty();
            }
            flags.and_then(|f| f.get(i)).is_some_and(|f| f & bit != 0)
        };
        let first = f.first;
        let first_pattern = patterns.get(first).map_or("", String::as_str);
        let any = |bit| range.clone().any(|i| flag(i, bit));
        match f.condition {
            Condition::Is => flag(first, WHOLE),
            Condition::IsNot => !flag(first, WHOLE),
            Condition::IsAny => any(WHOLE),
            Condition::Contains => flag(first, OCCURS),
            Condition::ContainsAny => any(OCCURS),
            Condition::ContainsAll => range.clone().all(|i| flag(i, OCCURS)),
            Condition::Excludes => !flag(first, OCCURS),
            Condition::ExcludesAny => !any(OCCURS),
            Condition::ExcludesAll => !range.clone().all(|i| flag(i, OCCURS)),
            Condition::BeginWith => flag(first, AT_START),
            Condition::NotBeginWith => !flag(first, AT_START),
            Condition::EndWith => flag(first, AT_END),
            Condition::NotEndWith => !flag(first, AT_END),
            Condition::LessThan => value < first_pattern,
            Condition::MoreThan => value > first_pattern,
            Condition::Image => image_matches(value, first_pattern),
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
        let view = View { compiled, scratch };
        let starts = &compiled.set_starts;
        for onmatch in [OnMatch::Exclude, OnMatch::Include] {
            for (set, &start) in sets.iter().zip(starts) {
                if set.onmatch != onmatch {
                    continue;
                }
                if let Some(hit) = set_match(set, start, &view) {
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

/// Folds each scanned field's value and records its patterns' flags.
fn scan(compiled: &TypeCompiled, event: &dyn FilterEvent, scratch: &mut Scratch) {
    let n = compiled.scans.len();
    scratch
        .values
        .resize_with(n.max(scratch.values.len()), String::new);
    scratch
        .flags
        .resize_with(n.max(scratch.flags.len()), Vec::new);
    for (i, field_scan) in compiled.scans.iter().enumerate() {
        let (Some(value), Some(flags)) = (scratch.values.get_mut(i), scratch.flags.get_mut(i))
        else {
            continue;
        };
        value.clear();
        fold(value, event.field(field_scan.field).unwrap_or(ABSENT));
        flags.clear();
        flags.resize(field_scan.patterns.len(), 0);
        let Some(automaton) = &field_scan.automaton else {
            continue;
        };
        let len = value.len();
        let ids = &field_scan.ids;
        for m in automaton.find_overlapping_iter(value.as_str()) {
            let Some(&id) = ids.get(m.pattern().as_usize()) else {
                continue;
            };
            let mut bits = OCCURS;
            if m.start() == 0 {
                bits |= AT_START;
            }
            if m.end() == len {
                bits |= AT_END;
            }
            if m.start() == 0 && m.end() == len {
                bits |= WHOLE;
            }
            if let Some(slot) = flags.get_mut(id) {
                *slot |= bits;
            }
        }
    }
}

/// Whether `set` matches; its filters are numbered from `start`.
fn set_match<'c>(set: &'c RuleSet, start: usize, view: &View<'_>) -> Option<Hit<'c>> {
    let group = set.group_name.as_deref();
    let mut index = start;
    // (filter, its compiled index, matched) for the AND relation's groups.
    let mut direct: Vec<(&Filter, bool)> = Vec::new();
    let mut first_named: Option<&str> = None;
    for item in &set.items {
        match item {
            Item::Filter(filter) => {
                let matched = view.filter(index);
                index += 1;
                if set.relation == Relation::Or && matched {
                    return Some(Hit {
                        line: filter.line,
                        name: filter.name.as_deref().or(group),
                    });
                }
                direct.push((filter, matched));
            }
            Item::Rule(rule) => {
                let (matched, name) = rule_match(rule, index, view);
                index += rule.filters.len();
                let name = rule.name.as_deref().or(name);
                match set.relation {
                    Relation::Or if matched => {
                        return Some(Hit {
                            line: rule.line,
                            name: name.or(group),
                        });
                    }
                    Relation::And if !matched => return None,
                    _ => {}
                }
                if matched && first_named.is_none() {
                    first_named = name;
                }
            }
        }
    }
    if set.relation == Relation::Or || set.items.is_empty() {
        return None;
    }
    // AND: every field named by a direct filter has one that matched.
    for (filter, _) in &direct {
        let field_matched = direct
            .iter()
            .any(|(other, matched)| *matched && other.field_name == filter.field_name);
        if !field_matched {
            return None;
        }
    }
    let name = direct
        .iter()
        .filter(|(_, matched)| *matched)
        .find_map(|(f, _)| f.name.as_deref())
        .or(first_named)
        .or(group);
    Some(Hit {
        line: set.line,
        name,
    })
}

/// Whether a `<Rule>` matches, and the name of its first matching named
/// filter (the RuleName when the `<Rule>` itself has none).
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
            if rule.relation == Relation::Or {
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
                .map(|s| set_filters(s).count())
                .sum();
            let compiled = config
                .compiled
                .types
                .get(t.slot())
                .map_or(0, |c| c.filters.len());
            (sets, compiled)
        })
        .collect()
}
