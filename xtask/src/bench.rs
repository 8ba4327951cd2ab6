//! `cargo xtask bench agent`: the agent's stage throughput over a generated
//! replay of at least a million events (in `target/`).

use crate::cmd::{cargo, root, run};

pub fn run_bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("agent") => {
            let events = args.get(1).cloned().unwrap_or_else(|| "1000000".into());
            let file = root().join("target").join(format!("bench-agent-{events}.replay"));
            let file = file.to_str().ok_or("target path is not UTF-8")?.to_owned();
            run(cargo().args([
                "run", "--release", "--quiet", "-p", "ringside-agent", "--example", "bench", "--", &file, &events,
            ]))
        }
        _ => Err("usage: cargo xtask bench agent [EVENTS]".into()),
    }
}
