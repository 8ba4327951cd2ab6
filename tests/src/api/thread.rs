//! Threads (ntddk.h, ntifs.h): `PsSetCreateThreadNotifyRoutine` /
//! `PsRemoveCreateThreadNotifyRoutine` (removal waits for calls of the
//! routine in flight on other CPUs, as the kernel's rundown of each callback
//! block does), `PsLookupThreadByThreadId` (a counted reference, at most
//! APC_LEVEL), `ObfDereferenceObject` (of those references; more releases
//! than references is a finding), `ObOpenObjectByPointer` (PASSIVE_LEVEL; a
//! handle opened outside the system process must be OBJ_KERNEL_HANDLE) and
//! `ZwQueryInformationThread` (PASSIVE_LEVEL; `ThreadQuerySetWin32StartAddress`
//! into a buffer of the size the ABI oracle gives a PVOID). Thread handles
//! close through `ZwClose` (api::reg). Every fallible call can be failed by
//! fault injection; references and handles left at unload are findings.

use std::collections::HashMap;

use crate::layout::{THREAD_QUERY_SET_WIN32_START_ADDRESS, THREAD_START_ADDRESS_SIZE};
use crate::machine::{APC_LEVEL, PASSIVE_LEVEL, arg, model_alloc, require_irql};
use crate::memory::*;
use crate::verifier::Rule;

pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32;
pub const STATUS_INVALID_HANDLE: i32 = 0xC000_0008_u32 as i32;
pub const STATUS_INFO_LENGTH_MISMATCH: i32 = 0xC000_0004_u32 as i32;
pub const STATUS_INVALID_INFO_CLASS: i32 = 0xC000_0003_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32;
pub const STATUS_PROCEDURE_NOT_FOUND: i32 = 0xC000_007A_u32 as i32;
/// `OBJ_KERNEL_HANDLE`.
pub const OBJ_KERNEL_HANDLE: u64 = 0x200;
/// The System process's id: the one context where a handle need not be a
/// kernel handle.
pub const SYSTEM_PID: u32 = 4;

/// One thread a scenario created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thread {
    pub tid: u32,
    pub pid: u32,
    /// The `ETHREAD` (model memory).
    pub ethread: u64,
    pub start_address: u64,
}

#[derive(Debug, Default)]
pub struct Threads {
    pub notify: Vec<u64>,
    /// Routines being removed while calls of them are in flight elsewhere.
    pub removing: Vec<u64>,
    pub threads: HashMap<u32, Thread>,
    /// References from PsLookupThreadByThreadId not yet released, per ETHREAD.
    pub refs: HashMap<u64, i64>,
    /// Open thread handles → ETHREAD.
    pub handles: HashMap<u64, u64>,
    pub next_handle: u64,
}

impl Threads {
    fn by_object(&self, ethread: u64) -> Option<Thread> {
        self.threads
            .values()
            .find(|t| t.ethread == ethread)
            .copied()
    }
}

/// A new thread object for a scenario, returned so the scenario can call the
/// notify routines about it.
pub fn new_thread(uc: &mut Uc, tid: u32, pid: u32, start_address: u64) -> Thread {
    let ethread = model_alloc(uc, 0x800);
    let thread = Thread {
        tid,
        pid,
        ethread,
        start_address,
    };
    uc.get_data_mut().threads.threads.insert(tid, thread);
    thread
}

/// `NTSTATUS PsSetCreateThreadNotifyRoutine(PCREATE_THREAD_NOTIFY_ROUTINE)`.
pub fn ps_set_create_thread_notify_routine(uc: &mut Uc) -> u64 {
    let routine = arg(uc, 0);
    require_irql(uc, "PsSetCreateThreadNotifyRoutine", PASSIVE_LEVEL);
    if uc.get_data_mut().inject("PsSetCreateThreadNotifyRoutine") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    uc.get_data_mut().threads.notify.push(routine);
    0
}

/// `NTSTATUS PsRemoveCreateThreadNotifyRoutine(PCREATE_THREAD_NOTIFY_ROUTINE)`.
pub fn ps_remove_create_thread_notify_routine(uc: &mut Uc) -> u64 {
    let routine = arg(uc, 0);
    require_irql(uc, "PsRemoveCreateThreadNotifyRoutine", PASSIVE_LEVEL);
    let threads = &mut uc.get_data_mut().threads;
    match threads.notify.iter().position(|r| *r == routine) {
        Some(i) => {
            threads.notify.remove(i);
        }
        None if threads.removing.contains(&routine) => {}
        None => return STATUS_PROCEDURE_NOT_FOUND as u32 as u64,
    }
    if crate::smp::in_flight_elsewhere(uc, crate::smp::CallKind::ThreadNotify) {
        let threads = &mut uc.get_data_mut().threads;
        if !threads.removing.contains(&routine) {
            threads.removing.push(routine);
        }
        crate::smp::request_retry(uc);
        return 0;
    }
    uc.get_data_mut().threads.removing.retain(|r| *r != routine);
    0
}

