//! `cargo xtask bench driver`: instructions executed inside ringside.sys per
//! callback kind, in the kernel model (deterministic; see `ringside_kmodel::cost`).

use std::process::ExitCode;

use ringside_kmodel::cost::{RUNS, measure};
use ringside_kmodel::driver_image::ringside_sys;

fn main() -> ExitCode {
    match ringside_sys().and_then(measure) {
        Ok(costs) => {
            println!(
                "instructions inside ringside.sys per callback (mean of {RUNS}, modelled kernel APIs excluded)"
            );
            for c in costs {
                println!("  {:<36} {:>6}", c.callback, c.instructions);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench driver: {e}");
            ExitCode::FAILURE
        }
    }
}
