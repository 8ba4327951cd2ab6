//! Throughput of the agent's stages over one large generated replay, side by
//! side: read the file, decode, decode + process table, decode + table +
//! JSON into a sink that discards, and decode + call-trace resolution (the
//! per-process image table from the image loads, every process access's
//! frames resolved to `module+offset` as Sysmon's CallTrace); then the
//! Authenticode check of image files, cold (parse, digest, signature, per
//! file) and cached (the enricher's per-identity cache, per event). Run by
//! `cargo xtask bench agent`.
//!
//! usage: bench FILE [EVENTS]   (generates FILE if it does not exist)

use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use ringside_agent::call_trace::Modules;
use ringside_agent::enrich::authenticode::{Status, verify};
use ringside_agent::enrich::pe::Image;
use ringside_agent::enrich::{EnrichConfig, Enricher};
use ringside_agent::pipeline::{Config, Depth, Pipeline};
use ringside_agent::sink::Discard;
use ringside_agent::source::replay::ReplayReader;
use ringside_wire::replay::FrameKind;
use ringside_wire::{Record, Records};

fn open(path: &Path) -> ReplayReader<std::io::BufReader<std::fs::File>> {
    ReplayReader::open(path).unwrap_or_else(|e| {
        eprintln!("bench: {}: {e}", path.display());
        std::process::exit(2)
    })
}

