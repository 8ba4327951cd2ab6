//! Enrichment that is only safe in user mode: PE version resources,
//! hashes and Authenticode signatures of process and loaded images (cached
//! by file identity), SID → account name, integrity-level names.
//!
//! Two modes. Inline (replay, the default): every lookup is done when the
//! event needs it, so output is a pure function of the input. Background
//! (the live agent, [`EnrichConfig::background`]): reading and hashing a
//! file and `LookupAccountSidW` — the lookups that can take long — run on
//! a worker thread ([`worker`]) so they never stall the thread that reads
//! the driver. The event that asks waits for its lookup, but all events of
//! one READ batch together wait at most [`WAIT_PER_BATCH`]
//! ([`Enricher::new_batch`]): a small image is hashed in well under that,
//! so its first event carries its hashes, while a 256 MiB one holds the
//! READ loop no longer than that. An event whose lookup is not finished
//! then goes out without it:
//! no version fields and no `Hashes`, and `User` as the `S-1-…` text
//! (well-known names are pure tables and always inline). Such events are
//! counted as `deferred`; the lookup's result is cached when it arrives
//! and later events for the same file or SID carry it. A lookup the full
//! queue refused is counted as `overflow` and asked again by the next
//! event that needs it. Events are never held or dropped for enrichment,
//! so output order (by Seq) and the driver accounting are unaffected; both
//! counts are in every 1004 (`EnrichDeferred`, `EnrichOverflow`).

pub mod authenticode;
pub mod hash;
pub mod pe;
pub mod process_params;
pub mod sid;
pub mod worker;

use std::collections::{HashMap, HashSet as Pending};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hash::HashSet;
use sid::Sid;

/// Files larger than this are not read (hashing a multi-GiB image on the
/// event path would stall every other event).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Cache entries kept before the cache is cleared and refilled.
const CACHE_CAPACITY: usize = 4096;
/// Lookups queued for the background worker of the live agent.
pub const DEFAULT_QUEUE: usize = 256;
/// Longest the events of one READ batch wait, all together, for the
/// background worker's lookups before going out without them.
pub const WAIT_PER_BATCH: Duration = Duration::from_millis(50);

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
    /// Check each image's Authenticode signature ([`authenticode`]): the
    /// `Signed`, `Signature` and `SignatureStatus` of events 6 and 7.
    pub signatures: bool,
    /// Do file reads and account lookups on a worker thread with a queue
    /// of this many jobs (the live agent); `None`: inline (replay).
    pub background: Option<usize>,
    /// With `background`: how long, in all, the events of one READ batch
    /// wait for the worker's answers ([`WAIT_PER_BATCH`]).
    pub batch_wait: Duration,
    /// Read live processes (their current directory, [`process_params`]):
    /// only the live agent, whose pids are this machine's processes now.
    pub live_processes: bool,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            files: true,
            hashes: HashSet::default(),
            files_root: None,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            signatures: true,
            background: None,
            batch_wait: WAIT_PER_BATCH,
            live_processes: false,
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
            signatures: false,
            background: None,
            batch_wait: WAIT_PER_BATCH,
            live_processes: false,
        }
    }
}

/// What was learned about one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    pub version: pe::VersionInfo,
    /// Sysmon `Hashes` text, empty if not computed.
    pub hashes: String,
    /// Named exports, (RVA, name) sorted by RVA ([`pe::exports`]).
    pub exports: Vec<(u32, String)>,
    /// The file's signature, if checked (a PE, and
    /// [`EnrichConfig::signatures`]).
    pub signature: Option<authenticode::Verdict>,
}

impl FileInfo {
    /// The export at exactly `rva`, as Sysmon 8 reports `StartFunction`
    /// (an address inside a function names none). Of aliases, the first
    /// name in byte order.
    pub fn export_at(&self, rva: u32) -> Option<&str> {
        let i = self.exports.partition_point(|(r, _)| *r < rva);
        self.exports
            .get(i)
            .filter(|(r, _)| *r == rva)
            .map(|(_, name)| name.as_str())
    }
}

