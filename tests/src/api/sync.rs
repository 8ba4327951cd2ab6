//! IRQL, spin locks, rundown protection, timers and DPCs, system time.
//!
//! Contracts modelled (WDK reference):
//! - `KeAcquireSpinLockRaiseToDpc`: IRQL <= DISPATCH_LEVEL; raises to
//!   DISPATCH_LEVEL and returns the previous IRQL. A lock held by another
//!   CPU spins ([`crate::smp`]); a second acquire on the holder's own CPU is
//!   a deadlock. `KeReleaseSpinLock` restores the IRQL passed in and must be
//!   called at DISPATCH_LEVEL.
//! - Rundown protection: `ExAcquireRundownProtection` fails once
//!   `ExWaitForRundownProtectionRelease` has started; the wait returns once
//!   every acquired reference was released (other CPUs run meanwhile; with
//!   none that could release them, the wait never returns).
//! - `KeCancelTimer` removes the timer and its DPC if queued; a DPC already
//!   running runs to completion (it does not wait for it).
//!   `KeFlushQueuedDpcs` returns once every DPC queued before it ran to
//!   completion on every processor; a DPC running on another processor
//!   finishes first (the flush's own per-processor work runs after it).
//! - `KeSetTimerEx`: a negative due time is relative (100 ns units), the
//!   DPC runs at DISPATCH_LEVEL when the timer expires. Timers expire only
//!   on a clock tick ([`CLOCK_TICK`], 15.625 ms: the default clock rate of
//!   64 Hz), at the first tick at or after their due time;
//!   `KeQueryTimeIncrement` returns that tick. `KeInsertQueueDpc`
//!   queues a DPC that runs when the processor next drops below DISPATCH_LEVEL;
//!   returns FALSE if the DPC was already queued.

use std::collections::{BTreeMap, HashMap};

use crate::layout::{KDPC_CONTEXT, KDPC_ROUTINE, KDPC_SIZE};
use crate::machine::{
    DISPATCH_LEVEL, Machine, arg, call_guest, fatal, irql, require_irql, set_irql,
};
use crate::memory::*;
use crate::verifier::Rule;

#[derive(Clone, Debug)]
pub struct Timer {
    pub due: u64,
    pub period_ms: u32,
    pub dpc: u64,
}

#[derive(Debug, Default)]
pub struct Sync {
    /// Held spin locks → (the IRQL to restore, the holder's CPU).
    pub held: HashMap<u64, (u8, u32)>,
    pub dpcs: HashMap<u64, (u64, u64)>,
    pub dpc_queue: Vec<(u64, u64, u64)>,
    pub timers: BTreeMap<u64, Timer>,
    pub rundowns: HashMap<u64, ()>,
}

pub fn ke_get_current_irql(uc: &mut Uc) -> u64 {
    u64::from(irql(uc))
}

/// `KIRQL KfRaiseIrql(KIRQL NewIrql)`: NewIrql must not be below the current IRQL.
pub fn kf_raise_irql(uc: &mut Uc) -> u64 {
    let new = arg(uc, 0) as u8;
    let old = irql(uc);
    if new < old {
        uc.get_data_mut().verifier.report(
            Rule::Irql,
            format!("KfRaiseIrql({new}) below current IRQL {old}"),
        );
    }
    set_irql(uc, new);
    u64::from(old)
}

/// `VOID KeLowerIrql(KIRQL NewIrql)`: NewIrql must not be above the current IRQL.
pub fn ke_lower_irql(uc: &mut Uc) -> u64 {
    let new = arg(uc, 0) as u8;
    let old = irql(uc);
    if new > old {
        uc.get_data_mut().verifier.report(
            Rule::Irql,
            format!("KeLowerIrql({new}) above current IRQL {old}"),
        );
    }
    set_irql(uc, new);
    0
}

