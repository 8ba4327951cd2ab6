//! One field's Aho-Corasick automaton over the literals rules compare the
//! field with, and the walk that reports where they occur in a value.

use aho_corasick::Anchored;
use aho_corasick::automaton::Automaton;
use aho_corasick::{dfa, nfa};
use std::collections::HashMap;

/// The largest DFA worth having. A DFA takes fewer instructions per byte
/// than the contiguous NFA but is ~10x larger, and the automata of all
/// fields are walked for every event: with DFAs up to 4 MB (Image, Hashes,
/// ParentImage... ~9 MB together) the engine was ~15% slower in wall clock
/// than with contiguous NFAs only, despite ~15% fewer instructions. Only
/// the automata of fields with a few dozen literals stay DFAs: at 128 KB
/// (process_creation: Product and Company, ~180 KB together, besides the
/// small ones) a walk's few states per event stay cached; at 300 KB
/// (Description too) misses to L2 and beyond grew and the gain halved.
const MAX_DFA_BYTES: usize = 128 << 10;

/// Beyond this many patterns the DFA is not even tried (it would be far over
/// [`MAX_DFA_BYTES`], and building it costs time and transient memory).
const MAX_DFA_PATTERNS: usize = 100;

/// A field's automaton, walked byte by byte by [`Self::for_each_occurrence`]
/// rather than through the library's overlapping iterator, whose per-match
/// call and resume cost more than the walk itself on short field values.
#[derive(Debug)]
pub(crate) struct FieldAutomaton {
    kind: AutomatonKind,
    /// The bytes the patterns start with, when there are at most three
    /// (repeated to fill the array): the walk then jumps from its start
    /// state to the next of them with `memchr3` instead of stepping through
    /// the bytes in between. `Hashes` is the case in point: its patterns all
    /// start `imphash=`, `md5=`, `sha1=` or `sha256=`, so the ~170 bytes of
    /// hex in each value are skipped, where the walk spent 14% of the
    /// engine's instructions on them.
    first_bytes: Option<[u8; 3]>,
    /// Whether every match state lists its longest pattern first. The
    /// patterns ending at a state are then that one and the patterns that
    /// are suffixes of it, so the walk reports only the first: the engine's
    /// list for a pattern covers its suffixes ([`Self::reported_with`]).
    /// Decoding the other patterns of a state (and looking up their
    /// lengths) cost more than the walk's hits did otherwise.
    longest_first: bool,
}

#[derive(Debug)]
enum AutomatonKind {
    Dfa(dfa::DFA),
    Nfa(nfa::contiguous::NFA),
}

impl FieldAutomaton {
    /// A DFA when it is small enough to stay in cache (see
    /// [`MAX_DFA_BYTES`]), else a contiguous NFA. `None` if neither can be
    /// built.
    ///
    /// No prefilter: the walk below does not use one (the library's skips
    /// to rare bytes, which with hundreds of literals over short values
    /// restarted at almost every position; on hex `Hashes` it made the scan
    /// ~4x slower).
    pub(crate) fn new(patterns: &[String]) -> Option<FieldAutomaton> {
        let dfa = (patterns.len() <= MAX_DFA_PATTERNS)
            .then(|| dfa::DFA::builder().prefilter(false).build(patterns).ok())
            .flatten()
            .filter(|dfa| dfa.memory_usage() <= MAX_DFA_BYTES);
        let (kind, longest_first) = match dfa {
            Some(dfa) => {
                let longest_first = longest_first(&dfa, patterns);
                (AutomatonKind::Dfa(dfa), longest_first)
            }
            None => {
                let nfa = nfa::contiguous::NFA::builder()
                    .prefilter(false)
                    .build(patterns)
                    .ok()?;
                let longest_first = longest_first(&nfa, patterns);
                (AutomatonKind::Nfa(nfa), longest_first)
            }
        };
        Some(FieldAutomaton {
            kind,
            first_bytes: first_bytes(patterns),
            longest_first,
        })
    }

