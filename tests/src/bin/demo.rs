//! `cargo xtask demo [--record FILE]`: the attack-like scenario through the
//! emulated ringside.sys, printed as a timeline; `--record` writes the
//! replay file `ringside-agent replay FILE` reads.

use std::path::PathBuf;
use std::process::ExitCode;

use ringside_kmodel::demo::{run_demo, timeline};
use ringside_kmodel::driver_image::ringside_sys;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let record = match args.as_slice() {
        [] => None,
        [flag, file] if flag == "--record" => Some(PathBuf::from(file)),
        _ => {
            eprintln!("usage: demo [--record FILE]");
            return ExitCode::FAILURE;
        }
    };
    let result = ringside_sys().and_then(|sys| run_demo(sys, record.as_deref()));
    match result.and_then(|demo| timeline(&demo.batches).map(|t| (demo, t))) {
        Ok((demo, text)) => {
            print!("{text}");
            let s = demo.stats.stats;
            println!(
                "{} READ batches; produced {} delivered {} dropped {}",
                demo.batches.len(),
                s.produced.iter().sum::<u64>(),
                s.delivered.iter().sum::<u64>(),
                s.dropped.iter().sum::<u64>()
            );
            if let Some(path) = record {
                println!(
                    "replay file: {} ({} bytes)",
                    path.display(),
                    demo.replay.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
