//! Process and image-load notify routines (ntddk.h:
//! `PsSetCreateProcessNotifyRoutineEx`, `PsSetLoadImageNotifyRoutine`):
//! trampolines that copy the kernel's arguments into `ringside_driver`'s
//! facts structs and emit one record.

use super::nt::DispatchRing;
use core::ffi::c_void;
use core::sync::atomic::Ordering;

use ringside_driver::record::{ImageLoadFacts, ProcessCreateFacts, ProcessExitFacts};
use ringside_wire::{
    DropReason, EventKind, Origin, PROCESS_FLAG_FILE_OPEN_NAME_AVAILABLE, PROCESS_FLAG_SUBSYSTEM,
};
use windows_sys::Wdk::Foundation::PEPROCESS;
use windows_sys::Wdk::Storage::FileSystem::{
    PsDereferencePrimaryToken, PsReferencePrimaryToken, SeQueryAuthenticationIdToken,
    SeQueryInformationToken,
};
use windows_sys::Wdk::System::SystemServices::{
    ExFreePoolWithTag, IMAGE_INFO, PS_CREATE_NOTIFY_INFO, PsGetProcessExitStatus,
    PsRemoveLoadImageNotifyRoutine, PsSetCreateProcessNotifyRoutineEx, PsSetLoadImageNotifyRoutine,
};
use windows_sys::Win32::Foundation::{HANDLE, LUID, UNICODE_STRING};
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

/// Runs after an emit into `ring`: wakes the READ DPC once the record's lane
/// holds its share of a batch (`batch_bytes` split evenly over the lanes).
///
/// One lane, not the sum over all: this runs on every event, and summing 64
/// lanes would cost more than the rest of the event. Under even load the
/// lanes fill together and a READ completes near `batch_bytes`; under
/// uneven load it completes sooner, never later (the latency timer is the
/// bound either way).
pub(super) fn after_emit(g: &Globals, emitted: Result<usize, DropReason>) {
    let Ok(lane_backlog) = emitted else { return };
    if lane_backlog >= g.control.config.lane_batch_bytes() {
        queue::kick(g);
    }
}

/// Largest binary SID (`SECURITY_MAX_SID_SIZE`).
const SID_MAX: usize = 68;

/// The bytes of a SID in a kernel buffer: `8 + 4 * SubAuthorityCount`,
/// clamped to [`SID_MAX`]; empty for a null pointer.
///
/// # Safety
/// `sid` is null or a valid SID that stays valid and unchanged for `'a`.
unsafe fn sid_bytes<'a>(sid: *const u8) -> &'a [u8] {
    if sid.is_null() {
        return &[];
    }
    // SAFETY: a valid SID has Revision, SubAuthorityCount, then
    // 6 + 4 * SubAuthorityCount more bytes.
    let count = usize::from(unsafe { *sid.wrapping_add(1) });
    let len = 8usize.saturating_add(count.saturating_mul(4)).min(SID_MAX);
    // SAFETY: `len` bytes are readable in a valid SID (clamped to the
    // maximum, which every valid SID respects), valid for 'a per the contract.
    unsafe { core::slice::from_raw_parts(sid, len) }
}

/// The new process's primary token, its user and integrity-level SIDs, read
/// in place, and its logon session: `SeQueryInformationToken` allocates each
/// SID result from paged pool (the kernel's allocation, like FltMgr's name
/// information), and the record is encoded straight from it;
/// `SeQueryAuthenticationIdToken` copies the 8-byte LUID into our own
/// variable, with no allocation. Dropping this frees both SID results and
/// dereferences the token. Process creation runs at PASSIVE_LEVEL, where
/// all of this is allowed.
struct TokenSids {
    /// `PACCESS_TOKEN` from `PsReferencePrimaryToken`, or null.
    token: *mut c_void,
    /// A `TOKEN_USER` from `SeQueryInformationToken`, or null.
    user: *mut c_void,
    /// A `TOKEN_MANDATORY_LABEL` from `SeQueryInformationToken`, or null.
    integrity: *mut c_void,
    /// The token's logon session, its `AuthenticationId` LUID read as
    /// `HighPart << 32 | LowPart` (`None` if it could not be queried).
    /// Copied, not formatted: the agent renders it.
    logon_id: Option<u64>,
}

