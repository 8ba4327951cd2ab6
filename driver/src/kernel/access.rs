//! The object manager's handle callbacks (wdm.h: `ObRegisterCallbacks`,
//! `ObUnRegisterCallbacks`, `OB_CALLBACK_REGISTRATION`,
//! `OB_PRE_OPERATION_INFORMATION`, `OB_POST_OPERATION_INFORMATION`; ntddk.h:
//! `RtlWalkFrameChain`, `PsGetThreadId`, `PsGetThreadProcessId`): process
//! and thread handles created or duplicated become [`ProcessAccessFacts`]
//! and one record (Sysmon 10).
//!
//! Observe only. The pre-operation callback never touches `DesiredAccess`
//! (the member a callback would clear bits of to strip rights): it only
//! stores the caller's `OriginalDesiredAccess` in `CallContext`, which the
//! object manager hands to the matching post-operation callback
//! (OB_PRE_OPERATION_INFORMATION, `CallContext`), and returns
//! OB_PREOP_SUCCESS, the only value drivers may return.
//!
//! Why the post-operation callback reports: `OB_POST_OPERATION_INFORMATION`
//! carries `ReturnStatus`, "the NTSTATUS value for the handle operation",
//! and `GrantedAccess`, the access the handle really got after every
//! callback's stripping; the pre-operation callback sees only what was
//! asked for, and of an open that may still fail. So a failed open is not
//! reported as done, and `GrantedAccess` is Sysmon's (which logs the
//! granted mask).
//!
//! IRQL and thread: both callbacks run "at PASSIVE_LEVEL in an arbitrary
//! thread context with normal kernel APCs disabled" (POB_PRE_/
//! POB_POST_OPERATION_CALLBACK, remarks). In practice the object manager
//! calls them from the requesting thread (NtOpenProcess, NtOpenThread,
//! NtDuplicateObject run them before they return to their caller), which
//! is what makes the current process the access's source, as Sysmon
//! reports it; that is the one assumption this module makes beyond the
//! reference pages, and it is the one every product using these callbacks
//! makes.

use core::ffi::c_void;
use core::sync::atomic::Ordering;

use ringside_driver::ntoskrnl::RtlWalkFrameChain;
use ringside_driver::record::{ProcessAccessFacts, access_reported};
use ringside_wire::{
    ACCESS_FLAG_DUPLICATE, ACCESS_FLAG_KERNEL_HANDLE, ACCESS_FLAG_THREAD, EventKind,
    MAX_CALL_FRAMES,
};
use windows_sys::Wdk::Foundation::{PEPROCESS, PETHREAD};
use windows_sys::Wdk::System::SystemServices::{
    ObRegisterCallbacks, ObUnRegisterCallbacks, PsGetCurrentProcessId, PsGetProcessId,
    PsGetThreadId, PsGetThreadProcessId,
};

use ringside_driver::wdk::ob::{
    CallbackRegistration, OperationRegistration, PostOperationInformation, PreOperationInformation,
    UnicodeString,
};

use super::globals::{Globals, acquired, globals};
use super::notify::{after_emit, origin};
use super::nt::{self, DispatchRing};

/// `OB_OPERATION_HANDLE_CREATE`, `OB_OPERATION_HANDLE_DUPLICATE` (wdm.h).
const OB_OPERATION_HANDLE_CREATE: u32 = 1;
const OB_OPERATION_HANDLE_DUPLICATE: u32 = 2;
/// `OB_FLT_REGISTRATION_VERSION` (wdm.h).
const OB_FLT_REGISTRATION_VERSION: u16 = 0x0100;
/// `OB_PREOP_SUCCESS`.
const OB_PREOP_SUCCESS: i32 = 0;
/// `RtlWalkFrameChain` flag: walk the thread's user-mode stack (ntddk.h
/// declares the routine; this is the flag value its callers pass for the
/// user-mode frames, `RTL_WALK_USER_MODE_STACK`).
const RTL_WALK_USER_MODE_STACK: u32 = 1;
/// `CallContext` of an operation whose pre-operation callback recorded
/// the desired access: this bit set, the access in the low 32 bits. A
/// context without it (NULL, the object manager's default) means unknown.
const DESIRED_KNOWN: usize = 1 << 32;

/// The altitude among object-manager callbacks: the minifilter's own
/// (ringside.inf, `Instance1.Altitude`), as the registry callback's.
/// Object callbacks are ordered among themselves only. Another driver at
/// the same altitude makes ObRegisterCallbacks fail with
/// STATUS_FLT_INSTANCE_ALTITUDE_COLLISION: then the driver runs without
/// process access events (see [`register`]).
const ALTITUDE: &[u16] = nt::wide!("385201");

