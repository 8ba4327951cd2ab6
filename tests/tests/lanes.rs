//! Per-CPU lanes in the real driver: on a machine of several CPUs each CPU
//! reserves in its own lane (no lock), the agent's READs drain them all
//! under one sequence, each CPU's events keep their order, and a burst on
//! one CPU fills only that CPU's lane.

use ringside_kmodel::agent::connected_on;
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::machine::Machine;
use ringside_wire::ioctl::ConfigureRequest;
use ringside_wire::{EventKind, Record, Records};

const CPUS: u32 = 4;

/// Loads image `i` from process `900 + cpu` on `cpu`, with a name of about
/// `name_bytes` UTF-16 bytes.
fn load_on(m: &mut Machine, cpu: u32, i: u64, name_bytes: usize) {
    m.set_cpu(cpu);
    let padding = "x".repeat(name_bytes / 2);
    let name = format!(r"\Device\HarddiskVolume3\{padding}\m{i}.dll");
    m.image_load(900 + cpu, &name, 0x7ff0_0000_0000 + (i << 20), 0x1000, 0)
        .expect("image load");
}

/// (pid, image index) of every image-load record whose name was not
/// truncated, and the Lost records' image-load drop counts, in delivery
/// order; checks that seq is contiguous.
fn decode(bytes: &[u8]) -> (Vec<(u32, u64)>, Vec<u64>) {
    let records: Vec<Record<'_>> = Records::new(bytes)
        .collect::<Result<_, _>>()
        .expect("decodes");
    let first = records.first().map_or(0, |r| r.header().seq);
    let mut loads = Vec::new();
    let mut lost = Vec::new();
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.header().seq, first + i as u64, "seq is contiguous");
        match record {
            Record::ImageLoad(load) => {
                let name = String::from_utf16_lossy(&load.image_name().utf16().collect::<Vec<_>>());
                let index = name
                    .rsplit_once("\\m")
                    .and_then(|(_, n)| n.strip_suffix(".dll"))
                    .and_then(|n| n.parse().ok());
                if let Some(index) = index {
                    loads.push((load.header.pid, index));
                }
            }
            Record::Lost(l) => lost.push(l.body.dropped[EventKind::ImageLoad.index()]),
            other => panic!("unexpected record {other:?}"),
        }
    }
    (loads, lost)
}

#[test]
fn each_cpu_reserves_its_own_lane_and_one_sequence_drains_them_all() {
    let sys = ringside_sys().expect("build ringside.sys");
    let config = ConfigureRequest {
        batch_bytes: 64 * 1024,
        ..ConfigureRequest::default()
    };
    // 256 KiB for 4 CPUs: four 64 KiB lanes, one per CPU.
    let (mut m, h) = connected_on(sys, &config, Some(256 * 1024), CPUS).expect("session");
    for i in 0..40 {
        load_on(&mut m, (i % 7 % 4) as u32, i, 64);
    }
    m.assert_clean();
    let (loads, lost) = decode(&m.drain(h).expect("drain").concat());
    assert!(lost.is_empty());
    assert_eq!(loads.len(), 40, "every event arrives");
    for cpu in 0..CPUS {
        let on_cpu: Vec<u64> = loads
            .iter()
            .filter(|(pid, _)| *pid == 900 + cpu)
            .map(|&(_, i)| i)
            .collect();
        let expected: Vec<u64> = (0..40).filter(|i| (i % 7 % 4) as u32 == cpu).collect();
        assert_eq!(on_cpu, expected, "CPU {cpu}'s events in order");
    }
    let stats = m.stats(h).expect("stats").stats;
    let k = EventKind::ImageLoad.index();
    assert_eq!(
        (stats.produced[k], stats.delivered[k], stats.dropped[k]),
        (40, 40, 0)
    );

    // A burst on CPU 0 fills its lane only: ~1 KiB records, 100 of them.
    for i in 100..200 {
        load_on(&mut m, 0, i, 1000);
    }
    let dropped = m.stats(h).expect("stats").stats.dropped[k];
    assert!(dropped > 0, "CPU 0's lane overflowed");
    // CPU 1's lane has room: its event gets through, with the Lost record.
    load_on(&mut m, 1, 500, 64);
    let (loads, lost) = decode(&m.drain(h).expect("drain").concat());
    assert!(loads.contains(&(901, 500)));
    assert_eq!(lost, vec![dropped], "the drops are reported in-band");
    let stats = m.stats(h).expect("stats").stats;
    assert_eq!(stats.produced[k], stats.delivered[k] + stats.dropped[k]);
    m.assert_clean();
}