    /// Per pattern, the patterns an occurrence reported for it stands for:
    /// itself and, if the walk reports only each state's longest pattern,
    /// every pattern that is a suffix of it (each ends where it ends).
    pub(crate) fn reported_with(&self, patterns: &[String]) -> Vec<Vec<usize>> {
        if !self.longest_first {
            return (0..patterns.len()).map(|pattern| vec![pattern]).collect();
        }
        let index: HashMap<&[u8], usize> = patterns
            .iter()
            .enumerate()
            .map(|(pattern, text)| (text.as_bytes(), pattern))
            .collect();
        patterns
            .iter()
            .map(|text| {
                let bytes = text.as_bytes();
                (0..bytes.len())
                    .filter_map(|start| index.get(bytes.get(start..)?).copied())
                    .collect()
            })
            .collect()
    }

    /// Calls `found(pattern, end)` for every occurrence of every pattern in
    /// `haystack` ending at `end`, overlapping ones included, except that
    /// an occurrence of a pattern stands for those of the patterns
    /// [`Self::reported_with`] it.
    pub(crate) fn for_each_occurrence(&self, haystack: &[u8], found: impl FnMut(usize, usize)) {
        let all = !self.longest_first;
        match &self.kind {
            AutomatonKind::Dfa(dfa) => walk_skipping(dfa, self.first_bytes, haystack, all, found),
            AutomatonKind::Nfa(nfa) => walk_skipping(nfa, self.first_bytes, haystack, all, found),
        }
    }
}

/// [`walk`], jumping with `memchr3` to the next of `first_bytes` if given.
fn walk_skipping<A: Automaton>(
    automaton: &A,
    first_bytes: Option<[u8; 3]>,
    haystack: &[u8],
    all: bool,
    found: impl FnMut(usize, usize),
) {
    match first_bytes {
        None => walk(automaton, haystack, |_| Some(0), all, found),
        Some([a, b, c]) => walk(
            automaton,
            haystack,
            |rest| memchr::memchr3(a, b, c, rest),
            all,
            found,
        ),
    }
}

/// The bytes `patterns` start with, if there are one to three of them,
/// repeated to fill the array. `None` if a pattern is empty: it would
/// match at every position, including those skipped.
fn first_bytes(patterns: &[String]) -> Option<[u8; 3]> {
    let mut bytes: Vec<u8> = patterns
        .iter()
        .map(|p| p.as_bytes().first().copied())
        .collect::<Option<_>>()?;
    bytes.sort_unstable();
    bytes.dedup();
    match bytes[..] {
        [a] => Some([a, a, a]),
        [a, b] => Some([a, b, b]),
        [a, b, c] => Some([a, b, c]),
        _ => None,
    }
}

/// Whether every match state of `automaton` (built from `patterns`) lists
/// its longest pattern first. Each state is reached by reading a prefix of
/// some pattern from the start, so walking every pattern checks them all.
fn longest_first<A: Automaton>(automaton: &A, patterns: &[String]) -> bool {
    let Ok(start) = automaton.start_state(Anchored::No) else {
        return false;
    };
    let first_is_longest = |state| {
        let len = |index| automaton.pattern_len(automaton.match_pattern(state, index));
        !automaton.is_match(state) || (0..automaton.match_len(state)).all(|i| len(i) <= len(0))
    };
    first_is_longest(start)
        && patterns.iter().all(|text| {
            let mut state = start;
            text.bytes().all(|byte| {
                state = automaton.next_state(Anchored::No, state, byte);
                first_is_longest(state)
            })
        })
}

