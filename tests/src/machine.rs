//! The machine: a Unicorn x86-64 CPU in kernel mode with the driver image
//! loaded, its imports bound to model functions, a kernel stack, a processor
//! block behind GS, and the model state ([`Kernel`]) as the CPU's data.
//!
//! Calls into the driver (DriverEntry, dispatch routines, callbacks) are made
//! by [`call_guest`]: arguments in RCX, RDX, R8, R9 and on the stack after the
//! 32-byte home area (the Windows x64 calling convention), a return address
//! that is a sentinel where emulation stops. Calls from the driver into the
//! kernel land on a trampoline slot holding `ret`; a code hook on the slot
//! page runs the model function, puts its result in RAX, and the `ret` returns.

use std::collections::HashMap;

use unicorn_engine::unicorn_const::{Arch, HookType, MemType, Mode};
use unicorn_engine::{RegisterX86, Unicorn};

use crate::api::{self, Handler};
use crate::memory::*;
use crate::pe;
use crate::verifier::{Rule, Verifier};

pub const PASSIVE_LEVEL: u8 = 0;
pub const APC_LEVEL: u8 = 1;
pub const DISPATCH_LEVEL: u8 = 2;

/// `FLTFL_FILTER_UNLOAD_MANDATORY` (fltkernel.h).
pub const FLTFL_FILTER_UNLOAD_MANDATORY: u64 = 1;

/// A bound import.
#[derive(Clone, Debug)]
pub struct Binding {
    pub name: String,
    pub handler: Handler,
}

/// Fault injection: fail the `nth` (0-based) call of a fallible API.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub fail: Option<(String, usize)>,
    pub seen: HashMap<String, usize>,
    /// Every fallible call made, in order, as (name, occurrence).
    pub log: Vec<(String, usize)>,
    pub injected: usize,
}

/// The model state: everything the modelled kernel knows.
#[derive(Debug)]
pub struct Kernel {
    pub last_step_clock: u64,
    /// The current IRQL (what CR8 holds on x64).
    pub irql: u8,
    /// System time, 100 ns units since 1601 (what KeQuerySystemTimePrecise returns).
    pub clock: u64,
    pub current_pid: u32,
    pub current_tid: u32,
    /// Processors the machine has (KeQueryMaximumProcessorCountEx); set
    /// before DriverEntry.
    pub processors: u32,
    /// The processor the current thread runs on (KeGetCurrentProcessorNumberEx).
    pub current_cpu: u32,
    pub bindings: Vec<Binding>,
    pub image_start: u64,
    pub image_end: u64,
    pub verifier: Verifier,
    pub faults: Faults,
    pub pool: api::pool::Pool,
    pub io: api::io::Io,
    pub flt: api::flt::Flt,
    pub ps: api::ps::Ps,
    pub reg: api::reg::Registry,
    pub cm: api::cm::Cm,
    pub ob: api::ob::Ob,
    pub threads: api::thread::Threads,
    pub sync: api::sync::Sync,
    /// Instructions executed while RIP was inside the driver image.
    pub driver_instructions: u64,
    /// When set, the same count per instruction address (RVA) in the image:
    /// a profile for `cargo xtask bench driver --profile`.
    pub profile: Option<HashMap<u32, u64>>,
    /// Why emulation was stopped by the model (a fatal finding), if it was.
    pub stop: Option<String>,
    pub depth: u32,
    /// Nested guest calls made so far (CSQ callbacks, DPCs, cancel routines).
    pub nested_calls: u64,
    /// A model call that made nested guest calls: after them Unicorn resumes
    /// the outer emulation at the trampoline again, so the hook must not run
    /// the model a second time; it replays the result instead.
    pub replay: Option<(u64, u64, u64)>,
    pub unloaded: bool,
    /// The driver's unload ran but its device is delete-pending (a handle
    /// is open): the image stays loaded until the last handle closes.
    pub unload_deferred: bool,
    /// Names of the APIs the driver called, in order (bounded; for messages).
    pub trace: Vec<&'static str>,
    /// Something else happening on the machine at the moment the driver
    /// calls API `.0` (once): e.g. an unload requested from another CPU
    /// while a callback is in flight. Runs before the API's model.
    pub interpose: Option<(String, Interposed)>,
    /// Several CPUs interleaved ([`crate::smp`]), during [`Machine::run_smp`].
    pub smp: Option<Box<crate::smp::Smp>>,
    /// Set by an API model that must wait for another CPU: its CPU spins at
    /// the call ([`crate::smp::request_retry`]).
    pub retry: bool,
    /// Stores into the ring lanes' producer state, by IRQL
    /// ([`Machine::watch_lane_stores`]).
    pub lane_stores: crate::lane_watch::LaneStores,
}

