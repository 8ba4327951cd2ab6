//! `cargo xtask bench content`: events per second for SigmaHQ's
//! process_creation rules, ringside's engine side by side with sigma-rust in
//! the same run, one thread: the same rules (those both accept) and the same
//! events (each engine makes whole passes over one list). Then
//! what building a bundle costs: the SigmaHQ Windows rules, and bundles at
//! each compile budget's limit (`ringside_content::budget`).

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

/// Events per benchmark list: both engines make whole passes over it
/// (sigma-rust takes about a second per pass).
const EVENTS: usize = 2_000;

/// One engine's figures.
struct Side {
    /// Events per second.
    rate: f64,
    /// Matches per event.
    per_event: f64,
    /// Events evaluated in all (whole passes).
    evaluated: usize,
}

/// Runs `pass` (one pass over `per_pass` events, returning its matches)
/// until `budget` elapses, at least once.
fn rate(budget: Duration, per_pass: usize, mut pass: impl FnMut() -> usize) -> Side {
    let start = Instant::now();
    let (mut events, mut matches) = (0usize, 0usize);
    while events == 0 || start.elapsed() < budget {
        matches += pass();
        events += per_pass;
    }
    Side {
        rate: events as f64 / start.elapsed().as_secs_f64(),
        per_event: matches as f64 / events as f64,
        evaluated: events,
    }
}

/// Both engines, whole passes over the same events: (ringside, sigma-rust).
fn measure(engine: &Engine, oracle: &[sigma_rust::Rule], events: &[OwnedEvent]) -> (Side, Side) {
    let oracle_events: Vec<sigma_rust::Event> = events.iter().map(to_sigma_rust).collect();
    let mut scratch = Scratch::default();
    let ours = rate(Duration::from_secs(5), events.len(), || {
        let mut n = 0;
        for event in events {
            engine.for_each_match(black_box(event), &mut scratch, |_| n += 1);
        }
        n
    });
    let theirs = rate(Duration::from_secs(10), oracle_events.len(), || {
        oracle_events
            .iter()
            .map(|event| {
                oracle
                    .iter()
                    .filter(|rule| rule.is_match(black_box(event)))
                    .count()
            })
            .sum()
    });
    (ours, theirs)
}

/// Resident memory of this process, bytes (Linux `/proc/self/statm`).
fn resident() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Compiles (budgets included) and builds an engine from `sources`:
/// (rules accepted, rejected, seconds, resident bytes the engine added).
fn build(sources: &[(std::path::PathBuf, Vec<u8>)]) -> (usize, usize, f64, u64) {
    let before = resident();
    let start = Instant::now();
    let (rules, rejected) = ringside_content::bundle::compile_sources(
        sources.iter().map(|(p, b)| (p.clone(), b.as_slice())),
    );
    let accepted = rules.len();
    let engine = Engine::new(rules);
    let seconds = start.elapsed().as_secs_f64();
    let added = resident().saturating_sub(before);
    black_box(&engine);
    (accepted, rejected.len(), seconds, added)
}

fn rule_source(
    name: &str,
    key: &str,
    values: impl Iterator<Item = String>,
) -> (std::path::PathBuf, Vec<u8>) {
    let mut text = format!(
        "title: {name}\nlogsource:\n  category: process_creation\n  product: windows\ndetection:\n  selection:\n    {key}:\n"
    );
    for value in values {
        text.push_str(&format!("      - '{value}'\n"));
    }
    text.push_str("  condition: selection\n");
    (format!("{name}.yml").into(), text.into_bytes())
}

