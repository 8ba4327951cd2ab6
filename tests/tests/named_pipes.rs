//! Named pipes (Sysmon 17 and 18) through the real driver: the filter is
//! offered the named-pipe (NPFS) and mailslot (MSFS) file systems, attaches
//! to NPFS and declines MSFS; a server's `IRP_MJ_CREATE_NAMED_PIPE` is a
//! pipe created, a client's `IRP_MJ_CREATE` on NPFS a pipe connected and
//! never a FileCreate; failed operations are not reported; a failed name
//! query is a counted drop; the kind switched off makes no query; an unload
//! waits for a callback in flight; several CPUs interleave creates and
//! connects with every count balanced.

use ringside_kmodel::Machine;
use ringside_kmodel::agent::{Handle, connected, connected_on, every_kind};
use ringside_kmodel::api::flt::{FileSystem, Instance};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::file_io::*;
use ringside_kmodel::machine::unload_from_another_cpu;
use ringside_kmodel::smp::Schedule;
use ringside_wire::ioctl::ConfigureRequest;
use ringside_wire::kind::ALL_EVENTS_MASK;
use ringside_wire::{
    DropReason, EventKind, NamedPipe, PIPE_OP_CONNECTED, PIPE_OP_CREATED, Record, RecordKind,
    Records,
};

const PIPE: &str = r"\Device\NamedPipe\MSSE-1234-server";
const STATUS_FLT_DO_NOT_ATTACH: i32 = 0xC01C_000F_u32 as i32;
/// A server's create of an instance beyond the pipe's maximum.
const STATUS_INSTANCE_NOT_AVAILABLE: i32 = 0xC000_00AB_u32 as i32;
/// A client's open of a pipe with no listening instance.
const STATUS_PIPE_NOT_AVAILABLE: i32 = 0xC000_00AC_u32 as i32;
const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;
const STATUS_REPARSE: i32 = 0x0000_0104;

const SERVER: Requestor = Requestor {
    pid: 4100,
    tid: 4104,
};
const CLIENT: Requestor = Requestor {
    pid: 5200,
    tid: 5204,
};

/// A pipe record: (pid, tid, operation, name).
type Pipe = (u32, u32, u32, String);

/// Every pipe record drained, and the kinds of all records.
fn pipes(m: &mut Machine, h: Handle) -> (Vec<Pipe>, Vec<u16>) {
    let bytes = m.drain(h).expect("drain").concat();
    let mut pipes = Vec::new();
    let mut kinds = Vec::new();
    for record in Records::new(&bytes) {
        let record = record.expect("decodes");
        kinds.push(record.header().kind);
        if let Record::NamedPipe(e) = record {
            let body: NamedPipe = e.body;
            pipes.push((
                e.header.pid,
                e.header.tid,
                body.operation,
                e.name().chars().collect(),
            ));
        }
    }
    (pipes, kinds)
}

fn counts(m: &mut Machine, h: Handle, kind: EventKind) -> (u64, u64, u64) {
    let stats = m.stats(h).expect("stats").stats;
    let i = kind.index();
    (stats.produced[i], stats.delivered[i], stats.dropped[i])
}

fn name_queries(m: &Machine) -> usize {
    m.kernel()
        .faults
        .seen
        .get("FltGetFileNameInformation")
        .copied()
        .unwrap_or(0)
}

#[test]
fn the_filter_attaches_to_named_pipes_and_declines_mailslots() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    let answers = m.kernel().flt.setup_answers.clone();
    assert_eq!(
        answers,
        [
            (FileSystem::Disk, 0),
            (FileSystem::Npfs, 0),
            (FileSystem::Msfs, STATUS_FLT_DO_NOT_ATTACH),
        ]
    );
    // A mailslot opened for write is not seen at all (no instance there),
    // while the same open on the disk is a FileCreate.
    let mailslot = m.new_file_object(r"\Device\Mailslot\net\NETLOGON");
    m.file_create(CLIENT, mailslot, FILE_WRITE_DATA, 0, 0, FILE_OPENED)
        .expect("mailslot open");
    let file = m.new_file_object(r"\Device\HarddiskVolume3\Users\alice\x.txt");
    m.file_create(CLIENT, file, FILE_WRITE_DATA, 0, 0, FILE_CREATED)
        .expect("file create");
    m.assert_clean();
    let (pipes, kinds) = pipes(&mut m, h);
    assert!(pipes.is_empty());
    assert_eq!(kinds, [EventKind::FileCreate as u16]);
    m.close_and_unload(h).expect("close and unload");
}

