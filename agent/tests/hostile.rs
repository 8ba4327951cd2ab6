//! Corrupted, truncated and random replay files never crash the agent; every
//! problem is counted and reported with a file offset inside the file.

mod support;

use proptest::prelude::*;
use ringside_agent::enrich::EnrichConfig;
use ringside_agent::pipeline::{Config, Counters, Pipeline};
use ringside_agent::sink::Discard;
use ringside_agent::source::replay::ReplayReader;
use support::{agent, scenario};

fn config() -> Config {
    Config {
        enrich: EnrichConfig::none(),
        ..Config::default()
    }
}

/// Replays `bytes`; `None` if the file header itself is rejected.
fn replay(bytes: &[u8]) -> Option<(Counters, u64)> {
    let mut reader = ReplayReader::new(bytes).ok()?;
    let mut pipeline = Pipeline::new(config());
    let mut sink = Discard::default();
    pipeline
        .replay(&mut reader, &mut sink, |_, _| {})
        .expect("the discard sink cannot fail");
    Some((pipeline.counters, sink.events))
}

fn check_offsets(counters: &Counters, len: usize) {
    for problem in &counters.problems {
        assert!(
            problem.offset <= len as u64,
            "offset {} beyond file of {len}: {}",
            problem.offset,
            problem.message
        );
        assert!(
            problem
                .message
                .contains(&format!("byte {}", problem.offset))
                || problem.message.contains("byte"),
            "{}",
            problem.message
        );
    }
    assert_eq!(
        counters.problems.len() as u64,
        counters.problem_count().min(100)
    );
}

#[test]
fn every_truncation_is_reported_at_its_offset() {
    let good = scenario();
    let (clean, _) = replay(&good).expect("valid");
    assert_eq!(clean.problem_count(), 0);
    for len in 32..good.len() {
        let (counters, _) = replay(&good[..len]).expect("header intact");
        check_offsets(&counters, len);
        // Any cut inside a frame (not on a frame boundary) is a problem.
        if counters.problem_count() == 0 {
            assert!(
                counters.records < clean.records || len >= good.len() - 7,
                "cut at {len} went unnoticed"
            );
        }
    }
    assert!(ReplayReader::new(&good[..31]).is_err());
}

#[test]
fn a_corrupt_record_costs_only_its_batch_and_is_located() {
    let mut bad = scenario();
    // First batch frame: file header (32) + VolumeMap frame (16 + 56) = 104;
    // its payload starts at 120. Give the first record an unknown kind: its
    // size is still sound, so decoding continues with the next record.
    let volume_frame = 16 + ringside_agent::synth::VOLUME_MAP.len().next_multiple_of(8);
    let payload = 32 + volume_frame + 16;
    bad[payload + 4..payload + 6].copy_from_slice(&0x7777u16.to_le_bytes());
    let (counters, _) = replay(&bad).expect("header intact");
    assert_eq!(counters.decode_errors.get("unknown_kind"), Some(&1));
    assert_eq!(counters.problems[0].offset, payload as u64);
    // The second record of that batch and the whole second batch still decode.
    assert_eq!(counters.records, 8);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.replay");
    std::fs::write(&path, &bad).expect("write");
    let (code, stdout, stderr) = agent(&["replay", path.to_str().expect("UTF-8"), "--no-enrich"]);
    assert_eq!(code, 2, "bad input exits 2");
    assert!(
        stderr.contains(&format!("bad.replay: byte {payload}")),
        "{stderr}"
    );
    assert!(stderr.contains("unknown_kind=1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("\"EventID\":1003"),
        "the problem is an event too"
    );
}

#[test]
fn an_unknown_frame_is_skipped_and_a_huge_one_is_refused() {
    let good = scenario();
    let mut bad = good.clone();
    bad[32] = 77; // The VolumeMap frame's kind.
    let (counters, _) = replay(&bad).expect("header intact");
    assert_eq!(counters.frame_errors.get("unknown_frame_kind"), Some(&1));
    assert_eq!(counters.problems[0].offset, 32);
    assert_eq!(counters.records, 9, "the following batches are still read");

    let mut huge = good;
    huge[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
    let (counters, _) = replay(&huge).expect("header intact");
    assert_eq!(counters.frame_errors.get("frame_too_large"), Some(&1));
    assert_eq!(counters.records, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_files_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut bytes = scenario()[..32].to_vec();
        bytes.extend_from_slice(&tail);
        if let Some((counters, _)) = replay(&bytes) {
            check_offsets(&counters, bytes.len());
        }
        prop_assert!(replay(&tail).is_none() || tail.starts_with(b"RSREPLAY"));
    }

    #[test]
    fn corrupted_files_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let mut bytes = scenario();
        for (index, value) in flips {
            let i = 32 + index.index(bytes.len() - 32);
            bytes[i] = value;
        }
        let (counters, _) = replay(&bytes).expect("header untouched");
        check_offsets(&counters, bytes.len());
    }
}