fn build_table() {
    use ringside_content::budget::{
        BUNDLE_LITERAL_BYTES, BUNDLE_MATCHERS, RULE_MATCHERS, VALUE_BYTES,
    };
    let sigma_files = ringside_content::bundle::rule_files(&sigma().join("rules/windows"))
        .expect("rules readable");
    let sigmahq: Vec<_> = sigma_files
        .iter()
        .filter_map(|p| Some((p.clone(), std::fs::read(p).ok()?)))
        .collect();
    // Distinct 4 KiB literals, mostly one repeated byte (the worst case for
    // an automaton's failure links), up to the bundle's literal bytes.
    let per_rule = 230;
    let literal_limit: Vec<_> = (0..BUNDLE_LITERAL_BYTES / (per_rule * VALUE_BYTES))
        .map(|r| {
            rule_source(
                &format!("lit{r}"),
                "CommandLine|contains",
                (0..per_rule).map(move |i| format!("{r:03}{i:04}{}", "A".repeat(VALUE_BYTES - 7))),
            )
        })
        .collect();
    // Short distinct literals, up to the bundle's matcher count.
    let matcher_limit: Vec<_> = (0..BUNDLE_MATCHERS / RULE_MATCHERS)
        .map(|r| {
            rule_source(
                &format!("many{r}"),
                "Image|endswith",
                (0..RULE_MATCHERS).map(move |i| format!("\\r{r}i{i}.exe")),
            )
        })
        .collect();
    // One value at the value limit, all one byte.
    let value_limit = vec![rule_source(
        "long",
        "CommandLine|contains",
        std::iter::once("A".repeat(VALUE_BYTES)),
    )];
    println!("\nbuilding a bundle (compile with budgets + engine), one thread");
    println!(
        "| bundle                                   | rules | rejected | seconds | engine resident MiB |"
    );
    println!(
        "|------------------------------------------|-------|----------|---------|---------------------|"
    );
    for (name, sources) in [
        ("SigmaHQ rules/windows (all logsources)", &sigmahq),
        ("8 MiB literals (bundle literal limit)", &literal_limit),
        ("200,000 matchers (bundle matcher limit)", &matcher_limit),
        ("one 4 KiB repetitive value (value limit)", &value_limit),
    ] {
        let (accepted, rejected, seconds, bytes) = build(sources);
        println!(
            "| {name:<40} | {accepted:>5} | {rejected:>8} | {seconds:>7.2} | {:>19.1} |",
            bytes as f64 / (1 << 20) as f64
        );
    }
}

fn main() {
    if std::env::var_os("CONTENT_BENCH_BUILD_ONLY").is_some() {
        build_table();
        return;
    }
    let report = check(&sigma().join("rules/windows/process_creation")).expect("rules readable");
    // The rules both engines accept: each is compiled by both.
    let (rules, oracle): (Vec<_>, Vec<sigma_rust::Rule>) = report
        .accepted
        .iter()
        .filter(|r| r.logsource == Logsource::ProcessCreation)
        .filter_map(|r| {
            let theirs =
                sigma_rust::rule_from_yaml(&std::fs::read_to_string(&r.path).ok()?).ok()?;
            Some((r, theirs))
        })
        .unzip();
    let samples = sample_events(&sigma().join("regression_data/rules/windows"));
    // Steered: samples mutated towards random rules (match-heavy).
    let steered = generate(
        &samples,
        &rules,
        Logsource::ProcessCreation,
        EVENTS,
        &mut Rng(0x0719_2024),
    );
    // Recorded: the regression samples' real values, unmodified, cycled.
    let recorded_distinct: Vec<&OwnedEvent> = samples
        .iter()
        .filter(|e| e.logsource == Logsource::ProcessCreation)
        .collect();
    let recorded: Vec<OwnedEvent> = recorded_distinct
        .iter()
        .cycle()
        .take(EVENTS)
        .map(|e| (*e).clone())
        .collect();

    let engine = Engine::new(rules.iter().map(|r| (*r).clone()).collect());

    let rows = [
        (
            "steered",
            format!("{} events, samples steered to rules", steered.len()),
            measure(&engine, &oracle, &steered),
        ),
        (
            "recorded",
            format!("{} recorded samples, cycled", recorded_distinct.len()),
            measure(&engine, &oracle, &recorded),
        ),
    ];
    println!(
        "\nprocess_creation: {} rules that both engines accept (of {} ringside accepts), \
         the same {EVENTS} events for both",
        rules.len(),
        report.accepted.len()
    );
    println!(
        "| events   | what                                   | matches/event ringside | sigma-rust | ringside ev/s (1 core) | evaluated | sigma-rust ev/s | evaluated | ratio |"
    );
    println!(
        "|----------|----------------------------------------|------------------------|------------|------------------------|-----------|-----------------|-----------|-------|"
    );
    for (name, what, (ours, theirs)) in rows {
        println!(
            "| {name:<8} | {what:<38} | {:>22.2} | {:>10.2} | {:>22.0} | {:>9} | {:>15.0} | {:>9} | {:>5.0} |",
            ours.per_event,
            theirs.per_event,
            ours.rate,
            ours.evaluated,
            theirs.rate,
            theirs.evaluated,
            ours.rate / theirs.rate
        );
    }
    build_table();
}
