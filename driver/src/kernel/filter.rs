//! The minifilter (fltkernel.h): registration and the operation callbacks
//! for create (post), write (pre), set-information (pre and post) and
//! cleanup (pre).
//!
//! Renames and deletes are reported with their outcome: the pre-operation
//! callback takes the file's current name and asks FltMgr to synchronize
//! (`FLT_PREOP_SYNCHRONIZE`), so the post-operation callback runs at
//! PASSIVE_LEVEL in the same thread once the file system completed the
//! request; only a successful rename or delete produces a record (a
//! failed one changed nothing on disk).
//!
//! Named pipes: the filter registers with
//! `FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS`, so FltMgr offers it the
//! named-pipe (NPFS) and mailslot (MSFS) volumes; its InstanceSetupCallback
//! declines MSFS and remembers the NPFS instance (forgotten again by the
//! InstanceTeardownCompleteCallback when it is detached). A successful
//! `IRP_MJ_CREATE_NAMED_PIPE` is a server creating a pipe instance (Sysmon
//! 17); a successful `IRP_MJ_CREATE` on the NPFS instance is a client
//! connecting (Sysmon 18), never a FileCreate. Pipe names are FltMgr's
//! opened names (`\Device\NamedPipe\<name>`): NPFS has no normalized
//! names to offer.
//!
//! Names are queried with `FltGetFileNameInformation` only at IRQL <=
//! APC_LEVEL; above that the event is dropped and counted as
//! `DropReason::Irql`. Every callback returns "no post-callback" /
//! "finished" and never fails or blocks the user's I/O.

use super::nt::DispatchRing;
use core::ffi::c_void;
use core::sync::atomic::Ordering;

use ringside_driver::first_write::WriteSeen;
use ringside_driver::in_flight::Names;
use ringside_driver::record::{
    FileCreateFacts, FileDeleteFacts, FileNameFacts, FileRenameFacts, NamedPipeFacts,
    SetInformation, classify_set_information, create_interest, opened, rename_target,
};
use ringside_driver::ring::Ring;
use ringside_driver::wdk::{self, SetFileInformationParameters};
use ringside_wire::{DropReason, EventKind, PIPE_OP_CONNECTED, PIPE_OP_CREATED};
use windows_sys::Wdk::Foundation::{DRIVER_OBJECT, FILE_OBJECT};
use windows_sys::Wdk::Storage::FileSystem::Minifilters::{
    FLT_CALLBACK_DATA, FLT_FILE_NAME_INFORMATION, FLT_FILE_NAME_NORMALIZED, FLT_FILE_NAME_OPENED,
    FLT_FILE_NAME_QUERY_DEFAULT, FLT_IO_PARAMETER_BLOCK, FLT_OPERATION_REGISTRATION,
    FLT_PARAMETERS, FLT_REGISTRATION, FLT_REGISTRATION_VERSION, FLT_RELATED_OBJECTS,
    FltGetDestinationFileNameInformation, FltGetFileNameInformation, FltGetRequestorProcessId,
    FltRegisterFilter, FltReleaseFileNameInformation, FltStartFiltering, FltUnregisterFilter,
    PFLT_FILTER,
};

use super::globals::{Globals, NO_INSTANCE, acquired, globals};
use super::notify::{after_emit, origin};
use super::nt;

const IRP_MJ_CREATE: u8 = 0x00;
const IRP_MJ_WRITE: u8 = 0x04;
const IRP_MJ_SET_INFORMATION: u8 = 0x06;
const IRP_MJ_CLEANUP: u8 = 0x12;
const IRP_MJ_OPERATION_END: u8 = 0x80;
const IRP_PAGING_IO: u32 = 0x0000_0002;
const FLTFL_POST_OPERATION_DRAINING: u32 = 0x0000_0001;
const FLTFL_FILTER_UNLOAD_MANDATORY: u32 = 0x0000_0001;
/// `FLT_PREOP_SUCCESS_NO_CALLBACK`.
const PREOP_NO_CALLBACK: i32 = 1;
/// `FLT_PREOP_SYNCHRONIZE`: the post-operation callback runs at
/// PASSIVE_LEVEL in the requesting thread.
const PREOP_SYNCHRONIZE: i32 = 5;
/// `FLT_POSTOP_FINISHED_PROCESSING`.
const POSTOP_FINISHED: i32 = 0;

