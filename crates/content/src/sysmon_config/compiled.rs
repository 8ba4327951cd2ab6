//! The filters of each Sysmon event type compiled for speed.
//!
//! A configuration holds hundreds of filters per event type, most of them
//! substring tests on a handful of fields. Each field's patterns are one
//! Aho-Corasick automaton: an event's field value is lower-cased once and
//! scanned once, which records for every pattern whether it occurs, occurs
//! at the start, at the end, or is the whole value. Every filter is then
//! answered from those flags ([`Condition::matches`] is the definition
//! they agree with; a property test holds the two together).
//!
//! Most filters are *positive*: they can only match when one of their
//! patterns occurs. Those are *live* for an event only when the scan hit one
//! of their patterns; the others (negations, `less than`, `more than`) are
//! always live. An OR set is then decided by looking at its live filters
//! only, which for a typical event are a handful out of hundreds.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::condition::{Condition, fold, image_matches};
use super::eval::FilterEvent;
use super::{Filter, Item, RuleSet};

const OCCURS: u8 = 1;
const AT_START: u8 = 2;
const AT_END: u8 = 4;
const WHOLE: u8 = 8;

/// What the unknown value of a provided field is compared as: Sysmon
/// writes `-` for a value it does not have, and so does ringside.
const ABSENT: &str = "-";

/// All patterns on one field of one Sysmon type.
#[derive(Debug)]
struct FieldScan {
    field: usize,
    /// Each distinct pattern once: configurations repeat patterns, and
    /// the automaton's construction is quadratic in duplicates.
    patterns: Vec<String>,
    /// Pattern ids by text, while building.
    by_text: HashMap<String, u32>,
    /// The filters' pattern lists, concatenated: a filter's patterns are
    /// `refs[first..first + count]`.
    refs: Vec<u32>,
    automaton: Option<AhoCorasick>,
    /// The automaton numbers only the non-empty patterns: its id `i` is
    /// pattern `ids[i]`.
    ids: Vec<usize>,
    /// Per pattern, the positive filters it makes live.
    triggers: Vec<Vec<u32>>,
}

/// A filter as indices into its field's pattern references.
#[derive(Debug)]
struct CompiledFilter {
    /// Index into the type's scans; `None`: the field is not provided.
    scan: Option<usize>,
    condition: Condition,
    first: usize,
    count: usize,
    /// The index of its item in its set, and of that item's first filter.
    item: u32,
    item_first: u32,
}

/// Whether a condition can only hold when one of its patterns occurs.
fn positive(condition: Condition) -> bool {
    matches!(
        condition,
        Condition::Is
            | Condition::IsAny
            | Condition::Contains
            | Condition::ContainsAny
            | Condition::ContainsAll
            | Condition::BeginWith
            | Condition::EndWith
            | Condition::Image
    )
}

/// One Sysmon type's filters, numbered in document order over its sets
/// (sets, items, a `<Rule>`'s filters).
#[derive(Debug, Default)]
pub(crate) struct TypeCompiled {
    scans: Vec<FieldScan>,
    filters: Vec<CompiledFilter>,
    /// The filters of each set: `set_ranges[i]` for set `i`.
    pub(crate) set_ranges: Vec<std::ops::Range<usize>>,
    /// Filters live for every event, ascending.
    always: Vec<u32>,
}

/// Every filter of a set, in document order, with its item's index.
pub(crate) fn set_filters(set: &RuleSet) -> impl Iterator<Item = (usize, &Filter)> {
    set.items.iter().enumerate().flat_map(|(i, item)| {
        match item {
            Item::Filter(filter) => std::slice::from_ref(filter).iter(),
            Item::Rule(rule) => rule.filters.iter(),
        }
        .map(move |f| (i, f))
    })
}

