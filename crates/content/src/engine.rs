//! The engine: every accepted rule evaluated against each event, sharing
//! work across rules.
//!
//! Rules are grouped by logsource. For each field, one Aho-Corasick automaton
//! holds every case-insensitive literal any rule compares that field with.
//! One overlapping pass over each lowercased field value then decides all of
//! those string tests at once, from where each literal occurs: `contains`
//! needs an occurrence, `startswith` one at offset 0, `endswith` one ending at
//! the value's end, equality one spanning the whole value. Rules see those
//! answers as bits ("slots"), so a rule with a 300-entry filter list costs 300
//! bit lookups, not 300 string searches.
//!
//! The same pass gives the prefilter: a rule is evaluated only if one of the
//! string tests it *requires* (see [`compile::required_matchers`]) holds,
//! or for a required regular expression one of the literals every match
//! contains occurs, or if it requires none (e.g. negation rules). Requiring the
//! anchored test, not just the literal's occurrence, keeps e.g. every
//! `Image|endswith: '\\cmd.exe'` rule out when cmd.exe is only the parent.

use crate::compile::{self, CompiledRule};
use crate::matcher::{
    EventView, Expr, FieldTest, GlobToken, LoweredFields, Matcher, StrKind, Target, glob_match,
};
use crate::scan::FieldAutomaton;
use crate::schema::{EventFields, Logsource, OwnedEvent};
use serde::Serialize;
use std::collections::HashMap;

/// A rule fired on an event.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    pub rule_id: String,
    pub title: String,
    pub level: String,
    pub tags: Vec<String>,
    pub event: OwnedEvent,
}

/// How a literal's occurrence decides a string test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Anchor {
    Exact,
    Prefix,
    Suffix,
    Contains,
}

impl Anchor {
    fn of(kind: &StrKind) -> Option<Anchor> {
        match kind {
            StrKind::Exact => Some(Anchor::Exact),
            StrKind::Prefix => Some(Anchor::Prefix),
            StrKind::Suffix => Some(Anchor::Suffix),
            StrKind::Contains => Some(Anchor::Contains),
            StrKind::Glob(_) | StrKind::Any => None,
        }
    }

    /// Whether an occurrence of the literal at `start..end` in a value of
    /// `len` bytes satisfies the test. The overlapping search reports every
    /// occurrence, so the test holds iff some occurrence satisfies this.
    fn holds(self, start: usize, end: usize, len: usize) -> bool {
        match self {
            Anchor::Exact => start == 0 && end == len,
            Anchor::Prefix => start == 0,
            Anchor::Suffix => end == len,
            Anchor::Contains => true,
        }
    }
}

/// One field's automaton over all literals rules compare it with.
#[derive(Debug)]
struct FieldScan {
    field: usize,
    automaton: FieldAutomaton,
    /// Per automaton pattern: the slots its reported occurrences can make
    /// true, for it and the patterns reported with it
    /// ([`FieldAutomaton::reported_with`]).
    pattern_hits: Lists<Hit>,
}

/// A slot an occurrence of a pattern `len` bytes long, ending where the
/// walk reports it, makes true if `anchor` holds.
#[derive(Clone, Copy, Debug)]
struct Hit {
    slot: u32,
    len: u32,
    /// The slot's list in `RuleSet::slot_marks`, held here so that a new
    /// slot reads its marks without first reading the list's bounds.
    marks: Span,
    anchor: Anchor,
}

/// One list per automaton pattern (or slot), stored back to back: a hit then
/// reads one contiguous run instead of chasing a pointer per pattern.
#[derive(Debug)]
struct Lists<T> {
    /// List `i` is `items[starts[i]..starts[i + 1]]`.
    starts: Vec<u32>,
    items: Vec<T>,
}

impl<T> Default for Lists<T> {
    fn default() -> Lists<T> {
        Lists {
            starts: Vec::new(),
            items: Vec::new(),
        }
    }
}

impl<T> Lists<T> {
    fn new(lists: Vec<Vec<T>>) -> Lists<T> {
        let mut starts = Vec::with_capacity(lists.len() + 1);
        let mut items = Vec::with_capacity(lists.iter().map(Vec::len).sum());
        starts.push(0);
        for list in lists {
            items.extend(list);
            starts.push(u32::try_from(items.len()).unwrap_or(u32::MAX));
        }
        Lists { starts, items }
    }

    fn get(&self, index: usize) -> &[T] {
        self.span(index).of(&self.items)
    }

    /// Where list `index` is in `items`.
    fn span(&self, index: usize) -> Span {
        match (self.starts.get(index), self.starts.get(index + 1)) {
            (Some(&first), Some(&end)) => Span {
                first,
                len: end.saturating_sub(first),
            },
            _ => Span::default(),
        }
    }
}

/// One value test of a rule, as the engine evaluates it. Kept to 12 bytes
/// (the rare heavy cases live in [`RuleSet`] tables) because filter lists
/// run to hundreds of checks and evaluation is bound by memory traffic.
#[derive(Clone, Copy, Debug)]
enum Check {
    /// Decided by the automaton pass: true iff the slot was set this event.
    Slot(u32),
    /// The OR of several slots (a group, marked through `RuleSet::slot_marks`),
    /// also set by the automaton pass: a 30-value list costs one lookup, not 30.
    AnySlot(u32),
    /// A wildcard pattern (`RuleSet::globs`): its longest literal must
    /// occur (the slot, set for any occurrence) before the glob is worth running.
    Glob { slot: u32, glob: u32 },
    /// A regular expression (`RuleSet::direct`) run only if one of its gate
    /// slots (`RuleSet::gates`, literals every match contains) holds.
    Regex { gate: u32, direct: u32 },
    /// Everything else (regex, cased, null, numbers, keywords...), in
    /// `RuleSet::direct`: evaluated on the event as written.
    Direct(u32),
}

