//! The decoder fuzz target's seed corpus (`crates/wire/fuzz/seeds/decode`):
//! real READ batches, encoded with `ringside_wire::encode` and drained
//! through the ring (so they carry seq numbers and a `Lost` record). This
//! test fails if the committed seeds drift from what the encoder produces;
//! `RINGSIDE_WRITE_FUZZ_SEEDS=1` rewrites them.
#![cfg(not(miri))]

use std::path::PathBuf;

use ringside_ring::Ring;
use ringside_wire::{
    DropReason, EventKind, Field, FileRename, ImageLoad, Origin, ProcessCreate, ProcessExit,
    encode, encoded_len,
};
use zerocopy::IntoBytes;

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn put<B: ringside_wire::record::Body>(
    ring: &Ring<'_>,
    kind: EventKind,
    body: B,
    fields: &[Field<'_>],
) {
    let len = encoded_len::<B>(fields).unwrap();
    let mut slot = ring.reserve(kind, len).unwrap();
    let origin = Origin {
        pid: 4242,
        tid: 17,
        timestamp: 133_000_000_000_000_000,
    };
    encode(slot.buffer(), origin, body, fields).unwrap();
    slot.commit();
}

fn batches() -> Vec<(&'static str, Vec<u8>)> {
    let mut memory = vec![0u64; Ring::MIN_CAPACITY / 8];
    let ring = Ring::new(memory.as_mut_bytes()).unwrap();
    let image = utf16(r"\Device\HarddiskVolume3\Windows\System32\cmd.exe");
    let cmd = utf16("cmd.exe /c whoami");
    let sid = [1u8, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
    let pc = ProcessCreate {
        parent_pid: 1000,
        ..Default::default()
    };
    put(
        &ring,
        EventKind::ProcessCreate,
        pc,
        &[
            Field::new(&image, 512),
            Field::new(&cmd, 8), // truncated
            Field::new(&sid, 68),
            Field::new(&sid, 68),
        ],
    );
    put(
        &ring,
        EventKind::ProcessExit,
        ProcessExit {
            exit_status: 0,
            _pad: 0,
        },
        &[],
    );
    let mut out = vec![0u8; 4096];
    let n = ring.drain_into(&mut out);
    let first = out[..n].to_vec();

    ring.drop_event(EventKind::ImageLoad, DropReason::Irql);
    let dll = utf16(r"\Windows\System32\ntdll.dll");
    put(
        &ring,
        EventKind::ImageLoad,
        ImageLoad {
            image_base: 0x7ff0_0000_0000,
            ..Default::default()
        },
        &[Field::new(&dll, 512)],
    );
    let old = utf16(r"\Users\a\x.txt");
    let new = utf16(r"\Users\a\y.txt");
    put(
        &ring,
        EventKind::FileRename,
        FileRename {
            information_class: 10,
            ..Default::default()
        },
        &[Field::new(&old, 512), Field::new(&new, 512)],
    );
    let n = ring.drain_into(&mut out);
    vec![
        ("process_create_exit", first),
        ("lost_image_rename", out[..n].to_vec()),
    ]
}

#[test]
fn committed_seeds_match_the_encoder() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wire/fuzz/seeds/decode");
    for (name, bytes) in batches() {
        let path = dir.join(format!("{name}.bin"));
        if std::env::var_os("RINGSIDE_WRITE_FUZZ_SEEDS").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert_eq!(
            committed,
            bytes,
            "{} is stale: rerun with RINGSIDE_WRITE_FUZZ_SEEDS=1",
            path.display()
        );
        assert!(
            ringside_wire::Records::new(&bytes).all(|r| r.is_ok()),
            "seeds decode"
        );
    }
}