/// Best of `runs` timings of `stage`, which returns (records, check value).
fn measure(runs: usize, mut stage: impl FnMut() -> (u64, u64)) -> (f64, u64, u64) {
    let mut best = f64::MAX;
    let mut result = (0, 0);
    for _ in 0..runs {
        let start = Instant::now();
        result = stage();
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, result.0, result.1)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first().map(Path::new) else {
        eprintln!("usage: bench FILE [EVENTS]");
        std::process::exit(2)
    };
    let events: u64 = args
        .get(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    if !path.exists() {
        let start = Instant::now();
        let file = std::fs::File::create(path).expect("create the replay file");
        let written = ringside_agent::synth::realistic(
            BufWriter::new(file),
            events,
            ringside_agent::time::filetime_from_unix(1_795_256_130),
        )
        .expect("write the replay file");
        eprintln!(
            "generated {} ({written} events) in {:.1} s",
            path.display(),
            start.elapsed().as_secs_f64()
        );
    }
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let runs = 3;

    let read = measure(runs, || {
        let mut reader = open(path);
        let (mut frames, mut sum) = (0u64, 0u64);
        while let Some(Ok(frame)) = reader.next_frame() {
            frames += 1;
            sum += frame.payload.len() as u64;
        }
        (frames, sum)
    });
    let decode = measure(runs, || {
        let mut reader = open(path);
        let (mut records, mut sum) = (0u64, 0u64);
        while let Some(Ok(frame)) = reader.next_frame() {
            if frame.kind != FrameKind::Batch {
                continue;
            }
            for record in Records::new(frame.payload).flatten() {
                records += 1;
                sum = sum.wrapping_add(record.header().seq);
            }
        }
        (records, sum)
    });
    let pipeline = |depth: Depth| {
        move || {
            let mut reader = open(path);
            let mut pipeline = Pipeline::new(Config {
                depth,
                enrich: EnrichConfig::none(),
                ..Config::default()
            });
            let mut sink = Discard::default();
            pipeline
                .replay(&mut reader, &mut sink, |_, _| {})
                .expect("discard cannot fail");
            (pipeline.counters.records, sink.bytes)
        }
    };
    let table = measure(runs, pipeline(Depth::TableOnly));
    let json = measure(runs, pipeline(Depth::Emit));
    // Call traces: what the pipeline does for them, alone beside decode.
    let mut traced = (0u64, 0u64);
    let traces = measure(runs, || {
        let mut reader = open(path);
        let mut modules = Modules::default();
        let (mut name, mut out) = (String::new(), String::new());
        let (mut events, mut frames, mut bytes) = (0u64, 0u64, 0u64);
        while let Some(Ok(frame)) = reader.next_frame() {
            if frame.kind != FrameKind::Batch {
                continue;
            }
            for record in Records::new(frame.payload).flatten() {
                let pid = record.header().pid;
                match record {
                    Record::ImageLoad(e)
                        if !ringside_agent::pipeline::is_driver_load(e.body.properties) =>
                    {
                        name.clear();
                        name.extend(e.image_name().chars());
                        modules.load(pid, e.body.image_base, e.body.image_size, &name);
                    }
                    Record::ProcessExit(_) => modules.forget(pid),
                    Record::ProcessAccess(e) => {
                        out.clear();
                        modules.write_trace(&mut out, pid, e.call_trace());
                        events += 1;
                        frames += e.call_trace().count() as u64;
                        bytes += out.len() as u64;
                    }
                    _ => {}
                }
            }
        }
        traced = (events, frames);
        (frames, bytes)
    });

    let records = decode.1;
    println!(
        "agent bench: {} ({:.1} MB, {records} records, best of {runs} runs, one core)",
        path.display(),
        bytes as f64 / 1e6
    );
    println!(
        "{:<34} {:>10} {:>14} {:>10}",
        "stage", "seconds", "events/s", "vs decode"
    );
    for (name, (secs, ..)) in [
        ("1 read file (frames only)", read),
        ("2 decode", decode),
        ("3 decode + process table", table),
        ("4 decode + table + JSON (discard)", json),
        ("5 decode + call-trace resolution", traces),
    ] {
        println!(
            "{name:<34} {secs:>10.3} {:>14.0} {:>9.2}x",
            records as f64 / secs,
            secs / decode.0
        );
    }
    println!(
        "JSON output: {:.1} MB, {:.2}x the time of decode + table",
        json.2 as f64 / 1e6,
        json.0 / table.0
    );
    let resolving = (traces.0 - decode.0).max(1e-9);
    println!(
        "call traces: {} process accesses, {} frames ({:.1} MB of CallTrace); resolution alone {:.3} s, {:.0} frames/s",
        traced.0,
        traced.1,
        traces.2 as f64 / 1e6,
        resolving,
        traced.1 as f64 / resolving
    );
    let table_rate = records as f64 / table.0;
    println!(
        "targets: decode + table >= 1M events/s: {}; JSON within 3x of decode + table: {}",
        if table_rate >= 1e6 { "met" } else { "MISSED" },
        if json.0 / table.0 <= 3.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    authenticode(runs);
}

/// The Authenticode stage: signed images made here (osslsigncode and a
/// throwaway openssl certificate, as the tests do; `cargo xtask bench`
/// installs both), checked cold and through the enricher's cache.
fn authenticode(runs: usize) {
    let dir = std::env::temp_dir().join(format!("ringside-bench-sign-{}", std::process::id()));
    let result = authenticode_in(&dir, runs);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        println!("authenticode: not measured: {e}");
    }
}

fn authenticode_in(dir: &Path, runs: usize) -> Result<(), String> {
    let system32 = dir.join("C").join("Windows").join("System32");
    std::fs::create_dir_all(&system32).map_err(|e| format!("{}: {e}", system32.display()))?;
    let tool = |name: &str, args: &[&std::ffi::OsStr]| -> Result<(), String> {
        let out = std::process::Command::new(name)
            .args(args)
            .output()
            .map_err(|e| format!("{name}: {e} (install the Debian package {name})"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("{name}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    };
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    tool(
        "openssl",
        &[
            "req".as_ref(),
            "-x509".as_ref(),
            "-newkey".as_ref(),
            "rsa:2048".as_ref(),
            "-nodes".as_ref(),
            "-days".as_ref(),
            "2".as_ref(),
            "-subj".as_ref(),
            "/CN=Ringside Bench".as_ref(),
            "-keyout".as_ref(),
            key.as_os_str(),
            "-out".as_ref(),
            cert.as_os_str(),
        ],
    )?;
    let fixture = include_bytes!("../tests/data/pe/fixture64.exe");
    println!(
        "{:<34} {:>10} {:>14} {:>10}",
        "authenticode (signed PE32+)", "us/file", "MB/s", "status"
    );
    // The fixture, and the fixture with 1 MiB and 16 MiB of data after its
    // sections (hashed like any image byte): the cost is the digest's.
    for extra in [0usize, 1 << 20, 16 << 20] {
        let name = format!("signed-{extra}.dll");
        let unsigned = dir.join(format!("unsigned-{extra}.dll"));
        let mut bytes = fixture.to_vec();
        bytes.resize(bytes.len() + extra, 0x5a);
        std::fs::write(&unsigned, &bytes).map_err(|e| e.to_string())?;
        let signed = system32.join(&name);
        tool(
            "osslsigncode",
            &[
                "sign".as_ref(),
                "-h".as_ref(),
                "sha256".as_ref(),
                "-certs".as_ref(),
                cert.as_os_str(),
                "-key".as_ref(),
                key.as_os_str(),
                "-in".as_ref(),
                unsigned.as_os_str(),
                "-out".as_ref(),
                signed.as_os_str(),
            ],
        )?;
        let bytes = std::fs::read(&signed).map_err(|e| e.to_string())?;
        let iterations: u32 = if extra == 0 { 2000 } else { 20 };
        let (secs, ok, _) = measure(runs, || {
            let mut intact = 0;
            for _ in 0..iterations {
                let image = Image::parse(&bytes).expect("a PE");
                intact += u64::from(verify(&image).status == Status::Intact);
            }
            (intact, 0)
        });
        let per_file = secs / f64::from(iterations);
        println!(
            "{:<34} {:>10.1} {:>14.0} {:>10}",
            format!("cold, {:.2} MB", bytes.len() as f64 / 1e6),
            per_file * 1e6,
            bytes.len() as f64 / per_file / 1e6,
            if ok == u64::from(iterations) {
                "intact"
            } else {
                "BROKEN"
            }
        );
    }
    // Cached: the same image loaded again, as the pipeline asks the
    // enricher (a metadata call for the file's identity, then the cache).
    let mut enricher = Enricher::new(EnrichConfig {
        files_root: Some(dir.to_owned()),
        ..EnrichConfig::default()
    });
    let path = r"C:\Windows\System32\signed-0.dll";
    let first = enricher.file(path).ok_or("the signed file was not read")?;
    let lookups = 100_000u32;
    let (secs, signed, _) = measure(runs, || {
        let mut signed = 0;
        for _ in 0..lookups {
            let info = enricher.file(path).expect("cached");
            signed +=
                u64::from(info.signature.as_ref().map(|v| &v.status) == Some(&Status::Intact));
        }
        (signed, 0)
    });
    println!(
        "{:<34} {:>10.3} {:>14} {:>10}",
        "cached (same file identity)",
        secs / f64::from(lookups) * 1e6,
        "-",
        if signed == u64::from(lookups) && first.signature.is_some() {
            "intact"
        } else {
            "BROKEN"
        }
    );
    Ok(())
}