impl TokenSids {
    /// # Safety
    /// PASSIVE_LEVEL; `process` is the process being created.
    unsafe fn query(process: PEPROCESS) -> TokenSids {
        // SAFETY: a referenced process in its create callback; returns a
        // referenced token that `drop` dereferences.
        let token = unsafe { PsReferencePrimaryToken(process) };
        let mut sids = TokenSids {
            token,
            user: core::ptr::null_mut(),
            integrity: core::ptr::null_mut(),
            logon_id: None,
        };
        if token.is_null() {
            return sids;
        }
        // SAFETY: PASSIVE_LEVEL; a referenced token; the result is a
        // TOKEN_USER that `drop` frees with ExFreePoolWithTag(.., 0) (tag 0:
        // the allocator's tag).
        if !nt::nt_success(unsafe { SeQueryInformationToken(token, TokenUser, &mut sids.user) }) {
            sids.user = core::ptr::null_mut();
        }
        // SAFETY: as above, for TOKEN_MANDATORY_LABEL.
        let status =
            unsafe { SeQueryInformationToken(token, TokenIntegrityLevel, &mut sids.integrity) };
        if !nt::nt_success(status) {
            sids.integrity = core::ptr::null_mut();
        }
        let mut luid = LUID {
            LowPart: 0,
            HighPart: 0,
        };
        // SAFETY: PASSIVE_LEVEL (this API's requirement); `token` is
        // referenced until `drop`; the kernel writes one LUID into `luid`, a
        // local of ours that nothing else references. No allocation.
        if nt::nt_success(unsafe { SeQueryAuthenticationIdToken(token, &mut luid) }) {
            let high = u32::from_ne_bytes(luid.HighPart.to_ne_bytes());
            sids.logon_id = Some(u64::from(luid.LowPart) | u64::from(high) << 32);
        }
        sids
    }

    /// The token's user SID (empty if it could not be queried).
    fn user(&self) -> &[u8] {
        // SAFETY: `user` is null or a TOKEN_USER we own until `drop`.
        let Some(info) = (unsafe { self.user.cast::<TOKEN_USER>().as_ref() }) else {
            return &[];
        };
        // SAFETY: its Sid points to a valid SID in the same allocation,
        // which lives as long as `self`.
        unsafe { sid_bytes(info.User.Sid.cast()) }
    }

    /// The token's integrity-level SID (empty if it could not be queried).
    fn integrity(&self) -> &[u8] {
        // SAFETY: `integrity` is null or a TOKEN_MANDATORY_LABEL we own
        // until `drop`.
        let Some(info) = (unsafe { self.integrity.cast::<TOKEN_MANDATORY_LABEL>().as_ref() })
        else {
            return &[];
        };
        // SAFETY: its Sid points to a valid SID in the same allocation,
        // which lives as long as `self`.
        unsafe { sid_bytes(info.Label.Sid.cast()) }
    }
}

impl Drop for TokenSids {
    fn drop(&mut self) {
        for info in [self.user, self.integrity] {
            if !info.is_null() {
                // SAFETY: allocated by SeQueryInformationToken; freed once,
                // here; PASSIVE_LEVEL (process creation).
                unsafe { ExFreePoolWithTag(info, 0) };
            }
        }
        if !self.token.is_null() {
            // SAFETY: balances PsReferencePrimaryToken.
            unsafe { PsDereferencePrimaryToken(self.token) };
        }
    }
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
                after_emit(g, facts.emit(&DispatchRing(ring)));
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
                let sids = unsafe { TokenSids::query(process) };
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
                    user_sid: sids.user(),
                    integrity_sid: sids.integrity(),
                    logon_id: sids.logon_id,
                };
                after_emit(g, facts.emit(&DispatchRing(ring), g.control.config.caps()));
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
        after_emit(g, facts.emit(&DispatchRing(ring), g.control.config.caps()));
    });
}
