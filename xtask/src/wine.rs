//! `cargo xtask wine` (part of `cargo xtask test`): the packaged
//! `ringside.sys` and the Windows build of the agent, end to end under Wine.
//!
//! Wine 8.0 (Debian bookworm's packages) hosts kernel drivers in
//! `winedevice.exe`, a user process, so the unmodified driver runs there:
//! installed by its own INF, started as a service, opened by the agent over
//! `\\.\Ringside` with HELLO, CONFIGURE and overlapped READs — the IOCTL
//! path with no layout compensation of any kind. Test code fills Wine's
//! gaps (`tests/wine/`, never packaged; [`GAPS`] lists them). Wine runs no
//! process or file callbacks, but it calls image-load notify routines for
//! images loaded into the same `winedevice.exe`: each start of the
//! test-only trigger driver is one image-load record. Wine 8.0's ntoskrnl
//! sets `SystemModeImage` in `IMAGE_INFO.Properties` for it (and leaves
//! `ImageSignatureLevel` 0, unchecked), so the agent writes it as Sysmon 6
//! DriverLoad, as Windows would. The trigger is signed here with the
//! throwaway test certificate, and the agent's Authenticode check
//! (`WinVerifyTrust` under Wine, beside the portable parse) gives `Signed`
//! true, the certificate's name as `Signature`, and a `SignatureStatus`
//! that is not `Valid`: no store trusts that root.
//!
//! What it walks, each step checked: the INF install and driver start; the
//! console agent's events (Sysmon 6 with hashes checked against `md5sum`,
//! `sha256sum` and an independent imphash reader), Ctrl-C, and its
//! `--record` file replayed by the Linux agent; the agent killed and
//! restarted; the driver stopped and started under a running agent, with
//! the gap reported; the agent as a service (install, start, events, stop,
//! a failing start with its exit code and log text, uninstall).
//!
//! What it does not prove: process, file and thread-creation callbacks
//! (never fired by Wine: its PsSetCreateThreadNotifyRoutine and
//! PsRemoveCreateThreadNotifyRoutine are stubs that return success, so the
//! driver loads and unloads with no shim for them), IRQL and DPC behaviour (Wine's threads and the shim's DPC thread,
//! not Windows'), the device's access check (the shim's CREATE context is
//! an administrator's), the per-CPU lanes under preemption, the Application
//! event log (Wine's ReportEventW writes nowhere readable).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{cargo, root, run};

/// Wine's gaps and what `tests/wine/` does about each.
pub const GAPS: &[(&str, &str)] = &[
    (
        "ExAllocatePool2, IoCsqInitializeEx, IoCsqInsertIrpEx, KeQuerySystemTimePrecise missing",
        "the shim rebinds ringside.sys's imports to its own (pool + zero, the documented CSQ contract, KeQuerySystemTime)",
    ),
    (
        "Ex*RundownProtection, IoCsqRemoveNextIrp, SeTokenIsAdmin are stubs that raise",
        "rebound likewise",
    ),
    (
        "KeInsertQueueDpc never runs the DPC; KeCancelTimer waits for the timer's own DPC",
        "DPCs and timers run on the shim's DPC thread; cancelling never waits",
    ),
    (
        "FltRegisterFilter returns a dummy and FltMgr never unloads the filter",
        "the shim keeps the registration and unloads through FilterUnloadCallback (mandatory) at `net stop`",
    ),
    (
        "CREATE carries a NULL security context; IRP_MJ_CLEANUP is never sent",
        "the shim gives CREATE an administrator's context, and sends CLEANUP before CLOSE",
    ),
    (
        "IoDeleteDevice with a handle open, and the unload, free the device and the image at once",
        "the shim holds the deletion and the unload until the last CLOSE (new opens: STATUS_DELETE_PENDING), as Windows does",
    ),
    (
        "CmRegisterCallbackEx missing, CmUnRegisterCallback a stub; registry callbacks never fire",
        "the shim accepts the registration and its removal (the callback is exercised in the kernel model only)",
    ),
    (
        "ObRegisterCallbacks and ObUnRegisterCallbacks are FIXME stubs (success, a dummy handle); object callbacks never fire, RtlWalkFrameChain is a raising stub",
        "nothing to fill: the driver loads, registers and unregisters (the callbacks are exercised in the kernel model only)",
    ),
    (
        "a mingw-built driver's entry point is called as DllMain",
        "the shim and trigger return TRUE when called with their own base",
    ),
    (
        "bcryptprimitives.dll (ProcessPrng, imported by Rust's std) missing",
        "tests/wine/bcryptprimitives.c beside the agent, over RtlGenRandom",
    ),
];

/// The Wine release the test is pinned to (Debian bookworm).
const WINE_VERSION: &str = "wine-8.0";
/// The driver's service group: drivers of one group share a winedevice.exe.
const GROUP: &str = "FSFilter Activity Monitor";
const TRIGGER_IMAGE: &str = r"C:\windows\system32\drivers\ringside_trigger.sys";
const AGENT_DIR: &str = r"C:\ringside";

