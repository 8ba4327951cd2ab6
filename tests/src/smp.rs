//! Several CPUs over one guest memory, interleaved at instruction
//! granularity under a seed.
//!
//! Each emulated CPU is a register context (general registers, RIP, RFLAGS),
//! an IRQL (CR8), a current process and thread, and its own 24 KiB kernel
//! stack. One Unicorn engine executes whichever CPU is current; a code hook
//! on every instruction of the driver image may switch to another CPU there
//! (its context saved, the other's restored), so any two driver
//! instructions on different CPUs can interleave, over memory that is
//! really shared. Memory is sequentially consistent (stronger than x86-TSO):
//! the model finds logic races, not reorderings.
//!
//! The schedule is that of probabilistic concurrency testing (PCT,
//! Burckhardt et al., ASPLOS 2010): every CPU gets a random priority, the
//! highest-priority runnable CPU runs, and at `change_points` random steps
//! the running CPU drops to the lowest priority; on top of that, a switch at
//! any instruction with probability `switch_per_mille`. DPCs are delivered
//! at any driver instruction where the CPU's IRQL is below DISPATCH_LEVEL
//! (an interrupt frame on that CPU's stack, at DISPATCH_LEVEL, returning to
//! where it interrupted), and armed timers expire at random instructions,
//! queueing their DPCs. Every decision comes from one seed, so a finding
//! replays exactly from the seed it prints.
//!
//! Kernel APIs run atomically (the model is the kernel). An API that must
//! wait for another CPU (a spin lock held elsewhere, rundown references,
//! `KeFlushQueuedDpcs`, `FltUnregisterFilter` with callbacks in flight) asks
//! to retry ([`request_retry`]): its CPU spins at the call and the others
//! run; when every CPU spins, the machine is deadlocked (a finding). Guest
//! code the model calls from inside an API (CSQ callbacks, cancel routines)
//! runs without switching, as the lock the kernel holds around it would make
//! it appear to the other CPUs.

use std::collections::VecDeque;

use unicorn_engine::RegisterX86;

use crate::machine::{DISPATCH_LEVEL, Machine, fatal, irql, push_call_frame, set_irql};
use crate::memory::*;
use crate::verifier::Rule;

/// What kind of entry into the driver a call is: the kernel tracks the
/// callbacks in flight, which unregistration waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// An IRP dispatch routine (the control device).
    Dispatch,
    /// A minifilter pre- or post-operation callback (FltMgr).
    FltCallback,
    /// A PsSetCreateProcessNotifyRoutineEx routine.
    ProcessNotify,
    /// A PsSetLoadImageNotifyRoutine routine.
    ImageNotify,
    /// A CmRegisterCallbackEx routine.
    RegistryCallback,
    /// An ObRegisterCallbacks routine (pre- or post-operation).
    ObjectCallback,
    /// A PsSetCreateThreadNotifyRoutine routine.
    ThreadNotify,
    /// FilterUnloadCallback (`fltmc unload`).
    Unload,
}

const KINDS: usize = CallKind::Unload as usize + 1;

impl CallKind {
    fn index(self) -> usize {
        self as usize
    }
}

/// One entry into the driver, made on a CPU.
#[derive(Clone, Debug)]
pub struct GuestCall {
    pub label: String,
    pub kind: CallKind,
    pub function: u64,
    pub args: Vec<u64>,
    pub irql: u8,
    pub pid: u32,
    pub tid: u32,
    /// Before the call is made, the kernel copies 8 bytes from the first
    /// address to the second: how the object manager hands a
    /// pre-operation callback's `CallContext` to the post-operation one.
    pub copy_before: Option<(u64, u64)>,
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It returned this RAX.
    Returned(u64),
    /// The kernel did not make it: its registration was gone by the time
    /// the CPU got to it (as FltMgr and the process manager do not call
    /// unregistered callbacks).
    NotCalled,
}

