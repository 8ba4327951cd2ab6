//! Filter Manager: `FltRegisterFilter` (reads the driver's FLT_REGISTRATION
//! and operation table), `FltStartFiltering` (offers the filter the
//! modelled volumes: the disk, and with `FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS`
//! the named-pipe and mailslot file systems, each through the driver's
//! InstanceSetupCallback, which may decline it), `FltUnregisterFilter`, and
//! name queries
//! (`FltGetFileNameInformation`, `FltGetDestinationFileNameInformation`,
//! `FltReleaseFileNameInformation`, `FltReferenceFileNameInformation`) with
//! reference counting, plus `FltGetRequestorProcessId`.
//!
//! Contracts (WDK reference): registration and unregistration at
//! PASSIVE_LEVEL; FltGetFileNameInformation and
//! FltGetDestinationFileNameInformation at IRQL <= APC_LEVEL; every name
//! information structure returned must be released exactly once.

use std::collections::{BTreeMap, HashMap};

use crate::api::rtl::write_unicode_at;
use crate::layout::*;
use crate::machine::{
    APC_LEVEL, PASSIVE_LEVEL, arg, fatal, irql, model_alloc, model_free, require_irql,
};
use crate::memory::*;
use crate::verifier::Rule;

pub const STATUS_FLT_NOT_INITIALIZED: i32 = 0xC01C_0007_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32;
pub const STATUS_FLT_INVALID_NAME_REQUEST: i32 = 0xC01C_0005_u32 as i32;
pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32;
pub const IRP_MJ_OPERATION_END: u8 = 0x80;
/// `IRP_PAGING_IO` in `FLT_IO_PARAMETER_BLOCK.IrpFlags` (wdm.h).
const IRP_PAGING_IO: u32 = 0x0000_0002;

/// The modelled disk volume every file lives on.
pub const VOLUME: &str = r"\Device\HarddiskVolume3";
/// The named-pipe file system's volume: every pipe's name starts with it.
pub const NPFS_VOLUME: &str = r"\Device\NamedPipe";
/// The mailslot file system's volume.
pub const MSFS_VOLUME: &str = r"\Device\Mailslot";
/// `STATUS_NOT_SUPPORTED`.
pub const STATUS_NOT_SUPPORTED: i32 = 0xC000_00BB_u32 as i32;
/// `FLT_FILE_NAME_OPENED` / `FLT_FILE_NAME_NORMALIZED` (fltkernel.h).
pub const FLT_FILE_NAME_OPENED: u32 = 0x02;
pub const FLT_FILE_NAME_NORMALIZED: u32 = 0x01;
/// `FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT` (fltkernel.h).
const FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT: u64 = 0x1;
/// `FLTFL_INSTANCE_SETUP_MANUAL_ATTACHMENT` (fltkernel.h): `fltmc attach`.
pub const FLTFL_INSTANCE_SETUP_MANUAL_ATTACHMENT: u64 = 0x2;
/// `FLTFL_INSTANCE_TEARDOWN_MANUAL` (fltkernel.h): `fltmc detach`.
pub const FLTFL_INSTANCE_TEARDOWN_MANUAL: u64 = 0x1;

/// The file systems the model mounts, as FltMgr tells an
/// InstanceSetupCallback about them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileSystem {
    /// NTFS on [`VOLUME`].
    Disk,
    /// The named-pipe file system, [`NPFS_VOLUME`].
    Npfs,
    /// The mailslot file system, [`MSFS_VOLUME`].
    Msfs,
}

impl FileSystem {
    /// The file system a name lives on (by its volume prefix).
    pub fn of(name: &[u16]) -> FileSystem {
        let starts = |prefix: &str| {
            let prefix: Vec<u16> = prefix.encode_utf16().collect();
            name.len() > prefix.len()
                && name[..prefix.len()] == prefix[..]
                && name[prefix.len()] == u16::from(b'\\')
        };
        if starts(NPFS_VOLUME) {
            FileSystem::Npfs
        } else if starts(MSFS_VOLUME) {
            FileSystem::Msfs
        } else {
            FileSystem::Disk
        }
    }

