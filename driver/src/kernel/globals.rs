//! The driver's global state: one `#[no_mangle]` static, `RINGSIDE_GLOBALS`,
//! so a debugger extension (or the kernel model) finds everything by symbol.
//!
//! Fields that kernel APIs write (timer, DPC, rundown reference, queue) are
//! `KernelCell`s: the kernel owns their contents, the driver only ever
//! passes their address. Everything the driver itself reads or writes
//! concurrently is atomic.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{
    AtomicBool, AtomicI64, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

use ringside_driver::control::Control;
use ringside_driver::first_write::FirstWriteSet;
use ringside_driver::in_flight::InFlight;
use ringside_driver::ring::{Ring, RingError};
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, KDPC};
use windows_sys::Wdk::System::SystemServices::{EX_RUNDOWN_REF, IO_CSQ, KTIMER};

use super::queue::PendingReads;

/// Storage whose contents are owned by kernel APIs (or by the driver under
/// a documented protocol); `get` only yields its address.
#[repr(transparent)]
pub struct KernelCell<T>(UnsafeCell<MaybeUninit<T>>);

// SAFETY: the driver never creates references into a KernelCell from
// several threads; it hands the address to kernel APIs that synchronise
// internally, or accesses it under the protocol documented at each use.
unsafe impl<T> Sync for KernelCell<T> {}

impl<T> KernelCell<T> {
    /// Zero-initialised, which is the documented initial state of every
    /// kernel structure stored here before its `Initialize` call.
    pub const fn zeroed() -> Self {
        KernelCell(UnsafeCell::new(MaybeUninit::zeroed()))
    }

    pub const fn get(&self) -> *mut T {
        self.0.get().cast()
    }
}

/// Bits of [`Globals::acquired`]: what DriverEntry has set up and teardown
/// must undo. Teardown clears each bit before undoing it, so it is idempotent.
pub mod acquired {
    pub const RING: u32 = 1 << 0;
    pub const DEVICE: u32 = 1 << 1;
    pub const SYMLINK: u32 = 1 << 2;
    pub const FILTER: u32 = 1 << 3;
    pub const PROCESS_NOTIFY: u32 = 1 << 4;
    pub const IMAGE_NOTIFY: u32 = 1 << 5;
    pub const TIMER: u32 = 1 << 6;
    pub const REGISTRY: u32 = 1 << 7;
    pub const OBJECT_CALLBACKS: u32 = 1 << 8;
    pub const THREAD_NOTIFY: u32 = 1 << 9;
}

/// Slots in the first-write set (file objects written through and not yet
/// cleaned up); 32 KiB of the image's .bss.
pub const WRITE_SLOTS: usize = 4096;
/// Renames and deletes reported at once between their pre- and post-
/// operation callbacks (each holds two name references for that long); one
/// beyond that is counted as dropped (`Contention`).
pub const SET_INFORMATION_SLOTS: usize = 64;

/// [`Globals::npfs_instance`] while the filter has no instance on the
/// named-pipe file system: 1 is no `PFLT_INSTANCE` (FltMgr's are pointers
/// to aligned structures) and not the 0 a missing `FLT_RELATED_OBJECTS`
/// would read as, so "is this the pipe instance" is one compare.
pub const NO_INSTANCE: isize = 1;

#[repr(C)]
pub struct Globals {
    /// b"RINGSIDE" little-endian: lets a debugger confirm the symbol.
    pub magic: u64,
    /// [`acquired`] bits.
    pub acquired: AtomicU32,
    /// Ring memory (non-paged pool, tag `Rsid`) and its size.
    pub ring_memory: AtomicPtr<u8>,
    pub ring_size: AtomicUsize,
    /// Set (Release) once `ring` is initialised; cleared before it is dropped.
    ring_ready: AtomicBool,
    ring: KernelCell<Ring<'static>>,
    /// Each CPU reserves its own ring lane exclusively (see
    /// `params::ring_lanes`). Set before the ring is published.
    pub exclusive_lanes: AtomicBool,
    /// `PFLT_FILTER` from FltRegisterFilter.
    pub filter: AtomicIsize,
    /// The control device.
    pub device: AtomicPtr<DEVICE_OBJECT>,
    /// Every callback, dispatch routine and DPC that touches the ring holds
    /// this; teardown waits for it before freeing anything.
    pub rundown: KernelCell<EX_RUNDOWN_REF>,
    /// The control device's connection and configuration.
    pub control: Control,
    /// The READ cancel-safe queue, its lock and its slots.
    pub csq: KernelCell<IO_CSQ>,
    pub csq_lock: KernelCell<usize>,
    pub pending: PendingReads,
    /// The latency timer and the DPC that completes pending READs.
    pub timer: KernelCell<KTIMER>,
    pub dpc: KernelCell<KDPC>,
    /// The timer runs; read and written under `csq_lock` only.
    pub timer_armed: AtomicBool,
    pub reads_completed: AtomicU64,
    /// File objects written through since their create.
    pub writes: FirstWriteSet<WRITE_SLOTS>,
    /// Renames and deletes between their pre- and post-operation callbacks.
    pub set_information: InFlight<SET_INFORMATION_SLOTS>,
    /// The registry callback's cookie from CmRegisterCallbackEx (0 before).
    pub registry_cookie: AtomicI64,
    /// ObRegisterCallbacks' registration handle (null before).
    pub object_callbacks: AtomicPtr<core::ffi::c_void>,
    /// The filter's `PFLT_INSTANCE` on the named-pipe file system
    /// ([`NO_INSTANCE`] until the InstanceSetupCallback attached to it):
    /// post-create tells a client's pipe open from a file open with one
    /// compare against it.
    pub npfs_instance: AtomicIsize,
}

