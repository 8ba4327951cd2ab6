//! Scripted machine activity: processes start and exit, images load. Each
//! step calls the driver's registered callbacks the way Windows does:
//! process notifications at PASSIVE_LEVEL in the creating thread's context
//! with a real PS_CREATE_NOTIFY_INFO, image notifications with a real
//! IMAGE_INFO. The clock advances 1 µs per step so timestamps are distinct.

use crate::api::rtl::alloc_unicode_string;
use crate::api::{cm, ps};
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
        let mut calls = Vec::new();
        for callback in self.kernel().cm.callbacks.clone() {
            for (class, info) in [
                (cm::REG_NT_PRE_SET_VALUE_KEY, pre),
                (cm::REG_NT_POST_SET_VALUE_KEY, post),
            ] {
                calls.push(GuestCall {
                    label: label.clone(),
                    kind: CallKind::RegistryCallback,
                    function: callback.function,
                    args: vec![callback.context, class, info],
                    irql: PASSIVE_LEVEL,
                    pid: set.pid,
                    tid: set.pid + 4,
                });
            }
        }
        calls
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
        })
    }
}
