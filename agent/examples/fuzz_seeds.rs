//! Writes the fuzz seed corpus (generated with the wire encoder, never copied
//! from elsewhere): usage `fuzz_seeds DIR`.

use ringside_agent::source::writer::ReplayWriter;
use ringside_agent::synth::{BatchBuilder, VOLUME_MAP, sid};
use ringside_wire::replay::FrameKind;
use ringside_wire::{EventKind, Origin};

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "agent/fuzz/corpus/replay".into());
    std::fs::create_dir_all(&dir)?;
    let o = |pid, t: u64| Origin {
        pid,
        tid: 1,
        timestamp: 133_000_000_000_000_000 + t,
    };
    let mut b = BatchBuilder::new();
    b.process_create(
        o(100, 0),
        4,
        r"\??\C:\a.exe",
        "a.exe -x",
        &sid(5, &[18]),
        &sid(16, &[0x4000]),
    );
    b.image_load(
        o(100, 1),
        r"\Device\HarddiskVolume3\Windows\System32\ntdll.dll",
        1,
    );
    b.file_create(o(100, 2), r"\Device\HarddiskVolume3\t.txt", 2);
    b.file_rename(
        o(100, 3),
        r"\Device\HarddiskVolume3\t.txt",
        r"\Device\HarddiskVolume3\u.txt",
    );
    b.file_delete(o(100, 4), r"\Device\HarddiskVolume3\u.txt");
    b.named_pipe(
        o(100, 4),
        ringside_wire::PIPE_OP_CONNECTED,
        r"\Device\NamedPipe\MSSE-1234-server",
    );
    b.skip(3);
    let mut dropped = [0; ringside_wire::EVENT_KIND_COUNT];
    dropped[EventKind::ProcessCreate.index()] = 1;
    dropped[EventKind::FileCreate.index()] = 2;
    b.lost(o(0, 5), dropped);
    b.process_exit(o(100, 6), 0);
    let batch = b.take();
    let mut seed = Vec::new();
    let mut w = ReplayWriter::new(&mut seed, 0)?;
    w.frame(FrameKind::VolumeMap, 0, VOLUME_MAP)?;
    w.batch(0, &batch)?;
    w.stats(
        0,
        &ringside_wire::ioctl::StatsResponse {
            size: 288,
            abi_version: ringside_wire::ABI_VERSION,
            ..Default::default()
        },
    )?;
    w.finish()?;
    std::fs::write(format!("{dir}/scenario"), &seed)?;
    std::fs::write(format!("{dir}/header-only"), &seed[..32])?;
    let mut small = Vec::new();
    ringside_agent::synth::realistic(&mut small, 200, 0)?;
    std::fs::write(format!("{dir}/realistic-200"), &small)?;
    eprintln!("wrote 3 seeds to {dir}");
    Ok(())
}
