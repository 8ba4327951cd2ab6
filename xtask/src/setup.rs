//! What a fresh machine lacks, installed by the project's own files: the
//! toolchain `rust-toolchain.toml` names (with its targets and components)
//! and the Debian packages the builds and tests use.
//!
//! Machines of this kind set `RUSTUP_AUTO_INSTALL=0`, so rustup installs
//! nothing on first use; a `cargo xtask` command must ask for it.

use std::process::Command;

use crate::cmd::{root, run};

/// `rustup toolchain install` with no toolchain named: rustup reads
/// `rust-toolchain.toml` and installs its channel, targets and components
/// (a no-op in ~30 ms when all are there).
pub fn toolchain() -> Result<(), String> {
    run(Command::new("rustup")
        .current_dir(root())
        // The rustup proxy that started `cargo xtask` sets this; with it set,
        // rustup installs the bare toolchain and skips the file's targets.
        .env_remove("RUSTUP_TOOLCHAIN")
        .args(["toolchain", "install"]))
}

/// A Debian package the project needs, and the file whose presence shows it
/// is installed.
pub struct Package {
    pub name: &'static str,
    pub provides: &'static str,
    pub why: &'static str,
}

/// `unicorn-engine` builds its C core with cmake (the kernel model).
pub const CMAKE: Package = Package {
    name: "cmake",
    provides: "/usr/bin/cmake",
    why: "unicorn-engine builds its C core with it (the kernel model)",
};

/// The ABI oracle's first header set and its compiler (tests/abi).
pub const MINGW: Package = Package {
    name: "gcc-mingw-w64-x86-64",
    provides: "/usr/bin/x86_64-w64-mingw32-gcc",
    why: "compiles the ABI oracle's offsetof tables for x64 Windows",
};

/// mingw-w64's DDK headers (wdm.h, ntifs.h).
pub const MINGW_HEADERS: Package = Package {
    name: "mingw-w64-x86-64-dev",
    provides: "/usr/x86_64-w64-mingw32/include/ddk/wdm.h",
    why: "the ABI oracle's first header set (ddk/wdm.h, ddk/ntifs.h)",
};

/// Wine's DDK headers, which also have fltkernel.h.
pub const WINE_HEADERS: Package = Package {
    name: "libwine-dev",
    provides: "/usr/include/wine/wine/windows/ddk/fltkernel.h",
    why: "the ABI oracle's second header set (wdm.h, ntifs.h, fltkernel.h)",
};

/// Wine, pinned to Debian bookworm's 8.0 (the Wine end-to-end test,
/// xtask/src/wine.rs; its gaps are filled for exactly this release).
pub const WINE64: Package = Package {
    name: "wine64=8.0~repack-4",
    provides: "/usr/lib/wine/wine64",
    why: "runs the packaged ringside.sys and the Windows agent end to end (Wine test)",
};

/// The `wine` launcher for WINE64.
pub const WINE_LAUNCHER: Package = Package {
    name: "wine=8.0~repack-4",
    provides: "/usr/bin/wine",
    why: "the `wine` command of the Wine end-to-end test",
};

/// What the Wine end-to-end test needs besides the kernel model's packages
/// (osslsigncode and openssl sign its trigger driver).
pub const WINE: &[&Package] = &[
    &WINE64,
    &WINE_LAUNCHER,
    &MINGW,
    &MINGW_HEADERS,
    &OSSLSIGNCODE,
    &OPENSSL,
];

/// The collector the fleet-delivery tests start (agent/tests/fleet_rsyslog.rs).
pub const RSYSLOG: Package = Package {
    name: "rsyslog",
    provides: "/usr/sbin/rsyslogd",
    why: "the collector the agent's network sinks are tested against",
};

/// rsyslog's RELP input (imrelp), with TLS.
pub const RSYSLOG_RELP: Package = Package {
    name: "rsyslog-relp",
    provides: "/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so",
    why: "imrelp: the collector's RELP/TLS input the agent's relp+tls sink is tested against",
};

/// rsyslog's OpenSSL network stream driver (syslog over TLS, imtcp).
pub const RSYSLOG_OPENSSL: Package = Package {
    name: "rsyslog-openssl",
    provides: "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so",
    why: "the ossl stream driver: the collector's syslog/TLS input the syslog+tls sink is tested against",
};

/// The independent signer of the Authenticode tests (agent/tests/authenticode.rs,
/// the Wine test's trigger driver, `package --sign`): files are signed in
/// the test, so no signed file is committed.
pub const OSSLSIGNCODE: Package = Package {
    name: "osslsigncode",
    provides: "/usr/bin/osslsigncode",
    why: "signs PE fixtures in the agent's Authenticode tests",
};

/// Makes the Authenticode tests' throwaway key and certificate.
pub const OPENSSL: Package = Package {
    name: "openssl",
    provides: "/usr/bin/openssl",
    why: "makes the throwaway signing certificate of the agent's Authenticode tests",
};

/// What `cargo xtask test`, `demo`, `bench` and `soak` need: the kernel
/// model's packages (Unicorn and the ABI oracle) and the collector.
pub const TESTS: &[&Package] = &[
    &CMAKE,
    &MINGW,
    &MINGW_HEADERS,
    &WINE_HEADERS,
    &RSYSLOG,
    &RSYSLOG_RELP,
    &RSYSLOG_OPENSSL,
    &OSSLSIGNCODE,
    &OPENSSL,
];

/// Installs every missing package with apt-get (root, as on CI and the
/// developer machines); says what is missing and why before it does.
pub fn debian(packages: &[&Package]) -> Result<(), String> {
    let missing: Vec<&Package> = packages
        .iter()
        .copied()
        .filter(|p| !std::path::Path::new(p.provides).exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    for p in &missing {
        eprintln!("missing Debian package {}: {}", p.name, p.why);
    }
    if !std::path::Path::new("/usr/bin/apt-get").exists() {
        let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
        return Err(format!(
            "no apt-get here: install {} with your package manager",
            names.join(" ")
        ));
    }
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(missing.iter().map(|p| p.name))
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