/// Operation table (terminated by IRP_MJ_OPERATION_END). A `static` so
/// FltMgr may keep pointing at it; never written.
struct Operations([FLT_OPERATION_REGISTRATION; 6]);
// SAFETY: read-only after link; the raw pointers in it are null.
unsafe impl Sync for Operations {}

static OPERATIONS: Operations = Operations([
    operation(IRP_MJ_CREATE, None, Some(post_create)),
    operation(IRP_MJ_WRITE, Some(pre_write), None),
    operation(
        IRP_MJ_SET_INFORMATION,
        Some(pre_set_information),
        Some(post_set_information),
    ),
    operation(IRP_MJ_CLEANUP, Some(pre_cleanup), None),
    operation(
        wdk::IRP_MJ_CREATE_NAMED_PIPE,
        None,
        Some(post_create_named_pipe),
    ),
    operation(IRP_MJ_OPERATION_END, None, None),
]);

/// The registration FltMgr reads; a `static` like the WDK samples' global.
struct Registration(FLT_REGISTRATION);
// SAFETY: read-only after link; its pointers refer to other statics.
unsafe impl Sync for Registration {}

static REGISTRATION: Registration = Registration(FLT_REGISTRATION {
    Size: size_of::<FLT_REGISTRATION>() as u16,
    Version: FLT_REGISTRATION_VERSION as u16,
    Flags: wdk::FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS,
    ContextRegistration: core::ptr::null(),
    OperationRegistration: OPERATIONS.0.as_ptr(),
    FilterUnloadCallback: Some(filter_unload),
    InstanceSetupCallback: Some(instance_setup),
    InstanceQueryTeardownCallback: None,
    InstanceTeardownStartCallback: None,
    InstanceTeardownCompleteCallback: Some(instance_teardown_complete),
    GenerateFileNameCallback: None,
    NormalizeNameComponentCallback: None,
    NormalizeContextCleanupCallback: None,
    TransactionNotificationCallback: None,
    NormalizeNameComponentExCallback: None,
    SectionNotificationCallback: None,
});

type PreOp = unsafe extern "system" fn(
    *mut FLT_CALLBACK_DATA,
    *const FLT_RELATED_OBJECTS,
    *mut *mut c_void,
) -> i32;
type PostOp = unsafe extern "system" fn(
    *mut FLT_CALLBACK_DATA,
    *const FLT_RELATED_OBJECTS,
    *const c_void,
    u32,
) -> i32;

const fn operation(
    major: u8,
    pre: Option<PreOp>,
    post: Option<PostOp>,
) -> FLT_OPERATION_REGISTRATION {
    FLT_OPERATION_REGISTRATION {
        MajorFunction: major,
        Flags: 0,
        PreOperation: pre,
        PostOperation: post,
        Reserved1: core::ptr::null_mut(),
    }
}

/// Registers the filter (DriverEntry, PASSIVE_LEVEL). Filtering starts
/// in [`start`], after every other resource exists.
///
/// # Safety
/// `driver` is DriverEntry's driver object.
pub unsafe fn register(driver: *mut DRIVER_OBJECT, g: &Globals) -> i32 {
    let mut filter: PFLT_FILTER = 0;
    // SAFETY: PASSIVE_LEVEL; the registration and its operation table are
    // statics, valid for as long as the image is loaded (as the samples'
    // `const FLT_REGISTRATION` globals are).
    let status = unsafe { FltRegisterFilter(driver, &REGISTRATION.0, &mut filter) };
    if nt::nt_success(status) {
        g.filter.store(filter, Ordering::Release);
        g.acquired.fetch_or(acquired::FILTER, Ordering::AcqRel);
    }
    status
}

/// `FltStartFiltering`: the last step of DriverEntry.
pub fn start(g: &Globals) -> i32 {
    // SAFETY: PASSIVE_LEVEL; a registered filter.
    unsafe { FltStartFiltering(g.filter.load(Ordering::Acquire)) }
}

