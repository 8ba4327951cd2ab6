//! The JSON of a registry key event is Sysmon's: a key created, a key
//! deleted or a value deleted is event 12 key for key with SigmaHQ's real
//! registry_delete samples (same EventType and TargetObject strings for the
//! same operation); a key rename is event 14 with Sysmon's fields (schema
//! 4.90; SigmaHQ has no sample of it), its NewName a full key path.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use ringside_agent::synth::{BatchBuilder, sid};
use ringside_wire::{REGISTRY_OP_CREATE_KEY, REGISTRY_OP_DELETE_KEY, REGISTRY_OP_DELETE_VALUE};
use support::{agent, at, create_explorer, lines, replay_of};

const SAMPLES: &str =
    "../../shared/data/sigma/regression_data/rules/windows/registry/registry_delete";
const TREE: &str = r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tree\MaliciousTask";
const RUN_MRU: &str = r"\REGISTRY\USER\S-1-5-21-3960063115-309473240-3247002503-500\Software\Microsoft\Windows\CurrentVersion\Explorer\RunMRU";

fn sample(folder: &str) -> serde_json::Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(SAMPLES)
        .join(folder);
    let file = std::fs::read_dir(&dir)
        .expect("the SigmaHQ folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a sample");
    let text = std::fs::read_to_string(file).expect("readable");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    json["Event"].clone()
}

fn keys(data: &serde_json::Value) -> BTreeSet<String> {
    data.as_object()
        .expect("EventData")
        .keys()
        .cloned()
        .collect()
}

fn events() -> Vec<serde_json::Value> {
    events_with(&[])
}

fn events_with(extra: &[&str]) -> Vec<serde_json::Value> {
    let user = sid(5, &[21, 3_960_063_115, 309_473_240, 3_247_002_503, 500]);
    let high = sid(16, &[0x3000]);
    let mut b = BatchBuilder::new();
    create_explorer(&mut b, &user, &high);
    b.registry_key(at(1000, 5), REGISTRY_OP_DELETE_VALUE, TREE, "SD");
    b.registry_key(at(1000, 6), REGISTRY_OP_DELETE_KEY, RUN_MRU, "");
    b.registry_key(at(1000, 7), REGISTRY_OP_CREATE_KEY, TREE, "");
    b.registry_rename(at(1000, 8), TREE, "Renamed");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.replay");
    std::fs::write(&path, replay_of(&[b.take()])).expect("write");
    let mut args = vec!["replay", path.to_str().expect("UTF-8"), "--no-enrich"];
    args.extend(extra);
    let (code, stdout, stderr) = agent(&args);
    assert_eq!(code, 0, "{stderr}");
    lines(&stdout)
        .into_iter()
        .filter(|e| e["EventID"] == 12 || e["EventID"] == 14)
        .collect()
}

#[test]
fn key_and_value_deletions_are_sysmon_event_12_key_for_key() {
    let ours = events();
    assert_eq!(ours.len(), 4, "{ours:?}");
    for (event, folder) in [
        (
            &ours[0],
            "registry_delete_schtasks_hide_task_via_sd_value_removal",
        ),
        (&ours[1], "registry_delete_runmru"),
    ] {
        let theirs = sample(folder);
        assert_eq!(theirs["System"]["EventID"], 12);
        let (ours, theirs) = (&event["EventData"], &theirs["EventData"]);
        assert_eq!(keys(ours), keys(theirs), "{folder}: event 12 keys");
        for key in ["EventType", "TargetObject", "RuleName"] {
            assert_eq!(ours[key], theirs[key], "{folder}: {key}");
        }
        assert_eq!(ours["Image"], r"C:\Windows\explorer.exe");
    }
    let created = &ours[2]["EventData"];
    assert_eq!(ours[2]["EventID"], 12);
    assert_eq!(created["EventType"], "CreateKey");
    assert_eq!(
        created["TargetObject"],
        r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tree\MaliciousTask"
    );
}

#[test]
fn a_key_rename_is_sysmon_event_14_with_full_key_paths() {
    let ours = events();
    let rename = &ours[3];
    assert_eq!(rename["EventID"], 14);
    let data = &rename["EventData"];
    let expected: BTreeSet<String> = [
        "RuleName",
        "EventType",
        "UtcTime",
        "ProcessGuid",
        "ProcessId",
        "Image",
        "TargetObject",
        "NewName",
        "User",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys(data), expected);
    assert_eq!(data["EventType"], "RenameKey");
    let tree = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tree";
    assert_eq!(data["TargetObject"], format!(r"{tree}\MaliciousTask"));
    assert_eq!(data["NewName"], format!(r"{tree}\Renamed"));
}

/// A Sysmon configuration's RegistryEvent filters apply to 12 and 14 by
/// field name: `NewName` sits at another position in event 14 than in the
/// element's field list (the union of 12, 13 and 14).
#[test]
fn registry_event_filters_of_a_sysmon_configuration_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sysmon.xml");
    std::fs::write(
        &config,
        r#"<Sysmon schemaversion="4.90"><EventFiltering>
<RuleGroup name="" groupRelation="or">
<RegistryEvent onmatch="include">
<TargetObject name="technique_id=T1112,technique_name=RunMRU" condition="contains">\RunMRU</TargetObject>
<NewName name="renames" condition="end with">\Renamed</NewName>
</RegistryEvent>
</RuleGroup>
</EventFiltering></Sysmon>"#,
    )
    .expect("write");
    let ours = events_with(&["--config", config.to_str().expect("UTF-8")]);
    let kept: Vec<(u64, &str, &str)> = ours
        .iter()
        .map(|e| {
            (
                e["EventID"].as_u64().unwrap_or_default(),
                e["EventData"]["EventType"].as_str().unwrap_or_default(),
                e["EventData"]["RuleName"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            (12, "DeleteKey", "technique_id=T1112,technique_name=RunMRU"),
            (14, "RenameKey", "renames"),
        ]
    );
}
