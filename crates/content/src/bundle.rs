//! Bundles (a directory of rules, `*.yml` recursively) and the running
//! content holder that swaps bundles atomically and keeps the last known good.
//!
//! Policy. `Strict` (the default for production loads): one rejected rule
//! rejects the whole bundle and the running bundle stays. A bundle is built
//! for a sensor version and should have passed `content check`; a rejection
//! at load therefore means the content pipeline and the sensor disagree
//! (the 21-versus-20 situation), and silently running the rest would drop
//! detections nobody knows are gone. `Lenient` accepts the good rules and
//! reports the others: for trying third-party rule sets such as raw SigmaHQ,
//! which target every Sysmon field, not what ringside provides.

use crate::compile::{CompiledRule, Reason, Rejection, compile_rule};
use crate::engine::Engine;
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
    pub source: PathBuf,
    pub engine: Engine,
}

/// The outcome of compiling a bundle that was accepted.
#[derive(Debug)]
pub struct LoadReport {
    pub bundle: Arc<Bundle>,
    /// Rule files read.
    pub files: usize,
    /// Rejected rules (always empty under `Strict`).
    pub rejections: Vec<Rejection>,
}

/// Why a bundle was not accepted.
#[derive(Debug)]
pub enum BundleError {
    /// The directory could not be listed.
    Io { path: PathBuf, error: String },
    /// Strict policy: some rules were rejected, so the bundle is.
    Rejected { accepted: usize, rejections: Vec<Rejection> },
    /// No rule file was found: an empty bundle would silently disable detection.
    Empty(PathBuf),
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Io { path, error } => write!(f, "{}: cannot read the bundle: {error}", path.display()),
            BundleError::Rejected { accepted, rejections } => {
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
                write!(f, "{}: no *.yml rule files; refusing to replace content with nothing", path.display())
            }
        }
    }
}

impl std::error::Error for BundleError {}

/// Every `*.yml` / `*.yaml` file under `dir`, sorted (deterministic order).
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, BundleError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|e| BundleError::Io { path: current.clone(), error: e.to_string() })?;
        for entry in entries {
            let entry = entry.map_err(|e| BundleError::Io { path: current.clone(), error: e.to_string() })?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| BundleError::Io { path: path.clone(), error: e.to_string() })?;
            // Symlinks are not followed: a bundle is a plain tree.
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Compiles every rule file; returns the accepted rules and the rejections.
pub fn compile_files(files: &[PathBuf]) -> (Vec<CompiledRule>, Vec<Rejection>) {
    let mut rules = Vec::new();
    let mut rejections = Vec::new();
    for path in files {
        let result = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => compile_rule(&text, path),
                Err(_) => Err(Rejection { path: path.clone(), line: 1, reason: Reason::Malformed("the file is not UTF-8".into()) }),
            },
            Err(e) => Err(Rejection { path: path.clone(), line: 1, reason: Reason::Malformed(format!("cannot read: {e}")) }),
        };
        match result {
            Ok(rule) => rules.push(rule),
            Err(rejection) => rejections.push(rejection),
        }
    }
    (rules, rejections)
}

impl Bundle {
    /// Loads `dir` with the default (strict) policy.
    pub fn load(dir: &Path) -> Result<LoadReport, BundleError> {
        Bundle::load_with(dir, LoadPolicy::default())
    }

    /// Loads `dir` with `policy`.
    pub fn load_with(dir: &Path, policy: LoadPolicy) -> Result<LoadReport, BundleError> {
        let files = rule_files(dir)?;
        if files.is_empty() {
            return Err(BundleError::Empty(dir.to_owned()));
        }
        let (rules, rejections) = compile_files(&files);
        if policy == LoadPolicy::Strict && !rejections.is_empty() {
            return Err(BundleError::Rejected { accepted: rules.len(), rejections });
        }
        let bundle = Arc::new(Bundle { source: dir.to_owned(), engine: Engine::new(rules) });
        Ok(LoadReport { bundle, files: files.len(), rejections })
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
        Content { current: RwLock::new(bundle) }
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
