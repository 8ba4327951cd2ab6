//! The live agent's background enrichment is accounted for: every event
//! is still written (enrichment never drops one), and what went out
//! without its lookup is counted in the 1004 SensorStats event.

mod support;

use ringside_agent::enrich::{EnrichConfig, hash::HashSet};
use ringside_agent::pipeline::{Config, Pipeline};
use ringside_agent::sink::JsonLines;
use ringside_agent::synth::BatchBuilder;
use ringside_wire::DriverStats;
use serde_json::Value;
use support::at;

#[test]
fn events_without_their_enrichment_are_written_and_counted_in_1004() {
    if cfg!(windows) {
        return; // files_root maps DOS paths only off Windows.
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let windows = dir.path().join("C").join("Windows");
    std::fs::create_dir_all(&windows).expect("mkdir");
    let mut b = BatchBuilder::new();
    for i in 0..5 {
        std::fs::write(windows.join(format!("{i}.dll")), b"abc").expect("write");
        b.image_load(at(10, i), &format!(r"\??\C:\Windows\{i}.dll"), 12);
    }
    let config = Config {
        enrich: EnrichConfig {
            files_root: Some(dir.path().to_owned()),
            hashes: HashSet::parse("md5").expect("valid"),
            background: Some(1),
            // No wait: each first sight goes out without its lookup.
            batch_wait: std::time::Duration::ZERO,
            ..EnrichConfig::default()
        },
        ..Config::default()
    };
    let mut pipeline = Pipeline::new(config);
    let mut sink = JsonLines::new(Vec::new());
    pipeline.batch(&b.take(), 0, &mut sink).expect("sink");
    pipeline
        .driver_stats(&DriverStats::default(), &mut sink)
        .expect("sink");
    let out = String::from_utf8(sink.into_inner().expect("flush")).expect("utf-8");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(events.iter().filter(|e| e["EventID"] == 7).count(), 5);
    let stats = &events.last().expect("1004")["EventData"];
    // Five distinct files, each seen once: none can be ready in time.
    assert_eq!(stats["EnrichDeferred"], 5);
    let overflow = stats["EnrichOverflow"].as_u64().expect("a count");
    assert!(overflow <= 4, "{overflow}");
    assert_eq!(stats["Written"], 5);
}
