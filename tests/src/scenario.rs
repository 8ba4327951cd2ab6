//! Scripted machine activity: processes start and exit, images load. Each
//! step calls the driver's registered callbacks the way Windows does:
//! process notifications at PASSIVE_LEVEL in the creating thread's context
//! with a real PS_CREATE_NOTIFY_INFO, image notifications with a real
//! IMAGE_INFO. The clock advances 1 µs per step so timestamps are distinct.

use crate::api::rtl::alloc_unicode_string;
use crate::api::{cm, ob, ps};
use crate::layout::*;
use crate::machine::{Machine, PASSIVE_LEVEL, model_alloc};
use crate::memory::*;
use crate::smp::{CallKind, GuestCall};

/// A process to start.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub pid: u32,
    pub parent_pid: u32,
    pub creating_pid: u32,
    pub creating_tid: u32,
    pub image: String,
    pub command_line: String,
    pub user_sid: Vec<u8>,
    pub integrity_sid: Vec<u8>,
    /// The primary token's logon session (`TOKEN_STATISTICS.AuthenticationId`,
    /// `HighPart << 32 | LowPart`), e.g. [`SYSTEM_LOGON_ID`].
    pub logon_id: u64,
    pub admin: bool,
}

/// One registry value set, as its caller made it.
#[derive(Clone, Debug)]
pub struct RegistrySet {
    pub pid: u32,
    /// The key's object name, e.g. `\REGISTRY\MACHINE\SOFTWARE\...`.
    pub key: String,
    /// The value name (empty: the key's default value).
    pub value: String,
    /// `REG_SZ` (1), `REG_BINARY` (3), `REG_DWORD` (4), ...
    pub value_type: u32,
    pub data: Vec<u8>,
    /// The operation's outcome (the post-notification's Status).
    pub status: i32,
}

/// A registry key operation other than a value set.
#[derive(Clone, Debug)]
pub enum KeyOp {
    /// `RegCreateKeyEx` / `ZwCreateKey` (`RegNtPreCreateKeyEx`, then
    /// `RegNtPostCreateKeyEx` with the created key's object).
    Create,
    /// `RegDeleteKey` / `ZwDeleteKey`.
    Delete,
    /// `RegDeleteValue` / `ZwDeleteValueKey` of this value (empty: the
    /// default value).
    DeleteValue(String),
    /// `RegRenameKey` / `ZwRenameKey` to this new last component.
    Rename(String),
}

/// One registry key operation, as its caller made it.
#[derive(Clone, Debug)]
pub struct RegistryKeyOp {
    pub pid: u32,
    /// The key's object name, e.g. `\REGISTRY\MACHINE\SOFTWARE\...`.
    pub key: String,
    pub op: KeyOp,
    /// The operation's outcome (the post-notification's Status).
    pub status: i32,
}

/// One process or thread handle operation, as its caller made it
/// (`OpenProcess`, `OpenThread`, `DuplicateHandle`).
#[derive(Clone, Debug)]
pub struct HandleOp {
    /// The requesting process and thread (the current ones during the
    /// callbacks).
    pub source_pid: u32,
    pub source_tid: u32,
    pub target_pid: u32,
    /// A thread handle to this thread of `target_pid`; `None`: a process
    /// handle.
    pub target_tid: Option<u32>,
    /// What the caller asked for (`OriginalDesiredAccess`).
    pub desired: u32,
    /// What the handle got (`GrantedAccess`).
    pub granted: u32,
    /// `DuplicateHandle` rather than an open.
    pub duplicate: bool,
    /// `KernelHandle`: opened by kernel-mode code.
    pub kernel_handle: bool,
    /// The operation's outcome (the post-operation `ReturnStatus`).
    pub status: i32,
    /// The requesting thread's user-mode return addresses, innermost first.
    pub frames: Vec<u64>,
}

impl HandleOp {
    /// `source` opening process `target` with `access` (granted as asked),
    /// from a call trace of `frames` return addresses.
    pub fn open_process(source: u32, target: u32, access: u32, frames: Vec<u64>) -> Self {
        HandleOp {
            source_pid: source,
            source_tid: source + 4,
            target_pid: target,
            target_tid: None,
            desired: access,
            granted: access,
            duplicate: false,
            kernel_handle: false,
            status: 0,
            frames,
        }
    }
}

