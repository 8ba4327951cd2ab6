//! The JSON of a registry value set is Sysmon's event 13, key for key, and
//! its TargetObject, Details and EventType are the strings Sysmon wrote for
//! the same set (SigmaHQ's registry_set regression samples), so the
//! accepted registry_set rules read them as they read Sysmon's.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use ringside_agent::synth::{BatchBuilder, sid};
use support::{agent, at, create_explorer, lines, replay_of};

const SAMPLE: &str = "registry_set_amsi_disable/aa37cbb0-da36-42cb-a90f-fdf216fc7467.json";
const KEY: &str = r"\REGISTRY\USER\S-1-5-21-2555720767-1205513275-3893774561-1001\Software\Microsoft\Windows Script\Settings";

fn replay() -> Vec<u8> {
    let user = sid(5, &[21, 2_555_720_767, 1_205_513_275, 3_893_774_561, 1001]);
    let medium = sid(16, &[0x2000]);
    let mut b = BatchBuilder::new();
    create_explorer(&mut b, &user, &medium);
    // REG_DWORD 0 into AmsiEnable, as the sample's PowerShell did.
    b.registry_set_value(at(1000, 5), KEY, "AmsiEnable", 4, &0u32.to_le_bytes());
    // The default value of an HKLM control-set key, REG_SZ.
    let service: Vec<u8> = "Service\0"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    b.registry_set_value(
        at(1000, 6),
        r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Control\SafeBoot\Minimal\AtomicSafeMode",
        "",
        1,
        &service,
    );
    replay_of(&[b.take()])
}

#[test]
fn a_value_set_is_sysmon_event_13_key_for_key() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sigma/regression_data/rules/windows/registry/registry_set");
    let text = std::fs::read_to_string(samples.join(SAMPLE)).expect("the SigmaHQ sample");
    let sample: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(sample["Event"]["System"]["EventID"], 13);
    let theirs = &sample["Event"]["EventData"];
    let their_keys: BTreeSet<&String> = theirs.as_object().expect("EventData").keys().collect();

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.replay");
    std::fs::write(&path, replay()).expect("write");
    let (code, stdout, stderr) = agent(&["replay", path.to_str().expect("UTF-8"), "--no-enrich"]);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&stdout);
    let sets: Vec<&serde_json::Value> = events.iter().filter(|e| e["EventID"] == 13).collect();
    assert_eq!(sets.len(), 2, "{stdout}");
    let ours = &sets[0]["EventData"];
    let our_keys: BTreeSet<&String> = ours.as_object().expect("EventData").keys().collect();
    assert_eq!(our_keys, their_keys, "event 13 keys");
    for key in ["EventType", "TargetObject", "Details", "RuleName"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    assert_eq!(ours["ProcessId"], 1000);
    assert_eq!(ours["Image"], r"C:\Windows\explorer.exe");
    assert_eq!(
        sets[1]["EventData"]["TargetObject"],
        r"HKLM\System\CurrentControlSet\Control\SafeBoot\Minimal\AtomicSafeMode\(Default)"
    );
    assert_eq!(sets[1]["EventData"]["Details"], "Service");
}
