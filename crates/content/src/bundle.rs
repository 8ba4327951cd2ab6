//! Bundles (a directory of rules, `*.yml` recursively, or a signed archive
//! of one — see [`crate::archive`]) and the running content holder that
//! swaps bundles atomically and keeps the last known good.
//!
//! Policy. `Strict` (the default for production loads): one rejected rule
//! rejects the whole bundle and the running bundle stays. A bundle is built
//! for a sensor version and should have passed `content check`; a rejection
//! at load therefore means the content pipeline and the sensor disagree
//! (the 21-versus-20 situation), and silently running the rest would drop
//! detections nobody knows are gone. `Lenient` accepts the good rules and
//! reports the others: for trying third-party rule sets such as raw SigmaHQ,
//! which target every Sysmon field, not what ringside provides.

use crate::archive::{self, ArchiveError, ArchiveLimits, PublicKey, SignatureError};
use crate::budget::BundleBudget;
use crate::compile::{CompiledRule, Reason, Rejection, compile_rule};
use crate::engine::Engine;
use crate::files::{ReadError, read_regular};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// What to do with a bundle in which some rules are rejected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadPolicy {
    /// All or nothing (default).
    #[default]
    Strict,
    /// Keep the accepted rules, report the rejected ones.
    Lenient,
}

/// A compiled bundle.
#[derive(Debug)]
pub struct Bundle {
    /// The directory or archive it was compiled from.
    pub source: PathBuf,
    pub engine: Engine,
}

/// The bytes a bundle was compiled from, exactly as compiled: what the last
/// known good copy on disk is written from (so the copy cannot differ from
/// what ran, whatever happened to the source since).
#[derive(Clone, Debug)]
pub enum BundleSource {
    /// Rule files of a directory bundle: (path relative to the directory, bytes).
    Files(Vec<(PathBuf, Vec<u8>)>),
    /// A signed archive and its detached signature, verbatim.
    Signed {
        archive: Vec<u8>,
        signature: Vec<u8>,
    },
}

/// The outcome of compiling a bundle that was accepted.
#[derive(Debug)]
pub struct LoadReport {
    pub bundle: Arc<Bundle>,
    /// Rule files read.
    pub files: usize,
    /// Rejected rules (always empty under `Strict`).
    pub rejections: Vec<Rejection>,
    /// What was compiled, for [`crate::lkg::LastKnownGood::save`].
    pub sources: BundleSource,
}

/// Why a bundle was not accepted.
#[derive(Debug)]
pub enum BundleError {
    /// The directory could not be listed.
    Io { path: PathBuf, error: String },
    /// Strict policy: some rules were rejected, so the bundle is.
    Rejected {
        accepted: usize,
        rejections: Vec<Rejection>,
    },
    /// No rule file was found: an empty bundle would silently disable detection.
    Empty(PathBuf),
    /// The archive's signature does not verify (nothing in it was read).
    Signature {
        archive: PathBuf,
        error: SignatureError,
    },
    /// The public key file is unreadable or not an ed25519 key.
    PublicKey { path: PathBuf, reason: String },
    /// The archive verified but is not a well-formed bundle within limits.
    Archive {
        archive: PathBuf,
        error: ArchiveError,
    },
    /// Compiling it is not safe here: it failed in a separate process, or
    /// a process died while activating it before (`crate::guard`).
    Unsafe { path: PathBuf, why: String },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Io { path, error } => {
                write!(f, "{}: cannot read the bundle: {error}", path.display())
            }
            BundleError::Rejected {
                accepted,
                rejections,
            } => {
                writeln!(
                    f,
                    "bundle rejected (strict): {} of {} rules failed to compile; the running content is kept. Fix or remove:",
                    rejections.len(),
                    accepted + rejections.len()
                )?;
                for rejection in rejections {
                    writeln!(f, "  {rejection}")?;
                }
                Ok(())
            }
            BundleError::Empty(path) => {
                write!(
                    f,
                    "{}: no *.yml rule files; refusing to replace content with nothing",
                    path.display()
                )
            }
            BundleError::Signature { archive, error } => write!(
                f,
                "{}: signature check failed, nothing in the archive was read: {error}",
                archive.display()
            ),
            BundleError::PublicKey { path, reason } => {
                write!(f, "{}: not a usable public key: {reason}", path.display())
            }
            BundleError::Archive { archive, error } => {
                write!(f, "{}: {error}", archive.display())
            }
            BundleError::Unsafe { path, why } => {
                write!(f, "{}: not loaded: {why}", path.display())
            }
        }
    }
}

impl std::error::Error for BundleError {}