/// Enrichment counters, reported in stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnrichCounters {
    pub file_reads: u64,
    pub cache_hits: u64,
    pub missing_files: u64,
    pub bad_sids: u64,
    /// Events that went out without a lookup that was not finished yet.
    pub deferred: u64,
    /// Lookups the background queue was too full to take.
    pub overflow: u64,
}

/// A file's identity: where, how long, last modified.
type FileKey = (PathBuf, u64, Option<SystemTime>);

/// A lookup for the background worker.
#[derive(Debug)]
enum Job {
    File(FileKey),
    Account(Vec<u8>),
    /// The platform's trust decision for a file whose embedded signature
    /// was parsed ([`platform_trust`]): a job of its own, after the file's
    /// hashes are cached, because its first call can take longer than an
    /// event may wait (WinVerifyTrust loads its providers and catalogs).
    Trust(FileKey, authenticode::Verdict),
}

/// A finished lookup.
#[derive(Debug)]
enum Done {
    /// Boxed: a file's info (with its signature verdict) is far larger
    /// than an account name.
    File(FileKey, Option<Box<FileInfo>>),
    Account(Vec<u8>, Option<String>),
    Trust(FileKey, authenticode::Verdict),
}

/// The enricher with its caches.
#[derive(Debug)]
pub struct Enricher {
    config: EnrichConfig,
    files: HashMap<FileKey, Arc<FileInfo>>,
    accounts: HashMap<Vec<u8>, String>,
    pub counters: EnrichCounters,
    /// The background worker (live), with the lookups it was given that
    /// have not come back yet.
    worker: Option<worker::Worker<Job, Done>>,
    pending_files: Pending<FileKey>,
    pending_accounts: Pending<Vec<u8>>,
    /// Until when the current batch's events may wait for lookups.
    wait_until: Instant,
}

impl Enricher {
    pub fn new(config: EnrichConfig) -> Self {
        let files = config.clone();
        Enricher::with_work(config, move |job| match job {
            Job::File(key) => {
                let info = read_file_info(&files, &key.0);
                Done::File(key, info.map(Box::new))
            }
            Job::Account(sid) => {
                let name = lookup_account(&sid);
                Done::Account(sid, name)
            }
            Job::Trust(key, embedded) => {
                let verdict = platform_trust(&key.0, embedded);
                Done::Trust(key, verdict)
            }
        })
    }

    /// An enricher whose background worker (if configured) runs `work`.
    fn with_work(config: EnrichConfig, work: impl FnMut(Job) -> Done + Send + 'static) -> Self {
        // Without a thread (the system refused one), lookups are inline:
        // slower, never wrong.
        let worker = config
            .background
            .and_then(|capacity| worker::Worker::spawn("ringside-enrich", capacity, work).ok());
        Enricher {
            config,
            files: HashMap::new(),
            accounts: HashMap::new(),
            counters: EnrichCounters::default(),
            worker,
            pending_files: Pending::new(),
            pending_accounts: Pending::new(),
            wait_until: Instant::now(),
        }
    }

    /// A new READ batch begins: its events may wait
    /// [`EnrichConfig::batch_wait`] in all for the background worker.
    pub fn new_batch(&mut self) {
        self.wait_until = Instant::now() + self.config.batch_wait;
    }

    /// Takes in the worker's results until `ready` holds or the batch's
    /// wait is spent. Returns `ready`'s last answer.
    fn wait_for(&mut self, ready: impl Fn(&Self) -> bool) -> bool {
        loop {
            if ready(self) {
                return true;
            }
            let left = self.wait_until.saturating_duration_since(Instant::now());
            let Some(worker) = &self.worker else {
                return false;
            };
            if left.is_zero() {
                return false;
            }
            let Some(done) = worker.done_within(left) else {
                return false;
            };
            self.take(done);
        }
    }

    /// Takes in what the background worker finished.
    fn collect(&mut self) {
        while let Some(done) = self.worker.as_ref().and_then(worker::Worker::try_done) {
            self.take(done);
        }
    }