/// `FltUnregisterFilter`, if registered (teardown, PASSIVE_LEVEL). FltMgr
/// waits for outstanding callbacks of this filter before returning.
pub fn unregister(g: &Globals) {
    if g.acquired.fetch_and(!acquired::FILTER, Ordering::AcqRel) & acquired::FILTER != 0 {
        let filter = g.filter.swap(0, Ordering::AcqRel);
        // SAFETY: PASSIVE_LEVEL; the filter we registered, unregistered once.
        unsafe { FltUnregisterFilter(filter) };
        // Its instances are gone with it.
        g.npfs_instance.store(NO_INSTANCE, Ordering::Release);
    }
}

/// `PFLT_INSTANCE_SETUP_CALLBACK` (PASSIVE_LEVEL, before FltMgr delivers
/// any operation on the volume): attaches to every volume FltMgr offers
/// except the mailslot file system, and remembers the named-pipe one.
unsafe extern "system" fn instance_setup(
    objects: *const FLT_RELATED_OBJECTS,
    _flags: u32,
    _volume_device_type: u32,
    filesystem_type: i32,
) -> i32 {
    match filesystem_type {
        wdk::FLT_FSTYPE_MSFS => wdk::STATUS_FLT_DO_NOT_ATTACH,
        wdk::FLT_FSTYPE_NPFS => {
            // SAFETY: PASSIVE_LEVEL; FltMgr's related objects are valid and
            // not written by anyone for the callback's duration; only the
            // instance pointer is copied out.
            let instance = unsafe { objects.as_ref() }.map_or(0, |o| o.Instance);
            // Release pairs with the Acquire in `on_npfs`: FltMgr delivers
            // no operation on this instance before this callback returned.
            // A null instance is never stored: a missing FLT_RELATED_OBJECTS
            // reads as 0 in `on_npfs`, and must not match.
            if instance != 0 {
                globals().npfs_instance.store(instance, Ordering::Release);
            }
            nt::status::SUCCESS
        }
        _ => nt::status::SUCCESS,
    }
}

