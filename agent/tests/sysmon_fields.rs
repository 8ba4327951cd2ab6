//! The JSON of a process creation carries Sysmon's event-1 fields with
//! Sysmon's exact names, checked against real Sysmon events (SigmaHQ's
//! regression samples).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{SCENARIO_LOGON_ID, agent, lines, scenario};

/// Event-1 fields the sensor cannot know, and why.
const NOT_PROVIDED: &[(&str, &str)] = &[("TerminalSessionId", "not copied by the driver")];

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
    // Sysmon's (LogonId, LogonGuid, ProcessGuid) triples.
    let mut logons = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable sample");
        // Some samples hold several events back to back.
        for value in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
            let value = value.expect("sample is JSON");
            if value["Event"]["System"]["EventID"].as_u64() != Some(1) {
                continue;
            }
            events_seen += 1;
            let data = &value["Event"]["EventData"];
            if let (Some(id), Some(guid), Some(process)) = (
                data["LogonId"].as_str(),
                data["LogonGuid"].as_str(),
                data["ProcessGuid"].as_str(),
            ) {
                logons.push((id.to_owned(), guid.to_owned(), process.to_owned()));
            }
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

    // LogonId and LogonGuid are written as Sysmon writes them: the form
    // of every sample, checked on ours with the same function.
    assert!(logons.len() > 10, "samples with a logon session");
    for (id, guid, process) in &logons {
        let luid = logon_shape(id, guid, process).unwrap_or_else(|e| panic!("Sysmon's: {e}"));
        assert!(luid > 0, "{id}");
    }
    // cmd (2000) has a logon session; explorer's create record has none
    // (its logon session query failed), which reads as Sysmon's `-`.
    let session = |pid: u64| {
        &events
            .iter()
            .find(|e| e["EventID"] == 1 && e["EventData"]["ProcessId"] == pid)
            .unwrap_or_else(|| panic!("the creation of {pid}"))["EventData"]
    };
    assert_eq!(
        (&session(1000)["LogonId"], &session(1000)["LogonGuid"]),
        (&serde_json::json!("-"), &serde_json::json!("-"))
    );
    let data = session(2000);
    let (id, guid, process) = (
        data["LogonId"].as_str().expect("LogonId"),
        data["LogonGuid"].as_str().expect("LogonGuid"),
        data["ProcessGuid"].as_str().expect("ProcessGuid"),
    );
    assert_eq!(logon_shape(id, guid, process), Ok(SCENARIO_LOGON_ID));
    assert_eq!(id, format!("{SCENARIO_LOGON_ID:#x}"));
    // The time groups are Sysmon's own (see `ProcessGuid::logon`); ringside
    // writes zeros there.
    assert_eq!(&guid[..1], "{", "braced, as ringside's ProcessGuid");
    assert_eq!(&guid[9..20], "-0000-0000-", "{guid}");
}

/// Checks a (LogonId, LogonGuid, ProcessGuid) triple against the form of
/// Sysmon's: `0x` + lower-case hex without leading zeros; an upper-case
/// GUID, braced exactly when the ProcessGuid is (Sysmon writes braces; the
/// samples' JSON conversion dropped them from every GUID), whose first group
/// is the ProcessGuid's (the machine) and whose last 8 bytes are the LUID,
/// little-endian. Returns the LUID.
fn logon_shape(id: &str, guid: &str, process: &str) -> Result<u64, String> {
    let hex = id
        .strip_prefix("0x")
        .filter(|h| !h.is_empty() && !h.starts_with('0'))
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
        .ok_or_else(|| format!("LogonId {id}"))?;
    let luid = u64::from_str_radix(hex, 16).map_err(|e| format!("LogonId {id}: {e}"))?;
    let unbrace = |g: &'_ str| -> Option<String> {
        match g.strip_prefix('{') {
            Some(inner) => inner.strip_suffix('}').map(|i| format!("braced {i}")),
            None => Some(format!("bare {g}")),
        }
    };
    let (guid_form, process_form) = (
        unbrace(guid).ok_or_else(|| format!("LogonGuid {guid}"))?,
        unbrace(process).ok_or_else(|| format!("ProcessGuid {process}"))?,
    );
    let (guid_braces, bare) = guid_form.split_once(' ').unwrap_or_default();
    let (process_braces, process) = process_form.split_once(' ').unwrap_or_default();
    if guid_braces != process_braces {
        return Err(format!(
            "LogonGuid {guid} {guid_braces}, ProcessGuid {process_braces}"
        ));
    }
    let groups: Vec<&str> = bare.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12] || guid.chars().any(|c| c.is_ascii_lowercase()) {
        return Err(format!("LogonGuid {guid}"));
    }
    if !process.starts_with(&format!("{}-", groups[0])) {
        return Err(format!(
            "LogonGuid {guid} on another machine than {process}"
        ));
    }
    let tail: String = luid
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    if format!("{}{}", groups[3], groups[4]) != tail {
        return Err(format!(
            "LogonGuid {guid} does not end in LogonId {id}'s bytes"
        ));
    }
    Ok(luid)
}
