//! The engine: every accepted rule evaluated against each event, sharing
//! work across rules.
//!
//! Rules are grouped by logsource. For each field, an Aho-Corasick automaton
//! holds the literals that rules *require* (see
//! [`compile::required_literals`]); one pass over each lowercased field value
//! yields the rules that can possibly fire, and only those (plus rules with no
//! required literal, e.g. pure regex or negation rules) are evaluated.

use crate::compile::{self, CompiledRule};
use crate::matcher::{EventView, Target, lowercase};
use crate::schema::{EventFields, Logsource, OwnedEvent};
use aho_corasick::AhoCorasick;
use serde::Serialize;
use std::borrow::Cow;

/// A rule fired on an event.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    pub rule_id: String,
    pub title: String,
    pub level: String,
    pub tags: Vec<String>,
    pub event: OwnedEvent,
}

/// One field's literal prefilter.
#[derive(Debug)]
struct FieldFilter {
    field: usize,
    automaton: AhoCorasick,
    /// For each automaton pattern, the rules that require it.
    pattern_rules: Vec<Vec<u32>>,
}

/// The rules of one logsource and their prefilter.
#[derive(Debug, Default)]
struct RuleSet {
    rules: Vec<CompiledRule>,
    filters: Vec<FieldFilter>,
    /// Rules without a required literal: evaluated on every event.
    always: Vec<u32>,
    /// Fields some rule of this set reads (only these are lowercased).
    used: Vec<bool>,
}

/// Reusable per-thread buffers, so evaluation does not allocate per event.
#[derive(Debug, Default)]
pub struct Scratch {
    stamp: Vec<u32>,
    generation: u32,
    candidates: Vec<u32>,
}

/// All accepted rules, ready to evaluate.
#[derive(Debug)]
pub struct Engine {
    sets: Vec<(Logsource, RuleSet)>,
}

impl Engine {
    /// Builds the engine. Construction cannot fail: rules were validated by
    /// the compiler, and an automaton that cannot be built only disables the
    /// prefilter for its field (its rules are then always evaluated).
    pub fn new(rules: Vec<CompiledRule>) -> Engine {
        let mut sets: Vec<(Logsource, RuleSet)> = Logsource::ALL.iter().map(|&l| (l, RuleSet::default())).collect();
        for rule in rules {
            if let Some((_, set)) = sets.iter_mut().find(|(l, _)| *l == rule.logsource) {
                set.rules.push(rule);
            }
        }
        for (logsource, set) in &mut sets {
            set.build(*logsource);
        }
        Engine { sets }
    }

    /// How many rules the engine evaluates.
    pub fn rule_count(&self) -> usize {
        self.sets.iter().map(|(_, s)| s.rules.len()).sum()
    }

    /// Every rule, grouped by logsource.
    pub fn rules(&self) -> impl Iterator<Item = &CompiledRule> {
        self.sets.iter().flat_map(|(_, s)| s.rules.iter())
    }

    /// Calls `fired` for each rule matching `event`, in a deterministic order.
    pub fn for_each_match<'e>(&'e self, event: &dyn EventFields, scratch: &mut Scratch, mut fired: impl FnMut(&'e CompiledRule)) {
        let logsource = event.logsource();
        let Some((_, set)) = self.sets.iter().find(|(l, _)| *l == logsource) else { return };
        if set.rules.is_empty() {
            return;
        }
        let view = set.view(event);
        scratch.generation = scratch.generation.wrapping_add(1);
        if scratch.generation == 0 {
            // Wrapped: stale stamps could alias the new generation.
            scratch.stamp.iter_mut().for_each(|s| *s = 0);
            scratch.generation = 1;
        }
        scratch.stamp.resize(set.rules.len(), 0);
        scratch.candidates.clear();
        scratch.candidates.extend_from_slice(&set.always);
        for filter in &set.filters {
            let Some(Some(value)) = view.lowered.get(filter.field) else { continue };
            for found in filter.automaton.find_overlapping_iter(value.as_ref()) {
                let Some(rules) = filter.pattern_rules.get(found.pattern().as_usize()) else { continue };
                for &rule in rules {
                    if let Some(stamp) = scratch.stamp.get_mut(rule as usize) {
                        if *stamp != scratch.generation {
                            *stamp = scratch.generation;
                            scratch.candidates.push(rule);
                        }
                    }
                }
            }
        }
        scratch.candidates.sort_unstable();
        for &index in &scratch.candidates {
            if let Some(rule) = set.rules.get(index as usize) {
                if rule_matches(rule, &view) {
                    fired(rule);
                }
            }
        }
    }