/// Every `*.yml` / `*.yaml` file under `dir`, sorted (deterministic order).
/// A tree with more entries than an archive may hold
/// ([`ArchiveLimits::max_entries`]) is refused as it is walked.
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, BundleError> {
    let limit = ArchiveLimits::default().max_entries;
    let mut seen = 0usize;
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| BundleError::Io {
            path: current.clone(),
            error: e.to_string(),
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| BundleError::Io {
                path: current.clone(),
                error: e.to_string(),
            })?;
            seen += 1;
            if seen > limit {
                return Err(BundleError::Io {
                    path: dir.to_owned(),
                    error: format!(
                        "more than {limit} entries under it; a bundle may have at most {limit}"
                    ),
                });
            }
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| BundleError::Io {
                path: path.clone(),
                error: e.to_string(),
            })?;
            // Symlinks are not followed: a bundle is a plain tree.
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "yml" || e == "yaml")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Compiles rules held in memory: (path used in messages, bytes). Each
/// accepted rule is charged to one [`BundleBudget`]; the rule that would
/// exceed it is rejected. `content check` and every bundle load compile
/// through here, so they accept and refuse the same rules.
pub fn compile_sources<'a>(
    sources: impl IntoIterator<Item = (PathBuf, &'a [u8])>,
) -> (Vec<CompiledRule>, Vec<Rejection>) {
    let mut rules = Vec::new();
    let mut rejections = Vec::new();
    let mut budget = BundleBudget::default();
    for (path, bytes) in sources {
        let result = match std::str::from_utf8(bytes) {
            Ok(text) => compile_rule(text, &path),
            Err(_) => Err(Rejection {
                path,
                line: 1,
                reason: Reason::Malformed("the file is not UTF-8".into()),
            }),
        };
        let admitted = result.and_then(|rule| match budget.admit(rule.cost) {
            Ok(()) => Ok(rule),
            Err(reason) => Err(Rejection {
                path: rule.path,
                line: 1,
                reason,
            }),
        });
        match admitted {
            Ok(rule) => rules.push(rule),
            Err(rejection) => rejections.push(rejection),
        }
    }
    (rules, rejections)
}

/// Reads and compiles every rule file ([`compile_sources`]); a file that
/// cannot be read, or is larger than a rule may be, is a rejection.
pub fn compile_files(files: &[PathBuf]) -> (Vec<CompiledRule>, Vec<Rejection>) {
    let mut sources = Vec::with_capacity(files.len());
    let mut rejections = Vec::new();
    for path in files {
        match read_regular(path, crate::yaml::MAX_BYTES as u64) {
            Ok(bytes) => sources.push((path.clone(), bytes)),
            Err(error) => rejections.push(Rejection {
                path: path.clone(),
                line: 1,
                reason: Reason::Malformed(match error {
                    ReadError::TooLarge { size, .. } => format!(
                        "the file is {size} bytes; a rule file may have at most {}",
                        crate::yaml::MAX_BYTES
                    ),
                    other => format!("cannot read: {other}"),
                }),
            }),
        }
    }
    let (rules, mut rejected) =
        compile_sources(sources.iter().map(|(p, b)| (p.clone(), b.as_slice())));
    rejected.append(&mut rejections);
    (rules, rejected)
}

impl Bundle {
    /// Loads `dir` with the default (strict) policy.
    pub fn load(dir: &Path) -> Result<LoadReport, BundleError> {
        Bundle::load_with(dir, LoadPolicy::default())
    }

    /// Loads `dir` with `policy`. Every rule file is read into memory first,
    /// so the compiled bundle and [`LoadReport::sources`] are the same bytes.
    pub fn load_with(dir: &Path, policy: LoadPolicy) -> Result<LoadReport, BundleError> {
        let files = rule_files(dir)?;
        let mut sources = Vec::with_capacity(files.len());
        for path in &files {
            // Bounded before reading: a huge (or sparse) file costs nothing.
            let bytes =
                read_regular(path, crate::yaml::MAX_BYTES as u64).map_err(|e| BundleError::Io {
                    path: path.clone(),
                    error: e.to_string(),
                })?;
            let relative = path.strip_prefix(dir).unwrap_or(path).to_owned();
            sources.push((relative, bytes));
        }
        let listed = sources
            .iter()
            .map(|(relative, bytes)| (dir.join(relative), bytes.as_slice()))
            .collect();
        let compiled = Bundle::compile(dir, listed, policy)?;
        Ok(compiled.report(BundleSource::Files(sources)))
    }

    /// Loads a signed archive bundle with the default (strict) policy and
    /// limits. See [`Bundle::load_signed_with`].
    pub fn load_signed(
        archive: &Path,
        signature: &Path,
        key: &PublicKey,
    ) -> Result<LoadReport, BundleError> {
        Bundle::load_signed_with(
            archive,
            signature,
            key,
            LoadPolicy::default(),
            &ArchiveLimits::default(),
        )
    }

