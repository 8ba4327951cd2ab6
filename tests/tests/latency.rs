//! The latency bound: a pending READ with fewer than `batch_bytes` bytes
//! committed completes within `max_latency_ms` of modelled time, or one
//! clock tick if that is longer (kernel timers expire on ticks), through
//! the driver's timer/DPC: not before the batch threshold would be
//! reached on its own, and not later than the bound.

use ringside_kmodel::agent::{Sent, connected};
use ringside_kmodel::api::sync::CLOCK_TICK;
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::file_io::{FILE_CREATED, FILE_WRITE_DATA, Requestor};
use ringside_wire::ioctl::{ConfigureRequest, IOCTL_READ, READ_MIN_BUFFER};
use ringside_wire::{Record, Records};

#[test]
fn a_pending_read_below_the_batch_threshold_completes_within_the_latency_bound() {
    let sys = ringside_sys().expect("build ringside.sys");
    for max_latency_ms in [1u64, 7, 50] {
        let config = ConfigureRequest {
            batch_bytes: 32 * 1024,
            max_latency_ms: max_latency_ms as u32,
            ..ConfigureRequest::default()
        };
        let (mut m, h) = connected(sys, &config).expect("session");
        let Sent::Pending(irp) = m.ioctl(h, IOCTL_READ, &[], READ_MIN_BUFFER).expect("READ") else {
            panic!("READ with an empty ring did not pend");
        };
        let f = m.new_file_object(r"\Device\HarddiskVolume3\small.txt");
        m.file_create(
            Requestor { pid: 42, tid: 46 },
            f,
            FILE_WRITE_DATA,
            0,
            0,
            FILE_CREATED,
        )
        .expect("create");
        m.free_file_object(f);
        // One small event: far below batch_bytes, so only the bound completes the READ.
        assert!(
            m.take_completion(irp).is_none(),
            "READ completed below the batch threshold at once"
        );
        // Timers expire on clock ticks (15.625 ms): the bound is
        // max(max_latency_ms, one tick), which the driver meets by setting
        // its timer a tick early.
        let bound_us = (max_latency_ms * 1000).max(CLOCK_TICK / 10);
        let mut waited_us = 0u64;
        let completion = loop {
            m.advance_time_100ns(1_000).expect("timers"); // 100 µs steps
            waited_us += 100;
            if let Some(c) = m.take_completion(irp) {
                break c;
            }
            assert!(
                waited_us <= bound_us,
                "READ still pending after {waited_us} µs (bound {bound_us} µs)"
            );
        };
        assert_eq!(completion.status, 0);
        let records: Vec<_> = Records::new(&completion.output)
            .collect::<Result<_, _>>()
            .expect("decodes");
        assert!(
            matches!(records.as_slice(), [Record::FileCreate(_)]),
            "{records:?}"
        );
        m.close_device(h).expect("close");
        m.unload().expect("unload");
        m.assert_clean();
    }
}

/// READs complete in the order they were issued: with one pending and
/// records committed, a second READ does not take them first; the older
/// one completes with them and the new one waits its turn.
#[test]
fn pending_reads_complete_oldest_first() {
    let sys = ringside_sys().expect("build ringside.sys");
    let config = ConfigureRequest {
        batch_bytes: 32 * 1024,
        max_latency_ms: 50,
        ..ConfigureRequest::default()
    };
    let (mut m, h) = connected(sys, &config).expect("session");
    let Sent::Pending(first) = m.ioctl(h, IOCTL_READ, &[], READ_MIN_BUFFER).expect("READ") else {
        panic!("READ with an empty ring did not pend");
    };
    m.image_load(
        77,
        r"\Device\HarddiskVolume3\a.dll",
        0x7ff0_0000_0000,
        0x1000,
        0,
    )
    .expect("image load");
    // Before the latency timer fires, the agent issues its next READ.
    let second = m.ioctl(h, IOCTL_READ, &[], READ_MIN_BUFFER).expect("READ");
    let done = m
        .take_completion(first)
        .expect("the older READ completed first, with the record");
    assert_eq!(done.status, 0);
    let records: Vec<Record<'_>> = Records::new(&done.output[..done.information as usize])
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert!(matches!(records.as_slice(), [Record::ImageLoad(_)]));
    let Sent::Pending(second) = second else {
        panic!("the newer READ took the record ahead of the older one: {second:?}");
    };
    assert!(m.cancel(second));
    m.take_completion(second).expect("cancelled");
    m.assert_clean();
}
