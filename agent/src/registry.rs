//! Registry events as Sysmon writes them (12, 13, 14): the key's kernel
//! object name becomes `TargetObject` (`HKLM\...`, `HKU\<SID>\...`, then for
//! a value `\` and its name, `(Default)` for the default value), a value
//! set's raw type and data become `Details` (`DWORD (0x00000001)`, the
//! string, `Binary Data`) and a rename's new last component becomes
//! `NewName`, a full key path. The driver copies the raw facts; all of this
//! runs here, in user mode.

use std::fmt::Write;

/// `REG_*` types (winnt.h).
const REG_SZ: u32 = 1;
const REG_EXPAND_SZ: u32 = 2;
const REG_DWORD: u32 = 4;
const REG_QWORD: u32 = 11;

/// Appends the key path as Sysmon writes it. `\REGISTRY\MACHINE` becomes
/// `HKLM` and `\REGISTRY\USER` `HKU` (Sysmon keeps the SID, and a user's
/// classes key as `HKU\<SID>_Classes`, in its samples); a control set
/// (`SYSTEM\ControlSet001`, what the kernel names the key the
/// `CurrentControlSet` link resolves to) is written
/// `System\CurrentControlSet`, as Sysmon does. Anything else stays as the
/// kernel named it.
pub fn push_key(out: &mut String, key: &str) {
    if let Some(rest) = strip_prefix_ci(key, r"\REGISTRY\MACHINE") {
        out.push_str("HKLM");
        match control_set(rest) {
            Some(after) => {
                out.push_str(r"\System\CurrentControlSet");
                out.push_str(after);
            }
            None => out.push_str(rest),
        }
    } else if let Some(rest) = strip_prefix_ci(key, r"\REGISTRY\USER") {
        out.push_str("HKU");
        out.push_str(rest);
    } else {
        out.push_str(key);
    }
}

/// `rest` after `\SYSTEM\ControlSetNNN` (case-insensitive), if it is one.
fn control_set(rest: &str) -> Option<&str> {
    const PREFIX: &str = r"\SYSTEM\ControlSet";
    if !rest.get(..PREFIX.len())?.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let after = rest.get(PREFIX.len()..)?;
    let digits = after.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let tail = after.get(3..)?;
    (tail.is_empty() || tail.starts_with('\\')).then_some(tail)
}

/// `s` without `prefix`, compared ASCII case-insensitively, when the prefix
/// ends at a path boundary.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    let rest = s.get(prefix.len()..)?;
    (head.eq_ignore_ascii_case(prefix) && (rest.is_empty() || rest.starts_with('\\')))
        .then_some(rest)
}

/// `TargetObject`: the key as [`push_key`] writes it, `\`, the value name
/// (`(Default)` when empty, as Sysmon writes the default value).
pub fn target_object(out: &mut String, key: &str, value: &str) {
    push_key(out, key);
    out.push('\\');
    out.push_str(if value.is_empty() { "(Default)" } else { value });
}

/// `TargetObject` of a key event (a created or deleted key): the key as
/// [`push_key`] writes it; of a deleted value: as [`target_object`].
pub fn object(out: &mut String, key: &str, value: Option<&str>) {
    match value {
        Some(value) => target_object(out, key, value),
        None => push_key(out, key),
    }
}

/// `NewName` of a key rename: the key's parent as [`push_key`] writes it,
/// `\`, and the new last component the caller gave (`ZwRenameKey` takes a
/// name, not a path).
pub fn renamed_key(out: &mut String, key: &str, new_name: &str) {
    let parent = key.rfind('\\').and_then(|i| key.get(..i)).unwrap_or(key);
    push_key(out, parent);
    out.push('\\');
    out.push_str(new_name);
}

