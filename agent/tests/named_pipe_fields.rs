//! Named pipes from the real driver to Sysmon 17 and 18: ringside.sys, run
//! in the kernel model, sees a Cobalt Strike beacon create its default SMB
//! pipe (`\MSSE-1234-server`) and a client connect to it; the agent turns
//! the two records into Sysmon's PipeEvent lines, key for key in Sysmon's
//! order, with the process fields from its process table, and SigmaHQ's
//! Cobalt Strike pipe rule fires on both. SigmaHQ has no Sysmon 17/18
//! sample, so the keys are checked against the events' definition in
//! Sysmon's schema (`sysmon -s`, PipeEvent), written out here
//! independently of the content crate's table.

mod support;

use std::path::Path;

use ringside_kmodel::agent::{connected, every_kind};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::file_io::Requestor;
use ringside_kmodel::scenario::{ProcessSpec, USER_LOGON_ID, domain_sid, integrity_sid};
use support::{agent, lines, replay_of};

/// Sysmon's schema, events 17 (Pipe Created) and 18 (Pipe Connected), in
/// its order.
const SYSMON_17_18: [&str; 8] = [
    "RuleName",
    "EventType",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "PipeName",
    "Image",
    "User",
];

/// SigmaHQ's `pipe_created_hktl_cobaltstrike.yml`.
const COBALT_STRIKE_RULE: &str = "d5601f8c-b26f-4ab0-9035-69e11a8d4ad2";

#[test]
fn a_beacons_pipe_is_sysmon_17_and_18_key_for_key_and_fires_the_cobalt_strike_rule() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    let process = |pid: u32, image: &str| ProcessSpec {
        pid,
        parent_pid: 4000,
        creating_pid: 4000,
        creating_tid: 4004,
        image: image.into(),
        command_line: image.into(),
        user_sid: domain_sid(1001),
        integrity_sid: integrity_sid(0x2000),
        logon_id: USER_LOGON_ID,
        admin: false,
    };
    m.process_create(&process(
        4100,
        r"\??\C:\Users\bob\AppData\Local\Temp\beacon.exe",
    ))
    .expect("beacon");
    m.process_create(&process(5200, r"\??\C:\Windows\System32\rundll32.exe"))
        .expect("client");
    let pipe = m.new_file_object(r"\Device\NamedPipe\MSSE-1234-server");
    m.pipe_create(
        Requestor {
            pid: 4100,
            tid: 4104,
        },
        pipe,
        0,
    )
    .expect("create");
    m.pipe_connect(
        Requestor {
            pid: 5200,
            tid: 5204,
        },
        pipe,
        0,
    )
    .expect("connect");
    // A pipe no rule names: logged, no alert.
    let other = m.new_file_object(r"\Device\NamedPipe\lsass");
    m.pipe_connect(
        Requestor {
            pid: 5200,
            tid: 5204,
        },
        other,
        0,
    )
    .expect("connect");
    m.assert_clean();
    let batches = m.drain(h).expect("drain");
    m.close_and_unload(h).expect("close and unload");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pipes.replay");
    std::fs::write(&path, replay_of(&batches)).expect("write");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sigma/rules/windows/pipe_created");
    let (code, stdout, stderr) = agent(&[
        "replay",
        path.to_str().expect("UTF-8"),
        "--no-enrich",
        "--rules",
        rules.to_str().expect("UTF-8"),
        "--lenient-rules",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&stdout);
    let pipes: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| (e["EventID"] == 17 || e["EventID"] == 18) && e.get("Alert").is_none())
        .collect();
    assert_eq!(pipes.len(), 3, "{stdout}");
    for (event, (id, event_type, pid, name, image)) in pipes.iter().zip([
        (
            17,
            "CreatePipe",
            4100,
            r"\MSSE-1234-server",
            r"C:\Users\bob\AppData\Local\Temp\beacon.exe",
        ),
        (
            18,
            "ConnectPipe",
            5200,
            r"\MSSE-1234-server",
            r"C:\Windows\System32\rundll32.exe",
        ),
        (
            18,
            "ConnectPipe",
            5200,
            r"\lsass",
            r"C:\Windows\System32\rundll32.exe",
        ),
    ]) {
        assert_eq!(event["EventID"], id, "{event}");
        let data = &event["EventData"];
        let keys: Vec<&str> = data
            .as_object()
            .expect("EventData")
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = SYSMON_17_18.to_vec();
        expected.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, expected, "event {id} keys");
        assert_eq!(data["EventType"], event_type);
        assert_eq!(data["ProcessId"], pid);
        assert_eq!(data["PipeName"], name);
        assert_eq!(data["Image"], image);
        let create = events
            .iter()
            .find(|e| e["EventID"] == 1 && e["EventData"]["ProcessId"] == pid)
            .expect("the process's create");
        assert_eq!(data["ProcessGuid"], create["EventData"]["ProcessGuid"]);
        assert_eq!(data["User"], create["EventData"]["User"]);
        assert_ne!(data["User"], "-");
        assert_ne!(data["UtcTime"], "-");
    }
    // Sysmon's order, in the lines as written (the parsed map is sorted).
    for id in [17, 18] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!(r#"{{"EventID":{id},"#)))
            .expect("a pipe event line");
        let at: Vec<usize> = SYSMON_17_18
            .iter()
            .map(|k| line.find(&format!("\"{k}\":")).expect("key in line"))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "Sysmon's order: {line}");
    }
    // The Cobalt Strike rule fires on the beacon's create and the connect
    // to it, not on the other pipe.
    let alerts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["Alert"]["RuleId"] == COBALT_STRIKE_RULE)
        .collect();
    assert_eq!(alerts.len(), 2, "{stdout}");
}
