//! The thread-creation notify routine (ntddk.h:
//! `PsSetCreateThreadNotifyRoutine`, `PsRemoveCreateThreadNotifyRoutine`;
//! ntifs.h: `PsLookupThreadByThreadId`, `ObOpenObjectByPointer`; ntddk.h:
//! `ZwQueryInformationThread`): a trampoline that reports a thread created
//! in another process than its creator's, with its start address.
//!
//! Why the original routine and not `PsSetCreateThreadNotifyRoutineEx`:
//! the routine "runs in the context of the thread that created the new
//! thread" (PCREATE_THREAD_NOTIFY_ROUTINE, remarks), so the current process
//! is the creator and `ProcessId` the target, and a remote thread is one
//! where they differ. Registered with the Ex variant and
//! `PsCreateThreadNotifyNonSystem`, "the callback is executed on the newly
//! created thread" (PsSetCreateThreadNotifyRoutineEx, remarks): the current
//! process is then the target, and nothing tells the creator apart, which is
//! the one fact Sysmon 8 is about. Both run at PASSIVE_LEVEL or APC_LEVEL.

use core::ffi::c_void;
use core::sync::atomic::Ordering;

use ringside_driver::record::RemoteThreadFacts;
use ringside_driver::wdk::THREAD_QUERY_SET_WIN32_START_ADDRESS;
use ringside_wire::EventKind;
use windows_sys::Wdk::Foundation::PETHREAD;
use windows_sys::Wdk::Storage::FileSystem::{ObOpenObjectByPointer, PsLookupThreadByThreadId};
use windows_sys::Wdk::System::SystemServices::{
    ObfDereferenceObject, PsGetCurrentProcessId, PsRemoveCreateThreadNotifyRoutine,
    PsSetCreateThreadNotifyRoutine,
};
use windows_sys::Win32::Foundation::HANDLE;

use super::globals::{Globals, acquired, globals};
use super::notify::{after_emit, origin};
use super::nt::{self, DispatchRing};

/// `OBJ_KERNEL_HANDLE`: the routine runs in the creator's process, not the
/// system process, so the handle must be a kernel handle (ObOpenObjectByPointer).
const OBJ_KERNEL_HANDLE: u32 = 0x0000_0200;
/// `THREAD_QUERY_INFORMATION`, what `ThreadQuerySetWin32StartAddress` reads with.
const THREAD_QUERY_INFORMATION: u32 = 0x0040;
/// `KernelMode` (`KPROCESSOR_MODE`): no access check, and then ObjectType
/// may be NULL (ObOpenObjectByPointer, ObjectType).
const KERNEL_MODE: i8 = 0;
/// IRQL at which the object manager and Zw calls are allowed.
const PASSIVE_LEVEL: u8 = 0;

/// Registers the routine (DriverEntry, PASSIVE_LEVEL).
pub fn register(g: &Globals) -> i32 {
    // SAFETY: PASSIVE_LEVEL (DriverEntry), as the API requires; the routine
    // is a static function that lives as long as the image, and teardown
    // removes it before the image goes.
    let status = unsafe { PsSetCreateThreadNotifyRoutine(Some(thread_notify)) };
    if !nt::nt_success(status) {
        return status;
    }
    g.acquired
        .fetch_or(acquired::THREAD_NOTIFY, Ordering::AcqRel);
    nt::status::SUCCESS
}

/// Removes the routine if registered (teardown, PASSIVE_LEVEL). Removal
/// waits for calls of the routine in progress, as the process and image
/// routines' removals do; teardown then also waits out rundown protection,
/// which every call that touches the ring holds.
pub fn unregister(g: &Globals) {
    if g.acquired
        .fetch_and(!acquired::THREAD_NOTIFY, Ordering::AcqRel)
        & acquired::THREAD_NOTIFY
        != 0
    {
        // SAFETY: PASSIVE_LEVEL; removes the routine registered above, once
        // (the bit was set and is now cleared).
        unsafe { PsRemoveCreateThreadNotifyRoutine(Some(thread_notify)) };
    }
}

/// A referenced thread object from `PsLookupThreadByThreadId`, dereferenced
/// on drop. windows-sys types `PETHREAD` as an integer; this holds it as
/// the pointer it is.
#[derive(Debug)]
struct ThreadObject(*const c_void);

