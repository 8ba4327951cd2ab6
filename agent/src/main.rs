//! `ringside-agent`: see `ringside-agent --help`.

#![cfg_attr(not(windows), forbid(unsafe_code))]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ringside_agent::cli::Cli::parse();
    match ringside_agent::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ringside-agent: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