// ntoskrnl.exe's data exports `PsProcessType` and `PsThreadType` (each the
// variable that holds the object type), which windows-sys does not
// declare; the registration names the variables' addresses
// (`POBJECT_TYPE *ObjectType`). The functions come from windows-sys:
// declaring one of its ntoskrnl.exe functions again here reorders the
// link so that windows-sys's ntdll.dll import library wins for the Zw*
// functions (the binary gate caught it), and RtlWalkFrameChain, which
// windows-sys binds to ntdll.dll, is in `ringside_driver::ntoskrnl`.
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    static PsProcessType: *mut c_void;
    static PsThreadType: *mut c_void;
}

/// Registers the process and thread handle callbacks (DriverEntry,
/// PASSIVE_LEVEL; the API allows <= APC_LEVEL).
///
/// A failure does not fail the load: process access is one optional kind,
/// off by default, and the likeliest failure is another product's
/// registration at the same altitude, which must not take process, file
/// and registry telemetry down with it. The kind is withdrawn from HELLO's
/// `supported_events` instead, so the agent knows. Returns the status.
pub fn register(g: &Globals) -> i32 {
    let operations = [
        OperationRegistration {
            object_type: &raw const PsProcessType,
            operations: OB_OPERATION_HANDLE_CREATE | OB_OPERATION_HANDLE_DUPLICATE,
            pre_operation: Some(pre_operation),
            post_operation: Some(process_post_operation),
        },
        OperationRegistration {
            object_type: &raw const PsThreadType,
            operations: OB_OPERATION_HANDLE_CREATE | OB_OPERATION_HANDLE_DUPLICATE,
            pre_operation: Some(pre_operation),
            post_operation: Some(thread_post_operation),
        },
    ];
    let registration = CallbackRegistration {
        version: OB_FLT_REGISTRATION_VERSION,
        operation_registration_count: operations.len() as u16,
        altitude: {
            let altitude = nt::unicode(ALTITUDE);
            UnicodeString {
                length: altitude.Length,
                maximum_length: altitude.MaximumLength,
                buffer: altitude.Buffer,
            }
        },
        registration_context: core::ptr::null_mut(),
        operation_registration: operations.as_ptr(),
    };
    let mut handle: *mut c_void = core::ptr::null_mut();
    // SAFETY: PASSIVE_LEVEL (DriverEntry), within the API's <= APC_LEVEL;
    // `registration`, `operations` and `handle` are locals that outlive
    // the call (the object manager copies the registration and the
    // altitude into its own allocation); the routines are static
    // functions of this image, which is linked with /INTEGRITYCHECK
    // (driver/build.rs), without which the API returns
    // STATUS_ACCESS_DENIED; the object types are the addresses of
    // ntoskrnl's exported variables, valid for the system's lifetime.
    let status = unsafe { ObRegisterCallbacks((&raw const registration).cast(), &mut handle) };
    if !nt::nt_success(status) || handle.is_null() {
        g.control.withdraw(EventKind::ProcessAccess);
        return status;
    }
    // Release pairs with the Acquire in `unregister`.
    g.object_callbacks.store(handle, Ordering::Release);
    g.acquired
        .fetch_or(acquired::OBJECT_CALLBACKS, Ordering::AcqRel);
    nt::status::SUCCESS
}

