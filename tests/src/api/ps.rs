//! Process and image notifications, tokens and process queries:
//! `PsSetCreateProcessNotifyRoutineEx` (fails with STATUS_ACCESS_DENIED
//! unless the image is linked /INTEGRITYCHECK, as documented),
//! `PsSetLoadImageNotifyRoutine` / `PsRemoveLoadImageNotifyRoutine`,
//! `PsGetCurrentProcessId` / `PsGetCurrentThreadId`, `PsGetProcessExitStatus`,
//! `PsReferencePrimaryToken` / `PsDereferencePrimaryToken` (reference counts
//! checked), `SeQueryInformationToken` for TokenUser and TokenIntegrityLevel
//! (the result is pool the caller frees), `SeQueryAuthenticationIdToken`
//! (the logon session, into the caller's LUID).

use std::collections::HashMap;

use crate::machine::{PASSIVE_LEVEL, arg, model_alloc, require_irql};
use crate::memory::*;
use crate::verifier::Rule;

pub const STATUS_ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32;
pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32;
pub const STATUS_PROCEDURE_NOT_FOUND: i32 = 0xC000_007A_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32;

#[derive(Clone, Debug)]
pub struct Process {
    pub pid: u32,
    pub eprocess: u64,
    pub token: u64,
    pub admin: bool,
    pub user_sid: Vec<u8>,
    pub integrity_sid: Vec<u8>,
    /// The token's logon session (`TOKEN_STATISTICS.AuthenticationId`),
    /// `HighPart << 32 | LowPart`.
    pub logon_id: u64,
    pub exit_status: i32,
}

#[derive(Debug, Default)]
pub struct Ps {
    pub process_notify: Vec<u64>,
    pub image_notify: Vec<u64>,
    pub processes: HashMap<u64, Process>,
    pub token_refs: HashMap<u64, i64>,
    /// Routines being removed while calls of them are in flight on other
    /// CPUs: removal waits for those (the kernel's rundown of each callback
    /// block), and no new call is made meanwhile.
    pub removing: Vec<u64>,
}

impl Ps {
    pub fn token_owner(&self, token: u64) -> Option<&Process> {
        self.processes.values().find(|p| p.token == token)
    }
}

pub fn has_force_integrity(uc: &Uc) -> bool {
    let image = uc.get_data().image_start;
    let nt = image + u64::from(uc.read_u32(image + 0x3C));
    // IMAGE_OPTIONAL_HEADER64.DllCharacteristics, IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY.
    uc.read_u16(nt + 0x18 + 0x46) & 0x0080 != 0
}

