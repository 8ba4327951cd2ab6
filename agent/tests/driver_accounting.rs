//! End-to-end accounting on what the real ringside.sys wrote (run in the
//! kernel model): a burst overflows its smallest ring, the agent reads, and
//! `ringside-agent stats` judges the driver's STATS against the records and
//! `Lost` records that reached it. The driver's counters and its in-band
//! reports come from the driver, not from this test, so the check can
//! disagree with either.

mod support;

use ringside_kmodel::agent::connected_with_ring;
use ringside_kmodel::driver_image::ringside_sys;
use ringside_wire::EventKind;
use ringside_wire::ioctl::{ConfigureRequest, StatsResponse};
use support::{T0, agent, lines};

/// Each batch, then the STATS read after it, as a replay file.
fn recording(steps: &[(&[u8], &StatsResponse)]) -> Vec<u8> {
    let mut file = Vec::new();
    let mut writer =
        ringside_agent::source::writer::ReplayWriter::new(&mut file, T0).expect("in memory");
    for (batch, stats) in steps {
        writer.batch(T0, batch).expect("in memory");
        writer.stats(T0, stats).expect("in memory");
    }
    writer.finish().expect("in memory");
    file
}

#[test]
fn the_real_drivers_drops_and_records_agree_with_its_stats() {
    let sys = ringside_sys().expect("build ringside.sys");
    let config = ConfigureRequest::default();
    let (mut m, h) = connected_with_ring(sys, &config, Some(64 * 1024)).expect("session");
    // ~1 KiB image loads with no READ outstanding: ~200 KiB into 64 KiB.
    let dir_name = "d".repeat(450);
    for i in 0..200u64 {
        let name = format!(r"\Device\HarddiskVolume3\{dir_name}\lib{i}.dll");
        m.image_load(700, &name, 0x7ff1_0000_0000 + (i << 20), 0x1000, 0)
            .expect("image load");
    }
    let first = m.drain(h).expect("drain").concat();
    let owed = m.stats(h).expect("stats");
    assert!(
        owed.stats.dropped[EventKind::ImageLoad.index()] > 0,
        "{owed:?}"
    );
    // The next event finds room and carries the Lost record ahead of it.
    m.image_load(
        700,
        r"\Device\HarddiskVolume3\after.dll",
        0x7ff2_0000_0000,
        0x1000,
        0,
    )
    .expect("image load");
    let second = m.drain(h).expect("drain").concat();
    let last = m.stats(h).expect("stats");
    m.close_device(h).expect("close");
    m.unload().expect("unload");

    let dir = tempfile::tempdir().expect("tempdir");
    let run = |name: &str, bytes: Vec<u8>, args: &[&str]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let mut all = args.to_vec();
        all.push(path.to_str().expect("UTF-8"));
        agent(&all)
    };

    let whole = recording(&[(&first, &owed), (&second, &last)]);
    let (code, out, err) = run("whole.replay", whole.clone(), &["stats"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("driver counters against this file's records and Lost records: holds"),
        "{out}"
    );
    // In the JSON: "partial" while the drops were owed, then "true".
    let (code, out, err) = run("whole2.replay", whole, &["replay", "--no-enrich"]);
    assert_eq!(code, 0, "{err}");
    let accounted: Vec<_> = lines(&out)
        .iter()
        .filter(|e| e["EventID"] == 1004)
        .map(|e| e["EventData"]["Accounted"].clone())
        .collect();
    assert_eq!(accounted, ["partial", "true"]);

    // The READ that carried the Lost record never reached the file: the
    // driver's last STATS says it was delivered.
    let lossy = recording(&[(&first, &owed), (&[], &last)]);
    let (code, out, _) = run("lossy.replay", lossy, &["stats"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("were delivered but never arrived (the input ended)"),
        "{out}"
    );
    // Said once, as a finding, not also as "not received yet".
    assert!(!out.contains("not checked: records"), "{out}");
}
