//! The object manager's handle callbacks (wdm.h): `ObRegisterCallbacks`
//! (<= APC_LEVEL; checks the registration's version, altitude, object
//! types and operations, refuses an image without FORCE_INTEGRITY with
//! STATUS_ACCESS_DENIED and a second registration at one altitude with
//! STATUS_FLT_INSTANCE_ALTITUDE_COLLISION, as the reference page lists),
//! `ObUnRegisterCallbacks` (an unknown or already unregistered handle is a
//! finding: the page calls a second call a double free that bugchecks;
//! waits for calls of the routines in flight on other CPUs, which is what
//! makes unloading after it safe), the exported object types
//! `PsProcessType` and `PsThreadType` (data imports: each variable holds
//! the type's address), `PsGetThreadId` and `PsGetThreadProcessId` over
//! the model's thread objects, and `RtlWalkFrameChain` (the requesting
//! thread's user-mode return addresses the scenario supplied; walking a
//! user stack needs IRQL <= APC_LEVEL, pageable memory). Every fallible
//! call can be failed by fault injection: the registration fails, the
//! stack walk returns no frame.

use std::collections::HashMap;

use crate::machine::{APC_LEVEL, arg, require_irql};
use crate::memory::*;
use crate::verifier::Rule;

pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32;
pub const STATUS_ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32;
pub const STATUS_FLT_INSTANCE_ALTITUDE_COLLISION: i32 = 0xC01C_0011_u32 as i32;

/// `OB_OPERATION_HANDLE_CREATE`, `OB_OPERATION_HANDLE_DUPLICATE`.
pub const OB_OPERATION_HANDLE_CREATE: u32 = 1;
pub const OB_OPERATION_HANDLE_DUPLICATE: u32 = 2;
/// `OB_FLT_REGISTRATION_VERSION`.
const OB_FLT_REGISTRATION_VERSION: u16 = 0x0100;
/// `RtlWalkFrameChain` flag for the user-mode stack.
const RTL_WALK_USER_MODE_STACK: u32 = 1;

/// Where the exported object-type variables live (a read-only page, as
/// far as the driver is concerned): `PsProcessType` holds the address of
/// the process type, `PsThreadType` that of the thread type.
pub const PS_PROCESS_TYPE: u64 = OBJECT_TYPES_BASE;
pub const PS_THREAD_TYPE: u64 = OBJECT_TYPES_BASE + 8;
pub const PROCESS_OBJECT_TYPE: u64 = OBJECT_TYPES_BASE + 0x100;
pub const THREAD_OBJECT_TYPE: u64 = OBJECT_TYPES_BASE + 0x200;

/// Data imports: the address the IAT slot must hold (the variable's).
pub const DATA: &[(&str, u64)] = &[
    ("PsProcessType", PS_PROCESS_TYPE),
    ("PsThreadType", PS_THREAD_TYPE),
];

/// Writes the object-type variables into their (mapped) page.
pub fn install_object_types(uc: &mut Uc) {
    uc.write_u64(PS_PROCESS_TYPE, PROCESS_OBJECT_TYPE);
    uc.write_u64(PS_THREAD_TYPE, THREAD_OBJECT_TYPE);
}

/// Which object type an operation registration names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    Process,
    Thread,
}

/// One `OB_OPERATION_REGISTRATION`, as registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    pub object_type: ObjectType,
    pub operations: u32,
    pub pre: u64,
    pub post: u64,
}

/// One ObRegisterCallbacks registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub handle: u64,
    pub altitude: String,
    pub context: u64,
    pub operations: Vec<Operation>,
}

/// A thread object of a scenario.
#[derive(Clone, Copy, Debug)]
pub struct Thread {
    pub pid: u32,
    pub tid: u32,
}

#[derive(Debug, Default)]
pub struct Ob {
    pub registrations: Vec<Registration>,
    next_handle: u64,
    /// Registrations being removed while calls of their routines are in
    /// flight on other CPUs: no new call is made meanwhile.
    pub removing: Vec<u64>,
    /// Thread objects (model memory) → ids.
    pub threads: HashMap<u64, Thread>,
    /// User-mode return addresses of each thread's current call, innermost
    /// first (what `RtlWalkFrameChain` finds on its user stack).
    pub user_stacks: HashMap<u32, Vec<u64>>,
    /// Handles ObUnRegisterCallbacks was given, for the double-free check.
    unregistered: Vec<u64>,
}

