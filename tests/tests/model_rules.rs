//! The kernel model is as strict as Windows where the driver could get
//! away with something on a forgiving model: each rule here is broken on
//! purpose and must be caught (or refused) as Windows and Driver Verifier
//! would.

use ringside_kmodel::Machine;
use ringside_kmodel::agent::{Sent, connected};
use ringside_kmodel::api;
use ringside_kmodel::driver_image::ringside_sys;
use ringside_kmodel::layout::*;
use ringside_kmodel::machine::{APC_LEVEL, DISPATCH_LEVEL, PASSIVE_LEVEL, model_alloc, set_irql};
use ringside_kmodel::memory::*;
use ringside_kmodel::verifier::Rule;
use ringside_wire::ioctl::{ConfigureRequest, IOCTL_READ, READ_MIN_BUFFER, status};
use unicorn_engine::RegisterX86;

fn machine() -> Machine {
    let sys = ringside_sys().expect("build ringside.sys");
    Machine::load(sys).expect("load")
}

fn set_args(m: &mut Machine, args: &[u64]) {
    let regs = [
        RegisterX86::RCX,
        RegisterX86::RDX,
        RegisterX86::R8,
        RegisterX86::R9,
    ];
    for (reg, value) in regs.iter().zip(args) {
        m.uc.reg_write(*reg, *value).expect("register");
    }
}

/// Guest code outside the driver image: `mov rax, [rcx]; ret`.
fn reader(m: &mut Machine) -> u64 {
    const CODE: u64 = 0x0000_0900_0000_0000;
    m.uc.mem_map(CODE, PAGE as usize, prot(true, false, true))
        .expect("map");
    m.uc.write_bytes(CODE, &[0x48, 0x8B, 0x01, 0xC3]);
    CODE
}

#[test]
fn paged_pool_touched_at_dispatch_level_is_caught() {
    let mut m = machine();
    let paged = api::pool::map_block(&mut m.uc, 64, false);
    m.kernel_mut()
        .pool
        .live
        .get_mut(&paged)
        .expect("block")
        .paged = true;
    let code = reader(&mut m);
    // At PASSIVE_LEVEL the read is fine.
    m.call_at(PASSIVE_LEVEL, code, &[paged])
        .expect("read at PASSIVE_LEVEL");
    assert!(m.findings().is_empty(), "{:?}", m.findings());
    // At DISPATCH_LEVEL it faults, as pageable memory does under Verifier.
    let error = m
        .call_at(DISPATCH_LEVEL, code, &[paged])
        .expect_err("paged pool at DISPATCH_LEVEL");
    assert!(error.contains("paged pool"), "{error}");
    assert!(m.findings().iter().any(|f| f.rule == Rule::Irql));
    // Non-paged memory stays readable at DISPATCH_LEVEL.
    let mut m = machine();
    let nonpaged = api::pool::map_block(&mut m.uc, 64, false);
    let code = reader(&mut m);
    m.call_at(DISPATCH_LEVEL, code, &[nonpaged])
        .expect("non-paged at DISPATCH_LEVEL");
    assert!(m.findings().is_empty(), "{:?}", m.findings());
}

#[test]
fn the_system_mapping_of_an_mdl_is_not_the_user_address() {
    let mut m = machine();
    let user = model_alloc(&mut m.uc, 0x2000) + 0x10;
    let mdl = model_alloc(&mut m.uc, MDL_SIZE as u64 + 32);
    m.uc.write_u16(mdl + MDL_FLAGS, 0x0002); // MDL_PAGES_LOCKED
    m.uc.write_u64(mdl + MDL_START_VA, user & !(PAGE - 1));
    m.uc.write_u32(mdl + MDL_BYTE_OFFSET, (user & (PAGE - 1)) as u32);
    m.uc.write_u32(mdl + MDL_BYTE_COUNT, 0x1000);
    set_args(&mut m, &[mdl, 0, 1, 0]);
    let system = api::io::mm_map_locked_pages_specify_cache(&mut m.uc);
    assert_ne!(system, 0);
    assert_ne!(system, user, "a kernel mapping of its own");
    assert_eq!(m.uc.read_u64(mdl + MDL_MAPPED_SYSTEM_VA), system);
}

#[test]
fn token_queries_are_refused_above_passive_level() {
    let mut m = machine();
    let eprocess = api::ps::new_process(
        &mut m.uc,
        100,
        false,
        vec![1, 1, 0, 0, 0, 0, 0, 5],
        vec![],
        0x3e7,
    );
    let token = m.kernel().ps.processes[&eprocess].token;
    let out = model_alloc(&mut m.uc, 8);
    set_irql(&mut m.uc, APC_LEVEL);
    set_args(&mut m, &[token, 1, out, 0]);
    api::ps::se_query_information_token(&mut m.uc);
    assert!(
        m.findings()
            .iter()
            .any(|f| f.rule == Rule::Irql && f.message.contains("SeQueryInformationToken")),
        "{:?}",
        m.findings()
    );
}