/// One thread creation, as its creator made it (`CreateRemoteThread`,
/// `NtCreateThreadEx`, or a process starting a thread in itself).
#[derive(Clone, Copy, Debug)]
pub struct ThreadCreate {
    /// The creating thread's process and id: the context the notify
    /// routine runs in.
    pub source_pid: u32,
    pub source_tid: u32,
    /// The process the new thread runs in.
    pub target_pid: u32,
    pub new_tid: u32,
    /// Its Win32 start address.
    pub start_address: u64,
    /// The IRQL the routine is called at: PASSIVE_LEVEL, or APC_LEVEL (the
    /// routine's documented maximum).
    pub irql: u8,
}

/// The LUID of the SYSTEM logon session (`SYSTEM_LUID`, winnt.h: 0x3e7).
pub const SYSTEM_LOGON_ID: u64 = 0x3e7;

/// An interactive user's logon session, as real Sysmon events show them
/// (SigmaHQ's samples: `0x7e2aa`).
pub const USER_LOGON_ID: u64 = 0x7_e2aa;

/// A binary SID: S-1-5-21-a-b-c-rid.
pub fn domain_sid(rid: u32) -> Vec<u8> {
    let mut sid = vec![1, 5, 0, 0, 0, 0, 0, 5];
    for part in [21u32, 1_004_336_348, 1_177_238_915, 682_003_330, rid] {
        sid.extend_from_slice(&part.to_le_bytes());
    }
    sid
}

/// A mandatory-label SID: S-1-16-level (0x2000 medium, 0x3000 high).
pub fn integrity_sid(level: u32) -> Vec<u8> {
    let mut sid = vec![1, 1, 0, 0, 0, 0, 0, 16];
    sid.extend_from_slice(&level.to_le_bytes());
    sid
}

impl Machine {
    fn step_clock(&mut self) {
        self.kernel_mut().clock += 10;
        self.kernel_mut().last_step_clock = self.kernel().clock;
    }

    /// Process creation: every registered PsSetCreateProcessNotifyRoutineEx
    /// routine gets (Process, ProcessId, CreateInfo). Returns the EPROCESS.
    pub fn process_create(&mut self, spec: &ProcessSpec) -> Result<u64, String> {
        self.step_clock();
        let eprocess = ps::new_process(
            &mut self.uc,
            spec.pid,
            spec.admin,
            spec.user_sid.clone(),
            spec.integrity_sid.clone(),
            spec.logon_id,
        );
        let info = model_alloc(&mut self.uc, CREATE_INFO_SIZE as u64);
        let image = alloc_unicode_string(&mut self.uc, &spec.image);
        let command_line = alloc_unicode_string(&mut self.uc, &spec.command_line);
        let uc = &mut self.uc;
        uc.write_u64(info + CI_SIZE, CREATE_INFO_SIZE as u64);
        uc.write_u32(info + CI_FLAGS, 1); // FileOpenNameAvailable
        uc.write_u64(info + CI_PARENT, u64::from(spec.parent_pid));
        uc.write_u64(info + CI_CREATING_THREAD, u64::from(spec.creating_pid));
        uc.write_u64(info + CI_CREATING_THREAD + 8, u64::from(spec.creating_tid));
        uc.write_u64(info + CI_IMAGE_FILE_NAME, image);
        uc.write_u64(info + CI_COMMAND_LINE, command_line);
        uc.write_u32(info + CI_CREATION_STATUS, 0);
        self.set_current(spec.creating_pid, spec.creating_tid);
        let routines = self.kernel().ps.process_notify.clone();
        for routine in routines {
            self.call_at(
                PASSIVE_LEVEL,
                routine,
                &[eprocess, u64::from(spec.pid), info],
            )?;
        }
        Ok(eprocess)
    }

    /// Process exit: CreateInfo is NULL; runs in the exiting process.
    pub fn process_exit(&mut self, eprocess: u64, exit_status: i32) -> Result<(), String> {
        self.step_clock();
        let pid = match self.kernel_mut().ps.processes.get_mut(&eprocess) {
            Some(p) => {
                p.exit_status = exit_status;
                p.pid
            }
            None => return Err("no such process".into()),
        };
        self.set_current(pid, pid + 4);
        let routines = self.kernel().ps.process_notify.clone();
        for routine in routines {
            self.call_at(PASSIVE_LEVEL, routine, &[eprocess, u64::from(pid), 0])?;
        }
        Ok(())
    }

