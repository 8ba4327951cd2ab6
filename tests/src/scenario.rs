//! Scripted machine activity: processes start and exit, images load. Each
//! step calls the driver's registered callbacks the way Windows does:
//! process notifications at PASSIVE_LEVEL in the creating thread's context
//! with a real PS_CREATE_NOTIFY_INFO, image notifications with a real
//! IMAGE_INFO. The clock advances 1 µs per step so timestamps are distinct.

use crate::api::ps;
use crate::api::rtl::alloc_unicode_string;
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
