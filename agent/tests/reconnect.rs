//! Losses across a reconnect to the driver are reported, not reset: the
//! pipeline carries its expected sequence number over a reconnect, and a
//! driver that restarted reports the records lost on both sides.

mod support;

use ringside_agent::pipeline::{Config, Pipeline};
use ringside_agent::sink::JsonLines;
use ringside_agent::synth::BatchBuilder;
use ringside_wire::DriverStats;
use serde_json::Value;
use support::at;

/// A batch of `count` file creates numbered from `first`.
fn batch(first: u64, count: u64) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    b.skip(first);
    for ms in 0..count {
        b.file_create(at(10, first + ms), r"\??\C:\x", 2);
    }
    b.take()
}

fn gaps(out: Vec<u8>) -> Vec<(String, String, String)> {
    String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|e| e["EventID"] == 1002)
        .map(|e| {
            let field = |name: &str| e["EventData"][name].as_str().unwrap_or_default().to_owned();
            (field("ExpectedSeq"), field("ReceivedSeq"), field("Missing"))
        })
        .collect()
}

fn run(steps: impl FnOnce(&mut Pipeline, &mut JsonLines<Vec<u8>>)) -> (Pipeline, Vec<u8>) {
    let mut pipeline = Pipeline::new(Config::default());
    let mut sink = JsonLines::new(Vec::new());
    steps(&mut pipeline, &mut sink);
    let out = sink.into_inner().expect("flush");
    (pipeline, out)
}

#[test]
fn a_gap_across_a_reconnect_to_the_same_driver_is_reported() {
    let (pipeline, out) = run(|p, sink| {
        p.batch(&batch(0, 5), 0, sink).expect("sink");
        p.reconnected();
        // Records 5..8 were delivered to the lost connection's READs.
        p.batch(&batch(8, 2), 0, sink).expect("sink");
    });
    assert_eq!(gaps(out), [("5".into(), "8".into(), "3".into())]);
    assert_eq!(pipeline.counters.missing_records, 3);
}

#[test]
fn a_driver_restart_reports_what_was_lost_on_both_sides() {
    let (pipeline, out) = run(|p, sink| {
        p.batch(&batch(0, 5), 0, sink).expect("sink");
        // The old driver's last Stats: it had delivered records 0..7.
        let stats = DriverStats {
            next_seq: 7,
            ..Default::default()
        };
        p.driver_stats(&stats, sink).expect("sink");
        p.reconnected();
        // The new driver numbers from 0; records 0 and 1 never arrived.
        p.batch(&batch(2, 3), 0, sink).expect("sink");
    });
    assert_eq!(
        gaps(out),
        [
            ("5".into(), "7".into(), "2".into()),
            ("0".into(), "2".into(), "2".into())
        ]
    );
    let c = &pipeline.counters;
    assert_eq!((c.sequence_gaps, c.missing_records), (2, 4));
    assert_eq!(c.sequence_regressions, 1);
    // The agent's view of the new driver lifetime starts afresh.
    assert_eq!(c.view.received.iter().sum::<u64>(), 3);
}

#[test]
fn a_driver_restart_that_lost_nothing_reports_nothing() {
    let (_, out) = run(|p, sink| {
        p.batch(&batch(0, 5), 0, sink).expect("sink");
        p.reconnected();
        p.batch(&batch(0, 2), 0, sink).expect("sink");
    });
    assert_eq!(gaps(out), []);
}

/// A restart is visible even when nothing was lost: the next 1004 counts
/// it, since the sensor observed nothing while the driver was gone.
#[test]
fn a_driver_restart_is_counted_in_sensor_stats() {
    let (_, out) = run(|p, sink| {
        p.batch(&batch(0, 5), 0, sink).expect("sink");
        p.reconnected();
        p.batch(&batch(0, 2), 0, sink).expect("sink");
        let stats = DriverStats {
            next_seq: 2,
            ..Default::default()
        };
        p.driver_stats(&stats, sink).expect("sink");
    });
    let text = String::from_utf8(out).expect("utf-8");
    let stats: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|e| e["EventID"] == 1004)
        .collect();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0]["EventData"]["DriverRestarts"], 1);
}