pub fn ps_set_create_process_notify_routine_ex(uc: &mut Uc) -> u64 {
    let (routine, remove) = (arg(uc, 0), arg(uc, 1) as u8 != 0);
    require_irql(uc, "PsSetCreateProcessNotifyRoutineEx", PASSIVE_LEVEL);
    let ps = &uc.get_data().ps;
    let registered = ps.process_notify.contains(&routine);
    if remove {
        if !registered && !uc.get_data().ps.removing.contains(&routine) {
            return STATUS_INVALID_PARAMETER as u32 as u64;
        }
        uc.get_data_mut()
            .ps
            .process_notify
            .retain(|r| *r != routine);
        return wait_for_removal(uc, routine, crate::smp::CallKind::ProcessNotify);
    }
    if !has_force_integrity(uc) {
        return STATUS_ACCESS_DENIED as u32 as u64;
    }
    if uc
        .get_data_mut()
        .inject("PsSetCreateProcessNotifyRoutineEx")
    {
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    if registered {
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    uc.get_data_mut().ps.process_notify.push(routine);
    0
}

pub fn ps_set_load_image_notify_routine(uc: &mut Uc) -> u64 {
    let routine = arg(uc, 0);
    require_irql(uc, "PsSetLoadImageNotifyRoutine", PASSIVE_LEVEL);
    if uc.get_data_mut().inject("PsSetLoadImageNotifyRoutine") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    uc.get_data_mut().ps.image_notify.push(routine);
    0
}

pub fn ps_set_load_image_notify_routine_ex(uc: &mut Uc) -> u64 {
    ps_set_load_image_notify_routine(uc)
}

pub fn ps_remove_load_image_notify_routine(uc: &mut Uc) -> u64 {
    let routine = arg(uc, 0);
    require_irql(uc, "PsRemoveLoadImageNotifyRoutine", PASSIVE_LEVEL);
    let ps = &mut uc.get_data_mut().ps;
    match ps.image_notify.iter().position(|r| *r == routine) {
        Some(i) => {
            ps.image_notify.remove(i);
        }
        None if ps.removing.contains(&routine) => {}
        None => return STATUS_PROCEDURE_NOT_FOUND as u32 as u64,
    }
    wait_for_removal(uc, routine, crate::smp::CallKind::ImageNotify)
}

/// A removed notify routine: the removal returns once no call of that kind
/// is in flight on another CPU (STATUS_SUCCESS), and spins until then.
fn wait_for_removal(uc: &mut Uc, routine: u64, kind: crate::smp::CallKind) -> u64 {
    if crate::smp::in_flight_elsewhere(uc, kind) {
        if !uc.get_data().ps.removing.contains(&routine) {
            uc.get_data_mut().ps.removing.push(routine);
        }
        crate::smp::request_retry(uc);
        return 0;
    }
    uc.get_data_mut().ps.removing.retain(|r| *r != routine);
    0
}

pub fn ps_get_current_process_id(uc: &mut Uc) -> u64 {
    u64::from(uc.get_data().current_pid)
}

pub fn ps_get_current_thread_id(uc: &mut Uc) -> u64 {
    u64::from(uc.get_data().current_tid)
}

fn process(uc: &mut Uc, api: &str, eprocess: u64) -> Option<Process> {
    let found = uc.get_data().ps.processes.get(&eprocess).cloned();
    if found.is_none() {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("{api}({eprocess:#x}): not a process object"),
        );
    }
    found
}

pub fn ps_get_process_exit_status(uc: &mut Uc) -> u64 {
    let eprocess = arg(uc, 0);
    process(uc, "PsGetProcessExitStatus", eprocess).map_or(0, |p| p.exit_status as u32 as u64)
}

pub fn ps_get_process_id(uc: &mut Uc) -> u64 {
    let eprocess = arg(uc, 0);
    process(uc, "PsGetProcessId", eprocess).map_or(0, |p| u64::from(p.pid))
}

pub fn ps_reference_primary_token(uc: &mut Uc) -> u64 {
    let eprocess = arg(uc, 0);
    let Some(p) = process(uc, "PsReferencePrimaryToken", eprocess) else {
        return 0;
    };
    *uc.get_data_mut().ps.token_refs.entry(p.token).or_insert(0) += 1;
    p.token
}

pub fn ps_dereference_primary_token(uc: &mut Uc) -> u64 {
    let token = arg(uc, 0);
    let refs = uc.get_data_mut().ps.token_refs.entry(token).or_insert(0);
    *refs -= 1;
    if *refs < 0 {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("PsDereferencePrimaryToken({token:#x}): more releases than references"),
        );
    }
    0
}

/// `NTSTATUS SeQueryInformationToken(PACCESS_TOKEN, TOKEN_INFORMATION_CLASS, PVOID*)`:
/// PASSIVE_LEVEL; allocates the result from paged pool; the caller frees it.
pub fn se_query_information_token(uc: &mut Uc) -> u64 {
    let (token, class, out) = (arg(uc, 0), arg(uc, 1) as u32, arg(uc, 2));
    // PASSIVE_LEVEL only (the WDK reference): it may touch paged pool.
    require_irql(uc, "SeQueryInformationToken", PASSIVE_LEVEL);
    let Some(p) = uc.get_data().ps.token_owner(token).cloned() else {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("SeQueryInformationToken({token:#x}): not a token"),
        );
        return STATUS_INVALID_PARAMETER as u32 as u64;
    };
    // TokenUser (1), TokenIntegrityLevel (25); any other class is one the
    // driver does not ask for.
    if !matches!(class, 1 | 25) {
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    if uc.get_data_mut().inject("SeQueryInformationToken") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    let block = token_sid(uc, class, &p);
    if let Some(b) = uc.get_data_mut().pool.live.get_mut(&block) {
        b.tag = u32::from_le_bytes(*b"Se  ");
        b.paged = true;
    }
    uc.write_u64(out, block);
    0
}