/// Unregisters the callbacks if registered (teardown, PASSIVE_LEVEL).
///
/// The reference page requires the call before the driver unloads, once
/// (a second call is a double free): the bit in `acquired` makes it once.
/// After it returns no call of the routines is in progress, as the
/// requirement implies (the image is unmapped right after unload) and as
/// the kernel model checks; every call that touches the ring also holds
/// rundown protection, which teardown waits out next.
pub fn unregister(g: &Globals) {
    let bits = g
        .acquired
        .fetch_and(!acquired::OBJECT_CALLBACKS, Ordering::AcqRel);
    if bits & acquired::OBJECT_CALLBACKS != 0 {
        let handle = g
            .object_callbacks
            .swap(core::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: PASSIVE_LEVEL; the handle ObRegisterCallbacks returned,
        // unregistered once (the bit was set and is now cleared).
        unsafe { ObUnRegisterCallbacks(handle.cast_const()) };
    }
}

/// `POB_PRE_OPERATION_CALLBACK`: passes `OriginalDesiredAccess` to the
/// post-operation callback in `CallContext`. Changes nothing else.
unsafe extern "system" fn pre_operation(
    _context: *mut c_void,
    info: *mut PreOperationInformation,
) -> i32 {
    // A disabled kind costs this one branch.
    if !globals().control.config.enabled(EventKind::ProcessAccess) {
        return OB_PREOP_SUCCESS;
    }
    // SAFETY: PASSIVE_LEVEL; the object manager passes a structure valid
    // and ours to write `CallContext` of for this call; no other reference
    // to it exists in this image.
    let Some(info) = (unsafe { info.as_mut() }) else {
        return OB_PREOP_SUCCESS;
    };
    // SAFETY: `Parameters` points to the operation's create or duplicate
    // information for this call; both begin with DesiredAccess,
    // OriginalDesiredAccess. Read only.
    if let Some(parameters) = unsafe { info.parameters.as_ref() } {
        info.call_context =
            (DESIRED_KNOWN | parameters.original_desired_access as usize) as *mut c_void;
    }
    OB_PREOP_SUCCESS
}

/// `POB_POST_OPERATION_CALLBACK` for process handles.
unsafe extern "system" fn process_post_operation(
    _context: *mut c_void,
    info: *const PostOperationInformation,
) {
    // SAFETY: PASSIVE_LEVEL; valid and unchanged for this call; read only.
    if let Some(info) = unsafe { info.as_ref() } {
        post_operation(info, false);
    }
}

/// `POB_POST_OPERATION_CALLBACK` for thread handles.
unsafe extern "system" fn thread_post_operation(
    _context: *mut c_void,
    info: *const PostOperationInformation,
) {
    // SAFETY: as in `process_post_operation`.
    if let Some(info) = unsafe { info.as_ref() } {
        post_operation(info, true);
    }
}

fn post_operation(info: &PostOperationInformation, thread: bool) {
    let g = globals();
    // A disabled kind costs this one branch (and the trampoline's call).
    if !g.control.config.enabled(EventKind::ProcessAccess) {
        return;
    }
    // A failed open or duplication granted nothing: not reported as done.
    if !nt::nt_success(info.return_status) {
        return;
    }
    // SAFETY: callable at any IRQL; returns a value.
    let source_pid = nt::handle_id(unsafe { PsGetCurrentProcessId() });
    let (target_pid, target_tid) = if thread {
        // SAFETY: PASSIVE_LEVEL; `Object` is the thread the handle is to,
        // referenced by the object manager for this call.
        let process = unsafe { PsGetThreadProcessId(info.object as PETHREAD) };
        // SAFETY: as above.
        let thread = unsafe { PsGetThreadId(info.object as PETHREAD) };
        (nt::handle_id(process), nt::handle_id(thread))
    } else {
        // SAFETY: PASSIVE_LEVEL; `Object` is the process, referenced for
        // this call.
        (
            nt::handle_id(unsafe { PsGetProcessId(info.object as PEPROCESS) }),
            0,
        )
    };
    if !access_reported(source_pid, target_pid, g.control.consumer_pid()) {
        return;
    }
    g.with_rundown(|g| {
        let Some(ring) = g.ring() else { return };
        // SAFETY: `Parameters` is the operation's create or duplicate
        // information, one GrantedAccess either way, valid for this call.
        let granted_access = unsafe { info.parameters.as_ref() }.map_or(0, |p| p.granted_access);
        let context = info.call_context as usize;
        let desired_access = (context & DESIRED_KNOWN != 0).then_some(context as u32);
        let mut frames = [0u64; MAX_CALL_FRAMES];
        // SAFETY: PASSIVE_LEVEL, as walking a user-mode stack (pageable
        // memory) requires; the current thread is the requestor (see the
        // module comment); `frames` is a local array of MAX_CALL_FRAMES
        // pointer-sized slots, of which the routine fills at most `count`
        // and returns how many; no allocation.
        let walked = unsafe {
            RtlWalkFrameChain(
                frames.as_mut_ptr().cast(),
                MAX_CALL_FRAMES as u32,
                RTL_WALK_USER_MODE_STACK,
            )
        };
        let walked = frames.get(..walked as usize).unwrap_or(&frames);
        let duplicate = if info.operation == OB_OPERATION_HANDLE_DUPLICATE {
            ACCESS_FLAG_DUPLICATE
        } else {
            0
        };
        let facts = ProcessAccessFacts {
            origin: origin(source_pid),
            target_pid,
            target_tid,
            granted_access,
            desired_access,
            flags: duplicate
                | if thread { ACCESS_FLAG_THREAD } else { 0 }
                | if info.flags & 1 != 0 {
                    ACCESS_FLAG_KERNEL_HANDLE
                } else {
                    0
                },
            frames: walked,
        };
        after_emit(g, facts.emit(&DispatchRing(ring)));
    });
}
