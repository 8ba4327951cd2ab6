//! DriverEntry and DriverUnload of the real ringside.sys, under the verifier.

use ringside_kmodel::Machine;
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::memory::IMAGE_BASE;

#[test]
fn loads_at_a_non_preferred_base_with_relocations_and_every_import_modelled() {
    let sys = ringside_sys().expect("build ringside.sys");
    let machine = Machine::load(sys).expect("load");
    assert_ne!(machine.image.preferred_base, IMAGE_BASE);
    assert!(
        machine.image.relocations_applied > 0,
        "no relocation applied"
    );
    assert!(!machine.image.imports.is_empty());
    for s in &machine.image.sections {
        assert!(
            !(s.write && s.execute),
            "section {} is writable and executable",
            s.name
        );
    }
}

#[test]
fn unknown_import_fails_the_load_naming_the_function() {
    let sys = ringside_sys().expect("build ringside.sys");
    let mut patched = sys.to_vec();
    // Rename one import in the name table to something the model lacks.
    let needle = b"KeQuerySystemTimePrecise\0";
    let at = patched
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("import name present");
    patched[at..at + needle.len() - 1].copy_from_slice(b"KeQuerySystemTimeXXXXXXX");
    let error = Machine::load(&patched).expect_err("must fail");
    assert!(error.contains("KeQuerySystemTimeXXXXXXX"), "{error}");
}

#[test]
fn driver_entry_then_unload_is_clean() {
    let sys = ringside_sys().expect("build ringside.sys");
    let mut machine = Machine::load(sys).expect("load");
    let status = machine.driver_entry().expect("DriverEntry ran");
    assert_eq!(
        status,
        0,
        "DriverEntry failed: {status:#x}; findings {:?}",
        machine.findings()
    );
    assert!(machine.control_device().is_some(), "no control device");
    assert!(machine.kernel().flt.started, "filtering not started");
    assert_eq!(machine.kernel().ps.process_notify.len(), 1);
    assert_eq!(machine.kernel().ps.image_notify.len(), 1);
    machine.assert_clean();
    machine.unload().expect("unload ran");
    machine.assert_clean();
}