/// A run `first..first + len` of one of [`Plans`]' arrays.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    first: u32,
    len: u32,
}

impl Span {
    /// The run from `first` to the end of an array `end` items long.
    fn up_to(first: usize, end: usize) -> Span {
        let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        Span {
            first: index(first),
            len: index(end.saturating_sub(first)),
        }
    }

    fn range(self) -> std::ops::Range<usize> {
        let first = self.first as usize;
        first..first + self.len as usize
    }

    fn of<T>(self, items: &[T]) -> &[T] {
        items.get(self.range()).unwrap_or_default()
    }
}

/// A field test of a rule, with its values as [`Check`]s (`Plans::checks`).
#[derive(Debug)]
struct TestPlan {
    target: Target,
    all: bool,
    checks: Span,
}

/// A node of a rule's condition, over [`Plans`]' arrays.
#[derive(Clone, Copy, Debug)]
enum Node {
    /// A selection: the OR of its maps (`Plans::maps`), each the AND of
    /// its tests.
    Selection(Span),
    /// A selection that is one slot, or the OR of a group's slots: each of
    /// its maps is one test of slot checks, so walking maps and tests is
    /// not needed (see [`Groups::selection`]).
    Slot(u32),
    Group(u32),
    Not(u32),
    /// Over the nodes `Plans::nodes[span]`.
    And(Span),
    Or(Span),
}

/// Every rule's condition and selections in flat arrays, laid out rule
/// after rule. The few rules evaluated per event are cold in cache, so
/// each pointer chased is a miss: a rule reads a few short runs here,
/// where a tree of small allocations (condition, selections, maps, tests,
/// checks) cost a miss per node.
#[derive(Debug, Default)]
struct Plans {
    /// Per rule: the root of its condition in `nodes`.
    roots: Vec<u32>,
    nodes: Vec<Node>,
    /// Per map of a selection: its tests.
    maps: Vec<Span>,
    tests: Vec<TestPlan>,
    checks: Vec<Check>,
}

/// The rules of one logsource and their automata.
#[derive(Debug, Default)]
struct RuleSet {
    rules: Vec<CompiledRule>,
    plans: Plans,
    scans: Vec<FieldScan>,
    slot_count: usize,
    /// Per slot: the marks it sets the first time it holds in an event: the
    /// groups ([`Check::AnySlot`]) it belongs to, then the rules that
    /// require it (the prefilter), as [`Marks`] indices. One list and one
    /// bit set, so that a new slot reads a single run of memory.
    slot_marks: Lists<u32>,
    /// Per rule: groups that must all hold for it to fire (its necessary
    /// conditions, [`compile::required_conjuncts`]), checked before its plan.
    rule_conjuncts: Lists<u32>,
    marks: Marks,
    globs: Vec<Vec<GlobToken>>,
    direct: Vec<Matcher>,
    /// Per [`Check::Regex`]: the slots one of which must hold for it to match.
    gates: Lists<u32>,
    /// Rules without a required literal, evaluated on every event: the
    /// candidate bits each event starts from (rule `r` is bit `r`).
    always: Bits,
    /// Fields some rule of this set reads (only these are lowercased).
    used: Vec<bool>,
}

/// Reusable per-thread buffers, so evaluation does not allocate per event.
#[derive(Debug, Default)]
pub struct Scratch {
    lowered: LoweredFields,
    /// The slots whose test holds this event.
    slots: Bits,
    /// The groups one of whose slots holds this event, and the rules to
    /// evaluate (see [`Marks`]).
    marks: Bits,
}

impl Scratch {
    /// Starts a new event: no slot or group holds yet, and the candidates
    /// are the rules evaluated on every event.
    fn next_event(&mut self, set: &RuleSet) {
        self.slots.reset(set.slot_count);
        self.marks.reset(set.marks.len(set.rules.len()));
        let rule_words = self.marks.0.iter_mut().skip(set.marks.first_rule / 64);
        for (word, &always) in rule_words.zip(&set.always.0) {
            *word = always;
        }
    }
}

/// How groups and rules share one bit set per event: group `g` is bit `g`,
/// rule `r` bit `first_rule + r`. Rules start on a word boundary, so the
/// candidates are read (and seeded from [`RuleSet::always`]) as whole words.
#[derive(Clone, Copy, Debug, Default)]
struct Marks {
    first_rule: usize,
}

impl Marks {
    fn new(group_count: usize) -> Marks {
        Marks {
            first_rule: group_count.next_multiple_of(64),
        }
    }

    fn rule(self, rule: u32) -> u32 {
        u32::try_from(self.first_rule)
            .unwrap_or(u32::MAX)
            .saturating_add(rule)
    }

    /// Bits needed for `rule_count` rules.
    fn len(self, rule_count: usize) -> usize {
        self.first_rule + rule_count
    }
}