/// Runs the whole scenario against `package` (target/package).
pub fn run_wine(package: &Path) -> Result<(), String> {
    let started = Instant::now();
    crate::setup::debian(crate::setup::WINE)?;
    check_wine_version()?;
    let work = root().join("target").join("wine");
    let built = build(&work)?;
    let mut wine = Wine::new(&work)?;
    let result = unit_tests(&wine, &built).and_then(|unit| {
        let mut report = scenario(&mut wine, package, &built)?;
        report.insert(0, unit);
        Ok(report)
    });
    wine.shutdown();
    match result {
        Ok(report) => {
            println!(
                "\nWine end to end ({WINE_VERSION}): passed in {:.0?}",
                started.elapsed()
            );
            for line in report {
                println!("  {line}");
            }
            println!("  Wine gaps filled by test code (tests/wine/):");
            for (gap, fill) in GAPS {
                println!("    - {gap}: {fill}");
            }
            Ok(())
        }
        Err(error) => Err(format!(
            "Wine end to end: {error}\n  (Wine's log: {})",
            wine.log.display()
        )),
    }
}

fn check_wine_version() -> Result<(), String> {
    let out = Command::new("wine")
        .arg("--version")
        .output()
        .map_err(|e| format!("wine --version: {e}"))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !version.starts_with(WINE_VERSION) {
        return Err(format!(
            "the Wine test is pinned to {WINE_VERSION} (Debian bookworm), found {version:?}"
        ));
    }
    Ok(())
}

/// What the scenario installs into the prefix.
struct Built {
    agent: PathBuf,
    host_agent: PathBuf,
    shim: PathBuf,
    trigger: PathBuf,
    prng: PathBuf,
}

/// The Windows agent (x86_64-pc-windows-gnu, Debian's mingw-w64), the Linux
/// agent (to replay the recording) and the test-only Wine pieces.
fn build(work: &Path) -> Result<Built, String> {
    run(cargo().args([
        "build",
        "--locked",
        "-p",
        "ringside-agent",
        "--target",
        "x86_64-pc-windows-gnu",
    ]))?;
    run(cargo().args(["build", "--locked", "-p", "ringside-agent"]))?;
    let bin = work.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let src = root().join("tests").join("wine");
    let driver = |name: &str| -> Result<PathBuf, String> {
        let out = bin.join(format!("ringside_{name}.sys"));
        run(Command::new("x86_64-w64-mingw32-gcc")
            .args([
                "-I/usr/x86_64-w64-mingw32/include/ddk",
                "-O2",
                "-Wall",
                "-Wextra",
            ])
            .args(["-Werror", "-shared", "-nostdlib", "-nostartfiles"])
            .args(["-Wl,--subsystem,native", "-Wl,--entry,DriverEntry"])
            .args(["-Wl,--dynamicbase", "-o"])
            .arg(&out)
            .arg(src.join(format!("{name}.c")))
            .args(["-lntoskrnl", "-lntdll", "-lhal"]))?;
        Ok(out)
    };
    let shim = driver("wineshim")?;
    let trigger = driver("trigger")?;
    // Signed with the throwaway test certificate, so the agent's
    // Authenticode path on Windows (WinVerifyTrust, Wine's) meets a
    // signature whose root no store trusts.
    crate::package::test_sign(&work.join("cert"), &trigger)?;
    let prng = bin.join("bcryptprimitives.dll");
    run(Command::new("x86_64-w64-mingw32-gcc")
        .args(["-O2", "-Wall", "-Werror", "-shared", "-o"])
        .arg(&prng)
        .arg(src.join("bcryptprimitives.c"))
        .arg(src.join("bcryptprimitives.def"))
        .arg("-ladvapi32"))?;
    let target = root().join("target");
    Ok(Built {
        agent: target.join("x86_64-pc-windows-gnu/debug/ringside-agent.exe"),
        host_agent: target.join("debug/ringside-agent"),
        shim,
        trigger,
        prng,
    })
}

/// The agent's unit tests, built for Windows (windows-gnu) and run under
/// Wine in the fresh prefix, before any driver is installed: the
/// Windows-only ones (a live process's parameters block) and every
/// portable one on Windows's file semantics (a spool that renamed over a
/// file it still had open passed on Linux and failed here).
fn unit_tests(wine: &Wine, built: &Built) -> Result<String, String> {
    let t = Instant::now();
    let test = [
        "test",
        "--locked",
        "-p",
        "ringside-agent",
        "--lib",
        "--target",
        "x86_64-pc-windows-gnu",
    ];
    run(cargo().args(test).arg("--no-run"))?;
    // Rust's std imports ProcessPrng, which Wine 8.0 lacks (see GAPS).
    let deps = root().join("target/x86_64-pc-windows-gnu/debug/deps");
    std::fs::copy(&built.prng, deps.join("bcryptprimitives.dll"))
        .map_err(|e| format!("bcryptprimitives.dll -> {}: {e}", deps.display()))?;
    let mut command = cargo();
    wine.environment(&mut command);
    // Stderr to Wine's log, as for every Wine command: a Wine service a
    // test starts (the Authenticode test's catalog lookup can start one)
    // keeps the stderr it was started with, and winedevice.exe's DbgPrint
    // (the shim's "rebound" line, checked below) must land in the log.
    wine.log_stderr(&mut command);
    let out = command
        .args(test)
        .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", "wine")
        .output()
        .map_err(|e| format!("cargo test under Wine: {e}"))?;
    let said = String::from_utf8_lossy(&out.stdout);
    let summary = said
        .lines()
        .find(|l| l.starts_with("test result:"))
        .unwrap_or("no test summary")
        .to_owned();
    if !out.status.success() {
        return Err(format!(
            "the agent's unit tests failed under Wine ({}):\n{said}",
            out.status
        ));
    }
    Ok(format!(
        "agent unit tests (windows-gnu) under Wine: {summary} ({:.1?})",
        t.elapsed()
    ))
}

