//! The agent on a file recorded by the kernel model's demo (what
//! `cargo xtask demo --record F` writes): the real ringside.sys, emulated,
//! observed the scenario; `ringside-agent replay F` must print one Sysmon
//! line per event whose fields equal what the driver was given, with parents
//! from the process table and one ProcessGuid per process.

mod support;

use std::collections::HashMap;

use ringside_kmodel::demo::{DRIVE, PAYLOAD, VOLUME, encoded_command, run_demo};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_wire::replay::{FrameKind, Frames};
use ringside_wire::{RawField, Record, Records};
use serde_json::{Value, json};
use support::{agent, lines};

/// The DOS path Sysmon shows for an NT path: under the demo's volume, or in
/// the `\??\C:\...` form process image names come in.
fn dos(field: RawField<'_>) -> String {
    let nt: String = field.chars().collect();
    if let Some(rest) = nt.strip_prefix(VOLUME) {
        return format!("{DRIVE}{rest}");
    }
    nt.strip_prefix(r"\??\").map(str::to_owned).unwrap_or(nt)
}

#[test]
fn agent_replays_the_demo_recording_into_the_scenarios_events() {
    let sys = ringside_sys().expect("build ringside.sys");
    let demo = run_demo(sys, None).expect("demo runs");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("demo.replay");
    std::fs::write(&file, &demo.replay).expect("write replay");

    let (code, stdout, stderr) = agent(&["replay", file.to_str().expect("UTF-8"), "--no-enrich"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let events = lines(&stdout);

    // What the driver delivered, decoded independently of the agent.
    let (_, frames) = Frames::new(&demo.replay).expect("replay header");
    let mut creates = Vec::new();
    let mut renames = Vec::new();
    for frame in frames
        .map(|f| f.expect("frame"))
        .filter(|f| f.kind == FrameKind::Batch)
    {
        for record in Records::new(frame.payload) {
            match record.expect("decodes") {
                Record::ProcessCreate(e) => creates.push((
                    e.header.pid,
                    e.body.parent_pid,
                    dos(e.image_name()),
                    e.command_line().chars().collect::<String>(),
                )),
                Record::FileRename(e) => {
                    renames.push((e.header.pid, dos(e.old_name()), dos(e.new_name())))
                }
                _ => {}
            }
        }
    }
    assert_eq!(creates.len(), 4);

    let by_id = |id: u64| {
        events
            .iter()
            .filter(move |e| e["EventID"] == json!(id))
            .map(|e| &e["EventData"])
    };
    let process_events: Vec<&Value> = by_id(1).collect();
    assert_eq!(process_events.len(), creates.len());
    let image_of: HashMap<u32, (&str, &str)> = creates
        .iter()
        .map(|(pid, _, image, cmd)| (*pid, (image.as_str(), cmd.as_str())))
        .collect();
    let mut guid_of = HashMap::new();
    for ((pid, parent, image, command_line), event) in creates.iter().zip(&process_events) {
        assert_eq!(event["ProcessId"], json!(pid));
        assert_eq!(event["Image"], json!(image));
        assert_eq!(event["CommandLine"], json!(command_line));
        assert_eq!(event["ParentProcessId"], json!(parent));
        // Parents come from the process table when the parent was seen.
        let (parent_image, parent_cmd) = image_of.get(parent).copied().unwrap_or(("-", "-"));
        assert_eq!(event["ParentImage"], json!(parent_image), "{event}");
        assert_eq!(event["ParentCommandLine"], json!(parent_cmd), "{event}");
        guid_of.insert(*pid, event["ProcessGuid"].clone());
    }
    // The scenario's own words, as an anchor independent of the decoding above.
    let powershell = process_events
        .iter()
        .find(|e| e["ProcessId"] == json!(5120))
        .expect("powershell");
    assert_eq!(
        powershell["CommandLine"],
        json!(format!(
            "powershell.exe -nop -w hidden -enc {}",
            encoded_command(PAYLOAD)
        ))
    );
    assert_eq!(
        powershell["ParentImage"],
        json!(r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE")
    );

    // One ProcessGuid per process instance, on every event of that process,
    // and distinct between processes.
    let distinct: std::collections::HashSet<String> =
        guid_of.values().map(Value::to_string).collect();
    assert_eq!(distinct.len(), 4, "{guid_of:?}");
    for event in events.iter().filter(|e| e.get("Alert").is_none()) {
        let data = &event["EventData"];
        if let Some(pid) = data["ProcessId"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
        {
            if let Some(guid) = guid_of.get(&pid) {
                assert_eq!(&data["ProcessGuid"], guid, "{event}");
            }
        }
    }

    let rename_events: Vec<&Value> = by_id(1011).collect();
    assert_eq!(rename_events.len(), renames.len());
    for ((pid, old, new), event) in renames.iter().zip(rename_events) {
        assert_eq!(event["ProcessId"], json!(pid));
        assert_eq!(event["SourceFilename"], json!(old));
        assert_eq!(event["TargetFilename"], json!(new));
        assert!(new.ends_with(".locked"));
    }
    assert_eq!(by_id(5).count(), 4, "every process exits");
    assert_eq!(by_id(7).count(), 2, "two image loads");
    let deleted: Vec<&Value> = by_id(23).collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        deleted[0]["TargetFilename"],
        json!(r"C:\Users\alice\AppData\Local\Temp\vssadmin.exe")
    );
}
