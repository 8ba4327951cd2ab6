//! Enrichment that is only safe in user mode: PE version resources and
//! hashes of process and loaded images (cached by file identity), SID →
//! account name, integrity-level names.

pub mod hash;
pub mod pe;
pub mod sid;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use hash::HashSet;
use sid::Sid;

/// Files larger than this are not read (hashing a multi-GiB image on the
/// event path would stall every other event).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Cache entries kept before the cache is cleared and refilled.
const CACHE_CAPACITY: usize = 4096;

/// What to enrich.
#[derive(Clone, Debug)]
pub struct EnrichConfig {
    /// Read files for version info and hashes.
    pub files: bool,
    pub hashes: HashSet,
    /// Where DOS paths live on this machine when not on Windows:
    /// `C:\x\y.exe` → `ROOT/C/x/y.exe`. On Windows paths are used as they are.
    pub files_root: Option<PathBuf>,
    pub max_file_bytes: u64,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            files: true,
            hashes: HashSet::default(),
            files_root: None,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

impl EnrichConfig {
    /// No file reads at all (`--no-enrich`); SID and integrity names stay,
    /// they are pure tables.
    pub fn none() -> Self {
        EnrichConfig {
            files: false,
            hashes: HashSet::NONE,
            files_root: None,
            max_file_bytes: 0,
        }
    }
}

/// What was learned about one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    pub version: pe::VersionInfo,
    /// Sysmon `Hashes` text, empty if not computed.
    pub hashes: String,
}

/// Enrichment counters, reported in stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnrichCounters {
    pub file_reads: u64,
    pub cache_hits: u64,
    pub missing_files: u64,
    pub bad_sids: u64,
}

/// The enricher with its caches.
#[derive(Debug)]
pub struct Enricher {
    config: EnrichConfig,
    files: HashMap<(PathBuf, u64, Option<SystemTime>), Arc<FileInfo>>,
    accounts: HashMap<Vec<u8>, String>,
    pub counters: EnrichCounters,
}

impl Enricher {
    pub fn new(config: EnrichConfig) -> Self {
        Enricher {
            config,
            files: HashMap::new(),
            accounts: HashMap::new(),
            counters: EnrichCounters::default(),
        }
    }

    /// The hashes computed.
    pub fn hashes(&self) -> HashSet {
        self.config.hashes
    }

    /// Computes `hashes` from now on (a reloaded Sysmon configuration's
    /// HashAlgorithms); cached results with other hashes are dropped.
    pub fn set_hashes(&mut self, hashes: HashSet) {
        if self.config.hashes != hashes {
            self.config.hashes = hashes;
            self.files.clear();
        }
    }

    /// Where the DOS path `path` can be read on this machine, if anywhere.
    fn local_path(&self, dos_path: &str) -> Option<PathBuf> {
        if cfg!(windows) {
            return Some(PathBuf::from(dos_path));
        }
        let root = self.config.files_root.as_ref()?;
        let (drive, rest) = dos_path.split_once(":\\")?;
        if drive.len() != 1 || !drive.bytes().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        let mut local = root.join(drive.to_ascii_uppercase());
        for part in rest
            .split('\\')
            .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        {
            local.push(part);
        }
        Some(local)
    }

    /// Version info and hashes of the image at `dos_path`, from the cache
    /// when the file's identity (path, size, mtime) is unchanged.
    pub fn file(&mut self, dos_path: &str) -> Option<Arc<FileInfo>> {
        if !self.config.files {
            return None;
        }
        let local = self.local_path(dos_path)?;
        let Ok(meta) = std::fs::metadata(&local) else {
            self.counters.missing_files += 1;
            return None;
        };
        if !meta.is_file() || meta.len() > self.config.max_file_bytes {
            return None;
        }
        let key = (local, meta.len(), meta.modified().ok());
        if let Some(info) = self.files.get(&key) {
            self.counters.cache_hits += 1;
            return Some(Arc::clone(info));
        }
        let bytes = std::fs::read(&key.0).ok()?;
        self.counters.file_reads += 1;
        let parsed = pelite::PeFile::from_bytes(&bytes).ok();
        let version = parsed
            .as_ref()
            .and_then(pe::version_info)
            .unwrap_or_default();
        let hashes = if self.config.hashes.is_empty() {
            String::new()
        } else {
            let imphash = if self.config.hashes.imphash {
                parsed.as_ref().and_then(pe::imphash)
            } else {
                None
            };
            hash::sysmon_hashes(self.config.hashes, &bytes, imphash)
        };
        let info = Arc::new(FileInfo { version, hashes });
        if self.files.len() >= CACHE_CAPACITY {
            self.files.clear();
        }
        self.files.insert(key, Arc::clone(&info));
        Some(info)
    }

