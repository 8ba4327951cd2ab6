//! The I/O manager: driver and device objects, symbolic links, IRPs with one
//! IO_STACK_LOCATION, METHOD_BUFFERED system buffers, MDLs for
//! METHOD_OUT_DIRECT, completion, cancellation, and the cancel-safe queue
//! (`IoCsqInitializeEx`, `IoCsqInsertIrpEx`, `IoCsqRemoveNextIrp`).
//!
//! Contracts (WDK reference): IoCreateDevice / IoCreateSymbolicLink /
//! IoDeleteSymbolicLink at PASSIVE_LEVEL; IofCompleteRequest at
//! <= DISPATCH_LEVEL, exactly once per IRP, never with a cancel routine set
//! and never with STATUS_PENDING; a dispatch routine that returns
//! STATUS_PENDING must have marked the IRP pending (SL_PENDING_RETURNED);
//! one that returns anything else must have completed the IRP with that
//! status. The CSQ routines follow the documented sequence: the driver's
//! lock callbacks bracket its insert/remove/peek callbacks, and a cancelled
//! IRP is removed under the lock and handed to CsqCompleteCanceledIrp.

use std::collections::{BTreeMap, HashMap};

use crate::api::rtl::alloc_unicode_string;
use crate::layout::*;
use crate::machine::{
    DISPATCH_LEVEL, PASSIVE_LEVEL, arg, call_guest, fatal, irql, model_alloc, model_free,
    require_irql, set_irql,
};
use crate::memory::*;
use crate::verifier::Rule;

pub const STATUS_SUCCESS: i32 = 0;
pub const STATUS_PENDING: i32 = 0x103;
pub const STATUS_CANCELLED: i32 = 0xC000_0120_u32 as i32;
pub const STATUS_OBJECT_NAME_COLLISION: i32 = 0xC000_0035_u32 as i32;
pub const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32;
pub const STATUS_INVALID_DEVICE_REQUEST: i32 = 0xC000_0010_u32 as i32;
pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32;
pub const STATUS_DELETE_PENDING: i32 = 0xC000_0056_u32 as i32;

/// `SL_PENDING_RETURNED` in IO_STACK_LOCATION.Control (IoMarkIrpPending).
const SL_PENDING_RETURNED: u8 = 0x01;
const MDL_PAGES_LOCKED: u16 = 0x0002;
const MDL_MAPPED_TO_SYSTEM_VA: u16 = 0x0001;
/// Where the model's CSQ cancel routine "lives": IoCsqInsertIrp sets this as
/// the IRP's cancel routine; cancellation recognises it.
pub const CSQ_CANCEL_ROUTINE: u64 = HOOK_BASE + HOOK_SIZE - 2 * HOOK_SLOT;

#[derive(Clone, Debug)]
pub struct Device {
    pub name: String,
    pub characteristics: u32,
    /// Open handles (file objects) on it.
    pub handles: u32,
    /// IoDeleteDevice was called with handles open: the device goes when
    /// the last one closes (and the driver image with it); no new open.
    pub delete_pending: bool,
}