/// `PFLT_INSTANCE_TEARDOWN_CALLBACK` for teardown complete (PASSIVE_LEVEL;
/// every operation of the instance has completed and none will come):
/// `fltmc detach`, a dismount or the filter's unload. The NPFS instance is
/// forgotten here: FltMgr frees its memory afterwards and may reuse it for
/// an instance on another volume, whose every file open would otherwise
/// compare equal in `on_npfs` and be taken for a pipe connect.
unsafe extern "system" fn instance_teardown_complete(
    objects: *const FLT_RELATED_OBJECTS,
    _reason: u32,
) {
    // SAFETY: PASSIVE_LEVEL; FltMgr's related objects are valid and not
    // written by anyone for the callback's duration; only the instance
    // pointer is copied out.
    let instance = unsafe { objects.as_ref() }.map_or(0, |o| o.Instance);
    // Only the NPFS instance is forgotten; a disk instance's teardown
    // leaves it. AcqRel pairs with `on_npfs`'s Acquire and
    // `instance_setup`'s Release.
    let _ = globals().npfs_instance.compare_exchange(
        instance,
        NO_INSTANCE,
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
}

/// Whether the operation's instance is the filter's instance on the
/// named-pipe file system (one load, one compare).
///
/// # Safety
/// `objects` is the callback's related objects (or null).
unsafe fn on_npfs(g: &Globals, objects: *const FLT_RELATED_OBJECTS) -> bool {
    // SAFETY: FltMgr's related objects are valid for the callback (any
    // IRQL) and read-only for it; only the instance pointer is copied.
    let instance = unsafe { objects.as_ref() }.map_or(0, |o| o.Instance);
    // Acquire pairs with the Release in `instance_setup`. One compare: a
    // missing object reads as 0, and no instance is NO_INSTANCE, not 0.
    instance == g.npfs_instance.load(Ordering::Acquire)
}

/// `PFLT_FILTER_UNLOAD_CALLBACK` (`fltmc unload ringside`, service stop).
/// Refuses an optional unload while the agent is connected; a mandatory
/// one proceeds (pending READs are cancelled).
unsafe extern "system" fn filter_unload(flags: u32) -> i32 {
    let g = globals();
    if flags & FLTFL_FILTER_UNLOAD_MANDATORY == 0 && g.control.connected() {
        return nt::status::FLT_DO_NOT_DETACH;
    }
    super::driver::teardown(g);
    nt::status::SUCCESS
}

/// FltMgr's normalized name for the operation, released on drop.
struct Name(*mut FLT_FILE_NAME_INFORMATION);

impl Name {
    /// `format`: `FLT_FILE_NAME_NORMALIZED` (files) or
    /// `FLT_FILE_NAME_OPENED` (named pipes).
    ///
    /// # Safety
    /// `data` is the callback's data; IRQL <= APC_LEVEL (checked by caller).
    unsafe fn query(data: *mut FLT_CALLBACK_DATA, format: u32) -> Option<Name> {
        let mut info = core::ptr::null_mut();
        // SAFETY: valid callback data at IRQL <= APC_LEVEL.
        let status = unsafe {
            FltGetFileNameInformation(data, format | FLT_FILE_NAME_QUERY_DEFAULT, &mut info)
        };
        // `then`, not `then_some`: an eagerly built `Name` would be dropped
        // on failure and release a NULL name information (bugcheck).
        (nt::nt_success(status) && !info.is_null()).then(|| Name(info))
    }

    fn units(&self) -> &[u16] {
        // SAFETY: FltMgr keeps the name information alive and unchanged
        // until we release it in `drop`.
        let info = unsafe { &*self.0 };
        // SAFETY: the same holds for its Name buffer.
        unsafe { nt::units(&info.Name) }
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        // SAFETY: obtained from FltGet*NameInformation, released once.
        unsafe { FltReleaseFileNameInformation(self.0) };
    }
}

/// The name of the operation's file, or the drop reason.
///
/// # Safety
/// `data` is the callback's data.
unsafe fn name_or_drop(data: *mut FLT_CALLBACK_DATA) -> Result<Name, DropReason> {
    // SAFETY: the caller's contract.
    unsafe { name_in_format_or_drop(data, FLT_FILE_NAME_NORMALIZED) }
}

/// # Safety
/// `data` is the callback's data.
unsafe fn name_in_format_or_drop(
    data: *mut FLT_CALLBACK_DATA,
    format: u32,
) -> Result<Name, DropReason> {
    if nt::current_irql() > nt::APC_LEVEL {
        return Err(DropReason::Irql);
    }
    // SAFETY: IRQL checked; valid data.
    unsafe { Name::query(data, format) }.ok_or(DropReason::QueryFailed)
}

/// # Safety
/// `data` is valid callback data.
unsafe fn requestor(data: *mut FLT_CALLBACK_DATA) -> u32 {
    // SAFETY: valid callback data, any IRQL.
    unsafe { FltGetRequestorProcessId(data) }
}

fn drop_count(ring: &Ring<'_>, kind: EventKind, reason: DropReason) {
    ring.drop_event(kind, reason);
}

unsafe extern "system" fn post_create(
    data: *mut FLT_CALLBACK_DATA,
    objects: *const FLT_RELATED_OBJECTS,
    _context: *const c_void,
    flags: u32,
) -> i32 {
    if flags & FLTFL_POST_OPERATION_DRAINING != 0 {
        return POSTOP_FINISHED;
    }
    let g = globals();
    // SAFETY: FltMgr passes valid related objects for the callback.
    if unsafe { on_npfs(g, objects) } {
        // A client opening a pipe: Sysmon 18, never a FileCreate.
        if g.control.config.enabled(EventKind::NamedPipe) {
            // SAFETY: valid post-create data; post-create runs at
            // PASSIVE_LEVEL.
            unsafe { on_pipe(g, data, PIPE_OP_CONNECTED) };
        }
        return POSTOP_FINISHED;
    }
    g.with_rundown(|g| {
        // SAFETY: FltMgr passes valid data for the callback's duration;
        // post-create runs at PASSIVE_LEVEL.
        unsafe { on_create(g, data) }
    });
    POSTOP_FINISHED
}

/// `IRP_MJ_CREATE_NAMED_PIPE`'s post-operation callback: a server created
/// a pipe instance (Sysmon 17). Registered for every volume, but only NPFS
/// sees the operation.
unsafe extern "system" fn post_create_named_pipe(
    data: *mut FLT_CALLBACK_DATA,
    _objects: *const FLT_RELATED_OBJECTS,
    _context: *const c_void,
    flags: u32,
) -> i32 {
    if flags & FLTFL_POST_OPERATION_DRAINING != 0 {
        return POSTOP_FINISHED;
    }
    let g = globals();
    if g.control.config.enabled(EventKind::NamedPipe) {
        // SAFETY: valid post-operation data; like post-create, the
        // create-named-pipe post-operation runs at PASSIVE_LEVEL (checked
        // before the name query all the same).
        unsafe { on_pipe(g, data, PIPE_OP_CREATED) };
    }
    POSTOP_FINISHED
}

/// Reports a successful pipe create or connect: `operation` is a
/// `PIPE_OP_*`; the callers check the kind is on (off by CONFIGURE, a pipe
/// costs them one branch). A failed operation, or one reparsed elsewhere,
/// produces nothing (no record, no drop). Not inlined: its frame (the name, the record) stays out of
/// post-create's, which every file open on the machine runs through.
///
/// # Safety
/// `data` is a post-create or post-create-named-pipe callback's data.
#[inline(never)]
unsafe fn on_pipe(g: &Globals, data: *mut FLT_CALLBACK_DATA, operation: u32) {
    // SAFETY: FltMgr's callback data is valid for the callback, and not
    // written while its post-operation callbacks run.
    let d = unsafe { &*data };
    // SAFETY: Status is the active member of a completed operation's IoStatus.
    let status = unsafe { d.IoStatus.Anonymous.Status };
    if !opened(status) {
        return;
    }
    g.with_rundown(|g| {
        let Some(ring) = g.ring() else { return };
        // SAFETY: valid data.
        let pid = unsafe { requestor(data) };
        // SAFETY: valid data; the IRQL is checked before the query.
        match unsafe { name_in_format_or_drop(data, FLT_FILE_NAME_OPENED) } {
            Ok(name) => {
                let facts = NamedPipeFacts {
                    origin: origin(pid),
                    operation,
                    name: name.units(),
                };
                after_emit(g, facts.emit(&DispatchRing(ring), g.control.config.caps()));
            }
            Err(reason) => drop_count(ring, EventKind::NamedPipe, reason),
        }
    });
}

/// # Safety
/// `data` is a post-create's callback data.
unsafe fn on_create(g: &Globals, data: *mut FLT_CALLBACK_DATA) {
    let Some(ring) = g.ring() else { return };
    let config = &g.control.config;
    // SAFETY: FltMgr's callback data is valid for the callback.
    let d = unsafe { &*data };
    // SAFETY: so is its parameter block.
    let Some(iopb) = (unsafe { d.Iopb.as_ref() }) else {
        return;
    };
    // SAFETY: Status is the active member of a completed operation's IoStatus.
    let status = unsafe { d.IoStatus.Anonymous.Status };
    let information = d.IoStatus.Information;
    // SAFETY: Create is the active parameter member for IRP_MJ_CREATE.
    let create = unsafe { iopb.Parameters.Create };
    // SAFETY: the security context is valid during create.
    let desired_access = unsafe { create.SecurityContext.as_ref() }.map_or(0, |c| c.DesiredAccess);
    let interest = create_interest(status, information as u32, desired_access, create.Options);
    let want_create = interest.file_create && config.enabled(EventKind::FileCreate);
    let want_delete = interest.delete_on_close && config.enabled(EventKind::FileDelete);
    if !want_create && !want_delete {
        return;
    }
    // SAFETY: valid data.
    let pid = unsafe { requestor(data) };
    // SAFETY: valid data.
    let name = match unsafe { name_or_drop(data) } {
        Ok(name) => name,
        Err(reason) => {
            if want_create {
                drop_count(ring, EventKind::FileCreate, reason);
            }
            if want_delete {
                drop_count(ring, EventKind::FileDelete, reason);
            }
            return;
        }
    };
    let caps = config.caps();
    if want_create {
        let facts = FileCreateFacts {
            origin: origin(pid),
            desired_access,
            create_options: create.Options,
            information: information as u32,
            status,
            name: name.units(),
        };
        after_emit(g, facts.emit(&DispatchRing(ring), caps));
    }
    if want_delete {
        let facts = FileDeleteFacts::on_close(origin(pid), name.units());
        after_emit(g, facts.emit(&DispatchRing(ring), caps));
    }
}

/// The operation's target file object (the stream handle's identity).
///
/// # Safety
/// `data` is valid callback data.
unsafe fn target(data: *mut FLT_CALLBACK_DATA) -> Option<(*mut FILE_OBJECT, u32)> {
    // SAFETY: FltMgr's callback data is valid for the callback.
    let data = unsafe { &*data };
    // SAFETY: so is its parameter block.
    unsafe { data.Iopb.as_ref() }.map(|iopb| (iopb.TargetFileObject, iopb.IrpFlags))
}

unsafe extern "system" fn pre_write(
    data: *mut FLT_CALLBACK_DATA,
    objects: *const FLT_RELATED_OBJECTS,
    _context: *mut *mut c_void,
) -> i32 {
    let g = globals();
    let config = &g.control.config;
    // With both kinds off (the default) a write costs this branch, and no
    // rundown reference: every write on the machine comes through here,
    // every write into a pipe too since the filter attached to NPFS. (The
    // configuration is part of the static globals, readable at any time.)
    if !config.enabled(EventKind::FileWrite) && !config.enabled(EventKind::FileCloseModified) {
        return PREOP_NO_CALLBACK;
    }
    g.with_rundown(|g| {
        let Some(ring) = g.ring() else { return };
        let config = &g.control.config;
        // A write into a pipe is not a file write (and its handle is not
        // kept in the first-write set): one compare.
        // SAFETY: FltMgr passes valid related objects for the callback.
        if unsafe { on_npfs(g, objects) } {
            return;
        }
        // SAFETY: valid callback data.
        let Some((file, irp_flags)) = (unsafe { target(data) }) else {
            return;
        };
        // Paging writes come from the cache or a mapped view, not through a
        // user's handle; they are not "a write through a stream handle".
        if irp_flags & IRP_PAGING_IO != 0 {
            return;
        }
        match g.writes.record_write(file as usize) {
            WriteSeen::Again => {}
            WriteSeen::First | WriteSeen::Untracked => {
                if !config.enabled(EventKind::FileWrite) {
                    return;
                }
                // SAFETY: valid data.
                let pid = unsafe { requestor(data) };
                // SAFETY: valid data.
                match unsafe { name_or_drop(data) } {
                    Ok(name) => {
                        let facts = FileNameFacts {
                            origin: origin(pid),
                            name: name.units(),
                        };
                        after_emit(g, facts.emit_write(&DispatchRing(ring), config.caps()));
                    }
                    Err(reason) => drop_count(ring, EventKind::FileWrite, reason),
                }
            }
        }
    });
    PREOP_NO_CALLBACK
}

unsafe extern "system" fn pre_cleanup(
    data: *mut FLT_CALLBACK_DATA,
    _objects: *const FLT_RELATED_OBJECTS,
    _context: *mut *mut c_void,
) -> i32 {
    let g = globals();
    g.with_rundown(|g| {
        let Some(ring) = g.ring() else { return };
        // SAFETY: valid callback data.
        let Some((file, _)) = (unsafe { target(data) }) else {
            return;
        };
        // Always forget the handle, even if the kind is disabled now.
        if !g.writes.remove(file as usize)
            || !g.control.config.enabled(EventKind::FileCloseModified)
        {
            return;
        }
        // SAFETY: valid data.
        let pid = unsafe { requestor(data) };
        // SAFETY: valid data; pre-cleanup runs at PASSIVE_LEVEL.
        match unsafe { name_or_drop(data) } {
            Ok(name) => {
                let facts = FileNameFacts {
                    origin: origin(pid),
                    name: name.units(),
                };
                let caps = g.control.config.caps();
                after_emit(g, facts.emit_close_modified(&DispatchRing(ring), caps));
            }
            Err(reason) => drop_count(ring, EventKind::FileCloseModified, reason),
        }
    });
    PREOP_NO_CALLBACK
}

unsafe extern "system" fn pre_set_information(
    data: *mut FLT_CALLBACK_DATA,
    objects: *const FLT_RELATED_OBJECTS,
    context: *mut *mut c_void,
) -> i32 {
    let g = globals();
    // SAFETY: FltMgr passes valid data and related objects.
    let kept = g.with_rundown(|g| unsafe { before_set_information(g, data, objects) });
    match kept.flatten() {
        Some(slot) => {
            // SAFETY: FltMgr's completion-context out-parameter.
            unsafe { context.write(core::ptr::without_provenance_mut(slot)) };
            PREOP_SYNCHRONIZE
        }
        None => PREOP_NO_CALLBACK,
    }
}

/// For a rename or delete this sensor reports: takes the file's name and,
/// for a rename, the target's, and keeps both for the post-operation
/// callback. Returns the slot (the completion context), or `None` (not one,
/// not wanted, or the names could not be had: counted as dropped).
///
/// # Safety
/// Valid pre-set-information callback data and related objects.
unsafe fn before_set_information(
    g: &Globals,
    data: *mut FLT_CALLBACK_DATA,
    objects: *const FLT_RELATED_OBJECTS,
) -> Option<usize> {
    let ring = g.ring()?;
    // SAFETY: the caller's contract.
    let (class, info) = unsafe { set_information(data) }?;
    let (kind, rename) = match classify_set_information(class, info) {
        SetInformation::Ignore => return None,
        SetInformation::Rename { .. } => (EventKind::FileRename, true),
        SetInformation::Delete { .. } => (EventKind::FileDelete, false),
    };
    // A rename or delete of a pipe: the named-pipe file system refuses it,
    // and has no normalized name to query; asking would count a drop for
    // an event that cannot happen. The compare costs only the renames and
    // deletes (not every set-information).
    // SAFETY: the caller's contract.
    if !g.control.config.enabled(kind) || unsafe { on_npfs(g, objects) } {
        return None;
    }
    // SAFETY: valid data; pre-set-information runs at PASSIVE_LEVEL.
    let before = match unsafe { name_or_drop(data) } {
        Ok(name) => name,
        Err(reason) => {
            drop_count(ring, kind, reason);
            return None;
        }
    };
    let after = if rename {
        // SAFETY: the caller's contract; PASSIVE_LEVEL (name_or_drop checked).
        match unsafe { destination(info, objects) } {
            Some(name) => Some(name),
            None => {
                drop_count(ring, kind, DropReason::QueryFailed);
                return None;
            }
        }
    } else {
        None
    };
    let names = Names {
        before: before.0 as usize,
        after: after.as_ref().map_or(0, |n| n.0 as usize),
    };
    let Some(slot) = g.set_information.put(names) else {
        drop_count(ring, kind, DropReason::Contention);
        return None;
    };
    // The slot owns the references now; the post-operation callback
    // releases them (draining included).
    core::mem::forget(before);
    core::mem::forget(after);
    Some(slot)
}

/// The rename's target name (FltGetDestinationFileNameInformation, which
/// is made for the pre-operation callback of a rename).
///
/// # Safety
/// `info` is the rename's system buffer and `objects` the callback's
/// related objects; IRQL <= APC_LEVEL.
unsafe fn destination(info: &[u8], objects: *const FLT_RELATED_OBJECTS) -> Option<Name> {
    let target = rename_target(info)?;
    // SAFETY: valid related objects for the callback.
    let (instance, file) =
        unsafe { objects.as_ref() }.map_or((0, core::ptr::null()), |o| (o.Instance, o.FileObject));
    // `rename_target` checked that the name lies inside the buffer.
    let name = info.as_ptr().wrapping_add(target.name_offset).cast::<u16>();
    let mut new_info = core::ptr::null_mut();
    // SAFETY: IRQL <= APC_LEVEL (the caller's contract); the name pointer
    // and length lie inside the system buffer.
    let status = unsafe {
        FltGetDestinationFileNameInformation(
            instance,
            file,
            target.root_directory as usize as *mut c_void,
            name,
            target.name_len,
            FLT_FILE_NAME_NORMALIZED | FLT_FILE_NAME_QUERY_DEFAULT,
            &mut new_info,
        )
    };
    (nt::nt_success(status) && !new_info.is_null()).then(|| Name(new_info))
}

/// `Parameters.SetFileInformation` with the x64 layout (windows-sys's drops
/// `POINTER_ALIGNMENT`; see `ringside_driver::wdk`).
fn set_file_information(iopb: &FLT_IO_PARAMETER_BLOCK) -> SetFileInformationParameters {
    const _: () = assert!(
        core::mem::size_of::<FLT_PARAMETERS>() == wdk::FLT_PARAMETERS_SIZE
            && core::mem::align_of::<FLT_PARAMETERS>() == 8
    );
    let parameters = core::ptr::addr_of!(iopb.Parameters).cast::<SetFileInformationParameters>();
    // SAFETY: FLT_PARAMETERS is 48 bytes and 8-aligned (asserted above),
    // larger than the view; every bit pattern is a valid view (integers and
    // raw pointers). FltMgr filled it for IRP_MJ_SET_INFORMATION and does not
    // change it while the callbacks run, so the copy aliases nothing.
    unsafe { parameters.read() }
}

/// The operation's information class and system buffer.
///
/// # Safety
/// Valid set-information callback data; the slice lives as long as the
/// callback (pre or post) runs.
unsafe fn set_information<'a>(data: *mut FLT_CALLBACK_DATA) -> Option<(u32, &'a [u8])> {
    // SAFETY: FltMgr's callback data is valid for the callback.
    let d = unsafe { &*data };
    // SAFETY: so is its parameter block.
    let iopb = unsafe { d.Iopb.as_ref() }?;
    let params = set_file_information(iopb);
    let buffer = params.info_buffer.cast::<u8>().cast_const();
    let info: &[u8] = if buffer.is_null() {
        &[]
    } else {
        // SAFETY: IRP_MJ_SET_INFORMATION is buffered: InfoBuffer is a system
        // buffer of `Length` bytes, valid until the request completes, so in
        // the pre- and the post-operation callback.
        unsafe { core::slice::from_raw_parts(buffer, params.length as usize) }
    };
    Some((params.file_information_class, info))
}