/// One bit per rule, slot or group of a set. Marked in any order, read in
/// order (candidates keep rule order without a sort), and small enough to
/// stay in L1 and be reset per event: ~12,000 slots are 1.5 KB, where
/// per-slot generation stamps were 48 KB missing the cache on each hit.
#[derive(Clone, Debug, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    /// Clears every bit, sized for `len` bits.
    fn reset(&mut self, len: usize) {
        self.0.clear();
        self.0.resize(len.div_ceil(64), 0);
    }

    /// Sets bit `index`; whether it was clear.
    fn insert(&mut self, index: u32) -> bool {
        let Some(word) = self.0.get_mut(index as usize / 64) else {
            return false;
        };
        let bit = 1 << (index % 64);
        let was_clear = *word & bit == 0;
        *word |= bit;
        was_clear
    }

    fn contains(&self, index: u32) -> bool {
        self.0
            .get(index as usize / 64)
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }

    /// The bits set from bit `first` (a multiple of 64) on, in increasing
    /// order, numbered from `first`.
    fn iter_from(&self, first: usize) -> impl Iterator<Item = usize> + '_ {
        let words = self.0.get(first / 64..).unwrap_or_default();
        words.iter().enumerate().flat_map(|(index, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                let bit = rest.trailing_zeros();
                (rest != 0).then(|| {
                    rest &= rest - 1;
                    index * 64 + bit as usize
                })
            })
        })
    }
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
        let mut sets: Vec<(Logsource, RuleSet)> = Logsource::ALL
            .iter()
            .map(|&l| (l, RuleSet::default()))
            .collect();
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

    /// Calls `fired` for each rule matching `event`, in a deterministic
    /// order: the rules of its logsource, then those of the logsource that
    /// covers it (`registry_event` for a registry event).
    pub fn for_each_match<'e>(
        &'e self,
        event: &dyn EventFields,
        scratch: &mut Scratch,
        mut fired: impl FnMut(&'e CompiledRule),
    ) {
        self.match_set(event, scratch, &mut fired);
        if let Some(cover) = event.logsource().covered_by() {
            let covered = Covered { event, cover };
            self.match_set(&covered, scratch, &mut fired);
        }
    }

    /// [`Engine::for_each_match`] for the rules of `event.logsource()`.
    fn match_set<'e>(
        &'e self,
        event: &dyn EventFields,
        scratch: &mut Scratch,
        fired: &mut impl FnMut(&'e CompiledRule),
    ) {
        let logsource = event.logsource();
        let Some((_, set)) = self.sets.iter().find(|(l, _)| *l == logsource) else {
            return;
        };
        if set.rules.is_empty() {
            return;
        }
        scratch.next_event(set);
        scratch.lowered.fill(event, Some(&set.used));
        for scan in &set.scans {
            let Some(value) = scratch.lowered.get(scan.field) else {
                continue;
            };
            scan.automaton
                .for_each_occurrence(value.as_bytes(), |pattern, end| {
                    for &Hit {
                        slot,
                        len,
                        marks,
                        anchor,
                    } in scan.pattern_hits.get(pattern)
                    {
                        let start = end.saturating_sub(len as usize);
                        if !anchor.holds(start, end, value.len()) {
                            continue;
                        }
                        if !scratch.slots.insert(slot) {
                            continue;
                        }
                        // First time this event: its groups hold, and the
                        // rules requiring it are candidates.
                        for &mark in marks.of(&set.slot_marks.items) {
                            scratch.marks.insert(mark);
                        }
                    }
                });
        }
        let view = EventView {
            event,
            lowered: &scratch.lowered,
        };
        let context = Context {
            view,
            slots: &scratch.slots,
            groups: &scratch.marks,
            globs: &set.globs,
            direct: &set.direct,
            gates: &set.gates,
        };
        for index in scratch.marks.iter_from(set.marks.first_rule) {
            let Some(rule) = set.rules.get(index) else {
                continue;
            };
            if context.all_hold(set.rule_conjuncts.get(index)) && set.plans.matches(index, &context)
            {
                fired(rule);
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

/// An event seen as the logsource that covers it
/// ([`Logsource::covered_by`]): each of that logsource's fields is the
/// event's field of the same name, absent when the event has none (a key
/// deletion has no `Details`).
struct Covered<'a> {
    event: &'a dyn EventFields,
    cover: Logsource,
}

impl EventFields for Covered<'_> {
    fn logsource(&self) -> Logsource {
        self.cover
    }

    fn get(&self, index: usize) -> Option<&str> {
        let name = self.cover.fields().get(index)?.name;
        self.event.get(self.event.logsource().field_index(name)?)
    }
}

/// Evaluates one rule on a prepared view, without any prefilter.
pub fn rule_matches(rule: &CompiledRule, view: &EventView<'_>) -> bool {
    rule.condition
        .eval(&mut |i| rule.selections.get(i).is_some_and(|s| s.matches(view)))
}

fn to_owned(event: &dyn EventFields) -> OwnedEvent {
    let logsource = event.logsource();
    OwnedEvent {
        logsource,
        values: (0..logsource.fields().len())
            .map(|i| event.get(i).map(str::to_owned))
            .collect(),
    }
}

/// What a rule's checks read during one event.
struct Context<'a> {
    view: EventView<'a>,
    /// The slots whose test holds this event.
    slots: &'a Bits,
    /// The groups one of whose slots holds this event (group `g` is bit `g`).
    groups: &'a Bits,
    globs: &'a [Vec<GlobToken>],
    direct: &'a [Matcher],
    gates: &'a Lists<u32>,
}

impl Context<'_> {
    fn group(&self, group: u32) -> bool {
        self.groups.contains(group)
    }

    fn all_hold(&self, groups: &[u32]) -> bool {
        groups.iter().all(|&group| self.group(group))
    }

    fn slot(&self, slot: u32) -> bool {
        self.slots.contains(slot)
    }

    fn check(&self, check: Check, index: usize) -> bool {
        match check {
            Check::Slot(slot) => self.slot(slot),
            Check::AnySlot(group) => self.group(group),
            Check::Glob { slot, glob } => {
                self.slot(slot)
                    && match (self.globs.get(glob as usize), self.view.lowered(index)) {
                        (Some(tokens), Some(value)) => glob_match(tokens, value),
                        _ => false,
                    }
            }
            Check::Regex { gate, direct } => {
                self.gates
                    .get(gate as usize)
                    .iter()
                    .any(|&slot| self.slot(slot))
                    && self.direct(direct, index)
            }
            Check::Direct(direct) => self.direct(direct, index),
        }
    }

    fn direct(&self, direct: u32, index: usize) -> bool {
        self.direct
            .get(direct as usize)
            .is_some_and(|m| m.matches(&self.view, index))
    }
}