#[test]
fn a_created_and_a_connected_pipe_arrive_with_their_fields_and_no_file_create() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    let pipe = m.new_file_object(PIPE);
    m.pipe_create(SERVER, pipe, 0).expect("create");
    m.pipe_connect(CLIENT, pipe, 0).expect("connect");
    // Written through and closed: a pipe is not a file.
    m.file_write(CLIENT, pipe, 64, false).expect("write");
    m.file_cleanup(CLIENT, pipe).expect("cleanup");
    m.assert_clean();
    let (pipes, kinds) = pipes(&mut m, h);
    assert_eq!(
        pipes,
        [
            (4100, 4104, PIPE_OP_CREATED, PIPE.to_owned()),
            (5200, 5204, PIPE_OP_CONNECTED, PIPE.to_owned()),
        ]
    );
    assert_eq!(kinds, [14, 14], "a pipe open is never also a file event");
    assert_eq!(counts(&mut m, h, EventKind::NamedPipe), (2, 2, 0));
    for kind in [
        EventKind::FileCreate,
        EventKind::FileWrite,
        EventKind::FileCloseModified,
    ] {
        assert_eq!(counts(&mut m, h, kind), (0, 0, 0), "{kind:?}");
    }
    m.close_and_unload(h).expect("close and unload");
}

/// `fltmc detach` from NPFS: the InstanceTeardownCompleteCallback forgets
/// the pipe instance. When FltMgr then reuses that instance's memory for an
/// instance on a disk volume (here: the disk detached too, and attached
/// again in it), the disk's file opens are file creates, not pipe
/// connects; and pipes on the detached NPFS are no longer seen.
#[test]
fn a_detached_pipe_instance_is_forgotten_before_its_memory_is_reused() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    let npfs = m.detach(FileSystem::Npfs).expect("detach NPFS");
    let disk = m.detach(FileSystem::Disk).expect("detach the disk");
    m.free_instance(disk);
    m.free_instance(Instance {
        instance: 0,
        ..npfs
    });
    assert_eq!(m.attach(FileSystem::Disk, npfs.instance), Ok(0));
    let file = m.new_file_object(r"\Device\HarddiskVolume3\Users\carol\new.txt");
    m.file_create(CLIENT, file, FILE_WRITE_DATA, 0, 0, FILE_CREATED)
        .expect("create");
    let pipe = m.new_file_object(PIPE);
    m.pipe_create(SERVER, pipe, 0).expect("create");
    m.pipe_connect(CLIENT, pipe, 0).expect("connect");
    m.assert_clean();
    let (pipes, kinds) = pipes(&mut m, h);
    assert!(pipes.is_empty(), "{pipes:?}");
    assert_eq!(kinds, [EventKind::FileCreate as u16]);
    m.close_and_unload(h).expect("close and unload");
}

/// A rename or delete asked of a pipe handle (which the named-pipe file
/// system refuses) is no file event and no drop: the driver asks NPFS for
/// no name it does not have.
#[test]
fn a_pipe_renamed_or_deleted_is_no_file_event_and_no_drop() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    let pipe = m.new_file_object(PIPE);
    m.file_delete_disposition(CLIENT, pipe).expect("delete");
    m.file_rename(CLIENT, pipe, r"\Device\NamedPipe\renamed", true)
        .expect("rename");
    assert_eq!(name_queries(&m), 0);
    m.assert_clean();
    let (_, kinds) = pipes(&mut m, h);
    assert!(kinds.is_empty(), "{kinds:?}");
    for kind in [EventKind::FileRename, EventKind::FileDelete] {
        assert_eq!(counts(&mut m, h, kind), (0, 0, 0), "{kind:?}");
    }
    m.close_and_unload(h).expect("close and unload");
}