/// The knobs of one schedule; all randomness comes from `seed`.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub seed: u64,
    /// PCT priority change points (the "depth" d - 1).
    pub change_points: usize,
    /// Chance per driver instruction of a switch, in thousandths.
    pub switch_per_mille: u32,
    /// Chance per driver instruction below DISPATCH_LEVEL of delivering a
    /// queued DPC there, in thousandths.
    pub dpc_per_mille: u32,
    /// Chance per driver instruction of every armed timer expiring.
    pub timer_per_mille: u32,
    /// Each CPU after the first starts after up to this many steps.
    pub max_start_delay: u64,
    /// Driver instructions before the run is declared a livelock.
    pub step_budget: u64,
}

impl Schedule {
    pub fn new(seed: u64) -> Schedule {
        Schedule {
            seed,
            change_points: 3,
            switch_per_mille: 15,
            dpc_per_mille: 20,
            timer_per_mille: 4,
            max_start_delay: 400,
            step_budget: 2_000_000,
        }
    }
}

/// A small deterministic generator (SplitMix64): the schedule must replay
/// from its seed on any host, so no library generator whose stream may
/// change between versions.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }
}

/// A CPU's whole architectural state: Unicorn's saved CPU context (every
/// register, RFLAGS with the lazily computed arithmetic flags, XMM, segment
/// bases). Register-by-register copies are not enough: Unicorn computes
/// RFLAGS for a hook from stale bits (flags set earlier in the block stay
/// set), and the driver's copies use XMM registers.
type Context = unicorn_engine::Context;

fn save(uc: &Uc) -> Context {
    uc.context_init().expect("unicorn saves a CPU context")
}

/// Makes `context` the engine's; the block being executed is left at once
/// (writing RIP makes Unicorn leave the translation block), so execution
/// continues at the restored RIP.
fn load(uc: &mut Uc, context: &Context) {
    uc.context_restore(context)
        .expect("unicorn restores a CPU context");
    let rip = uc.reg_read(RegisterX86::RIP).unwrap_or(0);
    let _ = uc.reg_write(RegisterX86::RIP, rip);
}

#[derive(Debug)]
struct Cpu {
    /// Saved while another CPU runs (none before its first call).
    context: Option<Context>,
    irql: u8,
    pid: u32,
    tid: u32,
    /// Calls still to make, in order.
    calls: VecDeque<GuestCall>,
    /// The call running, once its frame is set up.
    current: Option<GuestCall>,
    /// Contexts a DPC interrupted (innermost last), with their IRQL.
    interrupted: Vec<(Context, u8)>,
    /// Waiting in an API for another CPU.
    spinning: bool,
    priority: u64,
    start_after: u64,
    stack_top: u64,
}

impl Cpu {
    fn done(&self) -> bool {
        self.current.is_none() && self.calls.is_empty()
    }
}

/// The multi-CPU state of a run (in [`crate::machine::Kernel::smp`]).
#[derive(Debug)]
pub struct Smp {
    cpus: Vec<Cpu>,
    current: usize,
    rng: Rng,
    schedule: Schedule,
    steps: u64,
    change_points: Vec<u64>,
    outcomes: Vec<Vec<(String, Outcome)>>,
    /// Calls of each kind in flight (entered, not returned), per CPU.
    in_flight: Vec<[u32; KINDS]>,
    /// Spins since the last driver instruction executed.
    idle_spins: u64,
    /// CPU switches made (for the report).
    pub switches: u64,
    pub dpcs_delivered: u64,
    pub timer_expiries: u64,
}

