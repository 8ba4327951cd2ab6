//! Differential test against `sigma-rust` (an independent Sigma
//! implementation) on generated events: both must agree on every match of
//! every accepted rule, except for the documented exclusions below.

mod common;

use common::events::{Rng, generate_steered, sample_events, sigma};
use ringside_content::schema::{EventFields, Logsource, OwnedEvent};
use ringside_content::{Engine, Scratch, check};
use std::collections::BTreeSet;

/// Rules on which the two implementations are known to disagree, and why.
/// Each entry was investigated; the test fails if an entry no longer
/// disagrees (so the list cannot rot).
const EXCLUDED: &[(&str, &str)] = &[(
    // proc_creation_win_sysinternals_susp_psexec_paexec_flags.yml:
    // `CommandLine|contains|windash: ' -s -i cmd'` against a generated
    // `... —s /i cmd ...` (em dash, then slash). pySigma's windash (the
    // reference) expands every dash independently, all combinations; so do
    // we. sigma-rust 0.7 (`windash_variations`) changes one flag at a time,
    // so a command line mixing two dash forms matches for us only. Found
    // when CurrentDirectory joined the schema and the generator's draws
    // moved.
    "207b0396-3689-42d9-8399-4222658efc99",
    "windash with two flags in different dash forms: all combinations (ours, pySigma) vs one flag at a time (sigma-rust)",
)];

/// Every schema field is present; one the sensor could not fill is an
/// explicit null. (Sigma's `field: null` means "no value": sigma-rust tests it
/// only against an explicit JSON null, so an omitted key would make the two
/// disagree on representation, not on semantics.)
fn to_sigma_rust(event: &OwnedEvent) -> sigma_rust::Event {
    let mut out = sigma_rust::Event::new();
    for (i, def) in event.logsource().fields().iter().enumerate() {
        match event.get(i) {
            Some(value) => out.insert(def.name, value.to_owned()),
            None => out.insert(def.name, None::<i32>),
        }
    }
    out
}

/// Every this-many events are checked against all rules; the others against
/// the rules either side fired, the rules they were steered to, and a random
/// sample (sigma-rust unoptimised is slow enough to dominate the test time).
const FULL_CHECK_EVERY: usize = 10;
const RANDOM_RULES_PER_EVENT: usize = 60;

#[test]
fn agrees_with_sigma_rust_on_generated_events() {
    let samples = sample_events(&sigma().join("regression_data/rules/windows"));
    let mut rng = Rng(0x5167_4d41_2024_0719);
    let mut checked_pairs = 0usize;
    let mut fired = 0usize;
    let mut disagreements: BTreeSet<(String, String)> = BTreeSet::new();
    let mut oracle_unparsable = 0usize;
    for (dir, logsource, count) in [
        ("process_creation", Logsource::ProcessCreation, 3000),
        ("image_load", Logsource::ImageLoad, 600),
        ("file", Logsource::FileEvent, 1000),
        ("file", Logsource::FileDelete, 300),
    ] {
        let report = check(&sigma().join("rules/windows").join(dir)).expect("rules readable");
        let rules: Vec<_> = report
            .accepted
            .iter()
            .filter(|r| r.logsource == logsource)
            .collect();
        let mut oracle = Vec::new();
        for rule in &rules {
            let text = std::fs::read_to_string(&rule.path).expect("rule readable");
            match sigma_rust::rule_from_yaml(&text) {
                Ok(parsed) => oracle.push((rule.id.clone(), parsed)),
                Err(_) => oracle_unparsable += 1,
            }
        }
        let engine = Engine::new(rules.iter().map(|r| (*r).clone()).collect());
        let events = generate_steered(&samples, &rules, logsource, count, &mut rng);
        assert!(
            !events.is_empty() || logsource == Logsource::FileDelete,
            "no samples for {logsource:?}"
        );
        let mut scratch = Scratch::default();
        for (n, (event, steered)) in events.iter().enumerate() {
            let mut ours = BTreeSet::new();
            engine.for_each_match(event, &mut scratch, |r| {
                ours.insert(r.id.clone());
            });
            let theirs_event = to_sigma_rust(event);
            let mut wanted: BTreeSet<String> = ours.clone();
            wanted.extend(steered.iter().map(|&r| rules[r].id.clone()));
            for _ in 0..RANDOM_RULES_PER_EVENT {
                wanted.insert(rules[rng.below(rules.len())].id.clone());
            }
            let full = n % FULL_CHECK_EVERY == 0;
            for (id, rule) in oracle.iter().filter(|(id, _)| full || wanted.contains(id)) {
                let theirs = rule.is_match(&theirs_event);
                checked_pairs += 1;
                fired += usize::from(theirs);
                if theirs != ours.contains(id) {
                    disagreements.insert((
                        id.clone(),
                        format!(
                            "ours={} theirs={theirs} event={}",
                            !theirs,
                            serde_json::to_string(event).unwrap_or_default()
                        ),
                    ));
                }
            }
        }
    }
    let mut unexplained = Vec::new();
    let mut seen_excluded = BTreeSet::new();
    for (id, detail) in &disagreements {
        if EXCLUDED.iter().any(|(e, _)| e == id) {
            seen_excluded.insert(id.clone());
        } else {
            unexplained.push(format!("{id}: {detail}"));
        }
    }
    println!(
        "differential: {checked_pairs} (event, rule) pairs, {fired} matches, {} disagreeing pairs ({} excluded rules), {oracle_unparsable} rules sigma-rust cannot parse",
        disagreements.len(),
        seen_excluded.len()
    );
    assert!(
        fired > 1000,
        "generated events must actually match rules (got {fired})"
    );
    for (id, why) in EXCLUDED {
        assert!(
            seen_excluded.contains(*id),
            "excluded rule {id} ({why}) no longer disagrees: remove it"
        );
    }
    assert!(
        unexplained.is_empty(),
        "{} disagreements:\n{}",
        unexplained.len(),
        unexplained
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
