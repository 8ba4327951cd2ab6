//! Signed archive bundles: one file carrying a rule directory, plus a
//! detached ed25519 signature.
//!
//! Format (`.rsb`, "ringside bundle"): a POSIX tar archive (ustar, pax or GNU
//! headers; uncompressed) of the rule directory, e.g. `tar -cf rules.rsb -C
//! rules .`. Entries may be regular files and directories only; a link or
//! device entry rejects the archive, as does an absolute path or a `..`
//! component. Files named `*.yml` / `*.yaml` are rules; other files are
//! counted against the limits and ignored.
//!
//! Signature (`rules.rsb.sig` by default): the 64-byte ed25519 signature
//! (RFC 8032, pure Ed25519) of the archive file's exact bytes, stored raw or
//! as 128 hex digits. Public key: 32 raw bytes or 64 hex digits. `openssl
//! pkeyutl -sign -rawin -inkey key.pem -in rules.rsb -out rules.rsb.sig`
//! writes a raw signature; `openssl pkey -in key.pem -pubout -outform DER |
//! tail -c 32 > key.pub` extracts the raw public key.
//!
//! Order of operations is the security property: the signature is verified
//! over the bytes read before any of them is interpreted (tar headers, YAML).
//! An archive is hostile input even when signed, so unpacking is bounded by
//! [`ArchiveLimits`] and happens in memory only; nothing is written to disk.

use ed25519_dalek::{Signature, VerifyingKey};
use std::fmt;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// A signature file larger than this is refused unread (hex plus whitespace
/// fits easily).
pub const MAX_SIGNATURE_FILE: u64 = 1024;

/// Bounds on what an archive may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Largest archive file accepted (checked before reading it).
    pub max_archive_bytes: u64,
    /// Most entries (files, directories) in the archive.
    pub max_entries: usize,
    /// Largest single file.
    pub max_file_bytes: u64,
}

impl Default for ArchiveLimits {
    /// 64 MiB, 20,000 entries, 1 MiB per file: the whole SigmaHQ Windows
    /// rule set is about 3,000 files and 10 MiB.
    fn default() -> Self {
        ArchiveLimits {
            max_archive_bytes: 64 << 20,
            max_entries: 20_000,
            max_file_bytes: 1 << 20,
        }
    }
}

/// Why a signature did not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// The signature file is not 64 raw bytes or 128 hex digits (e.g. truncated).
    Encoding(String),
    /// The signature is well formed but does not match the archive under
    /// this key: the archive was modified, or signed with another key.
    Mismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Encoding(reason) => write!(f, "malformed signature: {reason}"),
            SignatureError::Mismatch => f.write_str(
                "the signature does not match: the archive was modified or signed with another key than --rules-pubkey",
            ),
        }
    }
}

/// Why a verified archive is not a usable bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveError {
    /// The archive file exceeds [`ArchiveLimits::max_archive_bytes`].
    TooLarge { size: u64, limit: u64 },
    /// More entries than [`ArchiveLimits::max_entries`].
    TooManyEntries { limit: usize },
    /// One file exceeds [`ArchiveLimits::max_file_bytes`].
    FileTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// A link, device or other non-plain entry.
    UnsupportedEntry { path: PathBuf, kind: String },
    /// An absolute path or one with `..`.
    UnsafePath { path: PathBuf },
    /// The same file twice (tar keeps both; which one counts would depend
    /// on the reader).
    Duplicate { path: PathBuf },
    /// The tar structure itself is broken.
    Malformed(String),
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveError::TooLarge { size, limit } => write!(
                f,
                "archive of {size} bytes exceeds the limit of {limit} bytes; refused unread"
            ),
            ArchiveError::TooManyEntries { limit } => {
                write!(f, "archive holds more than {limit} entries")
            }
            ArchiveError::FileTooLarge { path, size, limit } => write!(
                f,
                "{}: {size} bytes exceeds the per-file limit of {limit} bytes",
                path.display()
            ),
            ArchiveError::UnsupportedEntry { path, kind } => write!(
                f,
                "{}: {kind} entry; a bundle holds only files and directories",
                path.display()
            ),
            ArchiveError::UnsafePath { path } => write!(
                f,
                "{}: absolute or `..` path in the archive",
                path.display()
            ),
            ArchiveError::Duplicate { path } => write!(
                f,
                "{}: the same file twice in the archive; a bundle names each file once",
                path.display()
            ),
            ArchiveError::Malformed(reason) => write!(f, "not a readable tar archive: {reason}"),
        }
    }
}

