//! File system operations delivered to the minifilter as Filter Manager
//! delivers them: a FLT_CALLBACK_DATA with its FLT_IO_PARAMETER_BLOCK and a
//! FLT_RELATED_OBJECTS (ABI oracle layouts), the registered pre-operation
//! callback first and, when it returns FLT_PREOP_SUCCESS_WITH_CALLBACK (or
//! the filter registered only a post-operation callback), the post-operation
//! callback after the file system completed the request.
//!
//! Contracts modelled (WDK "Writing Preoperation/Postoperation Callback
//! Routines"): pre-operation callbacks for create, set-information and
//! cleanup run at PASSIVE_LEVEL; pre-write at IRQL <= APC_LEVEL; a
//! post-operation callback can run at IRQL <= DISPATCH_LEVEL, in an
//! arbitrary thread, and must not query names there. Name information handed
//! out during a callback must be released before it returns (checked).

use crate::api::flt::{
    FLTFL_INSTANCE_SETUP_MANUAL_ATTACHMENT, FLTFL_INSTANCE_TEARDOWN_MANUAL, FileSystem, Instance,
    check_names_released,
};
use crate::layout::*;
use crate::machine::{APC_LEVEL, DISPATCH_LEVEL, Machine, PASSIVE_LEVEL, model_alloc, model_free};
use crate::memory::*;

pub const IRP_MJ_CREATE: u8 = 0x00;
/// A server creating a pipe instance (the ABI oracle's value).
pub const IRP_MJ_CREATE_NAMED_PIPE: u8 = crate::layout::IRP_MJ_CREATE_NAMED_PIPE as u8;
pub const IRP_MJ_WRITE: u8 = 0x04;
pub const IRP_MJ_SET_INFORMATION: u8 = 0x06;
pub const IRP_MJ_CLEANUP: u8 = 0x12;

/// `FLT_PREOP_SUCCESS_WITH_CALLBACK`: FltMgr then calls the post-operation callback.
pub const FLT_PREOP_SUCCESS_WITH_CALLBACK: u64 = 0;
/// `FLT_PREOP_SYNCHRONIZE`: the post-operation callback runs at
/// PASSIVE_LEVEL in the requesting thread, once the request completed.
pub const FLT_PREOP_SYNCHRONIZE: u64 = 5;

/// Create results (`IoStatus.Information` of IRP_MJ_CREATE, wdm.h).
pub const FILE_SUPERSEDED: u64 = 0;
pub const FILE_OPENED: u64 = 1;
pub const FILE_CREATED: u64 = 2;
pub const FILE_OVERWRITTEN: u64 = 3;

/// Access and option bits (winnt.h / wdm.h).
pub const FILE_READ_DATA: u32 = 0x0001;
pub const FILE_WRITE_DATA: u32 = 0x0002;
pub const FILE_APPEND_DATA: u32 = 0x0004;
pub const SYNCHRONIZE: u32 = 0x0010_0000;
pub const GENERIC_WRITE: u32 = 0x4000_0000;
pub const DELETE: u32 = 0x0001_0000;
pub const FILE_DELETE_ON_CLOSE: u32 = 0x0000_1000;
pub const FILE_NON_DIRECTORY_FILE: u32 = 0x0000_0040;
/// `IRP_PAGING_IO` in `FLT_IO_PARAMETER_BLOCK.IrpFlags`.
pub const IRP_PAGING_IO: u32 = 0x0000_0002;

/// FILE_INFORMATION_CLASS values (wdm.h).
pub const FILE_RENAME_INFORMATION: u32 = 10;
pub const FILE_DISPOSITION_INFORMATION: u32 = 13;
pub const FILE_DISPOSITION_INFORMATION_EX: u32 = 64;

/// Who issues an operation and at which IRQL FltMgr calls the callbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requestor {
    pub pid: u32,
    pub tid: u32,
}

/// An open stream handle: its FILE_OBJECT (the driver's per-handle identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFile {
    pub file_object: u64,
}

/// One operation to deliver.
struct Operation<'a> {
    major: u8,
    file: OpenFile,
    who: Requestor,
    irp_flags: u32,
    /// Fills the operation's parameters; gets (callback data, iopb).
    parameters: &'a dyn Fn(&mut Machine, u64, u64),
    /// The file system's result, seen by the post-operation callback.
    status: i32,
    information: u64,
    /// IRQL of the pre-operation callback (PASSIVE_LEVEL, or APC_LEVEL
    /// for paging I/O, which the memory manager issues at APC_LEVEL).
    pre_irql: u8,
    /// IRQL of the post-operation callback: up to DISPATCH_LEVEL where
    /// the I/O completes in a DPC (writes), PASSIVE_LEVEL for creates.
    post_irql: u8,
}

