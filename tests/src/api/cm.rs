//! The configuration manager's registry callbacks (wdm.h):
//! `CmRegisterCallbackEx` (PASSIVE_LEVEL; writes the cookie),
//! `CmUnRegisterCallback` (waits for calls of the callback in flight on
//! other CPUs, as the kernel does), `CmCallbackGetKeyObjectIDEx` (the
//! key's object name, allocated by the API and counted until
//! `CmCallbackReleaseKeyObjectIDEx`; an unknown cookie or key object is
//! refused). Every fallible call can be failed by fault injection.

use std::collections::{HashMap, HashSet};

use crate::api::rtl::alloc_unicode_string;
use crate::machine::{PASSIVE_LEVEL, arg, model_free, require_irql};
use crate::memory::*;
use crate::verifier::Rule;

pub const STATUS_INVALID_PARAMETER: i32 = 0xC000_000D_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32;

/// `REG_NOTIFY_CLASS` values (wdm.h), pre and post of each operation the
/// scenarios make.
pub const REG_NT_PRE_DELETE_KEY: u64 = 0;
pub const REG_NT_PRE_SET_VALUE_KEY: u64 = 1;
pub const REG_NT_PRE_DELETE_VALUE_KEY: u64 = 2;
pub const REG_NT_PRE_RENAME_KEY: u64 = 4;
pub const REG_NT_POST_DELETE_KEY: u64 = 15;
pub const REG_NT_POST_SET_VALUE_KEY: u64 = 16;
pub const REG_NT_POST_DELETE_VALUE_KEY: u64 = 17;
pub const REG_NT_POST_RENAME_KEY: u64 = 19;
pub const REG_NT_PRE_CREATE_KEY_EX: u64 = 26;
pub const REG_NT_POST_CREATE_KEY_EX: u64 = 27;

/// Where each pre-notification structure keeps its `CallContext` (the
/// classes whose structure has one that the scenarios build).
fn call_context_offset(post_class: u64) -> Option<u64> {
    use crate::layout::*;
    match post_class {
        REG_NT_POST_DELETE_KEY => Some(RDK_CALL_CONTEXT),
        REG_NT_POST_DELETE_VALUE_KEY => Some(RDV_CALL_CONTEXT),
        REG_NT_POST_RENAME_KEY => Some(RRK_CALL_CONTEXT),
        REG_NT_POST_CREATE_KEY_EX => Some(RCK_CALL_CONTEXT),
        _ => None,
    }
}

/// What the configuration manager does just before it makes a
/// post-notification call: the REG_POST_OPERATION_INFORMATION's
/// `CallContext` is the one the callback left in the pre-notification's
/// structure ("Specifying Context Information": they match). `args` are
/// the callback's (context, class, information).
///
/// By then a successful delete or rename is done, so the key object no
/// longer has the name it had: a deleted key's name cannot be queried, a
/// renamed key's is the new one. A callback that asked only now would
/// report the wrong key, or none.
pub fn before_call(uc: &mut Uc, args: &[u64]) {
    use crate::layout::*;
    let (Some(&class), Some(&post)) = (args.get(1), args.get(2)) else {
        return;
    };
    let Some(offset) = call_context_offset(class) else {
        return;
    };
    let pre = uc.read_u64(post + RPO_PRE_INFORMATION);
    let context = uc.read_u64(pre + offset);
    uc.write_u64(post + RPO_CALL_CONTEXT, context);
    let succeeded = (uc.read_u32(post + RPO_STATUS) as i32) >= 0;
    let object = uc.read_u64(post + RPO_OBJECT);
    if !succeeded {
        return;
    }
    match class {
        REG_NT_POST_DELETE_KEY => {
            uc.get_data_mut().cm.key_objects.remove(&object);
        }
        REG_NT_POST_RENAME_KEY => {
            let new_name = uc.read_unicode_string(uc.read_u64(pre + RRK_NEW_NAME));
            let new_name = String::from_utf16_lossy(&new_name);
            if let Some(name) = uc.get_data_mut().cm.key_objects.get_mut(&object) {
                let parent = name.rfind('\\').map_or(0, |i| i + 1);
                name.truncate(parent);
                name.push_str(&new_name);
            }
        }
        _ => {}
    }
}

/// One registered callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Callback {
    pub function: u64,
    pub context: u64,
    pub cookie: i64,
}

#[derive(Debug, Default)]
pub struct Cm {
    pub callbacks: Vec<Callback>,
    pub next_cookie: i64,
    /// Key objects the scenario created → their full object names.
    pub key_objects: HashMap<u64, String>,
    /// Names from CmCallbackGetKeyObjectIDEx not yet released.
    pub names: HashSet<u64>,
    /// Callbacks being unregistered while calls of them are in flight on
    /// other CPUs: no new call is made meanwhile.
    pub removing: Vec<u64>,
}

