//! Every event kind through the real driver: scripted file operations
//! (FltMgr callbacks with the ABI oracle's layouts), process and image
//! notifications, drained through the real READ path and decoded by
//! ringside-wire, each field equal to what the scenario supplied.

use ringside_kmodel::agent::connected;
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::file_io::*;
use ringside_kmodel::machine::PASSIVE_LEVEL;
use ringside_kmodel::scenario::{
    HandleOp, KeyOp, ProcessSpec, RegistryKeyOp, RegistrySet, ThreadCreate, USER_LOGON_ID,
    domain_sid, integrity_sid,
};
use ringside_wire::ioctl::ConfigureRequest;
use ringside_wire::{
    ACCESS_FLAG_DESIRED_KNOWN, DELETE_FLAG_DISPOSITION, DELETE_FLAG_ON_CLOSE, EventKind, Record,
    Records,
};

const VOLUME: &str = r"\Device\HarddiskVolume3";

/// What one record must say: kind (None: a `Lost` record), pid, tid,
/// names, and kind-specific numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    kind: Option<EventKind>,
    pid: u32,
    tid: u32,
    names: Vec<String>,
    numbers: Vec<u64>,
}

fn actual(record: &Record<'_>) -> Expected {
    let h = record.header();
    let s = |f: ringside_wire::RawField<'_>| f.chars().collect::<String>();
    let (kind, names, numbers) = match record {
        Record::ProcessCreate(e) => (
            EventKind::ProcessCreate,
            vec![s(e.image_name()), s(e.command_line())],
            vec![u64::from(e.body.parent_pid)],
        ),
        Record::ProcessExit(e) => (
            EventKind::ProcessExit,
            vec![],
            vec![u64::from(e.body.exit_status)],
        ),
        Record::ImageLoad(e) => (
            EventKind::ImageLoad,
            vec![s(e.image_name())],
            vec![e.body.image_base, e.body.image_size],
        ),
        Record::FileCreate(e) => (
            EventKind::FileCreate,
            vec![s(e.name())],
            vec![
                u64::from(e.body.desired_access),
                u64::from(e.body.create_options),
                u64::from(e.body.information),
                u64::from(e.body.status),
            ],
        ),
        Record::FileWrite(e) => (EventKind::FileWrite, vec![s(e.name())], vec![]),
        Record::FileRename(e) => (
            EventKind::FileRename,
            vec![s(e.old_name()), s(e.new_name())],
            vec![u64::from(e.body.information_class), u64::from(e.body.flags)],
        ),
        Record::FileDelete(e) => (
            EventKind::FileDelete,
            vec![s(e.name())],
            vec![u64::from(e.body.information_class), u64::from(e.body.flags)],
        ),
        Record::FileCloseModified(e) => (EventKind::FileCloseModified, vec![s(e.name())], vec![]),
        Record::RegistrySetValue(e) => (
            EventKind::RegistrySetValue,
            vec![s(e.key_name()), s(e.value_name())],
            vec![u64::from(e.body.value_type), u64::from(e.body.data_size)]
                .into_iter()
                .chain(e.data().bytes.iter().map(|b| u64::from(*b)))
                .collect(),
        ),
        Record::RegistryKey(e) => (
            EventKind::RegistryKey,
            vec![s(e.key_name()), s(e.value_name())],
            vec![u64::from(e.body.operation)],
        ),
        Record::RegistryRename(e) => (
            EventKind::RegistryRename,
            vec![s(e.key_name()), s(e.new_name())],
            vec![],
        ),
        Record::ProcessAccess(e) => (
            EventKind::ProcessAccess,
            vec![],
            [
                u64::from(e.body.target_pid),
                u64::from(e.body.target_tid),
                u64::from(e.body.granted_access),
                u64::from(e.body.desired_access),
                u64::from(e.body.flags),
            ]
            .into_iter()
            .chain(e.call_trace())
            .collect(),
        ),
        Record::RemoteThread(e) => (
            EventKind::RemoteThread,
            vec![],
            vec![
                u64::from(e.body.target_pid),
                u64::from(e.body.new_thread_id),
                e.body.start_address,
                u64::from(e.body.flags),
            ],
        ),
        Record::NamedPipe(e) => (
            EventKind::NamedPipe,
            vec![s(e.name())],
            vec![u64::from(e.body.operation)],
        ),
        Record::Lost(e) => {
            return Expected {
                kind: None,
                pid: h.pid,
                tid: h.tid,
                names: vec![],
                numbers: e.body.dropped.to_vec(),
            };
        }
        other => panic!("unexpected record {other:?}"),
    };
    Expected {
        kind: Some(kind),
        pid: h.pid,
        tid: h.tid,
        names,
        numbers,
    }
}