/// The model's record of one IRP.
#[derive(Clone, Debug, Default)]
pub struct IrpRecord {
    pub major: u8,
    pub file_object: u64,
    pub system_buffer: u64,
    pub output_buffer: u64,
    /// The model allocation holding `output_buffer` (it may start inside it).
    pub user_block: u64,
    pub output_len: u32,
    pub method: u32,
    pub completed: Option<(i32, u64)>,
    /// Output bytes as the caller would see them after completion.
    pub output: Vec<u8>,
    pub in_csq: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Io {
    pub devices: BTreeMap<u64, Device>,
    pub symlinks: HashMap<String, String>,
    pub irps: BTreeMap<u64, IrpRecord>,
    pub csq_scratch: HashMap<u64, u64>,
    /// MDL → (system address, the user buffer it maps, length): the system
    /// mapping MmMapLockedPagesSpecifyCache made. Its own address, as on
    /// Windows (kernel space, never the caller's user address); what the
    /// driver writes there reaches the caller's buffer at completion (the
    /// same physical pages on Windows).
    pub system_mappings: HashMap<u64, (u64, u64, usize)>,
    /// The spin lock each queue's CsqAcquireLock callback takes (learnt the
    /// first time it runs), so a queue whose lock another CPU holds spins
    /// at the IoCsq call instead of inside the callback.
    pub csq_lock_word: HashMap<u64, u64>,
    /// Tokens by guest address: is the token's user an administrator.
    pub tokens: HashMap<u64, bool>,
}

/// Builds `\Driver\ringside`'s DRIVER_OBJECT (model memory).
pub fn create_driver_object(uc: &mut Uc) -> u64 {
    let object = model_alloc(uc, DRIVER_OBJECT_SIZE as u64 + 0x100);
    let extension = object + DRIVER_OBJECT_SIZE as u64;
    uc.write_u16(object, 4); // IO_TYPE_DRIVER
    uc.write_u16(object + 2, DRIVER_OBJECT_SIZE as u16);
    uc.write_u64(object + DRIVER_START, IMAGE_BASE);
    let size = uc.get_data().image_end - uc.get_data().image_start;
    uc.write_u32(object + DRIVER_SIZE, size as u32);
    uc.write_u64(object + DRIVER_EXTENSION, extension);
    uc.write_u64(extension, object);
    let name = alloc_unicode_string(uc, r"\Driver\ringside");
    let name_bytes = uc.read_bytes(name, 16);
    uc.write_bytes(object + DRIVER_NAME, &name_bytes);
    object
}

pub fn driver_unload_routine(uc: &Uc, driver_object: u64) -> u64 {
    uc.read_u64(driver_object + DRIVER_UNLOAD)
}

pub fn major_function(uc: &Uc, driver_object: u64, major: u8) -> u64 {
    uc.read_u64(driver_object + DRIVER_MAJOR_FUNCTION + 8 * u64::from(major))
}

fn name_of(uc: &Uc, unicode_string: u64) -> String {
    String::from_utf16_lossy(&uc.read_unicode_string(unicode_string))
}

/// `NTSTATUS IoCreateDevice(PDRIVER_OBJECT, ULONG ExtensionSize, PUNICODE_STRING
/// DeviceName, DEVICE_TYPE, ULONG Characteristics, BOOLEAN Exclusive, PDEVICE_OBJECT*)`.
pub fn io_create_device(uc: &mut Uc) -> u64 {
    let (driver, extension_size, name, device_type, characteristics) = (
        arg(uc, 0),
        // ULONG: only the low half of the register is the caller's.
        u64::from(arg(uc, 1) as u32),
        arg(uc, 2),
        arg(uc, 3) as u32,
        arg(uc, 4) as u32,
    );
    let out = arg(uc, 6);
    require_irql(uc, "IoCreateDevice", PASSIVE_LEVEL);
    let name = if name == 0 {
        String::new()
    } else {
        name_of(uc, name)
    };
    if uc.get_data_mut().inject("IoCreateDevice") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    if uc
        .get_data()
        .io
        .devices
        .values()
        .any(|d| d.name == name && !name.is_empty())
    {
        return STATUS_OBJECT_NAME_COLLISION as u32 as u64;
    }
    let size = DEVICE_OBJECT_SIZE as u64 + extension_size;
    let device = model_alloc(uc, size);
    uc.write_u16(device, 3); // IO_TYPE_DEVICE
    uc.write_u16(device + 2, size as u16);
    uc.write_u64(device + DEVICE_DRIVER_OBJECT, driver);
    let first = uc.read_u64(driver + DRIVER_DEVICE_OBJECT);
    uc.write_u64(device + DEVICE_NEXT, first);
    uc.write_u64(driver + DRIVER_DEVICE_OBJECT, device);
    uc.write_u32(device + DEVICE_FLAGS, 0x80); // DO_DEVICE_INITIALIZING
    uc.write_u32(device + DEVICE_CHARACTERISTICS, characteristics);
    if extension_size > 0 {
        uc.write_u64(
            device + DEVICE_EXTENSION,
            device + DEVICE_OBJECT_SIZE as u64,
        );
    }
    uc.write_u32(device + DEVICE_TYPE, device_type);
    uc.write_u8(device + DEVICE_STACK_SIZE, 1);
    uc.write_u64(out, device);
    uc.get_data_mut().io.devices.insert(
        device,
        Device {
            name,
            characteristics,
            handles: 0,
            delete_pending: false,
        },
    );
    STATUS_SUCCESS as u64
}

/// `VOID IoDeleteDevice(PDEVICE_OBJECT)`.
pub fn io_delete_device(uc: &mut Uc) -> u64 {
    let device = arg(uc, 0);
    require_irql(uc, "IoDeleteDevice", PASSIVE_LEVEL);
    let handles = match uc.get_data().io.devices.get(&device) {
        Some(d) if !d.delete_pending => d.handles,
        _ => {
            uc.get_data_mut().verifier.report(
                Rule::Contract,
                format!("IoDeleteDevice({device:#x}): not a device (or deleted twice)"),
            );
            return 0;
        }
    };
    // With handles open the device is only marked: "if any outstanding
    // references remain, the I/O manager marks the device object as delete
    // pending and deletes it when the references are released" (wdm.h
    // IoDeleteDevice). It leaves the driver's device list now.
    if handles > 0 {
        if let Some(d) = uc.get_data_mut().io.devices.get_mut(&device) {
            d.delete_pending = true;
        }
    } else {
        uc.get_data_mut().io.devices.remove(&device);
    }
    // Unlink it from the driver's device list.
    let driver = uc.read_u64(device + DEVICE_DRIVER_OBJECT);
    let next = uc.read_u64(device + DEVICE_NEXT);
    let mut link = driver + DRIVER_DEVICE_OBJECT;
    loop {
        let current = uc.read_u64(link);
        if current == 0 {
            break;
        }
        if current == device {
            uc.write_u64(link, next);
            break;
        }
        link = current + DEVICE_NEXT;
    }
    if handles == 0 {
        model_free(uc, device);
    }
    0
}

/// The last handle on a delete-pending device closed: the device goes.
/// True if it did.
pub fn release_device_handle(uc: &mut Uc, device: u64) -> bool {
    let Some(d) = uc.get_data_mut().io.devices.get_mut(&device) else {
        return false;
    };
    d.handles = d.handles.saturating_sub(1);
    if d.handles == 0 && d.delete_pending {
        uc.get_data_mut().io.devices.remove(&device);
        model_free(uc, device);
        return true;
    }
    false
}

/// `NTSTATUS IoCreateSymbolicLink(PUNICODE_STRING Link, PUNICODE_STRING Target)`.
pub fn io_create_symbolic_link(uc: &mut Uc) -> u64 {
    let (link, target) = (arg(uc, 0), arg(uc, 1));
    require_irql(uc, "IoCreateSymbolicLink", PASSIVE_LEVEL);
    let (link, target) = (name_of(uc, link), name_of(uc, target));
    if uc.get_data_mut().inject("IoCreateSymbolicLink") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    if uc.get_data().io.symlinks.contains_key(&link) {
        return STATUS_OBJECT_NAME_COLLISION as u32 as u64;
    }
    uc.get_data_mut().io.symlinks.insert(link, target);
    0
}

pub fn io_delete_symbolic_link(uc: &mut Uc) -> u64 {
    let link = arg(uc, 0);
    require_irql(uc, "IoDeleteSymbolicLink", PASSIVE_LEVEL);
    let link = name_of(uc, link);
    match uc.get_data_mut().io.symlinks.remove(&link) {
        Some(_) => 0,
        None => STATUS_OBJECT_NAME_NOT_FOUND as u32 as u64,
    }
}

/// Stack location of an IRP (one per IRP in this model).
pub fn stack_location(uc: &Uc, irp: u64) -> u64 {
    uc.read_u64(irp + IRP_CURRENT_STACK_LOCATION)
}

/// `VOID IofCompleteRequest(PIRP, CCHAR PriorityBoost)`.
pub fn iof_complete_request(uc: &mut Uc) -> u64 {
    let irp = arg(uc, 0);
    require_irql(uc, "IofCompleteRequest", DISPATCH_LEVEL);
    complete(uc, irp);
    0
}

fn complete(uc: &mut Uc, irp: u64) {
    let status = uc.read_u32(irp + IRP_IO_STATUS) as i32;
    let information = uc.read_u64(irp + IRP_IO_STATUS + 8);
    let Some(record) = uc.get_data().io.irps.get(&irp).cloned() else {
        fatal(
            uc,
            Rule::Irp,
            format!("IofCompleteRequest({irp:#x}): not an IRP the I/O manager sent"),
        );
        return;
    };
    if record.completed.is_some() {
        fatal(
            uc,
            Rule::Irp,
            format!("IofCompleteRequest({irp:#x}): IRP completed twice"),
        );
        return;
    }
    if uc.read_u64(irp + IRP_CANCEL_ROUTINE) != 0 {
        uc.get_data_mut().verifier.report(
            Rule::Irp,
            format!("IofCompleteRequest({irp:#x}): completed with a cancel routine still set"),
        );
    }
    if status == STATUS_PENDING {
        uc.get_data_mut().verifier.report(
            Rule::Irp,
            format!("IofCompleteRequest({irp:#x}) with STATUS_PENDING"),
        );
    }
    if status >= 0 && information > u64::from(record.output_len) {
        uc.get_data_mut().verifier.report(
            Rule::Irp,
            format!(
                "IofCompleteRequest({irp:#x}): Information {information} exceeds the output buffer ({})",
                record.output_len
            ),
        );
    }
    // What the I/O manager copies back to the caller.
    if record.method == 2 {
        sync_system_mapping(uc, irp);
    }
    let shown = information.min(u64::from(record.output_len)) as usize;
    let output = if status < 0 || shown == 0 {
        Vec::new()
    } else if record.method == 2 {
        uc.read_bytes(record.output_buffer, shown)
    } else {
        uc.read_bytes(record.system_buffer, shown)
    };
    if let Some(r) = uc.get_data_mut().io.irps.get_mut(&irp) {
        r.completed = Some((status, information));
        r.output = output;
        r.in_csq = None;
    }
}

/// `PVOID MmMapLockedPagesSpecifyCache(PMDL, KPROCESSOR_MODE, ...)`.
pub fn mm_map_locked_pages_specify_cache(uc: &mut Uc) -> u64 {
    let mdl = arg(uc, 0);
    require_irql(uc, "MmMapLockedPagesSpecifyCache", DISPATCH_LEVEL);
    let flags = uc.read_u16(mdl + MDL_FLAGS);
    if flags & MDL_PAGES_LOCKED == 0 {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("MmMapLockedPagesSpecifyCache({mdl:#x}): pages not locked"),
        );
    }
    if uc.get_data_mut().inject("MmMapLockedPagesSpecifyCache") {
        return 0;
    }
    let user = uc.read_u64(mdl + MDL_START_VA) + u64::from(uc.read_u32(mdl + MDL_BYTE_OFFSET));
    let len = uc.read_u32(mdl + MDL_BYTE_COUNT) as usize;
    let system = model_alloc(uc, len as u64);
    let current = uc.read_bytes(user, len);
    uc.write_bytes(system, &current);
    uc.get_data_mut()
        .io
        .system_mappings
        .insert(mdl, (system, user, len));
    uc.write_u64(mdl + MDL_MAPPED_SYSTEM_VA, system);
    uc.write_u16(mdl + MDL_FLAGS, flags | MDL_MAPPED_TO_SYSTEM_VA);
    system
}

