//! The JSON of a process access is Sysmon's event 10, key for key, against
//! both of SigmaHQ's real Sysmon 10 samples: the same keys, and for the
//! same facts (the source and target images, the granted mask, the
//! requesting thread's return addresses in the images it loaded) the same
//! `GrantedAccess`, `CallTrace`, `SourceImage`, `TargetImage` and
//! `TargetUser` strings Sysmon wrote.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ringside_agent::synth::{BatchBuilder, sid};
use support::{agent, at, lines, replay_of};

const SAMPLES: &str = "../../shared/data/sigma/regression_data/rules/windows/process_access";

fn samples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLES);
    let mut files = Vec::new();
    for folder in std::fs::read_dir(&dir)
        .expect("the SigmaHQ samples")
        .flatten()
    {
        for file in std::fs::read_dir(folder.path())
            .expect("a sample folder")
            .flatten()
        {
            if file.path().extension().is_some_and(|e| e == "json") {
                files.push(file.path());
            }
        }
    }
    files.sort();
    files
}

/// An NT path for a DOS one on the replay's volume map (C: is volume 3).
fn nt(dos: &str) -> String {
    format!(
        r"\Device\HarddiskVolume3{}",
        dos.strip_prefix("C:").expect("a C: path")
    )
}

/// The replay that makes Sysmon's event: the source and target processes
/// (the target as SYSTEM), every image the sample's call trace names
/// loaded into the source at its own base, and one access whose frames
/// are those bases plus the sample's offsets.
fn replay(theirs: &serde_json::Value) -> Vec<u8> {
    let field = |k: &str| theirs[k].as_str().expect(k).to_owned();
    let source = theirs["SourceProcessId"].as_u64().expect("pid") as u32;
    let target = theirs["TargetProcessId"].as_u64().expect("pid") as u32;
    let tid = theirs["SourceThreadId"].as_u64().expect("tid") as u32;
    let user = sid(5, &[21, 2_555_720_767, 1_205_513_275, 3_893_774_561, 1001]);
    let system = sid(5, &[18]);
    let medium = sid(16, &[0x2000]);
    let high = sid(16, &[0x4000]);
    let mut b = BatchBuilder::new();
    b.process_create(
        at(target, 0),
        4,
        &nt(&field("TargetImage")),
        "",
        &system,
        &high,
    );
    b.process_create(
        at(source, 1),
        4,
        &nt(&field("SourceImage")),
        "",
        &user,
        &medium,
    );
    let mut bases: Vec<(String, u64)> = Vec::new();
    let mut frames = Vec::new();
    for frame in field("CallTrace").split('|') {
        let (path, offset) = frame.rsplit_once('+').expect("module+offset");
        let offset = u64::from_str_radix(offset, 16).expect("hex offset");
        let base = match bases.iter().find(|(p, _)| p == path) {
            Some((_, base)) => *base,
            None => {
                let base = 0x7ffa_0000_0000 + 0x100_0000 * bases.len() as u64;
                b.image_load_at(at(source, 2), &nt(path), base, 0x80_0000, 12);
                bases.push((path.to_owned(), base));
                base
            }
        };
        frames.push(base + offset);
    }
    let granted =
        u32::from_str_radix(field("GrantedAccess").trim_start_matches("0x"), 16).expect("hex mask");
    let mut origin = at(source, 3);
    origin.tid = tid;
    b.process_access(origin, target, granted, &frames);
    replay_of(&[b.take()])
}

#[test]
fn a_process_access_is_sysmon_event_10_key_for_key() {
    let files = samples();
    assert_eq!(files.len(), 2, "SigmaHQ's two process_access samples");
    let dir = tempfile::tempdir().expect("tempdir");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("the SigmaHQ sample");
        let sample: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(sample["Event"]["System"]["EventID"], 10);
        let theirs = &sample["Event"]["EventData"];
        let their_keys: BTreeSet<&String> = theirs.as_object().expect("EventData").keys().collect();

        let path = dir.path().join("a.replay");
        std::fs::write(&path, replay(theirs)).expect("write");
        let (code, stdout, stderr) =
            agent(&["replay", path.to_str().expect("UTF-8"), "--no-enrich"]);
        assert_eq!(code, 0, "{stderr}");
        let events = lines(&stdout);
        let accesses: Vec<&serde_json::Value> =
            events.iter().filter(|e| e["EventID"] == 10).collect();
        assert_eq!(accesses.len(), 1, "{stdout}");
        let ours = &accesses[0]["EventData"];
        let our_keys: BTreeSet<&String> = ours.as_object().expect("EventData").keys().collect();
        assert_eq!(our_keys, their_keys, "{}: event 10 keys", file.display());
        for key in [
            "RuleName",
            "SourceProcessId",
            "SourceThreadId",
            "SourceImage",
            "TargetProcessId",
            "TargetImage",
            "GrantedAccess",
            "CallTrace",
            "TargetUser",
        ] {
            assert_eq!(ours[key], theirs[key], "{}: {key}", file.display());
        }
        // Sysmon's GUIDs carry its machine's id and clock; ours are of the
        // same form, and the source's is the one its other events carry.
        let source_guid = ours["SourceProcessGUID"].as_str().expect("GUID");
        assert_eq!(source_guid.len(), 38, "{source_guid}");
        assert_ne!(ours["SourceProcessGUID"], ours["TargetProcessGUID"]);
    }
}