#[test]
fn every_event_kind_arrives_with_the_fields_the_scenario_supplied() {
    let sys = ringside_sys().expect("build ringside.sys");
    // An agent that asks for every kind, FileWrite and FileCloseModified
    // included (the default leaves them out).
    let config = ConfigureRequest {
        event_mask: ringside_wire::kind::ALL_EVENTS_MASK,
        batch_bytes: 64 * 1024,
        max_latency_ms: 50,
        ..ConfigureRequest::default()
    };
    let (mut m, handle) = connected(sys, &config).expect("session");
    let mut expected = Vec::new();
    let word = Requestor {
        pid: 5100,
        tid: 5104,
    };

    let spec = ProcessSpec {
        pid: word.pid,
        parent_pid: 4000,
        creating_pid: 4000,
        creating_tid: 4004,
        image: r"\??\C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE".into(),
        command_line: r#""WINWORD.EXE" /n invoice.docm"#.into(),
        user_sid: domain_sid(1001),
        integrity_sid: integrity_sid(0x2000),
        logon_id: USER_LOGON_ID,
        admin: false,
    };
    let eprocess = m.process_create(&spec).expect("process create");
    expected.push(Expected {
        kind: Some(EventKind::ProcessCreate),
        pid: spec.pid,
        tid: 4004,
        names: vec![spec.image.clone(), spec.command_line.clone()],
        numbers: vec![4000],
    });

    let dll = r"\Device\HarddiskVolume3\Windows\System32\vbe7.dll";
    m.image_load(word.pid, dll, 0x7ffa_1000_0000, 0x2b_0000, 0)
        .expect("image load");
    expected.push(Expected {
        kind: Some(EventKind::ImageLoad),
        pid: word.pid,
        tid: word.pid + 4,
        names: vec![dll.into()],
        numbers: vec![0x7ffa_1000_0000, 0x2b_0000],
    });

    // Create a new file for write; write twice (one FileWrite); a paging
    // write (not a handle write: no event); close after modify.
    let doc = format!(r"{VOLUME}\Users\alice\Documents\q3.docx");
    let f = m.new_file_object(&doc);
    let access = GENERIC_WRITE | SYNCHRONIZE;
    m.file_create(word, f, access, FILE_NON_DIRECTORY_FILE, 0, FILE_CREATED)
        .expect("create");
    expected.push(Expected {
        kind: Some(EventKind::FileCreate),
        pid: word.pid,
        tid: word.tid,
        names: vec![doc.clone()],
        numbers: vec![
            u64::from(access),
            u64::from(FILE_NON_DIRECTORY_FILE),
            FILE_CREATED,
            0,
        ],
    });
    m.file_write(word, f, 4096, false).expect("write 1");
    m.file_write(word, f, 4096, false).expect("write 2");
    m.file_write(word, f, 8192, true).expect("paging write");
    expected.push(Expected {
        kind: Some(EventKind::FileWrite),
        pid: word.pid,
        tid: word.tid,
        names: vec![doc.clone()],
        numbers: vec![],
    });
    m.file_cleanup(word, f).expect("cleanup");
    expected.push(Expected {
        kind: Some(EventKind::FileCloseModified),
        pid: word.pid,
        tid: word.tid,
        names: vec![doc.clone()],
        numbers: vec![],
    });
    // A mapped view flushed to a file no handle wrote: a paging write, its
    // pre-write at APC_LEVEL. Not a write through a stream handle: no
    // record, and no name query (FltMgr refuses names for paging I/O).
    let mapped = m.new_file_object(&format!(r"{VOLUME}\Users\alice\mapped.dat"));
    m.file_write(word, mapped, 4096, true)
        .expect("paging write, mapped view");
    m.free_file_object(f);

    // A read-only open and its cleanup: no event.
    let r = m.new_file_object(&doc);
    m.file_create(
        word,
        r,
        FILE_READ_DATA | SYNCHRONIZE,
        FILE_NON_DIRECTORY_FILE,
        0,
        FILE_OPENED,
    )
    .expect("open read");
    m.file_cleanup(word, r).expect("cleanup read");
    m.free_file_object(r);

    // Open an existing file for write (append), and overwrite one.
    let log = format!(r"{VOLUME}\Users\alice\AppData\Local\Temp\setup.log");
    let a = m.new_file_object(&log);
    m.file_create(word, a, FILE_APPEND_DATA, 0, 0, FILE_OPENED)
        .expect("open for write");
    expected.push(Expected {
        kind: Some(EventKind::FileCreate),
        pid: word.pid,
        tid: word.tid,
        names: vec![log.clone()],
        numbers: vec![u64::from(FILE_APPEND_DATA), 0, FILE_OPENED, 0],
    });
    let o = m.new_file_object(&log);
    m.file_create(word, o, FILE_WRITE_DATA, 0, 0, FILE_OVERWRITTEN)
        .expect("overwrite");
    expected.push(Expected {
        kind: Some(EventKind::FileCreate),
        pid: word.pid,
        tid: word.tid,
        names: vec![log.clone()],
        numbers: vec![u64::from(FILE_WRITE_DATA), 0, FILE_OVERWRITTEN, 0],
    });

    // Rename (old and new name), then delete by disposition.
    let locked = format!("{doc}.locked");
    let h = m.new_file_object(&doc);
    m.file_rename(word, h, &locked, true).expect("rename");
    expected.push(Expected {
        kind: Some(EventKind::FileRename),
        pid: word.pid,
        tid: word.tid,
        names: vec![doc.clone(), locked.clone()],
        numbers: vec![u64::from(FILE_RENAME_INFORMATION), 1],
    });
    m.file_delete_disposition(word, h).expect("delete");
    expected.push(Expected {
        kind: Some(EventKind::FileDelete),
        pid: word.pid,
        tid: word.tid,
        names: vec![locked.clone()],
        numbers: vec![
            u64::from(FILE_DISPOSITION_INFORMATION),
            u64::from(DELETE_FLAG_DISPOSITION),
        ],
    });

    // Delete-on-close requested at open (DELETE access only: no FileCreate).
    let tmp = format!(r"{VOLUME}\Users\alice\AppData\Local\Temp\~WRL0001.tmp");
    let d = m.new_file_object(&tmp);
    m.file_create(word, d, DELETE, FILE_DELETE_ON_CLOSE, 0, FILE_OPENED)
        .expect("delete on close");
    expected.push(Expected {
        kind: Some(EventKind::FileDelete),
        pid: word.pid,
        tid: word.tid,
        names: vec![tmp.clone()],
        numbers: vec![0, u64::from(DELETE_FLAG_ON_CLOSE)],
    });

    // The document's path saved as a recent file: a REG_DWORD value set.
    let recent = r"\REGISTRY\USER\S-1-5-21-1004336348-1177238915-682003330-1001\SOFTWARE\Microsoft\Office\16.0\Word";
    m.registry_set_value(&RegistrySet {
        pid: word.pid,
        key: recent.into(),
        value: "MRUCount".into(),
        value_type: 4,
        data: vec![3, 0, 0, 0],
        status: 0,
    })
    .expect("registry set");
    expected.push(Expected {
        kind: Some(EventKind::RegistrySetValue),
        pid: word.pid,
        tid: word.pid + 4,
        names: vec![recent.into(), "MRUCount".into()],
        numbers: vec![4, 4, 3, 0, 0, 0],
    });

    // Word keeps its place in a key it creates, renames, then deletes.
    let place = r"\REGISTRY\USER\S-1-5-21-1004336348-1177238915-682003330-1001\SOFTWARE\Microsoft\Office\16.0\Word\Place";
    for (op, kind, names, numbers) in [
        (
            KeyOp::Create,
            EventKind::RegistryKey,
            vec![place.to_owned(), String::new()],
            vec![u64::from(ringside_wire::REGISTRY_OP_CREATE_KEY)],
        ),
        (
            KeyOp::Rename("Place2".into()),
            EventKind::RegistryRename,
            vec![place.to_owned(), "Place2".to_owned()],
            vec![],
        ),
        (
            KeyOp::DeleteValue("Pos".into()),
            EventKind::RegistryKey,
            vec![place.to_owned(), "Pos".to_owned()],
            vec![u64::from(ringside_wire::REGISTRY_OP_DELETE_VALUE)],
        ),
    ] {
        m.registry_key_op(&RegistryKeyOp {
            pid: word.pid,
            key: place.into(),
            op,
            status: 0,
        })
        .expect("registry key operation");
        expected.push(Expected {
            kind: Some(kind),
            pid: word.pid,
            tid: word.pid + 4,
            names,
            numbers,
        });
    }
    // Word opens lsass for VM_READ | QUERY_INFORMATION (a process access,
    // with the desired access passed on from the pre-operation callback).
    let trace = vec![0x7ffa_8c39_d4c4, 0x7ffa_8b12_bcde, 0x1a4_c8e7_0c8b];
    m.handle_operation(&HandleOp::open_process(
        word.pid,
        860,
        0x1410,
        trace.clone(),
    ))
    .expect("handle operation");
    expected.push(Expected {
        kind: Some(EventKind::ProcessAccess),
        pid: word.pid,
        tid: word.pid + 4,
        names: vec![],
        numbers: [860, 0, 0x1410, 0x1410, u64::from(ACCESS_FLAG_DESIRED_KNOWN)]
            .into_iter()
            .chain(trace)
            .collect(),
    });
    // Word starts a thread in explorer (a remote thread) and one in itself
    // (not reported).
    for (target, new_tid) in [(1000, 1234), (word.pid, word.tid + 8)] {
        m.create_thread(&ThreadCreate {
            source_pid: word.pid,
            source_tid: word.tid,
            target_pid: target,
            new_tid,
            start_address: 0x7ffb_9e0b_2d50,
            irql: PASSIVE_LEVEL,
        })
        .expect("thread");
    }
    expected.push(Expected {
        kind: Some(EventKind::RemoteThread),
        pid: word.pid,
        tid: word.tid,
        names: vec![],
        numbers: vec![
            1000,
            1234,
            0x7ffb_9e0b_2d50,
            u64::from(ringside_wire::REMOTE_THREAD_FLAG_START_ADDRESS),
        ],
    });

    // Word creates a named pipe (a macro's C2 channel) and connects to it:
    // pipe records, never a FileCreate.
    let pipe = m.new_file_object(r"\Device\NamedPipe\msagent_81");
    m.pipe_create(word, pipe, 0).expect("pipe create");
    m.pipe_connect(word, pipe, 0).expect("pipe connect");
    for operation in [
        ringside_wire::PIPE_OP_CREATED,
        ringside_wire::PIPE_OP_CONNECTED,
    ] {
        expected.push(Expected {
            kind: Some(EventKind::NamedPipe),
            pid: word.pid,
            tid: word.tid,
            names: vec![r"\Device\NamedPipe\msagent_81".into()],
            numbers: vec![u64::from(operation)],
        });
    }
    m.free_file_object(pipe);

    m.process_exit(eprocess, 0).expect("exit");
    expected.push(Expected {
        kind: Some(EventKind::ProcessExit),
        pid: word.pid,
        tid: word.pid + 4,
        names: vec![],
        numbers: vec![0],
    });
    m.assert_clean();

    let batches = m.drain(handle).expect("drain");
    let bytes: Vec<u8> = batches.concat();
    let records: Vec<Record<'_>> = Records::new(&bytes)
        .collect::<Result<_, _>>()
        .expect("decodes");
    let got: Vec<Expected> = records.iter().map(actual).collect();
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "record {i}");
    }
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    // Sequence numbers contiguous from 0; timestamps strictly increasing
    // (each scenario step advances the modelled clock).
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.header().seq, i as u64, "seq of record {i}");
    }
    let events: Vec<_> = records
        .iter()
        .filter(|r| !matches!(r, Record::Lost(_)))
        .collect();
    for pair in events.windows(2) {
        assert!(
            pair[1].header().timestamp > pair[0].header().timestamp,
            "timestamps {pair:?}"
        );
    }
    let stats = m.stats(handle).expect("stats").stats;
    // Nothing dropped: the paging write (pre-write at APC_LEVEL, as the
    // memory manager issues it) is skipped before any name is asked for.
    assert_eq!(
        stats.dropped,
        [0; ringside_wire::EVENT_KIND_COUNT],
        "{stats:?}"
    );
    let kinds_seen: std::collections::BTreeSet<_> = got.iter().filter_map(|e| e.kind).collect();
    assert_eq!(
        kinds_seen.len(),
        ringside_wire::EVENT_KIND_COUNT,
        "every kind once at least"
    );

    for file in [a, o, h, d, mapped] {
        m.free_file_object(file);
    }
    m.close_device(handle).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

