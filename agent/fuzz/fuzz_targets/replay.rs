//! Any bytes as a replay file: the streaming frame reader, the batch decoder
//! and the whole pipeline (process table, Sysmon mapping, JSON) must never
//! panic, and every reported problem must lie within the input.
//!
//! Seed corpus: `cargo run -p ringside-agent --example fuzz_seeds -- agent/fuzz/corpus/replay`
//! then `cargo +nightly fuzz run replay` from `agent/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringside_agent::enrich::EnrichConfig;
use ringside_agent::pipeline::{Config, Pipeline};
use ringside_agent::sink::Discard;
use ringside_agent::source::replay::ReplayReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = ReplayReader::new(data) else { return };
    let mut pipeline = Pipeline::new(Config { enrich: EnrichConfig::none(), table_capacity: 64, ..Config::default() });
    let mut sink = Discard::default();
    let _ = pipeline.replay(&mut reader, &mut sink, |_, _| {});
    for problem in &pipeline.counters.problems {
        assert!(problem.offset <= data.len() as u64, "{problem:?}");
    }
    // Batches alone, too (the device source hands the pipeline raw READ output).
    let mut pipeline = Pipeline::new(Config { enrich: EnrichConfig::none(), ..Config::default() });
    let _ = pipeline.batch(data, 0, &mut sink);
});
