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

fn stats(
    produced: [u64; ringside_wire::EVENT_KIND_COUNT],
    delivered: [u64; ringside_wire::EVENT_KIND_COUNT],
    dropped: [u64; ringside_wire::EVENT_KIND_COUNT],
) -> StatsResponse {
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
    let mut dropped = [0u64; ringside_wire::EVENT_KIND_COUNT];
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
    let mut produced = [0; ringside_wire::EVENT_KIND_COUNT];
    let mut delivered = [0; ringside_wire::EVENT_KIND_COUNT];
    let mut dropped = [0; ringside_wire::EVENT_KIND_COUNT];
    produced[fc] = 13;
    delivered[fc] = 8;
    dropped[fc] = 5;
    let mut response = stats(produced, delivered, dropped);
    response.stats.next_seq = 10;
    response.stats.lost_records = 2;
    let bytes = file(&response);
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
    // The agent's side: 4 received, each wrote a line; the gap's 4 records
    // are delivered records that never arrived.
    assert_eq!(stats["AgentPerKind"], json!("file_create=4/4/0"));
    assert_eq!(
        (
            stats["Received"].clone(),
            stats["Written"].clone(),
            stats["Unmapped"].clone()
        ),
        (json!(4), json!(4), json!(0))
    );
    assert_eq!(
        stats["Accounted"],
        json!(
            "VIOLATED: the driver delivered 8 file_create record(s) but 4 were received: 4 never arrived"
        )
    );
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

/// The driver's Stats for file creates only, with an empty ring.
fn fc_stats(
    produced: u64,
    delivered: u64,
    dropped: u64,
    next_seq: u64,
    lost: u64,
) -> StatsResponse {
    let fc = EventKind::FileCreate.index();
    let (mut p, mut de, mut dr) = (
        [0; ringside_wire::EVENT_KIND_COUNT],
        [0; ringside_wire::EVENT_KIND_COUNT],
        [0; ringside_wire::EVENT_KIND_COUNT],
    );
    (p[fc], de[fc], dr[fc]) = (produced, delivered, dropped);
    let mut response = stats(p, de, dr);
    response.stats.next_seq = next_seq;
    response.stats.lost_records = lost;
    response
}

/// 3 file creates, a Lost record (2 dropped), 1 more file create and a
/// Lost record (5 dropped in all): sequence numbers 0 to 5, no gap. The
/// batch is written `copies` times, then the Stats frame.
fn clean_file(final_stats: &StatsResponse, copies: usize) -> Vec<u8> {
    let fc = EventKind::FileCreate.index();
    let mut b = BatchBuilder::new();
    for ms in 0..3 {
        b.file_create(at(10, ms), r"\??\C:\x", 2);
    }
    let mut dropped = [0u64; ringside_wire::EVENT_KIND_COUNT];
    dropped[fc] = 2;
    b.lost(at(0, 3), dropped);
    // An open that created nothing (FILE_OPENED): received, no line.
    b.file_create(at(10, 4), r"\??\C:\y", 1);
    dropped[fc] = 5;
    b.lost(at(0, 5), dropped);
    let batch = b.take();
    let mut out = Vec::new();
    let mut w = ReplayWriter::new(&mut out, T0).expect("write");
    for _ in 0..copies {
        w.batch(T0, &batch).expect("write");
    }
    w.stats(T0, final_stats).expect("write");
    w.finish().expect("write");
    out
}

/// Runs `stats` on `bytes`; its exit code and stdout.
fn stats_of(dir: &std::path::Path, name: &str, bytes: Vec<u8>) -> (i32, String) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    let (code, stdout, stderr) = agent(&["stats", path.to_str().expect("UTF-8")]);
    (code, format!("{stdout}{stderr}"))
}

#[test]
fn stats_command_holds_only_when_driver_lost_records_and_agent_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agree = fc_stats(9, 4, 5, 6, 2);
    let (code, out) = stats_of(dir.path(), "good.replay", clean_file(&agree, 1));
    assert_eq!(code, 0, "{out}");
    for line in [
        "produced 9 == delivered 4 + dropped 5: holds",
        "every record received wrote a line or is counted without one: holds",
        "driver counters against this file's records and Lost records: holds",
        "2 Lost record(s) reporting 5 dropped event(s)",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    // received, written, unmapped: 3 creates wrote a line, the open none.
    assert!(
        out.lines().any(|l| l
            .split_whitespace()
            .take(4)
            .eq(["file_create", "4", "3", "1"])),
        "{out}"
    );

    // A Lost record owed: consistent, but the drops cannot all be checked.
    let mut owed = fc_stats(10, 4, 6, 6, 2);
    owed.stats.lost_owed = 1;
    let (code, out) = stats_of(dir.path(), "owed.replay", clean_file(&owed, 1));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("consistent as far as it can be checked"),
        "{out}"
    );
    assert!(out.contains("not checked: a Lost record was owed"), "{out}");
}

#[test]
fn stats_command_catches_each_inconsistency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        // Lost records claim 5 drops; the driver counted 1.
        (
            "overclaim",
            clean_file(&fc_stats(5, 4, 1, 6, 2), 1),
            "Lost records claim 5 dropped file_create event(s) but the driver counted 1",
        ),
        // The driver counted 9 drops; only 5 were reported in-band.
        (
            "unreported",
            clean_file(&fc_stats(13, 4, 9, 6, 2), 1),
            "the driver counted 9 dropped file_create event(s) but Lost records reported 5: \
             4 drop(s) were never reported in-band",
        ),
        // The batch arrived twice.
        (
            "duplicated",
            clean_file(&fc_stats(9, 4, 5, 6, 2), 2),
            "8 file_create record(s) received but the driver delivered 4",
        ),
        // A batch (4 records) never arrived: the sequence gap in `file`.
        (
            "missing",
            file(&fc_stats(13, 8, 5, 10, 2)),
            "the driver delivered 8 file_create record(s) but 4 were received: 4 never arrived",
        ),
        // A Lost record the driver wrote never arrived.
        (
            "lost-record",
            clean_file(&fc_stats(9, 4, 5, 6, 3), 1),
            "the driver wrote 3 Lost record(s) and 2 were received",
        ),
    ];
    for (name, bytes, message) in cases {
        let (code, out) = stats_of(dir.path(), name, bytes);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(
            out.contains(&format!("VIOLATED: {message}")),
            "{name}: {out}"
        );
    }

    // The driver's own promise broken: one event unaccounted for with an
    // empty ring.
    let (code, out) = stats_of(
        dir.path(),
        "driver",
        clean_file(&fc_stats(10, 4, 5, 6, 2), 1),
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("VIOLATED: the driver lost count"), "{out}");
}
