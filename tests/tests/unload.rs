//! Unload with READs pending and with a callback in flight. The driver must
//! stop its producers (unregister every callback), wait out callbacks that
//! hold rundown protection, complete pending READs, and only then free the
//! ring and delete the device. Nothing may run after unload: every
//! registration is gone before any memory is freed.

use ringside_kmodel::agent::{Sent, connected};
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::file_io::{FILE_CREATED, FILE_WRITE_DATA, Requestor};
use ringside_kmodel::machine::unload_from_another_cpu;
use ringside_wire::ioctl::{ConfigureRequest, IOCTL_READ, READ_MIN_BUFFER, status};

fn config() -> ConfigureRequest {
    ConfigureRequest {
        batch_bytes: 64 * 1024,
        max_latency_ms: 50,
        ..ConfigureRequest::default()
    }
}

fn position(trace: &[&str], from: usize, api: &str) -> Option<usize> {
    trace[from..]
        .iter()
        .position(|a| *a == api)
        .map(|i| i + from)
}

const FREES: [&str; 4] = [
    "ExFreePoolWithTag",
    "ExFreePool",
    "IoDeleteDevice",
    "IoDeleteSymbolicLink",
];

#[test]
fn mandatory_unload_with_reads_pending_is_clean_and_unregisters_before_freeing() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &config()).expect("session");
    // While the agent is connected an optional unload (`fltmc unload`) is refused.
    assert!(
        m.unload().is_err(),
        "optional unload accepted with a consumer connected"
    );
    assert!(m.kernel().flt.filter != 0);
    let mut pending = Vec::new();
    for _ in 0..2 {
        match m.ioctl(h, IOCTL_READ, &[], READ_MIN_BUFFER).expect("READ") {
            Sent::Pending(irp) => pending.push(irp),
            Sent::Done(c) => panic!("READ completed: {:#x}", c.status),
        }
    }
    let start = m.kernel().trace.len();
    m.unload_mandatory().expect("mandatory unload");
    for irp in pending {
        let c = m.take_completion(irp).expect("READ completed by unload");
        assert_eq!(c.status, status::CANCELLED);
    }
    let trace = m.kernel().trace.clone();
    let wait =
        position(&trace, start, "ExWaitForRundownProtectionRelease").expect("waits out callbacks");
    for api in [
        "FltUnregisterFilter",
        "PsSetCreateProcessNotifyRoutineEx",
        "PsRemoveLoadImageNotifyRoutine",
    ] {
        let at =
            position(&trace, start, api).unwrap_or_else(|| panic!("{api} not called at unload"));
        assert!(at < wait, "{api} after the rundown wait");
    }
    let first_free = FREES
        .iter()
        .filter_map(|f| position(&trace, start, f))
        .min()
        .expect("something freed");
    assert!(
        wait < first_free,
        "memory freed before callbacks were waited out: {:?}",
        &trace[start..]
    );
    // No stale callback can be called: FltMgr and Ps hold none of the driver's.
    assert!(m.kernel().flt.operations.is_empty() && m.kernel().flt.filter == 0);
    assert!(m.kernel().ps.process_notify.is_empty() && m.kernel().ps.image_notify.is_empty());
    // The agent's handle is still open: IoDeleteDevice only marked the
    // device delete-pending, and the image stays loaded for its CLEANUP
    // and CLOSE (which reach the torn-down driver and must be harmless).
    assert!(m.kernel().unload_deferred && !m.kernel().unloaded);
    let (status, _) = m.open_device(true).expect("open");
    assert_eq!(status, 0xC000_0056_u32 as i32, "STATUS_DELETE_PENDING");
    m.close_device(h).expect("close after unload");
    assert!(
        m.kernel().unloaded,
        "the last handle took the device and the image"
    );
    assert!(m.kernel().io.devices.is_empty());
    m.assert_clean();
}

#[test]
fn unload_during_a_callback_waits_for_it_before_freeing_anything() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, _h) = connected(sys, &config()).expect("session");
    let f = m.new_file_object(r"\Device\HarddiskVolume3\inflight.txt");
    m.kernel_mut().interpose = Some(("FltGetFileNameInformation".into(), unload_from_another_cpu));
    let start = m.kernel().trace.len();
    let error = m
        .file_create(
            Requestor { pid: 77, tid: 78 },
            f,
            FILE_WRITE_DATA,
            0,
            0,
            FILE_CREATED,
        )
        .expect_err("the unload must block on the in-flight callback");
    // The model has one CPU: a wait that would block forever is reported.
    // It is reached with exactly the callback's reference held, i.e. the
    // driver does wait for it instead of freeing the ring under it.
    assert!(
        error.contains("ExWaitForRundownProtectionRelease")
            && error.contains("1 references still held"),
        "{error}"
    );
    let trace = m.kernel().trace.clone();
    assert!(
        position(&trace, start, "FltUnregisterFilter").is_some(),
        "producers not stopped first: {:?}",
        &trace[start..]
    );
    for free in FREES {
        assert!(
            position(&trace, start, free).is_none(),
            "{free} before the in-flight callback finished: {:?}",
            &trace[start..]
        );
    }
    assert!(m.kernel().ps.process_notify.is_empty() && m.kernel().ps.image_notify.is_empty());
    assert!(
        m.kernel().flt.filter == 0,
        "filter still registered while waiting"
    );
    // The only finding is that (modelled) wait.
    let findings = m.findings();
    assert_eq!(findings.len(), 1, "{findings:?}");
}
