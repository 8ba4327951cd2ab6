//! Sequence gaps and `Lost` records become explicit events with counts, and
//! Stats frames are checked for produced == delivered + dropped.

mod support;

use ringside_agent::enrich::EnrichConfig;
use ringside_agent::pipeline::{Config, Pipeline};
use ringside_agent::sink::JsonLines;
use ringside_agent::source::replay::ReplayReader;
use ringside_agent::source::writer::ReplayWriter;
use ringside_agent::synth::BatchBuilder;
use ringside_wire::ioctl::StatsResponse;
use ringside_wire::{DriverStats, EventKind};
use serde_json::json;
use support::{T0, agent, at, lines};

fn stats(produced: [u64; 8], delivered: [u64; 8], dropped: [u64; 8]) -> StatsResponse {
    StatsResponse {
        size: core::mem::size_of::<StatsResponse>() as u32,
        abi_version: ringside_wire::ABI_VERSION,
        stats: DriverStats {
            produced,
            delivered,
            dropped,
            ..Default::default()
        },
    }
}

/// 3 file creates delivered, 2 dropped (reported by a Lost record), then a
/// sequence gap of 4, then 1 more, and a Stats frame (`final_stats`).
fn file(final_stats: &StatsResponse) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    let fc = EventKind::FileCreate.index();
    for ms in 0..3 {
        b.file_create(at(10, ms), r"\??\C:\x", 2);
    }
    let mut dropped = [0u64; 8];
    dropped[fc] = 2;
    b.lost(at(0, 3), dropped);
    b.skip(4);
    b.file_create(at(10, 4), r"\??\C:\y", 2);
    dropped[fc] = 5;
    b.lost(at(0, 5), dropped);
    let mut out = Vec::new();
    let mut w = ReplayWriter::new(&mut out, T0).expect("write");
    w.batch(T0, &b.take()).expect("write");
    w.stats(T0, final_stats).expect("write");
    w.finish().expect("write");
    out
}

#[test]
fn gaps_and_lost_records_become_events_with_counts() {
    let fc = EventKind::FileCreate.index();
    let mut produced = [0; 8];
    let mut delivered = [0; 8];
    let mut dropped = [0; 8];
    produced[fc] = 13;
    delivered[fc] = 8;
    dropped[fc] = 5;
    let bytes = file(&stats(produced, delivered, dropped));
    let mut reader = ReplayReader::new(&bytes[..]).expect("valid");
    let mut pipeline = Pipeline::new(Config {
        enrich: EnrichConfig::none(),
        ..Config::default()
    });
    let mut sink = JsonLines::new(Vec::new());
    pipeline
        .replay(&mut reader, &mut sink, |_, _| {})
        .expect("in memory");
    let events = lines(&String::from_utf8(sink.into_inner().expect("flush")).expect("UTF-8"));
    let ids: Vec<_> = events
        .iter()
        .map(|e| e["EventID"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, [11, 11, 11, 1001, 1002, 11, 1001, 1004]);

    // Driver counts and sequence numbers are u64: JSON strings, always
    // (a number past 2^53 loses precision in most readers).
    let lost = &events[3]["EventData"];
    assert_eq!(lost["Dropped"], json!("2"));
    assert_eq!(lost["DroppedFileCreate"], json!("2"));
    assert_eq!(lost["DroppedProcessCreate"], json!("0"));
    let gap = &events[4]["EventData"];
    assert_eq!(
        (
            gap["ExpectedSeq"].clone(),
            gap["ReceivedSeq"].clone(),
            gap["Missing"].clone()
        ),
        (json!("4"), json!("8"), json!("4"))
    );
    // Cumulative 5 after 2: the second Lost reports the difference.
    assert_eq!(events[6]["EventData"]["DroppedFileCreate"], json!("3"));
    let stats = &events[7]["EventData"];
    assert_eq!(stats["Balanced"], json!("true"));
    assert_eq!(stats["PerKind"], json!("file_create=13/8/5"));
    let c = &pipeline.counters;
    assert_eq!(
        (
            c.sequence_gaps,
            c.missing_records,
            c.lost_records,
            c.lost_events[fc]
        ),
        (1, 4, 2, 5)
    );
}

#[test]
fn stats_command_checks_produced_equals_delivered_plus_dropped() {
    let fc = EventKind::FileCreate.index();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut produced = [0; 8];
    let mut delivered = [0; 8];
    let mut dropped = [0; 8];
    produced[fc] = 13;
    delivered[fc] = 8;
    dropped[fc] = 5;
    let good = dir.path().join("good.replay");
    std::fs::write(&good, file(&stats(produced, delivered, dropped))).expect("write");
    let (code, stdout, stderr) = agent(&["stats", good.to_str().expect("UTF-8")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("produced 13 == delivered 8 + dropped 5: holds"),
        "{stdout}"
    );
    assert!(stdout.contains("1 gap(s), 4 record(s) missing"), "{stdout}");
    assert!(
        stdout.contains("2 Lost record(s) reporting 5 dropped event(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("this file holds 4 of the 8 event(s)"),
        "{stdout}"
    );

    // One event unaccounted for with an empty ring: the check fails.
    produced[fc] = 14;
    let bad = dir.path().join("bad.replay");
    std::fs::write(&bad, file(&stats(produced, delivered, dropped))).expect("write");
    let (code, stdout, _) = agent(&["stats", bad.to_str().expect("UTF-8")]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("VIOLATED"), "{stdout}");
}