pub fn ke_acquire_spin_lock_raise_to_dpc(uc: &mut Uc) -> u64 {
    let lock = arg(uc, 0);
    require_irql(uc, "KeAcquireSpinLockRaiseToDpc", DISPATCH_LEVEL);
    let old = irql(uc);
    if !spin_lock_free(uc, lock, "KeAcquireSpinLockRaiseToDpc") {
        return u64::from(old);
    }
    let cpu = uc.get_data().current_cpu;
    uc.get_data_mut().sync.held.insert(lock, (old, cpu));
    uc.write_u64(lock, 1);
    set_irql(uc, DISPATCH_LEVEL);
    u64::from(old)
}

/// Whether `lock` can be taken now. Held by another CPU: this one spins (a
/// retry). Held by this CPU: it would spin forever (a deadlock finding).
fn spin_lock_free(uc: &mut Uc, lock: u64, api: &str) -> bool {
    let Some(&(_, holder)) = uc.get_data().sync.held.get(&lock) else {
        return true;
    };
    if crate::smp::active(uc) && holder != uc.get_data().current_cpu {
        crate::smp::request_retry(uc);
    } else {
        fatal(
            uc,
            Rule::Lock,
            format!("{api}({lock:#x}): already held by this CPU (deadlock)"),
        );
    }
    false
}

pub fn ke_release_spin_lock(uc: &mut Uc) -> u64 {
    let (lock, new) = (arg(uc, 0), arg(uc, 1) as u8);
    if irql(uc) != DISPATCH_LEVEL {
        let level = irql(uc);
        uc.get_data_mut().verifier.report(
            Rule::Irql,
            format!("KeReleaseSpinLock({lock:#x}) at IRQL {level}, not DISPATCH_LEVEL"),
        );
    }
    if uc.get_data_mut().sync.held.remove(&lock).is_none() {
        uc.get_data_mut().verifier.report(
            Rule::Lock,
            format!("KeReleaseSpinLock({lock:#x}): lock not held"),
        );
    }
    uc.write_u64(lock, 0);
    set_irql(uc, new);
    0
}

pub fn ke_acquire_spin_lock_at_dpc_level(uc: &mut Uc) -> u64 {
    let lock = arg(uc, 0);
    if irql(uc) != DISPATCH_LEVEL {
        uc.get_data_mut().verifier.report(
            Rule::Irql,
            format!("KeAcquireSpinLockAtDpcLevel({lock:#x}) below DISPATCH_LEVEL"),
        );
    }
    if !spin_lock_free(uc, lock, "KeAcquireSpinLockAtDpcLevel") {
        return 0;
    }
    let cpu = uc.get_data().current_cpu;
    uc.get_data_mut()
        .sync
        .held
        .insert(lock, (DISPATCH_LEVEL, cpu));
    uc.write_u64(lock, 1);
    0
}

pub fn ke_release_spin_lock_from_dpc_level(uc: &mut Uc) -> u64 {
    let lock = arg(uc, 0);
    if uc.get_data_mut().sync.held.remove(&lock).is_none() {
        uc.get_data_mut().verifier.report(
            Rule::Lock,
            format!("KeReleaseSpinLockFromDpcLevel({lock:#x}): lock not held"),
        );
    }
    uc.write_u64(lock, 0);
    0
}

// EX_RUNDOWN_REF.Count: references in units of 2, bit 0 set once rundown began.
const RUNDOWN_ACTIVE: u64 = 1;

pub fn ex_initialize_rundown_protection(uc: &mut Uc) -> u64 {
    let reference = arg(uc, 0);
    uc.write_u64(reference, 0);
    uc.get_data_mut().sync.rundowns.insert(reference, ());
    0
}

pub fn ex_re_initialize_rundown_protection(uc: &mut Uc) -> u64 {
    ex_initialize_rundown_protection(uc)
}

pub fn ex_acquire_rundown_protection(uc: &mut Uc) -> u64 {
    let reference = arg(uc, 0);
    require_irql(uc, "ExAcquireRundownProtection", DISPATCH_LEVEL);
    let count = uc.read_u64(reference);
    if count & RUNDOWN_ACTIVE != 0 {
        return 0;
    }
    uc.write_u64(reference, count + 2);
    1
}