    /// Image load into `pid` (PsSetLoadImageNotifyRoutine: FullImageName,
    /// ProcessId, ImageInfo), in the context of the loading process.
    pub fn image_load(
        &mut self,
        pid: u32,
        name: &str,
        base: u64,
        size: u64,
        properties: u32,
    ) -> Result<(), String> {
        self.step_clock();
        self.set_current(pid, pid + 4);
        for call in self.image_load_calls(pid, name, base, size, properties) {
            self.call_at(call.irql, call.function, &call.args)?;
        }
        Ok(())
    }

    /// The notify calls of one image load, to make now or on the CPUs of a
    /// multi-CPU run (the arguments stay allocated: model memory).
    pub fn image_load_calls(
        &mut self,
        pid: u32,
        name: &str,
        base: u64,
        size: u64,
        properties: u32,
    ) -> Vec<GuestCall> {
        let info = model_alloc(&mut self.uc, IMAGE_INFO_SIZE as u64);
        let full_name = alloc_unicode_string(&mut self.uc, name);
        self.uc.write_u32(info + II_PROPERTIES, properties);
        self.uc.write_u64(info + II_IMAGE_BASE, base);
        self.uc.write_u64(info + II_IMAGE_SIZE, size);
        self.kernel()
            .ps
            .image_notify
            .iter()
            .map(|&routine| GuestCall {
                label: format!("image load {name} into {pid}"),
                kind: CallKind::ImageNotify,
                function: routine,
                args: vec![full_name, u64::from(pid), info],
                irql: PASSIVE_LEVEL,
                pid,
                tid: pid + 4,
                copy_before: None,
            })
            .collect()
    }

    /// A registry value set by `pid` (`RegSetValueEx`, `ZwSetValueKey`):
    /// every registered registry callback gets the pre-notification
    /// (`RegNtPreSetValueKey`, a REG_SET_VALUE_KEY_INFORMATION) and then,
    /// with the operation's `status`, the post-notification
    /// (`RegNtPostSetValueKey`, a REG_POST_OPERATION_INFORMATION whose
    /// PreInformation is that same structure), in the setting thread, at
    /// PASSIVE_LEVEL. `key` is the key's object name
    /// (`\REGISTRY\MACHINE\...`); the data is in system memory, as the
    /// kernel captures it from Windows 8 on.
    pub fn registry_set_value(&mut self, set: &RegistrySet) -> Result<(), String> {
        self.step_clock();
        self.set_current(set.pid, set.pid + 4);
        for call in self.registry_set_value_calls(set) {
            self.call_at(call.irql, call.function, &call.args)?;
        }
        Ok(())
    }

    /// The callback calls of one value set (pre, then post, per callback),
    /// to make now or on the CPUs of a multi-CPU run.
    pub fn registry_set_value_calls(&mut self, set: &RegistrySet) -> Vec<GuestCall> {
        let object = model_alloc(&mut self.uc, 64);
        self.kernel_mut()
            .cm
            .key_objects
            .insert(object, set.key.clone());
        let value_name = alloc_unicode_string(&mut self.uc, &set.value);
        let data = model_alloc(&mut self.uc, set.data.len().max(1) as u64);
        self.uc.write_bytes(data, &set.data);
        let pre = model_alloc(&mut self.uc, REG_SET_VALUE_INFO_SIZE as u64);
        let uc = &mut self.uc;
        uc.write_u64(pre + RSV_OBJECT, object);
        uc.write_u64(pre + RSV_VALUE_NAME, value_name);
        uc.write_u32(pre + RSV_TYPE, set.value_type);
        uc.write_u64(pre + RSV_DATA, data);
        uc.write_u32(pre + RSV_DATA_SIZE, set.data.len() as u32);
        let post = model_alloc(uc, REG_POST_INFO_SIZE as u64);
        uc.write_u64(post + RPO_OBJECT, object);
        uc.write_u32(post + RPO_STATUS, set.status as u32);
        uc.write_u64(post + RPO_PRE_INFORMATION, pre);
        uc.write_u32(post + RPO_RETURN_STATUS, set.status as u32);
        let label = format!("registry set {}\\{} by {}", set.key, set.value, set.pid);
        self.registry_callback_calls(
            &label,
            set.pid,
            [
                (cm::REG_NT_PRE_SET_VALUE_KEY, pre),
                (cm::REG_NT_POST_SET_VALUE_KEY, post),
            ],
        )
    }

