//! Builds `ringside.sys` exactly as `cargo xtask package` does (package
//! `ringside-driver`, bin `ringside`, target x86_64-pc-windows-msvc, profile
//! `driver`), into a separate target directory so it does not contend for
//! the lock of the `cargo test` that runs us. Built once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const TARGET: &str = "x86_64-pc-windows-msvc";
pub const PROFILE: &str = "driver";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The image bytes, or why it could not be built. `RINGSIDE_SYS` names a
/// prebuilt image instead (e.g. one from `cargo xtask package`).
pub fn ringside_sys() -> Result<&'static [u8], String> {
    static IMAGE: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("RINGSIDE_SYS") {
                return std::fs::read(&path).map_err(|e| {
                    format!(
                        "reading RINGSIDE_SYS={}: {e}",
                        PathBuf::from(path).display()
                    )
                });
            }
            build()
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// Where [`ringside_sys`] reads the image from: `RINGSIDE_SYS`, or the
/// build output (its `ringside.pdb` lies next to it).
pub fn ringside_sys_path() -> PathBuf {
    match std::env::var_os("RINGSIDE_SYS") {
        Some(path) => PathBuf::from(path),
        None => target_dir().join(TARGET).join(PROFILE).join("ringside.exe"),
    }
}

fn target_dir() -> PathBuf {
    workspace_root().join("target").join("kmodel")
}

fn build() -> Result<Vec<u8>, String> {
    let root = workspace_root();
    let target_dir = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "-p",
            "ringside-driver",
            "--bin",
            "ringside",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .map_err(|e| format!("could not run cargo to build ringside.sys: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building ringside.sys failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let exe = ringside_sys_path();
    std::fs::read(&exe).map_err(|e| format!("reading {}: {e}", exe.display()))
}