/// Per-CPU kernel stacks (24 KiB, the real size) with a guard page each.
const SMP_STACKS: u64 = 0x0000_0880_2000_0000;
const SMP_STACK_STRIDE: u64 = 0x1_0000;
/// Return addresses of calls and DPC frames, per CPU, in the trampoline
/// page below the host sentinel (import slots are at its start).
fn call_return(cpu: usize) -> u64 {
    RETURN_SENTINEL - HOOK_SLOT * (2 + 2 * cpu as u64)
}
fn dpc_return(cpu: usize) -> u64 {
    RETURN_SENTINEL - HOOK_SLOT * (3 + 2 * cpu as u64)
}
const MAX_CPUS: usize = 8;
/// Where emulation would stop if it ever got there (it never does: the
/// last CPU to finish stops the engine).
const NEVER: u64 = RETURN_SENTINEL - HOOK_SLOT;

/// What the run did, per CPU, and how.
#[derive(Debug)]
pub struct Report {
    pub outcomes: Vec<Vec<(String, Outcome)>>,
    pub steps: u64,
    pub switches: u64,
    pub dpcs_delivered: u64,
    pub timer_expiries: u64,
}

impl Machine {
    /// Runs `plan[c]`'s calls in order on CPU `c`, every CPU concurrently,
    /// under `schedule`. The findings of the run are the machine's
    /// ([`Machine::findings`]); `Err` when a finding stopped it.
    pub fn run_smp(
        &mut self,
        plan: Vec<Vec<GuestCall>>,
        schedule: Schedule,
    ) -> Result<Report, String> {
        let n = plan.len();
        assert!(
            (1..=MAX_CPUS).contains(&n) && n as u32 <= self.kernel().processors,
            "the machine has {} CPUs; the plan uses {n}",
            self.kernel().processors
        );
        for cpu in 0..n {
            let base = SMP_STACKS + SMP_STACK_STRIDE * cpu as u64;
            if self.uc.mem_read_as_vec(base, 1).is_err() {
                self.uc
                    .mem_map(base, STACK_SIZE as usize, prot(true, true, false))
                    .map_err(|e| format!("map CPU {cpu} stack: {e:?}"))?;
            }
        }
        let outer = (
            irql(&self.uc),
            self.kernel().current_cpu,
            self.kernel().current_pid,
            self.kernel().current_tid,
        );
        let outer_context = save(&self.uc);
        let mut rng = Rng(schedule.seed ^ 0x5EED_0FC0_FFEE);
        let mut change_points: Vec<u64> = (0..schedule.change_points)
            .map(|_| 1 + rng.below(schedule.step_budget.min(20_000)))
            .collect();
        change_points.sort_unstable();
        let cpus: Vec<Cpu> = plan
            .into_iter()
            .enumerate()
            .map(|(i, calls)| Cpu {
                context: None,
                irql: 0,
                pid: 4,
                tid: 8,
                calls: calls.into(),
                current: None,
                interrupted: Vec::new(),
                spinning: false,
                priority: 1_000 + rng.below(1_000_000),
                start_after: if i == 0 {
                    0
                } else {
                    rng.below(schedule.max_start_delay + 1)
                },
                stack_top: SMP_STACKS + SMP_STACK_STRIDE * i as u64 + STACK_SIZE - 0x40,
            })
            .collect();
        let smp = Smp {
            outcomes: vec![Vec::new(); n],
            in_flight: vec![[0; KINDS]; n],
            cpus,
            current: 0,
            rng,
            schedule,
            steps: 0,
            change_points,
            idle_spins: 0,
            switches: 0,
            dpcs_delivered: 0,
            timer_expiries: 0,
        };
        self.kernel_mut().smp = Some(Box::new(smp));
        self.kernel_mut().depth = 1;
        if enter_next(&mut self.uc, None).is_none() {
            // No call to make at all.
            self.kernel_mut().depth = 0;
            let smp = self.kernel_mut().smp.take().expect("set above");
            return Ok(report(*smp));
        }
        let rip = self.uc.reg_read(RegisterX86::RIP).unwrap_or(0);
        let result = self.uc.emu_start(rip, NEVER, 0, 0);
        let smp = self.kernel_mut().smp.take().expect("set above");
        self.kernel_mut().depth = 0;
        load(&mut self.uc, &outer_context);
        set_irql(&mut self.uc, outer.0);
        self.kernel_mut().current_cpu = outer.1;
        self.set_current(outer.2, outer.3);
        let seed = schedule.seed;
        if let Some(stop) = self.kernel().stop.clone() {
            return Err(format!("seed {seed}: {stop}"));
        }
        if let Err(e) = result {
            let rip = self.uc.reg_read(RegisterX86::RIP).unwrap_or(0);
            return Err(format!("seed {seed}: emulation error {e:?} at {rip:#x}"));
        }
        if smp.cpus.iter().any(|c| !c.done()) {
            return Err(format!("seed {seed}: the run stopped with CPUs unfinished"));
        }
        // DPCs still queued run now, as CPUs drop to PASSIVE_LEVEL.
        if !self.kernel().unloaded {
            crate::api::sync::run_queued_dpcs(&mut self.uc);
        }
        Ok(report(*smp))
    }
}