    /// A registry key operation by `pid`: every registered registry
    /// callback gets the pre-notification and then, with the operation's
    /// `status`, the post-notification (whose `CallContext` the
    /// configuration manager carries over from the pre-notification's
    /// structure, [`cm::before_call`]), in the calling thread, at
    /// PASSIVE_LEVEL. Names are captured in system memory, as the kernel
    /// does from Windows 8 on.
    pub fn registry_key_op(&mut self, op: &RegistryKeyOp) -> Result<(), String> {
        self.step_clock();
        self.set_current(op.pid, op.pid + 4);
        for call in self.registry_key_op_calls(op) {
            cm::before_call(&mut self.uc, &call.args);
            self.call_at(call.irql, call.function, &call.args)?;
        }
        Ok(())
    }

    /// The callback calls of one key operation (pre, then post, per
    /// callback), to make now or on the CPUs of a multi-CPU run.
    pub fn registry_key_op_calls(&mut self, op: &RegistryKeyOp) -> Vec<GuestCall> {
        let object = model_alloc(&mut self.uc, 64);
        self.kernel_mut()
            .cm
            .key_objects
            .insert(object, op.key.clone());
        let (pre_class, post_class, pre) = match &op.op {
            KeyOp::Create => {
                let pre = model_alloc(&mut self.uc, REG_CREATE_KEY_INFO_SIZE as u64);
                let name = alloc_unicode_string(&mut self.uc, &op.key);
                self.uc.write_u64(pre + RCK_COMPLETE_NAME, name);
                (
                    cm::REG_NT_PRE_CREATE_KEY_EX,
                    cm::REG_NT_POST_CREATE_KEY_EX,
                    pre,
                )
            }
            KeyOp::Delete => {
                let pre = model_alloc(&mut self.uc, REG_DELETE_KEY_INFO_SIZE as u64);
                self.uc.write_u64(pre + RDK_OBJECT, object);
                (cm::REG_NT_PRE_DELETE_KEY, cm::REG_NT_POST_DELETE_KEY, pre)
            }
            KeyOp::DeleteValue(value) => {
                let pre = model_alloc(&mut self.uc, REG_DELETE_VALUE_INFO_SIZE as u64);
                let name = alloc_unicode_string(&mut self.uc, value);
                self.uc.write_u64(pre + RDV_OBJECT, object);
                self.uc.write_u64(pre + RDV_VALUE_NAME, name);
                (
                    cm::REG_NT_PRE_DELETE_VALUE_KEY,
                    cm::REG_NT_POST_DELETE_VALUE_KEY,
                    pre,
                )
            }
            KeyOp::Rename(new_name) => {
                let pre = model_alloc(&mut self.uc, REG_RENAME_KEY_INFO_SIZE as u64);
                let name = alloc_unicode_string(&mut self.uc, new_name);
                self.uc.write_u64(pre + RRK_OBJECT, object);
                self.uc.write_u64(pre + RRK_NEW_NAME, name);
                (cm::REG_NT_PRE_RENAME_KEY, cm::REG_NT_POST_RENAME_KEY, pre)
            }
        };
        let post = model_alloc(&mut self.uc, REG_POST_INFO_SIZE as u64);
        let uc = &mut self.uc;
        // The post structure's Object is valid only on success; a failed
        // create has none.
        let failed_create = matches!(op.op, KeyOp::Create) && op.status < 0;
        uc.write_u64(post + RPO_OBJECT, if failed_create { 0 } else { object });
        uc.write_u32(post + RPO_STATUS, op.status as u32);
        uc.write_u64(post + RPO_PRE_INFORMATION, pre);
        uc.write_u32(post + RPO_RETURN_STATUS, op.status as u32);
        let label = format!("registry {:?} {} by {}", op.op, op.key, op.pid);
        self.registry_callback_calls(&label, op.pid, [(pre_class, pre), (post_class, post)])
    }

    /// Each registered registry callback's calls for one operation: its
    /// pre- and post-notification, in that order.
    fn registry_callback_calls(
        &self,
        label: &str,
        pid: u32,
        notifications: [(u64, u64); 2],
    ) -> Vec<GuestCall> {
        let mut calls = Vec::new();
        for callback in self.kernel().cm.callbacks.clone() {
            for (class, info) in notifications {
                calls.push(GuestCall {
                    label: label.to_owned(),
                    kind: CallKind::RegistryCallback,
                    function: callback.function,
                    args: vec![callback.context, class, info],
                    irql: PASSIVE_LEVEL,
                    pid,
                    tid: pid + 4,
                    copy_before: None,
                });
            }
        }
        calls
    }