impl Kernel {
    /// Counts a fallible call; true when this one must fail.
    pub fn inject(&mut self, name: &str) -> bool {
        let seen = self.faults.seen.entry(name.to_owned()).or_insert(0);
        let occurrence = *seen;
        *seen += 1;
        self.faults.log.push((name.to_owned(), occurrence));
        let fail = self
            .faults
            .fail
            .as_ref()
            .is_some_and(|(n, k)| n == name && *k == occurrence);
        if fail {
            self.faults.injected += 1;
        }
        fail
    }

    /// The clock as the last scenario step set it.
    pub fn clock_at_last_step(&self) -> u64 {
        self.last_step_clock
    }

    pub fn is_driver_address(&self, address: u64) -> bool {
        (self.image_start..self.image_end).contains(&address)
    }
}

/// The current IRQL. On x64 it is CR8: the driver reads and writes it
/// inline (`mov reg, cr8` / `mov cr8, reg`, as wdm.h's KeGetCurrentIrql and
/// KeRaiseIrql do). Unicorn does not model CR8, so every such instruction in
/// the image is hooked ([`hook_cr8`]) and served from this field.
pub fn irql(uc: &Uc) -> u8 {
    uc.get_data().irql
}

pub fn set_irql(uc: &mut Uc, level: u8) {
    let before = std::mem::replace(&mut uc.get_data_mut().irql, level);
    // Verifier's IRQL checking: pageable memory is trimmed while IRQL is
    // DISPATCH_LEVEL or above, so any touch of it faults (bugcheck 0xD1 /
    // 0xA on Windows). The model makes paged pool inaccessible for as long.
    if (before >= DISPATCH_LEVEL) != (level >= DISPATCH_LEVEL) {
        api::pool::protect_paged(uc, level >= DISPATCH_LEVEL);
    }
}

const GPR: [RegisterX86; 16] = [
    RegisterX86::RAX,
    RegisterX86::RCX,
    RegisterX86::RDX,
    RegisterX86::RBX,
    RegisterX86::RSP,
    RegisterX86::RBP,
    RegisterX86::RSI,
    RegisterX86::RDI,
    RegisterX86::R8,
    RegisterX86::R9,
    RegisterX86::R10,
    RegisterX86::R11,
    RegisterX86::R12,
    RegisterX86::R13,
    RegisterX86::R14,
    RegisterX86::R15,
];

/// Finds `mov r64, cr8` (REX.R 0F 20 /r, reg field 0) and `mov cr8, r64`
/// (REX.R 0F 22 /r) in executable sections; returns (address, is_write, gpr).
fn cr8_sites(image: &pe::LoadedImage) -> Vec<(u64, bool, usize)> {
    let mut sites = Vec::new();
    for section in image.sections.iter().filter(|s| s.execute) {
        let start = section.rva as usize;
        let end = (start + section.size as usize).min(image.memory.len());
        let code = &image.memory[start..end];
        for i in 0..code.len().saturating_sub(3) {
            let (rex, op0, op1, modrm) = (code[i], code[i + 1], code[i + 2], code[i + 3]);
            let is_rex_r = rex & 0xF0 == 0x40 && rex & 0x04 != 0;
            if is_rex_r && op0 == 0x0F && (op1 == 0x20 || op1 == 0x22) && modrm & 0xF8 == 0xC0 {
                let gpr = usize::from(modrm & 7) + if rex & 1 != 0 { 8 } else { 0 };
                sites.push((IMAGE_BASE + (start + i) as u64, op1 == 0x22, gpr));
            }
        }
    }
    sites
}

/// Serves one CR8 access from the modelled IRQL and skips the instruction.
fn hook_cr8(uc: &mut Uc, address: u64, write: bool, gpr: usize) {
    // The scheduler's hook runs first at this address and may have switched
    // to another CPU (or into a DPC): then this instruction is not the one
    // about to execute, unless the new context is at the same instruction.
    if uc.reg_read(RegisterX86::RIP).unwrap_or(0) != address {
        return;
    }
    if write {
        let level = uc.reg_read(GPR[gpr]).unwrap_or(0) as u8;
        if level > 15 {
            fatal(uc, Rule::Irql, format!("mov cr8 with invalid IRQL {level}"));
            return;
        }
        set_irql(uc, level);
    } else {
        let level = u64::from(irql(uc));
        let _ = uc.reg_write(GPR[gpr], level);
    }
    let _ = uc.reg_write(RegisterX86::RIP, address + 4);
}