/// `Details` from the value's type and (possibly truncated) data, as
/// Sysmon renders them in its samples: `DWORD (0x%08x)`, `QWORD
/// (0x%08x-0x%08x)` (high half first), a string up to its terminator
/// (`(Empty)` when there is none), and `Binary Data` for everything else,
/// including a DWORD or QWORD whose data is too short to be one.
pub fn details(out: &mut String, value_type: u32, data: &[u8]) {
    match value_type {
        REG_DWORD => match data.get(..4) {
            Some(&[a, b, c, d]) => {
                let v = u32::from_le_bytes([a, b, c, d]);
                let _ = write!(out, "DWORD (0x{v:08x})");
            }
            _ => out.push_str("Binary Data"),
        },
        REG_QWORD => match data.get(..8) {
            Some(bytes) => {
                let mut q = [0u8; 8];
                q.copy_from_slice(bytes);
                let v = u64::from_le_bytes(q);
                let _ = write!(out, "QWORD (0x{:08x}-0x{:08x})", v >> 32, v & 0xffff_ffff);
            }
            None => out.push_str("Binary Data"),
        },
        REG_SZ | REG_EXPAND_SZ => {
            let start = out.len();
            let units = data
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|u| *u != 0);
            out.extend(char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}')));
            if out.len() == start {
                out.push_str("(Empty)");
            }
        }
        _ => out.push_str("Binary Data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(key: &str, value: &str) -> String {
        let mut out = String::new();
        target_object(&mut out, key, value);
        out
    }

    fn detail(value_type: u32, data: &[u8]) -> String {
        let mut out = String::new();
        details(&mut out, value_type, data);
        out
    }

    fn utf16z(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    #[test]
    fn a_renamed_key_keeps_its_parent_and_a_key_event_has_no_value() {
        let mut out = String::new();
        renamed_key(
            &mut out,
            r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\Old",
            "New",
        );
        assert_eq!(out, r"HKLM\System\CurrentControlSet\Services\New");
        let mut out = String::new();
        object(&mut out, r"\REGISTRY\MACHINE\SOFTWARE\Ringside", None);
        assert_eq!(out, r"HKLM\SOFTWARE\Ringside");
        let mut out = String::new();
        object(&mut out, r"\REGISTRY\MACHINE\SOFTWARE\Ringside", Some(""));
        assert_eq!(out, r"HKLM\SOFTWARE\Ringside\(Default)");
    }

    #[test]
    fn keys_are_written_as_sysmon_writes_them() {
        // TargetObjects of SigmaHQ's registry_set regression samples.
        assert_eq!(
            target(
                r"\REGISTRY\USER\S-1-5-21-2555720767-1205513275-3893774561-1001\Software\Microsoft\Windows Script\Settings",
                "AmsiEnable"
            ),
            r"HKU\S-1-5-21-2555720767-1205513275-3893774561-1001\Software\Microsoft\Windows Script\Settings\AmsiEnable"
        );
        assert_eq!(
            target(
                r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Control\SafeBoot\Minimal\AtomicSafeMode",
                ""
            ),
            r"HKLM\System\CurrentControlSet\Control\SafeBoot\Minimal\AtomicSafeMode\(Default)"
        );
        assert_eq!(
            target(
                r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SystemRestore",
                "DisableSR"
            ),
            r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SystemRestore\DisableSR"
        );
        assert_eq!(
            target(
                r"\REGISTRY\USER\S-1-5-21-3960063115-309473240-3247002503-500_Classes\mscfile\shell\open\command",
                ""
            ),
            r"HKU\S-1-5-21-3960063115-309473240-3247002503-500_Classes\mscfile\shell\open\command\(Default)"
        );
        // Not a control set, not a known root: left alone.
        assert_eq!(
            target(r"\REGISTRY\MACHINE\SYSTEM\Setup", "x"),
            r"HKLM\SYSTEM\Setup\x"
        );
        assert_eq!(
            target(r"\REGISTRY\MACHINE\SYSTEM\ControlSet001x\A", "v"),
            r"HKLM\SYSTEM\ControlSet001x\A\v"
        );
        assert_eq!(target(r"\REGISTRY\A", "v"), r"\REGISTRY\A\v");
        assert_eq!(
            target(r"\REGISTRY\MACHINEX\A", "v"),
            r"\REGISTRY\MACHINEX\A\v"
        );
    }

    #[test]
    fn details_are_rendered_as_sysmon_renders_them() {
        // Details of SigmaHQ's registry_set regression samples.
        assert_eq!(detail(REG_DWORD, &0u32.to_le_bytes()), "DWORD (0x00000000)");
        assert_eq!(
            detail(REG_DWORD, &0x1189u32.to_le_bytes()),
            "DWORD (0x00001189)"
        );
        assert_eq!(
            detail(REG_SZ, &utf16z(r"C:\Windows\System32\cmd.exe")),
            r"C:\Windows\System32\cmd.exe"
        );
        assert_eq!(
            detail(REG_EXPAND_SZ, &utf16z("cmd /c start powershell&REM")),
            "cmd /c start powershell&REM"
        );
        assert_eq!(detail(REG_SZ, &utf16z("")), "(Empty)");
        assert_eq!(detail(REG_SZ, &[]), "(Empty)");
        assert_eq!(detail(3, &[1, 2, 3]), "Binary Data");
        assert_eq!(
            detail(REG_QWORD, &0x0000_0001_0000_0002u64.to_le_bytes()),
            "QWORD (0x00000001-0x00000002)"
        );
        // Too short to be what the type says.
        assert_eq!(detail(REG_DWORD, &[1, 0]), "Binary Data");
        assert_eq!(detail(REG_QWORD, &[1, 0, 0, 0]), "Binary Data");
    }
}
