//! Remote threads (Sysmon 8) through the real driver: the thread-creation
//! routine reports a thread created in another process than its creator's,
//! with creator, target, new thread and start address; a thread a process
//! creates in itself is not reported; a start address that cannot be
//! queried (a failed lookup, open or query, or APC_LEVEL) is flagged missing
//! and leaks no reference or handle; an unload with the routine in flight
//! waits for it; a disabled kind makes no query.

use ringside_kmodel::Machine;
use ringside_kmodel::agent::{Handle, connected, every_kind};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::machine::{APC_LEVEL, PASSIVE_LEVEL, unload_from_another_cpu};
use ringside_kmodel::scenario::ThreadCreate;
use ringside_wire::ioctl::ConfigureRequest;
use ringside_wire::kind::ALL_EVENTS_MASK;
use ringside_wire::{
    EventKind, REMOTE_THREAD_FLAG_START_ADDRESS, Record, RecordKind, Records, RemoteThread,
};

const START: u64 = 0x7ffb_9e0b_2d50;

/// Process 4100 (thread 4104) starts thread `new_tid` in lsass (636).
fn injection(new_tid: u32) -> ThreadCreate {
    ThreadCreate {
        source_pid: 4100,
        source_tid: 4104,
        target_pid: 636,
        new_tid,
        start_address: START,
        irql: PASSIVE_LEVEL,
    }
}

fn remote_threads(m: &mut Machine, h: Handle) -> Vec<(u32, u32, RemoteThread)> {
    let bytes = m.drain(h).expect("drain").concat();
    Records::new(&bytes)
        .map(|r| match r.expect("decodes") {
            Record::RemoteThread(e) => (e.header.pid, e.header.tid, e.body),
            other => panic!("not a remote thread: {other:?}"),
        })
        .collect()
}

fn counts(m: &mut Machine, h: Handle) -> (u64, u64, u64) {
    let stats = m.stats(h).expect("stats").stats;
    let i = EventKind::RemoteThread.index();
    (stats.produced[i], stats.delivered[i], stats.dropped[i])
}

#[test]
fn a_remote_thread_arrives_with_every_field_and_a_local_one_not_at_all() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    // A thread the process starts in itself: the common case, not reported.
    m.create_thread(&ThreadCreate {
        target_pid: 4100,
        new_tid: 4108,
        ..injection(0)
    })
    .expect("local thread");
    m.create_thread(&injection(7208)).expect("remote thread");
    m.assert_clean();
    let events = remote_threads(&mut m, h);
    assert_eq!(events.len(), 1, "{events:?}");
    let (pid, tid, body) = events[0];
    assert_eq!(
        (pid, tid),
        (4100, 4104),
        "the creator is the header's origin"
    );
    assert_eq!((body.target_pid, body.new_thread_id), (636, 7208));
    assert_eq!(body.start_address, START);
    assert_eq!(body.flags, REMOTE_THREAD_FLAG_START_ADDRESS);
    assert_eq!(counts(&mut m, h), (1, 1, 0));
    m.close_and_unload(h).expect("close and unload");
}

#[test]
fn a_disabled_kind_makes_no_query() {
    let sys = ringside_sys().expect("build ringside.sys");
    let config = ConfigureRequest {
        event_mask: ALL_EVENTS_MASK & !EventKind::RemoteThread.mask_bit(),
        ..every_kind()
    };
    let (mut m, h) = connected(sys, &config).expect("session");
    m.create_thread(&injection(7300)).expect("remote thread");
    assert_eq!(m.kernel().faults.seen.get("PsLookupThreadByThreadId"), None);
    assert!(remote_threads(&mut m, h).is_empty());
    assert_eq!(counts(&mut m, h), (0, 0, 0));
    m.close_and_unload(h).expect("close and unload");
}

#[test]
fn each_failed_start_address_query_flags_it_missing_and_leaks_nothing() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    let apis = [
        "PsLookupThreadByThreadId",
        "ObOpenObjectByPointer",
        "ZwQueryInformationThread",
    ];
    for (i, api) in apis.iter().enumerate() {
        m.fail_next(api);
        m.create_thread(&injection(7400 + i as u32))
            .expect("remote thread");
        assert_eq!(m.kernel().faults.injected, i + 1, "{api} not reached");
        m.kernel_mut().faults.fail = None;
        let threads = &m.kernel().threads;
        assert!(
            threads.refs.values().all(|n| *n == 0) && threads.handles.is_empty(),
            "{api}: references {:?}, handles {:?}",
            threads.refs,
            threads.handles
        );
    }
    m.assert_clean();
    let events = remote_threads(&mut m, h);
    assert_eq!(events.len(), 3, "still reported: {events:?}");
    for (_, _, body) in &events {
        assert_eq!((body.flags, body.start_address), (0, 0), "{body:?}");
    }
    // The next query succeeds again.
    m.create_thread(&injection(7410)).expect("remote thread");
    assert_eq!(remote_threads(&mut m, h)[0].2.start_address, START);
    let (produced, delivered, dropped) = counts(&mut m, h);
    assert_eq!(produced, delivered + dropped);
    assert_eq!((produced, dropped), (4, 0));
    m.close_and_unload(h).expect("close and unload");
}

#[test]
fn at_apc_level_no_query_is_made_and_the_address_is_flagged_missing() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    m.create_thread(&ThreadCreate {
        irql: APC_LEVEL,
        ..injection(7500)
    })
    .expect("remote thread at APC_LEVEL");
    assert_eq!(m.kernel().faults.seen.get("PsLookupThreadByThreadId"), None);
    m.assert_clean();
    let events = remote_threads(&mut m, h);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].2.flags, events[0].2.start_address), (0, 0));
    m.close_and_unload(h).expect("close and unload");
}

#[test]
fn unload_during_a_thread_notification_removes_the_routine_and_waits_for_it() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, _h) = connected(sys, &every_kind()).expect("session");
    m.kernel_mut().interpose = Some(("ZwQueryInformationThread".into(), unload_from_another_cpu));
    let start = m.kernel().trace.len();
    let error = m
        .create_thread(&injection(7600))
        .expect_err("the unload must block on the in-flight routine");
    assert!(
        error.contains("ExWaitForRundownProtectionRelease")
            && error.contains("1 references still held"),
        "{error}"
    );
    m.removed_before_any_free(start, "PsRemoveCreateThreadNotifyRoutine")
        .expect("the routine removed, nothing freed under it");
    assert!(m.kernel().threads.notify.is_empty());
    let findings = m.findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
}

#[test]
fn a_remote_thread_is_one_event_kind_among_the_others() {
    // The kind's wire value and its counter slot: 13, index 12 (kinds are
    // numbered densely from 1).
    assert_eq!(
        RecordKind::try_from(13),
        Ok(RecordKind::Event(EventKind::RemoteThread))
    );
    assert_eq!(EventKind::RemoteThread.index(), 12);
}