impl Plans {
    /// Adds the plan of the next rule: its selections' tests, with each
    /// value as `check` makes it (the slots of an OR-ed test folded into
    /// one of `groups`), then its condition over them.
    fn push(
        &mut self,
        rule: &CompiledRule,
        groups: &mut Groups,
        mut check: impl FnMut(Target, &Matcher) -> Check,
    ) {
        let selections: Vec<Node> = rule
            .selections
            .iter()
            .map(|selection| {
                let maps: Vec<Vec<(&FieldTest, Vec<Check>)>> = selection
                    .any_of
                    .iter()
                    .map(|tests| {
                        let checks = |test| (test, groups.checks(test, &mut check));
                        tests.iter().map(checks).collect()
                    })
                    .collect();
                if let Some(node) = groups.selection(&maps) {
                    return node;
                }
                let first_map = self.maps.len();
                for tests in maps {
                    let first_test = self.tests.len();
                    for (test, checks) in tests {
                        let first_check = self.checks.len();
                        self.checks.extend(checks);
                        self.tests.push(TestPlan {
                            target: test.target,
                            all: test.all,
                            checks: Span::up_to(first_check, self.checks.len()),
                        });
                    }
                    self.maps.push(Span::up_to(first_test, self.tests.len()));
                }
                Node::Selection(Span::up_to(first_map, self.maps.len()))
            })
            .collect();
        let root = self.node_slots(1);
        self.fill(root.first as usize, &rule.condition, &selections);
        self.roots.push(root.first);
    }

    /// Appends `count` nodes to be filled in: an operator's operands are
    /// adjacent, so it holds them as one [`Span`].
    fn node_slots(&mut self, count: usize) -> Span {
        let first = self.nodes.len();
        self.nodes.resize(first + count, Node::And(Span::default()));
        Span::up_to(first, self.nodes.len())
    }

    fn fill(&mut self, at: usize, expr: &Expr, selections: &[Node]) {
        let node = match expr {
            // An index past the selections matches nothing (empty span).
            Expr::Selection(i) => selections
                .get(*i)
                .copied()
                .unwrap_or(Node::Selection(Span::default())),
            Expr::Not(inner) => {
                let operand = self.node_slots(1);
                self.fill(operand.first as usize, inner, selections);
                Node::Not(operand.first)
            }
            Expr::And(parts) | Expr::Or(parts) => {
                let operands = self.node_slots(parts.len());
                for (at, part) in operands.range().zip(parts) {
                    self.fill(at, part, selections);
                }
                if matches!(expr, Expr::And(_)) {
                    Node::And(operands)
                } else {
                    Node::Or(operands)
                }
            }
        };
        if let Some(slot) = self.nodes.get_mut(at) {
            *slot = node;
        }
    }

    /// Whether rule `rule`'s condition holds.
    fn matches(&self, rule: usize, context: &Context<'_>) -> bool {
        self.roots
            .get(rule)
            .is_some_and(|&root| self.holds(root, context))
    }

    fn holds(&self, node: u32, context: &Context<'_>) -> bool {
        match self.nodes.get(node as usize) {
            Some(Node::Selection(maps)) => maps.of(&self.maps).iter().any(|tests| {
                tests
                    .of(&self.tests)
                    .iter()
                    .all(|test| test.matches(test.checks.of(&self.checks), context))
            }),
            Some(Node::Slot(slot)) => context.slot(*slot),
            Some(Node::Group(group)) => context.group(*group),
            Some(Node::Not(inner)) => !self.holds(*inner, context),
            Some(Node::And(parts)) => parts.range().all(|p| self.holds(p as u32, context)),
            Some(Node::Or(parts)) => parts.range().any(|p| self.holds(p as u32, context)),
            None => false,
        }
    }
}

impl TestPlan {
    fn matches(&self, checks: &[Check], context: &Context<'_>) -> bool {
        match self.target {
            Target::Field(index) => self.matches_field(checks, context, index),
            // Keywords hold only `Direct` checks (slots are per field).
            Target::AnyField => {
                (0..context.view.field_count()).any(|i| self.matches_field(checks, context, i))
            }
        }
    }

    fn matches_field(&self, checks: &[Check], context: &Context<'_>, index: usize) -> bool {
        let one = |check: &Check| context.check(*check, index);
        if self.all {
            checks.iter().all(one)
        } else {
            checks.iter().any(one)
        }
    }
}

/// One field's literals while the automata are being built.
#[derive(Default)]
struct FieldLiterals {
    patterns: Vec<String>,
    index: HashMap<String, usize>,
    slots: Vec<Vec<(u32, Anchor)>>,
}

impl FieldLiterals {
    /// Per pattern of `automaton` (built from these literals), the slots
    /// its reported occurrences decide. The marks are set once known.
    fn hits(&self, automaton: &FieldAutomaton) -> Lists<Hit> {
        let hit = |pattern: usize| {
            let len = self.patterns.get(pattern).map_or(0, String::len);
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            let slots = self.slots.get(pattern).map(Vec::as_slice);
            slots
                .unwrap_or_default()
                .iter()
                .map(move |&(slot, anchor)| Hit {
                    slot,
                    len,
                    marks: Span::default(),
                    anchor,
                })
        };
        let reported = automaton.reported_with(&self.patterns).into_iter();
        Lists::new(
            reported
                .map(|r| r.into_iter().flat_map(hit).collect())
                .collect(),
        )
    }

