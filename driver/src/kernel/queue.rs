//! Pending READs: a cancel-safe queue (`IoCsqInitializeEx` / `IoCsqInsertIrpEx`
//! / `IoCsqRemoveNextIrp`, wdm.h) over a fixed array of IRP pointers, and the
//! latency timer + DPC that completes them.
//!
//! The queue holds at most [`MAX_PENDING_READS`] IRPs; a READ beyond that is
//! refused with STATUS_INSUFFICIENT_RESOURCES (the insert-Ex callback may
//! fail), so nothing is allocated. A pending READ completes from the DPC,
//! which runs when the periodic timer (period = CONFIGURE's
//! `max_latency_ms`) fires and records are pending, or is queued by a
//! producer once its CPU's lane holds its share of `batch_bytes`.
//!
//! The timer runs exactly while a READ is queued: `timer_armed` and the
//! timer itself change together under the queue's spin lock, with the
//! queue's length. Flag and timer changed with atomics alone drifted apart
//! when CONFIGURE, a READ and the DPC ran on different CPUs (the timer left
//! running after unload, or stopped with a READ waiting); the multi-CPU
//! kernel model found both (tests/src/races.rs).

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicU32, Ordering};

use windows_sys::Wdk::Foundation::{IRP, KDPC};
use windows_sys::Wdk::System::SystemServices::{
    IO_CSQ, IoCsqRemoveNextIrp, KeCancelTimer, KeInsertQueueDpc, KeQueryTimeIncrement, KeSetTimerEx,
};

use ringside_driver::pending::{Full, Slots};

use super::globals::{Globals, acquired, globals};
use super::{irp, nt};

/// Most READs the agent may have pending at once.
pub const MAX_PENDING_READS: usize = 16;

/// IRP pointers in arrival order. Only touched under `Globals::csq_lock`
/// (the CSQ calls our callbacks with it held).
pub struct PendingReads {
    slots: UnsafeCell<Slots<*mut IRP, MAX_PENDING_READS>>,
    /// Mirror of the slot count, so STATS and producers can read it without
    /// the lock.
    pub len: AtomicU32,
}

// SAFETY: `slots` is only accessed from the CSQ callbacks, which the I/O
// manager calls with our CSQ lock (a spin lock) held.
unsafe impl Sync for PendingReads {}

impl PendingReads {
    pub const fn new() -> Self {
        PendingReads {
            slots: UnsafeCell::new(Slots::new()),
            len: AtomicU32::new(0),
        }
    }

    /// # Safety
    /// The caller holds the CSQ lock, and drops the reference before
    /// releasing it.
    #[expect(
        clippy::mut_from_ref,
        reason = "exclusive under the CSQ spin lock, per the contract"
    )]
    unsafe fn slots(&self) -> &mut Slots<*mut IRP, MAX_PENDING_READS> {
        // SAFETY: exclusive under the CSQ lock, per the contract.
        unsafe { &mut *self.slots.get() }
    }

    fn publish_len(&self, slots: &Slots<*mut IRP, MAX_PENDING_READS>) {
        // Relaxed: decisions on it (disarming the timer) are taken under the
        // queue lock that orders this store; STATS and `kick` only sample it.
        self.len.store(slots.len() as u32, Ordering::Relaxed);
    }
}

/// `InsertContext` of a READ put back at the head of the queue (it was
/// taken off to be filled, and records were not committed yet).
const AT_HEAD: *mut c_void = core::ptr::without_provenance_mut(1);

unsafe extern "system" fn csq_insert(_csq: *mut IO_CSQ, irp: *mut IRP, at: *mut c_void) -> i32 {
    let g = globals();
    let pending = &g.pending;
    // SAFETY: the CSQ calls insert with our lock held.
    let slots = unsafe { pending.slots() };
    let queued = if at == AT_HEAD {
        slots.push_front(irp)
    } else {
        slots.push(irp)
    };
    let status = match queued {
        Ok(()) => {
            // A READ waits: the latency timer must run (the lock is held).
            arm_timer_locked(g);
            nt::status::SUCCESS
        }
        Err(Full) => nt::status::INSUFFICIENT_RESOURCES,
    };
    pending.publish_len(slots);
    status
}

unsafe extern "system" fn csq_remove(_csq: *mut IO_CSQ, irp: *mut IRP) {
    let pending = &globals().pending;
    // SAFETY: the CSQ calls remove with our lock held.
    let slots = unsafe { pending.slots() };
    slots.remove(irp);
    pending.publish_len(slots);
}

unsafe extern "system" fn csq_peek(
    _csq: *mut IO_CSQ,
    irp: *mut IRP,
    peek_context: *mut c_void,
) -> *mut IRP {
    // SAFETY: the CSQ calls peek with our lock held.
    let slots = unsafe { globals().pending.slots() };
    let after = (!irp.is_null()).then_some(irp);
    slots
        .next_after(after, |candidate| {
            // SAFETY: queued IRPs are alive until removed (under this lock).
            peek_context.is_null() || unsafe { irp::file_object(candidate) } == peek_context
        })
        .unwrap_or(core::ptr::null_mut())
}

