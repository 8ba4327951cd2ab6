//! The reservation runs at DISPATCH_LEVEL, whole: every store the compiled
//! driver makes into a lane's producer state happens inside the window it
//! raises IRQL for (the CR8 writes are compiler barriers), on one CPU and on
//! several, with every kind of event.

use ringside_kmodel::agent::connected_on;
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::file_io::*;
use ringside_kmodel::scenario::{ProcessSpec, USER_LOGON_ID, domain_sid, integrity_sid};
use ringside_kmodel::smp::Schedule;
use ringside_wire::ioctl::ConfigureRequest;

#[test]
fn every_store_into_a_lane_s_producer_state_is_at_dispatch_level() {
    let sys = ringside_sys().expect("build ringside.sys");
    let config = ConfigureRequest {
        event_mask: ringside_wire::kind::ALL_EVENTS_MASK,
        ..ConfigureRequest::default()
    };
    let (mut m, h) = connected_on(sys, &config, None, 4).expect("session");
    let lanes = m.watch_lane_stores().expect("lanes found");
    assert_eq!(lanes, 4, "one lane per CPU");

    // Every callback kind, on each CPU in turn.
    let who = Requestor { pid: 321, tid: 322 };
    for cpu in 0..4 {
        m.set_cpu(cpu);
        let eprocess = m
            .process_create(&ProcessSpec {
                pid: 1000 + cpu,
                parent_pid: 4,
                creating_pid: 4,
                creating_tid: 8,
                image: r"\??\C:\Windows\System32\cmd.exe".into(),
                command_line: "cmd.exe /c whoami".into(),
                admin: false,
                user_sid: domain_sid(1001),
                integrity_sid: integrity_sid(0x2000),
                logon_id: USER_LOGON_ID,
            })
            .expect("process create");
        m.image_load(
            1000 + cpu,
            r"\Device\HarddiskVolume3\a.dll",
            0x7ff0_0000_0000,
            0x1000,
            0,
        )
        .expect("image load");
        let f = m.new_file_object(&format!(r"\Device\HarddiskVolume3\cpu{cpu}.txt"));
        m.file_create(who, f, FILE_WRITE_DATA, 0, 0, FILE_CREATED)
            .expect("create");
        m.file_write(who, f, 10, false).expect("write");
        m.file_rename(
            who,
            f,
            &format!(r"\Device\HarddiskVolume3\cpu{cpu}.old"),
            false,
        )
        .expect("rename");
        m.file_delete_disposition(who, f).expect("delete");
        m.file_cleanup(who, f).expect("cleanup");
        m.free_file_object(f);
        m.process_exit(eprocess, 0).expect("exit");
    }
    let sequential = m.lane_stores();
    assert_eq!(sequential.below, 0, "{:#?}", m.findings());
    assert!(sequential.raised > 0, "the watch saw the reservations");
    // And with the CPUs interleaved at any instruction.
    let plan = (0..4u32)
        .map(|cpu| {
            (0..8u64)
                .flat_map(|i| {
                    m.image_load_calls(
                        900 + cpu,
                        &format!(r"\Device\HarddiskVolume3\c{cpu}_{i}.dll"),
                        0x7ff1_0000_0000 + (i << 20),
                        0x1000,
                        0,
                    )
                })
                .collect()
        })
        .collect();
    m.run_smp(plan, Schedule::new(7)).expect("run");
    let all = m.lane_stores();
    assert!(all.raised > sequential.raised);
    assert_eq!(all.below, 0, "{:?}", m.findings());
    m.assert_clean();
    m.drain(h).expect("drain");
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}