#[test]
fn cpus_share_lanes_under_their_lock_when_the_ring_is_too_small_to_split() {
    let sys = ringside_sys().expect("build ringside.sys");
    // 64 KiB for 4 CPUs: one lane, shared by all four under its lock.
    let (mut m, h) =
        connected_on(sys, &ConfigureRequest::default(), Some(64 * 1024), CPUS).expect("session");
    for i in 0..8 {
        load_on(&mut m, (i % 4) as u32, i, 64);
    }
    let (loads, _) = decode(&m.drain(h).expect("drain").concat());
    let expected: Vec<(u32, u64)> = (0..8).map(|i| (900 + (i % 4) as u32, i)).collect();
    assert_eq!(loads, expected, "one shared lane: arrival order");
    m.assert_clean();
}

#[test]
fn a_pending_read_completes_once_one_lane_holds_its_share_of_a_batch() {
    use ringside_kmodel::agent::Sent;
    use ringside_wire::ioctl::{IOCTL_READ, READ_MIN_BUFFER};

    let sys = ringside_sys().expect("build ringside.sys");
    // Four lanes: each CPU's share of a 8 KiB batch is 2 KiB.
    let config = ConfigureRequest {
        batch_bytes: 8 * 1024,
        ..ConfigureRequest::default()
    };
    let share = 8 * 1024 / CPUS as usize;
    let (mut m, h) = connected_on(sys, &config, Some(256 * 1024), CPUS).expect("session");
    let Sent::Pending(irp) = m.ioctl(h, IOCTL_READ, &[], READ_MIN_BUFFER).expect("READ") else {
        panic!("READ with an empty ring did not pend");
    };
    // Spread over the CPUs, more than a share in all but below it in each
    // lane: the READ waits (no time passes, so the latency timer cannot fire).
    for i in 0..12 {
        load_on(&mut m, (i % CPUS as u64) as u32, i, 256);
    }
    assert!(
        m.take_completion(irp).is_none(),
        "READ completed with no lane at its share"
    );
    // CPU 2 alone: the event that takes its lane to its share completes it.
    let mut i = 100;
    let completion = loop {
        load_on(&mut m, 2, i, 256);
        i += 1;
        if let Some(c) = m.take_completion(irp) {
            break c;
        }
        assert!(i < 200, "READ never completed");
    };
    assert_eq!(completion.status, 0);
    let records: Vec<Record<'_>> = Records::new(&completion.output)
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert_eq!(records.len(), 12 + (i - 100) as usize, "every event so far");
    // A lane holds each record plus its 8-byte slot tag.
    let lane_bytes = |cpu: u32| -> Vec<usize> {
        let sizes = records.iter().filter(|r| r.header().pid == 900 + cpu);
        sizes.map(|r| r.header().size as usize + 8).collect()
    };
    let lane2 = lane_bytes(2);
    let total: usize = records.iter().map(|r| r.header().size as usize + 8).sum();
    // Lane 2's records keep their order: CPU 2's loop events come last.
    let spread = total - lane2.iter().rev().take((i - 100) as usize).sum::<usize>();
    let before_last: usize = lane2.iter().rev().skip(1).sum();
    assert!(
        before_last < share && before_last + lane2.last().unwrap() >= share,
        "lane 2 held {before_last} bytes, then {}; share {share}",
        before_last + lane2.last().unwrap()
    );
    assert!(spread > share, "the spread alone exceeded a share in total");
    for cpu in [0, 1, 3] {
        assert!(lane_bytes(cpu).iter().sum::<usize>() < share);
    }
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}