unsafe extern "system" fn csq_acquire(_csq: *mut IO_CSQ, irql: *mut u8) {
    // SAFETY: the lock word is initialised (zero) and lives in the image;
    // `irql` is the CSQ's out-parameter. Raises to DISPATCH_LEVEL.
    let old = unsafe { nt::KeAcquireSpinLockRaiseToDpc(globals().csq_lock.get()) };
    // SAFETY: `irql` points to the CSQ's KIRQL local.
    unsafe { irql.write(old) };
}

unsafe extern "system" fn csq_release(_csq: *mut IO_CSQ, irql: u8) {
    // SAFETY: the CSQ releases only a lock it acquired through `csq_acquire`.
    unsafe { nt::KeReleaseSpinLock(globals().csq_lock.get(), irql) };
}

unsafe extern "system" fn csq_complete_canceled(_csq: *mut IO_CSQ, irp: *mut IRP) {
    // SAFETY: the CSQ hands us a cancelled IRP it removed from the queue;
    // we own it and complete it exactly once.
    unsafe { irp::complete(irp, ringside_wire::ioctl::status::CANCELLED, 0) };
}

/// Initialises the queue, the DPC and the timer (DriverEntry, PASSIVE_LEVEL).
pub fn initialize(g: &'static Globals) -> i32 {
    // SAFETY: DriverEntry runs before anything can use these; the CSQ, DPC
    // and timer live in the image for as long as the driver is loaded.
    let status = unsafe {
        nt::IoCsqInitializeEx(
            g.csq.get(),
            csq_insert,
            csq_remove,
            csq_peek,
            csq_acquire,
            csq_release,
            csq_complete_canceled,
        )
    };
    if !nt::nt_success(status) {
        return status;
    }
    // SAFETY: as above; the DPC routine is a static function.
    unsafe { nt::KeInitializeDpc(g.dpc.get(), read_dpc, core::ptr::null()) };
    // SAFETY: as above. NotificationTimer = 0.
    unsafe { windows_sys::Wdk::System::SystemServices::KeInitializeTimerEx(g.timer.get(), 0) };
    g.acquired.fetch_or(acquired::TIMER, Ordering::AcqRel);
    nt::status::SUCCESS
}

