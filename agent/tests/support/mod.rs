//! Scripted replay files shared by the integration tests.

#![allow(dead_code, reason = "each test file uses a different part")]

use ringside_agent::source::writer::ReplayWriter;
use ringside_agent::synth::{BatchBuilder, VOLUME_MAP, sid};
use ringside_agent::time::filetime_from_unix;
use ringside_wire::Origin;
use ringside_wire::replay::FrameKind;

/// 2026-11-21 10:15:30 UTC.
pub const T0: u64 = filetime_from_unix(1_795_256_130);

pub fn at(pid: u32, ms: u64) -> Origin {
    Origin {
        pid,
        tid: pid + 1,
        timestamp: T0 + ms * 10_000,
    }
}

/// cmd's logon session in [`scenario`] (a real one from SigmaHQ's samples).
pub const SCENARIO_LOGON_ID: u64 = 0x0052_9ae3;

/// The scripted scenario: explorer (pid 1000, created in the file) starts
/// cmd (2000); cmd loads a DLL, creates, renames and deletes a file, exits.
pub fn scenario() -> Vec<u8> {
    let user = sid(5, &[21, 1, 2, 3, 1001]);
    let high = sid(16, &[0x3000]);
    let medium = sid(16, &[0x2000]);
    let mut b = BatchBuilder::new();
    create_explorer(&mut b, &user, &medium);
    b.process_create_in_session(
        at(2000, 123),
        1000,
        r"\??\C:\Windows\System32\cmd.exe",
        r#""C:\Windows\system32\cmd.exe" /c echo hi > C:\Temp\a.txt"#,
        &user,
        &high,
        Some(SCENARIO_LOGON_ID),
    );
    let first = b.take();
    b.image_load(
        at(2000, 124),
        r"\Device\HarddiskVolume3\Windows\System32\kernel32.dll",
        12,
    );
    b.file_create(at(2000, 125), r"\Device\HarddiskVolume3\Temp\a.txt", 2);
    b.file_create(
        at(2000, 126),
        r"\Device\HarddiskVolume3\Temp\opened-only.txt",
        1,
    );
    b.file_write(at(2000, 127), r"\Device\HarddiskVolume3\Temp\a.txt");
    b.file_rename(
        at(2000, 128),
        r"\Device\HarddiskVolume3\Temp\a.txt",
        r"\Device\HarddiskVolume4\b.txt",
    );
    b.file_delete(at(2000, 129), r"\Device\HarddiskVolume4\b.txt");
    b.process_exit(at(2000, 130), 0);
    let second = b.take();
    replay_of(&[first, second])
}

/// A replay file (in memory): this machine's volume map, then `batches`,
/// each a READ's worth of records.
pub fn replay_of(batches: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = ReplayWriter::new(&mut out, T0).expect("in-memory write");
    w.frame(FrameKind::VolumeMap, T0, VOLUME_MAP)
        .expect("write");
    for batch in batches {
        w.batch(T0, batch).expect("write");
    }
    w.finish().expect("write");
    out
}

/// Explorer (pid 1000, parent 4) created at `T0`.
pub fn create_explorer(b: &mut BatchBuilder, user: &[u8], integrity: &[u8]) {
    b.process_create(
        at(1000, 0),
        4,
        r"\Device\HarddiskVolume3\Windows\explorer.exe",
        r"C:\Windows\Explorer.EXE",
        user,
        integrity,
    );
}

/// Runs the agent binary with `args`; returns (exit code, stdout, stderr).
pub fn agent(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ringside-agent"))
        .args(args)
        .output()
        .expect("the agent binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    )
}

/// Parses JSON lines.
pub fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Names `TerminalSessionId` (line 10), which ringside does not provide
/// (the driver does not copy the session): the 21-versus-20 class of
/// content defect.
pub const FIELD_NOT_PROVIDED: &str = r#"title: needs a field the sensor lacks
id: 0e7c1d2b-3a4f-4b6c-8d9e-0f1a2b3c4d5e
status: test
level: high
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        TerminalSessionId: 2
    condition: selection
"#;

/// A process_creation rule that fires on `Image|endswith: '\{image}'`,
/// with a distinct id per `id`.
pub fn image_rule(id: u8, image: &str) -> String {
    format!(
        "title: {image} started
id: 5b0e3c55-0d1f-4d51-9d5b-1d2a3c4e5f{id:02x}
level: medium
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        Image|endswith: '\\{image}'
    condition: selection
"
    )
}

/// The EventData of the one ContentRejected (1005) in `lines`, and its
/// `Reason`; fails unless there is exactly one.
pub fn the_rejection(lines: &[serde_json::Value]) -> (&serde_json::Value, &str) {
    let rejected: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l.get("Alert").is_none() && l["EventID"] == 1005)
        .collect();
    assert_eq!(rejected.len(), 1, "one ContentRejected: {rejected:?}");
    let data = &rejected[0]["EventData"];
    (data, data["Reason"].as_str().expect("Reason"))
}

/// Writes the rule file `name` into `dir`.
pub fn write_rule(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write rule");
}

/// The first event `id` line of `stdout` has exactly Sysmon's `keys` in
/// its `EventData`, in Sysmon's order as written (a parsed map is sorted,
/// so the order is read from the line itself).
pub fn assert_sysmon_keys(stdout: &str, id: u16, keys: &[&str]) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!(r#"{{"EventID":{id},"#)))
        .unwrap_or_else(|| panic!("no event {id} line: {stdout}"));
    let event: serde_json::Value = serde_json::from_str(line).expect("JSON");
    let written: std::collections::BTreeSet<&str> = event["EventData"]
        .as_object()
        .expect("EventData")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        written,
        keys.iter().copied().collect(),
        "event {id} keys: {line}"
    );
    let at: Vec<usize> = keys
        .iter()
        .map(|k| line.find(&format!("\"{k}\":")).expect("key in line"))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "Sysmon's order: {line}");
}
