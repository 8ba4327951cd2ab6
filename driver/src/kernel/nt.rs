//! Small wrappers over ntoskrnl.exe: the imports windows-sys does not declare
//! for the kernel (or declares for ntdll.dll, or with `fn()` placeholder
//! callback types), the CRT symbols the compiler calls, IRQL, time and ids.
//!
//! C headers: wdm.h, ntifs.h. Every import is listed in `driver/IMPORTS.md`.

use core::ffi::c_void;

use windows_sys::Wdk::Foundation::{IRP, KDPC, MDL};

pub use ringside_driver::ntoskrnl::{
    ZwClose, ZwOpenKey, ZwQueryInformationThread, ZwQueryValueKey,
};
use windows_sys::Wdk::System::SystemServices::{IO_CSQ, KeGetCurrentProcessorNumberEx};
use windows_sys::Win32::Foundation::{HANDLE, NTSTATUS, UNICODE_STRING};

/// `KDEFERRED_ROUTINE` with its real parameters.
pub type DeferredRoutine = unsafe extern "system" fn(
    dpc: *const KDPC,
    context: *const c_void,
    a1: *const c_void,
    a2: *const c_void,
);
/// `IO_CSQ_INSERT_IRP_EX`: may refuse the IRP.
pub type CsqInsertIrpEx =
    unsafe extern "system" fn(csq: *mut IO_CSQ, irp: *mut IRP, context: *mut c_void) -> NTSTATUS;
pub type CsqRemoveIrp = unsafe extern "system" fn(csq: *mut IO_CSQ, irp: *mut IRP);
pub type CsqPeekNextIrp = unsafe extern "system" fn(
    csq: *mut IO_CSQ,
    irp: *mut IRP,
    peek_context: *mut c_void,
) -> *mut IRP;
pub type CsqAcquireLock = unsafe extern "system" fn(csq: *mut IO_CSQ, irql: *mut u8);
pub type CsqReleaseLock = unsafe extern "system" fn(csq: *mut IO_CSQ, irql: u8);
pub type CsqCompleteCanceledIrp = unsafe extern "system" fn(csq: *mut IO_CSQ, irp: *mut IRP);

// windows-sys declares these callback parameters as `fn()` (or lacks the
// export); these are the ntoskrnl.exe exports with their real signatures.
// ZwOpenKey/ZwQueryValueKey/ZwClose live in `ringside_driver::ntoskrnl`
// (see there for why).
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    pub fn KeInitializeDpc(dpc: *mut KDPC, routine: DeferredRoutine, context: *const c_void);
    pub fn IoCsqInitializeEx(
        csq: *mut IO_CSQ,
        insert: CsqInsertIrpEx,
        remove: CsqRemoveIrp,
        peek: CsqPeekNextIrp,
        acquire: CsqAcquireLock,
        release: CsqReleaseLock,
        complete_canceled: CsqCompleteCanceledIrp,
    ) -> NTSTATUS;
    pub fn IoCsqInsertIrpEx(
        csq: *mut IO_CSQ,
        irp: *mut IRP,
        context: *mut c_void,
        insert_context: *mut c_void,
    ) -> NTSTATUS;
    pub fn KeAcquireSpinLockRaiseToDpc(lock: *mut usize) -> u8;
    pub fn KeReleaseSpinLock(lock: *mut usize, irql: u8);
    pub fn KeBugCheckEx(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> !;
    pub fn MmMapLockedPagesSpecifyCache(
        mdl: *mut MDL,
        access_mode: i8,
        cache_type: i32,
        requested_address: *const c_void,
        bugcheck_on_failure: u32,
        priority: u32,
    ) -> *mut c_void;
}

