//! NT paths (as the kernel names files) to the DOS paths Sysmon shows.
//!
//! The kernel reports `\Device\HarddiskVolume3\Windows\cmd.exe`; Sysmon and
//! every Sigma rule expect `C:\Windows\cmd.exe`. The map comes from the
//! replay's VolumeMap frame or, live, from `QueryDosDeviceW`.

/// Most mappings kept. A machine has at most 26 drive letters plus its
/// mount points; past this, a frame (hostile, or broken) only costs the
/// mappings it would add, counted in [`VolumeMap::dropped`].
pub const MAX_VOLUMES: usize = 4096;

/// Device-name prefixes and the drive letters they map to.
///
/// Looked up by prefix length (each distinct length once, longest first)
/// in a hash map of lower-cased device names, so inserting is O(1) and a
/// lookup costs one probe per distinct device-name length (a handful), not
/// one comparison per mapping.
#[derive(Clone, Debug, Default)]
pub struct VolumeMap {
    /// Lower-cased device name → (device as given, drive).
    entries: std::collections::HashMap<String, (String, String)>,
    /// Distinct device-name lengths in bytes, with how many names have each.
    lengths: std::collections::BTreeMap<usize, usize>,
    /// Lines of a VolumeMap frame that were not `DEVICE<TAB>DRIVE`.
    pub rejected_lines: u64,
    /// Mappings not kept because [`MAX_VOLUMES`] were already held.
    pub dropped: u64,
}

impl VolumeMap {
    /// Adds or replaces one mapping.
    pub fn insert(&mut self, device: &str, drive: &str) {
        let device = device.trim_end_matches('\\');
        if device.is_empty() || drive.is_empty() {
            return;
        }
        let key = device.to_ascii_lowercase();
        let drive = drive.trim_end_matches('\\').to_owned();
        if let Some(entry) = self.entries.get_mut(&key) {
            *entry = (device.to_owned(), drive);
            return;
        }
        if self.entries.len() >= MAX_VOLUMES {
            self.dropped += 1;
            return;
        }
        *self.lengths.entry(key.len()).or_default() += 1;
        self.entries.insert(key, (device.to_owned(), drive));
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

    /// Replaces every mapping with `entries` (live: the drive letters
    /// `QueryDosDeviceW` reports now). A volume that went away stops
    /// mapping and one that came is added. Returns true if the mappings
    /// changed (the recorder then writes a new VolumeMap frame).
    pub fn refresh<'a>(&mut self, entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        let mut fresh = VolumeMap::default();
        for (device, drive) in entries {
            fresh.insert(device, drive);
        }
        if fresh.to_frame() == self.to_frame() {
            return false;
        }
        self.entries = fresh.entries;
        self.lengths = fresh.lengths;
        self.dropped = self.dropped.saturating_add(fresh.dropped);
        true
    }

    /// Number of mappings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The drive mapped to the longest device name `path` starts with, on a
    /// component boundary, and that name's length.
    fn longest_match(&self, path: &str) -> Option<(usize, &str)> {
        for &len in self.lengths.keys().rev() {
            let Some(head) = path.get(..len) else {
                continue;
            };
            let after = path.as_bytes().get(len);
            if after.is_some() && after != Some(&b'\\') {
                continue;
            }
            if let Some((_, drive)) = self.entries.get(&head.to_ascii_lowercase()) {
                return Some((len, drive));
            }
        }
        None
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
        if let Some((len, drive)) = self.longest_match(path) {
            let drive = drive.to_owned();
            out.replace_range(start..start + len, &drive);
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
        let mut entries: Vec<&(String, String)> = self.entries.values().collect();
        entries.sort();
        for (device, drive) in entries {
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

    #[test]
    fn a_refresh_follows_volumes_that_come_and_go() {
        let mut map = VolumeMap::default();
        assert!(map.refresh([
            (r"\Device\HarddiskVolume3", "C:"),
            (r"\Device\HarddiskVolume4", "D:"),
        ]));
        assert_eq!(map.to_dos(r"\Device\HarddiskVolume4\x"), r"D:\x");
        // D: was ejected; a USB stick came as E:.
        assert!(map.refresh([
            (r"\Device\HarddiskVolume3", "C:"),
            (r"\Device\HarddiskVolume9", "E:"),
        ]));
        assert_eq!(
            map.to_dos(r"\Device\HarddiskVolume4\x"),
            r"\Device\HarddiskVolume4\x"
        );
        assert_eq!(map.to_dos(r"\Device\HarddiskVolume9\x"), r"E:\x");
        assert_eq!(map.to_dos(r"\Device\HarddiskVolume3\x"), r"C:\x");
        assert!(!map.refresh([
            (r"\Device\HarddiskVolume9", "E:"),
            (r"\Device\HarddiskVolume3", "C:"),
        ]));
    }

    #[test]
    fn a_flood_of_devices_is_capped_and_the_first_ones_keep_resolving() {
        let mut map = VolumeMap::default();
        let mut frame = String::new();
        for i in 0..80_000 {
            frame.push_str(&format!("\\Device\\Flood{i}\tF:\n"));
        }
        map.load_frame(frame.as_bytes());
        assert_eq!(map.len(), MAX_VOLUMES);
        assert_eq!(map.dropped, 80_000 - MAX_VOLUMES as u64);
        assert_eq!(map.to_dos(r"\Device\Flood7\x"), r"F:\x");
        assert_eq!(map.to_dos(r"\Device\Flood79999\x"), r"\Device\Flood79999\x");
        // Replacing a mapping is always possible, even when full.
        map.insert(r"\Device\Flood7", "G:");
        assert_eq!(map.to_dos(r"\Device\Flood7\x"), r"G:\x");
    }
}