#[test]
fn name_queries_are_refused_where_fltmgr_refuses_them() {
    const STATUS_FLT_INVALID_NAME_REQUEST: u64 = 0xC01C_0005;
    let mut m = machine();
    let file = m.new_file_object(r"\Device\HarddiskVolume3\pagefile.sys");
    let data = model_alloc(&mut m.uc, (CALLBACK_DATA_SIZE + IOPB_SIZE) as u64);
    let iopb = data + CALLBACK_DATA_SIZE as u64;
    m.uc.write_u64(data + CD_IOPB, iopb);
    m.uc.write_u64(iopb + IOPB_TARGET_FILE_OBJECT, file.file_object);
    let out = model_alloc(&mut m.uc, 8);
    // Paging I/O: refused (a name query could deadlock with the file system).
    m.uc.write_u32(iopb + IOPB_IRP_FLAGS, 0x2); // IRP_PAGING_IO
    set_args(&mut m, &[data, 0x0101, out, 0]);
    let status = api::flt::flt_get_file_name_information(&mut m.uc);
    assert_eq!(status, STATUS_FLT_INVALID_NAME_REQUEST);
    // Above APC_LEVEL: refused, and a Verifier finding.
    m.uc.write_u32(iopb + IOPB_IRP_FLAGS, 0);
    set_irql(&mut m.uc, DISPATCH_LEVEL);
    set_args(&mut m, &[data, 0x0101, out, 0]);
    let status = api::flt::flt_get_file_name_information(&mut m.uc);
    assert_eq!(status, STATUS_FLT_INVALID_NAME_REQUEST);
    assert!(m.findings().iter().any(|f| f.rule == Rule::Irql));
    // At PASSIVE_LEVEL, a normal request: the name.
    set_irql(&mut m.uc, PASSIVE_LEVEL);
    set_args(&mut m, &[data, 0x0101, out, 0]);
    assert_eq!(api::flt::flt_get_file_name_information(&mut m.uc), 0);
}

/// A READ whose caller cancelled it before the driver queued it: the
/// cancel-safe queue completes it as cancelled at once instead of keeping an
/// IRP whose cancellation already happened (IoCsqInsertIrpEx checks
/// `Irp->Cancel` after insertion).
#[test]
fn a_read_cancelled_before_it_was_queued_completes_cancelled() {
    let sys = ringside_sys().expect("build ringside.sys");
    let (mut m, h) = connected(sys, &ConfigureRequest::default()).expect("session");
    let (call, irp) = m
        .ioctl_call(h, IOCTL_READ, &[], READ_MIN_BUFFER)
        .expect("READ IRP");
    m.uc.write_u8(irp + IRP_CANCEL, 1);
    let returned = m
        .call_at(call.irql, call.function, &call.args)
        .expect("dispatch");
    match m.dispatched(irp, returned).expect("contract") {
        Sent::Done(c) => assert_eq!(c.status, status::CANCELLED),
        Sent::Pending(_) => panic!("a cancelled READ stayed queued"),
    }
    m.close_device(h).expect("close");
    m.unload().expect("unload");
    m.assert_clean();
}

/// PsSetCreateProcessNotifyRoutineEx refuses an image linked without
/// /INTEGRITYCHECK (STATUS_ACCESS_DENIED, as documented): the same driver
/// with that bit cleared fails DriverEntry, and rolls everything back.
#[test]
fn process_notify_requires_an_integrity_checked_image() {
    let sys = ringside_sys().expect("build ringside.sys");
    let mut unchecked = sys.to_vec();
    let nt = u32::from_le_bytes(unchecked[0x3c..0x40].try_into().expect("e_lfanew")) as usize;
    // IMAGE_OPTIONAL_HEADER64.DllCharacteristics: FORCE_INTEGRITY (0x80).
    unchecked[nt + 0x18 + 0x46] &= !0x80;
    let mut m = Machine::load(&unchecked).expect("load");
    let status = m.driver_entry().expect("DriverEntry ran");
    assert_eq!(status, 0xC000_0022_u32 as i32, "STATUS_ACCESS_DENIED");
    m.check_unloaded();
    m.assert_clean();
    // The shipped image has the bit, and starts.
    let mut m = Machine::load(sys).expect("load");
    assert_eq!(m.driver_entry().expect("DriverEntry"), 0);
}
