//! Registry value sets (Sysmon 13) through the real driver: the registry
//! callback copies the raw key name, value name, type and capped data of a
//! successful set; a failed set is not reported; a failed key-name query
//! drops and counts the event (`QueryFailed`) and leaks nothing; an unload
//! with a callback in flight waits for it; a disabled kind costs no query.

use ringside_kmodel::Machine;
use ringside_kmodel::agent::connected;
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::machine::{assert_unload_waited_for_callback, unload_from_another_cpu};
use ringside_kmodel::scenario::RegistrySet;
use ringside_wire::ioctl::ConfigureRequest;
use ringside_wire::kind::ALL_EVENTS_MASK;
use ringside_wire::{DropReason, EventKind, HEADER_FLAG_TRUNCATED, Record, RecordKind, Records};

const RUN_KEY: &str = r"\REGISTRY\USER\S-1-5-21-1004336348-1177238915-682003330-1001\SOFTWARE\Microsoft\Windows\CurrentVersion\Run";
const STATUS_ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32;

fn config(max_name_bytes: u32) -> ConfigureRequest {
    ConfigureRequest {
        event_mask: ALL_EVENTS_MASK,
        max_name_bytes,
        batch_bytes: 64 * 1024,
        max_latency_ms: 50,
        ..ConfigureRequest::default()
    }
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn run_value(pid: u32, data: Vec<u8>) -> RegistrySet {
    RegistrySet {
        pid,
        key: RUN_KEY.into(),
        value: "Updater".into(),
        value_type: 1, // REG_SZ
        data,
        status: 0,
    }
}

#[test]
fn a_value_set_arrives_with_every_field_and_its_data_capped() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &config(1024)).expect("session");
    let text = utf16("C:\\Users\\bob\\AppData\\Local\\Temp\\upd.exe\0");
    m.registry_set_value(&run_value(4100, text.clone()))
        .expect("set");
    // A DWORD into the default value of an HKLM key.
    m.registry_set_value(&RegistrySet {
        pid: 4100,
        key: r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\ringside".into(),
        value: String::new(),
        value_type: 4,
        data: 2u32.to_le_bytes().to_vec(),
        status: 0,
    })
    .expect("set");
    // Binary data longer than the data cap (1024 bytes by default, as the
    // name cap): truncated there, its full size kept.
    let blob: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    m.registry_set_value(&RegistrySet {
        value: "Blob".into(),
        value_type: 3,
        data: blob.clone(),
        ..run_value(4100, Vec::new())
    })
    .expect("set");
    m.assert_clean();
    let bytes = m.drained(h);
    let events: Vec<_> = Records::new(&bytes)
        .map(|r| match r.expect("decodes") {
            Record::RegistrySetValue(e) => e,
            other => panic!("not a registry set: {other:?}"),
        })
        .collect();
    assert_eq!(events.len(), 3);
    let [run, dword, binary] = [events[0], events[1], events[2]];
    assert_eq!(run.header.pid, 4100);
    assert_eq!(run.header.tid, 4104);
    assert_eq!(run.key_name().bytes, utf16(RUN_KEY));
    assert_eq!(run.value_name().bytes, utf16("Updater"));
    assert_eq!(
        (run.body.value_type, run.body.data_size),
        (1, text.len() as u32)
    );
    assert_eq!(run.data().bytes, text);
    assert_eq!(run.header.flags & HEADER_FLAG_TRUNCATED, 0);
    assert_eq!(
        dword.key_name().bytes,
        utf16(r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\ringside")
    );
    assert!(dword.value_name().bytes.is_empty(), "the default value");
    assert_eq!((dword.body.value_type, dword.body.data_size), (4, 4));
    assert_eq!(dword.data().bytes, [2, 0, 0, 0]);
    assert_eq!((binary.body.value_type, binary.body.data_size), (3, 3000));
    assert_eq!(binary.data().bytes, &blob[..1024]);
    assert!(binary.data().truncated);
    assert_ne!(binary.header.flags & HEADER_FLAG_TRUNCATED, 0);
    let stats = m.stats(h).expect("stats").stats;
    let i = EventKind::RegistrySetValue.index();
    assert_eq!(
        (stats.produced[i], stats.delivered[i], stats.dropped[i]),
        (3, 3, 0)
    );
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

/// CONFIGURE's registry data cap is the data's own: a long string in a
/// Run key (a command line, what `Details` rules look at) keeps 4 KiB while
/// names stay at a 128-byte cap; the key name is cut at the name cap, not
/// the data cap.
#[test]
fn registry_data_has_a_cap_of_its_own() {
    let sys = ringside_sys().expect("build ringside.sys");
    let request = ConfigureRequest {
        max_registry_data_bytes: 4096,
        ..config(128)
    };
    let (mut m, h) = connected(sys, &request).expect("session");
    let long = utf16(&format!("powershell -enc {}\0", "A".repeat(3000)));
    m.registry_set_value(&run_value(4100, long.clone()))
        .expect("set");
    let bytes = m.drained(h);
    let Some(Ok(Record::RegistrySetValue(e))) = Records::new(&bytes).next() else {
        panic!("not a registry set")
    };
    assert_eq!(e.body.data_size, long.len() as u32);
    assert_eq!(e.data().bytes, &long[..4096]);
    assert_eq!(e.key_name().bytes, &utf16(RUN_KEY)[..128]);
    assert_eq!(e.value_name().bytes, utf16("Updater"));
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

#[test]
fn a_failed_set_is_not_reported_and_not_counted() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &config(1024)).expect("session");
    let queries = |m: &Machine| {
        m.kernel()
            .faults
            .seen
            .get("CmCallbackGetKeyObjectIDEx")
            .copied()
    };
    m.registry_set_value(&RegistrySet {
        status: STATUS_ACCESS_DENIED,
        ..run_value(4200, utf16("x\0"))
    })
    .expect("set");
    assert_eq!(queries(&m), None, "no work for a failed set");
    assert!(m.drained_kinds(h).is_empty());
    let stats = m.stats(h).expect("stats").stats;
    let i = EventKind::RegistrySetValue.index();
    assert_eq!((stats.produced[i], stats.dropped[i]), (0, 0));
    // The same set succeeding is reported.
    m.registry_set_value(&run_value(4200, utf16("x\0")))
        .expect("set");
    assert_eq!(
        m.drained_kinds(h),
        vec![RecordKind::Event(EventKind::RegistrySetValue)]
    );
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

#[test]
fn a_disabled_kind_costs_no_key_name_query() {
    let sys = ringside_sys().expect("build ringside.sys");
    let config = ConfigureRequest {
        event_mask: ALL_EVENTS_MASK & !EventKind::RegistrySetValue.mask_bit(),
        ..config(1024)
    };
    let (mut m, h) = connected(sys, &config).expect("session");
    m.registry_set_value(&run_value(4300, utf16("x\0")))
        .expect("set");
    assert_eq!(
        m.kernel().faults.seen.get("CmCallbackGetKeyObjectIDEx"),
        None
    );
    assert!(m.drained_kinds(h).is_empty());
    let stats = m.stats(h).expect("stats").stats;
    assert_eq!(stats.produced[EventKind::RegistrySetValue.index()], 0);
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

#[test]
fn a_failed_key_name_query_drops_and_counts_and_leaks_nothing() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &config(1024)).expect("session");
    m.fail_next("CmCallbackGetKeyObjectIDEx");
    m.registry_set_value(&run_value(4400, utf16("x\0")))
        .expect("set");
    assert_eq!(m.kernel().faults.injected, 1);
    m.kernel_mut().faults.fail = None;
    m.assert_clean();
    assert!(m.drained_kinds(h).is_empty(), "nothing of the failed event");
    let stats = m.stats(h).expect("stats").stats;
    let i = EventKind::RegistrySetValue.index();
    assert_eq!(stats.dropped[i], 1);
    assert_eq!(stats.dropped_by_reason[DropReason::QueryFailed.index()], 1);
    // The next set: Lost, then the event.
    m.registry_set_value(&run_value(4400, utf16("y\0")))
        .expect("set");
    assert_eq!(
        m.drained_kinds(h),
        vec![
            RecordKind::Lost,
            RecordKind::Event(EventKind::RegistrySetValue)
        ]
    );
    let stats = m.stats(h).expect("stats").stats;
    assert_eq!(stats.produced[i], stats.delivered[i] + stats.dropped[i]);
    assert_eq!((stats.produced[i], stats.delivered[i]), (2, 1));
    assert!(m.kernel().cm.names.is_empty(), "every key name released");
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

#[test]
fn unload_during_a_registry_callback_unregisters_and_waits_for_it() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, _h) = connected(sys, &config(1024)).expect("session");
    m.kernel_mut().interpose = Some(("CmCallbackGetKeyObjectIDEx".into(), unload_from_another_cpu));
    let start = m.kernel().trace.len();
    let error = m
        .registry_set_value(&run_value(4500, utf16("x\0")))
        .expect_err("the unload must block on the in-flight callback");
    assert_unload_waited_for_callback(&m, &error, start, "CmUnRegisterCallback");
    assert!(m.kernel().cm.callbacks.is_empty());
}
