//! Process access (Sysmon 10) through the real driver: the object
//! manager's post-operation callback reports a successful process or
//! thread handle open or duplication with the granted and desired access,
//! the target's ids and the requesting thread's user-mode call trace; a
//! failed open is not reported; a process opening itself and the agent's
//! own opens are not reported; a disabled kind walks no stack; a failed
//! stack walk still reports the access; a failed ObRegisterCallbacks loads
//! the driver without the kind (and HELLO says so); an unload with a
//! callback in flight unregisters first and waits for it.

use ringside_kmodel::Machine;
use ringside_kmodel::agent::{AGENT_PID, Handle, connected, every_kind};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::machine::{assert_unload_waited_for_callback, unload_from_another_cpu};
use ringside_kmodel::scenario::HandleOp;
use ringside_wire::ioctl::{ConfigureRequest, HelloRequest, HelloResponse, IOCTL_HELLO};
use ringside_wire::kind::ALL_EVENTS_MASK;
use ringside_wire::{
    ACCESS_FLAG_DESIRED_KNOWN, ACCESS_FLAG_DUPLICATE, ACCESS_FLAG_KERNEL_HANDLE,
    ACCESS_FLAG_THREAD, EventKind, HEADER_FLAG_TRUNCATED, MAX_CALL_FRAMES, Record, RecordKind,
    Records,
};
use zerocopy::{FromBytes, IntoBytes};

const STATUS_ACCESS_DENIED: i32 = 0xC000_0022_u32 as i32;
/// PROCESS_VM_READ | PROCESS_QUERY_INFORMATION, as Mimikatz asks of lsass.
const VM_READ_QUERY: u32 = 0x1410;
const LSASS: u32 = 860;

/// A user-mode call trace: ntdll's syscall return, then the caller.
fn frames(n: u64) -> Vec<u64> {
    (0..n)
        .map(|i| 0x7ffa_8c30_0000 + 0x1000 * i + 0x4c4)
        .collect()
}

fn walks(m: &Machine) -> usize {
    m.kernel()
        .trace
        .iter()
        .filter(|a| **a == "RtlWalkFrameChain")
        .count()
}

fn finish(mut m: Machine, h: Handle) {
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
    assert!(m.kernel().ob.registrations.is_empty());
}

#[test]
fn an_open_arrives_with_every_field_and_its_call_trace() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    // A process open for VM_READ | QUERY_INFORMATION, granted as asked.
    m.handle_operation(&HandleOp::open_process(
        5000,
        LSASS,
        VM_READ_QUERY,
        frames(6),
    ))
    .expect("open");
    // A thread handle duplicated, granted less than asked, by a kernel
    // handle, with a call trace longer than the record keeps.
    m.handle_operation(&HandleOp {
        target_tid: Some(1234),
        desired: 0x1fffff,
        granted: 0x1fffff & !0x0001,
        duplicate: true,
        kernel_handle: true,
        ..HandleOp::open_process(5000, 700, 0, frames(40))
    })
    .expect("duplicate");
    let bytes = m.drained(h);
    let events: Vec<_> = Records::new(&bytes)
        .map(|r| match r {
            Ok(Record::ProcessAccess(e)) => e,
            other => panic!("not a process access: {other:?}"),
        })
        .collect();
    let [open, duplicate] = events.as_slice() else {
        panic!("two events, got {}", events.len())
    };
    assert_eq!((open.header.pid, open.header.tid), (5000, 5004));
    assert_eq!(
        (
            open.body.target_pid,
            open.body.target_tid,
            open.body.granted_access,
            open.body.desired_access,
            open.body.flags
        ),
        (
            LSASS,
            0,
            VM_READ_QUERY,
            VM_READ_QUERY,
            ACCESS_FLAG_DESIRED_KNOWN
        )
    );
    assert_eq!(open.call_trace().collect::<Vec<_>>(), frames(6));
    assert_eq!(open.header.flags & HEADER_FLAG_TRUNCATED, 0);
    assert_eq!(
        (
            duplicate.body.target_pid,
            duplicate.body.target_tid,
            duplicate.body.granted_access,
            duplicate.body.desired_access
        ),
        (700, 1234, 0x1ffffe, 0x1fffff)
    );
    assert_eq!(
        duplicate.body.flags,
        ACCESS_FLAG_DUPLICATE
            | ACCESS_FLAG_THREAD
            | ACCESS_FLAG_KERNEL_HANDLE
            | ACCESS_FLAG_DESIRED_KNOWN
    );
    assert_eq!(
        duplicate.call_trace().collect::<Vec<_>>(),
        frames(MAX_CALL_FRAMES as u64)
    );
    let stats = m.stats(h).expect("stats").stats;
    let i = EventKind::ProcessAccess.index();
    assert_eq!(
        (stats.produced[i], stats.delivered[i], stats.dropped[i]),
        (2, 2, 0)
    );
    finish(m, h);
}