/// What the driver wrote through the MDL's system mapping, seen in the
/// caller's buffer (the same physical pages on Windows).
fn sync_system_mapping(uc: &mut Uc, irp: u64) {
    let mdl = uc.read_u64(irp + IRP_MDL_ADDRESS);
    if let Some(&(system, user, len)) = uc.get_data().io.system_mappings.get(&mdl) {
        let written = uc.read_bytes(system, len);
        uc.write_bytes(user, &written);
    }
}

/// Frees the system mapping of `mdl`, if one was made (the IRP is gone).
pub fn unmap_system_mapping(uc: &mut Uc, mdl: u64) {
    if let Some((system, _, _)) = uc.get_data_mut().io.system_mappings.remove(&mdl) {
        model_free(uc, system);
    }
}

/// `NTSTATUS IoCsqInitializeEx(PIO_CSQ, insert, remove, peek, acquire, release, complete_canceled)`.
pub fn io_csq_initialize_ex(uc: &mut Uc) -> u64 {
    let csq = arg(uc, 0);
    let routines = [
        arg(uc, 1),
        arg(uc, 2),
        arg(uc, 3),
        arg(uc, 4),
        arg(uc, 5),
        arg(uc, 6),
    ];
    uc.write_u32(csq, 4); // IO_TYPE_CSQ_EX
    for (offset, routine) in [
        CSQ_INSERT,
        CSQ_REMOVE,
        CSQ_PEEK,
        CSQ_ACQUIRE,
        CSQ_RELEASE,
        CSQ_COMPLETE_CANCELED,
    ]
    .iter()
    .zip(routines)
    {
        uc.write_u64(csq + offset, routine);
    }
    if !uc.get_data().io.csq_scratch.contains_key(&csq) {
        let scratch = model_alloc(uc, 16);
        uc.get_data_mut().io.csq_scratch.insert(csq, scratch);
    }
    0
}

