//! `cargo xtask bench <what>`: `content` (Sigma engine vs sigma-rust) and
//! `ring` (the ring's comparison table and criterion runs).

use crate::cmd::{cargo, run};

/// Runs a benchmark suite by name.
pub fn run_bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("content") => {
            run(cargo().args(["bench", "-p", "ringside-content", "--bench", "content"]))
        }
        Some("ring") => {
            // One bench binary prints the side-by-side table first (its own
            // timing loop, every workload in the same run), then runs the
            // criterion groups for the ring itself. Extra arguments go to
            // criterion (e.g. a filter, or `--quick`).
            let mut command = cargo();
            command.args(["bench", "-p", "ringside-ring", "--bench", "ring", "--"]);
            command.args(&args[1..]);
            run(&mut command)
        }
        // Deterministic instruction counts of the real driver in the
        // kernel model (not wall time).
        Some("driver") => run(cargo().args(["run", "--quiet", "-p", "ringside-kmodel", "--bin", "bench-driver"])),
        Some(other) => Err(format!(
            "unknown benchmark `{other}` (known: content, ring, driver)"
        )),
        None => Err("usage: cargo xtask bench content|ring|driver [criterion args]".into()),
    }
}
