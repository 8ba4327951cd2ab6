//! The agent's own image-load table: per process, the images the driver
//! saw loaded (base, size, DOS path), so an address in that process can be
//! named by its module — Sysmon 8's `StartModule`. The driver reports loads
//! only, never unloads: a load that overlaps earlier ones replaces them
//! (the address range was reused), and a process's entries go when it
//! exits or its pid is reused by a new process.
//!
//! Bounded: at most [`MAX_MODULES_PER_PROCESS`] images per process (the
//! oldest goes first) and [`MAX_PROCESSES`] processes (the table is cleared
//! when full, as the enricher's caches are; addresses are then unresolved
//! until the images load again, which is counted nowhere but is never
//! wrong).

use std::collections::HashMap;

/// Images kept per process.
pub const MAX_MODULES_PER_PROCESS: usize = 1024;
/// Processes kept.
pub const MAX_PROCESSES: usize = 16384;

/// One loaded image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub base: u64,
    pub size: u64,
    /// The image's DOS path, as Sysmon 7 writes `ImageLoaded`.
    pub path: String,
}

impl Module {
    fn contains(&self, address: u64) -> bool {
        address >= self.base && address - self.base < self.size
    }

    fn overlaps(&self, base: u64, size: u64) -> bool {
        base < self.base.saturating_add(self.size) && self.base < base.saturating_add(size)
    }
}

/// The table.
#[derive(Debug, Default)]
pub struct Modules {
    by_pid: HashMap<u32, Vec<Module>>,
}

impl Modules {
    /// `path` was loaded at `base` (`size` bytes) into `pid`.
    pub fn load(&mut self, pid: u32, base: u64, size: u64, path: &str) {
        if size == 0 {
            return;
        }
        if !self.by_pid.contains_key(&pid) && self.by_pid.len() >= MAX_PROCESSES {
            self.by_pid.clear();
        }
        let modules = self.by_pid.entry(pid).or_default();
        modules.retain(|m| !m.overlaps(base, size));
        if modules.len() >= MAX_MODULES_PER_PROCESS {
            modules.remove(0);
        }
        modules.push(Module {
            base,
            size,
            path: path.to_owned(),
        });
    }

    /// The image of `pid` that holds `address`.
    pub fn resolve(&self, pid: u32, address: u64) -> Option<&Module> {
        self.by_pid.get(&pid)?.iter().find(|m| m.contains(address))
    }

    /// `pid` exited, or is a new process: its images are gone.
    pub fn forget(&mut self, pid: u32) {
        self.by_pid.remove(&pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_resolve_to_the_image_that_holds_them() {
        let mut m = Modules::default();
        m.load(
            7,
            0x7ffb_0000_0000,
            0x1000,
            r"C:\Windows\System32\kernel32.dll",
        );
        m.load(
            7,
            0x7ffb_1000_0000,
            0x2000,
            r"C:\Windows\System32\ntdll.dll",
        );
        let at = |m: &Modules, a| m.resolve(7, a).map(|x| x.path.clone());
        assert_eq!(
            at(&m, 0x7ffb_1000_1fff).as_deref(),
            Some(r"C:\Windows\System32\ntdll.dll")
        );
        assert_eq!(at(&m, 0x7ffb_1000_2000), None, "one past the end");
        assert_eq!(
            at(&m, 0x7ffb_0000_0000).as_deref(),
            Some(r"C:\Windows\System32\kernel32.dll")
        );
        assert_eq!(m.resolve(8, 0x7ffb_0000_0000), None, "another process");
        // A load over the same range replaces what was there.
        m.load(7, 0x7ffb_0000_0800, 0x1000, r"C:\evil.dll");
        assert_eq!(at(&m, 0x7ffb_0000_0000), None);
        assert_eq!(at(&m, 0x7ffb_0000_0900).as_deref(), Some(r"C:\evil.dll"));
        m.forget(7);
        assert_eq!(at(&m, 0x7ffb_1000_0000), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut m = Modules::default();
        for i in 0..(MAX_MODULES_PER_PROCESS as u64 + 1) {
            m.load(1, i << 16, 0x1000, "x.dll");
        }
        assert_eq!(m.by_pid[&1].len(), MAX_MODULES_PER_PROCESS);
        assert_eq!(m.resolve(1, 0), None, "the oldest went first");
        for pid in 0..(MAX_PROCESSES as u32 + 1) {
            m.load(pid + 10, 0, 0x1000, "y.dll");
        }
        assert!(m.by_pid.len() <= MAX_PROCESSES);
    }
}
