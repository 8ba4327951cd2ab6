//! The configuration in the pipeline: what is written, RuleName, the
//! accounting, the event mask, reloads with 1005/1006.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ringside_content::sysmon_config::{self, parse};
use ringside_wire::{EventKind, Origin};

use super::*;
use crate::enrich::EnrichConfig;
use crate::pipeline::{Config, Pipeline};
use crate::sink::JsonLines;
use crate::synth::{BatchBuilder, sid};

fn shared_config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sysmon-config")
        .join(name)
}

fn loaded(xml: &str) -> Loaded {
    parse::parse_str(xml, Path::new("t.xml"), &|_| None).expect("loads")
}

const CONFIG: &str = r#"<Sysmon schemaversion="4.90"><HashAlgorithms>sha1</HashAlgorithms><EventFiltering>
  <RuleGroup groupRelation="or"><ProcessCreate onmatch="exclude">
    <Image condition="image">notepad.exe</Image></ProcessCreate></RuleGroup>
  <RuleGroup groupRelation="or"><FileCreate onmatch="include">
    <TargetFilename name="technique_id=T1105,technique_name=Ingress Tool Transfer" condition="end with">.exe</TargetFilename></FileCreate></RuleGroup>
  <RuleGroup groupRelation="or"><DriverLoad onmatch="include"/></RuleGroup>
</EventFiltering></Sysmon>"#;

/// [`CONFIG`] without its empty DriverLoad include set: driver loads get
/// Sysmon's default (logged), so image loads stay observed.
fn config_without_driver_load() -> String {
    CONFIG.replace(
        r#"<RuleGroup groupRelation="or"><DriverLoad onmatch="include"/></RuleGroup>"#,
        "",
    )
}

fn at(pid: u32, ms: u64) -> Origin {
    Origin {
        pid,
        tid: pid + 1,
        timestamp: 0x01db_0000_0000_0000 + ms * 10_000,
    }
}

/// cmd and notepad start; cmd writes a.exe and a.txt, loads a DLL (and a
/// driver is loaded),
/// renames and deletes; both exit.
fn batch() -> Vec<u8> {
    let user = sid(5, &[21, 1, 2, 3, 1001]);
    let medium = sid(16, &[0x2000]);
    let mut b = BatchBuilder::new();
    b.process_create(
        at(20, 1),
        4,
        r"\??\C:\Windows\cmd.exe",
        "cmd",
        &user,
        &medium,
    );
    b.process_create(
        at(30, 2),
        4,
        r"\??\C:\Windows\notepad.exe",
        "notepad",
        &user,
        &medium,
    );
    b.file_create(at(20, 3), r"\??\C:\Temp\a.exe", 2);
    b.file_create(at(20, 4), r"\??\C:\Temp\a.txt", 2);
    b.image_load(at(20, 5), r"\??\C:\Windows\x.dll", 1);
    let mut system = at(4, 5);
    system.timestamp += 1;
    b.driver_load(system, r"\SystemRoot\System32\drivers\y.sys", 12);
    b.file_rename(at(20, 6), r"\??\C:\Temp\a.txt", r"\??\C:\Temp\b.txt");
    b.file_delete(at(20, 7), r"\??\C:\Temp\b.txt");
    b.process_exit(at(30, 8), 0);
    b.process_exit(at(20, 9), 0);
    b.take()
}

