//! The last known good bundle, kept on disk so a restart with broken
//! configured content still detects with what last ran well.
//!
//! Layout under the state directory: `last-known-good/` holding either the
//! rule files of a directory bundle under `rules/`, or a signed archive as
//! `bundle.rsb` + `bundle.rsb.sig` (kept signed: it is verified again with
//! the configured key when loaded, so the copy on disk is no weaker than the
//! original). It is written from the bytes that were compiled, never copied
//! again from the configured path.
//!
//! Replacement: the new copy is written to `last-known-good.new/`, the old
//! one renamed to `last-known-good.old/`, the new one renamed into place,
//! the old one removed. A crash between the two renames leaves only `.old`,
//! which [`LastKnownGood::load`] falls back to.

use crate::archive::{ArchiveLimits, PublicKey};
use crate::bundle::{Bundle, BundleError, BundleSource, LoadPolicy, LoadReport};
use std::io;
use std::path::{Component, Path, PathBuf};

const DIR: &str = "last-known-good";
const ARCHIVE: &str = "bundle.rsb";
const SIGNATURE: &str = "bundle.rsb.sig";
const RULES: &str = "rules";

/// The last known good copy in a state directory.
#[derive(Clone, Debug)]
pub struct LastKnownGood {
    state: PathBuf,
}

impl LastKnownGood {
    /// The copy kept in `state/last-known-good/`.
    pub fn in_state_dir(state: &Path) -> LastKnownGood {
        LastKnownGood {
            state: state.to_owned(),
        }
    }

    /// The directory holding the current copy.
    pub fn path(&self) -> PathBuf {
        self.state.join(DIR)
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        self.state.join(format!("{DIR}.{suffix}"))
    }

    /// Replaces the copy with `sources`.
    pub fn save(&self, sources: &BundleSource) -> io::Result<()> {
        std::fs::create_dir_all(&self.state)?;
        let new = self.sibling("new");
        let old = self.sibling("old");
        remove_if_present(&new)?;
        std::fs::create_dir_all(&new)?;
        match sources {
            BundleSource::Files(files) => {
                for (relative, bytes) in files {
                    // Relative paths come from walking a directory; refuse
                    // anything else rather than write outside `new`.
                    if relative
                        .components()
                        .any(|c| !matches!(c, Component::Normal(_)))
                    {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("{}: not a plain relative path", relative.display()),
                        ));
                    }
                    let path = new.join(RULES).join(relative);
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::write(path, bytes)?;
                }
            }
            BundleSource::Signed { archive, signature } => {
                std::fs::write(new.join(ARCHIVE), archive)?;
                std::fs::write(new.join(SIGNATURE), signature)?;
            }
        }
        remove_if_present(&old)?;
        let current = self.path();
        if current.exists() {
            std::fs::rename(&current, &old)?;
        }
        std::fs::rename(&new, &current)?;
        remove_if_present(&old)
    }

    /// Loads the copy. A signed copy needs `key` (the configured one).
    pub fn load(
        &self,
        policy: LoadPolicy,
        key: Option<&PublicKey>,
    ) -> Result<LoadReport, BundleError> {
        let current = self.path();
        let old = self.sibling("old");
        let dir = if current.exists() {
            current
        } else if old.exists() {
            old
        } else {
            return Err(BundleError::Io {
                path: current,
                error: "no last known good bundle has been saved yet".into(),
            });
        };
        let archive = dir.join(ARCHIVE);
        if archive.exists() {
            let Some(key) = key else {
                return Err(BundleError::PublicKey {
                    path: archive,
                    reason: "the last known good bundle is a signed archive; give --rules-pubkey"
                        .into(),
                });
            };
            Bundle::load_signed_with(
                &archive,
                &dir.join(SIGNATURE),
                key,
                policy,
                &ArchiveLimits::default(),
            )
        } else {
            Bundle::load_with(&dir.join(RULES), policy)
        }
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