    fn pattern(&mut self, literal: &str) -> usize {
        if let Some(&p) = self.index.get(literal) {
            return p;
        }
        let p = self.patterns.len();
        self.patterns.push(literal.to_owned());
        self.index.insert(literal.to_owned(), p);
        self.slots.push(Vec::new());
        p
    }
}

/// The literal a check can be decided (or gated) by: (field, anchor, text).
fn slot_key(target: Target, matcher: &Matcher) -> Option<(usize, Anchor, &str)> {
    let Target::Field(field) = target else {
        return None;
    };
    match matcher {
        // The automaton sees lowercased values, so only caseless tests; an
        // empty literal would match everywhere and is left to `Direct`.
        Matcher::Str {
            kind,
            text,
            cased: false,
        } if !text.is_empty() => match kind {
            StrKind::Glob(_) => Some((field, Anchor::Contains, text)),
            other => Some((field, Anchor::of(other)?, text)),
        },
        _ => None,
    }
}

/// For a regular expression on one field: the field and its gate literals
/// ([`compile::regex_literals`]).
fn regex_gate(target: Target, matcher: &Matcher) -> Option<(usize, Vec<String>)> {
    let (Target::Field(field), Matcher::Regex(regex)) = (target, matcher) else {
        return None;
    };
    Some((field, compile::regex_literals(regex)?))
}

impl RuleSet {
    fn build(&mut self, logsource: Logsource) {
        let field_count = logsource.fields().len();
        self.used = vec![false; field_count];
        for rule in &self.rules {
            for test in rule
                .selections
                .iter()
                .flat_map(|s| s.any_of.iter().flatten())
            {
                match test.target {
                    Target::Field(f) => {
                        if let Some(u) = self.used.get_mut(f) {
                            *u = true;
                        }
                    }
                    Target::AnyField => self.used.iter_mut().for_each(|u| *u = true),
                }
                for m in &test.matchers {
                    if let Matcher::FieldRef { other, .. } = m {
                        if let Some(u) = self.used.get_mut(*other) {
                            *u = true;
                        }
                    }
                }
            }
        }

        // Every literal, deduplicated into slots by (field, anchor, text).
        let mut literals: Vec<FieldLiterals> =
            (0..field_count).map(|_| FieldLiterals::default()).collect();
        let mut slots: HashMap<(usize, Anchor, String), u32> = HashMap::new();
        for rule in &self.rules {
            for test in rule
                .selections
                .iter()
                .flat_map(|s| s.any_of.iter().flatten())
            {
                let own = test
                    .matchers
                    .iter()
                    .filter_map(|m| slot_key(test.target, m));
                let gates = test.matchers.iter().flat_map(|m| {
                    let (field, literals) = regex_gate(test.target, m).unwrap_or_default();
                    literals
                        .into_iter()
                        .map(move |text| (field, Anchor::Contains, text))
                });
                let keys = own
                    .map(|(field, anchor, text)| (field, anchor, text.to_owned()))
                    .chain(gates);
                for key in keys {
                    let (field, anchor) = (key.0, key.1);
                    let Some(field_literals) = literals.get_mut(field) else {
                        continue;
                    };
                    if slots.contains_key(&key) {
                        continue;
                    }
                    let slot = u32::try_from(slots.len()).unwrap_or(u32::MAX);
                    let p = field_literals.pattern(&key.2);
                    slots.insert(key, slot);
                    if let Some(s) = field_literals.slots.get_mut(p) {
                        s.push((slot, anchor));
                    }
                }
            }
        }
        self.slot_count = slots.len();

        let mut scanned = vec![false; field_count];
        for (field, l) in literals.into_iter().enumerate() {
            if l.patterns.is_empty() {
                continue;
            }
            // A field whose automaton cannot be built stays unscanned: its
            // tests are evaluated directly and its rules on every event.
            if let Some(automaton) = FieldAutomaton::new(&l.patterns) {
                if let Some(s) = scanned.get_mut(field) {
                    *s = true;
                }
                self.scans.push(FieldScan {
                    field,
                    pattern_hits: l.hits(&automaton),
                    automaton,
                });
            }
        }

        // A regex's gate literals are in its field's automaton (added with
        // the other literals above) unless the field is not scanned.
        let gate_slots = |target: Target, matcher: &Matcher| -> Option<Vec<u32>> {
            let (field, literals) = regex_gate(target, matcher)?;
            if !scanned.get(field).copied().unwrap_or(false) {
                return None;
            }
            literals
                .into_iter()
                .map(|text| slots.get(&(field, Anchor::Contains, text)).copied())
                .collect()
        };
        // The slots one of which holds whenever a required matcher does: its
        // own, or a regex's gates; `None` if its field is not scanned.
        let required_slots = |field: usize, m: &Matcher| -> Option<Vec<u32>> {
            if matches!(m, Matcher::Regex(_)) {
                return gate_slots(Target::Field(field), m);
            }
            let (field, anchor, text) = slot_key(Target::Field(field), m)?;
            if !scanned.get(field).copied().unwrap_or(false) {
                return None;
            }
            slots
                .get(&(field, anchor, text.to_owned()))
                .map(|&slot| vec![slot])
        };
        // The slots one of which holds whenever one of `required` does.
        let any_slot_of = |required: Vec<(usize, &Matcher)>| -> Option<Vec<u32>> {
            let mut all = Vec::new();
            for (field, m) in required {
                all.extend(required_slots(field, m)?);
            }
            Some(all)
        };

        // The prefilter: each rule under the slots it requires. A rule
        // requiring a test on a field without an automaton is always evaluated.
        let mut slot_rules: Vec<Vec<u32>> = vec![Vec::new(); self.slot_count];
        self.always = Bits::new(self.rules.len());
        for (index, rule) in self.rules.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let required = compile::required_matchers(rule).and_then(any_slot_of);
            match required {
                Some(required) => {
                    for slot in required {
                        if let Some(rules) = slot_rules.get_mut(slot as usize) {
                            if rules.last() != Some(&index) {
                                rules.push(index);
                            }
                        }
                    }
                }
                None => {
                    self.always.insert(index);
                }
            }
        }