/// Checks a documented maximum IRQL.
pub fn require_irql(uc: &mut Uc, api: &str, max: u8) {
    let level = irql(uc);
    if level > max {
        uc.get_data_mut().verifier.report(
            Rule::Irql,
            format!("{api} called at IRQL {level} (maximum {max})"),
        );
    }
}

/// Reads argument `i` (0-based) of the current model call. At the hook, RSP
/// points at the return address; stack arguments start after the home area.
pub fn arg(uc: &Uc, i: usize) -> u64 {
    match i {
        0 => uc.reg_read(RegisterX86::RCX).unwrap_or(0),
        1 => uc.reg_read(RegisterX86::RDX).unwrap_or(0),
        2 => uc.reg_read(RegisterX86::R8).unwrap_or(0),
        3 => uc.reg_read(RegisterX86::R9).unwrap_or(0),
        _ => {
            let rsp = uc.reg_read(RegisterX86::RSP).unwrap_or(0);
            uc.read_u64(rsp + 8 + 8 * i as u64)
        }
    }
}

/// Stops emulation for a finding that makes continuing meaningless.
pub fn fatal(uc: &mut Uc, rule: Rule, message: String) {
    uc.get_data_mut().verifier.report(rule, message.clone());
    if uc.get_data().stop.is_none() {
        uc.get_data_mut().stop = Some(message);
    }
    let _ = uc.emu_stop();
}

const SAVED: [RegisterX86; 17] = [
    RegisterX86::RAX,
    RegisterX86::RBX,
    RegisterX86::RCX,
    RegisterX86::RDX,
    RegisterX86::RSI,
    RegisterX86::RDI,
    RegisterX86::RBP,
    RegisterX86::RSP,
    RegisterX86::R8,
    RegisterX86::R9,
    RegisterX86::R10,
    RegisterX86::R11,
    RegisterX86::R12,
    RegisterX86::R13,
    RegisterX86::R14,
    RegisterX86::R15,
    RegisterX86::RIP,
];

/// Sets up a call as the Windows x64 calling convention does, below `top`:
/// `args` in RCX, RDX, R8, R9 and in their stack slots (the home area and
/// beyond), `return_address` at [RSP], RSP 16-byte aligned plus 8 as at a
/// function's entry.
pub fn push_call_frame(uc: &mut Uc, top: u64, args: &[u64], return_address: u64) {
    let slots = args.len().max(4) as u64;
    let frame = (top - 8 * slots) & !0xF;
    for (i, value) in args.iter().enumerate() {
        uc.write_u64(frame + 8 * i as u64, *value);
    }
    let rsp = frame - 8;
    uc.write_u64(rsp, return_address);
    let regs = [
        RegisterX86::RCX,
        RegisterX86::RDX,
        RegisterX86::R8,
        RegisterX86::R9,
    ];
    for (i, reg) in regs.iter().enumerate() {
        let _ = uc.reg_write(*reg, args.get(i).copied().unwrap_or(0));
    }
    let _ = uc.reg_write(RegisterX86::RSP, rsp);
}

/// An interposer (`Kernel::interpose`) for "another CPU
/// requests a mandatory unload while this callback is inside the
/// interposed kernel call": FltMgr calls the driver's FilterUnloadCallback
/// there and then. On one modelled CPU the unload runs right there.
pub fn unload_from_another_cpu(uc: &mut Uc) {
    let callback = uc.get_data().flt.unload_callback;
    let _ = call_guest(uc, callback, &[FLTFL_FILTER_UNLOAD_MANDATORY]);
}