// The compiler lowers copies, fills and large stack frames to these; with
// /NODEFAULTLIB they come from ntoskrnl.exe, which exports all four.
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
#[expect(dead_code, reason = "called by compiler-generated code, not by name")]
unsafe extern "C" {
    pub fn memcpy(dest: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
    pub fn memmove(dest: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
    pub fn memset(dest: *mut c_void, c: i32, n: usize) -> *mut c_void;
    pub fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> i32;
    /// Stack probe for frames over a page (its own calling convention; only
    /// the symbol matters here).
    pub fn __chkstk();
}

/// NTSTATUS values the driver returns itself (the control device's come
/// from `ringside_wire::ioctl::status`).
pub mod status {
    pub const SUCCESS: i32 = 0;
    pub const UNSUCCESSFUL: i32 = 0xC000_0001_u32 as i32;
    pub const INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32;
    pub const FLT_DO_NOT_DETACH: i32 = 0xC01C_0010_u32 as i32;
}

pub const fn nt_success(status: NTSTATUS) -> bool {
    status >= 0
}

/// Names may be queried up to APC_LEVEL.
pub const APC_LEVEL: u8 = 1;

/// The current IRQL. On x64 `KeGetCurrentIrql` is an inline read of CR8
/// (ntoskrnl.exe does not export it), so this is what wdm.h does.
#[inline]
pub fn current_irql() -> u8 {
    let irql: u64;
    // SAFETY: the driver runs at CPL 0, where reading CR8 (the task priority
    // register) is always permitted and has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr8", out(reg) irql, options(nomem, nostack, preserves_flags))
    };
    irql as u8
}

/// `KeQuerySystemTimePrecise`: 100 ns units since 1601.
pub fn system_time() -> u64 {
    let mut now = 0i64;
    // SAFETY: callable at any IRQL; writes one i64 we own.
    unsafe { windows_sys::Wdk::System::SystemServices::KeQuerySystemTimePrecise(&mut now) };
    now as u64
}

/// `DISPATCH_LEVEL`.
pub const DISPATCH_LEVEL: u8 = 2;

/// `KeRaiseIrqlToDpcLevel` when below DISPATCH_LEVEL (on x64 wdm.h inlines it
/// as a write of CR8; ntoskrnl.exe exports no function for it). Returns the
/// IRQL to hand back to [`lower_irql`].
#[inline]
pub fn raise_to_dispatch() -> u8 {
    let old = current_irql();
    if old < DISPATCH_LEVEL {
        // SAFETY: CPL 0; raising CR8 to DISPATCH_LEVEL only masks lower
        // interrupts, and `lower_irql` restores the caller's level. No
        // `nomem`: the asm is then a compiler barrier, as KeRaiseIrql is, so
        // no memory access of the reservation moves above the raise.
        unsafe {
            core::arch::asm!("mov cr8, {}", in(reg) u64::from(DISPATCH_LEVEL), options(nostack, preserves_flags))
        };
    }
    old
}

/// `KeLowerIrql` back to what [`raise_to_dispatch`] returned (x64: a write of
/// CR8; interrupts pending at the lower levels, DPCs included, are then
/// delivered by the local APIC).
#[inline]
pub fn lower_irql(old: u8) {
    if old < DISPATCH_LEVEL {
        // SAFETY: CPL 0; `old` is the IRQL this thread ran at before
        // `raise_to_dispatch`, so lowering to it restores the caller's state.
        // No `nomem`: a compiler barrier, as KeLowerIrql is, so no memory
        // access of the reservation moves below the lower (where another
        // thread could run on this CPU and reserve in the same lane).
        unsafe {
            core::arch::asm!("mov cr8, {}", in(reg) u64::from(old), options(nostack, preserves_flags))
        };
    }
}

/// The ring as the callbacks reserve into it: in the current CPU's lane, at
/// DISPATCH_LEVEL for the reservation only. With a lane per CPU (the usual
/// case, `params::ring_lanes`) DISPATCH_LEVEL is what makes the lock-free
/// reservation exclusive; with shared lanes the lane's reservation lock is
/// held for a handful of instructions and assumes its holder cannot be
/// preempted (a preempted holder would make other producers drop with
/// `Contention`). Encoding then runs back at the callback's IRQL, since the
/// strings it copies may be pageable.
pub struct DispatchRing<'a>(pub &'a ringside_driver::ring::Ring<'static>);

impl ringside_driver::record::Reserve for DispatchRing<'_> {
    #[inline(always)]
    fn reserve(
        &self,
        kind: ringside_wire::EventKind,
        len: usize,
    ) -> Result<ringside_driver::ring::Reservation<'_>, ringside_wire::DropReason> {
        let ring = self.0;
        let old = raise_to_dispatch();
        // SAFETY: callable at any IRQL; a null PROCESSOR_NUMBER is allowed.
        // At DISPATCH_LEVEL the thread stays on this CPU until we lower.
        let cpu = unsafe { KeGetCurrentProcessorNumberEx(core::ptr::null_mut()) } as usize;
        // Relaxed: set before the ring was published (Acquire in `ring()`).
        let reservation = if !super::globals::globals()
            .exclusive_lanes
            .load(core::sync::atomic::Ordering::Relaxed)
        {
            ring.reserve_in(cpu, kind, len)
        } else if cpu < ring.lanes() {
            // SAFETY: in exclusive mode only CPU n reserves lane n, and no
            // shared reservation runs in this ring. We are on CPU `cpu` at
            // DISPATCH_LEVEL, where no other thread or DPC runs on it until
            // we lower, so no other reservation of lane `cpu` is concurrent;
            // earlier ones on this CPU are ordered before us by the context
            // switches between them (full barriers).
            unsafe { ring.reserve_exclusive(cpu, kind, len) }
        } else {
            // Cannot happen (the lanes cover every possible CPU); a CPU
            // without a lane must not share another CPU's.
            ring.drop_event(kind, ringside_wire::DropReason::Contention);
            Err(ringside_wire::DropReason::Contention)
        };
        lower_irql(old);
        reservation
    }

    fn drop_event(&self, kind: ringside_wire::EventKind, reason: ringside_wire::DropReason) {
        self.0.drop_event(kind, reason)
    }
}