/// (EventID, RuleName) of each line written, and the pipeline.
fn run(pipeline: &mut Pipeline) -> Vec<(u64, String)> {
    let mut sink = JsonLines::new(Vec::new());
    pipeline.batch(&batch(), 0, &mut sink).expect("in memory");
    let out = sink.into_inner().expect("in memory");
    String::from_utf8(out)
        .expect("UTF-8")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            (
                v["EventID"].as_u64().expect("id"),
                v["EventData"]["RuleName"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn pipeline(filter: Option<ConfigFilter>) -> Pipeline {
    let mut pipeline = Pipeline::new(Config {
        enrich: EnrichConfig::none(),
        ..Config::default()
    });
    pipeline.filter = filter;
    pipeline
}

#[test]
fn the_configuration_decides_what_is_written_and_names_the_rule() {
    let mut p = pipeline(Some(ConfigFilter::new(loaded(CONFIG))));
    let written = run(&mut p);
    let ids: Vec<u64> = written.iter().map(|(id, _)| *id).collect();
    // 1006 first (activation); cmd's create (notepad's is excluded); only
    // a.exe of the file creates; no image load or delete (no rules: Sysmon
    // does not log them); no driver load (an empty include set); the rename
    // (not a Sysmon event); both exits.
    assert_eq!(ids, [1006, 1, 11, 1011, 5, 5], "{written:?}");
    assert_eq!(
        written[2].1,
        "technique_id=T1105,technique_name=Ingress Tool Transfer"
    );
    assert_eq!(written[1].1, "-", "an exclude set's default names no rule");
    let c = &p.counters;
    for kind in EventKind::ALL {
        let i = kind.index();
        assert_eq!(c.received[i], c.written[i] + c.not_mapped[i], "{kind:?}");
    }
    assert_eq!(c.filtered[EventKind::ProcessCreate.index()], 1);
    assert_eq!(c.filtered[EventKind::FileCreate.index()], 1);
    assert_eq!(c.filtered[EventKind::ImageLoad.index()], 2);
    assert_eq!(c.filtered[EventKind::FileDelete.index()], 1);
    assert_eq!(c.filtered_events, 5);
    // Without a configuration, everything is written.
    let all = run(&mut pipeline(None));
    assert_eq!(all.len(), 10);
    // Without a DriverLoad element, Sysmon's default logs the driver load.
    let mut p = pipeline(Some(ConfigFilter::new(loaded(
        &config_without_driver_load(),
    ))));
    let ids: Vec<u64> = run(&mut p).iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1006, 1, 11, 6, 1011, 5, 5]);
}

/// One kernel kind feeds 7 and 6: it stays on while either can be logged.
#[test]
fn image_loads_stay_observed_while_driver_loads_can_be_logged() {
    let l = loaded(&config_without_driver_load());
    assert!(!l.config.can_log(Target::ImageLoad));
    assert!(l.config.can_log(Target::DriverLoad), "Sysmon's default");
    // No RegistryEvent element: Sysmon logs no registry event; no
    // PipeEvent element: no pipe event.
    assert_eq!(
        kinds_switched_off(event_mask(&l.config)),
        [
            EventKind::FileDelete,
            EventKind::RegistrySetValue,
            EventKind::RegistryKey,
            EventKind::RegistryRename,
            EventKind::NamedPipe
        ]
    );
}

#[test]
fn hash_algorithms_and_event_mask_follow_the_configuration() {
    let l = loaded(CONFIG);
    assert_eq!(
        hash_set(l.config.hash_algorithms.expect("given")),
        HashSet {
            sha1: true,
            ..HashSet::NONE
        }
    );
    let mask = event_mask(&l.config);
    assert_eq!(
        kinds_switched_off(mask),
        [
            EventKind::ImageLoad,
            EventKind::FileDelete,
            EventKind::RegistrySetValue,
            EventKind::RegistryKey,
            EventKind::RegistryRename,
            EventKind::NamedPipe
        ]
    );
    assert_ne!(mask & EventKind::ProcessCreate.mask_bit(), 0);
    assert_ne!(mask & EventKind::FileRename.mask_bit(), 0);
    let p = pipeline(Some(ConfigFilter::new(l)));
    assert_eq!(p.event_mask(), mask);
    assert_eq!(
        pipeline(None).event_mask(),
        ringside_wire::kind::DEFAULT_EVENTS_MASK
    );
}

/// What the note reports: which kinds each public configuration switches off.
#[test]
fn the_public_configurations_switch_off_what_they_can_never_log() {
    let streams = EventKind::FileCloseModified.mask_bit();
    for (name, off, on) in [
        (
            // No ImageLoad rules, but a DriverLoad exclude set: image
            // loads stay observed for their driver loads.
            "swiftonsecurity-sysmonconfig-export.xml",
            vec![EventKind::FileDelete],
            streams,
        ),
        (
            "sysmon-modular-sysmonconfig.xml",
            vec![],
            streams | EventKind::ProcessAccess.mask_bit(),
        ),
    ] {
        let l = sysmon_config::load(&shared_config(name)).expect("loads");
        let mask = event_mask(&l.config);
        assert_eq!(kinds_switched_off(mask), off, "{name}");
        // Both log alternate data streams (FileCreateStreamHash includes);
        // sysmon-modular logs process access too.
        assert_eq!(mask & OPT_IN_MASK, on, "{name}");
    }
}

/// The kinds off by default (process access; the closes of modified
/// handles, which carry alternate data streams) are asked for when the
/// configuration can log their Sysmon event (10, 15) or a Sigma rule reads
/// it, and not otherwise.
#[test]
fn opt_in_kinds_follow_the_configuration_and_the_rules() {
    assert_eq!(event_mask(&loaded(CONFIG).config) & OPT_IN_MASK, 0);
    let streams = CONFIG.replace(
        "</EventFiltering>",
        r#"<RuleGroup groupRelation="or"><FileCreateStreamHash onmatch="include">
    <TargetFilename condition="end with">:Zone.Identifier</TargetFilename></FileCreateStreamHash></RuleGroup>
</EventFiltering>"#,
    );
    assert_eq!(
        event_mask(&loaded(&streams).config) & OPT_IN_MASK,
        EventKind::FileCloseModified.mask_bit()
    );
    let access = CONFIG.replace(
        "</EventFiltering>",
        r#"<RuleGroup groupRelation="or"><ProcessAccess onmatch="include">
    <TargetImage condition="end with">lsass.exe</TargetImage></ProcessAccess></RuleGroup>
</EventFiltering>"#,
    );
    assert_eq!(
        event_mask(&loaded(&access).config) & OPT_IN_MASK,
        EventKind::ProcessAccess.mask_bit()
    );

    // Sigma: SigmaHQ's create_stream_hash rules read the closes.
    let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sigma/rules/windows/create_stream_hash");
    for filter in [None, Some(ConfigFilter::new(loaded(CONFIG)))] {
        let mut p = pipeline(filter);
        assert_eq!(p.event_mask() & OPT_IN_MASK, 0);
        p.detector = Some(
            crate::detect::Detector::load(&rules, ringside_content::LoadPolicy::Strict)
                .expect("SigmaHQ's create_stream_hash rules compile")
                .0,
        );
        assert_eq!(
            p.event_mask() & OPT_IN_MASK,
            EventKind::FileCloseModified.mask_bit()
        );
    }
}

#[test]
fn a_changed_file_is_swapped_in_and_a_bad_one_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sysmon.xml");
    std::fs::write(&path, CONFIG).expect("write");
    let bytes = std::fs::read(&path).expect("read");
    let first = parse::parse_bytes(&bytes, &path, &|_| None).expect("loads");
    let updates = watch::spawn(&path, bytes, Duration::from_millis(20)).expect("thread");
    let mut filter = ConfigFilter::new(first).with_updates(updates);
    let _ = filter.take_notices();
    let wait = |filter: &mut ConfigFilter| -> Vec<Notice> {
        for _ in 0..500 {
            filter.poll_updates();
            let notices = filter.take_notices();
            if !notices.is_empty() {
                return notices;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no update from the watcher");
    };
    // A bad edit: refused with file:line:column, the running one stays.
    std::fs::write(&path, CONFIG.replace("end with", "ends with")).expect("write");
    let notices = wait(&mut filter);
    let [
        Notice::Rejected {
            reason, running, ..
        },
    ] = notices.as_slice()
    else {
        panic!("{notices:?}");
    };
    assert!(
        reason.contains("sysmon.xml:5:") && reason.contains("\"ends with\""),
        "{reason}"
    );
    assert_eq!(running, &path);
    assert!(!filter.config().can_log(Target::ImageLoad));
    // A good edit that logs image loads: activated, and the mask changes.
    std::fs::write(
        &path,
        CONFIG.replace(
            "</EventFiltering>",
            r#"<ImageLoad onmatch="exclude"/></EventFiltering>"#,
        ),
    )
    .expect("write");
    let notices = wait(&mut filter);
    assert!(
        matches!(
            notices.as_slice(),
            [Notice::Activated {
                previous: Some(_),
                ..
            }]
        ),
        "{notices:?}"
    );
    assert!(filter.config().can_log(Target::ImageLoad));
    assert_eq!(
        filter.take_hashes_change(),
        None,
        "HashAlgorithms unchanged"
    );
}

/// Through the pipeline: a rejected reload is a 1005 event between
/// batches, and events keep flowing under the running configuration.
#[test]
fn reload_notices_are_1005_and_1006_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sysmon.xml");
    std::fs::write(&path, "<Sysmon schemaversion=\"4.90\"><Nope/></Sysmon>").expect("write");
    let (sender_path, bytes) = (path.clone(), CONFIG.as_bytes().to_vec());
    let updates = watch::spawn(&sender_path, bytes, Duration::from_millis(10)).expect("thread");
    let mut p = pipeline(Some(
        ConfigFilter::new(loaded(CONFIG)).with_updates(updates),
    ));
    let mut seen = Vec::new();
    for _ in 0..300 {
        seen.extend(run(&mut p).into_iter().map(|(id, _)| id));
        if seen.contains(&1005) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(seen.contains(&1005), "{seen:?}");
    assert!(seen.iter().filter(|&&id| id == 1).count() >= 2, "{seen:?}");
}

/// A reload that names other HashAlgorithms changes the hashes computed
/// (unless hashing is off).
#[test]
fn a_reload_applies_its_hash_algorithms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sysmon.xml");
    let md5 = CONFIG.replace("<HashAlgorithms>sha1<", "<HashAlgorithms>MD5,IMPHASH<");
    std::fs::write(&path, &md5).expect("write");
    let updates =
        watch::spawn(&path, CONFIG.as_bytes().to_vec(), Duration::from_millis(10)).expect("thread");
    let mut p = Pipeline::new(Config::default());
    p.enricher
        .set_hashes(HashSet::parse("sha1").expect("valid"));
    p.filter = Some(ConfigFilter::new(loaded(CONFIG)).with_updates(updates));
    let mut sink = JsonLines::new(Vec::new());
    for _ in 0..300 {
        p.content_updates(&mut sink).expect("in memory");
        if p.enricher.hashes() != HashSet::parse("sha1").expect("valid") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        p.enricher.hashes(),
        HashSet::parse("md5,imphash").expect("valid")
    );
}

/// Sigma rules still see what the configuration drops, and the kinds they
/// read stay in the event mask.
#[test]
fn detection_sees_dropped_events_and_keeps_their_kinds_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("dll.yml"),
        "title: x.dll loaded\nid: 5b0e3c55-0d1f-4d51-9d5b-1d2a3c4e5f01\nlevel: low\nlogsource:\n    category: image_load\n    product: windows\ndetection:\n    selection:\n        ImageLoaded|endswith: '\\x.dll'\n    condition: selection\n",
    )
    .expect("write rule");
    let (detector, _) =
        crate::detect::Detector::load(dir.path(), ringside_content::LoadPolicy::Strict)
            .expect("rule compiles");
    let mut p = pipeline(Some(ConfigFilter::new(loaded(CONFIG))));
    // CONFIG can never log image loads: off, until a rule reads them.
    assert_eq!(p.event_mask() & EventKind::ImageLoad.mask_bit(), 0);
    let sent = p.configure_mask();
    p.detector = Some(detector);
    assert_ne!(p.event_mask() & EventKind::ImageLoad.mask_bit(), 0);
    assert_ne!(p.event_mask(), sent);
    assert!(p.event_mask_changed(), "CONFIGURE is sent again");
    p.configure_mask();
    assert!(!p.event_mask_changed());

    let mut sink = JsonLines::new(Vec::new());
    p.batch(&batch(), 0, &mut sink).expect("in memory");
    let out = String::from_utf8(sink.into_inner().expect("in memory")).expect("UTF-8");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert!(
        lines
            .iter()
            .filter(|l| l.get("Alert").is_none())
            .all(|l| l["EventID"] != 7),
        "the image load is not written"
    );
    let alerts: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.get("Alert").is_some()).collect();
    assert_eq!(alerts.len(), 1, "{out}");
    assert_eq!(alerts[0]["EventData"]["ImageLoaded"], r"C:\Windows\x.dll");
}
