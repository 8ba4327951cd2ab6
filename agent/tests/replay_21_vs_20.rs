//! The 21-versus-20 replay: a recording flows through the agent while a
//! bundle arrives whose new rule names a 21st process-creation field
//! (Sysmon's TerminalSessionId, which the sensor does not provide). The
//! bundle is refused with its reason, the running bundle keeps matching,
//! and every event in the file comes out: counted from the agent's output
//! against the file's records decoded on their own, not from this test's
//! loop.

mod support;

use ringside_agent::detect::Detector;
use ringside_agent::enrich::EnrichConfig;
use ringside_agent::pipeline::{Config, Pipeline};
use ringside_agent::sink::JsonLines;
use ringside_agent::source::replay::ReplayReader;
use ringside_agent::source::writer::ReplayWriter;
use ringside_agent::synth::{BatchBuilder, sid};
use ringside_content::{Bundle, BundleWatcher, LoadPolicy, RulesLocation};
use ringside_wire::replay::{FrameKind, Frames};
use ringside_wire::{EventKind, Record, RecordKind, Records};
use serde_json::Value;
use support::{FIELD_NOT_PROVIDED, T0, at, image_rule, lines, the_rejection, write_rule};

/// 40 batches of 25 process creations, every third one cmd.exe.
fn recording() -> Vec<u8> {
    let user = sid(5, &[21, 1, 2, 3, 1001]);
    let medium = sid(16, &[0x2000]);
    let mut b = BatchBuilder::new();
    let mut out = Vec::new();
    let mut w = ReplayWriter::new(&mut out, T0).expect("in memory");
    for batch in 0..40u32 {
        for i in 0..25u32 {
            let n = batch * 25 + i;
            let image = if n % 3 == 0 {
                r"\??\C:\Windows\System32\cmd.exe"
            } else {
                r"\??\C:\Windows\System32\notepad.exe"
            };
            b.process_create(
                at(1000 + 4 * n, u64::from(n)),
                4,
                image,
                image,
                &user,
                &medium,
            );
        }
        w.batch(T0, &b.take()).expect("in memory");
    }
    w.finish().expect("in memory");
    out
}

/// The file's process creations, and how many run cmd.exe, decoded here
/// with the wire crate alone.
fn in_the_file(file: &[u8]) -> (usize, usize) {
    let (_, frames) = Frames::new(file).expect("replay header");
    let (mut creates, mut cmd) = (0, 0);
    for frame in frames {
        let frame = frame.expect("frame");
        if frame.kind != FrameKind::Batch {
            continue;
        }
        for record in Records::new(frame.payload) {
            let record = record.expect("decodes");
            if record.kind() == RecordKind::Event(EventKind::ProcessCreate) {
                creates += 1;
                if let Record::ProcessCreate(e) = record {
                    cmd += usize::from(
                        e.image_name()
                            .chars()
                            .collect::<String>()
                            .ends_with("cmd.exe"),
                    );
                }
            }
        }
    }
    (creates, cmd)
}

#[test]
fn a_bundle_naming_a_21st_field_is_refused_mid_replay_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    write_rule(&rules, "cmd.yml", &image_rule(0x21, "cmd.exe"));
    let location = RulesLocation::Directory(rules.clone());
    let mut watcher =
        BundleWatcher::new(location.clone(), LoadPolicy::Strict, location.fingerprint());
    let mut pipeline = Pipeline::new(Config {
        enrich: EnrichConfig::none(),
        ..Config::default()
    });
    pipeline.detector = Some(Detector::start(Bundle::load(&rules).expect("good bundle")));

    let file = recording();
    let mut reader = ReplayReader::new(&file[..]).expect("valid");
    let mut sink = JsonLines::new(Vec::new());
    let mut batches = 0;
    while let Some(frame) = reader.next_frame() {
        let frame = frame.expect("frame");
        if frame.kind != FrameKind::Batch {
            continue;
        }
        // Halfway through, the new bundle is offered.
        if batches == 20 {
            write_rule(&rules, "session.yml", FIELD_NOT_PROVIDED);
            let update = watcher.poll().expect("the change is seen");
            pipeline.detector.as_mut().expect("detector").apply(update);
        }
        pipeline
            .batch(frame.payload, frame.payload_offset(), &mut sink)
            .expect("in memory");
        batches += 1;
    }
    let out = lines(&String::from_utf8(sink.into_inner().expect("flush")).expect("UTF-8"));

    let is = |id: u64| move |l: &&Value| l.get("Alert").is_none() && l["EventID"] == id;
    let (creates, cmd) = in_the_file(&file);
    assert_eq!(creates, 1000);
    assert_eq!(
        out.iter().filter(is(1)).count(),
        creates,
        "every event came out"
    );
    let alerts = out.iter().filter(|l| l.get("Alert").is_some()).count();
    assert_eq!(
        alerts, cmd,
        "every cmd.exe alerted, before and after the offer"
    );

    // Refused with its reason, once, naming the running bundle.
    let (_, reason) = the_rejection(&out);
    assert!(
        reason.contains("session.yml:10") && reason.contains("TerminalSessionId"),
        "{reason}"
    );
    // After the refusal, the old bundle still matches: the alerts that
    // follow it are those of the cmd.exe events that follow it.
    let at = out.iter().position(|l| is(1005)(&l)).expect("1005");
    let events_after = out[at..]
        .iter()
        .filter(is(1))
        .filter(|l| {
            l["EventData"]["Image"]
                .as_str()
                .is_some_and(|i| i.ends_with("cmd.exe"))
        })
        .count();
    let alerts_after = out[at..]
        .iter()
        .filter(|l| l.get("Alert").is_some())
        .count();
    assert!(events_after > 100, "{events_after}");
    assert_eq!(alerts_after, events_after);
}