pub fn ex_release_rundown_protection(uc: &mut Uc) -> u64 {
    let reference = arg(uc, 0);
    require_irql(uc, "ExReleaseRundownProtection", DISPATCH_LEVEL);
    let count = uc.read_u64(reference);
    if count < 2 {
        uc.get_data_mut().verifier.report(
            Rule::Lock,
            format!("ExReleaseRundownProtection({reference:#x}) without a matching acquire"),
        );
        return 0;
    }
    uc.write_u64(reference, count - 2);
    0
}

pub fn ex_wait_for_rundown_protection_release(uc: &mut Uc) -> u64 {
    let reference = arg(uc, 0);
    require_irql(
        uc,
        "ExWaitForRundownProtectionRelease",
        crate::machine::APC_LEVEL,
    );
    // New acquires fail from now on; the wait lasts while references remain.
    let count = uc.read_u64(reference) | RUNDOWN_ACTIVE;
    uc.write_u64(reference, count);
    if count >> 1 != 0 {
        if crate::smp::active(uc) {
            crate::smp::request_retry(uc);
        } else {
            fatal(
                uc,
                Rule::Lock,
                format!(
                    "ExWaitForRundownProtectionRelease({reference:#x}): {} references still held and no other CPU can release them (hang)",
                    count >> 1
                ),
            );
        }
    }
    0
}

pub fn ex_rundown_completed(uc: &mut Uc) -> u64 {
    let reference = arg(uc, 0);
    uc.write_u64(reference, RUNDOWN_ACTIVE);
    0
}

/// `VOID KeQuerySystemTimePrecise(PLARGE_INTEGER CurrentTime)`.
pub fn ke_query_system_time_precise(uc: &mut Uc) -> u64 {
    let out = arg(uc, 0);
    let now = uc.get_data().clock;
    uc.write_u64(out, now);
    0
}

/// `ULONG KeGetCurrentProcessorNumberEx(PPROCESSOR_NUMBER)`: the current
/// processor's system-wide index; fills `ProcNumber` (group 0) if not null.
/// Any IRQL.
pub fn ke_get_current_processor_number_ex(uc: &mut Uc) -> u64 {
    let out = arg(uc, 0);
    let cpu = uc.get_data().current_cpu;
    if out != 0 {
        // PROCESSOR_NUMBER: USHORT Group, UCHAR Number, UCHAR Reserved.
        let number = u8::try_from(cpu).unwrap_or(u8::MAX);
        uc.write_bytes(out, &[0, 0, number, 0]);
    }
    u64::from(cpu)
}

/// `ULONG KeQueryMaximumProcessorCountEx(USHORT GroupNumber)`: processors
/// the machine can have (one group in the model; `ALL_PROCESSOR_GROUPS` or
/// group 0 count them all, any other group has none). Any IRQL.
pub fn ke_query_maximum_processor_count_ex(uc: &mut Uc) -> u64 {
    const ALL_PROCESSOR_GROUPS: u64 = 0xFFFF;
    match arg(uc, 0) & 0xFFFF {
        0 | ALL_PROCESSOR_GROUPS => u64::from(uc.get_data().processors),
        _ => 0,
    }
}

/// The clock tick, in 100 ns units: 15.625 ms, Windows' default (64 Hz).
pub const CLOCK_TICK: u64 = 156_250;

/// System time at boot in the model (interrupt time 0).
const BOOT: u64 = 133_657_565_400_000_000;

/// The first clock tick at or after system time `due`.
fn tick_at_or_after(due: u64) -> u64 {
    BOOT + (due.saturating_sub(BOOT)).div_ceil(CLOCK_TICK) * CLOCK_TICK
}

/// `ULONG KeQueryTimeIncrement(VOID)`: the clock tick, 100 ns units. Any IRQL.
pub fn ke_query_time_increment(_uc: &mut Uc) -> u64 {
    CLOCK_TICK
}

/// `ULONGLONG KeQueryInterruptTime(VOID)`: time since boot.
pub fn ke_query_interrupt_time(uc: &mut Uc) -> u64 {
    uc.get_data().clock - BOOT
}