impl Machine {
    /// A FILE_OBJECT for `name` (a normalized name on the modelled volume,
    /// e.g. `\Device\HarddiskVolume3\Users\alice\x.docx`); FltMgr's name
    /// queries for it answer `name`.
    pub fn new_file_object(&mut self, name: &str) -> OpenFile {
        let file_object = model_alloc(&mut self.uc, FILE_OBJECT_SIZE as u64);
        self.uc.write_u16(file_object, 5); // IO_TYPE_FILE
        self.kernel_mut()
            .flt
            .file_names
            .insert(file_object, name.encode_utf16().collect());
        OpenFile { file_object }
    }

    /// The handle's last reference went away (IRP_MJ_CLOSE): FltMgr forgets it.
    pub fn free_file_object(&mut self, file: OpenFile) {
        self.kernel_mut().flt.file_names.remove(&file.file_object);
        model_free(&mut self.uc, file.file_object);
    }

    /// Renames the FILE_OBJECT's stream in FltMgr's name cache (after a
    /// rename completed, queries return the new name).
    pub fn set_file_name(&mut self, file: OpenFile, name: &str) {
        self.kernel_mut()
            .flt
            .file_names
            .insert(file.file_object, name.encode_utf16().collect());
    }

    /// IRP_MJ_CREATE completed by the file system with (`status`,
    /// `information`). FltMgr calls both of its callbacks at PASSIVE_LEVEL
    /// (post-create is documented never to run above it), so there is no
    /// other IRQL to ask for.
    pub fn file_create(
        &mut self,
        who: Requestor,
        file: OpenFile,
        desired_access: u32,
        create_options: u32,
        status: i32,
        information: u64,
    ) -> Result<(), String> {
        let parameters = move |m: &mut Machine, _data: u64, iopb: u64| {
            // IO_SECURITY_CONTEXT: SecurityQos, AccessState, DesiredAccess, FullCreateOptions.
            let security = model_alloc(&mut m.uc, SECURITY_CONTEXT_SIZE as u64);
            m.uc.write_u32(security + SECURITY_CONTEXT_DESIRED_ACCESS, desired_access);
            m.uc.write_u32(
                security + SECURITY_CONTEXT_FULL_CREATE_OPTIONS,
                create_options,
            );
            m.uc.write_u64(iopb + CREATE_SECURITY_CONTEXT, security);
            m.uc.write_u32(iopb + CREATE_OPTIONS, create_options);
        };
        self.deliver(Operation {
            major: IRP_MJ_CREATE,
            file,
            who,
            irp_flags: 0,
            parameters: &parameters,
            status,
            information,
            pre_irql: PASSIVE_LEVEL,
            post_irql: PASSIVE_LEVEL,
        })
    }

    /// IRP_MJ_WRITE of `length` bytes through `file` (`paging`: a cache or
    /// mapped-view flush, IRP_PAGING_IO).
    pub fn file_write(
        &mut self,
        who: Requestor,
        file: OpenFile,
        length: u32,
        paging: bool,
    ) -> Result<(), String> {
        let parameters = move |m: &mut Machine, _data: u64, iopb: u64| {
            m.uc.write_u32(iopb + WRITE_LENGTH, length);
        };
        self.deliver(Operation {
            major: IRP_MJ_WRITE,
            file,
            who,
            irp_flags: if paging { IRP_PAGING_IO } else { 0 },
            parameters: &parameters,
            status: 0,
            information: u64::from(length),
            // The file system may complete a write in a DPC: its
            // post-operation callback then runs at DISPATCH_LEVEL.
            pre_irql: if paging { APC_LEVEL } else { PASSIVE_LEVEL },
            post_irql: DISPATCH_LEVEL,
        })
    }

    /// IRP_MJ_SET_INFORMATION with `class` and the raw information buffer,
    /// which the file system completes successfully.
    pub fn file_set_information(
        &mut self,
        who: Requestor,
        file: OpenFile,
        class: u32,
        info: &[u8],
    ) -> Result<(), String> {
        self.file_set_information_completing(who, file, class, info, 0)
    }