/// TOKEN_USER / TOKEN_MANDATORY_LABEL: one SID_AND_ATTRIBUTES, SID after it.
fn token_sid(uc: &mut Uc, class: u32, p: &Process) -> u64 {
    use crate::layout::{
        SAA_ATTRIBUTES, SAA_SID, SID_AND_ATTRIBUTES_SIZE, TOKEN_LABEL_LABEL, TOKEN_USER_USER,
    };
    let (entry, sid) = if class == 25 {
        (TOKEN_LABEL_LABEL, &p.integrity_sid)
    } else {
        (TOKEN_USER_USER, &p.user_sid)
    };
    let header = entry + SID_AND_ATTRIBUTES_SIZE as u64;
    let block = crate::api::pool::map_block(uc, header + sid.len() as u64, true);
    uc.write_u64(block + entry + SAA_SID, block + header);
    // SE_GROUP_INTEGRITY on the label; a user SID carries no attributes.
    let attributes = if class == 25 { 0x20 } else { 0 };
    uc.write_u32(block + entry + SAA_ATTRIBUTES, attributes);
    uc.write_bytes(block + header, sid);
    block
}

/// `NTSTATUS SeQueryAuthenticationIdToken(PACCESS_TOKEN, PLUID)`
/// (ntifs.h): PASSIVE_LEVEL; writes the token's logon session (its
/// `AuthenticationId`) into the caller's LUID, laid out by the ABI oracle
/// (LowPart, HighPart). No allocation.
pub fn se_query_authentication_id_token(uc: &mut Uc) -> u64 {
    use crate::layout::{LUID_HIGH_PART, LUID_LOW_PART};
    let (token, out) = (arg(uc, 0), arg(uc, 1));
    require_irql(uc, "SeQueryAuthenticationIdToken", PASSIVE_LEVEL);
    let Some(p) = uc.get_data().ps.token_owner(token).cloned() else {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("SeQueryAuthenticationIdToken({token:#x}): not a token"),
        );
        return STATUS_INVALID_PARAMETER as u32 as u64;
    };
    if uc.get_data_mut().inject("SeQueryAuthenticationIdToken") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    uc.write_u32(out + LUID_LOW_PART, p.logon_id as u32);
    uc.write_u32(out + LUID_HIGH_PART, (p.logon_id >> 32) as u32);
    0
}

/// A new process object for a scenario (model memory).
pub fn new_process(
    uc: &mut Uc,
    pid: u32,
    admin: bool,
    user_sid: Vec<u8>,
    integrity_sid: Vec<u8>,
    logon_id: u64,
) -> u64 {
    let eprocess = model_alloc(uc, 0x800);
    let token = model_alloc(uc, 0x100);
    uc.get_data_mut().ps.processes.insert(
        eprocess,
        Process {
            pid,
            eprocess,
            token,
            admin,
            user_sid,
            integrity_sid,
            logon_id,
            exit_status: 0x103,
        },
    );
    eprocess
}

pub fn check_unloaded(uc: &mut Uc) {
    let ps = &uc.get_data().ps;
    let mut problems = Vec::new();
    if !ps.process_notify.is_empty() {
        problems.push(format!(
            "process notify routines still registered: {:x?}",
            ps.process_notify
        ));
    }
    if !ps.image_notify.is_empty() {
        problems.push(format!(
            "image notify routines still registered: {:x?}",
            ps.image_notify
        ));
    }
    let leaked: Vec<u64> = ps
        .token_refs
        .iter()
        .filter(|(_, r)| **r != 0)
        .map(|(t, _)| *t)
        .collect();
    if !leaked.is_empty() {
        problems.push(format!("token references not released: {leaked:x?}"));
    }
    for p in problems {
        uc.get_data_mut().verifier.report(Rule::Registration, p);
    }
}