impl Ob {
    /// Every routine of every live registration, for the multi-CPU runner.
    pub fn routines(&self) -> impl Iterator<Item = u64> + '_ {
        self.registrations
            .iter()
            .flat_map(|r| r.operations.iter())
            .flat_map(|o| [o.pre, o.post])
            .filter(|f| *f != 0)
    }
}

fn invalid(uc: &mut Uc, why: String) -> u64 {
    uc.get_data_mut().verifier.report(Rule::Contract, why);
    STATUS_INVALID_PARAMETER as u32 as u64
}

/// `NTSTATUS ObRegisterCallbacks(POB_CALLBACK_REGISTRATION, PVOID *RegistrationHandle)`.
pub fn ob_register_callbacks(uc: &mut Uc) -> u64 {
    use crate::layout::*;
    let (registration, handle_out) = (arg(uc, 0), arg(uc, 1));
    require_irql(uc, "ObRegisterCallbacks", APC_LEVEL);
    if registration == 0 || handle_out == 0 {
        return invalid(
            uc,
            format!("ObRegisterCallbacks({registration:#x}, {handle_out:#x})"),
        );
    }
    let version = uc.read_u16(registration + OB_CBREG_VERSION);
    let count = uc.read_u16(registration + OB_CBREG_COUNT);
    let altitude =
        String::from_utf16_lossy(&uc.read_unicode_string(registration + OB_CBREG_ALTITUDE));
    let context = uc.read_u64(registration + OB_CBREG_CONTEXT);
    let array = uc.read_u64(registration + OB_CBREG_OPERATIONS);
    if version != OB_FLT_REGISTRATION_VERSION || count == 0 || altitude.is_empty() || array == 0 {
        return invalid(
            uc,
            format!(
                "ObRegisterCallbacks: version {version:#x}, {count} operations at {array:#x}, altitude {altitude:?}"
            ),
        );
    }
    let mut operations = Vec::new();
    for i in 0..u64::from(count) {
        let at = array + i * OB_OPREG_SIZE as u64;
        let object_type = match uc.read_u64(at + OB_OPREG_OBJECT_TYPE) {
            PS_PROCESS_TYPE => ObjectType::Process,
            PS_THREAD_TYPE => ObjectType::Thread,
            other => {
                return invalid(
                    uc,
                    format!(
                        "ObRegisterCallbacks: operation {i} names object type variable {other:#x}, not PsProcessType or PsThreadType"
                    ),
                );
            }
        };
        let operation = Operation {
            object_type,
            operations: uc.read_u32(at + OB_OPREG_OPERATIONS),
            pre: uc.read_u64(at + OB_OPREG_PRE),
            post: uc.read_u64(at + OB_OPREG_POST),
        };
        let known = OB_OPERATION_HANDLE_CREATE | OB_OPERATION_HANDLE_DUPLICATE;
        if operation.operations == 0
            || operation.operations & !known != 0
            || (operation.pre == 0 && operation.post == 0)
        {
            return invalid(
                uc,
                format!("ObRegisterCallbacks: operation {i}: {operation:x?}"),
            );
        }
        operations.push(operation);
    }
    if !crate::api::ps::has_force_integrity(uc) {
        return STATUS_ACCESS_DENIED as u32 as u64;
    }
    if uc
        .get_data()
        .ob
        .registrations
        .iter()
        .any(|r| r.altitude == altitude)
    {
        return STATUS_FLT_INSTANCE_ALTITUDE_COLLISION as u32 as u64;
    }
    if uc.get_data_mut().inject("ObRegisterCallbacks") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    let ob = &mut uc.get_data_mut().ob;
    ob.next_handle += 1;
    let handle = 0xFFFF_B000_0000_0000 + ob.next_handle * 0x100;
    ob.registrations.push(Registration {
        handle,
        altitude,
        context,
        operations,
    });
    uc.write_u64(handle_out, handle);
    0
}