unsafe extern "system" fn post_set_information(
    data: *mut FLT_CALLBACK_DATA,
    _objects: *const FLT_RELATED_OBJECTS,
    context: *const c_void,
    flags: u32,
) -> i32 {
    let g = globals();
    let Some(names) = g.set_information.take(context as usize) else {
        return POSTOP_FINISHED;
    };
    // Released when they go out of scope, whatever happens below.
    let before = Name(names.before as *mut FLT_FILE_NAME_INFORMATION);
    let after = (names.after != 0).then(|| Name(names.after as *mut FLT_FILE_NAME_INFORMATION));
    if flags & FLTFL_POST_OPERATION_DRAINING != 0 {
        return POSTOP_FINISHED;
    }
    g.with_rundown(|g| {
        // SAFETY: FltMgr passes valid data; synchronized, so PASSIVE_LEVEL.
        unsafe { after_set_information(g, data, &before, after.as_ref()) }
    });
    POSTOP_FINISHED
}

/// Reports a rename or delete the file system completed successfully.
///
/// # Safety
/// Valid post-set-information callback data.
unsafe fn after_set_information(
    g: &Globals,
    data: *mut FLT_CALLBACK_DATA,
    before: &Name,
    after: Option<&Name>,
) {
    let Some(ring) = g.ring() else { return };
    // SAFETY: FltMgr's callback data is valid for the callback.
    let d = unsafe { &*data };
    // SAFETY: Status is the active member once the request completed.
    let status = unsafe { d.IoStatus.Anonymous.Status };
    if !nt::nt_success(status) {
        // Nothing changed on disk: nothing to report.
        return;
    }
    // SAFETY: the caller's contract.
    let Some((class, info)) = (unsafe { set_information(data) }) else {
        return;
    };
    // SAFETY: valid data.
    let pid = unsafe { requestor(data) };
    let caps = g.control.config.caps();
    let emitted = match (classify_set_information(class, info), after) {
        (SetInformation::Delete { class, flags }, _) => FileDeleteFacts {
            origin: origin(pid),
            class,
            flags,
            name: before.units(),
        }
        .emit(&DispatchRing(ring), caps),
        (SetInformation::Rename { class, flags }, Some(after)) => FileRenameFacts {
            origin: origin(pid),
            class,
            flags,
            old_name: before.units(),
            new_name: after.units(),
        }
        .emit(&DispatchRing(ring), caps),
        _ => return,
    };
    after_emit(g, emitted);
}
