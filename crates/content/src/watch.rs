//! Watching the configured rules for changes: a portable poll of a content
//! fingerprint (file names, sizes and modification times), no platform
//! watcher. A change is compiled on the watcher's thread, never on the
//! event path; only a fully compiled bundle is offered for activation.
//!
//! A fingerprint taken before and after compiling must agree: a bundle being
//! written while it was read is not offered (it is compiled again on the
//! next poll, once the writer is done). A rejected fingerprint is reported
//! once and not compiled again until the content changes.

use crate::archive::{ArchiveLimits, PublicKey};
use crate::bundle::{Bundle, BundleError, LoadPolicy, LoadReport, rule_files};
use crate::guard::{CrashGuard, Validator};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

/// Where the configured rules live.
#[derive(Clone, Debug)]
pub enum RulesLocation {
    /// A directory of `*.yml` rules.
    Directory(PathBuf),
    /// A signed archive, its detached signature, and the key it must verify with.
    Signed {
        archive: PathBuf,
        signature: PathBuf,
        key: PublicKey,
    },
}

impl RulesLocation {
    /// The path the operator configured.
    pub fn path(&self) -> &Path {
        match self {
            RulesLocation::Directory(dir) => dir,
            RulesLocation::Signed { archive, .. } => archive,
        }
    }

    /// The public key, for a signed location.
    pub fn key(&self) -> Option<&PublicKey> {
        match self {
            RulesLocation::Directory(_) => None,
            RulesLocation::Signed { key, .. } => Some(key),
        }
    }

    /// Compiles the rules now.
    pub fn load(&self, policy: LoadPolicy) -> Result<LoadReport, BundleError> {
        match self {
            RulesLocation::Directory(dir) => Bundle::load_with(dir, policy),
            RulesLocation::Signed {
                archive,
                signature,
                key,
            } => {
                Bundle::load_signed_with(archive, signature, key, policy, &ArchiveLimits::default())
            }
        }
    }

    /// A hash of what identifies the content's current version: for a
    /// directory, every rule file's relative name, size and modification
    /// time; for an archive, the archive's and signature's size and
    /// modification time. An unreadable location hashes its error, so a
    /// change of error is a change too.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        let mut stamp = |path: &Path, name: &Path| {
            name.hash(&mut hasher);
            match std::fs::metadata(path) {
                Ok(meta) => {
                    meta.len().hash(&mut hasher);
                    meta.modified().ok().hash(&mut hasher);
                }
                Err(e) => e.kind().hash(&mut hasher),
            }
        };
        match self {
            RulesLocation::Directory(dir) => match rule_files(dir) {
                Ok(files) => {
                    for file in &files {
                        stamp(file, file.strip_prefix(dir).unwrap_or(file));
                    }
                }
                Err(e) => e.to_string().hash(&mut hasher),
            },
            RulesLocation::Signed {
                archive, signature, ..
            } => {
                stamp(archive, archive);
                stamp(signature, signature);
            }
        }
        hasher.finish()
    }
}

/// What a poll found.
#[derive(Debug)]
pub enum WatchEvent {
    /// The content changed and compiled: activate it.
    Compiled(LoadReport),
    /// The content changed and was rejected: keep running the current bundle.
    Rejected { source: PathBuf, error: BundleError },
}

/// Polls a [`RulesLocation`] and compiles it when its fingerprint changes.
#[derive(Debug)]
pub struct BundleWatcher {
    location: RulesLocation,
    policy: LoadPolicy,
    last: u64,
    /// Compiles a change in a separate process first (see `crate::guard`).
    validator: Option<Validator>,
    /// Marks the content being compiled here, for the next start.
    guard: Option<CrashGuard>,
}

impl BundleWatcher {
    /// A watcher that treats the content as of `fingerprint` as already
    /// handled (the one taken before the initial load).
    pub fn new(location: RulesLocation, policy: LoadPolicy, fingerprint: u64) -> BundleWatcher {
        BundleWatcher {
            location,
            policy,
            last: fingerprint,
            validator: None,
            guard: None,
        }
    }

    /// Compiles each change in a separate process first; only content that
    /// compiled there without crashing is compiled in this process.
    pub fn with_validator(mut self, validator: Validator) -> BundleWatcher {
        self.validator = Some(validator);
        self
    }

    /// Leaves a marker naming the content while it compiles here, so a
    /// process that dies on it does not load it again at its next start.
    pub fn with_crash_guard(mut self, guard: CrashGuard) -> BundleWatcher {
        self.guard = Some(guard);
        self
    }

    /// The watched location.
    pub fn location(&self) -> &RulesLocation {
        &self.location
    }

    /// Checks once; compiles if the content changed since the last poll.
    pub fn poll(&mut self) -> Option<WatchEvent> {
        let before = self.location.fingerprint();
        if before == self.last {
            return None;
        }
        if let Some(validator) = &self.validator {
            if let Err(how) = validator.run(&self.location) {
                // Not tried again until the content changes.
                self.last = before;
                return Some(WatchEvent::Rejected {
                    source: self.location.path().to_owned(),
                    error: BundleError::Unsafe {
                        path: self.location.path().to_owned(),
                        why: how,
                    },
                });
            }
        }
        if let Some(guard) = &self.guard {
            let _ = guard.arm(before);
        }
        let result = self.location.load(self.policy);
        if let Some(guard) = &self.guard {
            guard.disarm();
        }
        if self.location.fingerprint() != before {
            // Changed while being read: try again next poll.
            return None;
        }
        self.last = before;
        Some(match result {
            Ok(report) => WatchEvent::Compiled(report),
            Err(error) => WatchEvent::Rejected {
                source: self.location.path().to_owned(),
                error,
            },
        })
    }

    /// Polls every `interval` on a thread of its own; events arrive through
    /// the returned handle. Dropping the handle stops the thread.
    pub fn spawn(mut self, interval: Duration) -> std::io::Result<WatchHandle> {
        let (sender, receiver) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ringside-content-watch".into())
            .spawn(move || {
                // Relaxed: a plain flag; nothing else is published through it.
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::park_timeout(interval);
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Some(event) = self.poll() {
                        if sender.send(event).is_err() {
                            break;
                        }
                    }
                }
            })?;
        Ok(WatchHandle {
            receiver,
            stop,
            thread: Some(thread),
        })
    }
}

/// The receiving end of a spawned [`BundleWatcher`].
#[derive(Debug)]
pub struct WatchHandle {
    receiver: Receiver<WatchEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WatchHandle {
    /// The next event, if one is waiting (never blocks).
    pub fn try_next(&self) -> Option<WatchEvent> {
        // Empty or disconnected (the thread ended): nothing to apply.
        self.receiver.try_recv().ok()
    }

    /// Waits up to `timeout` for the next event.
    pub fn next_timeout(&self, timeout: Duration) -> Option<WatchEvent> {
        self.receiver.recv_timeout(timeout).ok()
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