impl TypeCompiled {
    pub(crate) fn new(sets: &[RuleSet]) -> TypeCompiled {
        let mut compiled = TypeCompiled::default();
        for set in sets {
            let start = compiled.filters.len();
            let mut item_first = (usize::MAX, 0);
            for (item, filter) in set_filters(set) {
                if item_first.0 != item {
                    item_first = (item, compiled.filters.len());
                }
                compiled.add(filter, item, item_first.1);
            }
            compiled.set_ranges.push(start..compiled.filters.len());
        }
        for scan in &mut compiled.scans {
            scan.by_text = HashMap::new();
            scan.ids = (0..scan.patterns.len())
                .filter(|&i| scan.patterns.get(i).is_some_and(|p| !p.is_empty()))
                .collect();
            scan.automaton = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(scan.patterns.iter().filter(|p| !p.is_empty()))
                .ok();
        }
        compiled
    }

    #[cfg(test)]
    pub(crate) fn filter_count(&self) -> usize {
        self.filters.len()
    }

    fn add(&mut self, filter: &Filter, item: usize, item_first: usize) {
        let index = u32::try_from(self.filters.len()).unwrap_or(u32::MAX);
        let item = u32::try_from(item).unwrap_or(u32::MAX);
        let item_first = u32::try_from(item_first).unwrap_or(u32::MAX);
        let Some(field) = filter.field else {
            // Never matches: never live.
            self.filters.push(CompiledFilter {
                scan: None,
                condition: filter.condition,
                first: 0,
                count: 0,
                item,
                item_first,
            });
            return;
        };
        let scan = match self.scans.iter().position(|s| s.field == field) {
            Some(scan) => scan,
            None => {
                self.scans.push(FieldScan {
                    field,
                    patterns: Vec::new(),
                    by_text: HashMap::new(),
                    refs: Vec::new(),
                    automaton: None,
                    ids: Vec::new(),
                    triggers: Vec::new(),
                });
                self.scans.len() - 1
            }
        };
        let field_scan = &mut self.scans[scan];
        let first = field_scan.refs.len();
        let empty_pattern = filter.patterns.iter().any(String::is_empty);
        for pattern in &filter.patterns {
            let id = match field_scan.by_text.get(pattern) {
                Some(&id) => id,
                None => {
                    let id = u32::try_from(field_scan.patterns.len()).unwrap_or(u32::MAX);
                    field_scan.patterns.push(pattern.clone());
                    field_scan.triggers.push(Vec::new());
                    field_scan.by_text.insert(pattern.clone(), id);
                    id
                }
            };
            field_scan.refs.push(id);
        }
        if positive(filter.condition) && !empty_pattern && !filter.patterns.is_empty() {
            for &id in field_scan.refs.get(first..).unwrap_or(&[]) {
                if let Some(triggers) = field_scan.triggers.get_mut(id as usize) {
                    // A filter naming one pattern twice is triggered once.
                    if triggers.last() != Some(&index) {
                        triggers.push(index);
                    }
                }
            }
        } else {
            self.always.push(index);
        }
        self.filters.push(CompiledFilter {
            scan: Some(scan),
            condition: filter.condition,
            first,
            count: filter.patterns.len(),
            item,
            item_first,
        });
    }
}

/// Per-event buffers, reused: folded values, pattern flags and the
/// patterns hit per scan, and the live filters.
#[derive(Debug, Default)]
pub struct Scratch {
    values: Vec<String>,
    flags: Vec<Vec<u8>>,
    touched: Vec<Vec<u32>>,
    /// Live filters, ascending.
    live: Vec<u32>,
    live_flag: Vec<bool>,
}

