//! Fault injection on the event path: a kernel query an event needs fails;
//! the event is dropped and counted (STATS, `DropReason::QueryFailed`),
//! nothing leaks (name information, pool: checked at unload), and the next
//! event arrives after an in-band `Lost` record.

use ringside_kmodel::Machine;
use ringside_kmodel::agent::connected;
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::file_io::*;
use ringside_kmodel::scenario::{ProcessSpec, USER_LOGON_ID, domain_sid, integrity_sid};
use ringside_wire::ioctl::ConfigureRequest;
use ringside_wire::{DropReason, EventKind, Record, RecordKind, Records};

const WHO: Requestor = Requestor {
    pid: 3300,
    tid: 3304,
};

fn process(pid: u32) -> ProcessSpec {
    ProcessSpec {
        pid,
        parent_pid: 1000,
        creating_pid: 1000,
        creating_tid: 1004,
        image: r"\??\C:\Windows\System32\whoami.exe".into(),
        command_line: "whoami /all".into(),
        user_sid: domain_sid(1001),
        integrity_sid: integrity_sid(0x2000),
        logon_id: USER_LOGON_ID,
        admin: false,
    }
}

#[test]
fn a_failed_query_drops_and_counts_the_event_and_leaks_nothing() {
    let sys = ringside_sys().expect("build ringside.sys");
    // Every kind asked for (FileWrite and FileCloseModified included).
    let config = ConfigureRequest {
        event_mask: ringside_wire::kind::ALL_EVENTS_MASK,
        batch_bytes: 64 * 1024,
        max_latency_ms: 50,
        ..ConfigureRequest::default()
    };
    let (mut m, h) = connected(sys, &config).expect("session");
    let file =
        |m: &mut Machine, n: &str| m.new_file_object(&format!(r"\Device\HarddiskVolume3\data\{n}"));

    type Step = Box<dyn Fn(&mut Machine) -> Result<(), String>>;
    let cases: Vec<(&str, EventKind, Step)> = vec![
        (
            "FltGetFileNameInformation",
            EventKind::FileCreate,
            Box::new(move |m| {
                let f = file(m, "a.txt");
                m.file_create(WHO, f, FILE_WRITE_DATA, 0, 0, FILE_CREATED)?;
                m.free_file_object(f);
                Ok(())
            }),
        ),
        (
            "FltGetFileNameInformation",
            EventKind::FileWrite,
            Box::new(move |m| {
                let f = file(m, "b.txt");
                m.file_write(WHO, f, 10, false)?;
                m.free_file_object(f);
                Ok(())
            }),
        ),
        (
            "FltGetDestinationFileNameInformation",
            EventKind::FileRename,
            Box::new(move |m| {
                let f = file(m, "c.txt");
                m.file_rename(WHO, f, r"\Device\HarddiskVolume3\data\c.txt.locked", false)?;
                m.free_file_object(f);
                Ok(())
            }),
        ),
        (
            "FltGetFileNameInformation",
            EventKind::FileDelete,
            Box::new(move |m| {
                let f = file(m, "d.txt");
                m.file_delete_disposition(WHO, f)?;
                m.free_file_object(f);
                Ok(())
            }),
        ),
    ];
    let mut dropped = [0u64; ringside_wire::EVENT_KIND_COUNT];
    for (api, kind, step) in cases {
        let before = m.kernel().faults.injected;
        m.fail_next(api);
        step(&mut m).unwrap_or_else(|e| panic!("{api} failing: {e}"));
        assert_eq!(
            m.kernel().faults.injected,
            before + 1,
            "{api} was not called for {kind:?}"
        );
        m.kernel_mut().faults.fail = None;
        dropped[kind.index()] += 1;
        m.assert_clean();
        let stats = m.stats(h).expect("stats").stats;
        assert_eq!(stats.dropped, dropped, "{api} failing for {kind:?}");
        assert_eq!(
            stats.dropped_by_reason[DropReason::QueryFailed.index()],
            dropped.iter().sum::<u64>(),
            "counted as QueryFailed"
        );
        // Nothing of the failed event reached the ring.
        assert!(m.drained_kinds(h).is_empty(), "{kind:?} with {api} failing");
        // The same operation without the fault: Lost, then the event.
        step(&mut m).expect("step");
        assert_eq!(
            m.drained_kinds(h),
            vec![RecordKind::Lost, RecordKind::Event(kind)],
            "after {api} failed"
        );
    }
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

/// A failed token query does not cost the process event: the driver emits
/// it with that SID empty, or with the logon session marked unknown (the
/// image and command line are the evidence), and frees the token
/// information it did get (checked at unload).
#[test]
fn a_failed_token_query_keeps_the_process_event_without_that_sid() {
    let sys = ringside_sys().expect("build ringside.sys");
    let config = ConfigureRequest {
        batch_bytes: 64 * 1024,
        max_latency_ms: 50,
        ..ConfigureRequest::default()
    };
    let (mut m, h) = connected(sys, &config).expect("session");
    // SeQueryInformationToken for TokenUser first and TokenIntegrityLevel
    // second; then SeQueryAuthenticationIdToken for the logon session.
    for (occurrence, pid) in [(0usize, 6001u32), (1, 6002), (2, 6003)] {
        let (call, nth) = match occurrence {
            2 => ("SeQueryAuthenticationIdToken", 0),
            n => ("SeQueryInformationToken", n),
        };
        let next = m.kernel().faults.seen.get(call).copied().unwrap_or(0);
        m.kernel_mut().faults.fail = Some((call.into(), next + nth));
        let spec = process(pid);
        m.process_create(&spec).expect("process create");
        assert_eq!(m.kernel().faults.injected, occurrence + 1);
        m.assert_clean();
        let bytes = m.drain(h).expect("drain").concat();
        let records: Vec<_> = Records::new(&bytes)
            .collect::<Result<_, _>>()
            .expect("decodes");
        assert_eq!(records.len(), 1);
        let Record::ProcessCreate(e) = &records[0] else {
            panic!("{records:?}")
        };
        assert_eq!(e.header.pid, pid);
        let (user, integrity) = (
            e.user_sid().bytes.to_vec(),
            e.integrity_sid().bytes.to_vec(),
        );
        let logon_id = e.logon_id();
        match occurrence {
            0 => assert!(
                user.is_empty() && integrity == spec.integrity_sid,
                "user query failed: {user:?} {integrity:?}"
            ),
            1 => assert!(
                integrity.is_empty() && user == spec.user_sid,
                "integrity query failed: {user:?} {integrity:?}"
            ),
            _ => assert!(
                user == spec.user_sid && integrity == spec.integrity_sid,
                "logon session query failed: {user:?} {integrity:?}"
            ),
        }
        if occurrence == 2 {
            assert_eq!(logon_id, None, "logon session query failed");
            assert_eq!(e.body.logon_id, 0);
        } else {
            assert_eq!(logon_id, Some(spec.logon_id), "query {occurrence} failed");
        }
    }
    assert_eq!(
        m.stats(h).expect("stats").stats.dropped.iter().sum::<u64>(),
        0
    );
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}
