//! A remote thread is Sysmon's event 8, key for key, with the values
//! Sysmon would write: source and target from the process table,
//! `StartAddress` as `0x` and 16 upper-case hex digits, `StartModule` the
//! image the agent saw loaded at that address in the target, and
//! `StartFunction` the export of that image's file at exactly that address.
//! SigmaHQ has no Sysmon 8 sample, so the keys are checked against the
//! event's definition in Sysmon's schema (`sysmon -s`, event 8), written
//! out here independently of the content crate's table. The first thread of
//! a new process, which its creator starts and the driver therefore sees as
//! a thread in another process, is not reported (Sysmon does not either).

mod support;

use std::path::Path;

use ringside_agent::synth::{BatchBuilder, sid};
use support::{agent, assert_sysmon_keys, at, create_explorer, lines, replay_of};

/// Sysmon's schema, event 8 (CreateRemoteThread), in its order.
const SYSMON_8: [&str; 14] = [
    "RuleName",
    "UtcTime",
    "SourceProcessGuid",
    "SourceProcessId",
    "SourceImage",
    "TargetProcessGuid",
    "TargetProcessId",
    "TargetImage",
    "NewThreadId",
    "StartAddress",
    "StartModule",
    "StartFunction",
    "SourceUser",
    "TargetUser",
];

/// A real PE with a real export table: Wine's kernel32.dll (Wine is a
/// test dependency of this repository: `cargo xtask wine`).
const KERNEL32: &str = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/kernel32.dll";
const BASE: u64 = 0x7ffb_9e00_0000;

#[test]
fn a_remote_thread_is_sysmon_event_8_key_for_key_and_fires_its_rule() {
    if cfg!(windows) {
        return; // --files-root maps DOS paths only off Windows.
    }
    let bytes = std::fs::read(KERNEL32)
        .unwrap_or_else(|e| panic!("{KERNEL32}: {e} (install Wine: apt-get install wine64)"));
    let image = ringside_agent::enrich::pe::Image::parse(&bytes).expect("a PE");
    let exports = ringside_agent::enrich::pe::exports(&image);
    let (rva, _) = exports
        .iter()
        .find(|(_, name)| name == "LoadLibraryW")
        .expect("kernel32 exports LoadLibraryW");
    let size = u64::from(exports.iter().map(|(r, _)| *r).max().expect("exports")) + 0x1000;
    let root = tempfile::tempdir().expect("tempdir");
    let system32 = root.path().join("C/Windows/System32");
    std::fs::create_dir_all(&system32).expect("mkdir");
    std::fs::write(system32.join("kernel32.dll"), &bytes).expect("write");

    let user = sid(5, &[21, 1_004_336_348, 1_177_238_915, 682_003_330, 1001]);
    let system = sid(5, &[18]);
    let (medium, high) = (sid(16, &[0x2000]), sid(16, &[0x4000]));
    let mut b = BatchBuilder::new();
    create_explorer(&mut b, &user, &medium);
    b.process_create(
        at(636, 1),
        4,
        r"\Device\HarddiskVolume3\Windows\System32\lsass.exe",
        r"C:\Windows\system32\lsass.exe",
        &system,
        &sid(16, &[0x4000]),
    );
    b.process_create(
        at(2000, 2),
        1000,
        r"\Device\HarddiskVolume3\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        "powershell",
        &user,
        &high,
    );
    b.image_load_at(
        at(636, 3),
        r"\Device\HarddiskVolume3\Windows\System32\kernel32.dll",
        BASE,
        size,
        0,
    );
    let start = BASE + u64::from(*rva);
    // PowerShell (thread 2001) starts LoadLibraryW in lsass.
    b.remote_thread(at(2000, 10), 636, 7208, Some(start));
    // Shellcode outside any image; then an address the driver could not
    // query.
    b.remote_thread(at(2000, 11), 636, 7212, Some(0x1e0_b4ed_0000));
    b.remote_thread(at(2000, 12), 636, 7216, None);
    // PowerShell's thread 2001 creates notepad (3000) and so starts its
    // first thread: not reported. A later thread it starts there is.
    b.process_create_by_thread(
        at(3000, 20),
        2000,
        2001,
        r"\Device\HarddiskVolume3\Windows\System32\notepad.exe",
        &user,
        &high,
    );
    b.remote_thread(at(2000, 21), 3000, 3004, Some(0x7ff6_1000_1000));
    b.remote_thread(at(2000, 22), 3000, 3008, Some(0x7ff6_1000_2000));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.replay");
    std::fs::write(&path, replay_of(&[b.take()])).expect("write");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sigma/rules/windows/create_remote_thread");
    let (code, stdout, stderr) = agent(&[
        "replay",
        path.to_str().expect("UTF-8"),
        "--files-root",
        root.path().to_str().expect("UTF-8"),
        "--rules",
        rules.to_str().expect("UTF-8"),
        "--lenient-rules",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&stdout);
    let threads: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["EventID"] == 8 && e.get("Alert").is_none())
        .collect();
    assert_eq!(threads.len(), 4, "{stdout}");
    let loaded = &threads[0]["EventData"];
    assert_sysmon_keys(&stdout, 8, &SYSMON_8);
    let source = events
        .iter()
        .find(|e| e["EventID"] == 1 && e["EventData"]["ProcessId"] == 2000)
        .expect("powershell's process create");
    let target = events
        .iter()
        .find(|e| e["EventID"] == 1 && e["EventData"]["ProcessId"] == 636)
        .expect("lsass's process create");
    assert_eq!(loaded["SourceProcessId"], 2000);
    assert_eq!(loaded["TargetProcessId"], 636);
    assert_eq!(loaded["NewThreadId"], 7208);
    assert_eq!(
        loaded["SourceImage"],
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    );
    assert_eq!(loaded["TargetImage"], r"C:\Windows\System32\lsass.exe");
    assert_eq!(
        loaded["SourceProcessGuid"],
        source["EventData"]["ProcessGuid"]
    );
    assert_eq!(
        loaded["TargetProcessGuid"],
        target["EventData"]["ProcessGuid"]
    );
    assert_eq!(loaded["SourceUser"], source["EventData"]["User"]);
    assert_eq!(loaded["TargetUser"], target["EventData"]["User"]);
    assert_ne!(loaded["SourceUser"], loaded["TargetUser"]);
    assert_eq!(loaded["StartAddress"], format!("0x{start:016X}"));
    assert_eq!(loaded["StartModule"], r"C:\Windows\System32\kernel32.dll");
    assert_eq!(loaded["StartFunction"], "LoadLibraryW");
    let shellcode = &threads[1]["EventData"];
    assert_eq!(shellcode["StartAddress"], "0x000001E0B4ED0000");
    assert_eq!(
        (&shellcode["StartModule"], &shellcode["StartFunction"]),
        (&"-".into(), &"-".into())
    );
    assert_eq!(threads[2]["EventData"]["StartAddress"], "-");
    assert_eq!(
        threads[3]["EventData"]["NewThreadId"], 3008,
        "the first thread of notepad is not reported"
    );
    // SigmaHQ's PowerShell-into-lsass rule fires on the first three.
    let alerts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["Alert"]["RuleId"] == "fb656378-f909-47c1-8747-278bf09f4f4f")
        .collect();
    assert_eq!(alerts.len(), 3, "{stdout}");
}