/// `VOID ObUnRegisterCallbacks(PVOID RegistrationHandle)`.
pub fn ob_unregister_callbacks(uc: &mut Uc) -> u64 {
    let handle = arg(uc, 0);
    require_irql(uc, "ObUnRegisterCallbacks", APC_LEVEL);
    let ob = &mut uc.get_data_mut().ob;
    match ob.registrations.iter().position(|r| r.handle == handle) {
        Some(i) => {
            ob.registrations.remove(i);
            ob.removing.push(handle);
        }
        // A retry of this call while calls were in flight.
        None if ob.removing.contains(&handle) => {}
        None => {
            let why = if ob.unregistered.contains(&handle) {
                "a second unregistration of one registration (a double free: bug check 0x7E)"
            } else {
                "not a registration handle"
            };
            uc.get_data_mut().verifier.report(
                Rule::Contract,
                format!("ObUnRegisterCallbacks({handle:#x}): {why}"),
            );
            return 0;
        }
    }
    if crate::smp::in_flight_elsewhere(uc, crate::smp::CallKind::ObjectCallback) {
        crate::smp::request_retry(uc);
        return 0;
    }
    let ob = &mut uc.get_data_mut().ob;
    ob.removing.retain(|h| *h != handle);
    ob.unregistered.push(handle);
    0
}

fn thread(uc: &mut Uc, api: &str, object: u64) -> Option<Thread> {
    let found = uc.get_data().ob.threads.get(&object).copied();
    if found.is_none() {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("{api}({object:#x}): not a thread object"),
        );
    }
    found
}

/// `HANDLE PsGetThreadId(PETHREAD)`.
pub fn ps_get_thread_id(uc: &mut Uc) -> u64 {
    let object = arg(uc, 0);
    thread(uc, "PsGetThreadId", object).map_or(0, |t| u64::from(t.tid))
}

/// `HANDLE PsGetThreadProcessId(PETHREAD)`.
pub fn ps_get_thread_process_id(uc: &mut Uc) -> u64 {
    let object = arg(uc, 0);
    thread(uc, "PsGetThreadProcessId", object).map_or(0, |t| u64::from(t.pid))
}

/// `ULONG RtlWalkFrameChain(PVOID *Callers, ULONG Count, ULONG Flags)`.
pub fn rtl_walk_frame_chain(uc: &mut Uc) -> u64 {
    let (callers, count, flags) = (arg(uc, 0), arg(uc, 1) as u32, arg(uc, 2) as u32);
    if flags & !RTL_WALK_USER_MODE_STACK != 0 || callers == 0 {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("RtlWalkFrameChain({callers:#x}, {count}, {flags:#x})"),
        );
        return 0;
    }
    if flags & RTL_WALK_USER_MODE_STACK == 0 {
        // The kernel stack: the model has no frames of its own to report.
        return 0;
    }
    require_irql(uc, "RtlWalkFrameChain (user-mode stack)", APC_LEVEL);
    if uc.get_data_mut().inject("RtlWalkFrameChain") {
        return 0;
    }
    let tid = uc.get_data().current_tid;
    let frames = uc
        .get_data()
        .ob
        .user_stacks
        .get(&tid)
        .cloned()
        .unwrap_or_default();
    let n = frames.len().min(count as usize);
    for (i, frame) in frames.iter().take(n).enumerate() {
        uc.write_u64(callers + 8 * i as u64, *frame);
    }
    n as u64
}

/// A data import reached as code: the driver called a variable.
pub fn data_import_called(uc: &mut Uc) -> u64 {
    uc.get_data_mut().verifier.report(
        Rule::Fault,
        "a data import (PsProcessType/PsThreadType) was called".to_string(),
    );
    0
}

/// At unload: no registration left.
pub fn check_unloaded(uc: &mut Uc) {
    let live = uc.get_data().ob.registrations.clone();
    if !live.is_empty() {
        uc.get_data_mut().verifier.report(
            Rule::Registration,
            format!("object callbacks still registered: {live:x?}"),
        );
    }
}