    /// Loads a signed archive bundle: the archive file is read (refused
    /// unread if larger than `limits.max_archive_bytes`), its detached
    /// signature is verified against `key` over the exact bytes read, and
    /// only then is the archive unpacked in memory and compiled.
    pub fn load_signed_with(
        archive: &Path,
        signature: &Path,
        key: &PublicKey,
        policy: LoadPolicy,
        limits: &ArchiveLimits,
    ) -> Result<LoadReport, BundleError> {
        let archive_bytes =
            read_regular(archive, limits.max_archive_bytes).map_err(|e| match e {
                ReadError::TooLarge { size, .. } => BundleError::Archive {
                    archive: archive.to_owned(),
                    error: ArchiveError::TooLarge {
                        size,
                        limit: limits.max_archive_bytes,
                    },
                },
                other => BundleError::Io {
                    path: archive.to_owned(),
                    error: other.to_string(),
                },
            })?;
        let signature_bytes =
            read_regular(signature, archive::MAX_SIGNATURE_FILE).map_err(|e| match e {
                ReadError::TooLarge { size, .. } => BundleError::Signature {
                    archive: archive.to_owned(),
                    error: SignatureError::Encoding(format!(
                        "{}: {size} bytes; a signature is 64 raw bytes or 128 hex digits",
                        signature.display()
                    )),
                },
                other => BundleError::Io {
                    path: signature.to_owned(),
                    error: other.to_string(),
                },
            })?;
        Bundle::load_signed_bytes(archive, archive_bytes, signature_bytes, key, policy, limits)
    }

    /// [`Bundle::load_signed_with`] on bytes already in memory; `name` is
    /// the archive's path, used as the bundle's source and in messages.
    pub fn load_signed_bytes(
        name: &Path,
        archive_bytes: Vec<u8>,
        signature_bytes: Vec<u8>,
        key: &PublicKey,
        policy: LoadPolicy,
        limits: &ArchiveLimits,
    ) -> Result<LoadReport, BundleError> {
        if archive_bytes.len() as u64 > limits.max_archive_bytes {
            return Err(BundleError::Archive {
                archive: name.to_owned(),
                error: ArchiveError::TooLarge {
                    size: archive_bytes.len() as u64,
                    limit: limits.max_archive_bytes,
                },
            });
        }
        // Verify first: no byte of the archive is interpreted before this.
        archive::verify(&archive_bytes, &signature_bytes, key).map_err(|error| {
            BundleError::Signature {
                archive: name.to_owned(),
                error,
            }
        })?;
        let entries =
            archive::unpack(&archive_bytes, limits).map_err(|error| BundleError::Archive {
                archive: name.to_owned(),
                error,
            })?;
        let listed = entries
            .iter()
            .map(|(relative, bytes)| (name.join(relative), bytes.as_slice()))
            .collect();
        let compiled = Bundle::compile(name, listed, policy)?;
        Ok(compiled.report(BundleSource::Signed {
            archive: archive_bytes,
            signature: signature_bytes,
        }))
    }

    /// Compiles `listed` (path for messages, bytes) under `policy`.
    fn compile(
        source: &Path,
        listed: Vec<(PathBuf, &[u8])>,
        policy: LoadPolicy,
    ) -> Result<Compiled, BundleError> {
        if listed.is_empty() {
            return Err(BundleError::Empty(source.to_owned()));
        }
        let files = listed.len();
        let (rules, rejections) = compile_sources(listed);
        if policy == LoadPolicy::Strict && !rejections.is_empty() {
            return Err(BundleError::Rejected {
                accepted: rules.len(),
                rejections,
            });
        }
        Ok(Compiled {
            bundle: Arc::new(Bundle {
                source: source.to_owned(),
                engine: Engine::new(rules),
            }),
            files,
            rejections,
        })
    }
}

/// An accepted bundle before its sources are attached to the report.
struct Compiled {
    bundle: Arc<Bundle>,
    files: usize,
    rejections: Vec<Rejection>,
}

impl Compiled {
    fn report(self, sources: BundleSource) -> LoadReport {
        LoadReport {
            bundle: self.bundle,
            files: self.files,
            rejections: self.rejections,
            sources,
        }
    }
}

/// The running content: readers take a snapshot (`current`) per batch of
/// events; a new bundle replaces it only after it compiled.
#[derive(Debug)]
pub struct Content {
    current: RwLock<Arc<Bundle>>,
}

impl Content {
    pub fn new(bundle: Arc<Bundle>) -> Content {
        Content {
            current: RwLock::new(bundle),
        }
    }

    /// The bundle in force. Cheap: clones an `Arc` under a read lock.
    pub fn current(&self) -> Arc<Bundle> {
        // A poisoned lock still holds a complete bundle (the swap is one
        // assignment), so recover it rather than stop detection.
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Compiles `dir` and, only if it is accepted under `policy`, makes it
    /// current. On error the previous bundle stays in force.
    pub fn reload(&self, dir: &Path, policy: LoadPolicy) -> Result<LoadReport, BundleError> {
        let report = Bundle::load_with(dir, policy)?;
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::clone(&report.bundle);
        Ok(report)
    }
}
