//! `cargo xtask`: everything beyond `cargo build`, run the same way by a
//! person and by CI (`.ci/run` calls `cargo xtask test`).

mod bench;
mod cmd;
mod demo;
mod gate;
mod guide_check;
mod inf_check;
mod package;
mod setup;
mod test;
mod windbg_check;
mod wine;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test      run every test: unit, property, loom models, driver clippy,
            the packaged driver's binary gate and the Wine end to end
            (what CI runs)
  package   build ringside.sys and gate it into target/package/
            (--sign: test-sign with osslsigncode and a generated certificate)
  wine      the packaged ringside.sys and the Windows agent end to end under
            Wine 8.0 (installs it; test-only gap shim in tests/wine/)
  windows-tools
            check tools/windbg/ringside.js against target/package/ringside.pdb
            and docs/windows-vm.md + tools/windows/*.ps1 against the package
            (run `cargo xtask package` first; `test` runs this too)
  miri      run the ring and wire tests under Miri (nightly)
  bench content   Sigma engine events/s vs sigma-rust (release build)
  bench agent [EVENTS]
            agent throughput per stage over a generated replay
  bench sinks [RECORDS]
            events/s and CPU per event: file sink beside RELP/TLS and
            syslog/TLS to a real rsyslog on 127.0.0.1 (~1M events)
  loom      run only the ring's loom models
  soak [--seeds N]
            the multi-CPU kernel model's race scenarios under N schedules
            each (default 10000; release build); prints schedules/second
  demo      an attack-like scenario through the emulated ringside.sys, as a
            timeline (--record FILE: write the replay file for the agent)
  bench driver [--profile]
            instructions executed inside ringside.sys per callback kind
            (--profile: and per function, inlined ones included, through
            llvm-symbolizer and ringside.pdb)
  bench ring  the ring against rtrb, crossbeam ArrayQueue and memcpy (table + criterion)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => {
            eprint!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    // Every command but help builds with the toolchain rust-toolchain.toml
    // names; the kernel model (tests/) and the fleet-delivery tests
    // (a real rsyslog) also need Debian packages.
    let setup = match command {
        "help" | "--help" | "-h" => Ok(()),
        "test" | "demo" | "bench" | "soak" | "wine" => {
            setup::toolchain().and_then(|()| setup::debian(setup::TESTS))
        }
        _ => setup::toolchain(),
    };
    if let Err(message) = setup {
        eprintln!("xtask: setting up: {message}");
        return ExitCode::FAILURE;
    }
    let result = match command {
        "test" => test::run_all(rest),
        "package" => package::run_package(rest).map(|_| ()),
        "miri" => test::miri(rest),
        "loom" => test::loom(),
        "soak" => test::soak(rest),
        "bench" => bench::run_bench(rest),
        "demo" => demo::run_demo(rest),
        "windows-tools" => test::windows_tools(&cmd::root().join("target").join("package")),
        "wine" => package::run_package(&[]).and_then(|package| wine::run_wine(&package)),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
