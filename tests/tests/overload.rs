//! Overload: the agent stops reading and a burst larger than the ring
//! arrives. Events that do not fit are dropped and counted per kind; when
//! space returns a `Lost` record reports them in-band; and every event the
//! scenario produced is accounted for exactly: produced = delivered + dropped,
//! in STATS and in the decoded stream.

use ringside_kmodel::agent::connected_with_ring;
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::file_io::Requestor;
use ringside_wire::ioctl::ConfigureRequest;
use ringside_wire::{DropReason, EVENT_KIND_COUNT, EventKind, Record, Records};

#[test]
fn a_burst_larger_than_the_ring_is_dropped_counted_and_reported_in_band() {
    let sys = ringside_sys().expect("build ringside.sys");
    // Every kind asked for (FileWrite and FileCloseModified included).
    let config = ConfigureRequest {
        event_mask: ringside_wire::kind::ALL_EVENTS_MASK,
        batch_bytes: 64 * 1024,
        max_latency_ms: 50,
        ..ConfigureRequest::default()
    };
    // The smallest ring the driver accepts (RING_SIZE_MIN, 64 KiB).
    let (mut m, h) = connected_with_ring(sys, &config, Some(64 * 1024)).expect("session");
    let capacity = m.stats(h).expect("stats").stats.ring_capacity;
    assert_eq!(capacity, 64 * 1024);

    // ~1 KiB image loads and short first-write events, interleaved, with no
    // READ outstanding: ~300 KiB into a 64 KiB ring.
    let mut produced = [0u64; EVENT_KIND_COUNT];
    let long_dir = "x".repeat(400);
    for i in 0..300u64 {
        let name = format!(r"\Device\HarddiskVolume3\{long_dir}\module{i}.dll");
        m.image_load(900, &name, 0x7ff0_0000_0000 + (i << 20), 0x1000, 0)
            .expect("image load");
        produced[EventKind::ImageLoad.index()] += 1;
        if i % 2 == 0 {
            let f = m.new_file_object(&format!(r"\Device\HarddiskVolume3\burst\{i}.bin"));
            m.file_write(Requestor { pid: 901, tid: 905 }, f, 512, false)
                .expect("write");
            m.file_cleanup(Requestor { pid: 901, tid: 905 }, f)
                .expect("cleanup");
            m.free_file_object(f);
            produced[EventKind::FileWrite.index()] += 1;
            produced[EventKind::FileCloseModified.index()] += 1;
        }
    }
    m.assert_clean();
    let before = m.stats(h).expect("stats").stats;
    for kind in [
        EventKind::ImageLoad,
        EventKind::FileWrite,
        EventKind::FileCloseModified,
    ] {
        assert!(
            before.dropped[kind.index()] > 0,
            "{kind:?} never dropped: {before:?}"
        );
    }
    assert_eq!(
        before.dropped_by_reason[DropReason::RingFull.index()],
        before.dropped.iter().sum::<u64>()
    );

    // The agent reads again: what fit, then (on the next event) the Lost record.
    let mut bytes = m.drain(h).expect("drain").concat();
    let drained = m.stats(h).expect("stats").stats;
    assert_eq!(drained.ring_used, 0);
    assert_eq!(drained.lost_owed, 1, "the drops are not reported yet");
    m.image_load(
        900,
        r"\Device\HarddiskVolume3\Windows\System32\after.dll",
        0x7ff8_0000_0000,
        0x1000,
        0,
    )
    .expect("image load");
    produced[EventKind::ImageLoad.index()] += 1;
    bytes.extend(m.drain(h).expect("drain").concat());
    let records: Vec<Record<'_>> = Records::new(&bytes)
        .collect::<Result<_, _>>()
        .expect("decodes");

    let mut delivered = [0u64; EVENT_KIND_COUNT];
    let mut lost = Vec::new();
    for r in &records {
        match r {
            Record::Lost(e) => lost.push(e.body.dropped),
            other => match other.kind() {
                ringside_wire::RecordKind::Event(kind) => delivered[kind.index()] += 1,
                k => panic!("unexpected {k:?}"),
            },
        }
    }
    let stats = m.stats(h).expect("stats").stats;
    assert_eq!(stats.produced, produced, "STATS produced vs the scenario");
    assert_eq!(
        stats.delivered, delivered,
        "STATS delivered vs the decoded stream"
    );
    for k in 0..EVENT_KIND_COUNT {
        assert_eq!(
            produced[k],
            delivered[k] + stats.dropped[k],
            "kind {k}: produced = delivered + dropped"
        );
    }
    // One Lost record, just before the event that found space, carrying the
    // cumulative per-kind drop counts.
    assert_eq!(lost, vec![stats.dropped], "Lost records");
    let n = records.len();
    assert!(
        matches!(records[n - 2], Record::Lost(_)) && matches!(records[n - 1], Record::ImageLoad(_))
    );
    // Sequence numbers: contiguous over everything that was delivered.
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r.header().seq,
            records[0].header().seq + i as u64,
            "seq {i}"
        );
    }
    assert_eq!(stats.lost_records, 1);
    assert_eq!(stats.lost_owed, 0, "the Lost record went out");
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}