/// `NTSTATUS PsLookupThreadByThreadId(HANDLE ThreadId, PETHREAD *Thread)`.
pub fn ps_lookup_thread_by_thread_id(uc: &mut Uc) -> u64 {
    let (tid, out) = (arg(uc, 0) as u32, arg(uc, 1));
    require_irql(uc, "PsLookupThreadByThreadId", APC_LEVEL);
    let Some(thread) = uc.get_data().threads.threads.get(&tid).copied() else {
        return STATUS_INVALID_PARAMETER as u32 as u64;
    };
    if uc.get_data_mut().inject("PsLookupThreadByThreadId") {
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    *uc.get_data_mut()
        .threads
        .refs
        .entry(thread.ethread)
        .or_insert(0) += 1;
    uc.write_u64(out, thread.ethread);
    0
}

/// `LONG_PTR ObfDereferenceObject(PVOID Object)`: the model only hands out
/// thread references, so anything else is a finding.
pub fn obf_dereference_object(uc: &mut Uc) -> u64 {
    let object = arg(uc, 0);
    let refs = uc.get_data().threads.refs.get(&object).copied();
    match refs {
        Some(n) if n > 0 => {
            uc.get_data_mut().threads.refs.insert(object, n - 1);
        }
        _ => uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("ObfDereferenceObject({object:#x}): no reference held"),
        ),
    }
    0
}

/// `NTSTATUS ObOpenObjectByPointer(PVOID Object, ULONG HandleAttributes,
/// PACCESS_STATE, ACCESS_MASK, POBJECT_TYPE, KPROCESSOR_MODE, PHANDLE)`.
pub fn ob_open_object_by_pointer(uc: &mut Uc) -> u64 {
    let (object, attributes, object_type, mode, out) = (
        arg(uc, 0),
        arg(uc, 1),
        arg(uc, 4),
        arg(uc, 5) as u8,
        arg(uc, 6),
    );
    require_irql(uc, "ObOpenObjectByPointer", PASSIVE_LEVEL);
    let referenced = uc
        .get_data()
        .threads
        .refs
        .get(&object)
        .copied()
        .unwrap_or(0)
        > 0;
    let known = uc.get_data().threads.by_object(object).is_some();
    let current = uc.get_data().current_pid;
    let problem = if !known || !referenced {
        Some(format!("{object:#x} is not a referenced thread object"))
    } else if attributes & OBJ_KERNEL_HANDLE == 0 && current != SYSTEM_PID {
        Some(format!(
            "HandleAttributes {attributes:#x} without OBJ_KERNEL_HANDLE in process {current}"
        ))
    } else if object_type == 0 && mode != 0 {
        Some("ObjectType NULL with UserMode".into())
    } else {
        None
    };
    if let Some(problem) = problem {
        uc.get_data_mut()
            .verifier
            .report(Rule::Contract, format!("ObOpenObjectByPointer: {problem}"));
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    if uc.get_data_mut().inject("ObOpenObjectByPointer") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    let threads = &mut uc.get_data_mut().threads;
    threads.next_handle += 4;
    let handle = 0xffff_8000_0000_1000 + threads.next_handle;
    threads.handles.insert(handle, object);
    uc.write_u64(out, handle);
    0
}

/// `NTSTATUS ZwQueryInformationThread(HANDLE, THREADINFOCLASS, PVOID,
/// ULONG, PULONG)`: `ThreadQuerySetWin32StartAddress` only.
pub fn zw_query_information_thread(uc: &mut Uc) -> u64 {
    let (handle, class, buffer, length, returned) = (
        arg(uc, 0),
        arg(uc, 1) as u32,
        arg(uc, 2),
        arg(uc, 3) as u32,
        arg(uc, 4),
    );
    require_irql(uc, "ZwQueryInformationThread", PASSIVE_LEVEL);
    let Some(object) = uc.get_data().threads.handles.get(&handle).copied() else {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("ZwQueryInformationThread({handle:#x}): not an open thread handle"),
        );
        return STATUS_INVALID_HANDLE as u32 as u64;
    };
    if u64::from(class) != THREAD_QUERY_SET_WIN32_START_ADDRESS as u64 {
        return STATUS_INVALID_INFO_CLASS as u32 as u64;
    }
    if length as usize != THREAD_START_ADDRESS_SIZE {
        return STATUS_INFO_LENGTH_MISMATCH as u32 as u64;
    }
    if uc.get_data_mut().inject("ZwQueryInformationThread") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    let Some(thread) = uc.get_data().threads.by_object(object) else {
        return STATUS_INVALID_HANDLE as u32 as u64;
    };
    uc.write_u64(buffer, thread.start_address);
    if returned != 0 {
        uc.write_u32(returned, length);
    }
    0
}

/// `ZwClose` of a thread handle (api::reg's ZwClose asks here for handles
/// it did not open); false if `handle` is not one.
pub fn close_handle(uc: &mut Uc, handle: u64) -> bool {
    uc.get_data_mut().threads.handles.remove(&handle).is_some()
}

/// At unload: no routine registered, every reference released, every
/// handle closed.
pub fn check_unloaded(uc: &mut Uc) {
    let threads = &uc.get_data().threads;
    let mut problems = Vec::new();
    if !threads.notify.is_empty() {
        problems.push((
            Rule::Registration,
            format!(
                "thread notify routines still registered: {:x?}",
                threads.notify
            ),
        ));
    }
    let held: Vec<(u64, i64)> = threads
        .refs
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(o, n)| (*o, *n))
        .collect();
    if !held.is_empty() {
        problems.push((
            Rule::Contract,
            format!("thread references not released: {held:x?}"),
        ));
    }
    if !threads.handles.is_empty() {
        problems.push((
            Rule::Registration,
            format!("thread handles not closed: {:x?}", threads.handles),
        ));
    }
    for (rule, p) in problems {
        uc.get_data_mut().verifier.report(rule, p);
    }
}