pub fn ke_initialize_dpc(uc: &mut Uc) -> u64 {
    let (dpc, routine, context) = (arg(uc, 0), arg(uc, 1), arg(uc, 2));
    uc.write_bytes(dpc, &[0u8; KDPC_SIZE]);
    uc.write_u64(dpc + KDPC_ROUTINE, routine);
    uc.write_u64(dpc + KDPC_CONTEXT, context);
    uc.get_data_mut().sync.dpcs.insert(dpc, (routine, context));
    0
}

pub fn ke_insert_queue_dpc(uc: &mut Uc) -> u64 {
    let (dpc, a1, a2) = (arg(uc, 0), arg(uc, 1), arg(uc, 2));
    if !uc.get_data().sync.dpcs.contains_key(&dpc) {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("KeInsertQueueDpc({dpc:#x}) of an uninitialized DPC"),
        );
        return 0;
    }
    let queue = &mut uc.get_data_mut().sync.dpc_queue;
    if queue.iter().any(|(d, _, _)| *d == dpc) {
        return 0;
    }
    queue.push((dpc, a1, a2));
    1
}

pub fn ke_remove_queue_dpc(uc: &mut Uc) -> u64 {
    let dpc = arg(uc, 0);
    let queue = &mut uc.get_data_mut().sync.dpc_queue;
    let before = queue.len();
    queue.retain(|(d, _, _)| *d != dpc);
    u64::from(queue.len() != before)
}

/// `KeFlushQueuedDpcs`: PASSIVE_LEVEL; returns after every queued DPC ran.
pub fn ke_flush_queued_dpcs(uc: &mut Uc) -> u64 {
    require_irql(uc, "KeFlushQueuedDpcs", crate::machine::PASSIVE_LEVEL);
    if crate::smp::active(uc) {
        // Other CPUs run (and this one takes the queued DPCs) until no DPC
        // is queued or running anywhere.
        if !uc.get_data().sync.dpc_queue.is_empty() || crate::smp::dpc_running(uc) {
            crate::smp::request_retry(uc);
        }
        return 0;
    }
    run_queued_dpcs(uc);
    0
}

pub fn ke_initialize_timer_ex(uc: &mut Uc) -> u64 {
    let timer = arg(uc, 0);
    uc.write_bytes(timer, &[0u8; 0x40]);
    uc.get_data_mut().sync.timers.remove(&timer);
    0
}

pub fn ke_initialize_timer(uc: &mut Uc) -> u64 {
    ke_initialize_timer_ex(uc)
}

/// `BOOLEAN KeSetTimerEx(PKTIMER, LARGE_INTEGER DueTime, LONG Period, PKDPC)`.
pub fn ke_set_timer_ex(uc: &mut Uc) -> u64 {
    let (timer, due, period, dpc) = (arg(uc, 0), arg(uc, 1) as i64, arg(uc, 2) as u32, arg(uc, 3));
    require_irql(uc, "KeSetTimerEx", DISPATCH_LEVEL);
    let now = uc.get_data().clock;
    let due = if due < 0 {
        now + due.unsigned_abs()
    } else {
        due as u64
    };
    let timer_entry = Timer {
        due,
        period_ms: period,
        dpc,
    };
    u64::from(
        uc.get_data_mut()
            .sync
            .timers
            .insert(timer, timer_entry)
            .is_some(),
    )
}

pub fn ke_set_timer(uc: &mut Uc) -> u64 {
    let (timer, due, dpc) = (arg(uc, 0), arg(uc, 1) as i64, arg(uc, 2));
    let now = uc.get_data().clock;
    let due = if due < 0 {
        now + due.unsigned_abs()
    } else {
        due as u64
    };
    u64::from(
        uc.get_data_mut()
            .sync
            .timers
            .insert(
                timer,
                Timer {
                    due,
                    period_ms: 0,
                    dpc,
                },
            )
            .is_some(),
    )
}