/// Queues a READ that found the ring empty (which starts the latency timer).
/// Returns the status to complete it with if it could not be queued
/// (STATUS_PENDING if it was).
///
/// # Safety
/// `irp` is a READ IRP owned by the caller's dispatch routine. On success
/// the queue owns it (IoCsqInsertIrpEx marked it pending); on failure the
/// caller still owns it and completes it.
pub unsafe fn pend(g: &Globals, irp: *mut IRP) -> i32 {
    // SAFETY: the CSQ is initialised; `irp` is ours to queue. No insert
    // context: removal is by peek.
    unsafe {
        nt::IoCsqInsertIrpEx(
            g.csq.get(),
            irp,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    }
}

/// Runs `f` under the queue's spin lock (DISPATCH_LEVEL). Not from inside
/// a CSQ callback, which already holds it.
fn with_queue_lock<R>(g: &Globals, f: impl FnOnce() -> R) -> R {
    // SAFETY: our lock word (zero-initialised, in the image); IRQL <=
    // DISPATCH_LEVEL; released below with the IRQL it returned.
    let old = unsafe { nt::KeAcquireSpinLockRaiseToDpc(g.csq_lock.get()) };
    let result = f();
    // SAFETY: acquired above on this CPU.
    unsafe { nt::KeReleaseSpinLock(g.csq_lock.get(), old) };
    result
}

/// Starts the timer if it is not running. The caller holds the queue lock.
fn arm_timer_locked(g: &Globals) {
    // Relaxed: `timer_armed` is only touched under the queue lock.
    if !g.timer_armed.load(Ordering::Relaxed) {
        set_timer(g);
        g.timer_armed.store(true, Ordering::Relaxed);
    }
}

/// CONFIGURE: a running timer restarts with the new period.
pub fn rearm_timer(g: &Globals) {
    with_queue_lock(g, || {
        if g.timer_armed.load(Ordering::Relaxed) {
            set_timer(g);
        }
    });
}

fn set_timer(g: &Globals) {
    let latency_ms = g.control.config.max_latency_ms().clamp(1, 50);
    // SAFETY: callable at any IRQL; returns a value.
    let tick = unsafe { KeQueryTimeIncrement() };
    let (due, period_ms) = ringside_driver::params::latency_timer(latency_ms, tick);
    // SAFETY: timer and DPC were initialised in DriverEntry; callable at
    // IRQL <= DISPATCH_LEVEL. Setting a set timer re-arms it.
    unsafe { KeSetTimerEx(g.timer.get(), due, period_ms, g.dpc.get()) };
}

/// Stops the timer once no READ waits (the DPC, consumer cleanup).
pub fn disarm_timer_if_idle(g: &Globals) {
    with_queue_lock(g, || {
        if g.pending.len.load(Ordering::Relaxed) == 0 {
            g.timer_armed.store(false, Ordering::Relaxed);
            cancel_timer(g);
        }
    });
}

/// Teardown: stops the timer whatever the flag says. Nothing re-arms it
/// afterwards: every arming path (READ, CONFIGURE) holds rundown protection,
/// which teardown has already waited out.
pub fn stop_timer(g: &Globals) {
    with_queue_lock(g, || {
        g.timer_armed.store(false, Ordering::Relaxed);
        cancel_timer(g);
    });
}

fn cancel_timer(g: &Globals) {
    // SAFETY: the timer was initialised in DriverEntry (callers run after
    // `acquired::TIMER` was set); cancelling an idle timer is harmless;
    // IRQL <= DISPATCH_LEVEL.
    unsafe { KeCancelTimer(g.timer.get()) };
}

/// Asks the DPC to run now (a producer saw its lane's share of
/// `batch_bytes` pending).
pub fn kick(g: &Globals) {
    if g.pending.len.load(Ordering::Relaxed) != 0 {
        // SAFETY: the DPC was initialised; queueing an already-queued DPC is
        // a no-op. Callable at any IRQL <= HIGH_LEVEL.
        unsafe { KeInsertQueueDpc(g.dpc.get(), core::ptr::null(), core::ptr::null()) };
    }
}

/// Fills `irp`'s buffer from the ring; returns the byte count (0 if the ring
/// had no whole committed record).
///
/// # Safety
/// `irp` is a READ IRP the caller owns (dequeued, or in dispatch).
pub unsafe fn fill(g: &Globals, irp: *mut IRP) -> Option<usize> {
    let ring = g.ring()?;
    // SAFETY: the caller owns the IRP; its MDL describes the locked output
    // buffer; IRQL <= DISPATCH_LEVEL.
    let out = unsafe { irp::read_buffer(irp) }?;
    let n = ring.drain_into(out);
    if n != 0 {
        g.reads_completed.fetch_add(1, Ordering::Relaxed);
    }
    Some(n)
}

/// Completes pending READs, oldest first, while records are available.
/// DISPATCH_LEVEL (DPC) or PASSIVE_LEVEL (a new READ); the CSQ lock
/// serialises removal.
pub fn complete_ready(g: &Globals) {
    for _ in 0..MAX_PENDING_READS {
        let Some(ring) = g.ring() else { return };
        if ring.pending_bytes() == 0 {
            return;
        }
        // SAFETY: the CSQ is initialised; a removed IRP is ours (its cancel
        // routine can no longer run).
        let irp = unsafe { IoCsqRemoveNextIrp(g.csq.get(), core::ptr::null()) };
        if irp.is_null() {
            return;
        }
        // SAFETY: we own the dequeued READ IRP.
        match unsafe { fill(g, irp) } {
            // SAFETY: we own it; completed once.
            Some(n) if n != 0 => unsafe { irp::complete(irp, 0, n) },
            _ => {
                // Records are reserved but not yet committed: put it back
                // at the head (it is still the oldest) for the next tick.
                // SAFETY: we own the IRP and put it back; if the queue is
                // full (a new READ took the slot meanwhile) complete it empty.
                let status = unsafe {
                    nt::IoCsqInsertIrpEx(g.csq.get(), irp, core::ptr::null_mut(), AT_HEAD)
                };
                if !nt::nt_success(status) {
                    // SAFETY: still ours; completed once.
                    unsafe { irp::complete(irp, 0, 0) };
                }
                return;
            }
        }
    }
}

unsafe extern "system" fn read_dpc(
    _dpc: *const KDPC,
    _ctx: *const c_void,
    _a1: *const c_void,
    _a2: *const c_void,
) {
    let g = globals();
    g.with_rundown(|g| {
        complete_ready(g);
        // Stop ticking once no READ waits (decided under the queue lock,
        // where a READ being queued would also arm it).
        disarm_timer_if_idle(g);
    });
}

/// Completes every pending READ of `file_object` (or all, if null) with
/// STATUS_CANCELLED: consumer cleanup and teardown.
pub fn cancel_all(g: &Globals, file_object: *mut c_void) {
    for _ in 0..MAX_PENDING_READS {
        // SAFETY: the CSQ is initialised; the peek context selects by file object.
        let irp = unsafe { IoCsqRemoveNextIrp(g.csq.get(), file_object) };
        if irp.is_null() {
            return;
        }
        // SAFETY: dequeued, so ours; completed once.
        unsafe { irp::complete(irp, ringside_wire::ioctl::status::CANCELLED, 0) };
    }
}
