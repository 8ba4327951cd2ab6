//! `cargo xtask test` and `cargo xtask miri`.

use crate::cmd::{cargo, run};

/// Every test CI runs, in order of cost.
pub fn run_all(_args: &[String]) -> Result<(), String> {
    run(cargo().args(["test", "--workspace", "--locked"]))?;
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
    windows_tools(&package)?;
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
/// on the ring's memory). Needs the nightly toolchain with `miri` and
/// `rust-src`; installs those components if missing.
pub fn miri(_args: &[String]) -> Result<(), String> {
    run(std::process::Command::new("rustup").args([
        "+nightly",
        "component",
        "add",
        "miri",
        "rust-src",
    ]))?;
    // `+nightly` is understood by the rustup proxy, not by the toolchain's cargo.
    run(std::process::Command::new("cargo")
        .current_dir(crate::cmd::root())
        .args(["+nightly", "miri", "test", "-p", "ringside-wire"]))?;
    Ok(())
}
