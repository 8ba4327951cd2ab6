//! Process and image-load notify routines (ntddk.h:
//! `PsSetCreateProcessNotifyRoutineEx`, `PsSetLoadImageNotifyRoutine`):
//! trampolines that copy the kernel's arguments into `ringside_driver`'s
//! facts structs and emit one record.

use super::nt::DispatchRing;
use core::ffi::c_void;
use core::sync::atomic::Ordering;

use ringside_driver::record::{ImageLoadFacts, ProcessCreateFacts, ProcessExitFacts};
use ringside_wire::{
    EventKind, Origin, PROCESS_FLAG_FILE_OPEN_NAME_AVAILABLE, PROCESS_FLAG_SUBSYSTEM,
};
use windows_sys::Wdk::Foundation::PEPROCESS;
use windows_sys::Wdk::Storage::FileSystem::{
    PsDereferencePrimaryToken, PsReferencePrimaryToken, SeQueryInformationToken,
};
use windows_sys::Wdk::System::SystemServices::{
    ExFreePoolWithTag, IMAGE_INFO, PS_CREATE_NOTIFY_INFO, PsGetProcessExitStatus,
    PsRemoveLoadImageNotifyRoutine, PsSetCreateProcessNotifyRoutineEx, PsSetLoadImageNotifyRoutine,
};
use windows_sys::Win32::Foundation::{HANDLE, UNICODE_STRING};
use windows_sys::Win32::Security::{
    TOKEN_MANDATORY_LABEL, TOKEN_USER, TokenIntegrityLevel, TokenUser,
};

use super::globals::{Globals, acquired, globals};
use super::{nt, queue};

/// Registers both routines (DriverEntry, PASSIVE_LEVEL).
pub fn register(g: &Globals) -> i32 {
    // SAFETY: PASSIVE_LEVEL; the routine is a static function; the image is
    // linked with /INTEGRITYCHECK as this API requires.
    let status = unsafe { PsSetCreateProcessNotifyRoutineEx(Some(process_notify), false) };
    if !nt::nt_success(status) {
        return status;
    }
    g.acquired
        .fetch_or(acquired::PROCESS_NOTIFY, Ordering::AcqRel);
    // SAFETY: PASSIVE_LEVEL; a static function.
    let status = unsafe { PsSetLoadImageNotifyRoutine(Some(image_notify)) };
    if !nt::nt_success(status) {
        return status;
    }
    g.acquired
        .fetch_or(acquired::IMAGE_NOTIFY, Ordering::AcqRel);
    nt::status::SUCCESS
}

/// Unregisters whichever routines are registered (teardown, PASSIVE_LEVEL).
pub fn unregister(g: &Globals) {
    let bits = g.acquired.fetch_and(
        !(acquired::PROCESS_NOTIFY | acquired::IMAGE_NOTIFY),
        Ordering::AcqRel,
    );
    if bits & acquired::PROCESS_NOTIFY != 0 {
        // SAFETY: PASSIVE_LEVEL; removes the routine registered above.
        unsafe { PsSetCreateProcessNotifyRoutineEx(Some(process_notify), true) };
    }
    if bits & acquired::IMAGE_NOTIFY != 0 {
        // SAFETY: PASSIVE_LEVEL; removes the routine registered above.
        unsafe { PsRemoveLoadImageNotifyRoutine(Some(image_notify)) };
    }
}

pub(super) fn origin(pid: u32) -> Origin {
    Origin {
        pid,
        tid: nt::current_thread_id(),
        timestamp: nt::system_time(),
    }
}

/// Runs after a successful emit: wake the READ DPC once a batch is pending.
pub(super) fn after_emit(g: &Globals) {
    if let Some(ring) = g.ring()
        && ring.pending_bytes() >= g.control.config.batch_bytes()
    {
        queue::kick(g);
    }
}

/// Largest binary SID (`SECURITY_MAX_SID_SIZE`).
const SID_MAX: usize = 68;

/// A SID copied out of a kernel buffer into the callback's stack.
struct SidCopy {
    bytes: [u8; SID_MAX],
    len: usize,
}

impl SidCopy {
    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// # Safety
    /// `sid` is null or a valid SID.
    unsafe fn from_sid(sid: *const u8) -> SidCopy {
        let mut copy = SidCopy {
            bytes: [0; SID_MAX],
            len: 0,
        };
        if sid.is_null() {
            return copy;
        }
        // SAFETY: a valid SID has Revision, SubAuthorityCount, then
        // 6 + 4 * SubAuthorityCount more bytes.
        let count = usize::from(unsafe { *sid.wrapping_add(1) });
        let len = 8usize.saturating_add(count.saturating_mul(4)).min(SID_MAX);
        // SAFETY: `len` bytes are readable in a valid SID (clamped to the
        // maximum, which every valid SID respects); the destination is ours.
        unsafe { core::ptr::copy_nonoverlapping(sid, copy.bytes.as_mut_ptr(), len) };
        copy.len = len;
        copy
    }
}