fn csq_call(uc: &mut Uc, csq: u64, offset: u64, args: &[u64]) -> Option<u64> {
    let routine = uc.read_u64(csq + offset);
    match call_guest(uc, routine, args) {
        Ok(value) => Some(value),
        Err(e) => {
            uc.get_data_mut()
                .verifier
                .report(Rule::Fault, format!("CSQ callback {routine:#x}: {e}"));
            None
        }
    }
}

/// Runs the queue's CsqAcquireLock callback. `None` when the lock is held
/// by another CPU: the IoCsq routine then spins (a retry, before it did
/// anything), as it would in the callback; guest code the model calls
/// cannot itself be preempted.
fn csq_lock(uc: &mut Uc, csq: u64) -> Option<u64> {
    let scratch = *uc.get_data().io.csq_scratch.get(&csq)?;
    let cpu = uc.get_data().current_cpu;
    if let Some(word) = uc.get_data().io.csq_lock_word.get(&csq).copied()
        && uc
            .get_data()
            .sync
            .held
            .get(&word)
            .is_some_and(|&(_, holder)| holder != cpu)
        && crate::smp::active(uc)
    {
        crate::smp::request_retry(uc);
        return None;
    }
    let before: Vec<u64> = uc.get_data().sync.held.keys().copied().collect();
    csq_call(uc, csq, CSQ_ACQUIRE, &[csq, scratch])?;
    let taken = uc
        .get_data()
        .sync
        .held
        .keys()
        .copied()
        .find(|lock| !before.contains(lock));
    if let Some(word) = taken {
        uc.get_data_mut().io.csq_lock_word.insert(csq, word);
    }
    Some(scratch)
}