/// After [`unload_from_another_cpu`] was interposed into a callback and the
/// callback's run ended in `error`: the unload blocked on the callback's
/// rundown reference (the one-CPU model reports a wait that would block
/// forever), `unregister` was called after trace position `start`, nothing
/// was freed under the callback, and that wait is the only finding.
pub fn assert_unload_waited_for_callback(m: &Machine, error: &str, start: usize, unregister: &str) {
    assert!(
        error.contains("ExWaitForRundownProtectionRelease")
            && error.contains("1 references still held"),
        "{error}"
    );
    let after = &m.kernel().trace[start..];
    assert!(
        after.contains(&unregister),
        "{unregister} not called: {after:?}"
    );
    assert!(
        !after
            .iter()
            .any(|a| ["ExFreePoolWithTag", "ExFreePool", "IoDeleteDevice"].contains(a)),
        "freed under the callback: {after:?}"
    );
    let findings = m.findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
}

/// Calls the guest function at `function` with `args` and returns RAX.
/// Nested calls (a model API calling back into the driver, e.g. a cancel
/// routine or a CSQ callback) run below the caller's stack and restore its
/// registers. `Err` carries the reason emulation did not return normally.
pub fn call_guest(uc: &mut Uc, function: u64, args: &[u64]) -> Result<u64, String> {
    if function == 0 {
        return Err("call of a null function pointer".into());
    }
    let depth = uc.get_data().depth;
    let saved: Vec<u64> = SAVED.iter().map(|r| uc.reg_read(*r).unwrap_or(0)).collect();
    let top = if depth == 0 {
        STACK_BASE + STACK_SIZE - 0x40
    } else {
        // Leave the interrupted frame alone.
        uc.reg_read(RegisterX86::RSP).unwrap_or(0) - 0x80
    };
    push_call_frame(uc, top, args, RETURN_SENTINEL);
    uc.get_data_mut().depth += 1;
    if depth > 0 {
        uc.get_data_mut().nested_calls += 1;
    }
    let result = uc.emu_start(function, RETURN_SENTINEL, 0, 0);
    uc.get_data_mut().depth -= 1;
    let rip = uc.reg_read(RegisterX86::RIP).unwrap_or(0);
    let rax = uc.reg_read(RegisterX86::RAX).unwrap_or(0);
    let stopped = uc.get_data().stop.clone();
    if depth > 0 {
        for (reg, value) in SAVED.iter().zip(saved) {
            let _ = uc.reg_write(*reg, value);
        }
    }
    if let Some(reason) = stopped {
        return Err(reason);
    }
    match result {
        Err(e) => Err(format!("emulation error {e:?} at RIP {rip:#x}")),
        Ok(()) if rip != RETURN_SENTINEL => Err(format!("emulation stopped at RIP {rip:#x}")),
        Ok(()) => Ok(rax),
    }
}

/// Allocates model-owned (not driver pool) guest memory: IRPs, structures the
/// kernel passes to callbacks, system buffers.
pub fn model_alloc(uc: &mut Uc, size: u64) -> u64 {
    api::pool::map_block(uc, size, false)
}

pub fn model_free(uc: &mut Uc, address: u64) {
    api::pool::unmap_block(uc, address);
}

/// A loaded driver in its machine.
/// Work injected at the moment the driver calls a given API.
pub type Interposed = fn(&mut Uc);

#[derive(Debug)]
pub struct Machine {
    pub uc: Uc,
    pub image: pe::LoadedImage,
    pub driver_object: u64,
    pub registry_path: u64,
    pub exports: HashMap<String, u64>,
}

