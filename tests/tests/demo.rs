//! The demo scenario runs clean through the driver, and its replay file is
//! what the agent expects: header, volume map, every READ batch, final STATS.

use ringside_kmodel::demo::{PAYLOAD, encoded_command, run_demo, timeline};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_wire::replay::{FrameKind, Frames};
use ringside_wire::{EventKind, Record, RecordKind, Records};

#[test]
fn demo_runs_clean_and_records_a_valid_replay_file() {
    let sys = ringside_sys().expect("build ringside.sys");
    let demo = run_demo(sys, None).expect("demo");
    let (_, frames) = Frames::new(&demo.replay).expect("replay header");
    let frames: Vec<_> = frames.collect::<Result<_, _>>().expect("frames");
    assert_eq!(frames[0].kind, FrameKind::VolumeMap);
    assert_eq!(frames[0].payload, b"\\Device\\HarddiskVolume3\tC:\n");
    assert_eq!(frames.last().map(|f| f.kind), Some(FrameKind::Stats));
    let batches: Vec<&[u8]> = frames
        .iter()
        .filter(|f| f.kind == FrameKind::Batch)
        .map(|f| f.payload)
        .collect();
    assert_eq!(batches.len(), demo.batches.len());
    let mut count = [0u64; ringside_wire::EVENT_KIND_COUNT];
    let mut command_lines = Vec::new();
    for batch in batches {
        for record in Records::new(batch) {
            let record = record.expect("decodes");
            if let Record::ProcessCreate(e) = &record {
                command_lines.push(e.command_line().chars().collect::<String>());
            }
            match record.kind() {
                RecordKind::Event(kind) => count[kind.index()] += 1,
                other => panic!("unexpected {other:?} in the demo"),
            }
        }
    }
    // What the story does: 4 processes (WINWORD, powershell, rundll32,
    // vssadmin) start and exit, 2 images load, 6 files written (the DLL, 3
    // documents, the ransom note, the vssadmin copy), 3 renamed, 1 deleted.
    let expected = [
        (EventKind::ProcessCreate, 4),
        (EventKind::ProcessExit, 4),
        (EventKind::ImageLoad, 2),
        (EventKind::FileCreate, 6),
        // The agent does not ask for these (no Sysmon event consumes them),
        // so the driver does not produce them.
        (EventKind::FileWrite, 0),
        (EventKind::FileCloseModified, 0),
        (EventKind::FileRename, 3),
        (EventKind::FileDelete, 1),
    ];
    for (kind, n) in expected {
        assert_eq!(count[kind.index()], n, "{kind:?}");
    }
    assert_eq!(
        demo.stats.stats.delivered, count,
        "STATS delivered = what the replay holds"
    );
    assert!(command_lines.contains(&format!(
        "powershell.exe -nop -w hidden -enc {}",
        encoded_command(PAYLOAD)
    )));
    assert!(
        command_lines
            .iter()
            .any(|c| c == "vssadmin.exe delete shadows /all /quiet")
    );
    let text = timeline(&demo.batches).expect("timeline");
    assert!(text.contains(r"C:\Users\alice\Documents\thesis_final.docx -> C:\Users\alice\Documents\thesis_final.docx.locked"), "{text}");
}
