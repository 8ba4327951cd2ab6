//! `cargo xtask test` and `cargo xtask miri`.

use crate::cmd::{cargo, run};

/// Every test CI runs, in order of cost.
pub fn run_all(_args: &[String]) -> Result<(), String> {
    run(cargo().args(["test", "--workspace", "--locked"]))?;
    // The agent's Windows-only code (device source, service, account
    // lookup) is type- and lint-checked from any host: clippy needs no linker.
    run(cargo().args([
        "clippy", "-p", "ringside-agent", "--target", "x86_64-pc-windows-msvc", "--", "-D", "warnings",
    ]))?;
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