/// Converts a process or thread id (a `HANDLE`-typed integer) to the wire's u32.
pub fn handle_id(handle: HANDLE) -> u32 {
    handle as usize as u32
}

/// Id of the current thread.
pub fn current_thread_id() -> u32 {
    // SAFETY: callable at any IRQL; returns a value.
    handle_id(unsafe { windows_sys::Wdk::System::SystemServices::PsGetCurrentThreadId() })
}

/// A counted UTF-16 string built from ASCII at compile time, for object names.
macro_rules! wide {
    ($s:expr) => {{
        const S: &str = $s;
        const N: usize = S.len();
        #[allow(
            clippy::indexing_slicing,
            reason = "evaluated at compile time: a bad index is a build error"
        )]
        const W: [u16; N] = {
            let bytes = S.as_bytes();
            let mut out = [0u16; N];
            let mut i = 0;
            while i < N {
                assert!(bytes[i] < 0x80, "object names are ASCII");
                out[i] = bytes[i] as u16;
                i += 1;
            }
            out
        };
        &W
    }};
}
pub(crate) use wide;

/// A `UNICODE_STRING` over a static UTF-16 name (never written through).
pub fn unicode(name: &'static [u16]) -> UNICODE_STRING {
    let bytes = u16::try_from(name.len().saturating_mul(2)).unwrap_or(0xFFFE);
    UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: name.as_ptr().cast_mut(),
    }
}

/// The UTF-16 units of a kernel `UNICODE_STRING`.
///
/// # Safety
/// `string` is null or points to a valid `UNICODE_STRING` whose buffer holds
/// `Length` bytes and stays valid and unchanged for `'a`.
pub unsafe fn units<'a>(string: *const UNICODE_STRING) -> &'a [u16] {
    // SAFETY: the caller guarantees `string` is null or valid for 'a.
    let Some(string) = (unsafe { string.as_ref() }) else {
        return &[];
    };
    if string.Buffer.is_null() {
        return &[];
    }
    // SAFETY: per the contract the buffer holds `Length` bytes of UTF-16
    // (none is fine: the pointer is not null), 2-aligned as every
    // UNICODE_STRING buffer is, valid for 'a.
    unsafe { core::slice::from_raw_parts(string.Buffer, usize::from(string.Length / 2)) }
}

/// `MmGetSystemAddressForMdlSafe` (a wdm.h inline): the MDL's system
/// mapping, created non-executable with normal priority if absent.
///
/// # Safety
/// `mdl` is a locked MDL from the I/O manager (`Irp->MdlAddress`), IRQL <=
/// DISPATCH_LEVEL; `'a` ends before the IRP that owns the MDL completes.
pub unsafe fn system_address_for_mdl<'a>(mdl: *mut MDL) -> Option<&'a mut [u8]> {
    const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;
    const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x0004;
    const MM_CACHED: i32 = 1;
    const KERNEL_MODE: i8 = 0;
    const NORMAL_PAGE_PRIORITY: u32 = 16;
    const MDL_MAPPING_NO_EXECUTE: u32 = 0x4000_0000;
    // SAFETY: the caller passes a valid MDL; we only read its header.
    let m = unsafe { mdl.as_mut() }?;
    let len = m.ByteCount as usize;
    let va = if m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
        m.MappedSystemVa
    } else {
        // SAFETY: locked MDL, IRQL <= DISPATCH_LEVEL; failure returns null
        // (bugcheck_on_failure = 0).
        unsafe {
            MmMapLockedPagesSpecifyCache(
                mdl,
                KERNEL_MODE,
                MM_CACHED,
                core::ptr::null(),
                0,
                NORMAL_PAGE_PRIORITY | MDL_MAPPING_NO_EXECUTE,
            )
        }
    };
    if va.is_null() {
        return None;
    }
    // SAFETY: the mapping covers ByteCount bytes of the caller's locked
    // buffer, which the I/O manager keeps until the IRP completes; the IRP
    // (and so this slice) is owned by exactly one path at a time.
    Some(unsafe { core::slice::from_raw_parts_mut(va.cast::<u8>(), len) })
}
