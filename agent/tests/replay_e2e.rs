//! End to end: a scripted replay file through the `ringside-agent` binary.

mod support;

use serde_json::{Value, json};
use support::{agent, lines, scenario};

fn data(event: &Value) -> &serde_json::Map<String, Value> {
    event["EventData"].as_object().expect("EventData object")
}

#[test]
fn replay_prints_one_sysmon_line_per_event_with_parent_and_stable_guid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenario.replay");
    std::fs::write(&path, scenario()).expect("write replay");
    let (code, stdout, stderr) = agent(&[
        "replay",
        path.to_str().expect("UTF-8 path"),
        "--no-enrich",
        "--machine-id",
        "0197231e",
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let events = lines(&stdout);
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["EventID"].as_u64().expect("EventID"))
        .collect();
    // The opened-only create and the first write have no Sysmon event.
    assert_eq!(ids, [1, 1, 7, 11, 1011, 23, 5]);
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["Seq"].as_u64().expect("Seq"))
        .collect();
    assert_eq!(seqs, [0, 1, 2, 3, 6, 7, 8]);

    let explorer = data(&events[0]);
    let cmd = data(&events[1]);
    assert_eq!(explorer["Image"], json!(r"C:\Windows\explorer.exe"));
    assert_eq!(explorer["ParentProcessId"], json!(4));
    assert_eq!(
        explorer["ParentImage"],
        json!("-"),
        "pid 4 was never seen created"
    );

    let cmd_guid = cmd["ProcessGuid"].as_str().expect("guid").to_owned();
    assert!(
        cmd_guid.starts_with("{0197231E-") && cmd_guid.ends_with('}') && cmd_guid.len() == 38,
        "{cmd_guid}"
    );
    let expected = json!({
        "RuleName": "-",
        "UtcTime": "2026-11-21 10:15:30.123",
        "ProcessGuid": cmd_guid,
        "ProcessId": 2000,
        "Image": r"C:\Windows\System32\cmd.exe",
        "FileVersion": "-", "Description": "-", "Product": "-", "Company": "-", "OriginalFileName": "-",
        "CommandLine": r#""C:\Windows\system32\cmd.exe" /c echo hi > C:\Temp\a.txt"#,
        // Read from the live process only; a replay has none to read.
        "CurrentDirectory": "-",
        "User": "S-1-5-21-1-2-3-1001",
        // The scenario's logon session (support::SCENARIO_LOGON_ID).
        "LogonGuid": "{0197231E-0000-0000-E39A-520000000000}",
        "LogonId": "0x529ae3",
        "IntegrityLevel": "High",
        "Hashes": "-",
        "ParentProcessGuid": explorer["ProcessGuid"],
        "ParentProcessId": 1000,
        "ParentImage": r"C:\Windows\explorer.exe",
        "ParentCommandLine": r"C:\Windows\Explorer.EXE",
        "ParentUser": "S-1-5-21-1-2-3-1001",
    });
    assert_eq!(&Value::Object(cmd.clone()), &expected);
    assert_ne!(explorer["ProcessGuid"], json!(cmd_guid));

    let load = data(&events[2]);
    assert_eq!(
        load["ImageLoaded"],
        json!(r"C:\Windows\System32\kernel32.dll")
    );
    assert_eq!(load["Signed"], json!("true"));
    let create = data(&events[3]);
    assert_eq!(create["TargetFilename"], json!(r"C:\Temp\a.txt"));
    assert_eq!(create["CreationUtcTime"], json!("2026-11-21 10:15:30.125"));
    let rename = data(&events[4]);
    assert_eq!(rename["SourceFilename"], json!(r"C:\Temp\a.txt"));
    assert_eq!(rename["TargetFilename"], json!(r"D:\b.txt"));
    let delete = data(&events[5]);
    assert_eq!(delete["TargetFilename"], json!(r"D:\b.txt"));
    let exit = data(&events[6]);
    assert_eq!(exit["UtcTime"], json!("2026-11-21 10:15:30.130"));
    // Every event of cmd.exe names the same process instance.
    for event in &events[1..] {
        assert_eq!(data(event)["ProcessGuid"], json!(cmd_guid), "{event}");
        assert_eq!(data(event)["ProcessId"], json!(2000));
        assert_eq!(data(event)["Image"], json!(r"C:\Windows\System32\cmd.exe"));
        assert_eq!(data(event)["User"], json!("S-1-5-21-1-2-3-1001"));
    }
}

#[test]
fn output_file_sink_and_platform_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenario.replay");
    std::fs::write(&path, scenario()).expect("write replay");
    let out = dir.path().join("events.jsonl");
    let target = format!("file:{}", out.display());
    let (code, stdout, stderr) = agent(&[
        "replay",
        path.to_str().expect("UTF-8"),
        "--output",
        &target,
        "--rotate-bytes",
        "1000",
        "--keep",
        "10",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty());
    let mut total = 0;
    assert!(
        dir.path().join("events.jsonl.2").exists(),
        "the output was rotated"
    );
    for n in 0..=10 {
        let name = if n == 0 {
            "events.jsonl".to_owned()
        } else {
            format!("events.jsonl.{n}")
        };
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
        total += lines(&text).len();
    }
    assert_eq!(total, 7, "all events across the rotated files");

    let (code, _, stderr) = agent(&["replay", "/nonexistent/x.replay"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/x.replay"), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );

    if !cfg!(windows) {
        let (code, _, stderr) = agent(&["run"]);
        assert_eq!(code, 2);
        assert!(stderr.contains("needs Windows"), "{stderr}");
    }
}

/// Two CPUs' lanes drained one after the other: the child's file event
/// (CPU 0) arrives ahead of its creation and its parent's (CPU 1). The
/// agent handles them in callback order, so the file event still names
/// the new process, and the sequence numbers (delivery order) show no gap.
#[test]
fn events_of_one_batch_are_handled_in_callback_order_across_lanes() {
    use ringside_agent::synth::{BatchBuilder, sid};
    use support::{at, create_explorer};

    let user = sid(5, &[21, 1, 2, 3, 1001]);
    let medium = sid(16, &[0x2000]);
    let mut b = BatchBuilder::new();
    // CPU 0's lane first: cmd's file create at +125 ms.
    b.file_create(at(2000, 125), r"\Device\HarddiskVolume3\Temp\a.txt", 2);
    // Then CPU 1's: explorer created at 0, cmd at +123 ms.
    create_explorer(&mut b, &user, &medium);
    b.process_create(
        at(2000, 123),
        1000,
        r"\??\C:\Windows\System32\cmd.exe",
        "cmd.exe /c echo hi > C:\\Temp\\a.txt",
        &user,
        &medium,
    );
    let replay = support::replay_of(&[b.take()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lanes.replay");
    std::fs::write(&path, replay).expect("write replay");

    let (code, stdout, stderr) = agent(&["replay", path.to_str().expect("UTF-8"), "--no-enrich"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let events = lines(&stdout);
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["EventID"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 1, 11], "callback order, no sequence-gap event");
    let seqs: Vec<u64> = events.iter().map(|e| e["Seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 0]);
    let cmd = data(&events[1]);
    let file = data(&events[2]);
    assert_eq!(file["Image"], json!(r"C:\Windows\System32\cmd.exe"));
    assert_eq!(file["ProcessGuid"], cmd["ProcessGuid"]);
    assert_eq!(cmd["ParentImage"], json!(r"C:\Windows\explorer.exe"));
}