    pub fn volume_name(self) -> &'static str {
        match self {
            FileSystem::Disk => VOLUME,
            FileSystem::Npfs => NPFS_VOLUME,
            FileSystem::Msfs => MSFS_VOLUME,
        }
    }

    /// `FLT_FILESYSTEM_TYPE` (the ABI oracle's values; NTFS is 2).
    pub fn filesystem_type(self) -> u64 {
        match self {
            FileSystem::Disk => 2,
            FileSystem::Npfs => FLT_FSTYPE_NPFS as u64,
            FileSystem::Msfs => FLT_FSTYPE_MSFS as u64,
        }
    }

    /// `DEVICE_TYPE` of the volume (wdm.h `FILE_DEVICE_*`).
    pub fn device_type(self) -> u64 {
        match self {
            FileSystem::Disk => 0x08, // FILE_DEVICE_DISK_FILE_SYSTEM
            FileSystem::Npfs => 0x11, // FILE_DEVICE_NAMED_PIPE
            FileSystem::Msfs => 0x0C, // FILE_DEVICE_MAILSLOT
        }
    }
}

/// One instance of the filter on a volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance {
    pub fs: FileSystem,
    pub instance: u64,
    pub volume: u64,
}

impl Instance {
    /// Writes the FLT_RELATED_OBJECTS FltMgr passes for this instance (and
    /// `file_object`, 0 for none) at `at`.
    pub fn write_related(self, uc: &mut Uc, at: u64, filter: u64, file_object: u64) {
        uc.write_u16(at, RELATED_SIZE as u16);
        uc.write_u64(at + RO_FILTER, filter);
        uc.write_u64(at + RO_VOLUME, self.volume);
        uc.write_u64(at + RO_INSTANCE, self.instance);
        uc.write_u64(at + RO_FILE_OBJECT, file_object);
    }
}

#[derive(Clone, Debug)]
pub struct Operation {
    pub major: u8,
    pub flags: u32,
    pub pre: u64,
    pub post: u64,
}

#[derive(Debug, Default)]
pub struct Flt {
    pub filter: u64,
    pub operations: Vec<Operation>,
    pub unload_callback: u64,
    pub started: bool,
    /// `FLT_REGISTRATION.Flags`, `InstanceSetupCallback` and the two
    /// teardown callbacks (`InstanceTeardownStartCallback`,
    /// `InstanceTeardownCompleteCallback`).
    pub registration_flags: u32,
    pub instance_setup: u64,
    pub instance_teardown: [u64; 2],
    /// The disk volume's instance and volume (0 when not attached).
    pub instance: u64,
    pub volume: u64,
    /// Every instance the filter has (the disk's included).
    pub instances: Vec<Instance>,
    /// Each volume offered to the InstanceSetupCallback, and its answer.
    pub setup_answers: Vec<(FileSystem, i32)>,
    /// Name information blocks handed out → reference count.
    pub names: BTreeMap<u64, i64>,
    /// Normalized name of each file object.
    pub file_names: HashMap<u64, Vec<u16>>,
    /// Requestor pid of each callback data block.
    pub requestors: HashMap<u64, u32>,
}