impl Scratch {
    /// The live filters in `range`, ascending.
    pub(crate) fn live_in(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = usize> {
        let start = self.live.partition_point(|&i| (i as usize) < range.start);
        self.live
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .map(|&i| i as usize)
            .take_while(move |&i| i < range.end)
    }
}

/// Folds each scanned field's value, records its patterns' flags, and
/// works out the live filters.
pub(crate) fn scan(compiled: &TypeCompiled, event: &dyn FilterEvent, scratch: &mut Scratch) {
    let n = compiled.scans.len();
    if scratch.flags.len() < n {
        scratch.flags.resize_with(n, Vec::new);
    }
    if scratch.touched.len() < n {
        scratch.touched.resize_with(n, Vec::new);
    }
    if scratch.values.len() < n {
        scratch.values.resize_with(n, String::new);
    }
    for &i in &scratch.live {
        if let Some(flag) = scratch.live_flag.get_mut(i as usize) {
            *flag = false;
        }
    }
    scratch.live.clear();
    scratch.live.extend_from_slice(&compiled.always);
    for (i, field_scan) in compiled.scans.iter().enumerate() {
        let (Some(value), Some(flags), Some(touched)) = (
            scratch.values.get_mut(i),
            scratch.flags.get_mut(i),
            scratch.touched.get_mut(i),
        ) else {
            continue;
        };
        value.clear();
        fold(value, event.field(field_scan.field).unwrap_or(ABSENT));
        for &id in touched.iter() {
            if let Some(slot) = flags.get_mut(id as usize) {
                *slot = 0;
            }
        }
        touched.clear();
        flags.resize(field_scan.patterns.len(), 0);
        let Some(automaton) = &field_scan.automaton else {
            continue;
        };
        let len = value.len();
        for m in automaton.find_overlapping_iter(value.as_str()) {
            let Some(&id) = field_scan.ids.get(m.pattern().as_usize()) else {
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
                if *slot == 0 {
                    touched.push(u32::try_from(id).unwrap_or(u32::MAX));
                    if let Some(triggers) = field_scan.triggers.get(id) {
                        scratch.live.extend_from_slice(triggers);
                    }
                }
                *slot |= bits;
            }
        }
    }
    scratch.live.sort_unstable();
    scratch.live.dedup();
    if scratch.live_flag.len() < compiled.filters.len() {
        scratch.live_flag.resize(compiled.filters.len(), false);
    }
    for &i in &scratch.live {
        if let Some(flag) = scratch.live_flag.get_mut(i as usize) {
            *flag = true;
        }
    }
}

/// One event's view of one Sysmon type's compiled filters.
pub(crate) struct View<'a> {
    pub(crate) compiled: &'a TypeCompiled,
    pub(crate) scratch: &'a Scratch,
}

impl View<'_> {
    /// The item (within its set) that filter `index` belongs to, and the
    /// index of that item's first filter.
    pub(crate) fn item_of(&self, index: usize) -> Option<(usize, usize)> {
        self.compiled
            .filters
            .get(index)
            .map(|f| (f.item as usize, f.item_first as usize))
    }

    /// Whether filter `index` matches the scanned event.
    pub(crate) fn filter(&self, index: usize) -> bool {
        if !self.scratch.live_flag.get(index).copied().unwrap_or(false) {
            return false;
        }
        let Some(f) = self.compiled.filters.get(index) else {
            return false;
        };
        let Some(scan) = f.scan else {
            return false;
        };
        let value = self.scratch.values.get(scan).map_or("", String::as_str);
        let Some(field_scan) = self.compiled.scans.get(scan) else {
            return false;
        };
        let patterns = &field_scan.patterns;
        let flags = self.scratch.flags.get(scan);
        let refs = field_scan
            .refs
            .get(f.first..f.first + f.count)
            .unwrap_or(&[]);
        let flag = |id: u32, bit: u8| -> bool {
            let id = id as usize;
            let pattern = patterns.get(id).map_or("", String::as_str);
            if pattern.is_empty() {
                // The automaton holds no empty pattern: it occurs
                // everywhere, and is the whole value only of an empty one.
                return bit != WHOLE || value.is_empty();
            }
            flags.and_then(|f| f.get(id)).is_some_and(|f| f & bit != 0)
        };
        let first = refs.first().copied().unwrap_or(u32::MAX);
        let first_pattern = patterns.get(first as usize).map_or("", String::as_str);
        let any = |bit| refs.iter().any(|&id| flag(id, bit));
        let all = |bit| refs.iter().all(|&id| flag(id, bit));
        match f.condition {
            Condition::Is => flag(first, WHOLE),
            Condition::IsNot => !flag(first, WHOLE),
            Condition::IsAny => any(WHOLE),
            Condition::Contains => flag(first, OCCURS),
            Condition::ContainsAny => any(OCCURS),
            Condition::ContainsAll => all(OCCURS),
            Condition::Excludes => !flag(first, OCCURS),
            Condition::ExcludesAny => !any(OCCURS),
            Condition::ExcludesAll => !all(OCCURS),
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
