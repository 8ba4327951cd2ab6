//! `cargo xtask bench <what>`.

use crate::cmd::{cargo, run};

/// `bench content`: the content engine against sigma-rust (optimised build).
pub fn run_bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("content") => run(cargo().args(["bench", "-p", "ringside-content", "--bench", "content"])),
        Some(other) => Err(format!("unknown benchmark `{other}` (known: content)")),
        None => Err("usage: cargo xtask bench content".into()),
    }
}
