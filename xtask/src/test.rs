//! `cargo xtask test` and `cargo xtask miri`.

use std::process::Command;
use std::time::Instant;

use crate::cmd::{cargo, root, run};

/// Every test CI runs, in order of cost.
pub fn run_all(_args: &[String]) -> Result<(), String> {
    run(cargo().args(["test", "--workspace", "--locked"]))?;
    // The workspace lints (STYLE.md), on every host crate and test.
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The agent's Windows-only code (device source, service, account
    // lookup) is type- and lint-checked from any host: clippy needs no linker.
    run(cargo().args([
        "clippy",
        "-p",
        "ringside-agent",
        "--target",
        "x86_64-pc-windows-msvc",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The driver's Windows-only code, checked from any host.
    run(cargo().args([
        "clippy",
        "--locked",
        "--target",
        "x86_64-pc-windows-msvc",
        "-p",
        "ringside-driver",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Builds the release ringside.sys and runs the binary gate on it.
    let package = crate::package::run_package(&[])?;
    // What a Windows VM user runs (guide, scripts, WinDbg extension), checked
    // against that package.
    windows_tools(&package)?;
    // That package and the Windows agent, end to end under Wine.
    crate::wine::run_wine(&package)?;
    // The ring's loom models.
    loom()?;
    Ok(())
}

/// The multi-CPU kernel model's race scenarios (tests/src/races.rs) under
/// `--seeds N` schedules each, in a release build; `cargo xtask test` runs
/// a smaller budget (tests/tests/smp.rs, `CI_SEEDS`).
pub fn soak(args: &[String]) -> Result<(), String> {
    let seeds = match args {
        [] => 10_000,
        [flag, n] if flag == "--seeds" => n
            .parse::<u64>()
            .map_err(|e| format!("soak: --seeds {n}: {e}"))?,
        _ => return Err("usage: cargo xtask soak [--seeds N]".into()),
    };
    let started = Instant::now();
    run(cargo()
        .args([
            "test",
            "--locked",
            "--release",
            "-p",
            "ringside-kmodel",
            "--test",
            "smp",
            "--",
            "--nocapture",
        ])
        .env("RINGSIDE_SMP_SEEDS", seeds.to_string()))?;
    eprintln!(
        "soak: {seeds} schedules per scenario in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// The ring's loom models. They build in `target/loom` so `--cfg loom` does
/// not invalidate the normal build. LTO is switched off for this build: with
/// the workspace's `lto = true` release profile loom explores a single
/// interleaving and silently passes.
pub fn loom() -> Result<(), String> {
    let started = Instant::now();
    run(cargo()
        .args([
            "test",
            "--locked",
            "-p",
            "ringside-ring",
            "--test",
            "loom",
            "--release",
        ])
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", root().join("target/loom"))
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .env("LOOM_MAX_PREEMPTIONS", "3"))?;
    eprintln!("loom models: {:.0?}", started.elapsed());
    Ok(())
}

/// What a Windows VM user runs, checked against the package built here:
/// the WinDbg extension against ringside.pdb, the guide and the
/// PowerShell scripts against the package's names (docs/windows-vm.md).
pub fn windows_tools(package: &std::path::Path) -> Result<(), String> {
    let root = crate::cmd::root();
    crate::windbg_check::run(
        &root.join("tools/windbg/ringside.js"),
        &package.join("ringside.pdb"),
    )?;
    crate::guide_check::run(package)?;
    Ok(())
}

/// The ring and wire test suites under Miri (undefined behaviour, data races
/// on the ring's memory between real threads). Needs the nightly toolchain
/// with `miri` and `rust-src`; installs those components if missing. The
/// tests shrink their sizes and case counts under `cfg(miri)`.
/// Schedules the ring's stress tests run under with `cargo xtask miri`.
const STRESS_SEEDS: u32 = 24;

pub fn miri(_args: &[String]) -> Result<(), String> {
    // Installs nightly itself when missing (RUSTUP_AUTO_INSTALL=0 machines
    // would not), and its two components.
    run(Command::new("rustup").args([
        "toolchain",
        "install",
        "nightly",
        "--profile",
        "minimal",
        "--component",
        "miri,rust-src",
    ]))?;
    // `+nightly` is understood by the rustup proxy, not by the toolchain's cargo.
    let started = Instant::now();
    run(Command::new("cargo").current_dir(root()).args([
        "+nightly",
        "miri",
        "test",
        "-p",
        "ringside-wire",
        "-p",
        "ringside-ring",
    ]))?;
    // The threaded stress tests again, under many schedules: one seed
    // explores one interleaving, and the `Lost`-duty race (ring.rs,
    // `owe_lost`) showed on 1 seed in 10.
    run(Command::new("cargo")
        .current_dir(root())
        .env("MIRIFLAGS", format!("-Zmiri-many-seeds=0..{STRESS_SEEDS}"))
        .args([
            "+nightly",
            "miri",
            "test",
            "-p",
            "ringside-ring",
            "--test",
            "ring",
            "--",
            "lose_nothing_uncounted",
        ]))?;
    eprintln!("miri: {:.0?}", started.elapsed());
    Ok(())
}