    /// IRP_MJ_SET_INFORMATION that the file system completes with `status`
    /// (e.g. STATUS_ACCESS_DENIED for a rename over a locked file).
    pub fn file_set_information_completing(
        &mut self,
        who: Requestor,
        file: OpenFile,
        class: u32,
        info: &[u8],
        status: i32,
    ) -> Result<(), String> {
        let info = info.to_vec();
        let parameters = move |m: &mut Machine, _data: u64, iopb: u64| {
            // Buffered: the I/O manager copied the caller's buffer into a system buffer.
            let buffer = model_alloc(&mut m.uc, info.len().max(1) as u64);
            m.uc.write_bytes(buffer, &info);
            m.uc.write_u32(iopb + SET_INFO_LENGTH, info.len() as u32);
            m.uc.write_u32(iopb + SET_INFO_CLASS, class);
            m.uc.write_u64(iopb + SET_INFO_BUFFER, buffer);
        };
        self.deliver(Operation {
            major: IRP_MJ_SET_INFORMATION,
            file,
            who,
            irp_flags: 0,
            parameters: &parameters,
            status,
            information: 0,
            pre_irql: PASSIVE_LEVEL,
            post_irql: PASSIVE_LEVEL,
        })
    }

    /// A rename to `new_name` (FILE_RENAME_INFORMATION: ReplaceIfExists,
    /// RootDirectory = NULL, FileNameLength, FileName), then FltMgr's name
    /// cache follows the file to its new name.
    pub fn file_rename(
        &mut self,
        who: Requestor,
        file: OpenFile,
        new_name: &str,
        replace: bool,
    ) -> Result<(), String> {
        let name: Vec<u8> = new_name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut info = vec![0u8; RENAME_FILE_NAME as usize];
        info[RENAME_REPLACE_IF_EXISTS as usize] = u8::from(replace);
        let length = RENAME_FILE_NAME_LENGTH as usize;
        info[length..length + 4].copy_from_slice(&(name.len() as u32).to_le_bytes());
        info.extend_from_slice(&name);
        self.file_set_information(who, file, FILE_RENAME_INFORMATION, &info)?;
        self.set_file_name(file, new_name);
        Ok(())
    }

    /// `FILE_DISPOSITION_INFORMATION { DeleteFile: TRUE }`.
    pub fn file_delete_disposition(
        &mut self,
        who: Requestor,
        file: OpenFile,
    ) -> Result<(), String> {
        let mut info = vec![0u8; DISPOSITION_SIZE];
        info[DISPOSITION_DELETE_FILE as usize] = 1;
        self.file_set_information(who, file, FILE_DISPOSITION_INFORMATION, &info)
    }

    /// IRP_MJ_CLEANUP: the last user handle to the FILE_OBJECT closed.
    pub fn file_cleanup(&mut self, who: Requestor, file: OpenFile) -> Result<(), String> {
        let parameters = |_: &mut Machine, _: u64, _: u64| {};
        self.deliver(Operation {
            major: IRP_MJ_CLEANUP,
            file,
            who,
            irp_flags: 0,
            parameters: &parameters,
            status: 0,
            information: 0,
            pre_irql: PASSIVE_LEVEL,
            post_irql: PASSIVE_LEVEL,
        })
    }

    /// A server's `CreateNamedPipe` of `pipe` (a FILE_OBJECT named
    /// `\Device\NamedPipe\<name>`): IRP_MJ_CREATE_NAMED_PIPE completed by
    /// the named-pipe file system with `status`. Its callbacks run at
    /// PASSIVE_LEVEL, as a create's do.
    pub fn pipe_create(
        &mut self,
        who: Requestor,
        pipe: OpenFile,
        status: i32,
    ) -> Result<(), String> {
        let parameters = |_: &mut Machine, _: u64, _: u64| {};
        self.deliver(Operation {
            major: IRP_MJ_CREATE_NAMED_PIPE,
            file: pipe,
            who,
            irp_flags: 0,
            parameters: &parameters,
            status,
            information: if status >= 0 { FILE_CREATED } else { 0 },
            pre_irql: PASSIVE_LEVEL,
            post_irql: PASSIVE_LEVEL,
        })
    }

