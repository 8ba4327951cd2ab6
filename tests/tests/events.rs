//! Events scripted into the real driver arrive through its real READ path,
//! decoded by ringside-wire with every field equal to what was supplied.

use ringside_kmodel::Machine;
use ringside_kmodel::agent::{Handle, Sent};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::scenario::{ProcessSpec, USER_LOGON_ID, domain_sid, integrity_sid};
use ringside_wire::ioctl::*;
use ringside_wire::{ABI_VERSION, Record, Records};
use zerocopy::IntoBytes;

fn started() -> (Machine, Handle) {
    let sys = ringside_sys().expect("build ringside.sys");
    let mut machine = Machine::load(sys).expect("load");
    assert_eq!(machine.driver_entry().expect("DriverEntry"), 0);
    let (status, handle) = machine.open_device(true).expect("open");
    assert_eq!(status, 0);
    let handle = handle.expect("handle");
    let hello = HelloRequest {
        size: 16,
        abi_version: ABI_VERSION,
        agent_version: 1 << 16,
        _pad: 0,
    };
    let done = machine
        .ioctl_now(handle, IOCTL_HELLO, hello.as_bytes(), 32)
        .expect("HELLO");
    assert_eq!(done.status, 0, "HELLO: {:#x}", done.status);
    let configure = ConfigureRequest {
        batch_bytes: 1,
        max_latency_ms: 1,
        ..ConfigureRequest::default()
    };
    let done = machine
        .ioctl_now(handle, IOCTL_CONFIGURE, configure.as_bytes(), 0)
        .expect("CONFIGURE");
    assert_eq!(done.status, 0, "CONFIGURE: {:#x}", done.status);
    (machine, handle)
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

#[test]
fn process_create_arrives_decoded_with_every_field() {
    let (mut machine, handle) = started();
    let spec = ProcessSpec {
        pid: 4242,
        parent_pid: 1000,
        creating_pid: 1000,
        creating_tid: 1004,
        image: r"\??\C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE".into(),
        command_line: r#""WINWORD.EXE" /n "C:\Users\alice\Downloads\invoice.docm""#.into(),
        user_sid: domain_sid(1001),
        integrity_sid: integrity_sid(0x2000),
        // A HighPart as well as a LowPart, so that a swap or a lost half shows.
        logon_id: 0x0000_0002_0000_0000 | USER_LOGON_ID,
        admin: false,
    };
    machine.process_create(&spec).expect("callback ran");
    machine.assert_clean();
    let batch = match machine
        .ioctl(handle, IOCTL_READ, &[], READ_MIN_BUFFER)
        .expect("READ")
    {
        Sent::Done(c) => c,
        Sent::Pending(irp) => {
            machine.advance_time_100ns(20 * 10_000).expect("timers");
            machine
                .take_completion(irp)
                .expect("READ completed by the latency bound")
        }
    };
    assert_eq!(batch.status, 0, "READ status {:#x}", batch.status);
    let records: Vec<_> = Records::new(&batch.output)
        .collect::<Result<_, _>>()
        .expect("decodes");
    assert_eq!(records.len(), 1, "{records:?}");
    match &records[0] {
        Record::ProcessCreate(event) => {
            assert_eq!(event.header.pid, 4242);
            assert_eq!(event.header.tid, 1004);
            assert_eq!(event.header.seq, 0);
            assert_eq!(
                event.header.timestamp,
                machine.kernel().clock_at_last_step()
            );
            assert_eq!(event.body.parent_pid, 1000);
            assert_eq!(event.body.creating_pid, 1000);
            assert_eq!(event.body.creating_tid, 1004);
            assert_eq!(event.image_name().bytes, utf16(&spec.image).as_slice());
            assert_eq!(
                event.command_line().bytes,
                utf16(&spec.command_line).as_slice()
            );
            assert_eq!(event.user_sid().bytes, spec.user_sid.as_slice());
            assert_eq!(event.integrity_sid().bytes, spec.integrity_sid.as_slice());
            assert_eq!(event.logon_id(), Some(spec.logon_id));
        }
        other => panic!("expected a process create, got {other:?}"),
    }
    machine.close_device(handle).expect("close");
    machine.unload().expect("unload");
    machine.assert_clean();
}