/// The primary token's user and integrity SIDs. `SeQueryInformationToken`
/// allocates its result from paged pool; that allocation (freed here) is
/// the kernel's, like FltMgr's name information, and process creation runs
/// at PASSIVE_LEVEL.
///
/// # Safety
/// PASSIVE_LEVEL; `process` is the process being created.
unsafe fn token_sids(process: PEPROCESS) -> (SidCopy, SidCopy) {
    let mut user = SidCopy {
        bytes: [0; SID_MAX],
        len: 0,
    };
    let mut integrity = SidCopy {
        bytes: [0; SID_MAX],
        len: 0,
    };
    // SAFETY: a referenced process in its create callback; returns a
    // referenced token that we dereference below.
    let token = unsafe { PsReferencePrimaryToken(process) };
    if token.is_null() {
        return (user, integrity);
    }
    let mut info: *mut c_void = core::ptr::null_mut();
    // SAFETY: PASSIVE_LEVEL; a referenced token; the result is a TOKEN_USER
    // we free with ExFreePoolWithTag(.., 0) (tag 0: allocator's tag).
    if nt::nt_success(unsafe { SeQueryInformationToken(token, TokenUser, &mut info) })
        && !info.is_null()
    {
        // SAFETY: on success the result is a TOKEN_USER.
        let sid = unsafe { (*info.cast::<TOKEN_USER>()).User.Sid };
        // SAFETY: whose Sid points to a valid SID in the same allocation.
        user = unsafe { SidCopy::from_sid(sid.cast()) };
        // SAFETY: allocated by SeQueryInformationToken; freed once.
        unsafe { ExFreePoolWithTag(info, 0) };
    }
    info = core::ptr::null_mut();
    // SAFETY: as above, for TOKEN_MANDATORY_LABEL.
    if nt::nt_success(unsafe { SeQueryInformationToken(token, TokenIntegrityLevel, &mut info) })
        && !info.is_null()
    {
        // SAFETY: on success the result is a TOKEN_MANDATORY_LABEL.
        let sid = unsafe { (*info.cast::<TOKEN_MANDATORY_LABEL>()).Label.Sid };
        // SAFETY: whose Sid points to a valid SID in the same allocation.
        integrity = unsafe { SidCopy::from_sid(sid.cast()) };
        // SAFETY: allocated by SeQueryInformationToken; freed once.
        unsafe { ExFreePoolWithTag(info, 0) };
    }
    // SAFETY: balances PsReferencePrimaryToken.
    unsafe { PsDereferencePrimaryToken(token) };
    (user, integrity)
}

/// `PCREATE_PROCESS_NOTIFY_ROUTINE_EX`. PASSIVE_LEVEL, in the creating
/// thread (create) or the exiting process's last thread (exit).
unsafe extern "system" fn process_notify(
    process: PEPROCESS,
    pid: HANDLE,
    info: *mut PS_CREATE_NOTIFY_INFO,
) {
    let g = globals();
    g.with_rundown(|g| {
        let Some(ring) = g.ring() else { return };
        let pid = nt::handle_id(pid);
        // SAFETY: `info` is null (exit) or valid for the callback's duration.
        match unsafe { info.as_ref() } {
            None => {
                if !g.control.config.enabled(EventKind::ProcessExit) {
                    return;
                }
                // SAFETY: the exiting process, referenced for the callback.
                let exit_status = unsafe { PsGetProcessExitStatus(process) };
                let facts = ProcessExitFacts {
                    origin: origin(pid),
                    exit_status,
                };
                if facts.emit(&DispatchRing(ring)).is_ok() {
                    after_emit(g);
                }
            }
            Some(info) => {
                if !g.control.config.enabled(EventKind::ProcessCreate) {
                    return;
                }
                // SAFETY: Flags is the plain-integer view of the bitfield union.
                let raw_flags = unsafe { info.Anonymous.Flags };
                let flags = if raw_flags & 1 != 0 {
                    PROCESS_FLAG_FILE_OPEN_NAME_AVAILABLE
                } else {
                    0
                } | if raw_flags & 2 != 0 {
                    PROCESS_FLAG_SUBSYSTEM
                } else {
                    0
                };
                // SAFETY: PASSIVE_LEVEL; the process being created.
                let (user, integrity) = unsafe { token_sids(process) };
                let facts = ProcessCreateFacts {
                    origin: origin(pid),
                    parent_pid: nt::handle_id(info.ParentProcessId),
                    creating_pid: nt::handle_id(info.CreatingThreadId.UniqueProcess),
                    creating_tid: nt::handle_id(info.CreatingThreadId.UniqueThread),
                    flags,
                    // SAFETY: the strings are null or valid for the callback.
                    image_name: unsafe { nt::units(info.ImageFileName) },
                    // SAFETY: as above.
                    command_line: unsafe { nt::units(info.CommandLine) },
                    user_sid: user.as_slice(),
                    integrity_sid: integrity.as_slice(),
                };
                if facts
                    .emit(&DispatchRing(ring), g.control.config.caps())
                    .is_ok()
                {
                    after_emit(g);
                }
            }
        }
    });
}

/// `PLOAD_IMAGE_NOTIFY_ROUTINE`. PASSIVE_LEVEL, in the mapping thread.
unsafe extern "system" fn image_notify(
    name: *const UNICODE_STRING,
    pid: HANDLE,
    info: *const IMAGE_INFO,
) {
    let g = globals();
    g.with_rundown(|g| {
        let Some(ring) = g.ring() else { return };
        if !g.control.config.enabled(EventKind::ImageLoad) {
            return;
        }
        // SAFETY: `info` is valid for the callback's duration.
        let Some(info) = (unsafe { info.as_ref() }) else {
            return;
        };
        let facts = ImageLoadFacts {
            origin: origin(nt::handle_id(pid)),
            image_base: info.ImageBase as u64,
            image_size: info.ImageSize as u64,
            // SAFETY: Properties is the plain-integer view of the bitfield union.
            properties: unsafe { info.Anonymous.Properties },
            // SAFETY: `name` is null or valid for the callback's duration.
            image_name: unsafe { nt::units(name) },
        };
        if facts
            .emit(&DispatchRing(ring), g.control.config.caps())
            .is_ok()
        {
            after_emit(g);
        }
    });
}
