//! The logon session end to end: the kernel model's token carries a LUID the
//! scenario chose; the real ringside.sys, emulated, copies it
//! (`SeQueryAuthenticationIdToken`: the token's `AuthenticationId`); the
//! agent writes it as Sysmon's
//! `LogonId` and `LogonGuid`, and SigmaHQ's WmiPrvSE rule (which filters on
//! `LogonId: '0x3e7'` and on a null `LogonId`) decides on it. A failed
//! logon session query loses no event: the event says `-`, and the
//! driver's counters still balance.

mod support;

use ringside_kmodel::agent::connected;
use ringside_kmodel::demo::{Batch, replay_file};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::scenario::{
    ProcessSpec, SYSTEM_LOGON_ID, USER_LOGON_ID, domain_sid, integrity_sid,
};
use ringside_wire::ioctl::ConfigureRequest;
use serde_json::{Value, json};
use support::{agent, lines};

/// SigmaHQ's rule, from the shared snapshot (not copied into the repo).
const WMIPRVSE_RULE: &str = "proc_creation_win_wmiprvse_spawning_process.yml";

/// S-1-5-`rid` (a well-known account: 18 SYSTEM, 20 NETWORK SERVICE).
fn nt_authority(rid: u8) -> Vec<u8> {
    vec![1, 1, 0, 0, 0, 0, 0, 5, rid, 0, 0, 0]
}

/// NETWORK SERVICE's logon session (`NETWORKSERVICE_LUID`, winnt.h).
const NETWORK_SERVICE_LOGON_ID: u64 = 0x3e4;

fn spawn(pid: u32, parent: u32, image: &str, user: Vec<u8>, logon_id: u64) -> ProcessSpec {
    ProcessSpec {
        pid,
        parent_pid: parent,
        creating_pid: parent,
        creating_tid: parent + 4,
        image: format!(r"\??\C:\Windows\System32\{image}"),
        command_line: image.rsplit('\\').next().unwrap_or(image).into(),
        user_sid: user,
        integrity_sid: integrity_sid(0x4000),
        logon_id,
        admin: true,
    }
}

#[test]
fn the_scenarios_logon_session_arrives_as_logon_id_and_a_failed_query_as_a_dash() {
    let sys = ringside_sys().expect("build ringside.sys");
    let config = ConfigureRequest {
        batch_bytes: 64 * 1024,
        max_latency_ms: 50,
        ..ConfigureRequest::default()
    };
    let (mut m, h) = connected(sys, &config).expect("session");
    let started_at = m.kernel().clock;
    let user = domain_sid(1001);
    // WmiPrvSE as NETWORK SERVICE, then three children.
    let wmi = spawn(
        700,
        600,
        r"wbem\WmiPrvSE.exe",
        nt_authority(20),
        NETWORK_SERVICE_LOGON_ID,
    );
    let in_user_session = spawn(
        701,
        700,
        r"WindowsPowerShell\v1.0\powershell.exe",
        user.clone(),
        USER_LOGON_ID,
    );
    let as_system = spawn(702, 700, "cmd.exe", nt_authority(18), SYSTEM_LOGON_ID);
    let unknown_session = spawn(
        703,
        700,
        r"WindowsPowerShell\v1.0\powershell.exe",
        user,
        USER_LOGON_ID,
    );
    for spec in [&wmi, &in_user_session, &as_system] {
        m.process_create(spec).expect("process create");
    }
    // Fail the logon session query (SeQueryAuthenticationIdToken).
    let next = m
        .kernel()
        .faults
        .seen
        .get("SeQueryAuthenticationIdToken")
        .copied()
        .unwrap_or(0);
    m.kernel_mut().faults.fail = Some(("SeQueryAuthenticationIdToken".into(), next));
    m.process_create(&unknown_session).expect("process create");
    assert_eq!(
        m.kernel().faults.injected,
        1,
        "the logon session was queried"
    );
    m.kernel_mut().faults.fail = None;
    m.assert_clean();

    let batches: Vec<Batch> = m
        .drain(h)
        .expect("drain")
        .into_iter()
        .map(|bytes| Batch {
            completed_at: started_at,
            bytes,
        })
        .collect();
    let stats = m.stats(h).expect("stats");
    // No event lost to the failed query: produced == delivered + dropped.
    let s = stats.stats;
    for kind in 0..ringside_wire::EVENT_KIND_COUNT {
        assert_eq!(
            s.produced[kind],
            s.delivered[kind] + s.dropped[kind],
            "kind {kind}"
        );
    }
    let pc = ringside_wire::EventKind::ProcessCreate.index();
    assert_eq!((s.produced[pc], s.delivered[pc], s.dropped[pc]), (4, 4, 0));
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("logon.replay");
    std::fs::write(&file, replay_file(started_at, &batches, &stats)).expect("write replay");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sigma/rules/windows/process_creation")
        .join(WMIPRVSE_RULE);
    std::fs::copy(&shared, rules.join(WMIPRVSE_RULE)).expect("SigmaHQ rule in the shared data");
    let (code, stdout, stderr) = agent(&[
        "replay",
        file.to_str().expect("UTF-8"),
        "--no-enrich",
        "--machine-id",
        "5aa13a44",
        "--rules",
        rules.to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let events = lines(&stdout);

    let created = |pid: u32| -> &Value {
        let found: Vec<&Value> = events
            .iter()
            .filter(|e| {
                e.get("Alert").is_none()
                    && e["EventID"] == 1
                    && e["EventData"]["ProcessId"] == json!(pid)
            })
            .collect();
        assert_eq!(found.len(), 1, "one event 1 for {pid}: {stdout}");
        &found[0]["EventData"]
    };
    for (spec, logon_id, logon_guid) in [
        (&wmi, "0x3e4", "{5AA13A44-0000-0000-E403-000000000000}"),
        (
            &in_user_session,
            "0x7e2aa",
            "{5AA13A44-0000-0000-AAE2-070000000000}",
        ),
        (
            &as_system,
            "0x3e7",
            "{5AA13A44-0000-0000-E703-000000000000}",
        ),
        // The query failed: Sysmon's rendering of a value it lacks.
        (&unknown_session, "-", "-"),
    ] {
        let data = created(spec.pid);
        assert_eq!(
            (&data["LogonId"], &data["LogonGuid"]),
            (&json!(logon_id), &json!(logon_guid)),
            "pid {}",
            spec.pid
        );
        // The rest of the event is there either way.
        assert!(
            data["Image"]
                .as_str()
                .is_some_and(|i| i.ends_with(spec.image.rsplit('\\').next().unwrap_or("?"))),
            "{data}"
        );
    }
    // The scenario chose the LUIDs the agent printed.
    assert_eq!(format!("{USER_LOGON_ID:#x}"), "0x7e2aa");
    assert_eq!(format!("{SYSTEM_LOGON_ID:#x}"), "0x3e7");

    // The rule fires for the child in a user's session only: the SYSTEM
    // session (LogonId 0x3e7) and the unknown one (a null LogonId) are its
    // filters.
    let alerted: Vec<&Value> = events
        .iter()
        .filter(|e| e.get("Alert").is_some())
        .map(|e| &e["EventData"]["ProcessId"])
        .collect();
    assert_eq!(alerted, [&json!(in_user_session.pid)], "{stdout}");
}
