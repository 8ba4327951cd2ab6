//! Reload on change: a thread reads the configuration file every poll
//! interval and, when its bytes changed, parses it there — off the event
//! path — and hands the result to the pipeline, which swaps it in between
//! batches. A configuration that does not parse is handed over as its
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
            let mut last = initial;
            loop {
                std::thread::sleep(poll);
                let update = match std::fs::read(&watched) {
                    Ok(bytes) if bytes == last => continue,
                    Ok(bytes) => {
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