impl Machine {
    /// Loads `sys` at [`IMAGE_BASE`]. Fails, naming the function, when an
    /// import has no model.
    pub fn load(sys: &[u8]) -> Result<Machine, String> {
        let image = pe::load(sys, IMAGE_BASE)?;
        let mut bindings = Vec::new();
        let mut unknown = Vec::new();
        for import in &image.imports {
            match api::lookup(&import.name) {
                Some(handler) => bindings.push(Binding {
                    name: import.name.clone(),
                    handler,
                }),
                None => unknown.push(format!("{}!{}", import.dll, import.name)),
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "the driver imports functions the kernel model does not implement: {}",
                unknown.join(", ")
            ));
        }
        let kernel = Kernel {
            irql: PASSIVE_LEVEL,
            last_step_clock: 0,
            // 2024-07-19 04:09 UTC in 100 ns units since 1601.
            clock: 133_657_565_400_000_000,
            current_pid: 4,
            current_tid: 8,
            processors: 1,
            current_cpu: 0,
            bindings,
            image_start: IMAGE_BASE,
            image_end: IMAGE_BASE + u64::from(image.size),
            verifier: Verifier::default(),
            faults: Faults::default(),
            pool: Default::default(),
            io: Default::default(),
            flt: Default::default(),
            ps: Default::default(),
            reg: Default::default(),
            cm: Default::default(),
            ob: Default::default(),
            threads: Default::default(),
            sync: Default::default(),
            driver_instructions: 0,
            profile: None,
            stop: None,
            depth: 0,
            nested_calls: 0,
            replay: None,
            unloaded: false,
            unload_deferred: false,
            trace: Vec::new(),
            interpose: None,
            smp: None,
            retry: false,
            lane_stores: Default::default(),
        };
        let mut uc = Unicorn::new_with_data(Arch::X86, Mode::MODE_64, kernel)
            .map_err(|e| format!("unicorn: {e:?}"))?;
        map(
            &mut uc,
            IMAGE_BASE,
            round_up(u64::from(image.size), PAGE),
            prot(true, true, false),
        )?;
        uc.write_bytes(IMAGE_BASE, &image.memory);
        // Bind the IAT: import i → trampoline slot i, a data import → its
        // variable.
        for (i, import) in image.imports.iter().enumerate() {
            uc.write_u64(
                IMAGE_BASE + u64::from(import.iat_rva),
                api::data_address(&import.name).unwrap_or(HOOK_BASE + HOOK_SLOT * i as u64),
            );
        }
        // ntoskrnl's exported object-type variables; read-only to the driver.
        map(&mut uc, OBJECT_TYPES_BASE, PAGE, prot(true, true, false))?;
        api::ob::install_object_types(&mut uc);
        protect(&mut uc, OBJECT_TYPES_BASE, PAGE, prot(true, false, false))?;
        // Real protections: headers read-only, each section as declared.
        protect(
            &mut uc,
            IMAGE_BASE,
            round_up(u64::from(image.headers_size), PAGE),
            prot(true, false, false),
        )?;
        for section in &image.sections {
            let size = round_up(u64::from(section.size.max(1)), PAGE);
            protect(
                &mut uc,
                IMAGE_BASE + u64::from(section.rva),
                size,
                prot(section.read, section.write, section.execute),
            )?;
        }
        // Trampolines: every slot is `ret`.
        map(&mut uc, HOOK_BASE, HOOK_SIZE, prot(true, false, true))?;
        uc.write_bytes(HOOK_BASE, &vec![0xC3; HOOK_SIZE as usize]);
        // Stack with a guard page below it (left unmapped).
        map(&mut uc, STACK_BASE, STACK_SIZE, prot(true, true, false))?;
        // KPCR/KPRCB and the current thread.
        map(&mut uc, KPCR_BASE, 0x10000, prot(true, true, false))?;
        map(&mut uc, THREAD_BASE, 0x10000, prot(true, true, false))?;
        uc.write_u64(KPCR_BASE + 0x18, KPCR_BASE); // KPCR.Self
        uc.write_u64(KPCR_BASE + 0x20, KPCR_BASE + 0x180); // KPCR.CurrentPrcb
        uc.write_u64(KPCR_BASE + 0x188, THREAD_BASE); // KPRCB.CurrentThread
        uc.reg_write(RegisterX86::GS_BASE, KPCR_BASE)
            .map_err(|e| format!("GS base: {e:?}"))?;