    /// The account name Sysmon would print for a binary SID: well-known
    /// names everywhere, `LookupAccountSidW` on Windows, else the `S-1-…`
    /// text. Malformed SIDs yield `None` and are counted.
    pub fn account(&mut self, sid_bytes: &[u8]) -> Option<String> {
        if sid_bytes.is_empty() {
            return None;
        }
        if let Some(name) = self.accounts.get(sid_bytes) {
            return Some(name.clone());
        }
        let sid = match Sid::parse(sid_bytes) {
            Ok(sid) => sid,
            Err(_) => {
                self.counters.bad_sids += 1;
                return None;
            }
        };
        let text = sid.to_string();
        let name = sid::well_known_account(&text)
            .map(str::to_owned)
            .or_else(|| lookup_account(sid_bytes))
            .unwrap_or(text);
        if self.accounts.len() >= CACHE_CAPACITY {
            self.accounts.clear();
        }
        self.accounts.insert(sid_bytes.to_vec(), name.clone());
        Some(name)
    }

    /// The integrity-level name of a mandatory-label SID, or its text.
    pub fn integrity_level(&mut self, sid_bytes: &[u8]) -> Option<String> {
        if sid_bytes.is_empty() {
            return None;
        }
        match Sid::parse(sid_bytes) {
            Ok(sid) => Some(
                sid::integrity_level_name(&sid)
                    .map(str::to_owned)
                    .unwrap_or_else(|| sid.to_string()),
            ),
            Err(_) => {
                self.counters.bad_sids += 1;
                None
            }
        }
    }
}

#[cfg(windows)]
fn lookup_account(sid_bytes: &[u8]) -> Option<String> {
    crate::win::lookup_account_sid(sid_bytes)
}

#[cfg(not(windows))]
fn lookup_account(_sid_bytes: &[u8]) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_under_the_root_and_cached_by_identity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let windows = dir.path().join("C").join("Windows");
        std::fs::create_dir_all(&windows).expect("mkdir");
        std::fs::write(windows.join("x.exe"), b"abc").expect("write");
        let mut enricher = Enricher::new(EnrichConfig {
            files_root: Some(dir.path().to_owned()),
            hashes: HashSet::parse("md5").expect("valid"),
            ..EnrichConfig::default()
        });
        if cfg!(windows) {
            return; // Paths are used as they are there.
        }
        let info = enricher.file(r"C:\Windows\x.exe").expect("found");
        assert_eq!(info.hashes, "MD5=900150983CD24FB0D6963F7D28E17F72");
        assert_eq!(info.version, pe::VersionInfo::default(), "not a PE file");
        let again = enricher.file(r"c:\Windows\x.exe");
        assert_eq!(again.as_deref(), Some(&*info));
        assert_eq!(enricher.counters.file_reads, 1);
        assert_eq!(enricher.counters.cache_hits, 1);
        assert!(enricher.file(r"C:\Windows\absent.exe").is_none());
        assert_eq!(enricher.counters.missing_files, 1);
        let mut off = Enricher::new(EnrichConfig::none());
        assert!(off.file(r"C:\Windows\x.exe").is_none());
    }

    #[test]
    fn accounts_and_integrity_levels() {
        let mut enricher = Enricher::new(EnrichConfig::none());
        assert_eq!(
            enricher.account(&sid::encode(5, &[18])).as_deref(),
            Some(r"NT AUTHORITY\SYSTEM")
        );
        if !cfg!(windows) {
            assert_eq!(
                enricher
                    .account(&sid::encode(5, &[21, 7, 8, 9, 1001]))
                    .as_deref(),
                Some("S-1-5-21-7-8-9-1001")
            );
        }
        assert_eq!(enricher.account(&[1, 2, 3]), None);
        assert_eq!(enricher.counters.bad_sids, 1);
        assert_eq!(
            enricher
                .integrity_level(&sid::encode(16, &[0x3000]))
                .as_deref(),
            Some("High")
        );
        assert_eq!(
            enricher
                .integrity_level(&sid::encode(16, &[0x3001]))
                .as_deref(),
            Some("S-1-16-12289")
        );
    }
}