/// Renames and deletes are reported with their outcome: one the file system
/// refused (a sharing violation, access denied) changed nothing and
/// produces no record; the same request succeeding afterwards does.
#[test]
fn failed_renames_and_deletes_are_not_reported() {
    const STATUS_ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32;
    const STATUS_SHARING_VIOLATION: i32 = 0xC000_0043_u32 as i32;
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, handle) = connected(sys, &ConfigureRequest::default()).expect("session");
    let who = Requestor {
        pid: 4242,
        tid: 4246,
    };
    let old = format!(r"{VOLUME}\Users\bob\report.xlsx");
    let new = format!(r"{VOLUME}\Users\bob\report.xlsx.crypt");
    let f = m.new_file_object(&old);
    let target: Vec<u8> = new.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut rename = vec![0u8; 20];
    rename[16..20].copy_from_slice(&(target.len() as u32).to_le_bytes());
    rename.extend_from_slice(&target);
    m.file_set_information_completing(
        who,
        f,
        FILE_RENAME_INFORMATION,
        &rename,
        STATUS_SHARING_VIOLATION,
    )
    .expect("refused rename");
    m.file_set_information_completing(
        who,
        f,
        FILE_DISPOSITION_INFORMATION,
        &[1],
        STATUS_ACCESS_DENIED,
    )
    .expect("refused delete");
    let refused: Vec<u8> = m.drain(handle).expect("drain").concat();
    assert!(
        Records::new(&refused).next().is_none(),
        "a refused rename or delete was reported: {:?}",
        Records::new(&refused).collect::<Vec<_>>()
    );
    m.file_set_information(who, f, FILE_RENAME_INFORMATION, &rename)
        .expect("rename");
    let done: Vec<u8> = m.drain(handle).expect("drain").concat();
    let records: Vec<Record<'_>> = Records::new(&done)
        .collect::<Result<_, _>>()
        .expect("decodes");
    let [Record::FileRename(r)] = records.as_slice() else {
        panic!("expected one rename record, got {records:?}");
    };
    assert_eq!(r.old_name().chars().collect::<String>(), old);
    assert_eq!(r.new_name().chars().collect::<String>(), new);
    let stats = m.stats(handle).expect("stats").stats;
    assert_eq!(stats.dropped.iter().sum::<u64>(), 0, "{stats:?}");
    m.free_file_object(f);
    m.close_device(handle).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

