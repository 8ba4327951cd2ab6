//! `cargo xtask bench ring`: the ring's comparison table and criterion runs.

use crate::cmd::{cargo, run};

/// Runs a benchmark suite by name.
pub fn run_bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
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
        _ => Err("usage: cargo xtask bench ring [criterion args]".to_string()),
    }
}