    /// A process or thread handle operation: every registered object
    /// callback for the object's type and the operation gets the
    /// pre-operation call (an OB_PRE_OPERATION_INFORMATION) and, with the
    /// operation's `status` and `granted` access, the post-operation call
    /// (an OB_POST_OPERATION_INFORMATION whose CallContext is what the
    /// pre-operation call left), in the requesting thread, at
    /// PASSIVE_LEVEL.
    pub fn handle_operation(&mut self, op: &HandleOp) -> Result<(), String> {
        self.step_clock();
        self.set_current(op.source_pid, op.source_tid);
        for call in self.handle_operation_calls(op) {
            if let Some((from, to)) = call.copy_before {
                let value = self.uc.read_u64(from);
                self.uc.write_u64(to, value);
            }
            self.call_at(call.irql, call.function, &call.args)?;
            // Observe only: no callback may strip rights, i.e. clear bits
            // of the pre-operation's DesiredAccess (both parameter forms
            // keep it at the same offset, which the oracle checks).
            if call.copy_before.is_none() {
                use crate::layout::{OB_PRE_CREATE_DESIRED, OB_PRE_PARAMETERS};
                let parameters = self.uc.read_u64(call.args[1] + OB_PRE_PARAMETERS);
                let desired = self.uc.read_u32(parameters + OB_PRE_CREATE_DESIRED);
                if desired != op.desired {
                    self.kernel_mut().verifier.report(
                        crate::verifier::Rule::Contract,
                        format!(
                            "{}: the pre-operation callback changed DesiredAccess {:#x} to {desired:#x} (ringside observes, it never strips rights)",
                            call.label, op.desired
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// A thread creation: the thread object exists (its id resolves, its
    /// start address is queryable), then every registered thread-creation
    /// routine is called with (target pid, new thread id, TRUE) in the
    /// creating thread, as `PsSetCreateThreadNotifyRoutine` documents.
    pub fn create_thread(&mut self, create: &ThreadCreate) -> Result<(), String> {
        self.step_clock();
        self.set_current(create.source_pid, create.source_tid);
        for call in self.create_thread_calls(create) {
            self.call_at(call.irql, call.function, &call.args)?;
        }
        Ok(())
    }

    /// The process object of `pid`, made if the model has none.
    pub fn process_object(&mut self, pid: u32) -> u64 {
        let found = self
            .kernel()
            .ps
            .processes
            .values()
            .find(|p| p.pid == pid)
            .map(|p| p.eprocess);
        found.unwrap_or_else(|| ps::new_process(&mut self.uc, pid, false, vec![], vec![], 0))
    }

    /// The callback calls of one handle operation (pre, then post, per
    /// matching operation registration), to make now or on the CPUs of a
    /// multi-CPU run.
    pub fn handle_operation_calls(&mut self, op: &HandleOp) -> Vec<GuestCall> {
        use crate::layout::*;
        let (object, object_type, kind) = match op.target_tid {
            Some(tid) => {
                let thread = model_alloc(&mut self.uc, 0x800);
                self.kernel_mut().ob.threads.insert(
                    thread,
                    ob::Thread {
                        pid: op.target_pid,
                        tid,
                    },
                );
                (thread, ob::THREAD_OBJECT_TYPE, ob::ObjectType::Thread)
            }
            None => (
                self.process_object(op.target_pid),
                ob::PROCESS_OBJECT_TYPE,
                ob::ObjectType::Process,
            ),
        };
        self.kernel_mut()
            .ob
            .user_stacks
            .insert(op.source_tid, op.frames.clone());
        let operation = if op.duplicate {
            ob::OB_OPERATION_HANDLE_DUPLICATE
        } else {
            ob::OB_OPERATION_HANDLE_CREATE
        };
        let flags = u32::from(op.kernel_handle);
        let source = self.process_object(op.source_pid);
        let uc = &mut self.uc;
        let pre_parameters = model_alloc(uc, OB_PRE_PARAMETERS_SIZE as u64);
        if op.duplicate {
            uc.write_u32(pre_parameters + OB_PRE_DUP_DESIRED, op.desired);
            uc.write_u32(pre_parameters + OB_PRE_DUP_ORIGINAL_DESIRED, op.desired);
            uc.write_u64(pre_parameters + OB_PRE_DUP_SOURCE_PROCESS, source);
            uc.write_u64(pre_parameters + OB_PRE_DUP_TARGET_PROCESS, source);
        } else {
            uc.write_u32(pre_parameters + OB_PRE_CREATE_DESIRED, op.desired);
            uc.write_u32(pre_parameters + OB_PRE_CREATE_ORIGINAL_DESIRED, op.desired);
        }
        let post_parameters = model_alloc(uc, OB_POST_PARAMETERS_SIZE as u64);
        let granted_at = if op.duplicate {
            OB_POST_DUP_GRANTED
        } else {
            OB_POST_CREATE_GRANTED
        };
        uc.write_u32(post_parameters + granted_at, op.granted);
        let label = format!(
            "{} of {} {} by {}",
            if op.duplicate { "duplicate" } else { "open" },
            if op.target_tid.is_some() {
                "thread in"
            } else {
                "process"
            },
            op.target_pid,
            op.source_pid
        );
        let mut calls = Vec::new();
        for registration in self.kernel().ob.registrations.clone() {
            for entry in &registration.operations {
                if entry.object_type != kind || entry.operations & operation == 0 {
                    continue;
                }
                // One information structure per callback, as the object
                // manager gives each its own CallContext.
                let uc = &mut self.uc;
                let pre = model_alloc(uc, OB_PRE_INFO_SIZE as u64);
                uc.write_u32(pre + OB_PRE_OPERATION, operation);
                uc.write_u32(pre + OB_PRE_FLAGS, flags);
                uc.write_u64(pre + OB_PRE_OBJECT, object);
                uc.write_u64(pre + OB_PRE_OBJECT_TYPE, object_type);
                uc.write_u64(pre + OB_PRE_CALL_CONTEXT, 0);
                uc.write_u64(pre + OB_PRE_PARAMETERS, pre_parameters);
                let post = model_alloc(uc, OB_POST_INFO_SIZE as u64);
                uc.write_u32(post + OB_POST_OPERATION, operation);
                uc.write_u32(post + OB_POST_FLAGS, flags);
                uc.write_u64(post + OB_POST_OBJECT, object);
                uc.write_u64(post + OB_POST_OBJECT_TYPE, object_type);
                uc.write_u32(post + OB_POST_RETURN_STATUS, op.status as u32);
                uc.write_u64(post + OB_POST_PARAMETERS, post_parameters);
                let call = |function, info, copy_before| GuestCall {
                    label: label.clone(),
                    kind: CallKind::ObjectCallback,
                    function,
                    args: vec![registration.context, info],
                    irql: PASSIVE_LEVEL,
                    pid: op.source_pid,
                    tid: op.source_tid,
                    copy_before,
                };
                if entry.pre != 0 {
                    calls.push(call(entry.pre, pre, None));
                }
                if entry.post != 0 {
                    calls.push(call(
                        entry.post,
                        post,
                        Some((pre + OB_PRE_CALL_CONTEXT, post + OB_POST_CALL_CONTEXT)),
                    ));
                }
            }
        }
        calls
    }

    /// The notify calls of one thread creation, to make now or on the CPUs
    /// of a multi-CPU run.
    pub fn create_thread_calls(&mut self, create: &ThreadCreate) -> Vec<GuestCall> {
        crate::api::thread::new_thread(
            &mut self.uc,
            create.new_tid,
            create.target_pid,
            create.start_address,
        );
        let label = format!(
            "thread {} into {} by {}",
            create.new_tid, create.target_pid, create.source_pid
        );
        self.kernel()
            .threads
            .notify
            .clone()
            .into_iter()
            .map(|function| GuestCall {
                label: label.clone(),
                kind: CallKind::ThreadNotify,
                function,
                args: vec![u64::from(create.target_pid), u64::from(create.new_tid), 1],
                irql: create.irql,
                pid: create.source_pid,
                tid: create.source_tid,
                copy_before: None,
            })
            .collect()
    }

    /// `fltmc unload ringside` on a CPU of a multi-CPU run: FltMgr's call of
    /// the FilterUnloadCallback. Hand its result to [`Machine::unloaded`].
    pub fn unload_call(&self, flags: u64) -> Option<GuestCall> {
        let callback = self.kernel().flt.unload_callback;
        (callback != 0).then(|| GuestCall {
            label: "FilterUnloadCallback".into(),
            kind: CallKind::Unload,
            function: callback,
            args: vec![flags],
            irql: PASSIVE_LEVEL,
            pid: 4,
            tid: 8,
            copy_before: None,
        })
    }
}
