//! Alternate data streams (Sysmon 15, FileCreateStreamHash): which names
//! are named streams, and the `Contents` text Sysmon gives a small one.
//!
//! NTFS names a stream `file:stream[:type]`. The minifilter reports the name
//! it was opened by, as FltMgr gives it; the agent tells a named stream
//! (`report.pdf:Zone.Identifier`) from the file's unnamed one (`report.pdf`,
//! or `report.pdf::$DATA` spelled out) here, in user mode.

/// Sysmon writes a stream's contents only when they are text shorter than
/// 1 KB (Sysmon 11.10's `Contents` field, e.g. a `Zone.Identifier`).
pub const CONTENTS_LIMIT: usize = 1024;

/// A named stream's full name split at its stream: `name` is the whole name
/// without a `:$DATA` type suffix, `file` the file it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamedStream<'a> {
    pub name: &'a str,
    pub file: &'a str,
}

/// The named stream `path` (a DOS or NT path) names, or `None` when it names
/// a file's unnamed stream or a directory. Only the last component is
/// searched, so a drive's `C:` is never taken for a stream.
pub fn named(path: &str) -> Option<NamedStream<'_>> {
    let last = path.rfind('\\').map_or(0, |i| i + 1);
    let colon = last + path[last..].find(':')?;
    let stream = &path[colon + 1..];
    // `name:$DATA` is the data stream `name`; any other type (`$INDEX_ALLOCATION`
    // of a directory, `$BITMAP`) is no stream a process writes content to.
    let (stream_name, stream_type) = match stream.split_once(':') {
        Some((name, ty)) => (name, Some(ty)),
        None => (stream, None),
    };
    if stream_name.is_empty()
        || colon == last
        || stream_type.is_some_and(|ty| !ty.eq_ignore_ascii_case("$DATA"))
    {
        return None;
    }
    Some(NamedStream {
        name: &path[..colon + 1 + stream_name.len()],
        file: &path[..colon],
    })
}

/// The `Contents` Sysmon writes for a stream of `bytes`: the text, with each
/// CR and each LF written as a space (so `[ZoneTransfer]\r\nZoneId=3` is
/// `[ZoneTransfer]  ZoneId=3`, which SigmaHQ's rules match), when it is
/// UTF-8 text without other control characters and shorter than
/// [`CONTENTS_LIMIT`]; `None` otherwise, and for an empty stream (Sysmon's
/// `-`).
pub fn contents(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.len() >= CONTENTS_LIMIT {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
    {
        return None;
    }
    Some(text.replace(['\r', '\n'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_streams_are_told_from_files_and_drives() {
        let zone = r"C:\Users\u\Downloads\a.exe:Zone.Identifier";
        assert_eq!(
            named(zone),
            Some(NamedStream {
                name: zone,
                file: r"C:\Users\u\Downloads\a.exe"
            })
        );
        let typed = r"\Device\HarddiskVolume3\t\x.txt:hidden.exe:$DATA";
        assert_eq!(
            named(typed),
            Some(NamedStream {
                name: r"\Device\HarddiskVolume3\t\x.txt:hidden.exe",
                file: r"\Device\HarddiskVolume3\t\x.txt"
            })
        );
        for unnamed in [
            r"C:\Users\u\a.exe",
            r"C:\Users\u\a.exe::$DATA",
            r"C:\a.txt:",
            r"C:\dir:$I30:$INDEX_ALLOCATION",
            r"C:\",
            "C:",
            r"\Device\HarddiskVolume3\x",
            r"C:\d:e\x",
            r"\\?\C:\x",
        ] {
            assert_eq!(named(unnamed), None, "{unnamed}");
        }
    }

    #[test]
    fn contents_are_small_text_with_line_ends_as_spaces() {
        let zone = b"[ZoneTransfer]\r\nZoneId=3\r\nHostUrl=https://example.org/a.zip\r\n";
        let text = contents(zone).unwrap();
        assert!(text.starts_with("[ZoneTransfer]  ZoneId=3"), "{text}");
        assert!(text.ends_with("a.zip  "));
        assert_eq!(contents(b"MZ\x90\x00\x03"), None);
        assert_eq!(contents(&[0xff, 0xfe, b'a', 0]), None);
        assert_eq!(contents(&[b'a'; CONTENTS_LIMIT]), None);
        assert_eq!(
            contents(&[b'a'; CONTENTS_LIMIT - 1]).map(|s| s.len()),
            Some(CONTENTS_LIMIT - 1)
        );
        assert_eq!(contents(b""), None);
    }
}
