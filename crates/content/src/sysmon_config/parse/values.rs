//! The values inside a configuration: schema versions, relations, hash
//! algorithm lists, `%ENV%` expansion, the options that mean nothing here,
//! and where in the file an element is.

use super::super::{HashAlgorithms, Relation};
use super::Env;

/// Options under `<Sysmon>` that mean nothing for ringside, and why.
pub(super) const IGNORED_OPTIONS: &[(&str, &str)] = &[
    (
        "CheckRevocation",
        "checks driver signatures' revocation; ringside verifies no certificate chain (driver loads carry only the kernel's signing level)",
    ),
    (
        "DnsLookup",
        "reverse-resolves network addresses; ringside produces no network events",
    ),
    (
        "ArchiveDirectory",
        "where deleted files are archived; ringside archives nothing",
    ),
    (
        "CopyOnDeletePE",
        "archives deleted executables; ringside archives nothing",
    ),
    (
        "CopyOnDeleteSIDs",
        "archives deletes by these accounts; ringside archives nothing",
    ),
    (
        "CopyOnDeleteExtensions",
        "archives deletes of these extensions; ringside archives nothing",
    ),
    (
        "CopyOnDeleteProcesses",
        "archives deletes by these processes; ringside archives nothing",
    ),
    (
        "DriverName",
        "renames Sysmon's driver; ringside's driver is ringside.sys",
    ),
    (
        "FieldSizes",
        "Sysmon's field length caps; ringside's come from CONFIGURE",
    ),
    (
        "CaptureClipboard",
        "clipboard capture; ringside produces no clipboard events",
    ),
    (
        "ProcessAccessConfig",
        "legacy process-access option; ringside produces no process-access events",
    ),
    (
        "PipeMonitoringConfig",
        "legacy pipe option; ringside produces no pipe events",
    ),
];

/// Line and column (1-based) of byte `offset`.
pub(super) fn line_column(bytes: &[u8], offset: usize) -> (u32, u32) {
    let before = bytes.get(..offset).unwrap_or(bytes);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// Line starts of a text, so each element's line and column is a binary
/// search (roxmltree's `text_pos_at` scans from the start every time, which
/// made accounting for every element quadratic in the file's size).
pub(super) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters, as roxmltree counts them)
    /// of byte `offset`.
    pub(super) fn position(&self, text: &str, offset: usize) -> (u32, u32) {
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = text.get(start..offset).map_or(0, |t| t.chars().count()) + 1;
        (
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(column).unwrap_or(u32::MAX),
        )
    }
}

pub(super) fn is_schema_4(version: &str) -> bool {
    let mut parts = version.trim().splitn(2, '.');
    parts.next() == Some("4")
        && parts
            .next()
            .is_none_or(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn parse_relation(value: &str) -> Result<Relation, String> {
    if value.eq_ignore_ascii_case("or") {
        Ok(Relation::Or)
    } else if value.eq_ignore_ascii_case("and") {
        Ok(Relation::And)
    } else {
        Err(format!("groupRelation=\"{value}\": expected or or and"))
    }
}

/// `md5,sha256,IMPHASH`, or `*` for all (Sysmon's names, any case).
pub(super) fn parse_hashes(text: &str) -> Result<HashAlgorithms, String> {
    let mut hashes = HashAlgorithms::default();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.to_ascii_uppercase().as_str() {
            "SHA1" => hashes.sha1 = true,
            "MD5" => hashes.md5 = true,
            "SHA256" => hashes.sha256 = true,
            "IMPHASH" => hashes.imphash = true,
            "*" => {
                hashes = HashAlgorithms {
                    sha1: true,
                    md5: true,
                    sha256: true,
                    imphash: true,
                }
            }
            _ => {
                return Err(format!(
                    "unknown hash algorithm `{item}` (Sysmon's: SHA1, MD5, SHA256, IMPHASH, *)"
                ));
            }
        }
    }
    Ok(hashes)
}

/// `%NAME%` replaced by the variable's value; an unset name, or a lone `%`,
/// stays as written (Sysmon's expansion leaves unknown names alone too).
pub fn expand_env(value: &str, env: &Env<'_>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find('%') {
        let (before, after) = rest.split_at(start);
        out.push_str(before);
        let tail = after.get(1..).unwrap_or("");
        match tail.find('%') {
            Some(end) if end > 0 => {
                let name = tail.get(..end).unwrap_or("");
                match env(name) {
                    Some(expanded) => out.push_str(&expanded),
                    None => {
                        out.push('%');
                        out.push_str(name);
                        out.push('%');
                    }
                }
                rest = tail.get(end + 1..).unwrap_or("");
            }
            _ => {
                out.push('%');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}
