//! Content must not take down the process that watches it.
//!
//! - [`Validator`]: a change is compiled first in a separate process (the
//!   agent runs itself with `content validate`, under memory and CPU
//!   limits). Only if that process exits cleanly is the content compiled in
//!   the watching process; a crash, an abort, running out of memory or time
//!   there is a rejection here, and the running bundle stays.
//! - [`CrashGuard`]: a marker file in the state directory names the content
//!   being activated (its fingerprint) until activation is over. A process
//!   that dies on the way leaves it behind; the next start then skips that
//!   content (and runs the last known good bundle) instead of dying on it
//!   again: no crash loop.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::watch::RulesLocation;

/// How to compile a location in a separate process.
pub struct Validator {
    /// The command that compiles `location` and exits 0 if it loads, 2 if
    /// it is rejected (any other end is a failure of the compile itself).
    pub command: Box<dyn Fn(&RulesLocation) -> Command + Send>,
    /// Longest the child may take; it is killed after that.
    pub timeout: Duration,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Validator {
    /// Runs the child on `location`: `Ok` if it loaded or rejected the
    /// content normally (the watching process then compiles it itself, to
    /// the same result), `Err(how)` if the compile failed in another way.
    pub fn run(&self, location: &RulesLocation) -> Result<(), String> {
        let mut command = (self.command)(location);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .map_err(|e| format!("the compile process could not start: {e}"))?;
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "compiling it took longer than {} s and was stopped",
                        self.timeout.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(format!("the compile process was lost: {e}")),
            }
        };
        match status.code() {
            Some(0 | 2) => Ok(()),
            _ => Err(describe(status)),
        }
    }
}

/// How a compile process ended, for the rejection message.
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                6 => " (SIGABRT: an abort, e.g. out of memory)",
                9 => " (SIGKILL: killed, e.g. over its memory limit)",
                11 => " (SIGSEGV)",
                24 => " (SIGXCPU: over its CPU-time limit)",
                _ => "",
            };
            return format!(
                "compiling it in a separate process failed: killed by signal {signal}{name}"
            );
        }
    }
    format!("compiling it in a separate process failed: {status}")
}

/// The activation marker in a state directory (`activating`).
#[derive(Clone, Debug)]
pub struct CrashGuard {
    path: PathBuf,
}

impl CrashGuard {
    pub fn in_state_dir(state: &Path) -> CrashGuard {
        CrashGuard {
            path: state.join("activating"),
        }
    }

    /// Whether a process died while activating the content `fingerprint`
    /// names (its marker is still there).
    pub fn crashed_on(&self, fingerprint: u64) -> bool {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            == Some(fingerprint)
    }

    /// Marks `fingerprint` as being activated.
    pub fn arm(&self, fingerprint: u64) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&self.path, fingerprint.to_string())
    }

    /// Activation is over (whatever its outcome): the marker goes.
    pub fn disarm(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_left_behind_names_the_content_it_was_armed_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let guard = CrashGuard::in_state_dir(dir.path());
        assert!(!guard.crashed_on(7));
        guard.arm(7).expect("arm");
        assert!(guard.crashed_on(7));
        assert!(!guard.crashed_on(8), "another content is not blamed");
        guard.disarm();
        assert!(!guard.crashed_on(7));
    }

    #[cfg(unix)]
    #[test]
    fn a_child_that_aborts_is_a_failure_and_a_clean_one_is_not() {
        let location = RulesLocation::Directory(PathBuf::from("."));
        let run = |script: &'static str| {
            Validator {
                command: Box::new(move |_| {
                    let mut c = Command::new("sh");
                    c.args(["-c", script]);
                    c
                }),
                timeout: Duration::from_secs(5),
            }
            .run(&location)
        };
        assert_eq!(run("exit 0"), Ok(()));
        assert_eq!(run("exit 2"), Ok(()), "a normal rejection");
        let aborted = run("kill -ABRT $$").unwrap_err();
        assert!(aborted.contains("signal 6"), "{aborted}");
        assert!(run("exit 101").unwrap_err().contains("exit status: 101"));
        let slow = Validator {
            command: Box::new(|_| {
                let mut c = Command::new("sleep");
                c.arg("10");
                c
            }),
            timeout: Duration::from_millis(200),
        }
        .run(&location)
        .unwrap_err();
        assert!(slow.contains("longer than"), "{slow}");
    }
}
