//! The registry: `ZwOpenKey`, `ZwQueryValueKey` (KeyValuePartialInformation),
//! `ZwClose`. PASSIVE_LEVEL only; handles must be closed (checked at unload).

use std::collections::{BTreeMap, HashMap};

use crate::machine::{PASSIVE_LEVEL, arg, require_irql};
use crate::memory::*;
use crate::verifier::Rule;

pub const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;
pub const STATUS_BUFFER_TOO_SMALL: i32 = 0xC000_0023_u32 as i32;
pub const STATUS_BUFFER_OVERFLOW: i32 = 0x8000_0005_u32 as i32;
pub const STATUS_INVALID_HANDLE: i32 = 0xC000_0008_u32 as i32;
pub const STATUS_INSUFFICIENT_RESOURCES: i32 = 0xC000_009A_u32 as i32;

#[derive(Debug, Default)]
pub struct Registry {
    /// Key path (lower case) → value name (lower case) → REG_DWORD.
    pub keys: HashMap<String, BTreeMap<String, u32>>,
    pub handles: HashMap<u64, String>,
    pub next_handle: u64,
}

impl Registry {
    pub fn set_dword(&mut self, key: &str, value: &str, data: u32) {
        self.keys
            .entry(key.to_lowercase())
            .or_default()
            .insert(value.to_lowercase(), data);
    }
}

pub fn zw_open_key(uc: &mut Uc) -> u64 {
    let (out, _access, attributes) = (arg(uc, 0), arg(uc, 1), arg(uc, 2));
    require_irql(uc, "ZwOpenKey", PASSIVE_LEVEL);
    let name_ptr = uc.read_u64(attributes + 16);
    let mut path = String::from_utf16_lossy(&uc.read_unicode_string(name_ptr));
    let root = uc.read_u64(attributes + 8);
    if root != 0
        && let Some(base) = uc.get_data().reg.handles.get(&root)
    {
        path = format!("{base}\\{path}");
    }
    if uc.get_data_mut().inject("ZwOpenKey") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    let key = path.to_lowercase();
    // A key exists when a value was set in it or in a subkey of it (the
    // service key exists because its Parameters subkey does).
    let subkey_prefix = format!("{key}\\");
    let exists = uc
        .get_data()
        .reg
        .keys
        .keys()
        .any(|k| *k == key || k.starts_with(&subkey_prefix));
    if !exists {
        return STATUS_OBJECT_NAME_NOT_FOUND as u32 as u64;
    }
    let reg = &mut uc.get_data_mut().reg;
    reg.next_handle += 4;
    let handle = 0xFFFF_8000_0000_0000 | reg.next_handle;
    reg.handles.insert(handle, key);
    uc.write_u64(out, handle);
    0
}

pub fn zw_query_value_key(uc: &mut Uc) -> u64 {
    let (handle, name, class, buffer) = (arg(uc, 0), arg(uc, 1), arg(uc, 2) as u32, arg(uc, 3));
    let (length, result_length) = (arg(uc, 4) as u32, arg(uc, 5));
    require_irql(uc, "ZwQueryValueKey", PASSIVE_LEVEL);
    let name = String::from_utf16_lossy(&uc.read_unicode_string(name)).to_lowercase();
    let Some(key) = uc.get_data().reg.handles.get(&handle).cloned() else {
        return STATUS_INVALID_HANDLE as u32 as u64;
    };
    if uc.get_data_mut().inject("ZwQueryValueKey") {
        return STATUS_INSUFFICIENT_RESOURCES as u32 as u64;
    }
    let Some(value) = uc
        .get_data()
        .reg
        .keys
        .get(&key)
        .and_then(|k| k.get(&name))
        .copied()
    else {
        return STATUS_OBJECT_NAME_NOT_FOUND as u32 as u64;
    };
    if class != 2 {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("ZwQueryValueKey class {class} not modelled"),
        );
        return STATUS_OBJECT_NAME_NOT_FOUND as u32 as u64;
    }
    // KEY_VALUE_PARTIAL_INFORMATION { TitleIndex, Type, DataLength, Data[] }.
    let needed = 12 + 4;
    if result_length != 0 {
        uc.write_u32(result_length, needed);
    }
    if length < 12 {
        return STATUS_BUFFER_TOO_SMALL as u32 as u64;
    }
    uc.write_u32(buffer, 0);
    uc.write_u32(buffer + 4, 4); // REG_DWORD
    uc.write_u32(buffer + 8, 4);
    if length < needed {
        return STATUS_BUFFER_OVERFLOW as u32 as u64;
    }
    uc.write_u32(buffer + 12, value);
    0
}

pub fn zw_close(uc: &mut Uc) -> u64 {
    let handle = arg(uc, 0);
    require_irql(uc, "ZwClose", PASSIVE_LEVEL);
    if uc.get_data_mut().reg.handles.remove(&handle).is_none()
        && !crate::api::thread::close_handle(uc, handle)
    {
        uc.get_data_mut().verifier.report(
            Rule::Contract,
            format!("ZwClose({handle:#x}): not an open handle"),
        );
        return STATUS_INVALID_HANDLE as u32 as u64;
    }
    0
}

pub fn check_unloaded(uc: &mut Uc) {
    if !uc.get_data().reg.handles.is_empty() {
        let open: Vec<String> = uc.get_data().reg.handles.values().cloned().collect();
        uc.get_data_mut().verifier.report(
            Rule::Registration,
            format!("registry handles not closed: {open:?}"),
        );
    }
}