pub fn ke_cancel_timer(uc: &mut Uc) -> u64 {
    let timer = arg(uc, 0);
    require_irql(uc, "KeCancelTimer", DISPATCH_LEVEL);
    let sync = &mut uc.get_data_mut().sync;
    let Some(entry) = sync.timers.remove(&timer) else {
        return 0;
    };
    // Its DPC, if queued, is cancelled too; one already running is not.
    sync.dpc_queue.retain(|(d, _, _)| *d != entry.dpc);
    1
}

/// Runs queued DPCs at DISPATCH_LEVEL, as the processor does when IRQL
/// drops below DISPATCH_LEVEL.
pub fn run_queued_dpcs(uc: &mut Uc) {
    for _ in 0..64 {
        let queue = std::mem::take(&mut uc.get_data_mut().sync.dpc_queue);
        if queue.is_empty() {
            return;
        }
        for (dpc, a1, a2) in queue {
            let Some((routine, context)) = uc.get_data().sync.dpcs.get(&dpc).copied() else {
                continue;
            };
            let previous = irql(uc);
            set_irql(uc, DISPATCH_LEVEL);
            if let Err(e) = call_guest(uc, routine, &[dpc, context, a1, a2]) {
                uc.get_data_mut()
                    .verifier
                    .report(Rule::Fault, format!("DPC routine {routine:#x}: {e}"));
            }
            if irql(uc) != DISPATCH_LEVEL {
                let level = irql(uc);
                uc.get_data_mut().verifier.report(
                    Rule::Irql,
                    format!("DPC routine {routine:#x} returned at IRQL {level}"),
                );
            }
            set_irql(uc, previous);
        }
    }
}

/// Fires every timer whose tick came, in due order, then queued DPCs.
pub fn fire_due_timers(machine: &mut Machine) -> Result<(), String> {
    loop {
        let now = machine.kernel().clock;
        // A timer expires on the first clock tick at or after its due time.
        let due = machine
            .kernel()
            .sync
            .timers
            .iter()
            .filter(|(_, t)| tick_at_or_after(t.due) <= now)
            .min_by_key(|(_, t)| t.due)
            .map(|(a, t)| (*a, t.clone()));
        let Some((timer, entry)) = due else { break };
        if entry.period_ms > 0 {
            let next = entry.due + u64::from(entry.period_ms) * 10_000;
            if let Some(t) = machine.kernel_mut().sync.timers.get_mut(&timer) {
                t.due = next;
            }
        } else {
            machine.kernel_mut().sync.timers.remove(&timer);
        }
        if entry.dpc != 0 {
            machine
                .kernel_mut()
                .sync
                .dpc_queue
                .push((entry.dpc, entry.due, 0));
        }
        run_queued_dpcs(&mut machine.uc);
        if let Some(stop) = machine.kernel().stop.clone() {
            return Err(stop);
        }
    }
    run_queued_dpcs(&mut machine.uc);
    Ok(())
}

pub fn check_unloaded(uc: &mut Uc) {
    let held: Vec<String> = uc
        .get_data()
        .sync
        .held
        .keys()
        .map(|a| format!("{a:#x}"))
        .collect();
    if !held.is_empty() {
        uc.get_data_mut().verifier.report(
            Rule::Lock,
            format!("spin locks still held: {}", held.join(", ")),
        );
    }
    let timers: Vec<String> = uc
        .get_data()
        .sync
        .timers
        .keys()
        .map(|a| format!("{a:#x}"))
        .collect();
    if !timers.is_empty() {
        uc.get_data_mut().verifier.report(
            Rule::Registration,
            format!("timers still set after unload: {}", timers.join(", ")),
        );
    }
    if !uc.get_data().sync.dpc_queue.is_empty() {
        uc.get_data_mut().verifier.report(
            Rule::Registration,
            "DPCs still queued after unload".to_owned(),
        );
    }
}

/// `KeBugCheckEx`: the machine stops; always a finding.
pub fn ke_bug_check_ex(uc: &mut Uc) -> u64 {
    let (code, p1) = (arg(uc, 0), arg(uc, 1));
    fatal(
        uc,
        Rule::Fault,
        format!("KeBugCheckEx({code:#x}, {p1:#x}, ...): the driver crashed the machine"),
    );
    0
}