/// Found by the `replay` fuzz target: `Lost` counts are the driver's (or a
/// file's) numbers, and summing `u64::MAX`s overflowed. They now saturate.
#[test]
fn lost_counts_at_the_limit_do_not_overflow() {
    use ringside_wire::record::Lost;
    let fields: [ringside_wire::Field<'_>; 0] = [];
    let mut batch = Vec::new();
    const N: usize = ringside_wire::EVENT_KIND_COUNT;
    for dropped in [[u64::MAX; N], [1; N], [u64::MAX; N]] {
        let mut record = vec![0; ringside_wire::encoded_len::<Lost>(&fields).unwrap()];
        ringside_wire::encode(
            &mut record,
            ringside_wire::Origin::default(),
            Lost { dropped },
            &fields,
        )
        .unwrap();
        batch.extend(record);
    }
    let mut pipeline = Pipeline::new(config());
    pipeline
        .batch(&batch, 0, &mut Discard::default())
        .expect("discard sink cannot fail");
    assert_eq!(pipeline.counters.lost_records, 3);
    assert!(
        pipeline.counters.lost_events.iter().all(|&n| n == u64::MAX),
        "{:?}",
        pipeline.counters.lost_events
    );
}

/// Also from the fuzzer: a sequence number far ahead of the expected one
/// (two gaps of nearly 2^64) saturates the missing-record count.
#[test]
fn huge_sequence_gaps_do_not_overflow() {
    use ringside_wire::record::ProcessExit;
    let fields: [ringside_wire::Field<'_>; 0] = [];
    let mut batch = Vec::new();
    for seq in [0u64, u64::MAX - 1, 0, u64::MAX - 1] {
        let mut record = vec![0; ringside_wire::encoded_len::<ProcessExit>(&fields).unwrap()];
        ringside_wire::encode(
            &mut record,
            ringside_wire::Origin::default(),
            ProcessExit::default(),
            &fields,
        )
        .unwrap();
        record[16..24].copy_from_slice(&seq.to_le_bytes());
        batch.extend(record);
    }
    let mut pipeline = Pipeline::new(config());
    pipeline
        .batch(&batch, 0, &mut Discard::default())
        .expect("discard sink cannot fail");
    assert_eq!(pipeline.counters.sequence_gaps, 2);
    assert_eq!(pipeline.counters.sequence_regressions, 1);
    assert_eq!(pipeline.counters.missing_records, u64::MAX);
}

/// A small file full of errors yields a bounded number of 1003 events:
/// the first ones of each class, then "suppressed N similar" at each power
/// of two; every problem is still counted.
#[test]
fn a_flood_of_errors_is_summarized_not_replayed_line_by_line() {
    let good = scenario();
    let mut flood = good[..32].to_vec(); // the file header
    for _ in 0..10_000 {
        // A frame of an unknown kind and no payload: 16 bytes, one error.
        flood.extend_from_slice(&77u32.to_le_bytes());
        flood.extend_from_slice(&0u32.to_le_bytes());
        flood.extend_from_slice(&0u64.to_le_bytes());
    }
    let mut reader = ReplayReader::new(&flood[..]).expect("header");
    let mut pipeline = Pipeline::new(config());
    let mut sink = ringside_agent::sink::JsonLines::new(Vec::new());
    pipeline
        .replay(&mut reader, &mut sink, |_, _| {})
        .expect("writes");
    let out = String::from_utf8(sink.into_inner().expect("flush")).expect("UTF-8");
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("\"EventID\":1003"))
        .collect();
    assert_eq!(
        pipeline.counters.frame_errors.get("unknown_frame_kind"),
        Some(&10_000),
        "every error is counted"
    );
    // 100 reported, then at 1, 2, 4, ... 8192 suppressed: 14 summaries.
    assert_eq!(errors.len(), 100 + 14, "{}", errors.len());
    assert!(
        errors
            .last()
            .expect("a summary")
            .contains("suppressed 8192 similar")
    );
    let suppressed: u64 = pipeline.counters.problems_suppressed.values().sum();
    assert_eq!(suppressed + errors.len() as u64, 10_000);
}