#[test]
fn failed_creates_and_connects_are_not_reported_and_query_nothing() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    let pipe = m.new_file_object(PIPE);
    m.pipe_create(SERVER, pipe, STATUS_INSTANCE_NOT_AVAILABLE)
        .expect("failed create");
    m.pipe_connect(CLIENT, pipe, STATUS_PIPE_NOT_AVAILABLE)
        .expect("failed connect");
    let missing = m.new_file_object(r"\Device\NamedPipe\nobody-listens");
    m.pipe_connect(CLIENT, missing, STATUS_OBJECT_NAME_NOT_FOUND)
        .expect("failed connect");
    // A success status for an open sent elsewhere (a symbolic link to the
    // pipe): nothing was opened here.
    m.pipe_connect(CLIENT, pipe, STATUS_REPARSE)
        .expect("reparsed connect");
    assert_eq!(name_queries(&m), 0);
    m.assert_clean();
    let (pipes, kinds) = pipes(&mut m, h);
    assert!(pipes.is_empty() && kinds.is_empty(), "{kinds:?}");
    assert_eq!(counts(&mut m, h, EventKind::NamedPipe), (0, 0, 0));
    m.close_and_unload(h).expect("close and unload");
}

#[test]
fn a_failed_name_query_is_a_counted_drop_and_leaks_nothing() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    let pipe = m.new_file_object(PIPE);
    m.fail_next("FltGetFileNameInformation");
    m.pipe_create(SERVER, pipe, 0).expect("create");
    assert_eq!(
        m.kernel().faults.injected,
        1,
        "the create's query not reached"
    );
    m.fail_next("FltGetFileNameInformation");
    m.pipe_connect(CLIENT, pipe, 0).expect("connect");
    assert_eq!(
        m.kernel().faults.injected,
        2,
        "the connect's query not reached"
    );
    m.kernel_mut().faults.fail = None;
    // The next ones succeed again.
    m.pipe_connect(CLIENT, pipe, 0).expect("connect");
    m.assert_clean();
    let (pipes, kinds) = pipes(&mut m, h);
    assert_eq!(pipes.len(), 1, "{pipes:?}");
    assert_eq!(pipes[0].2, PIPE_OP_CONNECTED);
    // The drops are in band too: a Lost record ahead of the delivered one.
    assert_eq!(kinds, [ringside_wire::kind::KIND_LOST, 14]);
    let stats = m.stats(h).expect("stats").stats;
    assert_eq!(stats.dropped_by_reason[DropReason::QueryFailed.index()], 2);
    let (produced, delivered, dropped) = counts(&mut m, h, EventKind::NamedPipe);
    assert_eq!(produced, delivered + dropped);
    assert_eq!((produced, delivered, dropped), (3, 1, 2));
    assert_eq!(counts(&mut m, h, EventKind::FileCreate), (0, 0, 0));
    m.close_and_unload(h).expect("close and unload");
}

#[test]
fn the_kind_switched_off_produces_nothing_and_queries_nothing() {
    let sys = ringside_sys().expect("build ringside.sys");
    let config = ConfigureRequest {
        event_mask: ALL_EVENTS_MASK & !EventKind::NamedPipe.mask_bit(),
        ..every_kind()
    };
    let (mut m, h) = connected(sys, &config).expect("session");
    let pipe = m.new_file_object(PIPE);
    m.pipe_create(SERVER, pipe, 0).expect("create");
    m.pipe_connect(CLIENT, pipe, 0).expect("connect");
    assert_eq!(name_queries(&m), 0);
    m.assert_clean();
    let (pipes, kinds) = pipes(&mut m, h);
    assert!(pipes.is_empty() && kinds.is_empty(), "{kinds:?}");
    assert_eq!(counts(&mut m, h, EventKind::NamedPipe), (0, 0, 0));
    // Off, a connect is still not a FileCreate.
    assert_eq!(counts(&mut m, h, EventKind::FileCreate), (0, 0, 0));
    m.close_and_unload(h).expect("close and unload");
}

