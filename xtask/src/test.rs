//! `cargo xtask test` and `cargo xtask miri`.

use crate::cmd::{cargo, run};

/// Every test CI runs, in order of cost.
pub fn run_all(_args: &[String]) -> Result<(), String> {
    // The kernel model (tests/) builds Unicorn's C core with cmake.
    ensure_cmake()?;
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
    crate::package::run_package(&[])?;
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

/// Installs Debian's `cmake` when it is missing (needs root, as on CI and the
/// developer machines): `unicorn-engine` builds its C core with it.
fn ensure_cmake() -> Result<(), String> {
    let present = std::process::Command::new("cmake")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("cmake is missing; installing it with apt-get (needed to build unicorn-engine)");
    run(std::process::Command::new("apt-get").arg("update"))?;
    run(std::process::Command::new("apt-get").args(["install", "-y", "cmake"]))
}