fn report(smp: Smp) -> Report {
    Report {
        outcomes: smp.outcomes,
        steps: smp.steps,
        switches: smp.switches,
        dpcs_delivered: smp.dpcs_delivered,
        timer_expiries: smp.timer_expiries,
    }
}

fn smp(uc: &mut Uc) -> &mut Smp {
    uc.get_data_mut().smp.as_mut().expect("an SMP run")
}

/// True while a multi-CPU run is in progress.
pub fn active(uc: &Uc) -> bool {
    uc.get_data().smp.is_some()
}

/// The current CPU's index in a multi-CPU run.
pub fn current_cpu(uc: &Uc) -> Option<usize> {
    uc.get_data().smp.as_ref().map(|s| s.current)
}

/// Whether any other CPU than the current one has a call of `kind` in flight.
pub fn in_flight_elsewhere(uc: &Uc, kind: CallKind) -> bool {
    uc.get_data().smp.as_ref().is_some_and(|s| {
        s.in_flight
            .iter()
            .enumerate()
            .any(|(i, k)| i != s.current && k[kind.index()] != 0)
    })
}

/// Whether any CPU is running a DPC.
pub fn dpc_running(uc: &Uc) -> bool {
    uc.get_data()
        .smp
        .as_ref()
        .is_some_and(|s| s.cpus.iter().any(|c| !c.interrupted.is_empty()))
}

/// An API asks to be called again later: its CPU spins at the call while
/// the others run. Only valid during a multi-CPU run.
pub fn request_retry(uc: &mut Uc) {
    uc.get_data_mut().retry = true;
}

/// Which registration a call needs to still exist to be made.
fn registered(uc: &Uc, call: &GuestCall) -> bool {
    let k = uc.get_data();
    match call.kind {
        CallKind::FltCallback => k.flt.started && k.flt.filter != 0,
        CallKind::ProcessNotify => k.ps.process_notify.contains(&call.function),
        CallKind::ImageNotify => k.ps.image_notify.contains(&call.function),
        CallKind::RegistryCallback => k.cm.callbacks.iter().any(|c| c.function == call.function),
        CallKind::ObjectCallback => k.ob.routines().any(|f| f == call.function),
        CallKind::ThreadNotify => k.threads.notify.contains(&call.function),
        CallKind::Dispatch | CallKind::Unload => !k.unloaded,
    }
}

/// Switches to the best CPU to run next (after `leaving`, whose context was
/// saved, if any) and sets up its next call if it has none running. Returns
/// the CPU now current, or `None` when every CPU is done (the engine is
/// stopped).
fn enter_next(uc: &mut Uc, leaving: Option<usize>) -> Option<usize> {
    loop {
        let next = pick(uc, leaving)?;
        smp(uc).current = next;
        let cpu = &smp(uc).cpus[next];
        if cpu.current.is_some() {
            resume(uc, next);
            return Some(next);
        }
        if begin_call(uc, next) {
            return Some(next);
        }
        // That CPU's next call was not made (unregistered): pick again.
    }
}