/// Unless the agent asks for them, writes and closes after a write cost the
/// kernel nothing: no name query, no record, no drop.
#[test]
fn writes_and_modified_closes_are_produced_only_when_asked_for() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, handle) = connected(sys, &ConfigureRequest::default()).expect("session");
    let who = Requestor { pid: 515, tid: 516 };
    let f = m.new_file_object(&format!(r"{VOLUME}\Users\carol\notes.txt"));
    let queries_before = name_queries(&m);
    m.file_write(who, f, 4096, false).expect("write");
    m.file_cleanup(who, f).expect("cleanup");
    assert_eq!(name_queries(&m), queries_before, "no name was queried");
    let records = m.drain(handle).expect("drain").concat();
    assert!(Records::new(&records).next().is_none(), "no record");
    let stats = m.stats(handle).expect("stats").stats;
    for kind in [EventKind::FileWrite, EventKind::FileCloseModified] {
        assert_eq!(stats.produced[kind.index()], 0, "{kind:?}");
        assert_eq!(stats.dropped[kind.index()], 0, "{kind:?}");
    }
    // Asked for: the same operations produce both.
    let all = ConfigureRequest {
        event_mask: ringside_wire::kind::ALL_EVENTS_MASK,
        ..ConfigureRequest::default()
    };
    use zerocopy::IntoBytes;
    let done = m
        .ioctl_now(
            handle,
            ringside_wire::ioctl::IOCTL_CONFIGURE,
            all.as_bytes(),
            0,
        )
        .expect("configure");
    assert_eq!(done.status, 0);
    m.file_write(who, f, 4096, false).expect("write");
    m.file_cleanup(who, f).expect("cleanup");
    let records = m.drain(handle).expect("drain").concat();
    let kinds: Vec<EventKind> = Records::new(&records)
        .map(|r| match r.expect("decodes") {
            Record::FileWrite(_) => EventKind::FileWrite,
            Record::FileCloseModified(_) => EventKind::FileCloseModified,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(kinds, [EventKind::FileWrite, EventKind::FileCloseModified]);
    m.free_file_object(f);
    m.close_device(handle).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

fn name_queries(m: &ringside_kmodel::Machine) -> usize {
    m.kernel()
        .trace
        .iter()
        .filter(|api| api.starts_with("FltGet") && api.contains("NameInformation"))
        .count()
}

/// An alternate data stream (Sysmon 15): with the kind the agent asks for
/// when a configuration or rule wants streams (the closes of modified
/// handles, off by default), a stream written through its own handle
/// arrives at the handle's close named `file:stream`, as FltMgr gave the
/// name, for the agent to tell from the file's unnamed stream. A stream
/// opened and closed without a write is no such close; a write whose
/// name query fails is a counted drop; the counters balance.
#[test]
fn a_written_named_stream_arrives_at_close_with_its_stream_name() {
    let sys = ringside_sys().expect("build ringside.sys");
    let streams = ConfigureRequest {
        event_mask: ringside_wire::kind::DEFAULT_EVENTS_MASK
            | EventKind::FileCloseModified.mask_bit(),
        ..ConfigureRequest::default()
    };
    let (mut m, handle) = connected(sys, &streams).expect("session");
    let browser = Requestor {
        pid: 6120,
        tid: 6124,
    };
    let file = format!(r"{VOLUME}\Users\carol\Downloads\tool.exe");
    let zone = format!("{file}:Zone.Identifier");
    // The download, then its mark of the web, each written and closed.
    for name in [&file, &zone] {
        let f = m.new_file_object(name);
        m.file_create(browser, f, FILE_WRITE_DATA, 0, 0, FILE_CREATED)
            .expect("create");
        m.file_write(browser, f, 26, false).expect("write");
        m.file_cleanup(browser, f).expect("cleanup");
        m.free_file_object(f);
    }
    // Opened for write, never written: no close record.
    let idle = m.new_file_object(&format!("{file}:empty"));
    m.file_create(browser, idle, FILE_WRITE_DATA, 0, 0, FILE_OPENED)
        .expect("create");
    m.file_cleanup(browser, idle).expect("cleanup");
    m.free_file_object(idle);
    // A stream write whose name FltMgr cannot give at close.
    let lost = m.new_file_object(&format!("{file}:lost"));
    m.file_write(browser, lost, 8, false).expect("write");
    m.fail_next("FltGetFileNameInformation");
    m.file_cleanup(browser, lost).expect("cleanup");
    m.free_file_object(lost);

    let records = m.drain(handle).expect("drain").concat();
    let closes: Vec<(u32, String)> = Records::new(&records)
        .filter_map(|r| match r.expect("decodes") {
            Record::FileCloseModified(e) => {
                Some((e.header.pid, e.name().chars().collect::<String>()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(closes, [(6120, file.clone()), (6120, zone.clone())]);
    let stats = m.stats(handle).expect("stats").stats;
    let i = EventKind::FileCloseModified.index();
    assert_eq!((stats.produced[i], stats.dropped[i]), (3, 1));
    for k in 0..ringside_wire::EVENT_KIND_COUNT {
        assert_eq!(
            stats.produced[k],
            stats.delivered[k] + stats.dropped[k],
            "{:?}",
            EventKind::ALL[k]
        );
    }
    m.close_device(handle).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}
