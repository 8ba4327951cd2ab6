//! What the Windows service reports when it stops: the class of a
//! failure, its text, and the exit code the Service Control Manager
//! records; and the service's own log file. Platform-independent, so the
//! mapping and the log are tested on any host; `service` sends the same
//! text to the Application event log.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The service's log file, in its data directory.
pub const LOG_FILE: &str = "agent.log";

/// Why the service stopped other than by request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// Its configuration or content cannot be used (bad --rules, a
    /// bundle that does not compile with no last known good).
    Configuration,
    /// Its directories, event output or log cannot be created or written.
    Output,
    /// The device source failed for good (an error other than the driver
    /// going away, which it rides out by reconnecting).
    Source,
    /// Asked to stop, it did not finish within the stop deadline.
    StopTimeout,
}

impl FailureClass {
    /// The service-specific exit code (`dwServiceSpecificExitCode`, with
    /// `dwWin32ExitCode` = ERROR_SERVICE_SPECIFIC_ERROR): one per class,
    /// so `sc query` tells them apart. 0 and 1 are never used.
    pub fn exit_code(self) -> u32 {
        match self {
            FailureClass::Configuration => 10,
            FailureClass::Output => 11,
            FailureClass::Source => 12,
            FailureClass::StopTimeout => 13,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Configuration => "configuration",
            FailureClass::Output => "output",
            FailureClass::Source => "device source",
            FailureClass::StopTimeout => "stop timeout",
        }
    }
}

/// A failure with its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    pub message: String,
}

impl Failure {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: message.into(),
        }
    }
}

impl From<crate::cli::CliError> for Failure {
    /// Bad input is the configuration's fault; any other CLI failure is
    /// the output's (opening the sink is what fails there).
    fn from(error: crate::cli::CliError) -> Self {
        let class = if error.code == 2 {
            FailureClass::Configuration
        } else {
            FailureClass::Output
        };
        Failure::new(class, error.message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ringside agent service stopped: {} failure (exit code {}): {}",
            self.class.name(),
            self.class.exit_code(),
            self.message
        )
    }
}

/// The service's log: one line per start, stop and failure, appended to
/// `DIR/agent.log` (the directory is created).
#[derive(Clone, Debug)]
pub struct ServiceLog {
    path: PathBuf,
}

impl ServiceLog {
    pub fn in_dir(dir: &Path) -> Self {
        ServiceLog {
            path: dir.join(LOG_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `text` with a UTC timestamp.
    pub fn line(&self, text: &str) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut stamp = String::new();
        crate::time::write_utc_time(&mut stamp, crate::time::now_filetime());
        writeln!(file, "{stamp} {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_class_has_its_own_exit_code_and_never_1() {
        let classes = [
            FailureClass::Configuration,
            FailureClass::Output,
            FailureClass::Source,
            FailureClass::StopTimeout,
        ];
        let mut codes: Vec<u32> = classes.iter().map(|c| c.exit_code()).collect();
        assert!(codes.iter().all(|c| *c > 1), "{codes:?}");
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), classes.len());
        let bad_rules = crate::cli::CliError::input("rules C:\\r: no such directory");
        let failure = Failure::from(bad_rules);
        assert_eq!(failure.class, FailureClass::Configuration);
        assert!(
            failure
                .to_string()
                .contains("rules C:\\r: no such directory")
        );
        assert!(failure.to_string().contains("exit code 10"));
    }

    #[test]
    fn the_log_creates_its_directory_and_keeps_the_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = ServiceLog::in_dir(&dir.path().join("ProgramData").join("ringside"));
        let failure = Failure::new(FailureClass::Output, "events.jsonl: access denied");
        log.line("started").expect("write");
        log.line(&failure.to_string()).expect("write");
        let text = std::fs::read_to_string(log.path()).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with(" started"));
        assert!(lines[1].contains("output failure (exit code 11): events.jsonl: access denied"));
    }
}