    /// A client's `CreateFile` of `pipe`: IRP_MJ_CREATE on the named-pipe
    /// file system, completed with `status` (e.g. STATUS_PIPE_NOT_AVAILABLE
    /// when no instance listens).
    pub fn pipe_connect(
        &mut self,
        who: Requestor,
        pipe: OpenFile,
        status: i32,
    ) -> Result<(), String> {
        const GENERIC_READ: u32 = 0x8000_0000;
        let information = if status >= 0 { FILE_OPENED } else { 0 };
        self.file_create(
            who,
            pipe,
            GENERIC_READ | GENERIC_WRITE | SYNCHRONIZE,
            FILE_NON_DIRECTORY_FILE,
            status,
            information,
        )
    }

    /// The post-operation calls of a pipe create (`IRP_MJ_CREATE_NAMED_PIPE`)
    /// or connect (`IRP_MJ_CREATE` on the named-pipe file system) completed
    /// with `status`, to make on the CPUs of a multi-CPU run: FltMgr's
    /// callback data stays valid until the run is over (the model does not
    /// reuse it). None when the filter has no instance on NPFS.
    pub fn pipe_calls(
        &mut self,
        who: Requestor,
        pipe: OpenFile,
        major: u8,
        status: i32,
    ) -> Vec<crate::smp::GuestCall> {
        let posts: Vec<u64> = self
            .kernel()
            .flt
            .operations
            .iter()
            .filter(|o| o.major == major && o.post != 0)
            .map(|o| o.post)
            .collect();
        let Some(npfs) = self
            .kernel()
            .flt
            .instances
            .iter()
            .find(|i| i.fs == FileSystem::Npfs)
            .copied()
        else {
            return Vec::new();
        };
        let filter = self.kernel().flt.filter;
        posts
            .into_iter()
            .map(|post| {
                let data = model_alloc(
                    &mut self.uc,
                    (CALLBACK_DATA_SIZE + IOPB_SIZE + RELATED_SIZE) as u64,
                );
                let iopb = data + CALLBACK_DATA_SIZE as u64;
                let related = iopb + IOPB_SIZE as u64;
                let uc = &mut self.uc;
                uc.write_u32(data + CD_FLAGS, 0x0000_0001); // FLTFL_CALLBACK_DATA_IRP_OPERATION
                uc.write_u64(data + CD_THREAD, THREAD_BASE);
                uc.write_u64(data + CD_IOPB, iopb);
                uc.write_u8(data + CD_REQUESTOR_MODE, 1);
                uc.write_u8(iopb + IOPB_MAJOR, major);
                uc.write_u64(iopb + IOPB_TARGET_FILE_OBJECT, pipe.file_object);
                uc.write_u64(iopb + IOPB_TARGET_INSTANCE, npfs.instance);
                uc.write_u32(data + CD_IO_STATUS, status as u32);
                uc.write_u64(
                    data + CD_IO_STATUS + 8,
                    if status >= 0 { FILE_OPENED } else { 0 },
                );
                npfs.write_related(uc, related, filter, pipe.file_object);
                self.kernel_mut().flt.requestors.insert(data, who.pid);
                crate::smp::GuestCall {
                    label: format!("pipe major {major:#x} status {status:#x} by {}", who.pid),
                    kind: crate::smp::CallKind::FltCallback,
                    function: post,
                    args: vec![data, related, 0, 0],
                    irql: PASSIVE_LEVEL,
                    pid: who.pid,
                    tid: who.tid,
                    copy_before: None,
                }
            })
            .collect()
    }

    /// One CPU's share of a multi-CPU pipe run: `count` pipes
    /// `\Device\NamedPipe\cpu<cpu>_<i>`, each created by a server (pid
    /// `900 + cpu`) and connected to by a client (pid `1900 + cpu`; each
    /// thread id is its pid + 4). Every third connect (`i % 3 == 2`) fails
    /// with STATUS_PIPE_NOT_AVAILABLE (no instance listening).
    pub fn pipe_plan(&mut self, cpu: u32, count: u32) -> Vec<crate::smp::GuestCall> {
        const STATUS_PIPE_NOT_AVAILABLE: i32 = 0xC000_00AC_u32 as i32;
        let server = Requestor {
            pid: 900 + cpu,
            tid: 904 + cpu,
        };
        let client = Requestor {
            pid: 1900 + cpu,
            tid: 1904 + cpu,
        };
        (0..count)
            .flat_map(|i| {
                let pipe = self.new_file_object(&format!(r"\Device\NamedPipe\cpu{cpu}_{i}"));
                let status = if i % 3 == 2 {
                    STATUS_PIPE_NOT_AVAILABLE
                } else {
                    0
                };
                let mut calls = self.pipe_calls(server, pipe, IRP_MJ_CREATE_NAMED_PIPE, 0);
                calls.extend(self.pipe_calls(client, pipe, IRP_MJ_CREATE, status));
                calls
            })
            .collect()
    }

