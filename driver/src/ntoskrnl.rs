//! ntoskrnl.exe imports that windows-sys binds to ntdll.dll (its metadata
//! maps `Zw*` and `RtlWalkFrameChain` to user mode). Declared here, in the library, on purpose: the
//! linker takes an import symbol from the first library that defines it,
//! and this crate's rlib (with its embedded raw-dylib import library)
//! precedes windows-sys's on the link line. The binary gate fails the build
//! if any import still comes from ntdll.dll.
//!
//! C header: wdm.h. Only compiled for Windows targets.

use core::ffi::c_void;

/// `HANDLE`.
pub type Handle = *mut c_void;

#[allow(
    unsafe_code,
    reason = "declarations of kernel imports; the callers are the unsafe code"
)]
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    /// `ZwOpenKey(KeyHandle, DesiredAccess, ObjectAttributes)`; PASSIVE_LEVEL.
    pub fn ZwOpenKey(key: *mut Handle, access: u32, attributes: *const c_void) -> i32;
    /// `ZwQueryValueKey`; PASSIVE_LEVEL.
    pub fn ZwQueryValueKey(
        key: Handle,
        name: *const c_void,
        class: u32,
        information: *mut c_void,
        length: u32,
        result_length: *mut u32,
    ) -> i32;
    /// `ZwClose`; PASSIVE_LEVEL.
    pub fn ZwClose(handle: Handle) -> i32;
    /// `RtlWalkFrameChain(Callers, Count, Flags)` (ntddk.h): with flag 1,
    /// the current thread's user-mode return addresses; PASSIVE_LEVEL or
    /// APC_LEVEL for a user-mode walk (it reads pageable user memory).
    /// windows-sys binds it to ntdll.dll too.
    pub fn RtlWalkFrameChain(callers: *mut *mut c_void, count: u32, flags: u32) -> u32;
    /// `ZwQueryInformationThread(ThreadHandle, ThreadInformationClass,
    /// ThreadInformation, ThreadInformationLength, ReturnLength)`
    /// (ntddk.h); PASSIVE_LEVEL.
    pub fn ZwQueryInformationThread(
        thread: Handle,
        class: u32,
        information: *mut c_void,
        length: u32,
        return_length: *mut u32,
    ) -> i32;
}