#[test]
fn unload_during_a_pipe_callback_unregisters_the_filter_and_waits_for_it() {
    for connect in [false, true] {
        let sys = ringside_sys().expect("build ringside.sys");
        let (mut m, _h) = connected(sys, &every_kind()).expect("session");
        let pipe = m.new_file_object(PIPE);
        m.kernel_mut().interpose =
            Some(("FltGetFileNameInformation".into(), unload_from_another_cpu));
        let start = m.kernel().trace.len();
        let result = if connect {
            m.pipe_connect(CLIENT, pipe, 0)
        } else {
            m.pipe_create(SERVER, pipe, 0)
        };
        let error = result.expect_err("the unload must block on the in-flight callback");
        assert!(
            error.contains("ExWaitForRundownProtectionRelease")
                && error.contains("1 references still held"),
            "{error}"
        );
        m.removed_before_any_free(start, "FltUnregisterFilter")
            .expect("the filter unregistered, nothing freed under the callback");
        let findings = m.findings();
        assert_eq!(findings.len(), 1, "{findings:?}");
    }
}

#[test]
fn pipes_on_several_cpus_interleave_with_every_count_balanced() {
    let sys = ringside_sys().expect("build ringside.sys");
    for seed in 0..12 {
        let (mut m, h) = connected_on(sys, &every_kind(), Some(64 * 1024), 3).expect("session");
        // Per CPU, four pipes: four creates, and three connects (the third
        // fails).
        let plan: Vec<_> = (0..3).map(|cpu| m.pipe_plan(cpu, 4)).collect();
        let expected = 3 * 7;
        let report = m
            .run_smp(plan, Schedule::new(seed))
            .expect("interleaved run");
        assert!(report.switches > 0, "seed {seed}: no interleaving");
        m.assert_clean();
        let (pipes, kinds) = pipes(&mut m, h);
        // Pipe records, and Lost records for what a full or contended
        // lane dropped (counted below).
        assert!(
            kinds
                .iter()
                .all(|k| *k == 14 || *k == ringside_wire::kind::KIND_LOST),
            "seed {seed}: only pipe records: {kinds:?}"
        );
        let (produced, delivered, dropped) = counts(&mut m, h, EventKind::NamedPipe);
        assert_eq!(produced, delivered + dropped, "seed {seed}");
        // What was dropped, a lane had no room for; every name was had.
        let stats = m.stats(h).expect("stats").stats;
        for reason in [DropReason::QueryFailed, DropReason::Irql] {
            assert_eq!(stats.dropped_by_reason[reason.index()], 0, "seed {seed}");
        }
        assert!(delivered > 0, "seed {seed}");
        assert_eq!(
            (produced, delivered),
            (expected, pipes.len() as u64),
            "seed {seed}"
        );
        // Each CPU's creates and connects, each named and attributed as made.
        for (pid, tid, operation, name) in &pipes {
            let (cpu, server) = match *pid {
                900..=902 => (pid - 900, true),
                _ => (pid - 1900, false),
            };
            assert_eq!(*tid, pid + 4, "seed {seed}");
            assert_eq!(
                *operation,
                if server {
                    PIPE_OP_CREATED
                } else {
                    PIPE_OP_CONNECTED
                }
            );
            assert!(
                name.starts_with(&format!(r"\Device\NamedPipe\cpu{cpu}_")),
                "seed {seed}: {name}"
            );
        }
        m.close_and_unload(h).expect("close and unload");
    }
}

#[test]
fn a_named_pipe_is_one_event_kind_among_the_others() {
    // Wire value 14, counter index 13 (kinds are numbered densely from 1).
    assert_eq!(
        RecordKind::try_from(14),
        Ok(RecordKind::Event(EventKind::NamedPipe))
    );
    assert_eq!(EventKind::NamedPipe.index(), 13);
    assert_ne!(
        ringside_wire::kind::DEFAULT_EVENTS_MASK & EventKind::NamedPipe.mask_bit(),
        0
    );
}