        let (mut globs, mut direct, mut gates) = (Vec::new(), Vec::new(), Vec::new());
        let mut groups = Groups::default();
        let mut check = |target: Target, matcher: &Matcher| -> Check {
            let slot = slot_key(target, matcher)
                .filter(|(field, _, _)| scanned.get(*field).copied().unwrap_or(false))
                .and_then(|(field, anchor, text)| {
                    slots.get(&(field, anchor, text.to_owned())).copied()
                });
            match (slot, matcher) {
                (
                    Some(slot),
                    Matcher::Str {
                        kind: StrKind::Glob(tokens),
                        ..
                    },
                ) => {
                    globs.push(tokens.clone());
                    Check::Glob {
                        slot,
                        glob: u32::try_from(globs.len() - 1).unwrap_or(u32::MAX),
                    }
                }
                (Some(slot), _) => Check::Slot(slot),
                (None, _) => {
                    direct.push(matcher.clone());
                    let index = u32::try_from(direct.len() - 1).unwrap_or(u32::MAX);
                    match gate_slots(target, matcher) {
                        Some(slots) => {
                            gates.push(slots);
                            Check::Regex {
                                gate: u32::try_from(gates.len() - 1).unwrap_or(u32::MAX),
                                direct: index,
                            }
                        }
                        None => Check::Direct(index),
                    }
                }
            }
        };
        let mut plans = Plans::default();
        for rule in &self.rules {
            plans.push(rule, &mut groups, &mut check);
        }
        self.plans = plans;
        self.globs = globs;
        self.direct = direct;
        self.gates = Lists::new(gates);
        // Each necessary condition the automata can decide, as a group.
        let conjuncts: Vec<Vec<u32>> = self
            .rules
            .iter()
            .map(|rule| {
                compile::required_conjuncts(rule)
                    .into_iter()
                    .filter_map(|conjunct| {
                        let mut slots = any_slot_of(conjunct)?;
                        slots.sort_unstable();
                        slots.dedup();
                        Some(groups.group(slots))
                    })
                    .collect()
            })
            .collect();
        self.rule_conjuncts = Lists::new(conjuncts);
        self.marks = Marks::new(groups.members.len());
        let mut slot_marks = groups.by_slot(self.slot_count);
        for (marks, rules) in slot_marks.iter_mut().zip(slot_rules) {
            marks.extend(rules.into_iter().map(|rule| self.marks.rule(rule)));
        }
        self.slot_marks = Lists::new(slot_marks);
        for scan in &mut self.scans {
            for hit in &mut scan.pattern_hits.items {
                hit.marks = self.slot_marks.span(hit.slot as usize);
            }
        }
    }
}

/// The sets of slots OR-ed by one test, deduplicated across rules (the
/// same list of binaries appears in many rules) while plans are built.
#[derive(Default)]
struct Groups {
    index: HashMap<Vec<u32>, u32>,
    members: Vec<Vec<u32>>,
}

impl Groups {
    /// The checks of `test`, as `check` makes them, with an OR-ed test's
    /// slots folded into one group.
    fn checks(
        &mut self,
        test: &FieldTest,
        check: &mut impl FnMut(Target, &Matcher) -> Check,
    ) -> Vec<Check> {
        let checks = test.matchers.iter().map(|m| check(test.target, m));
        let checks = checks.collect();
        if test.all { checks } else { self.fold(checks) }
    }

    /// Replaces the slot checks of an OR-ed test with one group check, put
    /// first because it is the cheapest and the most often decisive.
    fn fold(&mut self, checks: Vec<Check>) -> Vec<Check> {
        let (mut slots, mut others) = (Vec::new(), Vec::new());
        for check in checks {
            match check {
                Check::Slot(slot) => slots.push(slot),
                other => others.push(other),
            }
        }
        slots.sort_unstable();
        slots.dedup();
        let first = match slots.as_slice() {
            [] => return others,
            [one] => Check::Slot(*one),
            _ => Check::AnySlot(self.group(slots)),
        };
        others.insert(0, first);
        others
    }