/// The overlapping search: with standard match semantics, every state
/// carries all the patterns ending at it, so reporting each match state's
/// patterns at each position reports every occurrence (`all`), or its
/// first pattern only (see [`FieldAutomaton::longest_first`]).
///
/// `skip(rest)` is how many bytes of `rest` start no pattern (`None`: all
/// of them). In the start state such bytes lead back to the start state
/// and complete no occurrence, so the walk jumps over them.
fn walk<A: Automaton>(
    automaton: &A,
    haystack: &[u8],
    skip: impl Fn(&[u8]) -> Option<usize>,
    all: bool,
    mut found: impl FnMut(usize, usize),
) {
    let Ok(start) = automaton.start_state(Anchored::No) else {
        return;
    };
    let mut report = |state, end: usize| {
        let count = if all { automaton.match_len(state) } else { 1 };
        for index in 0..count {
            found(automaton.match_pattern(state, index).as_usize(), end);
        }
    };
    if automaton.is_match(start) {
        report(start, 0);
    }
    let (mut state, mut at) = (start, 0);
    loop {
        if state == start {
            match haystack.get(at..).and_then(&skip) {
                Some(skipped) => at += skipped,
                None => return,
            }
        }
        let Some(&byte) = haystack.get(at) else {
            return;
        };
        at += 1;
        state = automaton.next_state(Anchored::No, state, byte);
        if automaton.is_special(state) {
            if automaton.is_dead(state) {
                return;
            }
            if automaton.is_match(state) {
                report(state, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every occurrence of every pattern, found by comparing at each position.
    fn occurrences_naive(patterns: &[String], haystack: &str) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for (pattern, text) in patterns.iter().enumerate() {
            for start in 0..haystack.len() {
                if haystack.as_bytes()[start..].starts_with(text.as_bytes()) {
                    out.push((pattern, start, start + text.len()));
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The walk finds every occurrence, overlapping and adjacent ones
    /// included, with either kind of automaton, when it jumps to the
    /// patterns' first bytes and when it reports only each state's longest
    /// pattern (the others are then those reported with it).
    #[test]
    fn walk_finds_every_occurrence() {
        let patterns: Vec<String> = [
            "md5=ab", "m", "sha1=a", "s=", "hah", "mm", "hmm", "ha=ha", "s=ha", "hs=ha", "shs=ha",
        ]
        .map(String::from)
        .to_vec();
        let nfa = nfa::contiguous::NFA::new(&patterns).expect("nfa");
        let dfa = dfa::DFA::new(&patterns).expect("dfa");
        assert!(longest_first(&nfa, &patterns) && longest_first(&dfa, &patterns));
        assert_eq!(first_bytes(&patterns), Some(*b"hms"));
        let automaton = |kind, longest_first| FieldAutomaton {
            kind,
            first_bytes: first_bytes(&patterns),
            longest_first,
        };
        let automata = [
            automaton(AutomatonKind::Nfa(nfa.clone()), true),
            automaton(AutomatonKind::Nfa(nfa), false),
            automaton(AutomatonKind::Dfa(dfa.clone()), true),
            automaton(AutomatonKind::Dfa(dfa), false),
        ];
        let mut haystacks = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..6 {
            frontier = frontier
                .iter()
                .flat_map(|h| ["m", "d", "5", "=", "a", "s", "h", "1"].map(|c| format!("{h}{c}")))
                .collect();
            haystacks.extend(frontier.iter().cloned());
        }
        haystacks.push("sha1=aaff,md5=abab,imphash=hah".into());
        for automaton in &automata {
            let reported_with = automaton.reported_with(&patterns);
            for haystack in &haystacks {
                let mut found = Vec::new();
                automaton.for_each_occurrence(haystack.as_bytes(), |reported, end| {
                    for &p in &reported_with[reported] {
                        found.push((p, end - patterns[p].len(), end));
                    }
                });
                found.sort_unstable();
                assert_eq!(
                    found,
                    occurrences_naive(&patterns, haystack),
                    "{haystack:?}"
                );
            }
        }
        assert_eq!(
            first_bytes(&["a".into(), "b".into(), "c".into(), "d".into()]),
            None
        );
        assert_eq!(first_bytes(&["a".into(), String::new()]), None);
    }
}
