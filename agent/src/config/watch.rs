//! Reload on change: a thread reads the configuration file every poll
//! interval and, when its bytes changed and then stayed the same for one
//! more interval, parses it there — off the event path — and hands the
//! result to the pipeline, which swaps it in between batches. A file being
//! written in place (truncated, then filled) is thus never parsed half
//! written. A configuration that does not parse is handed over as its
//! error (a 1005 notice); the running one stays.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use ringside_content::sysmon_config::{self, ConfigError, Loaded};

/// The receiving end: what the watcher found, in order.
#[derive(Debug)]
pub struct ConfigUpdates {
    path: PathBuf,
    receiver: Receiver<Result<Loaded, ConfigError>>,
}

impl ConfigUpdates {
    /// The next update, if one is waiting (none once the watcher ended).
    pub fn try_next(&self) -> Option<Result<Loaded, ConfigError>> {
        self.receiver.try_recv().ok()
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Watches `path`, whose contents at start were `initial` (so the running
/// configuration is not reloaded once for nothing). The thread ends when
/// the receiver is dropped.
pub fn spawn(path: &Path, initial: Vec<u8>, poll: Duration) -> std::io::Result<ConfigUpdates> {
    let (sender, receiver) = mpsc::channel();
    let watched = path.to_owned();
    std::thread::Builder::new()
        .name("ringside-config-watch".into())
        .spawn(move || {
            let mut last = initial.clone();
            let mut settle = Settle::new(initial);
            loop {
                std::thread::sleep(poll);
                let update = match std::fs::read(&watched) {
                    Ok(bytes) => {
                        let Some(bytes) = settle.observe(bytes) else {
                            continue;
                        };
                        let update = sysmon_config::parse::parse_bytes(&bytes, &watched, &|name| {
                            std::env::var(name).ok()
                        });
                        last = bytes;
                        update
                    }
                    // A file being replaced may be missing for a moment;
                    // one that stays missing is reported once, then again
                    // only after it came back and changed.
                    Err(error) if !last.is_empty() => {
                        last = Vec::new();
                        settle = Settle::new(Vec::new());
                        Err(ConfigError::Io {
                            path: watched.clone(),
                            error,
                        })
                    }
                    Err(_) => continue,
                };
                if sender.send(update).is_err() {
                    return;
                }
            }
        })?;
    Ok(ConfigUpdates {
        path: path.to_owned(),
        receiver,
    })
}

/// Decides when a changed file is taken: once two reads in a row agree
/// and differ from what was taken last.
#[derive(Debug)]
struct Settle {
    taken: Vec<u8>,
    seen: Option<Vec<u8>>,
}

impl Settle {
    fn new(taken: Vec<u8>) -> Self {
        Settle { taken, seen: None }
    }

    /// The bytes of one read; returns them when they are to be parsed.
    fn observe(&mut self, bytes: Vec<u8>) -> Option<Vec<u8>> {
        if bytes == self.taken {
            self.seen = None;
            return None;
        }
        if self.seen.as_ref() == Some(&bytes) {
            self.seen = None;
            self.taken = bytes.clone();
            return Some(bytes);
        }
        self.seen = Some(bytes);
        None
    }
}

#[cfg(test)]
mod settle_tests {
    use super::Settle;

    /// A file written in place is read empty, then half written, then
    /// whole: only the whole one, read twice, is taken.
    #[test]
    fn a_file_being_written_is_taken_once_it_stays_the_same() {
        let mut settle = Settle::new(b"old".to_vec());
        assert_eq!(settle.observe(b"old".to_vec()), None);
        assert_eq!(settle.observe(Vec::new()), None);
        assert_eq!(settle.observe(b"<Sys".to_vec()), None);
        assert_eq!(settle.observe(b"<Sysmon/>".to_vec()), None);
        assert_eq!(
            settle.observe(b"<Sysmon/>".to_vec()),
            Some(b"<Sysmon/>".to_vec())
        );
        // Taken: the same bytes again are no change.
        assert_eq!(settle.observe(b"<Sysmon/>".to_vec()), None);
        assert_eq!(settle.observe(b"<Sysmon/>".to_vec()), None);
    }
}
