//! Registry key creation, key deletion, value deletion (Sysmon 12) and key
//! renames (Sysmon 14) through the real driver. A deleted or renamed key's
//! name is gone once the operation is done (the model's configuration
//! manager refuses it, or answers with the new name), so these tests fail
//! unless the driver takes the name at the pre-notification and carries it
//! to the post-notification in `CallContext`; a failed operation is not
//! reported and the held name is released; a failed name query is a counted
//! drop; an unload waits for a callback in flight.

use ringside_kmodel::Machine;
use ringside_kmodel::agent::{Handle, connected, every_kind};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::machine::unload_from_another_cpu;
use ringside_kmodel::scenario::{KeyOp, RegistryKeyOp};
use ringside_wire::ioctl::ConfigureRequest;
use ringside_wire::kind::ALL_EVENTS_MASK;
use ringside_wire::{
    DropReason, EventKind, REGISTRY_OP_CREATE_KEY, REGISTRY_OP_DELETE_KEY,
    REGISTRY_OP_DELETE_VALUE, Record, RecordKind, Records,
};

const TASK_KEY: &str = r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Schedule\TaskCache\Tree\Updater";
const STATUS_ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32;

fn op(pid: u32, key: &str, op: KeyOp) -> RegistryKeyOp {
    RegistryKeyOp {
        pid,
        key: key.into(),
        op,
        status: 0,
    }
}

fn text(field: ringside_wire::RawField<'_>) -> String {
    field.chars().collect()
}

fn records(m: &mut Machine, h: Handle) -> Vec<u8> {
    m.drain(h).expect("drain").concat()
}

fn kinds(m: &mut Machine, h: Handle) -> Vec<RecordKind> {
    let bytes = records(m, h);
    Records::new(&bytes)
        .map(|r| r.expect("decodes").kind())
        .collect()
}

fn counts(m: &mut Machine, h: Handle, kind: EventKind) -> (u64, u64, u64) {
    let stats = m.stats(h).expect("stats").stats;
    let i = kind.index();
    (stats.produced[i], stats.delivered[i], stats.dropped[i])
}

#[test]
fn key_creation_deletion_value_deletion_and_rename_arrive_with_their_names() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    m.registry_key_op(&op(4100, TASK_KEY, KeyOp::Create))
        .expect("create");
    m.registry_key_op(&op(4100, TASK_KEY, KeyOp::DeleteValue("SD".into())))
        .expect("delete value");
    m.registry_key_op(&op(4100, TASK_KEY, KeyOp::Rename("Updater2".into())))
        .expect("rename");
    let renamed = format!("{TASK_KEY}2");
    m.registry_key_op(&op(4100, &renamed, KeyOp::Delete))
        .expect("delete");
    m.assert_clean();
    assert!(m.kernel().cm.names.is_empty(), "every key name released");
    let bytes = records(&mut m, h);
    let records: Vec<Record<'_>> = Records::new(&bytes).map(|r| r.expect("decodes")).collect();
    assert_eq!(records.len(), 4, "{records:?}");
    let key_event = |r: &Record<'_>| match *r {
        Record::RegistryKey(e) => (e.body.operation, text(e.key_name()), text(e.value_name())),
        ref other => panic!("not a registry key event: {other:?}"),
    };
    assert_eq!(
        key_event(&records[0]),
        (REGISTRY_OP_CREATE_KEY, TASK_KEY.to_owned(), String::new())
    );
    assert_eq!(
        key_event(&records[1]),
        (
            REGISTRY_OP_DELETE_VALUE,
            TASK_KEY.to_owned(),
            "SD".to_owned()
        )
    );
    match records[2] {
        Record::RegistryRename(e) => {
            assert_eq!(text(e.key_name()), TASK_KEY, "the name before the rename");
            assert_eq!(text(e.new_name()), "Updater2");
            assert_eq!((e.header.pid, e.header.tid), (4100, 4104));
        }
        ref other => panic!("not a rename: {other:?}"),
    }
    // The name the deleted key had: the model's configuration manager
    // forgets it once the delete is done.
    assert_eq!(
        key_event(&records[3]),
        (REGISTRY_OP_DELETE_KEY, renamed, String::new())
    );
    assert_eq!(counts(&mut m, h, EventKind::RegistryKey), (3, 3, 0));
    assert_eq!(counts(&mut m, h, EventKind::RegistryRename), (1, 1, 0));
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