    /// One finished lookup into the caches.
    fn take(&mut self, done: Done) {
        match done {
            Done::File(key, info) => {
                self.pending_files.remove(&key);
                if let Some(info) = info {
                    self.counters.file_reads += 1;
                    let trust = info
                        .signature
                        .clone()
                        .filter(|_| PLATFORM_TRUST)
                        .map(|embedded| Job::Trust(key.clone(), embedded));
                    cache_insert(&mut self.files, key, Arc::from(info));
                    if let Some(job) = trust {
                        self.defer(job);
                    }
                }
            }
            Done::Trust(key, verdict) => {
                // The file's entry with the platform's verdict; an entry
                // replaced meanwhile (the file changed) keeps its own.
                if let Some(info) = self.files.get_mut(&key) {
                    let mut updated = FileInfo::clone(info);
                    updated.signature = Some(verdict);
                    *info = Arc::new(updated);
                }
            }
            Done::Account(sid, name) => {
                self.pending_accounts.remove(&sid);
                let name = name.unwrap_or_else(|| sid_text(&sid));
                cache_insert(&mut self.accounts, sid, name);
            }
        }
    }

    /// Gives the worker `job` unless it is already pending.
    fn defer(&mut self, job: Job) {
        let pending = match &job {
            Job::File(key) => self.pending_files.contains(key),
            Job::Account(sid) => self.pending_accounts.contains(sid),
            Job::Trust(..) => false,
        };
        let Some(worker) = &mut self.worker else {
            return;
        };
        if pending {
            return;
        }
        let key = match &job {
            Job::File(key) => Some(Ok(key.clone())),
            Job::Account(sid) => Some(Err(sid.clone())),
            Job::Trust(..) => None,
        };
        match worker.submit(job) {
            worker::Submitted::Queued => match key {
                Some(Ok(file)) => {
                    self.pending_files.insert(file);
                }
                Some(Err(sid)) => {
                    self.pending_accounts.insert(sid);
                }
                None => {}
            },
            worker::Submitted::Overflow => self.counters.overflow += 1,
            worker::Submitted::Gone => {}
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

    /// The current directory of the live process `pid`, created at or
    /// before `created_by` (FILETIME); `None` when this enricher does not
    /// read live processes or the process cannot be read (see
    /// [`process_params`]). Read inline: three small reads of another
    /// process's memory, done as soon as possible, before the process can
    /// change its directory or exit.
    pub fn current_directory(&self, pid: u32, created_by: u64) -> Option<String> {
        if !self.config.live_processes {
            return None;
        }
        process_params::current_directory(pid, created_by)
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
        if self.worker.is_some() {
            self.collect();
        }
        if let Some(info) = self.files.get(&key) {
            self.counters.cache_hits += 1;
            return Some(Arc::clone(info));
        }
        if self.worker.is_some() {
            self.defer(Job::File(key.clone()));
            let queued = self.pending_files.contains(&key);
            if queued && self.wait_for(|e| e.files.contains_key(&key)) {
                return self.files.get(&key).map(Arc::clone);
            }
            self.counters.deferred += 1;
            return None;
        }
        let mut info = read_file_info(&self.config, &key.0)?;
        if PLATFORM_TRUST {
            info.signature = info
                .signature
                .map(|embedded| platform_trust(&key.0, embedded));
        }
        let info = Arc::new(info);
        self.counters.file_reads += 1;
        cache_insert(&mut self.files, key, Arc::clone(&info));
        Some(info)
    }

    /// The `Contents` of the named stream at `dos_path`
    /// ([`crate::stream::contents`]). Read inline: at most
    /// [`crate::stream::CONTENTS_LIMIT`] bytes are read, and a longer stream
    /// has none.
    pub fn stream_contents(&mut self, dos_path: &str) -> Option<String> {
        use std::io::Read;
        if !self.config.files {
            return None;
        }
        let local = self.local_path(dos_path)?;
        // Only a regular file (a stream is one) is opened: a FIFO or device
        // under `--files-root` could block the read.
        let regular = std::fs::metadata(&local).is_ok_and(|m| m.is_file());
        let Some(file) = regular.then(|| std::fs::File::open(&local).ok()).flatten() else {
            self.counters.missing_files += 1;
            return None;
        };
        let mut bytes = Vec::with_capacity(crate::stream::CONTENTS_LIMIT);
        file.take(crate::stream::CONTENTS_LIMIT as u64)
            .read_to_end(&mut bytes)
            .ok()?;
        self.counters.file_reads += 1;
        crate::stream::contents(&bytes)
    }

    /// When the file at `dos_path` was created (FILETIME), if the file
    /// system records it.
    pub fn created(&self, dos_path: &str) -> Option<u64> {
        if !self.config.files {
            return None;
        }
        let created = std::fs::metadata(self.local_path(dos_path)?)
            .ok()?
            .created()
            .ok()?;
        Some(crate::time::filetime_of(created))
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
        if let Some(name) = sid::well_known_account(&text) {
            cache_insert(&mut self.accounts, sid_bytes.to_vec(), name.to_owned());
            return Some(name.to_owned());
        }
        if self.worker.is_some() {
            self.collect();
            if let Some(name) = self.accounts.get(sid_bytes) {
                return Some(name.clone());
            }
            self.defer(Job::Account(sid_bytes.to_vec()));
            let queued = self.pending_accounts.contains(sid_bytes);
            if queued && self.wait_for(|e| e.accounts.contains_key(sid_bytes)) {
                return self.accounts.get(sid_bytes).cloned();
            }
            self.counters.deferred += 1;
            return Some(text);
        }
        let name = lookup_account(sid_bytes).unwrap_or(text);
        cache_insert(&mut self.accounts, sid_bytes.to_vec(), name.clone());
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

/// Version info and hashes of the file at `local`, or `None` if it cannot
/// be read. The same work inline and on the worker.
fn read_file_info(config: &EnrichConfig, local: &std::path::Path) -> Option<FileInfo> {
    let bytes = std::fs::read(local).ok()?;
    let parsed = pe::Image::parse(&bytes);
    let version = parsed
        .as_ref()
        .and_then(pe::version_info)
        .unwrap_or_default();
    let hashes = if config.hashes.is_empty() {
        String::new()
    } else {
        let imphash = if config.hashes.imphash {
            parsed.as_ref().and_then(pe::imphash)
        } else {
            None
        };
        hash::sysmon_hashes(config.hashes, &bytes, imphash)
    };
    let exports = parsed.as_ref().map(pe::exports).unwrap_or_default();
    let signature = if config.signatures {
        signature(local, parsed.as_ref())
    } else {
        None
    };
    Some(FileInfo {
        version,
        hashes,
        exports,
        signature,
    })
}

/// The signature of the image at `local`: the portable check of its
/// embedded signature ([`authenticode::verify`]); `None` if it is not a PE.
/// The file was read whole, so it is below [`EnrichConfig::max_file_bytes`];
/// above that bound nothing is read and the events carry only what the
/// kernel's signing level says. On Windows the platform's decision follows
/// ([`platform_trust`]).
fn signature(
    _local: &std::path::Path,
    image: Option<&pe::Image<'_>>,
) -> Option<authenticode::Verdict> {
    image.map(authenticode::verify)
}

/// Whether this platform has a trust decision beyond the portable check.
const PLATFORM_TRUST: bool = cfg!(windows);

/// On Windows: `WinVerifyTrust` (chain, revocation from the local cache,
/// catalogs; [`crate::win::verify_trust`]) names the status; the signer's
/// name comes from the portable parse of the embedded signature when the
/// file has one, else from the catalog's signer that `WinVerifyTrust`
/// reports. Elsewhere the portable verdict stands.
#[cfg(windows)]
fn platform_trust(
    local: &std::path::Path,
    embedded: authenticode::Verdict,
) -> authenticode::Verdict {
    crate::win::verify_trust(local, embedded)
}

#[cfg(not(windows))]
fn platform_trust(
    _local: &std::path::Path,
    embedded: authenticode::Verdict,
) -> authenticode::Verdict {
    embedded
}

/// Inserts into a bounded cache: when full, it is cleared and refilled.
fn cache_insert<K: std::hash::Hash + Eq, V>(cache: &mut HashMap<K, V>, key: K, value: V) {
    if cache.len() >= CACHE_CAPACITY {
        cache.clear();
    }
    cache.insert(key, value);
}

/// The `S-1-…` text of a SID the worker could not name (parsed before it
/// was queued, so the fallback is never reached).
fn sid_text(sid_bytes: &[u8]) -> String {
    Sid::parse(sid_bytes)
        .map(|s| s.to_string())
        .unwrap_or_default()
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

    /// The platform's signature path on an unsigned image (the PE fixture):
    /// the portable check off Windows; on Windows (and under Wine) also
    /// `WinVerifyTrust`'s catalog lookup, which finds no catalog for it.
    /// Either way: unsigned, `Unavailable`, no signer. A file that is not
    /// a PE has no verdict.
    #[test]
    fn an_unsigned_image_is_unsigned_on_every_platform() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fixture = dir.path().join("fixture64.exe");
        std::fs::write(
            &fixture,
            include_bytes!("../../tests/data/pe/fixture64.exe"),
        )
        .expect("write");
        let info = read_file_info(&EnrichConfig::default(), &fixture).expect("read");
        let verdict = info.signature.expect("a PE has a verdict");
        assert_eq!(verdict.status, authenticode::Status::Unsigned);
        assert_eq!(verdict.signer, None);
        assert_eq!(verdict.sysmon(), ("false", "Unavailable"));
        let off = EnrichConfig {
            signatures: false,
            ..EnrichConfig::default()
        };
        assert_eq!(
            read_file_info(&off, &fixture).expect("read").signature,
            None
        );
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, b"not a PE").expect("write");
        let info = read_file_info(&EnrichConfig::default(), &text).expect("read");
        assert_eq!(info.signature, None);
    }

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

    /// A real PE image through `file`: version strings and the imphash in
    /// Sysmon's format (the values are checked against independent readers
    /// in tests/pe_enrich.rs).
    #[test]
    fn pe_files_get_version_info_and_imphash() {
        if cfg!(windows) {
            return; // Paths are used as they are there.
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let windows = dir.path().join("C").join("Windows");
        std::fs::create_dir_all(&windows).expect("mkdir");
        let image = include_bytes!("../../tests/data/pe/fixture64.exe");
        std::fs::write(windows.join("fixture.exe"), image).expect("write");
        let mut enricher = Enricher::new(EnrichConfig {
            files_root: Some(dir.path().to_owned()),
            hashes: HashSet::parse("imphash").expect("valid"),
            ..EnrichConfig::default()
        });
        let info = enricher.file(r"C:\Windows\fixture.exe").expect("found");
        assert_eq!(info.hashes, "IMPHASH=9488A08CC3E07ADB131B3A40383B8395");
        assert_eq!(info.version.company.as_deref(), Some("Ringside Test GmbH"));
        assert_eq!(
            info.version.original_file_name.as_deref(),
            Some("fixture.exe")
        );
    }

    fn files_under_root(names: &[&str]) -> (tempfile::TempDir, EnrichConfig) {
        let dir = tempfile::tempdir().expect("tempdir");
        let windows = dir.path().join("C").join("Windows");
        std::fs::create_dir_all(&windows).expect("mkdir");
        for name in names {
            std::fs::write(windows.join(name), b"abc").expect("write");
        }
        let config = EnrichConfig {
            files_root: Some(dir.path().to_owned()),
            hashes: HashSet::parse("md5").expect("valid"),
            background: Some(1),
            ..EnrichConfig::default()
        };
        (dir, config)
    }

    /// In background mode the first event for a file goes without its
    /// hashes; a later one carries them, computed off the caller's thread.
    #[test]
    fn background_lookups_arrive_for_later_events() {
        if cfg!(windows) {
            return; // Paths are used as they are there.
        }
        let (_dir, config) = files_under_root(&["x.exe"]);
        let mut enricher = Enricher::new(config);
        assert!(
            enricher.file(r"C:\Windows\x.exe").is_none(),
            "not ready yet"
        );
        let mut info = None;
        for _ in 0..500 {
            info = enricher.file(r"C:\Windows\x.exe");
            if info.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let info = info.expect("the worker finished");
        assert_eq!(info.hashes, "MD5=900150983CD24FB0D6963F7D28E17F72");
        assert_eq!(enricher.counters.file_reads, 1);
        assert!(enricher.counters.deferred >= 1);
        assert_eq!(enricher.counters.overflow, 0);
    }

    /// Within a batch's wait, the first event for a small file carries its
    /// hashes: the worker answers before the wait is spent.
    #[test]
    fn a_quick_lookup_is_waited_for_within_the_batch() {
        if cfg!(windows) {
            return;
        }
        let (_dir, config) = files_under_root(&["x.exe"]);
        let mut enricher = Enricher::new(config);
        enricher.new_batch();
        let info = enricher
            .file(r"C:\Windows\x.exe")
            .expect("answered in time");
        assert_eq!(info.hashes, "MD5=900150983CD24FB0D6963F7D28E17F72");
        assert_eq!(enricher.counters.deferred, 0);
    }

    /// A lookup that takes longer holds the batch no longer than
    /// WAIT_PER_BATCH, in all, however many events ask.
    #[test]
    fn a_slow_lookup_holds_a_batch_at_most_its_wait() {
        if cfg!(windows) {
            return;
        }
        let names: Vec<String> = (0..20).map(|i| format!("{i}.exe")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (_dir, mut config) = files_under_root(&names);
        // Room for every lookup, so each event has one to wait for.
        config.background = Some(64);
        let (gate, gate_rx) = std::sync::mpsc::channel::<()>();
        let mut enricher = Enricher::with_work(config, move |job| {
            let _ = gate_rx.recv();
            match job {
                Job::File(key) => Done::File(key, None),
                Job::Account(sid) => Done::Account(sid, None),
                Job::Trust(key, verdict) => Done::Trust(key, verdict),
            }
        });
        enricher.new_batch();
        let started = Instant::now();
        for name in &names {
            assert!(enricher.file(&format!(r"C:\Windows\{name}")).is_none());
        }
        let held = started.elapsed();
        // 20 events: a wait per event would hold the batch for 1 s.
        assert!(held >= WAIT_PER_BATCH, "waited {held:?}");
        assert!(held < WAIT_PER_BATCH * 10, "held the batch {held:?}");
        assert_eq!(enricher.counters.deferred, 20);
        drop(gate);
    }

    /// A worker stuck on a slow file never blocks the caller: lookups the
    /// full queue cannot take are counted, and asked again later.
    #[test]
    fn a_full_enrichment_queue_is_counted_not_waited_for() {
        if cfg!(windows) {
            return;
        }
        let (_dir, config) = files_under_root(&["a.exe", "b.exe", "c.exe"]);
        let (started_tx, started) = std::sync::mpsc::channel();
        let (gate, gate_rx) = std::sync::mpsc::channel::<()>();
        let mut enricher = Enricher::with_work(config, move |job| {
            let _ = started_tx.send(());
            let _ = gate_rx.recv();
            match job {
                Job::File(key) => Done::File(key, None),
                Job::Account(sid) => Done::Account(sid, None),
                Job::Trust(key, verdict) => Done::Trust(key, verdict),
            }
        });
        assert!(enricher.file(r"C:\Windows\a.exe").is_none());
        started
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the worker took a.exe");
        assert!(enricher.file(r"C:\Windows\b.exe").is_none(), "queued");
        assert!(enricher.file(r"C:\Windows\c.exe").is_none(), "refused");
        assert!(
            enricher.file(r"C:\Windows\a.exe").is_none(),
            "pending, not queued again"
        );
        assert_eq!(enricher.counters.deferred, 4);
        assert_eq!(enricher.counters.overflow, 1);
        drop(gate);
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
