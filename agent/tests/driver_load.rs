//! Driver loads (issue #19, item 4): an image-load record whose
//! `IMAGE_INFO.Properties` has `SystemModeImage` is Sysmon 6, with Sysmon's
//! fields in Sysmon's order, `Signed`/`SignatureStatus` from the kernel's
//! signing level when the file is not read, and SigmaHQ's driver_load rules firing on it.

mod support;

use std::path::Path;

use ringside_agent::synth::BatchBuilder;
use support::{agent, at, lines, replay_of};

/// Three driver loads (unsigned from Temp, Windows-signed, unchecked) and
/// one user-mode DLL load, all in the System process (pid 4).
fn drivers() -> Vec<u8> {
    let mut b = BatchBuilder::new();
    b.driver_load(at(4, 1), r"\Device\HarddiskVolume3\Temp\evil.sys", 1);
    b.driver_load(at(4, 2), r"\SystemRoot\System32\drivers\ntfs.sys", 12);
    b.driver_load(at(4, 3), r"\??\C:\Drivers\unchecked.sys", 0);
    b.image_load(at(4, 4), r"\SystemRoot\System32\ntdll.dll", 12);
    replay_of(&[b.take()])
}

#[test]
fn system_mode_image_loads_are_sysmon_6_with_sysmons_fields_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replay = dir.path().join("drivers.replay");
    std::fs::write(&replay, drivers()).expect("write");
    let (code, stdout, stderr) = agent(&["replay", replay.to_str().expect("UTF-8"), "--no-enrich"]);
    assert_eq!(code, 0, "{stderr}");
    let events: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("{\"EventID\":6,") || l.starts_with("{\"EventID\":7,"))
        .collect();
    assert_eq!(events.len(), 4, "{stdout}");
    // Key order is checked on the text: Sysmon 6's. `Signature` is `-`
    // here: the files are not read (--no-enrich), and the kernel's signing
    // level says how an image was signed, not by whom.
    let keys = |line: &str| -> Vec<String> {
        let data = &line[line.find("\"EventData\":{").expect("EventData")..];
        let value: serde_json::Value = serde_json::from_str(&format!("{{{data}")).expect("JSON");
        let object = value["EventData"].as_object().expect("object").clone();
        let mut keys: Vec<(usize, String)> = object
            .keys()
            .map(|k| (data.find(&format!("\"{k}\":")).expect("key"), k.clone()))
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, k)| k).collect()
    };
    assert_eq!(
        keys(events[0]),
        [
            "RuleName",
            "UtcTime",
            "ImageLoaded",
            "Hashes",
            "Signed",
            "Signature",
            "SignatureStatus"
        ]
    );
    let lines = lines(&events.join("\n"));
    let field = |i: usize, name: &str| lines[i]["EventData"][name].as_str().map(str::to_owned);
    let ids: Vec<u64> = lines
        .iter()
        .map(|l| l["EventID"].as_u64().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [6, 6, 6, 7],
        "the DLL without SystemModeImage stays a 7"
    );
    assert_eq!(
        field(0, "ImageLoaded").as_deref(),
        Some(r"C:\Temp\evil.sys")
    );
    assert_eq!(
        field(1, "ImageLoaded").as_deref(),
        Some(r"C:\Windows\System32\drivers\ntfs.sys")
    );
    // SE_SIGNING_LEVEL_UNSIGNED, _WINDOWS, _UNCHECKED.
    let signatures: Vec<(Option<String>, Option<String>)> = (0..3)
        .map(|i| (field(i, "Signed"), field(i, "SignatureStatus")))
        .collect();
    let s = |a: &str, b: &str| (Some(a.to_owned()), Some(b.to_owned()));
    assert_eq!(
        signatures,
        [s("false", "Unavailable"), s("true", "Valid"), s("-", "-")]
    );
    assert!(lines[0]["EventData"].get("ProcessId").is_none());
    assert_eq!(lines[0]["EventData"]["Signature"], "-");
    assert!(lines[3]["EventData"].get("ProcessId").is_some());
}

/// SigmaHQ's own driver_load rule (drivers loaded from a Temp directory)
/// fires on the unsigned driver, and on nothing else.
#[test]
fn sigmahq_driver_load_rule_fires_on_the_driver_from_temp() {
    let rule = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../shared/data/sigma/rules/windows/driver_load/driver_load_win_susp_temp_use.yml",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    std::fs::copy(&rule, rules.join("temp.yml")).expect("SigmaHQ snapshot is there");
    let replay = dir.path().join("drivers.replay");
    std::fs::write(&replay, drivers()).expect("write");
    let (code, stdout, stderr) = agent(&[
        "replay",
        replay.to_str().expect("UTF-8"),
        "--no-enrich",
        "--rules",
        rules.to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("1 rules from 1 files active (0 rejected)"),
        "{stderr}"
    );
    let alerts: Vec<serde_json::Value> = lines(&stdout)
        .into_iter()
        .filter(|l| l.get("Alert").is_some())
        .collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    assert_eq!(
        alerts[0]["Alert"]["RuleId"], "2c4523d5-d481-4ed0-8ec3-7fbf0cb41a75",
        "{alerts:?}"
    );
}