/// A Wine prefix of the test's own, with a persistent wineserver.
struct Wine {
    prefix: PathBuf,
    log: PathBuf,
}

impl Wine {
    fn new(work: &Path) -> Result<Wine, String> {
        let prefix = work.join("prefix");
        let log = work.join("wine.log");
        // A prefix from an earlier run may still have a wineserver.
        let wine = Wine {
            prefix: prefix.clone(),
            log: log.clone(),
        };
        if prefix.exists() {
            wine.shutdown();
            std::fs::remove_dir_all(&prefix).map_err(|e| format!("{}: {e}", prefix.display()))?;
        }
        std::fs::write(&log, "").map_err(|e| format!("{}: {e}", log.display()))?;
        let t = Instant::now();
        // The wineserver stays up for the whole scenario: services and the
        // drivers' winedevice.exe live as long as it does.
        wine.command("wineserver")
            .arg("-p")
            .status()
            .map_err(|e| format!("wineserver: {e}"))?;
        wine.wine(&["wineboot", "-i"])?;
        eprintln!(
            "wine: prefix {} made in {:.1?}",
            prefix.display(),
            t.elapsed()
        );
        Ok(wine)
    }

    fn drive_c(&self) -> PathBuf {
        self.prefix.join("drive_c")
    }

    /// A Wine command ([`Wine::environment`]); stderr goes to the log.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        self.environment(&mut command);
        self.log_stderr(&mut command);
        command
    }

    /// Appends `command`'s stderr to the log.
    fn log_stderr(&self, command: &mut Command) {
        if let Ok(log) = std::fs::OpenOptions::new().append(true).open(&self.log) {
            command.stderr(log);
        }
    }

    /// The prefix, a quiet debug channel (the shim's DbgPrint kept), no
    /// display, no input, and a UTF-8 locale: Wine maps Windows file names
    /// to Unix ones through the locale's charset, and under CI's bare
    /// environment (no LANG) a name with an `é` could not be created.
    fn environment(&self, command: &mut Command) {
        command
            .env("LC_ALL", "C.UTF-8")
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all,+debugstr")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
            .stdin(Stdio::null());
    }

    /// `wine ARGS`, waited for: whether it succeeded, and its stdout.
    fn wine_status(&self, args: &[&str]) -> Result<(bool, String), String> {
        let out = self
            .command("wine")
            .args(args)
            .output()
            .map_err(|e| format!("wine {args:?}: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok((true, text))
        } else {
            Ok((false, format!("failed ({}): {text}", out.status)))
        }
    }

    /// `wine ARGS`, waited for; its stdout, whatever its exit status.
    fn wine(&self, args: &[&str]) -> Result<String, String> {
        self.wine_status(args).map(|(_, text)| text)
    }

    /// `wine ARGS` that must succeed.
    fn wine_ok(&self, args: &[&str]) -> Result<String, String> {
        match self.wine_status(args)? {
            (true, text) => Ok(text),
            (false, text) => Err(format!("wine {args:?} {text}")),
        }
    }

    /// A service's state, Win32 exit code and service-specific exit code,
    /// from `sc query`; `None` if there is no such service.
    fn service(&self, name: &str) -> Result<Option<ServiceState>, String> {
        let text = self.wine(&["sc", "query", name])?;
        let field = |key: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(key))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u32>().ok())
        };
        Ok(field("STATE").map(|state| ServiceState {
            state,
            win32_exit: field("WIN32_EXIT_CODE").unwrap_or(0),
            service_exit: field("SERVICE_EXIT_CODE").unwrap_or(0),
        }))
    }

    /// `reg query` of a service's key (its configuration).
    fn service_key(&self, name: &str) -> Result<String, String> {
        self.wine(&[
            "reg",
            "query",
            &format!(r"HKLM\System\CurrentControlSet\Services\{name}"),
        ])
    }

    /// Waits until `name` is in `state` (sc's numbers: 1 stopped, 4 running).
    fn wait_state(&self, name: &str, state: u32, within: Duration) -> Result<ServiceState, String> {
        let end = Instant::now() + within;
        loop {
            let now = self.service(name)?;
            if let Some(s) = now.filter(|s| s.state == state) {
                return Ok(s);
            }
            if Instant::now() > end {
                return Err(format!(
                    "{name} not in state {state} after {within:?}: {now:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One driver load for ringside.sys to see: the trigger driver is started
    /// (its image mapped into the shared winedevice.exe) and stopped again.
    fn trigger_load(&self) -> Result<(), String> {
        self.wine_ok(&["net", "start", "ringside_trigger"])?;
        self.wine_ok(&["net", "stop", "ringside_trigger"])?;
        Ok(())
    }

    /// The console agent, `run ARGS --output file:C:\ringside\NAME.jsonl`,
    /// in a console of its own: Windows delivers Ctrl-C only to console
    /// processes, and Wine gives a process a console when it runs on a
    /// terminal, so it runs under `script` (a pseudo-terminal), which
    /// also keeps what it prints ([`Agent::console`]).
    fn spawn_agent(&self, args: &[&str], name: &str) -> Result<Agent, String> {
        let dir = self.drive_c().join("ringside");
        let out = dir.join(format!("{name}.jsonl"));
        let console = dir.join(format!("{name}.console"));
        // `exec`: the agent takes the shell's process, so the signals below
        // reach it. Without it dash (script's shell when $SHELL is unset,
        // as under CI) forks, and a SIGINT would end the shell instead.
        let mut line = format!(
            r"exec wine C:\\ringside\\ringside-agent.exe run --output file:C:\\ringside\\{name}.jsonl"
        );
        for arg in args {
            line.push(' ');
            line.push_str(&arg.replace('\\', r"\\"));
        }
        let script = self
            .command("script")
            .env("SHELL", "/bin/sh")
            .arg("-qfec")
            .arg(&line)
            .arg(&console)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the agent under script: {e}"))?;
        // The Windows process is script's child (the shell execs wine,
        // which execs into it).
        let end = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", script.id()))
                    .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                break pid.to_owned();
            }
            if Instant::now() > end {
                return Err("the agent did not start under script".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Ok(Agent {
            script,
            pid,
            out,
            console,
        })
    }

    fn shutdown(&self) {
        let _ = self.command("wineserver").arg("-k").status();
        let _ = self.command("wineserver").arg("-w").status();
    }
}

#[derive(Clone, Copy, Debug)]
struct ServiceState {
    state: u32,
    win32_exit: u32,
    service_exit: u32,
}

const STOPPED: u32 = 1;
const RUNNING: u32 = 4;

/// The JSON lines of `path` (a file the agent writes).
fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn event_id(line: &serde_json::Value) -> u64 {
    line["EventID"].as_u64().unwrap_or(0)
}

/// What the agent says of the test-signed trigger under Wine 8.0
/// (measured): `Valid`. On Windows a root in no trusted store gives
/// `CERT_E_UNTRUSTEDROOT`, `Untrusted`; Wine's `WinVerifyTrust` accepts the
/// throwaway self-signed root (or reports only that revocation could not
/// be checked, which the policy leaves to the chain): a Wine gap, so this
/// pins that the Windows path runs end to end and names the signer, not
/// Windows' trust decision.
const TRIGGER_SIGNATURE_STATUS: &str = "Valid";

/// The trigger's DriverLoad (Sysmon 6) events in `path`.
fn trigger_events(path: &Path) -> Vec<serde_json::Value> {
    trigger_loads(path, DRIVER_LOAD)
}

/// Sysmon's DriverLoad event id.
const DRIVER_LOAD: u64 = 6;
/// Sysmon's ImageLoad event id: never the trigger's (a system-mode image).
const IMAGE_LOAD: u64 = 7;

/// The trigger's loads written as event `id` in `path`.
fn trigger_loads(path: &Path, id: u64) -> Vec<serde_json::Value> {
    lines(path)
        .into_iter()
        .filter(|l| event_id(l) == id && l["EventData"]["ImageLoaded"] == TRIGGER_IMAGE)
        .collect()
}

/// Starts and stops the trigger until `path` holds `count` trigger events.
fn loads_until(wine: &Wine, path: &Path, count: usize, within: Duration) -> Result<(), String> {
    until_events(path, count, within, || wine.trigger_load())
}

/// Waits until `path` holds `count` trigger events, loading nothing.
fn wait_events(path: &Path, count: usize, within: Duration) -> Result<(), String> {
    until_events(path, count, within, || Ok(()))
}

/// Runs `between` until `path` holds `count` trigger events, or fails
/// after `within`.
fn until_events(
    path: &Path,
    count: usize,
    within: Duration,
    mut between: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let end = Instant::now() + within;
    while trigger_events(path).len() < count {
        if Instant::now() > end {
            return Err(format!(
                "{} holds {} trigger DriverLoad events, not {count}, after {within:?}",
                path.display(),
                trigger_events(path).len()
            ));
        }
        between()?;
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// The trigger's hashes as Sysmon writes them, from tools that share no
/// code with the agent: md5sum, sha256sum, and `oracle.py` (a struct-based
/// PE reader) for the imphash.
fn expected_hashes(trigger: &Path) -> Result<String, String> {
    let tool = |program: &str, args: &[&Path]| -> Result<String, String> {
        let out = Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .map(str::to_ascii_uppercase)
            .ok_or_else(|| format!("{program} printed nothing"))
    };
    let md5 = tool("md5sum", &[trigger])?;
    let sha256 = tool("sha256sum", &[trigger])?;
    let oracle = root().join("agent/tests/data/pe/oracle.py");
    let out = Command::new("python3")
        .arg(&oracle)
        .arg(trigger)
        .output()
        .map_err(|e| format!("python3 {}: {e}", oracle.display()))?;
    let imphash = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .map(str::to_ascii_uppercase)
        .ok_or("oracle.py printed no imphash")?;
    Ok(format!("MD5={md5},SHA256={sha256},IMPHASH={imphash}"))
}

/// Sequence numbers of records (events with a `Seq`) in order of output.
fn seqs(events: &[serde_json::Value]) -> Vec<u64> {
    events.iter().filter_map(|l| l["Seq"].as_u64()).collect()
}

/// A console agent started by [`Wine::spawn_agent`].
struct Agent {
    script: Child,
    /// The agent's own process (Wine's, for the Windows process).
    pid: String,
    /// Its JSON lines.
    out: PathBuf,
    /// What it printed to its console.
    console: PathBuf,
}

impl Agent {
    fn signal(&self, signal: &str) -> Result<(), String> {
        run(Command::new("kill").args([signal, &self.pid]))
    }

    /// SIGKILL: the agent ends at once, as from Task Manager.
    fn kill(mut self) -> Result<(), String> {
        self.signal("-KILL")?;
        let _ = self.script.wait();
        Ok(())
    }

    /// For a stop that did not finish: whether the agent is still alive
    /// (and what its threads wait in), and which processes hold its
    /// console's terminal open (`script` waits for all of them).
    fn whereabouts(&self) -> String {
        let proc_dir = PathBuf::from(format!("/proc/{}", self.pid));
        let agent = if proc_dir.exists() {
            let threads: Vec<String> = std::fs::read_dir(proc_dir.join("task"))
                .map(|dir| {
                    dir.flatten()
                        .map(|t| {
                            let read = |f: &str| {
                                std::fs::read_to_string(t.path().join(f)).unwrap_or_default()
                            };
                            let stat = read("stat");
                            let state = stat.rsplit(')').next().unwrap_or_default();
                            let state = state.split_whitespace().next().unwrap_or("?");
                            format!("{state}/{}", read("wchan"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("the agent (pid {}) is alive, threads {threads:?}", self.pid)
        } else {
            format!("the agent (pid {}) has exited", self.pid)
        };
        let mut holders = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let fds = entry.path().join("fd");
            let pty = std::fs::read_dir(&fds)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .find(|l| l.starts_with("/dev/pts"));
            if let Some(pty) = pty {
                let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                holders.push(format!(
                    "{} {} ({})",
                    entry.file_name().to_string_lossy(),
                    comm.trim(),
                    pty.display()
                ));
            }
        }
        format!("{agent}; processes with a pseudo-terminal open: {holders:?}")
    }

    /// What it printed, without the console's escape sequences.
    fn printed(&self) -> String {
        let raw = std::fs::read_to_string(&self.console).unwrap_or_default();
        let mut text = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                // CSI: ESC [ parameters, then a final letter.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                text.push(c);
            }
        }
        text
    }

    /// SIGINT, which Wine turns into CTRL_C_EVENT for a console process:
    /// the agent must stop through its handler, which says so once its
    /// output is flushed, and exit 0 within `within`. (Wine's default
    /// handler would end it with exit code 0 as well; the message is what
    /// tells the two apart.)
    fn interrupt(mut self, within: Duration) -> Result<(), String> {
        self.signal("-INT")?;
        let end = Instant::now() + within;
        loop {
            if let Some(status) = self.script.try_wait().map_err(|e| e.to_string())? {
                let said = self.printed();
                return if !status.success() {
                    Err(format!("the agent exited {status} after Ctrl-C: {said:?}"))
                } else if !said.contains("Ctrl-C: stopped, output flushed") {
                    Err(format!(
                        "the agent's Ctrl-C handler did not stop it: {said:?}"
                    ))
                } else {
                    Ok(())
                };
            }
            if Instant::now() > end {
                let stuck = self.whereabouts();
                let _ = self.signal("-KILL");
                return Err(format!(
                    "the agent did not exit within {within:?} of Ctrl-C; {stuck}; it printed {:?}",
                    self.printed()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn scenario(wine: &mut Wine, package: &Path, built: &Built) -> Result<Vec<String>, String> {
    let mut report = Vec::new();
    let c = wine.drive_c();
    let drivers = c.join("windows/system32/drivers");
    let agent_dir = c.join("ringside");
    std::fs::create_dir_all(&agent_dir).map_err(|e| e.to_string())?;
    let copy = |from: &Path, to: &Path| {
        std::fs::copy(from, to)
            .map(|_| ())
            .map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))
    };
    copy(&built.shim, &drivers.join("ringside_wineshim.sys"))?;
    copy(&built.trigger, &drivers.join("ringside_trigger.sys"))?;
    copy(&built.agent, &agent_dir.join("ringside-agent.exe"))?;
    copy(&built.prng, &agent_dir.join("bcryptprimitives.dll"))?;
    let pkg = c.join("package");
    std::fs::create_dir_all(&pkg).map_err(|e| e.to_string())?;
    for name in ["ringside.sys", "ringside.inf"] {
        copy(&package.join(name), &pkg.join(name))?;
    }

    // 1. The gap shim first, then the package by its INF, in one group.
    let t = Instant::now();
    for (name, image) in [
        (
            "ringside_wineshim",
            r"C:\windows\system32\drivers\ringside_wineshim.sys",
        ),
        ("ringside_trigger", TRIGGER_IMAGE),
    ] {
        wine.wine_ok(&[
            "sc", "create", name, "type=", "kernel", "start=", "demand", "binpath=", image,
            "group=", GROUP,
        ])?;
    }
    wine.wine_ok(&["net", "start", "ringside_wineshim"])?;
    wine.wine_ok(&[
        "rundll32",
        "setupapi.dll,InstallHinfSection",
        "DefaultInstall",
        "132",
        r"C:\package\ringside.inf",
    ])?;
    // Wine's sc has no `qc`: the service's configuration from its key.
    let config = wine.service_key("ringside")?;
    for want in ["Type    REG_DWORD    0x2", r"\ringside.sys", GROUP] {
        if !config.contains(want) {
            return Err(format!("the INF's service lacks {want:?}:\n{config}"));
        }
    }
    wine.wine_ok(&["net", "start", "ringside"])?;
    wine.wait_state("ringside", RUNNING, Duration::from_secs(10))?;
    let log = std::fs::read_to_string(&wine.log).unwrap_or_default();
    if !log.contains("ringside_wineshim: rebound") {
        return Err("the shim never rebound ringside.sys's imports".into());
    }
    report.push(format!(
        "driver: ringside.inf installed (FILE_SYSTEM_DRIVER, group {GROUP:?}), `net start ringside`: RUNNING ({:.1?})",
        t.elapsed()
    ));

    // 2. The console agent: HELLO, CONFIGURE, READs; events with hashes.
    let t = Instant::now();
    let record = format!(r"{AGENT_DIR}\run.replay");
    let agent = wine.spawn_agent(&["--record", &record], "run")?;
    let run_out = agent.out.clone();
    loads_until(wine, &run_out, 1, Duration::from_secs(60))?;
    let before = trigger_events(&run_out).len();
    for _ in 0..5 {
        wine.trigger_load()?;
    }
    wait_events(&run_out, before + 5, Duration::from_secs(20))?;
    let expected = expected_hashes(&built.trigger)?;
    let events = trigger_events(&run_out);
    let hashed: Vec<&str> = events
        .iter()
        .filter_map(|e| e["EventData"]["Hashes"].as_str())
        .filter(|h| *h != "-")
        .collect();
    // Every event, the first included: the agent waits (bounded, per READ
    // batch) for the worker that hashes a file it has not seen. The
    // platform's trust check (WinVerifyTrust) is a job of its own after
    // that, so its slow first call never holds the hashes back.
    if hashed.len() != events.len() || hashed.iter().any(|h| *h != expected) {
        return Err(format!(
            "hashes: expected {expected} (md5sum, sha256sum, oracle.py), got {hashed:?}"
        ));
    }
    // A system-mode image is a 6 only, with Sysmon 6's fields in order and
    // no process; Wine labels no signature level, so the agent's own check
    // of the (test-signed) file speaks.
    let as_image_load = trigger_loads(&run_out, IMAGE_LOAD).len();
    if as_image_load != 0 {
        return Err(format!(
            "{as_image_load} trigger loads written as ImageLoad (7), not DriverLoad (6)"
        ));
    }
    let keys = |e: &serde_json::Value| -> Vec<String> {
        e["EventData"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut sysmon_6: Vec<String> = [
        "RuleName",
        "UtcTime",
        "ImageLoaded",
        "Hashes",
        "Signed",
        "Signature",
        "SignatureStatus",
    ]
    .map(String::from)
    .to_vec();
    sysmon_6.sort();
    // Until WinVerifyTrust's answer is in, an event carries the portable
    // check's verdict (an intact signature, `Unverified`: no trust store
    // off the platform's path); from then on the platform's. The order
    // never goes back, and the platform's answer must arrive.
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["EventData"]["SignatureStatus"].as_str().unwrap_or("?"))
        .collect();
    let portable = statuses.iter().take_while(|s| **s == "Unverified").count();
    if portable == statuses.len()
        || statuses[portable..]
            .iter()
            .any(|s| *s != TRIGGER_SIGNATURE_STATUS)
    {
        return Err(format!(
            "SignatureStatus of the trigger's loads: {statuses:?} (expected Unverified until WinVerifyTrust answers, then {TRIGGER_SIGNATURE_STATUS})"
        ));
    }
    if let Some(bad) = events.iter().find(|e| {
        let mut k = keys(e);
        k.sort();
        k != sysmon_6
            || e["EventData"]["Signed"] != "true"
            || e["EventData"]["Signature"] != crate::package::TEST_SIGNER
    }) {
        return Err(format!(
            "a trigger DriverLoad event is not as expected: {bad}"
        ));
    }
    let all = lines(&run_out);
    if all.iter().any(|l| event_id(l) == 1002) {
        return Err(format!("a false 1002 SequenceGap in {}", run_out.display()));
    }
    // Records are written in the order their callbacks ran (by
    // timestamp), and one drain numbers the per-CPU lanes one after
    // another, so two records of different CPUs may be written with their
    // numbers the other way round. The numbers themselves must be whole.
    let s = seqs(&all);
    let mut sorted = s.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[1] != w[0] + 1) {
        return Err(format!("sequence numbers not consecutive: {s:?}"));
    }
    report.push(format!(
        "console agent: {} DriverLoad events (Sysmon 6, none as 7; the test-signed trigger: Signed true, Signature '{}', SignatureStatus Unverified for the first {portable}, then {TRIGGER_SIGNATURE_STATUS}), Seq {:?}, all {} with hashes equal to md5sum/sha256sum/oracle.py ({expected}); no 1002 ({:.1?})",
        events.len(),
        crate::package::TEST_SIGNER,
        s,
        hashed.len(),
        t.elapsed()
    ));

    // 3. Ctrl-C flushes and finishes the recording; the Linux agent
    //    replays it to the same events.
    agent.interrupt(Duration::from_secs(15))?;
    let rec = agent_dir.join("run.replay");
    let replayed = agent_dir.join("replayed.jsonl");
    let out = Command::new(&built.host_agent)
        .args(["replay", "--no-enrich"])
        .arg(&rec)
        .output()
        .map_err(|e| format!("replaying {}: {e}", rec.display()))?;
    std::fs::write(&replayed, &out.stdout).map_err(|e| e.to_string())?;
    let live: Vec<u64> = seqs(&trigger_events(&run_out));
    let again: Vec<u64> = seqs(&trigger_events(&replayed));
    if !out.status.success() || live != again {
        return Err(format!(
            "the --record file replays to Seq {again:?} ({}), the live agent wrote {live:?}",
            out.status
        ));
    }
    report.push(format!(
        "Ctrl-C: exit 0; --record ({} bytes) replayed on Linux to the same {} events",
        std::fs::metadata(&rec).map(|m| m.len()).unwrap_or(0),
        again.len()
    ));

    // 4. The agent killed (SIGKILL) and restarted: events made while it was
    //    gone are in the ring and arrive; nothing is reported twice.
    let t = Instant::now();
    let agent = wine.spawn_agent(&[], "killed")?;
    let kill_out = agent.out.clone();
    loads_until(wine, &kill_out, 1, Duration::from_secs(60))?;
    agent.kill()?;
    let seen_before_kill = seqs(&trigger_events(&kill_out));
    for _ in 0..2 {
        wine.trigger_load()?;
    }
    let agent = wine.spawn_agent(&[], "restarted")?;
    let restart_out = agent.out.clone();
    wait_events(&restart_out, 2, Duration::from_secs(60))?;
    let after: Vec<u64> = seqs(&trigger_events(&restart_out));
    let last = seen_before_kill.iter().copied().max().unwrap_or(0);
    // The two loads made while it was gone, in either order (see above).
    let mut first_two = after.get(..2).unwrap_or_default().to_vec();
    first_two.sort_unstable();
    if first_two != [last + 1, last + 2] {
        return Err(format!(
            "after the restart the agent wrote Seq {after:?}, the killed one ended at {last}"
        ));
    }
    report.push(format!(
        "agent killed after Seq {last}; 2 loads while it was gone; the restarted agent wrote them first (Seq {:?}) ({:.1?})",
        first_two,
        t.elapsed()
    ));

    // 5. The driver stopped and started under the running agent: it
    //    reconnects, the new driver numbers from 0, and the restart is
    //    reported (1004 DriverRestarts: nothing was observed meanwhile;
    //    a 1002 only if records were really lost, which none were here).
    let t = Instant::now();
    wine.wine_ok(&["net", "stop", "ringside"])?;
    wine.wait_state("ringside", STOPPED, Duration::from_secs(20))?;
    wine.wine_ok(&["net", "start", "ringside"])?;
    let before = trigger_events(&restart_out).len();
    loads_until(wine, &restart_out, before + 1, Duration::from_secs(90))?;
    let first = seqs(
        trigger_events(&restart_out)
            .get(before..)
            .unwrap_or_default(),
    )
    .into_iter()
    .min();
    if first != Some(0) {
        return Err(format!(
            "the restarted driver's first event has Seq {first:?}, not 0"
        ));
    }
    // The agent reads the driver's counters every 10 s.
    let end = Instant::now() + Duration::from_secs(25);
    let restarts = loop {
        let stats = lines(&restart_out)
            .into_iter()
            .filter(|l| event_id(l) == 1004)
            .filter_map(|l| l["EventData"]["DriverRestarts"].as_u64())
            .max();
        if let Some(n @ 1..) = stats {
            break n;
        }
        if Instant::now() > end {
            return Err(format!(
                "no 1004 with DriverRestarts >= 1 in {}",
                restart_out.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let gaps = lines(&restart_out)
        .iter()
        .filter(|l| event_id(l) == 1002)
        .count();
    if gaps != 0 {
        return Err(format!(
            "{gaps} 1002 SequenceGap events, though nothing was lost, in {}",
            restart_out.display()
        ));
    }
    report.push(format!(
        "driver stopped and started under the agent: reconnected, events from Seq 0 again, 1004 DriverRestarts={restarts}, no false 1002 ({:.1?})",
        t.elapsed()
    ));
    agent.interrupt(Duration::from_secs(15))?;

    // 6. The service: install, start, events, stop, a failing start,
    //    uninstall.
    let t = Instant::now();
    let svc_out = format!(r"{AGENT_DIR}\service.jsonl");
    let exe = format!(r"{AGENT_DIR}\ringside-agent.exe");
    wine.wine_ok(&[&exe, "service", "install", "--output-file", &svc_out])?;
    // Read up to three times: once (of 40+ runs) a `reg query` here printed
    // no DependOnService line, and the next runs never did again; a second
    // read tells a Wine hiccup (reported below) from a missing dependency.
    let mut queries = Vec::new();
    let depends_on_driver = |config: &str| {
        config
            .lines()
            .any(|l| l.contains("DependOnService") && l.contains("ringside"))
    };
    while queries.len() < 3 {
        let config = wine.service_key("RingsideAgent")?;
        let found = depends_on_driver(&config);
        queries.push(config);
        if found {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    if !queries.last().is_some_and(|c| depends_on_driver(c)) {
        return Err(format!(
            "RingsideAgent does not depend on the driver: `reg query` of its key printed {queries:?}"
        ));
    }
    let dependency_reads = queries.len();
    // %ProgramData% as a service sees it: Wine 8.0 gives services
    // C:\users\Public, other programs C:\ProgramData. Neither holds a
    // ringside directory before the service makes one.
    let data_dirs = [
        c.join("ProgramData/ringside"),
        c.join("users/Public/ringside"),
    ];
    for dir in data_dirs.iter().filter(|d| d.exists()) {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    wine.wine_ok(&["net", "start", "RingsideAgent"])?;
    wine.wait_state("RingsideAgent", RUNNING, Duration::from_secs(20))?;
    let svc_path = agent_dir.join("service.jsonl");
    loads_until(wine, &svc_path, 2, Duration::from_secs(60))?;
    let stop_started = Instant::now();
    wine.wine(&["sc", "stop", "RingsideAgent"])?;
    let stopped = wine.wait_state("RingsideAgent", STOPPED, Duration::from_secs(25))?;
    let stop_took = stop_started.elapsed();
    if stopped.win32_exit != 0 {
        return Err(format!("the service stopped with {stopped:?}"));
    }
    let agent_log = data_dirs
        .iter()
        .map(|d| d.join("agent.log"))
        .find(|l| l.exists())
        .ok_or("the service made no %ProgramData%\\ringside\\agent.log")?;
    let log_text = std::fs::read_to_string(&agent_log).map_err(|e| e.to_string())?;
    let svc_events = trigger_events(&svc_path).len();

    // A start that fails: content that does not exist.
    wine.wine_ok(&[&exe, "service", "uninstall"])?;
    wine.wine_ok(&[
        &exe,
        "service",
        "install",
        "--output-file",
        &svc_out,
        "--rules",
        r"C:\no\such\rules",
    ])?;
    let _ = wine.wine(&["net", "start", "RingsideAgent"]);
    let failed = wine.wait_state("RingsideAgent", STOPPED, Duration::from_secs(25))?;
    const ERROR_SERVICE_SPECIFIC_ERROR: u32 = 1066;
    if failed.win32_exit != ERROR_SERVICE_SPECIFIC_ERROR || failed.service_exit == 0 {
        return Err(format!("a failed start reported {failed:?}"));
    }
    let failure_log = std::fs::read_to_string(&agent_log).unwrap_or_default();
    let failure_line = failure_log
        .lines()
        .rev()
        .find(|l| l.contains("no such") || l.contains("rules"))
        .ok_or_else(|| format!("agent.log does not say why the start failed:\n{failure_log}"))?
        .to_owned();
    wine.wine_ok(&[&exe, "service", "uninstall"])?;
    if wine.service("RingsideAgent")?.is_some() {
        return Err("RingsideAgent still exists after `service uninstall`".into());
    }
    report.push(format!(
        "service: install (depends on ringside; read {dependency_reads} time(s)), start, {svc_events} events in service.jsonl, stop in {stop_took:.1?} (exit 0), \
         {} created ({} lines); a start with missing rules: exit {} / service-specific {}, \
         logged {failure_line:?}; uninstall ({:.1?})",
        agent_log.display(),
        log_text.lines().count(),
        failed.win32_exit,
        failed.service_exit,
        t.elapsed()
    ));
    Ok(report)
}