#[unsafe(no_mangle)]
pub static RINGSIDE_GLOBALS: Globals = Globals {
    magic: u64::from_le_bytes(*b"RINGSIDE"),
    acquired: AtomicU32::new(0),
    ring_memory: AtomicPtr::new(core::ptr::null_mut()),
    ring_size: AtomicUsize::new(0),
    ring_ready: AtomicBool::new(false),
    ring: KernelCell::zeroed(),
    exclusive_lanes: AtomicBool::new(false),
    filter: AtomicIsize::new(0),
    device: AtomicPtr::new(core::ptr::null_mut()),
    rundown: KernelCell::zeroed(),
    control: Control::new(),
    csq: KernelCell::zeroed(),
    csq_lock: KernelCell::zeroed(),
    pending: PendingReads::new(),
    timer: KernelCell::zeroed(),
    dpc: KernelCell::zeroed(),
    timer_armed: AtomicBool::new(false),
    reads_completed: AtomicU64::new(0),
    writes: FirstWriteSet::new(),
    set_information: InFlight::new(),
    registry_cookie: AtomicI64::new(0),
    object_callbacks: AtomicPtr::new(core::ptr::null_mut()),
    npfs_instance: AtomicIsize::new(NO_INSTANCE),
};

pub fn globals() -> &'static Globals {
    &RINGSIDE_GLOBALS
}

impl Globals {
    /// The ring, once DriverEntry set it up and until teardown frees it.
    /// Callers hold rundown protection, which teardown waits out before
    /// clearing `ring_ready`.
    pub fn ring(&self) -> Option<&Ring<'static>> {
        // Acquire pairs with the Release in `install_ring`.
        if self.ring_ready.load(Ordering::Acquire) {
            // SAFETY: `ring_ready` is true only between `install_ring` (which
            // wrote the ring first) and `take_ring`, which runs after rundown
            // completed, so no caller of this function is still running.
            Some(unsafe { &*self.ring.get() })
        } else {
            None
        }
    }

    /// Builds the ring over `memory` in place (it is too large for a kernel
    /// stack) and publishes it. Called once, from DriverEntry, before any
    /// producer or the device exists.
    pub fn install_ring(&self, memory: &'static mut [u8], lanes: usize) -> Result<(), RingError> {
        // SAFETY: single-threaded phase of DriverEntry: nothing reads `ring`
        // until `ring_ready` is published below; `MaybeUninit<Ring>` has the
        // layout of `Ring`.
        let slot = unsafe { &mut *self.ring.get().cast::<MaybeUninit<Ring<'static>>>() };
        Ring::init_in(slot, memory, lanes)?;
        self.control.config.set_lanes(lanes);
        self.ring_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Unpublishes the ring. Called from teardown after rundown completed.
    pub fn take_ring(&self) {
        if self.ring_ready.swap(false, Ordering::AcqRel) {
            // SAFETY: the ring was written by `install_ring`, and rundown has
            // completed, so no reference from `ring()` is alive. Ring owns no
            // resources beyond its borrow; dropping it ends that borrow
            // before the memory is freed.
            unsafe { core::ptr::drop_in_place(self.ring.get()) };
        }
    }

    /// Runs `f` under rundown protection; `None` once teardown started.
    pub fn with_rundown<R>(&self, f: impl FnOnce(&Self) -> R) -> Option<R> {
        // SAFETY: the rundown reference was initialised in DriverEntry
        // before any caller could run (zero is also its initialised state);
        // callable at IRQL <= DISPATCH_LEVEL.
        let acquired = unsafe {
            windows_sys::Wdk::System::SystemServices::ExAcquireRundownProtection(self.rundown.get())
        };
        if !acquired {
            return None;
        }
        let result = f(self);
        // SAFETY: balances the successful acquire above.
        unsafe {
            windows_sys::Wdk::System::SystemServices::ExReleaseRundownProtection(self.rundown.get())
        };
        Some(result)
    }
}