/// The highest-priority CPU that can run; CPUs spinning in an API come
/// last, `avoid` (the CPU that just yielded) only if nothing else can run.
fn pick(uc: &mut Uc, avoid: Option<usize>) -> Option<usize> {
    let s = smp(uc);
    let steps = s.steps;
    let candidates: Vec<usize> = (0..s.cpus.len())
        .filter(|&i| !s.cpus[i].done() && s.cpus[i].start_after <= steps)
        .collect();
    if candidates.is_empty() {
        // Every CPU is done or not started yet: start the earliest.
        let waiting = (0..s.cpus.len())
            .filter(|&i| !s.cpus[i].done())
            .min_by_key(|&i| s.cpus[i].start_after)?;
        s.cpus[waiting].start_after = 0;
        return Some(waiting);
    }
    let best = |filter: &dyn Fn(usize) -> bool| {
        candidates
            .iter()
            .copied()
            .filter(|&i| filter(i))
            .max_by_key(|&i| s.cpus[i].priority)
    };
    best(&|i| Some(i) != avoid && !s.cpus[i].spinning)
        .or_else(|| best(&|i| Some(i) != avoid))
        .or_else(|| best(&|_| true))
}

/// Makes `cpu`'s saved context the engine's.
fn resume(uc: &mut Uc, cpu: usize) {
    let (context, level, pid, tid) = {
        let c = &mut smp(uc).cpus[cpu];
        (c.context.take(), c.irql, c.pid, c.tid)
    };
    if let Some(context) = context {
        load(uc, &context);
    }
    set_irql(uc, level);
    let k = uc.get_data_mut();
    k.current_cpu = cpu as u32;
    k.current_pid = pid;
    k.current_tid = tid;
}

/// Sets up `cpu`'s next call as a fresh frame on its stack. False if the
/// call is not made (its registration is gone).
fn begin_call(uc: &mut Uc, cpu: usize) -> bool {
    let Some(call) = smp(uc).cpus[cpu].calls.pop_front() else {
        return false;
    };
    if !registered(uc, &call) {
        smp(uc).outcomes[cpu].push((call.label.clone(), Outcome::NotCalled));
        return false;
    }
    let top = smp(uc).cpus[cpu].stack_top;
    let s = smp(uc);
    s.in_flight[cpu][call.kind.index()] += 1;
    let c = &mut s.cpus[cpu];
    c.context = None;
    c.irql = call.irql;
    c.pid = call.pid;
    c.tid = call.tid;
    let (function, args, kind) = (call.function, call.args.clone(), call.kind);
    let copy = call.copy_before;
    c.current = Some(call);
    if let Some((from, to)) = copy {
        let value = uc.read_u64(from);
        uc.write_u64(to, value);
    }
    if kind == CallKind::RegistryCallback {
        crate::api::cm::before_call(uc, &args);
    }
    resume(uc, cpu);
    // A fresh frame on this CPU's stack, RFLAGS with only IF set (DF
    // clear, as the ABI requires at a call).
    push_call_frame(uc, top, &args, call_return(cpu));
    let _ = uc.reg_write(RegisterX86::RFLAGS, 0x202);
    let _ = uc.reg_write(RegisterX86::RIP, function);
    true
}

/// Saves the current CPU and continues with another (or the same, if no
/// other can run). Called at an instruction boundary, `rip` being the
/// instruction not yet executed.
fn switch(uc: &mut Uc, rip: u64, yielding: bool) {
    let from = smp(uc).current;
    debug_assert_eq!(uc.reg_read(RegisterX86::RIP).ok(), Some(rip));
    let context = save(uc);
    let level = irql(uc);
    let c = &mut smp(uc).cpus[from];
    c.context = Some(context);
    c.irql = level;
    if enter_next(uc, yielding.then_some(from)) != Some(from) {
        smp(uc).switches += 1;
    }
}

