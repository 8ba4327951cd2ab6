//! The JSON of a process creation carries Sysmon's event-1 fields with
//! Sysmon's exact names, checked against real Sysmon events (SigmaHQ's
//! regression samples).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{agent, lines, scenario};

/// Event-1 fields the sensor cannot know, and why.
const NOT_PROVIDED: &[(&str, &str)] = &[
    (
        "CurrentDirectory",
        "not in PS_CREATE_NOTIFY_INFO; reading the PEB from user mode races the process",
    ),
    (
        "LogonGuid",
        "needs the token's logon session, which the driver does not copy",
    ),
    (
        "LogonId",
        "needs the token's logon session, which the driver does not copy",
    ),
    ("TerminalSessionId", "not copied by the driver"),
];

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("readable sample dir")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[test]
fn process_creation_json_uses_sysmon_event_1_names() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sigma/regression_data/rules/windows/process_creation");
    let mut files = Vec::new();
    json_files(&samples, &mut files);
    assert!(
        files.len() > 10,
        "expected SigmaHQ samples under {}",
        samples.display()
    );
    // Keys every real event 1 carries (Sysmon always writes all of them).
    let mut sysmon: Option<BTreeSet<String>> = None;
    let mut events_seen = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable sample");
        // Some samples hold several events back to back.
        for value in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
            let value = value.expect("sample is JSON");
            if value["Event"]["System"]["EventID"].as_u64() != Some(1) {
                continue;
            }
            events_seen += 1;
            let keys: BTreeSet<String> = value["Event"]["EventData"]
                .as_object()
                .expect("EventData")
                .keys()
                .cloned()
                .collect();
            sysmon = Some(match sysmon {
                None => keys,
                Some(common) => common.intersection(&keys).cloned().collect(),
            });
        }
    }
    let sysmon = sysmon.expect("at least one Sysmon event 1 among the samples");
    assert!(events_seen > 10);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.replay");
    std::fs::write(&path, scenario()).expect("write");
    let (code, stdout, stderr) = agent(&["replay", path.to_str().expect("UTF-8"), "--no-enrich"]);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&stdout);
    let create = events
        .iter()
        .find(|e| e["EventID"] == 1)
        .expect("a process creation");
    let ours: BTreeSet<String> = create["EventData"]
        .as_object()
        .expect("EventData")
        .keys()
        .cloned()
        .collect();

    let not_provided: BTreeSet<String> = NOT_PROVIDED
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    let expected: BTreeSet<String> = sysmon.difference(&not_provided).cloned().collect();
    assert_eq!(
        ours, expected,
        "ours vs Sysmon's event 1 keys minus the documented gaps"
    );
    // The documented gaps are really Sysmon fields (the list cannot rot).
    assert!(not_provided.is_subset(&sysmon));
}
