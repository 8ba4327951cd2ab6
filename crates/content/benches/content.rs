//! `cargo xtask bench content`: events per second for all accepted SigmaHQ
//! process_creation rules, ringside's engine side by side with sigma-rust on
//! the same rules and the same events, in the same run. One thread.

#[path = "../tests/common/events.rs"]
mod events;

use events::{Rng, generate, sample_events, sigma};
use ringside_content::schema::{EventFields, Logsource, OwnedEvent};
use ringside_content::{Engine, Scratch, check};
use std::hint::black_box;
use std::time::{Duration, Instant};

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

/// Runs `round` (which processes `per_round` events) until `budget` elapses.
fn rate(budget: Duration, per_round: usize, mut round: impl FnMut() -> usize) -> (f64, usize) {
    let start = Instant::now();
    let (mut events, mut matches) = (0usize, 0usize);
    while start.elapsed() < budget {
        matches += round();
        events += per_round;
    }
    (events as f64 / start.elapsed().as_secs_f64(), matches)
}

fn main() {
    let report = check(&sigma().join("rules/windows/process_creation")).expect("rules readable");
    let rules: Vec<_> = report.accepted.iter().filter(|r| r.logsource == Logsource::ProcessCreation).collect();
    let samples = sample_events(&sigma().join("regression_data/rules/windows"));
    let events = generate(&samples, &rules, Logsource::ProcessCreation, 10_000, &mut Rng(0x0719_2024));

    let engine = Engine::new(rules.iter().map(|r| (*r).clone()).collect());
    let oracle: Vec<sigma_rust::Rule> = rules
        .iter()
        .filter_map(|r| sigma_rust::rule_from_yaml(&std::fs::read_to_string(&r.path).ok()?).ok())
        .collect();
    let oracle_events: Vec<sigma_rust::Event> = events.iter().map(to_sigma_rust).collect();

    let mut scratch = Scratch::default();
    let (ours, our_matches) = rate(Duration::from_secs(5), events.len(), || {
        let mut n = 0;
        for event in &events {
            engine.for_each_match(black_box(event), &mut scratch, |_| n += 1);
        }
        n
    });
    let slice = 200.min(oracle_events.len());
    let mut offset = 0;
    let (theirs, _) = rate(Duration::from_secs(10), slice, || {
        let mut n = 0;
        for event in oracle_events.iter().cycle().skip(offset).take(slice) {
            n += oracle.iter().filter(|rule| rule.is_match(black_box(event))).count();
        }
        offset = (offset + slice) % oracle_events.len();
        n
    });
    println!("\nprocess_creation: {} ringside rules, {} sigma-rust rules, {} distinct events", rules.len(), oracle.len(), events.len());
    let passes = (ours * 5.0 / events.len() as f64).max(1.0);
    println!("ringside matches per event: {:.2}", our_matches as f64 / passes / events.len() as f64);
    println!("| engine      | events/s (1 core) | ratio |");
    println!("|-------------|-------------------|-------|");
    println!("| ringside    | {ours:>17.0} | {:>5.1} |", ours / theirs);
    println!("| sigma-rust  | {theirs:>17.0} | {:>5.1} |", 1.0);
}