/// The code hook on every driver instruction: the scheduler's decision point.
pub fn on_instruction(uc: &mut Uc, address: u64) {
    if uc.get_data().smp.is_none() || uc.get_data().depth != 1 || uc.get_data().stop.is_some() {
        return;
    }
    let s = smp(uc);
    s.steps += 1;
    s.idle_spins = 0;
    let steps = s.steps;
    if steps > s.schedule.step_budget {
        let seed = s.schedule.seed;
        fatal(
            uc,
            Rule::Lock,
            format!("no progress after {steps} driver instructions (livelock), seed {seed}"),
        );
        return;
    }
    let schedule = s.schedule;
    if s.rng.chance(schedule.timer_per_mille) && expire_timers(uc) {
        smp(uc).timer_expiries += 1;
    }
    if irql(uc) < DISPATCH_LEVEL
        && !uc.get_data().sync.dpc_queue.is_empty()
        && smp(uc).rng.chance(schedule.dpc_per_mille)
    {
        deliver_dpc(uc, address);
        return;
    }
    let s = smp(uc);
    let current = s.current;
    if s.change_points.first().is_some_and(|&p| p <= steps) {
        s.change_points.remove(0);
        let lowest = s.cpus.iter().map(|c| c.priority).min().unwrap_or(0);
        s.cpus[current].priority = lowest.saturating_sub(1);
    }
    let random = s.rng.chance(schedule.switch_per_mille);
    let preferred = {
        let candidates = (0..s.cpus.len()).filter(|&i| {
            !s.cpus[i].done() && s.cpus[i].start_after <= steps && !s.cpus[i].spinning
        });
        candidates.max_by_key(|&i| s.cpus[i].priority)
    };
    if random || preferred.is_some_and(|p| p != current) {
        switch(uc, address, random);
    }
}

/// Every armed timer expires now: its DPC is queued (once), a periodic
/// timer stays armed, a one-shot one is removed. True if any was armed.
fn expire_timers(uc: &mut Uc) -> bool {
    let sync = &mut uc.get_data_mut().sync;
    if sync.timers.is_empty() {
        return false;
    }
    let expired: Vec<(u64, u64, u32)> = sync
        .timers
        .iter()
        .map(|(t, e)| (*t, e.dpc, e.period_ms))
        .collect();
    for (timer, dpc, period) in expired {
        if period == 0 {
            sync.timers.remove(&timer);
        }
        if dpc != 0 && !sync.dpc_queue.iter().any(|(d, _, _)| *d == dpc) {
            sync.dpc_queue.push((dpc, 0, 0));
        }
    }
    true
}

/// Interrupts the current CPU at `rip` to run the first queued DPC at
/// DISPATCH_LEVEL on its stack; [`on_sentinel`] resumes it afterwards.
pub fn deliver_dpc(uc: &mut Uc, rip: u64) {
    let (dpc, a1, a2) = uc.get_data_mut().sync.dpc_queue.remove(0);
    let Some((routine, context)) = uc.get_data().sync.dpcs.get(&dpc).copied() else {
        return;
    };
    debug_assert_eq!(uc.reg_read(RegisterX86::RIP).ok(), Some(rip));
    let interrupted = save(uc);
    let interrupted_rsp = uc.reg_read(RegisterX86::RSP).unwrap_or(0);
    let level = irql(uc);
    let cpu = smp(uc).current;
    smp(uc).cpus[cpu].interrupted.push((interrupted, level));
    smp(uc).dpcs_delivered += 1;
    if uc.get_data().unloaded {
        uc.get_data_mut().verifier.report(
            Rule::AfterUnload,
            format!("DPC routine {routine:#x} ran after the driver unloaded (bugcheck 0xC7/0xD1)"),
        );
    }
    // A DPC runs on the interrupted thread's stack, below its frame (the
    // x64 kernel switches to the DPC stack; the depth is what matters).
    let rsp = ((interrupted_rsp - 0x200) & !0xF) - 8;
    uc.write_u64(rsp, dpc_return(cpu));
    let _ = uc.reg_write(RegisterX86::RSP, rsp);
    let _ = uc.reg_write(RegisterX86::RCX, dpc);
    let _ = uc.reg_write(RegisterX86::RDX, context);
    let _ = uc.reg_write(RegisterX86::R8, a1);
    let _ = uc.reg_write(RegisterX86::R9, a2);
    let _ = uc.reg_write(RegisterX86::RFLAGS, 0x202);
    let _ = uc.reg_write(RegisterX86::RIP, routine);
    set_irql(uc, DISPATCH_LEVEL);
}

