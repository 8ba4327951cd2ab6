//! Call traces as Sysmon 10 writes them (`CallTrace`): each raw return
//! address the driver captured becomes `module+offset` from the agent's own
//! table of the images each process loaded (the image-load records), e.g.
//! `C:\WINDOWS\SYSTEM32\ntdll.dll+9d4c4`, joined by `|`; an address in no
//! known image is `UNKNOWN(<16 upper-case hex digits>)`, as Sysmon writes
//! shellcode and unbacked memory. The offset is lower-case hex without
//! leading zeros (Sysmon's samples: `+16bcc4`, `+1284`).
//!
//! Bounded: at most [`MAX_IMAGES_PER_PROCESS`] images a process, and a
//! process's images are forgotten at its exit (or when its pid is reused
//! by a new process).

use std::collections::HashMap;
use std::fmt::Write as _;

/// Images remembered per process; a process that loads more (a rare
/// plugin host) resolves frames in later images as `UNKNOWN(...)`.
pub const MAX_IMAGES_PER_PROCESS: usize = 2048;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Image {
    base: u64,
    /// One past the last byte (`base + size`, saturating).
    end: u64,
    path: String,
}

/// The user-mode images of every live process, sorted by base.
#[derive(Clone, Debug, Default)]
pub struct Modules {
    processes: HashMap<u32, Vec<Image>>,
}

impl Modules {
    /// An image mapped into `pid` at `base`, `size` bytes, DOS path `path`.
    /// A mapping at a base already known replaces it (an image unloaded
    /// and another loaded there).
    pub fn load(&mut self, pid: u32, base: u64, size: u64, path: &str) {
        let images = self.processes.entry(pid).or_default();
        let image = Image {
            base,
            end: base.saturating_add(size),
            path: path.to_owned(),
        };
        match images.binary_search_by_key(&base, |i| i.base) {
            Ok(at) => {
                if let Some(slot) = images.get_mut(at) {
                    *slot = image;
                }
            }
            Err(at) if images.len() < MAX_IMAGES_PER_PROCESS => images.insert(at, image),
            Err(_) => {}
        }
    }

    /// `pid` exited (or its id now names a new process): its images go.
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    /// Processes with images remembered.
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    /// No process has images remembered.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    /// The image of `pid` that holds `address`, and the offset into it.
    pub fn resolve(&self, pid: u32, address: u64) -> Option<(&str, u64)> {
        let images = self.processes.get(&pid)?;
        let after = images.partition_point(|i| i.base <= address);
        let image = images.get(after.checked_sub(1)?)?;
        (address < image.end).then(|| (image.path.as_str(), address - image.base))
    }

    /// Appends `pid`'s call trace of `frames` as Sysmon's `CallTrace`.
    pub fn write_trace(&self, out: &mut String, pid: u32, frames: impl Iterator<Item = u64>) {
        for (i, address) in frames.enumerate() {
            if i > 0 {
                out.push('|');
            }
            match self.resolve(pid, address) {
                Some((path, offset)) => {
                    let _ = write!(out, "{path}+{offset:x}");
                }
                None => {
                    let _ = write!(out, "UNKNOWN({address:016X})");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(m: &Modules, pid: u32, frames: &[u64]) -> String {
        let mut out = String::new();
        m.write_trace(&mut out, pid, frames.iter().copied());
        out
    }

    #[test]
    fn frames_resolve_to_module_and_offset_as_sysmon_writes_them() {
        let mut m = Modules::default();
        let ntdll = 0x7ffa_8c30_0000;
        let kernel32 = 0x7ffa_8b10_0000;
        m.load(296, ntdll, 0x1f_8000, r"C:\WINDOWS\SYSTEM32\ntdll.dll");
        m.load(296, kernel32, 0xc_5000, r"C:\WINDOWS\SYSTEM32\KERNEL32.DLL");
        m.load(
            296,
            0x7ff6_1a2b_0000,
            0x2_0000,
            r"C:\Users\Public\wsass\WerFaultSecure.exe",
        );
        // The first frames of the SigmaHQ dbgcore sample, and a frame in
        // memory no image backs.
        assert_eq!(
            trace(
                &m,
                296,
                &[
                    ntdll + 0x16_bcc4,
                    kernel32 + 0x7_f7dc,
                    0x7ff6_1a2b_3a64,
                    0x1a4_c8e7_0c8b
                ]
            ),
            r"C:\WINDOWS\SYSTEM32\ntdll.dll+16bcc4|C:\WINDOWS\SYSTEM32\KERNEL32.DLL+7f7dc|C:\Users\Public\wsass\WerFaultSecure.exe+3a64|UNKNOWN(000001A4C8E70C8B)"
        );
        // An image's first byte is offset 0, its end is outside it.
        assert_eq!(
            trace(&m, 296, &[ntdll, ntdll + 0x1f_8000]),
            r"C:\WINDOWS\SYSTEM32\ntdll.dll+0|UNKNOWN(00007FFA8C4F8000)"
        );
        // Another process has none of these images.
        assert_eq!(trace(&m, 297, &[ntdll]), "UNKNOWN(00007FFA8C300000)");
        assert_eq!(trace(&m, 296, &[]), "");
    }

    #[test]
    fn a_process_exit_forgets_its_images_and_a_base_reused_replaces() {
        let mut m = Modules::default();
        m.load(10, 0x1000, 0x1000, "a.dll");
        m.load(10, 0x1000, 0x2000, "b.dll");
        assert_eq!(m.resolve(10, 0x2800), Some(("b.dll", 0x1800)));
        m.forget(10);
        assert_eq!(m.resolve(10, 0x1800), None);
        assert!(m.is_empty());
    }

    #[test]
    fn images_per_process_are_bounded() {
        let mut m = Modules::default();
        for i in 0..(MAX_IMAGES_PER_PROCESS as u64 + 10) {
            m.load(1, 0x1_0000 * (i + 1), 0x1000, "x.dll");
        }
        assert_eq!(m.processes[&1].len(), MAX_IMAGES_PER_PROCESS);
    }
}