    /// Runs every registered callback for `op.major`, as FltMgr does for
    /// the filter's instance on the volume the file lives on (none when the
    /// filter has no instance there: it declined the volume, or was never
    /// offered it).
    /// `fltmc detach`: FltMgr tears the filter's instance on `fs` down. No
    /// operation of it is in flight (the model delivers one at a time), so
    /// the InstanceTeardownStartCallback and then the
    /// InstanceTeardownCompleteCallback, those the driver registered, run
    /// at PASSIVE_LEVEL with `FLTFL_INSTANCE_TEARDOWN_MANUAL`; from then on
    /// no operation on `fs` reaches the filter. The instance's memory is
    /// returned, not freed: FltMgr may hand it to the next instance it
    /// creates ([`Machine::attach`]); [`Machine::free_instance`] frees it.
    pub fn detach(&mut self, fs: FileSystem) -> Result<Instance, String> {
        let flt = &self.kernel().flt;
        let position = flt
            .instances
            .iter()
            .position(|i| i.fs == fs)
            .ok_or_else(|| format!("no instance on {fs:?}"))?;
        let (filter, callbacks) = (flt.filter, flt.instance_teardown);
        let instance = self.kernel_mut().flt.instances.remove(position);
        if fs == FileSystem::Disk {
            let flt = &mut self.kernel_mut().flt;
            (flt.instance, flt.volume) = (0, 0);
        }
        let related = self.related_objects(filter, instance);
        for callback in callbacks.into_iter().filter(|&c| c != 0) {
            let called = self.call_at(
                PASSIVE_LEVEL,
                callback,
                &[related, FLTFL_INSTANCE_TEARDOWN_MANUAL],
            );
            if let Err(e) = called {
                model_free(&mut self.uc, related);
                return Err(e);
            }
        }
        model_free(&mut self.uc, related);
        Ok(instance)
    }

    /// `fltmc attach`: FltMgr offers `fs` to the filter's
    /// InstanceSetupCallback (`FLTFL_INSTANCE_SETUP_MANUAL_ATTACHMENT`, at
    /// PASSIVE_LEVEL) with a new instance in `memory` (a block the pool
    /// handed out: a detached instance's, reused) and a new volume object.
    /// Returns the callback's status; an instance is attached on success,
    /// and `memory` freed otherwise.
    pub fn attach(&mut self, fs: FileSystem, memory: u64) -> Result<i32, String> {
        let flt = &self.kernel().flt;
        let (filter, setup) = (flt.filter, flt.instance_setup);
        let volume = model_alloc(&mut self.uc, 0x100);
        let instance = Instance {
            fs,
            instance: memory,
            volume,
        };
        let related = self.related_objects(filter, instance);
        let args = [
            related,
            FLTFL_INSTANCE_SETUP_MANUAL_ATTACHMENT,
            fs.device_type(),
            fs.filesystem_type(),
        ];
        let status = if setup == 0 {
            Ok(0)
        } else {
            self.call_at(PASSIVE_LEVEL, setup, &args)
                .map(|s| s as u32 as i32)
        };
        model_free(&mut self.uc, related);
        match status {
            Ok(status) if status >= 0 => {
                let flt = &mut self.kernel_mut().flt;
                flt.instances.push(instance);
                if fs == FileSystem::Disk {
                    (flt.instance, flt.volume) = (memory, volume);
                }
            }
            _ => self.free_instance(instance),
        }
        status
    }

    /// Frees a detached instance's memory and its volume object (either
    /// may be 0: already handed on or freed).
    pub fn free_instance(&mut self, instance: Instance) {
        for block in [instance.instance, instance.volume] {
            if block != 0 {
                model_free(&mut self.uc, block);
            }
        }
    }

