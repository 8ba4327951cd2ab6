//! Link arguments that turn the `x86_64-pc-windows-msvc` binary into a kernel
//! driver image (DESIGN.md, "Build on Linux"). Scoped to this crate's binary
//! with `rustc-link-arg-bins`, and emitted only for Windows targets so the
//! host build of the (empty) non-Windows binary is untouched.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "windows" || env != "msvc" {
        return;
    }
    for arg in [
        // No CRT: memcpy/memset/memcmp/__chkstk come from ntoskrnl.exe.
        "/NODEFAULTLIB",
        "/SUBSYSTEM:NATIVE",
        "/DRIVER",
        "/ENTRY:DriverEntry",
        // FORCE_INTEGRITY: required by PsSetCreateProcessNotifyRoutineEx.
        "/INTEGRITYCHECK",
        "/NXCOMPAT",
        "/DYNAMICBASE",
        // Sets the PE checksum, which the kernel loader verifies for drivers.
        "/RELEASE",
        // A CodeView record naming ringside.pdb, and the PDB itself.
        "/DEBUG",
        "/PDBALTPATH:ringside.pdb",
        // Byte-identical rebuilds.
        "/Brepro",
        // The real kernel stack is 24 KiB; documents it for emulators
        // (the kernel itself ignores these values).
        "/STACK:0x40000,0x6000",
        // Keep the image small and the merged sections predictable.
        "/OPT:REF",
        "/OPT:ICF",
        "/MERGE:.edata=.rdata",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