/// An ed25519 public key that bundles must be signed with. (Boxed: the
/// decompressed point is ~200 bytes, and keys travel inside small enums.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(Box<VerifyingKey>);

impl PublicKey {
    /// Parses 32 raw bytes or 64 hex digits (surrounding whitespace allowed).
    pub fn parse(bytes: &[u8]) -> Result<PublicKey, String> {
        let raw: [u8; 32] = decode_fixed(bytes, "a public key")?;
        VerifyingKey::from_bytes(&raw)
            .map(|key| PublicKey(Box::new(key)))
            .map_err(|_| "32 bytes that are not an ed25519 curve point".to_owned())
    }

    /// Reads and parses a key file.
    pub fn from_file(path: &Path) -> Result<PublicKey, crate::BundleError> {
        let reason = |reason: String| crate::BundleError::PublicKey {
            path: path.to_owned(),
            reason,
        };
        let bytes = crate::files::read_regular(path, MAX_SIGNATURE_FILE)
            .map_err(|e| reason(e.to_string()))?;
        PublicKey::parse(&bytes).map_err(reason)
    }

    /// The 32 key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
}

/// Verifies `signature` (raw or hex) over `archive` with `key`. Uses
/// `verify_strict`, which also refuses weak keys and malleable signatures.
pub fn verify(archive: &[u8], signature: &[u8], key: &PublicKey) -> Result<(), SignatureError> {
    let raw: [u8; 64] = decode_fixed(signature, "a signature").map_err(SignatureError::Encoding)?;
    key.0
        .verify_strict(archive, &Signature::from_bytes(&raw))
        .map_err(|_| SignatureError::Mismatch)
}

/// `N` raw bytes, or `2 * N` hex digits with optional surrounding whitespace.
fn decode_fixed<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
    if let Ok(raw) = <[u8; N]>::try_from(bytes) {
        return Ok(raw);
    }
    let text = bytes.trim_ascii();
    if text.len() == 2 * N && text.iter().all(u8::is_ascii_hexdigit) {
        let mut out = [0u8; N];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            let digits = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            *byte = u8::from_str_radix(digits, 16).map_err(|e| e.to_string())?;
        }
        return Ok(out);
    }
    Err(format!(
        "{} bytes; {what} is {N} raw bytes or {} hex digits",
        bytes.len(),
        2 * N
    ))
}

/// The rule files of a verified archive: (relative path, bytes), sorted by
/// path. Only `*.yml` / `*.yaml` files are returned.
pub fn unpack(
    archive: &[u8],
    limits: &ArchiveLimits,
) -> Result<Vec<(PathBuf, Vec<u8>)>, ArchiveError> {
    let malformed = |e: std::io::Error| ArchiveError::Malformed(e.to_string());
    let mut reader = tar::Archive::new(archive);
    let mut files = Vec::new();
    let mut entries = 0usize;
    for entry in reader.entries().map_err(malformed)? {
        let entry = entry.map_err(malformed)?;
        entries += 1;
        if entries > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let path = entry.path().map_err(malformed)?.into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            // Metadata (e.g. `git archive`'s commit id), not content.
            continue;
        }
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(ArchiveError::UnsafePath { path });
        }
        if kind.is_dir() {
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            return Err(ArchiveError::UnsupportedEntry {
                path,
                kind: format!("{kind:?}"),
            });
        }
        let size = entry.size();
        if size > limits.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                path,
                size,
                limit: limits.max_file_bytes,
            });
        }
        if !path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            continue;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry
            .take(limits.max_file_bytes)
            .read_to_end(&mut bytes)
            .map_err(malformed)?;
        let path: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        files.push((path, bytes));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = files.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(ArchiveError::Duplicate {
            path: pair[0].0.clone(),
        });
    }
    Ok(files)
}
