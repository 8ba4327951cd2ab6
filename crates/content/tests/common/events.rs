//! Event generation shared by the differential test and the benchmark:
//! real Sysmon samples (SigmaHQ regression data) mapped through the schema,
//! then mutated with strings derived from rule literals so that matches occur.

#![allow(dead_code, reason = "each user takes a different subset")]

use ringside_content::compile::CompiledRule;
use ringside_content::matcher::{GlobToken, Matcher, StrKind, Target};
use ringside_content::schema::{Logsource, OwnedEvent};
use std::path::{Path, PathBuf};

pub fn sigma() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma")
}

/// A small deterministic PRNG (xorshift64*): reproducible runs, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Every regression sample event, mapped through the schema.
pub fn sample_events(regression_dir: &Path) -> Vec<OwnedEvent> {
    let mut out = Vec::new();
    let mut pending = vec![regression_dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let Ok(bytes) = std::fs::read(&path) else { continue };
                for doc in serde_json::Deserializer::from_slice(&bytes).into_iter::<serde_json::Value>().flatten() {
                    let docs = match doc {
                        serde_json::Value::Array(items) => items,
                        one => vec![one],
                    };
                    out.extend(docs.iter().filter_map(|d| OwnedEvent::from_sysmon_json(d).ok()));
                }
            }
        }
    }
    out
}

/// A value that satisfies `matcher` (for string matchers), with random case
/// and surrounding text where the anchoring allows it.
fn satisfying(matcher: &Matcher, rng: &mut Rng) -> Option<Option<String>> {
    let text = match matcher {
        Matcher::Null => return Some(None),
        Matcher::Str { kind, text, .. } => match kind {
            StrKind::Exact => text.clone(),
            StrKind::Prefix => format!("{text} /x"),
            StrKind::Suffix => format!("C:\\Temp\\{text}"),
            StrKind::Contains => format!("\"x\" {text} -y"),
            StrKind::Any => "anything".into(),
            StrKind::Glob(tokens) => tokens
                .iter()
                .map(|t| match t {
                    GlobToken::Literal(s) => s.clone(),
                    GlobToken::Star => "ab".into(),
                    GlobToken::One => "q".into(),
                })
                .collect(),
        },
        _ => return None,
    };
    let text = match rng.below(3) {
        0 => text.to_uppercase(),
        1 => text.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect(),
        _ => text,
    };
    Some(Some(text))
}

/// Mutates `event` towards `rule`: for one of its selections' maps, sets
/// each field to a value satisfying one (or, with `all`, every) matcher.
pub fn steer(event: &mut OwnedEvent, rule: &CompiledRule, rng: &mut Rng) {
    if rule.selections.is_empty() {
        return;
    }
    let selection = &rule.selections[rng.below(rule.selections.len())];
    if selection.any_of.is_empty() {
        return;
    }
    let tests = &selection.any_of[rng.below(selection.any_of.len())];
    for test in tests {
        let Target::Field(field) = test.target else { continue };
        if test.matchers.is_empty() || field >= event.values.len() {
            continue;
        }
        let value = if test.all {
            let parts: Vec<String> = test.matchers.iter().filter_map(|m| satisfying(m, rng).flatten()).collect();
            Some(Some(parts.join(" ")))
        } else {
            satisfying(&test.matchers[rng.below(test.matchers.len())], rng)
        };
        if let Some(value) = value {
            event.values[field] = value;
        }
    }
}

/// `count` events of `logsource`: samples, steered towards random rules
/// (sometimes two, to mix literals), some left as they are.
pub fn generate(samples: &[OwnedEvent], rules: &[&CompiledRule], logsource: Logsource, count: usize, rng: &mut Rng) -> Vec<OwnedEvent> {
    generate_steered(samples, rules, logsource, count, rng).into_iter().map(|(e, _)| e).collect()
}

/// Like [`generate`], also returning the indices of the rules each event was steered to.
pub fn generate_steered(samples: &[OwnedEvent], rules: &[&CompiledRule], logsource: Logsource, count: usize, rng: &mut Rng) -> Vec<(OwnedEvent, Vec<usize>)> {
    let base: Vec<&OwnedEvent> = samples.iter().filter(|e| e.logsource == logsource).collect();
    let mut out = Vec::with_capacity(count);
    if base.is_empty() {
        return out;
    }
    for _ in 0..count {
        let mut event = base[rng.below(base.len())].clone();
        let mut steered = Vec::new();
        if !rules.is_empty() && rng.chance(85) {
            steered.push(rng.below(rules.len()));
            if rng.chance(30) {
                steered.push(rng.below(rules.len()));
            }
            for &r in &steered {
                steer(&mut event, rules[r], rng);
            }
        }
        out.push((event, steered));
    }
    out
}
