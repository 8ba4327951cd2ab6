//! Systematic fault injection: every fallible kernel call DriverEntry makes
//! fails in turn; DriverEntry must return a failure and leave nothing
//! allocated or registered.

use ringside_kmodel::Machine;
use ringside_kmodel::driver_image::ringside_sys;

#[test]
fn each_fallible_call_in_driver_entry_fails_cleanly() {
    let sys = ringside_sys().expect("build ringside.sys");
    // A clean run lists the fallible calls DriverEntry makes.
    let mut reference = Machine::load(sys).expect("load");
    reference.kernel_mut().reg.set_dword(
        r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services\ringside\Parameters",
        "RingSizeBytes",
        1 << 20,
    );
    assert_eq!(reference.driver_entry().expect("DriverEntry"), 0);
    let calls = reference.kernel().faults.log.clone();
    assert!(
        calls.len() >= 6,
        "expected several fallible calls, got {calls:?}"
    );
    for (name, occurrence) in calls {
        let mut machine = Machine::load(sys).expect("load");
        machine.kernel_mut().reg.set_dword(
            r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services\ringside\Parameters",
            "RingSizeBytes",
            1 << 20,
        );
        machine.kernel_mut().faults.fail = Some((name.clone(), occurrence));
        let status = machine
            .driver_entry()
            .unwrap_or_else(|e| panic!("DriverEntry with {name}#{occurrence} failing: {e}"));
        assert_eq!(
            machine.kernel().faults.injected,
            1,
            "{name}#{occurrence} not reached"
        );
        // A failed registry read falls back to the default ring size, and
        // a failed ObRegisterCallbacks leaves the driver without process
        // access events (HELLO says so; tests/tests/process_access.rs);
        // every other failure must fail DriverEntry.
        let optional = name.starts_with("Zw") || name == "ObRegisterCallbacks";
        if optional {
            assert_eq!(
                status, 0,
                "{name}#{occurrence}: optional registry failure failed the load"
            );
            machine.unload().expect("unload");
        } else {
            assert!(
                status < 0,
                "{name}#{occurrence} failed but DriverEntry returned {status:#x}"
            );
            machine.check_unloaded();
        }
        if !machine.findings().is_empty() {
            panic!(
                "with {name}#{occurrence} failing: {:#?}",
                machine.findings()
            );
        }
    }
}