        uc.add_code_hook(
            HOOK_BASE,
            HOOK_BASE + HOOK_SIZE - 1,
            |uc: &mut Unicorn<'_, Kernel>, a, s| dispatch(as_static(uc), a, s),
        )
        .map_err(|e| format!("hook: {e:?}"))?;
        let (start, end) = (IMAGE_BASE, IMAGE_BASE + u64::from(image.size) - 1);
        uc.add_code_hook(
            start,
            end,
            |uc: &mut Unicorn<'_, Kernel>, address: u64, _size: u32| {
                let kernel = uc.get_data_mut();
                kernel.driver_instructions += 1;
                if let Some(profile) = &mut kernel.profile {
                    // The hook only runs inside the image, so the RVA fits.
                    *profile
                        .entry(address.wrapping_sub(IMAGE_BASE) as u32)
                        .or_default() += 1;
                }
                crate::smp::on_instruction(as_static(uc), address);
            },
        )
        .map_err(|e| format!("hook: {e:?}"))?;
        for (site, write, gpr) in cr8_sites(&image) {
            uc.add_code_hook(
                site,
                site,
                move |uc: &mut Unicorn<'_, Kernel>, address, _| {
                    hook_cr8(as_static(uc), address, write, gpr)
                },
            )
            .map_err(|e| format!("hook: {e:?}"))?;
        }
        uc.add_mem_hook(
            HookType::MEM_INVALID,
            0,
            u64::MAX,
            |uc: &mut Unicorn<'_, Kernel>, k, a, n, v| invalid_access(as_static(uc), k, a, n, v),
        )
        .map_err(|e| format!("hook: {e:?}"))?;

        let exports = pe::exports(sys)
            .into_iter()
            .map(|(name, rva)| (name, IMAGE_BASE + u64::from(rva)))
            .collect();
        let mut machine = Machine {
            uc,
            image,
            driver_object: 0,
            registry_path: 0,
            exports,
        };
        machine.driver_object = api::io::create_driver_object(&mut machine.uc);
        machine.registry_path = api::rtl::alloc_unicode_string(
            &mut machine.uc,
            r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services\ringside",
        );
        Ok(machine)
    }

    pub fn kernel(&self) -> &Kernel {
        self.uc.get_data()
    }

    pub fn kernel_mut(&mut self) -> &mut Kernel {
        self.uc.get_data_mut()
    }

    /// Calls a driver function at `irql`, checking the IRQL is unchanged on return.
    pub fn call_at(&mut self, irql: u8, function: u64, args: &[u64]) -> Result<u64, String> {
        let previous = self::irql(&self.uc);
        set_irql(&mut self.uc, irql);
        let mut result = call_guest(&mut self.uc, function, args);
        let after = self::irql(&self.uc);
        // Back at PASSIVE_LEVEL from a top-level call: queued DPCs run now.
        if result.is_ok() && self.kernel().depth == 0 && previous < DISPATCH_LEVEL {
            crate::api::sync::run_queued_dpcs(&mut self.uc);
            if let Some(stop) = self.kernel().stop.clone() {
                result = Err(stop);
            }
        }
        if result.is_ok() && after != irql {
            self.kernel_mut().verifier.report(
                Rule::Irql,
                format!(
                    "driver function {function:#x} entered at IRQL {irql} returned at IRQL {after}"
                ),
            );
        }
        set_irql(&mut self.uc, previous);
        result
    }

    /// Runs DriverEntry(DriverObject, RegistryPath) at PASSIVE_LEVEL.
    pub fn driver_entry(&mut self) -> Result<i32, String> {
        let entry = IMAGE_BASE + u64::from(self.image.entry_rva);
        let (object, path) = (self.driver_object, self.registry_path);
        self.call_at(PASSIVE_LEVEL, entry, &[object, path])
            .map(|r| r as i32)
    }

    /// Unloads the driver as `fltmc unload ringside` does: FltMgr calls the
    /// minifilter's FilterUnloadCallback (FLT_REGISTRATION), whose success
    /// means the driver is gone; a driver that is not a minifilter gets its
    /// DriverUnload. Then the unload-time invariants are checked.
    pub fn unload(&mut self) -> Result<(), String> {
        self.unload_with_flags(0)
    }

    /// A mandatory unload (`FLTFL_FILTER_UNLOAD_MANDATORY`: the service is
    /// stopped; the filter may not refuse).
    pub fn unload_mandatory(&mut self) -> Result<(), String> {
        self.unload_with_flags(FLTFL_FILTER_UNLOAD_MANDATORY)
    }

    fn unload_with_flags(&mut self, flags: u64) -> Result<(), String> {
        let filter_unload = self.kernel().flt.unload_callback;
        if filter_unload != 0 && self.kernel().flt.filter != 0 {
            let status = self.call_at(PASSIVE_LEVEL, filter_unload, &[flags])?;
            return self.unloaded(status);
        } else {
            let unload = api::io::driver_unload_routine(&self.uc, self.driver_object);
            if unload == 0 {
                return Err("the driver has no unload routine".into());
            }
            let object = self.driver_object;
            self.call_at(PASSIVE_LEVEL, unload, &[object])?;
        }
        self.unloaded(0)
    }

    /// After the FilterUnloadCallback returned `status`: a success means
    /// the driver is gone, and the unload-time invariants are checked.
    pub fn unloaded(&mut self, status: u64) -> Result<(), String> {
        let status = status as u32 as i32;
        if status < 0 {
            return Err(format!(
                "FilterUnloadCallback refused the unload: {status:#x}"
            ));
        }
        // A device with open handles is only delete-pending: the I/O
        // manager keeps the driver loaded, and sends CLEANUP and CLOSE to
        // it, until the last handle closes (then `finish_unload`).
        if self.kernel().io.devices.values().any(|d| d.delete_pending) {
            self.kernel_mut().unload_deferred = true;
            return Ok(());
        }
        self.finish_unload();
        Ok(())
    }

    /// The driver image goes; what must hold then is checked.
    pub fn finish_unload(&mut self) {
        self.kernel_mut().unload_deferred = false;
        self.kernel_mut().unloaded = true;
        self.check_unloaded();
    }

    /// What must hold once the driver is gone (after a failed DriverEntry,
    /// or after DriverUnload): no pool, no registrations, no devices, no
    /// pending IRPs, no name information, no locks held.
    pub fn check_unloaded(&mut self) {
        api::pool::check_leaks(&mut self.uc);
        api::io::check_unloaded(&mut self.uc);
        api::flt::check_unloaded(&mut self.uc);
        api::ps::check_unloaded(&mut self.uc);
        api::cm::check_unloaded(&mut self.uc);
        api::ob::check_unloaded(&mut self.uc);
        api::thread::check_unloaded(&mut self.uc);
        api::sync::check_unloaded(&mut self.uc);
    }

    pub fn findings(&self) -> &[crate::verifier::Finding] {
        &self.kernel().verifier.findings
    }

    /// Fails the next call of the kernel API `api` (fault injection on the
    /// event path, one call at a time).
    pub fn fail_next(&mut self, api: &str) {
        let next = self.kernel().faults.seen.get(api).copied().unwrap_or(0);
        self.kernel_mut().faults.fail = Some((api.to_owned(), next));
    }

    /// The APIs the driver called since trace position `start`: whether
    /// `removal` was called, and whether anything was freed (pool, the
    /// device) before it. An unload with a callback in flight must remove
    /// the callback and free nothing under it.
    pub fn removed_before_any_free(&self, start: usize, removal: &str) -> Result<(), String> {
        let after = self.kernel().trace.get(start..).unwrap_or_default();
        let removed = after.iter().position(|a| *a == removal);
        let freed = after
            .iter()
            .position(|a| ["ExFreePoolWithTag", "ExFreePool", "IoDeleteDevice"].contains(a));
        match (removed, freed) {
            (None, _) => Err(format!("{removal} not called: {after:?}")),
            (Some(_), Some(_)) => Err(format!("freed under the callback: {after:?}")),
            (Some(_), None) => Ok(()),
        }
    }

    /// Panics with every finding when there are any.
    #[track_caller]
    pub fn assert_clean(&self) {
        let findings = self.findings();
        if !findings.is_empty() {
            let list: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
            panic!(
                "kernel model verifier findings:\n  {}\n(last APIs: {:?})",
                list.join("\n  "),
                self.kernel()
                    .trace
                    .iter()
                    .rev()
                    .take(12)
                    .collect::<Vec<_>>()
            );
        }
    }

    /// Advances the system clock.
    pub fn advance_time_100ns(&mut self, ticks: u64) -> Result<(), String> {
        self.kernel_mut().clock += ticks;
        api::sync::fire_due_timers(self)
    }

    pub fn set_current(&mut self, pid: u32, tid: u32) {
        self.kernel_mut().current_pid = pid;
        self.kernel_mut().current_tid = tid;
    }

    /// Runs what follows on processor `cpu` (below `Kernel::processors`).
    pub fn set_cpu(&mut self, cpu: u32) {
        assert!(
            cpu < self.kernel().processors,
            "the machine has no CPU {cpu}"
        );
        self.kernel_mut().current_cpu = cpu;
    }
}