    /// The node deciding a selection (its maps' tests with their checks)
    /// from slots alone, if each map is one test whose only check is a
    /// slot or a group: the selection is then the OR of all their slots.
    fn selection(&mut self, maps: &[Vec<(&FieldTest, Vec<Check>)>]) -> Option<Node> {
        let mut slots = Vec::new();
        for tests in maps {
            match tests.as_slice() {
                [(_, checks)] => match checks.as_slice() {
                    [Check::Slot(slot)] => slots.push(*slot),
                    [Check::AnySlot(group)] => {
                        slots.extend(self.members.get(*group as usize)?);
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
        slots.sort_unstable();
        slots.dedup();
        match slots.as_slice() {
            [] => None,
            [one] => Some(Node::Slot(*one)),
            _ => Some(Node::Group(self.group(slots))),
        }
    }

    fn group(&mut self, slots: Vec<u32>) -> u32 {
        if let Some(&group) = self.index.get(&slots) {
            return group;
        }
        let group = u32::try_from(self.members.len()).unwrap_or(u32::MAX);
        self.index.insert(slots.clone(), group);
        self.members.push(slots);
        group
    }

    /// Per slot, the groups containing it.
    fn by_slot(&self, slot_count: usize) -> Vec<Vec<u32>> {
        let mut by_slot = vec![Vec::new(); slot_count];
        for (group, slots) in self.members.iter().enumerate() {
            let group = u32::try_from(group).unwrap_or(u32::MAX);
            for &slot in slots {
                if let Some(groups) = by_slot.get_mut(slot as usize) {
                    groups.push(group);
                }
            }
        }
        by_slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::OwnedEvent;
    use std::path::Path;

    #[test]
    fn anchors_from_positions() {
        // Value "abab" (len 4), occurrences of "ab" at 0..2 and 2..4.
        assert!(Anchor::Prefix.holds(0, 2, 4) && !Anchor::Prefix.holds(2, 4, 4));
        assert!(Anchor::Suffix.holds(2, 4, 4) && !Anchor::Suffix.holds(0, 2, 4));
        assert!(
            Anchor::Exact.holds(0, 4, 4)
                && !Anchor::Exact.holds(0, 2, 4)
                && !Anchor::Exact.holds(2, 4, 4)
        );
        assert!(Anchor::Contains.holds(2, 4, 4));
    }

    /// (selection body, condition) pairs over `CommandLine`, chosen so that
    /// literals overlap and prefix/suffix each other.
    const RULES: &[(&str, &str)] = &[
        (
            "    sel:\n      CommandLine|startswith: ['aba', 'b']\n",
            "sel",
        ),
        (
            "    sel:\n      CommandLine|endswith: ['aba', 'ba']\n",
            "sel",
        ),
        ("    sel:\n      CommandLine: 'abab'\n", "sel"),
        ("    sel:\n      CommandLine: ['a', 'ba']\n", "sel"),
        (
            "    sel:\n      CommandLine|contains|all: ['abab', 'bb']\n",
            "sel",
        ),
        ("    sel:\n      CommandLine: 'a*b?a'\n", "sel"),
        ("    sel:\n      CommandLine: '*bab*'\n", "sel"),
        ("    sel:\n      CommandLine: 'ab*ab'\n", "sel"),
        (
            "    sel:\n      CommandLine|startswith: 'ab'\n    filter:\n      CommandLine|endswith: 'bb'\n",
            "sel and not filter",
        ),
        ("    sel:\n      CommandLine|contains|cased: 'Ab'\n", "sel"),
        ("    sel:\n      CommandLine|contains: 'İ'\n", "sel"),
        ("    sel:\n      CommandLine|endswith: 'σ'\n", "sel"),
        ("    sel:\n      CommandLine|re: '^a.b'\n", "sel"),
        (
            "    a:\n      CommandLine|contains: 'ab'\n    b:\n      CommandLine|endswith: ['ba', 'bb']\n",
            "a and b",
        ),
        (
            "    sel:\n      CommandLine|contains|all: ['aa', 'bb']\n      CommandLine|startswith: 'b'\n",
            "sel",
        ),
        ("    sel:\n      CommandLine|re: 'abab|bba'\n", "sel"),
        ("    sel:\n      CommandLine|re|i: 'bab+a'\n", "sel"),
        ("    sel:\n      CommandLine|re: 'b(?i)ABA'\n", "sel"),
        ("    sel:\n      CommandLine|re: '(?i)ΟΣ'\n", "sel"),
        ("    sel:\n      CommandLine|startswith: ''\n", "sel"),
        ("    sel:\n      CommandLine: ''\n", "sel"),
        (
            "    sel:\n      - CommandLine|startswith: 'ab'\n      - CommandLine|endswith: ['ba', 'b']\n",
            "sel",
        ),
        (
            "    sel:\n      CommandLine: ['a*b', 'aab', 'bba']\n",
            "sel",
        ), // Gated on 'bba', inside the expression.
        ("    sel:\n      CommandLine|re: 'a+bba.'\n", "sel"),
    ];

    fn rules() -> Vec<CompiledRule> {
        RULES
            .iter()
            .enumerate()
            .map(|(i, (body, condition))| {
                let text = format!(
                    "title: r{i}\nid: r{i}\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n{body}    condition: {condition}\n"
                );
                compile::compile_rule(&text, Path::new("test.yml")).unwrap_or_else(|e| panic!("rule {i}: {e}"))
            })
            .collect()
    }

    /// Every string over {a, b, A, B} up to length 6, plus non-ASCII values
    /// whose lowercase form differs in length or by context.
    fn values() -> Vec<String> {
        let mut out = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..6 {
            frontier = frontier
                .iter()
                .flat_map(|v| ["a", "b", "A", "B"].map(|c| format!("{v}{c}")))
                .collect();
            out.extend(frontier.iter().cloned());
        }
        out.extend(["xİy", "XİY", "ΟΔΟΣ", "ΟΔΟΣ ", "odoσ", "abİab", "ABAB"].map(String::from));
        out
    }

    /// The automaton-derived answers agree with evaluating every matcher
    /// directly, including overlapping, case-folded and wildcard matches.
    #[test]
    fn slots_agree_with_direct_evaluation() {
        let rules = rules();
        let engine = Engine::new(rules.clone());
        let mut scratch = Scratch::default();
        let mut lowered = LoweredFields::default();
        let mut fired_total = 0;
        for value in values() {
            let mut event = OwnedEvent::empty(Logsource::ProcessCreation);
            assert!(event.set("CommandLine", value.clone()));
            let mut fast = Vec::new();
            engine.for_each_match(&event, &mut scratch, |r| fast.push(r.id.clone()));
            lowered.fill(&event, None);
            let view = EventView {
                event: &event,
                lowered: &lowered,
            };
            let slow: Vec<String> = rules
                .iter()
                .filter(|r| rule_matches(r, &view))
                .map(|r| r.id.clone())
                .collect();
            fast.sort();
            let mut slow_sorted = slow.clone();
            slow_sorted.sort();
            assert_eq!(fast, slow_sorted, "value {value:?}");
            fired_total += fast.len();
        }
        assert!(
            fired_total > 1000,
            "the values must exercise the rules ({fired_total})"
        );
    }

    /// `Provider_Name` is decided when compiling: every event of a Sysmon
    /// logsource is Sysmon's. A filter excluding another provider never
    /// excludes; a selection asking for Sysmon always holds, one asking for
    /// another provider never; modifiers apply. ringside's own file rename
    /// has no Sysmon provider, and a rule naming it there is rejected.
    #[test]
    fn the_provider_is_decided_when_compiling() {
        let rule = |id: &str, category: &str, body: &str, condition: &str| {
            let text = format!(
                "title: {id}\nid: {id}\nlogsource:\n  product: windows\n  category: {category}\ndetection:\n{body}    condition: {condition}\n"
            );
            compile::compile_rule(&text, Path::new("test.yml"))
        };
        let image = "    selection:\n        Image|endswith: '\\x.exe'\n";
        let rules: Vec<CompiledRule> = [
            ("not-other", format!("{image}    filter:\n        Provider_Name: 'SystemTraceProvider-Process'\n"), "selection and not filter"),
            ("is-sysmon", format!("{image}    provider:\n        Provider_Name|startswith: 'microsoft-windows-sys'\n"), "selection and provider"),
            ("is-other", format!("{image}    provider:\n        Provider_Name: 'Microsoft-Windows-Kernel-Audit-API-Calls'\n"), "selection and provider"),
            ("or-other", "    selection:\n        - Image|endswith: '\\x.exe'\n        - Provider_Name: 'Other'\n          Image: 'y'\n".to_owned(), "selection"),
            ("either", "    selection:\n        Provider_Name:\n            - 'Other'\n            - 'Microsoft-Windows-Sysmon'\n".to_owned(), "selection"),
        ]
        .iter()
        .map(|(id, body, condition)| {
            rule(id, "process_creation", body, condition).unwrap_or_else(|e| panic!("{id}: {e}"))
        })
        .collect();
        let engine = Engine::new(rules);
        let fired = |image: &str| {
            let mut event = OwnedEvent::empty(Logsource::ProcessCreation);
            assert!(event.set("Image", image.to_owned()));
            let mut ids: Vec<String> = engine
                .evaluate(&event)
                .into_iter()
                .map(|a| a.rule_id)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(
            fired(r"C:\x.exe"),
            ["either", "is-sysmon", "not-other", "or-other"]
        );
        assert_eq!(fired(r"C:\y.exe"), ["either"]);
        // A map that cannot hold still has every field checked.
        let bogus = rule(
            "bogus",
            "process_creation",
            "    selection:\n        Provider_Name: 'Other'\n        NoSuchField: 'x'\n",
            "selection",
        )
        .expect_err("an unprovided field is refused wherever it is");
        assert!(
            matches!(&bogus.reason, compile::Reason::FieldNotProvided { field, .. } if field == "NoSuchField"),
            "{bogus}"
        );
        let rejected = rule(
            "rename",
            "file_rename",
            "    selection:\n        Provider_Name: 'Microsoft-Windows-Sysmon'\n",
            "selection",
        )
        .expect_err("file renames are ringside's own event");
        assert!(
            matches!(&rejected.reason, compile::Reason::FieldNotProvided { field, .. } if field == "Provider_Name"),
            "{rejected}"
        );
    }

    /// Most tests are decided by slots, not evaluated directly.
    #[test]
    fn string_tests_become_slots() {
        let engine = Engine::new(rules());
        let set = &engine
            .sets
            .iter()
            .find(|(l, _)| *l == Logsource::ProcessCreation)
            .expect("set")
            .1;
        let checks: Vec<&Check> = set.plans.checks.iter().collect();
        let direct = checks
            .iter()
            .filter(|c| matches!(c, Check::Direct(_)))
            .count();
        // cased, regex '^a.b' (no literal of 3 bytes), the Greek regex
        // (sigma) and the two empty literals.
        assert_eq!(direct, 5, "{checks:#?}");
        let gated = checks
            .iter()
            .filter(|c| matches!(c, Check::Regex { .. }))
            .count();
        assert_eq!(gated, 4, "{checks:#?}");
        assert_eq!(set.direct.len(), 9);
        assert!(checks.iter().any(|c| matches!(c, Check::Glob { .. })));
        // Selections of slots only are decided by one slot or group: the OR
        // of two maps (the last rule), `CommandLine: 'abab'`.
        let root = |rule: usize| set.plans.nodes[set.plans.roots[rule] as usize];
        assert!(matches!(root(21), Node::Group(_)), "{:?}", root(21));
        assert!(matches!(root(2), Node::Slot(_)), "{:?}", root(2));
        // The OR-ed slots of a test with other checks are one group check.
        assert!(checks.iter().any(|c| matches!(c, Check::AnySlot(_))));
        // A regex-only rule is prefiltered on its gate literals ('abab|bba',
        // 'a+bba.'), unless it has none ('^a.b').
        assert!(!set.always.contains(15) && set.always.contains(12));
        assert!(!set.always.contains(23));
    }
}