    /// A FLT_RELATED_OBJECTS for `instance` (the caller frees it).
    fn related_objects(&mut self, filter: u64, instance: Instance) -> u64 {
        let related = model_alloc(&mut self.uc, RELATED_SIZE as u64);
        instance.write_related(&mut self.uc, related, filter, 0);
        related
    }

    fn deliver(&mut self, op: Operation<'_>) -> Result<(), String> {
        self.kernel_mut().clock += 10;
        self.kernel_mut().last_step_clock = self.kernel().clock;
        let registered: Vec<_> = self
            .kernel()
            .flt
            .operations
            .iter()
            .filter(|o| o.major == op.major)
            .cloned()
            .collect();
        if registered.is_empty() || !self.kernel().flt.started {
            return Ok(());
        }
        let fs = self
            .kernel()
            .flt
            .file_names
            .get(&op.file.file_object)
            .map_or(FileSystem::Disk, |name| FileSystem::of(name));
        let Some(attached) = self
            .kernel()
            .flt
            .instances
            .iter()
            .find(|i| i.fs == fs)
            .copied()
        else {
            return Ok(());
        };
        let block = model_alloc(
            &mut self.uc,
            (CALLBACK_DATA_SIZE + IOPB_SIZE + RELATED_SIZE + 16) as u64,
        );
        let data = block;
        let iopb = data + CALLBACK_DATA_SIZE as u64;
        let related = iopb + IOPB_SIZE as u64;
        let completion_context = related + RELATED_SIZE as u64;
        let filter = self.kernel().flt.filter;
        let uc = &mut self.uc;
        uc.write_u32(data + CD_FLAGS, 0x0000_0001); // FLTFL_CALLBACK_DATA_IRP_OPERATION
        uc.write_u64(data + CD_THREAD, THREAD_BASE);
        uc.write_u64(data + CD_IOPB, iopb);
        uc.write_u8(data + CD_REQUESTOR_MODE, 1); // UserMode
        uc.write_u32(iopb + IOPB_IRP_FLAGS, op.irp_flags);
        uc.write_u8(iopb + IOPB_MAJOR, op.major);
        uc.write_u64(iopb + IOPB_TARGET_FILE_OBJECT, op.file.file_object);
        uc.write_u64(iopb + IOPB_TARGET_INSTANCE, attached.instance);
        attached.write_related(uc, related, filter, op.file.file_object);
        (op.parameters)(self, data, iopb);
        self.kernel_mut().flt.requestors.insert(data, op.who.pid);
        self.set_current(op.who.pid, op.who.tid);
        let mut result = Ok(());
        for callbacks in registered {
            let mut call_post = callbacks.pre == 0;
            let mut post_irql = op.post_irql;
            if callbacks.pre != 0 {
                match self.call_at(
                    op.pre_irql,
                    callbacks.pre,
                    &[data, related, completion_context],
                ) {
                    Ok(status) => match status as u32 as u64 {
                        FLT_PREOP_SUCCESS_WITH_CALLBACK => call_post = true,
                        FLT_PREOP_SYNCHRONIZE => {
                            call_post = true;
                            post_irql = PASSIVE_LEVEL;
                        }
                        _ => {}
                    },
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                // A filter may keep name references for its post-operation
                // callback (FltMgr's are reference-counted); they must be
                // released by the time that one returns.
                if !call_post || callbacks.post == 0 {
                    check_names_released(&mut self.uc, "pre-operation callback returned");
                }
            }
            if call_post && callbacks.post != 0 {
                self.uc.write_u32(data + CD_IO_STATUS, op.status as u32);
                self.uc.write_u64(data + CD_IO_STATUS + 8, op.information);
                let context = self.uc.read_u64(completion_context);
                if let Err(e) =
                    self.call_at(post_irql, callbacks.post, &[data, related, context, 0])
                {
                    result = Err(e);
                    break;
                }
                check_names_released(&mut self.uc, "post-operation callback returned");
            }
        }
        self.kernel_mut().flt.requestors.remove(&data);
        // Parameter blocks the operation allocated (security context, system buffer).
        let extra = match op.major {
            IRP_MJ_CREATE => self.uc.read_u64(iopb + CREATE_SECURITY_CONTEXT),
            IRP_MJ_SET_INFORMATION => self.uc.read_u64(iopb + SET_INFO_BUFFER),
            _ => 0,
        };
        if extra != 0 {
            model_free(&mut self.uc, extra);
        }
        model_free(&mut self.uc, block);
        result
    }
}