    /// The alerts for `event` (allocates; the agent's hot path can use
    /// [`Engine::for_each_match`] with a reused [`Scratch`]).
    pub fn evaluate(&self, event: &dyn EventFields) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let mut scratch = Scratch::default();
        self.for_each_match(event, &mut scratch, |rule| {
            alerts.push(Alert {
                rule_id: rule.id.clone(),
                title: rule.title.clone(),
                level: rule.level.clone(),
                tags: rule.tags.clone(),
                event: to_owned(event),
            });
        });
        alerts
    }
}

/// Evaluates one rule on a prepared view, without any prefilter.
pub fn rule_matches(rule: &CompiledRule, view: &EventView<'_>) -> bool {
    rule.condition.eval(&mut |i| rule.selections.get(i).is_some_and(|s| s.matches(view)))
}

fn to_owned(event: &dyn EventFields) -> OwnedEvent {
    let logsource = event.logsource();
    OwnedEvent { logsource, values: (0..logsource.fields().len()).map(|i| event.get(i).map(str::to_owned)).collect() }
}

impl RuleSet {
    fn build(&mut self, logsource: Logsource) {
        let field_count = logsource.fields().len();
        self.used = vec![false; field_count];
        let mut per_field: Vec<(Vec<String>, Vec<Vec<u32>>)> = vec![(Vec::new(), Vec::new()); field_count];
        for (index, rule) in self.rules.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            for test in rule.selections.iter().flat_map(|s| s.any_of.iter().flatten()) {
                match test.target {
                    Target::Field(f) => {
                        if let Some(u) = self.used.get_mut(f) {
                            *u = true;
                        }
                    }
                    Target::AnyField => self.used.iter_mut().for_each(|u| *u = true),
                }
                for m in &test.matchers {
                    if let crate::matcher::Matcher::FieldRef { other, .. } = m {
                        if let Some(u) = self.used.get_mut(*other) {
                            *u = true;
                        }
                    }
                }
            }
            match compile::required_literals(rule) {
                Some(literals) => {
                    for (field, literal) in literals {
                        let Some((patterns, rules)) = per_field.get_mut(field) else { continue };
                        match patterns.iter().position(|p| *p == literal) {
                            Some(p) => {
                                if let Some(r) = rules.get_mut(p) {
                                    if r.last() != Some(&index) {
                                        r.push(index);
                                    }
                                }
                            }
                            None => {
                                patterns.push(literal);
                                rules.push(vec![index]);
                            }
                        }
                    }
                }
                None => self.always.push(index),
            }
        }
        for (field, (patterns, pattern_rules)) in per_field.into_iter().enumerate() {
            if patterns.is_empty() {
                continue;
            }
            match AhoCorasick::new(&patterns) {
                Ok(automaton) => self.filters.push(FieldFilter { field, automaton, pattern_rules }),
                Err(_) => {
                    // Fall back to evaluating these rules on every event.
                    self.always.extend(pattern_rules.into_iter().flatten());
                }
            }
        }
        self.always.sort_unstable();
        self.always.dedup();
    }

    fn view<'a>(&self, event: &'a dyn EventFields) -> EventView<'a> {
        let count = self.used.len();
        let original: Vec<Option<&'a str>> = (0..count).map(|i| event.get(i)).collect();
        let lowered: Vec<Option<Cow<'a, str>>> = original
            .iter()
            .zip(&self.used)
            .map(|(v, used)| if *used { v.map(lowercase) } else { None })
            .collect();
        EventView { original, lowered }
    }
}