#[test]
fn failed_operations_are_not_reported_and_their_held_names_are_released() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    for key_op in [
        KeyOp::Create,
        KeyOp::Delete,
        KeyOp::DeleteValue("SD".into()),
        KeyOp::Rename("Other".into()),
    ] {
        m.registry_key_op(&RegistryKeyOp {
            status: STATUS_ACCESS_DENIED,
            ..op(4200, TASK_KEY, key_op)
        })
        .expect("operation");
    }
    assert!(m.kernel().cm.names.is_empty(), "held names released");
    m.assert_clean();
    assert!(kinds(&mut m, h).is_empty());
    assert_eq!(counts(&mut m, h, EventKind::RegistryKey), (0, 0, 0));
    assert_eq!(counts(&mut m, h, EventKind::RegistryRename), (0, 0, 0));
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

#[test]
fn a_failed_name_query_at_the_pre_notification_drops_and_counts_the_done_operation() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    for (key_op, kind) in [
        (KeyOp::Delete, EventKind::RegistryKey),
        (KeyOp::Rename("Other".into()), EventKind::RegistryRename),
        (KeyOp::Create, EventKind::RegistryKey),
    ] {
        m.fail_next("CmCallbackGetKeyObjectIDEx");
        m.registry_key_op(&op(4300, TASK_KEY, key_op))
            .expect("operation");
        m.kernel_mut().faults.fail = None;
        let (produced, delivered, dropped) = counts(&mut m, h, kind);
        assert_eq!(produced, delivered + dropped, "{kind:?}");
    }
    assert_eq!(m.kernel().faults.injected, 3);
    m.assert_clean();
    assert!(m.kernel().cm.names.is_empty());
    assert!(kinds(&mut m, h).is_empty(), "nothing of the failed events");
    let stats = m.stats(h).expect("stats").stats;
    assert_eq!(stats.dropped[EventKind::RegistryKey.index()], 2);
    assert_eq!(stats.dropped[EventKind::RegistryRename.index()], 1);
    assert_eq!(stats.dropped_by_reason[DropReason::QueryFailed.index()], 3);
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

#[test]
fn disabled_kinds_cost_no_name_query() {
    let sys = ringside_sys().expect("build ringside.sys");
    let config = ConfigureRequest {
        event_mask: ALL_EVENTS_MASK
            & !(EventKind::RegistryKey.mask_bit() | EventKind::RegistryRename.mask_bit()),
        ..every_kind()
    };
    let (mut m, h) = connected(sys, &config).expect("session");
    for key_op in [
        KeyOp::Create,
        KeyOp::DeleteValue("SD".into()),
        KeyOp::Rename("Other".into()),
        KeyOp::Delete,
    ] {
        m.registry_key_op(&op(4400, TASK_KEY, key_op))
            .expect("operation");
    }
    assert_eq!(
        m.kernel().faults.seen.get("CmCallbackGetKeyObjectIDEx"),
        None
    );
    assert!(kinds(&mut m, h).is_empty());
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

#[test]
fn unload_during_a_delete_pre_notification_unregisters_and_waits_for_it() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, _h) = connected(sys, &every_kind()).expect("session");
    m.kernel_mut().interpose = Some(("CmCallbackGetKeyObjectIDEx".into(), unload_from_another_cpu));
    let start = m.kernel().trace.len();
    let error = m
        .registry_key_op(&op(4500, TASK_KEY, KeyOp::Delete))
        .expect_err("the unload must block on the in-flight callback");
    assert!(
        error.contains("ExWaitForRundownProtectionRelease")
            && error.contains("1 references still held"),
        "{error}"
    );
    let after = m.kernel().trace[start..].to_vec();
    assert!(
        after.contains(&"CmUnRegisterCallback"),
        "callback not unregistered: {after:?}"
    );
    assert!(
        !after
            .iter()
            .any(|a| ["ExFreePoolWithTag", "ExFreePool", "IoDeleteDevice"].contains(a)),
        "freed under the callback: {after:?}"
    );
    assert_eq!(m.findings().len(), 1, "{:?}", m.findings());
}