#[test]
fn an_address_in_no_loaded_image_is_unknown_as_sysmon_writes_it() {
    let mut b = BatchBuilder::new();
    let user = sid(5, &[21, 1, 2, 3, 1001]);
    let medium = sid(16, &[0x2000]);
    b.process_create(
        at(700, 0),
        4,
        r"\Device\HarddiskVolume3\Windows\System32\rundll32.exe",
        "rundll32.exe",
        &user,
        &medium,
    );
    b.image_load_at(
        at(700, 1),
        r"\Device\HarddiskVolume3\Windows\System32\ntdll.dll",
        0x7ffa_8c30_0000,
        0x1f_8000,
        12,
    );
    b.process_access(
        at(700, 2),
        860,
        0x1fffff,
        &[0x7ffa_8c39_d4c4, 0x0000_01a4_c8e7_0c8b],
    );
    // The process exits; a later access (a reused pid) resolves nothing.
    b.process_exit(at(700, 3), 0);
    b.process_access(at(700, 4), 860, 0x1010, &[0x7ffa_8c39_d4c4]);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("u.replay");
    std::fs::write(&path, replay_of(&[b.take()])).expect("write");
    let (code, stdout, stderr) = agent(&["replay", path.to_str().expect("UTF-8"), "--no-enrich"]);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&stdout);
    let traces: Vec<&str> = events
        .iter()
        .filter(|e| e["EventID"] == 10)
        .map(|e| e["EventData"]["CallTrace"].as_str().expect("CallTrace"))
        .collect();
    assert_eq!(
        traces,
        [
            r"C:\Windows\System32\ntdll.dll+9d4c4|UNKNOWN(000001A4C8E70C8B)",
            "UNKNOWN(00007FFA8C39D4C4)"
        ]
    );
}

/// SigmaHQ's direct-NtOpenProcess rule (a handle asked for from code no
/// loaded image backs) fires on ringside's event 10. It excludes, by
/// `Provider_Name`, another provider's events; every event 10 ringside
/// writes is Sysmon's, so the exclusion never applies (issue #19 listed it
/// among the rules other engines fire and ringside rejected). A tool in
/// Temp opening lsass from unbacked memory fires it; the same call from
/// code in ntdll does not.
#[test]
fn the_direct_ntopenprocess_rule_fires_on_an_unbacked_call() {
    const RULE: &str = "3f3f3506-1895-401b-9cc3-e86b16e630d0";
    let mut b = BatchBuilder::new();
    let user = sid(5, &[21, 1, 2, 3, 1001]);
    let system = sid(5, &[18]);
    let high = sid(16, &[0x4000]);
    b.process_create(
        at(636, 0),
        4,
        r"\Device\HarddiskVolume3\Windows\System32\lsass.exe",
        r"C:\Windows\system32\lsass.exe",
        &system,
        &sid(16, &[0x4000]),
    );
    b.process_create(
        at(5000, 1),
        4,
        r"\Device\HarddiskVolume3\Users\bob\AppData\Local\Temp\d.exe",
        "d.exe",
        &user,
        &high,
    );
    b.image_load_at(
        at(5000, 2),
        r"\Device\HarddiskVolume3\Windows\System32\ntdll.dll",
        0x7ffa_8c30_0000,
        0x1f_8000,
        12,
    );
    // A syscall stub in shellcode, then the same access through ntdll.
    b.process_access(at(5000, 3), 636, 0x1010, &[0x0000_01a4_c8e7_0c8b]);
    b.process_access(at(5000, 4), 636, 0x1010, &[0x7ffa_8c39_d4c4]);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.replay");
    std::fs::write(&path, replay_of(&[b.take()])).expect("write");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sigma/rules/windows/process_access");
    let (code, stdout, stderr) = agent(&[
        "replay",
        path.to_str().expect("UTF-8"),
        "--no-enrich",
        "--rules",
        rules.to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&stdout);
    let fired: Vec<&str> = events
        .iter()
        .filter(|e| e["Alert"]["RuleId"] == RULE)
        .map(|e| {
            e["EventData"]["CallTrace"]
                .as_str()
                .expect("the alert carries the event")
        })
        .collect();
    assert_eq!(fired, ["UNKNOWN(000001A4C8E70C8B)"], "{stdout}");
}