/// Views a hook's CPU handle as the `'static` machine it belongs to.
fn as_static<'a>(uc: &'a mut Unicorn<'_, Kernel>) -> &'a mut Uc {
    // SAFETY: the lifetime parameter of `Unicorn` bounds the hooks it may
    // hold; every hook this model registers is `'static` (no borrowed
    // captures), so the handle is valid as a `Unicorn<'static, Kernel>` for
    // the duration of the callback. Only the lifetime changes, not the type.
    unsafe { &mut *(uc as *mut Unicorn<'_, Kernel>).cast::<Uc>() }
}

fn map(
    uc: &mut Uc,
    address: u64,
    size: u64,
    p: unicorn_engine::unicorn_const::Permission,
) -> Result<(), String> {
    uc.mem_map(address, size as usize, p)
        .map_err(|e| format!("map {address:#x}+{size:#x}: {e:?}"))
}

fn protect(
    uc: &mut Uc,
    address: u64,
    size: u64,
    p: unicorn_engine::unicorn_const::Permission,
) -> Result<(), String> {
    uc.mem_protect(address, size as usize, p)
        .map_err(|e| format!("protect {address:#x}+{size:#x}: {e:?}"))
}

/// The trampoline hook: runs the model of import `(address - HOOK_BASE) / 16`.
fn dispatch(uc: &mut Uc, address: u64, _size: u32) {
    if address == RETURN_SENTINEL {
        return;
    }
    if let Some((cpu, dpc)) = crate::smp::sentinel(address) {
        crate::smp::on_sentinel(uc, cpu, dpc);
        return;
    }
    let rsp = uc.reg_read(RegisterX86::RSP).unwrap_or(0);
    if let Some((at, sp, value)) = uc.get_data().replay
        && at == address
        && sp == rsp
    {
        uc.get_data_mut().replay = None;
        let _ = uc.reg_write(RegisterX86::RAX, value);
        return;
    }
    let index = ((address - HOOK_BASE) / HOOK_SLOT) as usize;
    let Some(binding) = uc.get_data().bindings.get(index).cloned() else {
        fatal(
            uc,
            Rule::Fault,
            format!("jump into the trampoline page at {address:#x}"),
        );
        return;
    };
    if uc.get_data().unloaded {
        uc.get_data_mut().verifier.report(
            Rule::AfterUnload,
            format!("{} called after the driver unloaded", binding.name),
        );
    }
    let trace = &mut uc.get_data_mut().trace;
    if trace.len() < 100_000 {
        trace.push(api::static_name(&binding.name));
    }
    let interposed = uc
        .get_data()
        .interpose
        .as_ref()
        .is_some_and(|(name, _)| *name == binding.name);
    if interposed && let Some((_, action)) = uc.get_data_mut().interpose.take() {
        action(uc);
        if uc.get_data().stop.is_some() {
            // The interposed activity ended the run (a finding): stop the
            // interrupted driver code too.
            let _ = uc.emu_stop();
            return;
        }
    }
    let nested_before = uc.get_data().nested_calls;
    let result = (binding.handler)(uc);
    if std::mem::take(&mut uc.get_data_mut().retry) {
        // The API waits for another CPU: spin here (the call is made again
        // when this CPU runs next), unless guest code the kernel called
        // from inside an API is running, which cannot be preempted.
        if uc.get_data().depth == 1 && uc.get_data().smp.is_some() {
            crate::smp::spin(uc, address, &binding.name);
        } else {
            fatal(
                uc,
                Rule::Lock,
                format!(
                    "{} would wait forever: nothing else can run (hang)",
                    binding.name
                ),
            );
        }
        return;
    }
    crate::smp::progressed(uc);
    if uc.get_data().nested_calls != nested_before {
        uc.get_data_mut().replay = Some((address, rsp, result));
    }
    if std::env::var_os("KMODEL_TRACE").is_some() {
        eprintln!("api {} -> {result:#x}", binding.name);
    }
    let _ = uc.reg_write(RegisterX86::RAX, result);
}

fn invalid_access(uc: &mut Uc, kind: MemType, address: u64, size: usize, _value: i64) -> bool {
    let rip = uc.reg_read(RegisterX86::RIP).unwrap_or(0);
    let where_ = if uc.get_data().is_driver_address(rip) {
        format!("ringside.sys+{:#x}", rip - IMAGE_BASE)
    } else {
        format!("{rip:#x}")
    };
    let what = if (STACK_GUARD..STACK_BASE).contains(&address) {
        " (kernel stack overflow into the guard page)".to_owned()
    } else if api::pool::is_paged(uc, address) {
        let level = irql(uc);
        let message = format!(
            "paged pool at {address:#x} touched at IRQL {level} from {where_} (Verifier IRQL checking: bugcheck 0xD1)"
        );
        fatal(uc, Rule::Irql, message);
        return false;
    } else {
        String::new()
    };
    fatal(
        uc,
        Rule::Fault,
        format!(
            "invalid memory access {kind:?} of {size} bytes at {address:#x} from {where_}{what}"
        ),
    );
    false
}
