//! Sysmon's `CurrentDirectory` of a new process, read in user mode from
//! the process's own parameters block: `PEB.ProcessParameters->
//! CurrentDirectory.DosPath` (winternl.h), the directory its creator gave
//! it, with Sysmon's trailing backslash (`C:\Windows\system32\`).
//!
//! The kernel never reads it (DESIGN.md: the driver copies what its
//! callbacks are handed, and a process's memory is not that). The live
//! agent on Windows reads it when it handles the process-create record,
//! so what it sees can differ from Sysmon's in two ways, both reported as
//! a missing value rather than a guess:
//! - the process already exited (a very short-lived process), or cannot be
//!   opened for `PROCESS_VM_READ` (protected processes);
//! - its pid already belongs to a later process: the process found must
//!   have been created no later than the record's timestamp.
//!   `CreateTime` comes from the coarse system clock and the record's
//!   timestamp from the precise one, so a pid reused within one clock tick
//!   (about 15.6 ms) of the first process's creation is not caught.
//!
//! A process that changed its directory in the milliseconds before the
//! read shows the new one. Replays never read processes: the pids in a
//! recording belong to another machine or time.
//!
//! The offsets below are x64's; `agent/tests/process_params_abi.rs` checks
//! them against the ABI oracle's values from independent headers.

/// `PEB.ProcessParameters` (a pointer).
pub const PEB_PROCESS_PARAMETERS: usize = 0x20;
/// `RTL_USER_PROCESS_PARAMETERS.Flags` (a u32).
pub const PARAMS_FLAGS: usize = 0x08;
/// `RTL_USER_PROCESS_PARAMETERS.CurrentDirectory`: a `CURDIR`, whose
/// first member is the `DosPath` UNICODE_STRING.
pub const PARAMS_CURRENT_DIRECTORY: usize = 0x38;
/// `UNICODE_STRING.Buffer` (after `Length` and `MaximumLength`, u16 each).
pub const UNICODE_STRING_BUFFER: usize = 0x08;
/// `RTL_USER_PROC_PARAMS_NORMALIZED`: the block's string buffers are
/// pointers. Without it they are offsets from the block's start (a block
/// the process has not normalized yet).
pub const PARAMS_NORMALIZED: u32 = 0x1;

/// Where a `DosPath` UNICODE_STRING (its 16 bytes as read) points, and how
/// many bytes of UTF-16 it holds; `None` for an empty or malformed one.
pub fn dos_path_location(
    params_base: u64,
    flags: u32,
    unicode_string: &[u8; 16],
) -> Option<(u64, usize)> {
    let length = u16::from_le_bytes([unicode_string[0], unicode_string[1]]);
    let mut pointer = [0u8; 8];
    pointer.copy_from_slice(unicode_string.get(UNICODE_STRING_BUFFER..)?);
    let buffer = u64::from_le_bytes(pointer);
    if length == 0 || length % 2 != 0 || buffer == 0 {
        return None;
    }
    let address = if flags & PARAMS_NORMALIZED != 0 {
        buffer
    } else {
        params_base.checked_add(buffer)?
    };
    Some((address, usize::from(length)))
}

/// UTF-16LE bytes as text (unpaired surrogates become U+FFFD).
pub fn utf16_text(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// A `DosPath` as Sysmon writes it: with its trailing backslash. Windows
/// stores the directory so, but a block read before the new process has
/// initialized holds the creator's string as given (Wine: `C:\dir`, then
/// `C:\dir\` once the process runs; found by the test under Wine).
pub fn sysmon_directory(mut dos_path: String) -> String {
    if !dos_path.is_empty() && !dos_path.ends_with('\\') {
        dos_path.push('\\');
    }
    dos_path
}

/// The current directory of the live process `pid`, if it is the process
/// created at or before `created_by` (a FILETIME: the record's timestamp).
#[cfg(windows)]
pub fn current_directory(pid: u32, created_by: u64) -> Option<String> {
    crate::win::process_current_directory(pid, created_by)
}

/// Not on Windows: there are no live Windows processes to read.
#[cfg(not(windows))]
pub fn current_directory(_pid: u32, _created_by: u64) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unicode_string(length: u16, buffer: u64) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..2].copy_from_slice(&length.to_le_bytes());
        bytes[2..4].copy_from_slice(&length.to_le_bytes());
        bytes[8..].copy_from_slice(&buffer.to_le_bytes());
        bytes
    }

    #[test]
    fn a_normalized_block_points_and_a_raw_one_is_relative_to_its_base() {
        let s = unicode_string(20, 0x1000);
        assert_eq!(dos_path_location(0x7000_0000, 1, &s), Some((0x1000, 20)));
        assert_eq!(
            dos_path_location(0x7000_0000, 0, &s),
            Some((0x7000_1000, 20))
        );
        assert_eq!(dos_path_location(u64::MAX, 0, &s), None, "overflow");
    }

    #[test]
    fn empty_odd_or_null_strings_have_no_location() {
        assert_eq!(dos_path_location(0, 1, &unicode_string(0, 0x1000)), None);
        assert_eq!(dos_path_location(0, 1, &unicode_string(7, 0x1000)), None);
        assert_eq!(dos_path_location(0, 1, &unicode_string(8, 0)), None);
    }

    /// A real process's parameters block, read through the offsets above.
    /// Runs where Windows processes do: `cargo xtask wine` runs it under
    /// Wine, whose PEB and parameters block are laid out as Windows's.
    #[cfg(windows)]
    #[test]
    fn reads_a_live_childs_current_directory() {
        use std::process::{Command, Stdio};
        let dir = std::env::temp_dir().join("ringside cwd \u{e9}");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let before = crate::time::now_filetime();
        // cmd.exe /k waits for commands on its stdin, which stays open.
        let mut child = Command::new("cmd.exe")
            .args(["/d", "/q", "/k"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("cmd.exe");
        let pid = child.id();
        // Wait until the child is far enough to have a parameters block.
        let mut read = None;
        for _ in 0..100 {
            read = current_directory(pid, crate::time::now_filetime());
            if read.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let older = current_directory(pid, before.saturating_sub(10_000_000));
        let _ = child.kill();
        let _ = child.wait();
        let want = format!("{}\\", dir.display());
        assert_eq!(
            read.map(|d| d.to_lowercase()),
            Some(want.to_lowercase()),
            "pid {pid}"
        );
        assert_eq!(
            older, None,
            "a record older than the process is not its own"
        );
        assert_eq!(
            current_directory(pid, u64::MAX),
            None,
            "the process is gone"
        );
    }

    #[test]
    fn directories_end_in_one_backslash() {
        assert_eq!(sysmon_directory(r"C:\dir".into()), r"C:\dir\");
        assert_eq!(sysmon_directory(r"C:\dir\".into()), r"C:\dir\");
        assert_eq!(sysmon_directory(r"C:\".into()), r"C:\");
        assert_eq!(sysmon_directory(String::new()), "");
    }

    #[test]
    fn utf16_decodes_and_replaces_unpaired_surrogates() {
        let text: Vec<u8> = r"C:\Tmp\é\"
            .encode_utf16()
            .chain([0xD800])
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(utf16_text(&text), "C:\\Tmp\\é\\\u{FFFD}");
    }
}
