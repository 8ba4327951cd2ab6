//! Sysmon configuration filtering beside the agent's own stages, in one
//! run on one core: decode + process table; the configuration's decisions
//! alone over the events that pipeline builds; and the full pipeline (JSON
//! into a discarding sink) without and with the configuration. Run by
//! `cargo xtask bench config`.
//!
//! usage: bench_config CONFIG FILE [EVENTS]   (generates FILE if missing)

use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use ringside_agent::config::ConfigFilter;
use ringside_agent::enrich::EnrichConfig;
use ringside_agent::pipeline::{Config, Depth, Pipeline};
use ringside_agent::sink::{Discard, Sink};
use ringside_agent::source::replay::ReplayReader;
use ringside_agent::sysmon::SysmonEvent;
use ringside_content::sysmon_config::{self, FilterEvent, Scratch};

fn open(path: &Path) -> ReplayReader<std::io::BufReader<std::fs::File>> {
    ReplayReader::open(path).unwrap_or_else(|e| {
        eprintln!("bench: {}: {e}", path.display());
        std::process::exit(2)
    })
}

/// Best of `runs` timings of `stage` over what `setup` (untimed) made;
/// `stage` returns a count.
fn measure<T>(
    runs: usize,
    mut setup: impl FnMut() -> T,
    mut stage: impl FnMut(T) -> u64,
) -> (f64, u64) {
    let mut best = f64::MAX;
    let mut count = 0;
    for _ in 0..runs {
        let input = setup();
        let start = Instant::now();
        count = stage(input);
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, count)
}

/// Keeps the events a configuration decides on.
#[derive(Default)]
struct Collect(Vec<SysmonEvent>);

impl Sink for Collect {
    fn event(&mut self, event: &SysmonEvent) -> std::io::Result<()> {
        if event.target().is_some() {
            self.0.push(event.clone());
        }
        Ok(())
    }
    fn line(&mut self, _json: &str) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(config_path), Some(path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: bench_config CONFIG FILE [EVENTS]");
        std::process::exit(2)
    };
    let (config_path, path) = (Path::new(config_path), Path::new(path));
    let events: u64 = args
        .get(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    if !path.exists() {
        let file = std::fs::File::create(path).expect("create the replay file");
        ringside_agent::synth::realistic(
            BufWriter::new(file),
            events,
            ringside_agent::time::filetime_from_unix(1_795_256_130),
        )
        .expect("write the replay file");
    }
    let load = || {
        sysmon_config::load(config_path).unwrap_or_else(|e| {
            eprintln!("bench: {e}");
            std::process::exit(2)
        })
    };
    let runs = 3;
    let pipeline = |depth: Depth, filtered: bool| {
        let mut pipeline = Pipeline::new(Config {
            depth,
            enrich: EnrichConfig::none(),
            ..Config::default()
        });
        if filtered {
            pipeline.filter = Some(ConfigFilter::new(load()));
        }
        pipeline
    };
    let replay = |mut pipeline: Pipeline, sink: &mut dyn Sink| {
        pipeline
            .replay(&mut open(path), sink, |_, _| {})
            .expect("in memory");
        pipeline.counters.records
    };

    let table = measure(
        runs,
        || pipeline(Depth::TableOnly, false),
        |p| replay(p, &mut Discard::default()),
    );
    // The events the configuration decides on, as the pipeline built them.
    let mut collected = Collect::default();
    replay(pipeline(Depth::Emit, false), &mut collected);
    let sample = collected.0;
    let config = load().config;
    let mut scratch = Scratch::default();
    let mut logged = 0u64;
    let decide = measure(
        runs,
        || (),
        |()| {
            logged = 0;
            for event in &sample {
                if config.decide(event, &mut scratch).is_some_and(|d| d.logged) {
                    logged += 1;
                }
            }
            sample.len() as u64
        },
    );
    // Per event type, to see where the decisions' time goes.
    let mut per_target = Vec::new();
    for target in ringside_content::sysmon_config::Target::ALL {
        let events: Vec<&SysmonEvent> = sample
            .iter()
            .filter(|e| e.target() == Some(target))
            .collect();
        if events.is_empty() {
            continue;
        }
        let timing = measure(
            runs,
            || (),
            |()| {
                for event in &events {
                    let _ = config.decide(*event, &mut scratch);
                }
                events.len() as u64
            },
        );
        per_target.push((target, timing));
    }
    let json = measure(
        runs,
        || pipeline(Depth::Emit, false),
        |p| replay(p, &mut Discard::default()),
    );
    let json_filtered = measure(
        runs,
        || pipeline(Depth::Emit, true),
        |p| replay(p, &mut Discard::default()),
    );

    let records = table.1;
    println!(
        "config bench: {} with {} ({records} records, {} events a configuration decides on, {logged} of them logged; best of {runs} runs, one core)",
        path.display(),
        config_path.display(),
        sample.len()
    );
    println!("{:<44} {:>10} {:>16}", "stage", "seconds", "per second");
    for (name, (secs, count), unit) in [
        ("1 decode + process table", table, "records"),
        ("2 configuration decisions alone", decide, "decisions"),
        ("3 decode + table + JSON (discard)", json, "records"),
        (
            "4 decode + table + config + JSON (discard)",
            json_filtered,
            "records",
        ),
    ] {
        println!(
            "{name:<44} {secs:>10.3} {:>16.0} {unit}",
            count as f64 / secs
        );
    }
    for (target, (secs, count)) in &per_target {
        println!(
            "  decisions, event {:<4} ({count:>7} events)           {secs:>10.3} {:>16.0} decisions",
            target.event_id(),
            *count as f64 / secs
        );
    }
    let decide_rate = decide.1 as f64 / decide.0;
    let table_rate = records as f64 / table.0;
    println!(
        "decisions/s vs decode + table records/s: {:.2}x; pipeline with config vs without: {:.2}x the time",
        decide_rate / table_rate,
        json_filtered.0 / json.0
    );
    println!(
        "target: the filter does not halve the pipeline's rate: {}",
        if json_filtered.0 / json.0 < 2.0 {
            "met"
        } else {
            "MISSED"
        }
    );
}