/// `NTSTATUS CmRegisterCallbackEx(PEX_CALLBACK_FUNCTION, PCUNICODE_STRING
/// Altitude, PVOID Driver, PVOID Context, PLARGE_INTEGER Cookie, PVOID Reserved)`.
pub fn cm_register_callback_ex(uc: &mut Uc) -> u64 {
    let (function, altitude, driver, context, cookie_out, reserved) = (
        arg(uc, 0),
        arg(uc, 1),
        arg(uc, 2),
        arg(uc, 3),
        arg(uc, 4),
        arg(uc, 5),
    );
    require_irql(uc, "CmRegisterCallbackEx", PASSIVE_LEVEL);
    let altitude = uc.read_unicode_string(altitude);
    if altitude.is_empty() || driver == 0 || cookie_out == 0 || reserved != 0 {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!(
                "CmRegisterCallbackEx: altitude {:?}, driver {driver:#x}, cookie {cookie_out:#x}, reserved {reserved:#x}",
                String::from_utf16_lossy(&altitude)
            ),
        );
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    if uc.get_data_mut().inject("CmRegisterCallbackEx") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    let cm = &mut uc.get_data_mut().cm;
    cm.next_cookie += 0x1_0000;
    let cookie = cm.next_cookie;
    cm.callbacks.push(Callback {
        function,
        context,
        cookie,
    });
    uc.write_u64(cookie_out, cookie as u64);
    0
}

/// `NTSTATUS CmUnRegisterCallback(LARGE_INTEGER Cookie)`.
pub fn cm_unregister_callback(uc: &mut Uc) -> u64 {
    let cookie = arg(uc, 0) as i64;
    require_irql(uc, "CmUnRegisterCallback", PASSIVE_LEVEL);
    let cm = &mut uc.get_data_mut().cm;
    let function = match cm.callbacks.iter().position(|c| c.cookie == cookie) {
        Some(i) => cm.callbacks.remove(i).function,
        None => match cm.removing.first() {
            // A retry of this call while calls were in flight.
            Some(&function) => function,
            None => return STATUS_INVALID_PARAMETER as u32 as u64,
        },
    };
    if crate::smp::in_flight_elsewhere(uc, crate::smp::CallKind::RegistryCallback) {
        let cm = &mut uc.get_data_mut().cm;
        if !cm.removing.contains(&function) {
            cm.removing.push(function);
        }
        crate::smp::request_retry(uc);
        return 0;
    }
    uc.get_data_mut().cm.removing.retain(|f| *f != function);
    0
}

/// `NTSTATUS CmCallbackGetKeyObjectIDEx(PLARGE_INTEGER Cookie, PVOID Object,
/// PULONG_PTR ObjectID, PCUNICODE_STRING *ObjectName, ULONG Flags)`.
pub fn cm_callback_get_key_object_id_ex(uc: &mut Uc) -> u64 {
    let (cookie, object, object_id, name_out, flags) = (
        arg(uc, 0),
        arg(uc, 1),
        arg(uc, 2),
        arg(uc, 3),
        arg(uc, 4) as u32,
    );
    require_irql(uc, "CmCallbackGetKeyObjectIDEx", PASSIVE_LEVEL);
    if flags != 0 {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("CmCallbackGetKeyObjectIDEx: Flags {flags:#x} (must be 0)"),
        );
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    let cookie = uc.read_u64(cookie) as i64;
    let known = uc
        .get_data()
        .cm
        .callbacks
        .iter()
        .any(|c| c.cookie == cookie);
    let Some(name) = uc.get_data().cm.key_objects.get(&object).cloned() else {
        return STATUS_INVALID_PARAMETER as u32 as u64;
    };
    if !known {
        return STATUS_INVALID_PARAMETER as u32 as u64;
    }
    if uc.get_data_mut().inject("CmCallbackGetKeyObjectIDEx") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    if object_id != 0 {
        uc.write_u64(object_id, object);
    }
    if name_out != 0 {
        let string = alloc_unicode_string(uc, &name);
        uc.get_data_mut().cm.names.insert(string);
        uc.write_u64(name_out, string);
    }
    0
}

/// `VOID CmCallbackReleaseKeyObjectIDEx(PCUNICODE_STRING ObjectName)`.
pub fn cm_callback_release_key_object_id_ex(uc: &mut Uc) -> u64 {
    let name = arg(uc, 0);
    if uc.get_data_mut().cm.names.remove(&name) {
        model_free(uc, name);
    } else {
        uc.get_data_mut().verifier.report(
            Rule::NameInformation,
            format!("CmCallbackReleaseKeyObjectIDEx({name:#x}): not outstanding (double release?)"),
        );
    }
    0
}

/// At unload: no callback registered, every key name released.
pub fn check_unloaded(uc: &mut Uc) {
    let cm = &uc.get_data().cm;
    let mut problems = Vec::new();
    if !cm.callbacks.is_empty() {
        problems.push((
            Rule::Registration,
            format!("registry callbacks still registered: {:x?}", cm.callbacks),
        ));
    }
    if !cm.names.is_empty() {
        problems.push((
            Rule::NameInformation,
            format!("registry key names not released: {:x?}", cm.names),
        ));
    }
    for (rule, p) in problems {
        uc.get_data_mut().verifier.report(rule, p);
    }
}