fn csq_unlock(uc: &mut Uc, csq: u64, scratch: u64) {
    let level = u64::from(uc.read_u8(scratch));
    csq_call(uc, csq, CSQ_RELEASE, &[csq, level]);
}

/// `NTSTATUS IoCsqInsertIrpEx(PIO_CSQ, PIRP, PIO_CSQ_IRP_CONTEXT, PVOID InsertContext)`.
pub fn io_csq_insert_irp_ex(uc: &mut Uc) -> u64 {
    let (csq, irp, context, insert_context) = (arg(uc, 0), arg(uc, 1), arg(uc, 2), arg(uc, 3));
    if !uc.get_data().io.csq_scratch.contains_key(&csq) {
        fatal(
            uc,
            Rule::Contract,
            format!("IoCsqInsertIrpEx({csq:#x}): queue not initialized"),
        );
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    let Some(scratch) = csq_lock(uc, csq) else {
        return STATUS_INVALID_PARAMETER as u32 as u64;
    };
    let status =
        csq_call(uc, csq, CSQ_INSERT, &[csq, irp, insert_context]).unwrap_or(0) as u32 as i32;
    if status < 0 {
        csq_unlock(uc, csq, scratch);
        return status as u32 as u64;
    }
    if context != 0 {
        uc.write_u32(context, 4);
        uc.write_u64(context + 8, irp);
        uc.write_u64(context + 16, csq);
        uc.write_u64(irp + IRP_DRIVER_CONTEXT + 24, context);
    } else {
        uc.write_u64(irp + IRP_DRIVER_CONTEXT + 24, csq);
    }
    // IoMarkIrpPending, then the cancel routine (IoSetCancelRoutine).
    let stack = stack_location(uc, irp);
    let control = uc.read_u8(stack + STACK_CONTROL);
    uc.write_u8(stack + STACK_CONTROL, control | SL_PENDING_RETURNED);
    uc.write_u64(irp + IRP_CANCEL_ROUTINE, CSQ_CANCEL_ROUTINE);
    if let Some(r) = uc.get_data_mut().io.irps.get_mut(&irp) {
        r.in_csq = Some(csq);
    }
    // Cancelled before the cancel routine was set (CancelIoEx raced the
    // insert): the I/O manager found no routine to call, so the queue
    // takes the IRP back and completes it as cancelled (wdm.h IoCsq).
    if uc.read_u8(irp + IRP_CANCEL) != 0 {
        uc.write_u64(irp + IRP_CANCEL_ROUTINE, 0);
        csq_call(uc, csq, CSQ_REMOVE, &[csq, irp]);
        uc.write_u64(irp + IRP_DRIVER_CONTEXT + 24, 0);
        if let Some(r) = uc.get_data_mut().io.irps.get_mut(&irp) {
            r.in_csq = None;
        }
        csq_unlock(uc, csq, scratch);
        csq_call(uc, csq, CSQ_COMPLETE_CANCELED, &[csq, irp]);
        return 0;
    }
    csq_unlock(uc, csq, scratch);
    0
}

/// `PIRP IoCsqRemoveNextIrp(PIO_CSQ, PVOID PeekContext)`.
pub fn io_csq_remove_next_irp(uc: &mut Uc) -> u64 {
    let (csq, peek_context) = (arg(uc, 0), arg(uc, 1));
    let Some(scratch) = csq_lock(uc, csq) else {
        return 0;
    };
    let mut found = 0;
    let mut irp = csq_call(uc, csq, CSQ_PEEK, &[csq, 0, peek_context]).unwrap_or(0);
    let mut bound = 0;
    while irp != 0 && bound < 4096 {
        bound += 1;
        // IoSetCancelRoutine(irp, NULL): an IRP whose cancel routine is
        // already gone is being cancelled; skip it.
        let routine = uc.read_u64(irp + IRP_CANCEL_ROUTINE);
        uc.write_u64(irp + IRP_CANCEL_ROUTINE, 0);
        if routine == 0 {
            irp = csq_call(uc, csq, CSQ_PEEK, &[csq, irp, peek_context]).unwrap_or(0);
            continue;
        }
        csq_call(uc, csq, CSQ_REMOVE, &[csq, irp]);
        let context = uc.read_u64(irp + IRP_DRIVER_CONTEXT + 24);
        if context != csq && context != 0 {
            uc.write_u64(context + 8, 0);
        }
        uc.write_u64(irp + IRP_DRIVER_CONTEXT + 24, 0);
        if let Some(r) = uc.get_data_mut().io.irps.get_mut(&irp) {
            r.in_csq = None;
        }
        found = irp;
        break;
    }
    csq_unlock(uc, csq, scratch);
    found
}

/// `IoCancelIrp`, as the I/O manager runs it for a cancelled request: sets
/// Cancel, takes the cancel routine, and for a CSQ-queued IRP performs the
/// CSQ's cancel sequence (remove under the lock, CsqCompleteCanceledIrp).
pub fn cancel_irp(uc: &mut Uc, irp: u64) -> bool {
    uc.write_u8(irp + IRP_CANCEL, 1);
    let routine = uc.read_u64(irp + IRP_CANCEL_ROUTINE);
    uc.write_u64(irp + IRP_CANCEL_ROUTINE, 0);
    if routine == 0 {
        return false;
    }
    let previous = irql(uc);
    if routine == CSQ_CANCEL_ROUTINE {
        let context = uc.read_u64(irp + IRP_DRIVER_CONTEXT + 24);
        let csq = if uc.get_data().io.csq_scratch.contains_key(&context) {
            context
        } else {
            uc.read_u64(context + 16)
        };
        set_irql(uc, DISPATCH_LEVEL);
        if let Some(scratch) = csq_lock(uc, csq) {
            csq_call(uc, csq, CSQ_REMOVE, &[csq, irp]);
            if context != csq {
                uc.write_u64(context + 8, 0);
            }
            csq_unlock(uc, csq, scratch);
            csq_call(uc, csq, CSQ_COMPLETE_CANCELED, &[csq, irp]);
        }
    } else {
        set_irql(uc, DISPATCH_LEVEL);
        let device = uc.read_u64(stack_location(uc, irp) + STACK_DEVICE_OBJECT);
        if let Err(e) = call_guest(uc, routine, &[device, irp]) {
            uc.get_data_mut()
                .verifier
                .report(Rule::Fault, format!("cancel routine: {e}"));
        }
    }
    set_irql(uc, previous);
    true
}

/// IRPs that are pending (not completed) — for the unload check.
pub fn pending_irps(uc: &Uc) -> Vec<u64> {
    uc.get_data()
        .io
        .irps
        .iter()
        .filter(|(_, r)| r.completed.is_none())
        .map(|(a, _)| *a)
        .collect()
}

pub fn check_unloaded(uc: &mut Uc) {
    let devices: Vec<String> = uc
        .get_data()
        .io
        .devices
        .values()
        .map(|d| d.name.clone())
        .collect();
    if !devices.is_empty() {
        uc.get_data_mut().verifier.report(
            Rule::Registration,
            format!("devices not deleted: {devices:?}"),
        );
    }
    let links: Vec<String> = uc.get_data().io.symlinks.keys().cloned().collect();
    if !links.is_empty() {
        uc.get_data_mut().verifier.report(
            Rule::Registration,
            format!("symbolic links not deleted: {links:?}"),
        );
    }
    let pending = pending_irps(uc);
    if !pending.is_empty() {
        uc.get_data_mut().verifier.report(
            Rule::Irp,
            format!("{} IRPs left pending: {pending:x?}", pending.len()),
        );
    }
}

/// `PACCESS_TOKEN SeQuerySubjectContextToken(PSECURITY_SUBJECT_CONTEXT)`:
/// the client token if impersonating, else the primary token.
pub fn se_query_subject_context_token(uc: &mut Uc) -> u64 {
    let subject = arg(uc, 0);
    let client = uc.read_u64(subject);
    if client != 0 {
        client
    } else {
        uc.read_u64(subject + 16)
    }
}

/// `BOOLEAN SeTokenIsAdmin(PACCESS_TOKEN)`.
pub fn se_token_is_admin(uc: &mut Uc) -> u64 {
    let token = arg(uc, 0);
    match uc.get_data().io.tokens.get(&token).copied() {
        Some(admin) => u64::from(admin),
        None => {
            if let Some(p) = uc.get_data().ps.token_owner(token) {
                return u64::from(p.admin);
            }
            uc.get_data_mut().verifier.report(
                Rule::Contract,
                format!("SeTokenIsAdmin({token:#x}): not a token"),
            );
            0
        }
    }
}

/// Allocates a (non-admin or admin) token object for an opener.
pub fn new_token(uc: &mut Uc, admin: bool) -> u64 {
    let token = model_alloc(uc, 0x100);
    uc.get_data_mut().io.tokens.insert(token, admin);
    token
}