impl Drop for ThreadObject {
    fn drop(&mut self) {
        // SAFETY: a reference PsLookupThreadByThreadId took, released once;
        // callable at IRQL <= DISPATCH_LEVEL.
        unsafe { ObfDereferenceObject(self.0) };
    }
}

/// A kernel handle from `ObOpenObjectByPointer`, closed on drop.
#[derive(Debug)]
struct KernelHandle(HANDLE);

impl Drop for KernelHandle {
    fn drop(&mut self) {
        // SAFETY: PASSIVE_LEVEL (only opened there); a kernel handle we
        // opened and close once.
        unsafe { nt::ZwClose(self.0) };
    }
}

/// The new thread's Win32 start address, or `None` when it cannot be had:
/// above PASSIVE_LEVEL (the object manager and Zw calls need it), or when
/// any of the three calls fails. No allocation but the handle table entry
/// the object manager makes for the handle, closed before returning.
fn start_address(thread_id: HANDLE) -> Option<u64> {
    if nt::current_irql() != PASSIVE_LEVEL {
        return None;
    }
    let mut thread: PETHREAD = 0;
    // SAFETY: PASSIVE_LEVEL (<= APC_LEVEL is required); writes one local
    // we own and nothing else borrows; on success the thread is referenced
    // (it cannot be freed under us), and `ThreadObject` dereferences it.
    let status = unsafe { PsLookupThreadByThreadId(thread_id, &mut thread) };
    if !nt::nt_success(status) || thread == 0 {
        return None;
    }
    let thread = ThreadObject(thread as usize as *const c_void);
    let mut handle: HANDLE = core::ptr::null_mut();
    // SAFETY: PASSIVE_LEVEL; `thread.0` is referenced for this scope; a
    // kernel handle (we are not in the system process), no access state,
    // KernelMode so ObjectType may be NULL; writes one handle we own, closed
    // by `KernelHandle`.
    let status = unsafe {
        ObOpenObjectByPointer(
            thread.0,
            OBJ_KERNEL_HANDLE,
            core::ptr::null(),
            THREAD_QUERY_INFORMATION,
            0,
            KERNEL_MODE,
            &mut handle,
        )
    };
    if !nt::nt_success(status) {
        return None;
    }
    let handle = KernelHandle(handle);
    let mut address: usize = 0;
    // SAFETY: PASSIVE_LEVEL; a kernel handle to the thread, open for this
    // scope; the buffer is our pointer-sized local, as this class returns,
    // borrowed by nothing else during the call; no return length asked for.
    let status = unsafe {
        nt::ZwQueryInformationThread(
            handle.0,
            THREAD_QUERY_SET_WIN32_START_ADDRESS,
            (&raw mut address).cast::<c_void>(),
            core::mem::size_of::<usize>() as u32,
            core::ptr::null_mut(),
        )
    };
    drop(handle);
    drop(thread);
    nt::nt_success(status).then_some(address as u64)
}

/// `PCREATE_THREAD_NOTIFY_ROUTINE`. PASSIVE_LEVEL or APC_LEVEL, in the
/// creating thread for a creation, in the exiting thread for a deletion.
unsafe extern "system" fn thread_notify(process_id: HANDLE, thread_id: HANDLE, create: bool) {
    // Exits, and every thread a process creates in itself (nearly all),
    // cost a compare each; a disabled kind costs one more.
    if !create {
        return;
    }
    // SAFETY: callable at any IRQL; returns a value.
    let creator = nt::handle_id(unsafe { PsGetCurrentProcessId() });
    let target = nt::handle_id(process_id);
    if creator == target {
        return;
    }
    let g = globals();
    if !g.control.config.enabled(EventKind::RemoteThread) {
        return;
    }
    g.with_rundown(|g| {
        let Some(ring) = g.ring() else { return };
        // A start address that cannot be queried is flagged missing, not a
        // dropped event: who created a thread in which process is what most
        // create_remote_thread rules match on, and it is known.
        let facts = RemoteThreadFacts {
            origin: origin(creator),
            target_pid: target,
            new_thread_id: nt::handle_id(thread_id),
            start_address: start_address(thread_id),
        };
        after_emit(g, facts.emit(&DispatchRing(ring)));
    });
}