#[test]
fn failed_opens_self_access_and_the_agent_are_not_reported() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    m.handle_operation(&HandleOp {
        status: STATUS_ACCESS_DENIED,
        ..HandleOp::open_process(5100, LSASS, VM_READ_QUERY, frames(4))
    })
    .expect("denied open");
    // A process opening itself, and one of its own threads.
    m.handle_operation(&HandleOp::open_process(5100, 5100, 0x1fffff, frames(4)))
        .expect("self");
    m.handle_operation(&HandleOp {
        target_tid: Some(5104),
        ..HandleOp::open_process(5100, 5100, 0x1fffff, frames(4))
    })
    .expect("own thread");
    // The agent (the device's consumer) reading a new process's PEB.
    m.handle_operation(&HandleOp::open_process(AGENT_PID, 6000, 0x1010, frames(4)))
        .expect("agent");
    assert_eq!(walks(&m), 0, "no stack walked for what is not reported");
    assert!(m.drained_kinds(h).is_empty());
    let stats = m.stats(h).expect("stats").stats;
    assert_eq!(stats.produced[EventKind::ProcessAccess.index()], 0);
    // The agent's process as the target is reported.
    m.handle_operation(&HandleOp::open_process(5100, AGENT_PID, 0x1000, frames(2)))
        .expect("open of the agent");
    assert_eq!(
        m.drained_kinds(h),
        vec![RecordKind::Event(EventKind::ProcessAccess)]
    );
    finish(m, h);
}

#[test]
fn a_disabled_kind_walks_no_stack_and_is_off_by_default() {
    let sys = ringside_sys().expect("build ringside.sys");
    // The default mask, as a consumer that does not ask for the kind.
    let (mut m, h) = connected(sys, &ConfigureRequest::default()).expect("session");
    m.handle_operation(&HandleOp::open_process(
        5200,
        LSASS,
        VM_READ_QUERY,
        frames(4),
    ))
    .expect("open");
    assert_eq!(walks(&m), 0);
    assert!(m.drained_kinds(h).is_empty());
    let stats = m.stats(h).expect("stats").stats;
    assert_eq!(stats.produced[EventKind::ProcessAccess.index()], 0);
    finish(m, h);
}

#[test]
fn a_failed_stack_walk_reports_the_access_without_frames() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &every_kind()).expect("session");
    m.fail_next("RtlWalkFrameChain");
    m.handle_operation(&HandleOp::open_process(
        5300,
        LSASS,
        VM_READ_QUERY,
        frames(4),
    ))
    .expect("open");
    assert_eq!(m.kernel().faults.injected, 1);
    m.kernel_mut().faults.fail = None;
    let bytes = m.drained(h);
    let Some(Ok(Record::ProcessAccess(e))) = Records::new(&bytes).next() else {
        panic!("no process access")
    };
    assert_eq!(e.call_trace().count(), 0);
    assert_eq!(e.body.granted_access, VM_READ_QUERY);
    finish(m, h);
}

#[test]
fn a_failed_registration_loads_without_process_access() {
    let sys = ringside_sys().expect("build ringside.sys");
    let mut m = Machine::load(sys).expect("load");
    m.kernel_mut().faults.fail = Some(("ObRegisterCallbacks".into(), 0));
    assert_eq!(
        m.driver_entry().expect("DriverEntry"),
        0,
        "the load goes on"
    );
    assert_eq!(m.kernel().faults.injected, 1);
    assert!(m.kernel().ob.registrations.is_empty());
    let (_, h) = m.open_device(true).expect("open");
    let h = h.expect("handle");
    let hello = HelloRequest {
        size: size_of::<HelloRequest>() as u32,
        abi_version: ringside_wire::ABI_VERSION,
        agent_version: 1 << 16,
        _pad: 0,
    };
    let done = m
        .ioctl_now(h, IOCTL_HELLO, hello.as_bytes(), 32)
        .expect("HELLO");
    let response = HelloResponse::read_from_bytes(&done.output).expect("response");
    assert_eq!(
        response.supported_events,
        ALL_EVENTS_MASK & !EventKind::ProcessAccess.mask_bit(),
        "HELLO says process access is missing"
    );
    let trace = m.kernel().trace.clone();
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
    let after = &m.kernel().trace[trace.len()..];
    assert!(
        !after.contains(&"ObUnRegisterCallbacks"),
        "nothing to unregister: {after:?}"
    );
}

#[test]
fn unload_during_an_object_callback_unregisters_and_waits_for_it() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, _h) = connected(sys, &every_kind()).expect("session");
    m.kernel_mut().interpose = Some(("RtlWalkFrameChain".into(), unload_from_another_cpu));
    let start = m.kernel().trace.len();
    let error = m
        .handle_operation(&HandleOp::open_process(
            5400,
            LSASS,
            VM_READ_QUERY,
            frames(4),
        ))
        .expect_err("the unload must block on the in-flight callback");
    assert_unload_waited_for_callback(&m, &error, start, "ObUnRegisterCallbacks");
    assert!(m.kernel().ob.registrations.is_empty());
}