/// A per-CPU return address, if `address` is one: (cpu, is a DPC's).
pub fn sentinel(address: u64) -> Option<(usize, bool)> {
    (0..MAX_CPUS).find_map(|cpu| {
        if address == call_return(cpu) {
            Some((cpu, false))
        } else if address == dpc_return(cpu) {
            Some((cpu, true))
        } else {
            None
        }
    })
}

/// A call or a DPC returned on `cpu`.
pub fn on_sentinel(uc: &mut Uc, cpu: usize, dpc: bool) {
    if uc.get_data().smp.is_none() {
        return;
    }
    let level = irql(uc);
    if dpc {
        if level != DISPATCH_LEVEL {
            uc.get_data_mut().verifier.report(
                Rule::Irql,
                format!("DPC routine returned at IRQL {level} on CPU {cpu}"),
            );
        }
        let Some((context, before)) = smp(uc).cpus[cpu].interrupted.pop() else {
            fatal(
                uc,
                Rule::Fault,
                format!("DPC return on CPU {cpu} with no DPC running"),
            );
            return;
        };
        load(uc, &context);
        set_irql(uc, before);
        return;
    }
    let rax = uc.reg_read(RegisterX86::RAX).unwrap_or(0);
    let s = smp(uc);
    let Some(call) = s.cpus[cpu].current.take() else {
        fatal(
            uc,
            Rule::Fault,
            format!("return on CPU {cpu} with no call running"),
        );
        return;
    };
    s.in_flight[cpu][call.kind.index()] -= 1;
    s.outcomes[cpu].push((call.label.clone(), Outcome::Returned(rax)));
    if level != call.irql {
        uc.get_data_mut().verifier.report(
            Rule::Irql,
            format!(
                "{} entered at IRQL {} returned at IRQL {level} (CPU {cpu})",
                call.label, call.irql
            ),
        );
    }
    // The same CPU goes on with its next call, or another CPU runs.
    smp(uc).cpus[cpu].context = None;
    if enter_next(uc, None).is_none() {
        let _ = uc.emu_stop();
    }
}

/// An API asked to retry (it waits for another CPU): this CPU spins at the
/// call (`address`, its trampoline) and another runs. A queued DPC is
/// delivered here first when this CPU's IRQL allows (the wait may be for
/// it). When every CPU has spun in turn with no driver instruction executed
/// in between, no CPU can make progress: the machine is deadlocked.
pub fn spin(uc: &mut Uc, address: u64, api: &str) {
    if irql(uc) < DISPATCH_LEVEL && !uc.get_data().sync.dpc_queue.is_empty() {
        deliver_dpc(uc, address);
        return;
    }
    let s = smp(uc);
    let current = s.current;
    s.cpus[current].spinning = true;
    s.idle_spins += 1;
    if s.idle_spins > 4 * s.cpus.len() as u64 + 8 {
        let seed = s.schedule.seed;
        fatal(
            uc,
            Rule::Lock,
            format!(
                "deadlock: CPU {current} waits in {api} and no CPU can make progress (seed {seed})"
            ),
        );
        return;
    }
    switch(uc, address, true);
}

/// The API the current CPU spun in succeeded.
pub fn progressed(uc: &mut Uc) {
    if let Some(s) = uc.get_data_mut().smp.as_mut() {
        let current = s.current;
        s.cpus[current].spinning = false;
    }
}
