//! NT paths (as the kernel names files) to the DOS paths Sysmon shows.
//!
//! The kernel reports `\Device\HarddiskVolume3\Windows\cmd.exe`; Sysmon and
//! every Sigma rule expect `C:\Windows\cmd.exe`. The map comes from the
//! replay's VolumeMap frame or, live, from `QueryDosDeviceW`.

/// Device-name prefixes and the drive letters they map to.
#[derive(Clone, Debug, Default)]
pub struct VolumeMap {
    /// (`\Device\HarddiskVolume3`, `C:`), longest device name first so the
    /// first match is the most specific.
    entries: Vec<(String, String)>,
    /// Lines of a VolumeMap frame that were not `DEVICE<TAB>DRIVE`.
    pub rejected_lines: u64,
}

impl VolumeMap {
    /// Adds or replaces one mapping.
    pub fn insert(&mut self, device: &str, drive: &str) {
        let device = device.trim_end_matches('\\');
        if device.is_empty() || drive.is_empty() {
            return;
        }
        self.entries
            .retain(|(d, _)| !d.eq_ignore_ascii_case(device));
        self.entries
            .push((device.to_owned(), drive.trim_end_matches('\\').to_owned()));
        self.entries
            .sort_by_key(|(device, _)| std::cmp::Reverse(device.len()));
    }

    /// Adds the mappings of a VolumeMap frame payload (UTF-8 lines
    /// `DEVICE<TAB>DRIVE`). Malformed lines are counted and skipped: a bad
    /// line must not cost the others.
    pub fn load_frame(&mut self, payload: &[u8]) {
        let text = String::from_utf8_lossy(payload);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match line.split_once('\t') {
                Some((device, drive)) if device.starts_with('\\') && !drive.trim().is_empty() => {
                    self.insert(device.trim(), drive.trim());
                }
                _ => self.rejected_lines += 1,
            }
        }
    }

    /// Number of mappings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The drive `\SystemRoot` lives on: the one holding `C:` if mapped.
    fn system_drive(&self) -> &str {
        "C:"
    }

    /// Rewrites the NT path at `out[start..]` in place into its DOS form:
    /// `\??\C:\x` → `C:\x`; `\Device\HarddiskVolume3\x` → `C:\x` when mapped;
    /// `\SystemRoot\x` → `C:\Windows\x`. Anything else is left as it is, so
    /// an unmapped device path stays visible rather than being guessed.
    pub fn to_dos_in_place(&self, out: &mut String, start: usize) {
        let Some(path) = out.get(start..) else { return };
        if let Some(rest) = path.strip_prefix(r"\??\") {
            if rest.as_bytes().get(1) == Some(&b':') {
                out.replace_range(start..start + 4, "");
            }
            return;
        }
        if starts_with_ignore_case(path, r"\SystemRoot\") {
            let replacement = format!(r"{}\Windows", self.system_drive());
            out.replace_range(start..start + r"\SystemRoot".len(), &replacement);
            return;
        }
        for (device, drive) in &self.entries {
            if starts_with_ignore_case(path, device) {
                let after = path.as_bytes().get(device.len());
                if after.is_none() || after == Some(&b'\\') {
                    out.replace_range(start..start + device.len(), drive);
                    return;
                }
            }
        }
    }

    /// `path` in DOS form (see [`Self::to_dos_in_place`]).
    pub fn to_dos(&self, path: &str) -> String {
        let mut out = path.to_owned();
        self.to_dos_in_place(&mut out, 0);
        out
    }

    /// The mappings as a VolumeMap frame payload.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut out = String::new();
        for (device, drive) in &self.entries {
            out.push_str(device);
            out.push('\t');
            out.push_str(drive);
            out.push('\n');
        }
        out.into_bytes()
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_devices_to_drives_on_component_boundaries() {
        let mut map = VolumeMap::default();
        map.load_frame(b"\\Device\\HarddiskVolume1\tD:\n\\Device\\HarddiskVolume10\tE:\nbroken line\n\\Device\\HarddiskVolume3\tC:\n");
        assert_eq!(map.len(), 3);
        assert_eq!(map.rejected_lines, 1);
        assert_eq!(
            map.to_dos(r"\Device\HarddiskVolume3\Windows\cmd.exe"),
            r"C:\Windows\cmd.exe"
        );
        assert_eq!(map.to_dos(r"\device\harddiskvolume10\x"), r"E:\x");
        assert_eq!(map.to_dos(r"\Device\HarddiskVolume1\x"), r"D:\x");
        assert_eq!(
            map.to_dos(r"\Device\HarddiskVolume7\x"),
            r"\Device\HarddiskVolume7\x"
        );
        assert_eq!(map.to_dos(r"\??\C:\Temp\a.exe"), r"C:\Temp\a.exe");
        assert_eq!(
            map.to_dos(r"\SystemRoot\System32\ntdll.dll"),
            r"C:\Windows\System32\ntdll.dll"
        );
        let mut round = VolumeMap::default();
        round.load_frame(&map.to_frame());
        assert_eq!(round.to_dos(r"\Device\HarddiskVolume10\x"), r"E:\x");
    }
}