pub fn flt_register_filter(uc: &mut Uc) -> u64 {
    let (_driver, registration, out) = (arg(uc, 0), arg(uc, 1), arg(uc, 2));
    require_irql(uc, "FltRegisterFilter", PASSIVE_LEVEL);
    if uc.get_data().flt.filter != 0 {
        uc.get_data_mut()
            .verifier
            .report(Rule::Contract, "FltRegisterFilter called twice".to_owned());
    }
    let size = uc.read_u16(registration);
    if size as usize != FLT_REGISTRATION_SIZE {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("FLT_REGISTRATION.Size is {size}, sizeof is {FLT_REGISTRATION_SIZE}"),
        );
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    if uc.read_u64(registration + REG_CONTEXTS) != 0 {
        fatal(
            uc,
            Rule::Contract,
            "the driver registers contexts, which the model does not implement".into(),
        );
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    let mut operations = Vec::new();
    let table = uc.read_u64(registration + REG_OPERATIONS);
    if table != 0 {
        for i in 0..64 {
            let entry = table + i * OPERATION_SIZE as u64;
            let major = uc.read_u8(entry + OP_MAJOR);
            if major == IRP_MJ_OPERATION_END {
                break;
            }
            operations.push(Operation {
                major,
                flags: uc.read_u32(entry + OP_FLAGS),
                pre: uc.read_u64(entry + OP_PRE),
                post: uc.read_u64(entry + OP_POST),
            });
        }
    }
    if uc.get_data_mut().inject("FltRegisterFilter") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    let filter = model_alloc(uc, 0x100);
    let unload = uc.read_u64(registration + REG_UNLOAD);
    let flags = uc.read_u32(registration + REG_FLAGS);
    let instance_setup = uc.read_u64(registration + REG_INSTANCE_SETUP);
    let instance_teardown = [
        uc.read_u64(registration + REG_INSTANCE_TEARDOWN_START),
        uc.read_u64(registration + REG_INSTANCE_TEARDOWN_COMPLETE),
    ];
    let flt = &mut uc.get_data_mut().flt;
    flt.registration_flags = flags;
    flt.instance_setup = instance_setup;
    flt.instance_teardown = instance_teardown;
    flt.filter = filter;
    flt.operations = operations;
    flt.unload_callback = unload;
    uc.write_u64(out, filter);
    0
}

pub fn flt_start_filtering(uc: &mut Uc) -> u64 {
    let filter = arg(uc, 0);
    require_irql(uc, "FltStartFiltering", PASSIVE_LEVEL);
    if filter != uc.get_data().flt.filter || filter == 0 {
        return STATUS_FLT_NOT_INITIALIZED as u32 as u64;
    }
    if uc.get_data_mut().inject("FltStartFiltering") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    // FltMgr offers the mounted volumes; the named-pipe and mailslot file
    // systems only to a filter that registered for them.
    let mut offered = vec![FileSystem::Disk];
    if uc.get_data().flt.registration_flags & FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS as u32 != 0 {
        offered.extend([FileSystem::Npfs, FileSystem::Msfs]);
    }
    for fs in offered {
        let instance = model_alloc(uc, 0x100);
        let volume = model_alloc(uc, 0x100);
        let setup = uc.get_data().flt.instance_setup;
        let status = if setup == 0 {
            // No callback: FltMgr attaches to every volume.
            0
        } else {
            let related = model_alloc(uc, RELATED_SIZE as u64);
            Instance {
                fs,
                instance,
                volume,
            }
            .write_related(uc, related, filter, 0);
            let args = [
                related,
                FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT,
                fs.device_type(),
                fs.filesystem_type(),
            ];
            // PASSIVE_LEVEL, the caller's (checked above).
            let result = crate::machine::call_guest(uc, setup, &args);
            model_free(uc, related);
            match result {
                Ok(status) => status as u32 as i32,
                Err(e) => {
                    fatal(
                        uc,
                        Rule::Fault,
                        format!("InstanceSetupCallback({fs:?}): {e}"),
                    );
                    return STATUS_INVALID_PARAMETER as u32 as u64;
                }
            }
        };
        uc.get_data_mut().flt.setup_answers.push((fs, status));
        if status < 0 {
            // Declined (STATUS_FLT_DO_NOT_ATTACH or any failure): no instance.
            model_free(uc, instance);
            model_free(uc, volume);
            continue;
        }
        let flt = &mut uc.get_data_mut().flt;
        flt.instances.push(Instance {
            fs,
            instance,
            volume,
        });
        if fs == FileSystem::Disk {
            flt.instance = instance;
            flt.volume = volume;
        }
    }
    uc.get_data_mut().flt.started = true;
    0
}

pub fn flt_unregister_filter(uc: &mut Uc) -> u64 {
    let filter = arg(uc, 0);
    require_irql(uc, "FltUnregisterFilter", PASSIVE_LEVEL);
    if filter == 0 || filter != uc.get_data().flt.filter {
        fatal(
            uc,
            Rule::Contract,
            format!("FltUnregisterFilter({filter:#x}): not a registered filter"),
        );
        return 0;
    }
    // No new callbacks from now on; the call returns once the ones in
    // flight on other CPUs have returned (FltMgr's rundown of the filter).
    uc.get_data_mut().flt.started = false;
    if crate::smp::in_flight_elsewhere(uc, crate::smp::CallKind::FltCallback) {
        crate::smp::request_retry(uc);
        return 0;
    }
    let instances = std::mem::take(&mut uc.get_data_mut().flt.instances);
    let blocks = instances
        .iter()
        .flat_map(|i| [i.instance, i.volume])
        .chain([filter]);
    for block in blocks.collect::<Vec<_>>() {
        if block != 0 {
            model_free(uc, block);
        }
    }
    let flt = &mut uc.get_data_mut().flt;
    flt.filter = 0;
    flt.started = false;
    flt.instance = 0;
    flt.volume = 0;
    flt.operations.clear();
    0
}

fn name_information(uc: &mut Uc, name: &[u16], format: u32) -> u64 {
    let bytes = 2 * name.len() as u64;
    let volume = utf16(FileSystem::of(name).volume_name());
    let block = model_alloc(
        uc,
        NAME_INFO_SIZE as u64 + bytes + 2 * volume.len() as u64 + 4,
    );
    uc.write_u16(block, NAME_INFO_SIZE as u16);
    uc.write_u16(block + NI_NAMES_PARSED, 0);
    uc.write_u32(block + NI_FORMAT, format);
    let name_buffer = block + NAME_INFO_SIZE as u64;
    write_unicode_at(uc, block + NI_NAME, name_buffer, name);
    // Volume is a prefix of Name (same buffer), as FltMgr returns it.
    let volume_len = volume.len().min(name.len());
    uc.write_u16(block + NI_VOLUME, 2 * volume_len as u16);
    uc.write_u16(block + NI_VOLUME + 2, 2 * volume_len as u16);
    uc.write_u64(block + NI_VOLUME + 8, name_buffer);
    uc.get_data_mut().flt.names.insert(block, 1);
    block
}

/// `NTSTATUS FltGetFileNameInformation(PFLT_CALLBACK_DATA, FLT_FILE_NAME_OPTIONS, PFLT_FILE_NAME_INFORMATION*)`.
pub fn flt_get_file_name_information(uc: &mut Uc) -> u64 {
    let (data, options, out) = (arg(uc, 0), arg(uc, 1) as u32, arg(uc, 2));
    // Where FltMgr refuses (fltkernel.h FltGetFileNameInformation): above
    // APC_LEVEL (a Verifier finding too), and for paging I/O, where a name
    // query could deadlock with the file system.
    if irql(uc) > APC_LEVEL {
        require_irql(uc, "FltGetFileNameInformation", APC_LEVEL);
        return STATUS_FLT_INVALID_NAME_REQUEST as u32 as u64;
    }
    let iopb = uc.read_u64(data + CD_IOPB);
    if uc.read_u32(iopb + IOPB_IRP_FLAGS) & IRP_PAGING_IO != 0 {
        return STATUS_FLT_INVALID_NAME_REQUEST as u32 as u64;
    }
    let file_object = uc.read_u64(iopb + IOPB_TARGET_FILE_OBJECT);
    let Some(name) = uc.get_data().flt.file_names.get(&file_object).cloned() else {
        return STATUS_FLT_INVALID_NAME_REQUEST as u32 as u64;
    };
    // The named-pipe file system has a flat namespace and no short names
    // or links: FltMgr's normalization, which walks a volume's
    // directories, is not what it answers; a pipe's name is its opened
    // name. The model refuses a normalized query there, so a driver that
    // asked for one would get no pipe name at all.
    if FileSystem::of(&name) == FileSystem::Npfs && options & 0xFF != FLT_FILE_NAME_OPENED {
        return STATUS_NOT_SUPPORTED as u32 as u64;
    }
    if uc.get_data_mut().inject("FltGetFileNameInformation") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    let info = name_information(uc, &name, options & 0xFF);
    uc.write_u64(out, info);
    0
}

/// `NTSTATUS FltGetDestinationFileNameInformation(PFLT_INSTANCE, PFILE_OBJECT,
/// HANDLE RootDirectory, PWSTR FileName, ULONG FileNameLength, FLT_FILE_NAME_OPTIONS,
/// PFLT_FILE_NAME_INFORMATION*)`.
pub fn flt_get_destination_file_name_information(uc: &mut Uc) -> u64 {
    let (_instance, file_object, _root, file_name, length) = (
        arg(uc, 0),
        arg(uc, 1),
        arg(uc, 2),
        arg(uc, 3),
        // A ULONG: the caller writes only the low half of its stack slot.
        arg(uc, 4) as u32 as usize,
    );
    let (options, out) = (arg(uc, 5) as u32, arg(uc, 6));
    require_irql(uc, "FltGetDestinationFileNameInformation", APC_LEVEL);
    let raw: Vec<u16> = uc
        .read_bytes(file_name, length)
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    if uc
        .get_data_mut()
        .inject("FltGetDestinationFileNameInformation")
    {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    // A full path stays as is; a bare name is relative to the source's directory.
    let name = if raw.first() == Some(&u16::from(b'\\')) {
        raw
    } else {
        let source = uc
            .get_data()
            .flt
            .file_names
            .get(&file_object)
            .cloned()
            .unwrap_or_default();
        let cut = source
            .iter()
            .rposition(|c| *c == u16::from(b'\\'))
            .map_or(0, |i| i + 1);
        let mut full = source[..cut].to_vec();
        full.extend_from_slice(&raw);
        full
    };
    let info = name_information(uc, &name, options & 0xFF);
    uc.write_u64(out, info);
    0
}

pub fn flt_release_file_name_information(uc: &mut Uc) -> u64 {
    let info = arg(uc, 0);
    match uc.get_data_mut().flt.names.get_mut(&info) {
        Some(count) => {
            *count -= 1;
            if *count == 0 {
                uc.get_data_mut().flt.names.remove(&info);
                model_free(uc, info);
            }
        }
        None => uc.get_data_mut().verifier.report(
            Rule::NameInformation,
            format!("FltReleaseFileNameInformation({info:#x}): not outstanding (double release?)"),
        ),
    }
    0
}

pub fn flt_reference_file_name_information(uc: &mut Uc) -> u64 {
    let info = arg(uc, 0);
    match uc.get_data_mut().flt.names.get_mut(&info) {
        Some(count) => *count += 1,
        None => uc.get_data_mut().verifier.report(
            Rule::NameInformation,
            format!("FltReferenceFileNameInformation({info:#x}): not outstanding"),
        ),
    }
    0
}

pub fn flt_get_requestor_process_id(uc: &mut Uc) -> u64 {
    let data = arg(uc, 0);
    u64::from(
        uc.get_data()
            .flt
            .requestors
            .get(&data)
            .copied()
            .unwrap_or(0),
    )
}

/// Name information still referenced after a callback returned.
pub fn check_names_released(uc: &mut Uc, context: &str) {
    let outstanding: Vec<u64> = uc.get_data().flt.names.keys().copied().collect();
    if !outstanding.is_empty() {
        uc.get_data_mut().verifier.report(
            Rule::NameInformation,
            format!(
                "{context}: {} FLT_FILE_NAME_INFORMATION not released: {outstanding:x?}",
                outstanding.len()
            ),
        );
        uc.get_data_mut().flt.names.clear();
    }
}

pub fn check_unloaded(uc: &mut Uc) {
    if uc.get_data().flt.filter != 0 {
        uc.get_data_mut()
            .verifier
            .report(Rule::Registration, "minifilter still registered".to_owned());
    }
    check_names_released(uc, "at unload");
}
