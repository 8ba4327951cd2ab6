//! `cargo xtask demo [--record FILE]`: builds ringside.sys and runs the
//! kernel model's demo binary (`tests/src/bin/demo.rs`), which plays an
//! attack-like scenario through the emulated driver and prints the timeline.
//! The scenario and the replay writer are `ringside_kmodel::demo::run_demo`.

use crate::cmd::{cargo, run};

pub fn run_demo(args: &[String]) -> Result<(), String> {
    let mut command = cargo();
    command.args(["run", "--quiet", "-p", "ringside-kmodel", "--bin", "demo", "--"]);
    match args {
        [] => {}
        [flag, file] if flag == "--record" => {
            // The child runs in the workspace root: pass FILE relative to
            // where the user ran `cargo xtask`.
            let here = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
            command.arg(flag).arg(here.join(file));
        }
        _ => return Err("usage: cargo xtask demo [--record FILE]".into()),
    }
    run(&mut command)
}
