//! The control device `\Device\Ringside` (`\DosDevices\Ringside`): IRP
//! dispatch for CREATE, CLEANUP, CLOSE and DEVICE_CONTROL (wdm.h).
//!
//! Access: the device is created with FILE_DEVICE_SECURE_OPEN, and CREATE
//! admits only kernel-mode requestors and callers whose token is an
//! administrator's (`SeTokenIsAdmin`; SYSTEM's token holds the enabled
//! Administrators group). windows-sys has no `IoCreateDeviceSecure` (it is
//! a static wdmsec.lib routine, not an export), hence the check at open.
//! A second open while a consumer is connected fails with
//! STATUS_SHARING_VIOLATION.

use ringside_wire::ioctl::{ControlError, Request, status};
use windows_sys::Wdk::Foundation::{DEVICE_OBJECT, DRIVER_OBJECT, IRP};
use windows_sys::Wdk::Storage::FileSystem::SeTokenIsAdmin;
use windows_sys::Wdk::System::SystemServices::{
    IoCreateDevice, IoCreateSymbolicLink, IoDeleteDevice, IoDeleteSymbolicLink,
    PsGetCurrentProcessId,
};

use super::globals::{Globals, acquired, globals};
use super::{irp, nt, queue};

const IRP_MJ_CREATE: usize = 0x00;
const IRP_MJ_CLOSE: usize = 0x02;
const IRP_MJ_DEVICE_CONTROL: usize = 0x0e;
const IRP_MJ_CLEANUP: usize = 0x12;
const FILE_DEVICE_SECURE_OPEN: u32 = 0x0000_0100;
const KERNEL_MODE: i8 = 0;

fn device_name() -> windows_sys::Win32::Foundation::UNICODE_STRING {
    nt::unicode(nt::wide!(ringside_wire::ioctl::DEVICE_NAME))
}

fn link_name() -> windows_sys::Win32::Foundation::UNICODE_STRING {
    nt::unicode(nt::wide!(ringside_wire::ioctl::SYMBOLIC_LINK_NAME))
}

/// Creates the device and its symbolic link and installs the dispatch
/// routines (DriverEntry, PASSIVE_LEVEL).
///
/// # Safety
/// `driver` is the DRIVER_OBJECT passed to DriverEntry.
pub unsafe fn create(driver: *mut DRIVER_OBJECT, g: &Globals) -> i32 {
    let name = device_name();
    let mut device: *mut DEVICE_OBJECT = core::ptr::null_mut();
    // SAFETY: PASSIVE_LEVEL in DriverEntry; `name` lives across the call.
    let status = unsafe {
        IoCreateDevice(
            driver,
            0,
            &name,
            ringside_wire::ioctl::DEVICE_TYPE,
            FILE_DEVICE_SECURE_OPEN,
            false,
            &mut device,
        )
    };
    if !nt::nt_success(status) {
        return status;
    }
    g.device
        .store(device, core::sync::atomic::Ordering::Release);
    g.acquired
        .fetch_or(acquired::DEVICE, core::sync::atomic::Ordering::AcqRel);

    let link = link_name();
    // SAFETY: PASSIVE_LEVEL; both names live across the call.
    let status = unsafe { IoCreateSymbolicLink(&link, &name) };
    if !nt::nt_success(status) {
        return status;
    }
    g.acquired
        .fetch_or(acquired::SYMLINK, core::sync::atomic::Ordering::AcqRel);

    // SAFETY: DriverEntry owns the driver object until it returns.
    let major = unsafe { &mut (*driver).MajorFunction };
    for index in [
        IRP_MJ_CREATE,
        IRP_MJ_CLOSE,
        IRP_MJ_CLEANUP,
        IRP_MJ_DEVICE_CONTROL,
    ] {
        if let Some(slot) = major.get_mut(index) {
            *slot = Some(dispatch);
        }
    }
    // SAFETY: the device object we just created; clearing DO_DEVICE_INITIALIZING
    // lets the I/O manager send it requests.
    unsafe { (*device).Flags &= !0x80 };
    nt::status::SUCCESS
}

/// Deletes the symbolic link and the device, if they exist (teardown).
pub fn delete(g: &Globals) {
    let bits = g.acquired.fetch_and(
        !(acquired::SYMLINK | acquired::DEVICE),
        core::sync::atomic::Ordering::AcqRel,
    );
    if bits & acquired::SYMLINK != 0 {
        let link = link_name();
        // SAFETY: PASSIVE_LEVEL; we created this link.
        unsafe { IoDeleteSymbolicLink(&link) };
    }
    if bits & acquired::DEVICE != 0 {
        let device = g
            .device
            .swap(core::ptr::null_mut(), core::sync::atomic::Ordering::AcqRel);
        if !device.is_null() {
            // SAFETY: we created this device; deletion is deferred by the I/O
            // manager until its last handle is closed.
            unsafe { IoDeleteDevice(device) };
        }
    }
}

/// The one dispatch routine; converts every outcome to an NTSTATUS here.
unsafe extern "system" fn dispatch(_device: *const DEVICE_OBJECT, irp: *mut IRP) -> i32 {
    // SAFETY: the I/O manager passes an IRP we own until we complete it.
    let Some(stack) = (unsafe { irp::stack(irp) }) else {
        // SAFETY: ours; completed once.
        unsafe { irp::complete(irp, status::INVALID_DEVICE_REQUEST, 0) };
        return status::INVALID_DEVICE_REQUEST;
    };
    let g = globals();
    let (status, information) = match usize::from(stack.MajorFunction) {
        // SAFETY: we own the IRP (CREATE).
        IRP_MJ_CREATE => (unsafe { open(g, irp) }, 0),
        IRP_MJ_CLEANUP => {
            // Cancel the consumer's pending READs and stop the timer.
            // SAFETY: we own the IRP.
            queue::cancel_all(g, unsafe { irp::file_object(irp) });
            queue::disarm_timer_if_idle(g);
            (status::SUCCESS, 0)
        }
        IRP_MJ_CLOSE => {
            g.control.close();
            (status::SUCCESS, 0)
        }
        IRP_MJ_DEVICE_CONTROL => {
            let params = irp::device_io_control(stack);
            // SAFETY: we own the IRP; it may be queued (then STATUS_PENDING).
            match g.with_rundown(|g| unsafe {
                device_control(
                    g,
                    irp,
                    params.io_control_code,
                    params.input_buffer_length,
                    params.output_buffer_length,
                )
            }) {
                Some(Ok(Done::Pending)) => return status::PENDING,
                Some(Ok(Done::Complete(n))) => (status::SUCCESS, n),
                Some(Err(e)) => (e, 0),
                None => (status::DELETE_PENDING, 0),
            }
        }
        _ => (status::INVALID_DEVICE_REQUEST, 0),
    };
    // SAFETY: not queued, so still ours; completed once.
    unsafe { irp::complete(irp, status, information) };
    status
}

/// # Safety
/// `irp` is a CREATE IRP we own.
unsafe fn open(g: &Globals, irp: *mut IRP) -> i32 {
    // SAFETY: we own the IRP.
    let requestor_mode = unsafe { (*irp).RequestorMode };
    if requestor_mode != KERNEL_MODE {
        // SAFETY: we own the CREATE IRP.
        let stack = unsafe { irp::stack(irp) };
        // SAFETY: Create is the active union member for IRP_MJ_CREATE.
        let context = stack.map(|s| unsafe { s.Parameters.Create.SecurityContext });
        // SAFETY: the security context is valid during CREATE.
        let context = context.and_then(|c| unsafe { c.as_ref() });
        // SAFETY: so is its access state.
        let access = context.and_then(|c| unsafe { c.AccessState.as_ref() });
        let token = access.map_or(core::ptr::null_mut(), |a| {
            let subject = &a.SubjectSecurityContext;
            // SeQuerySubjectContextToken: the client token if impersonating.
            if subject.ClientToken.is_null() {
                subject.PrimaryToken
            } else {
                subject.ClientToken
            }
        });
        // SAFETY: a token referenced by the access state for the duration of
        // CREATE; PASSIVE_LEVEL.
        if token.is_null() || !unsafe { SeTokenIsAdmin(token) } {
            return status::ACCESS_DENIED;
        }
    }
    // SAFETY: callable at any IRQL; CREATE of this standalone device runs
    // in the opening thread, so this is the consumer's process.
    let pid = nt::handle_id(unsafe { PsGetCurrentProcessId() });
    match g.control.open(pid) {
        Ok(()) => status::SUCCESS,
        Err(_) => status::SHARING_VIOLATION,
    }
}

enum Done {
    Complete(usize),
    Pending,
}

/// # Safety
/// `irp` is a DEVICE_CONTROL IRP we own; the caller holds rundown protection.
unsafe fn device_control(
    g: &Globals,
    irp: *mut IRP,
    code: u32,
    input_len: u32,
    output_len: u32,
) -> Result<Done, i32> {
    let request = Request::try_from(code).map_err(|e| e.status())?;
    let ring_capacity = g.ring().map_or(0, |r| r.capacity());
    let to_status = |e: ControlError| e.status();
    match request {
        Request::Hello => {
            // SAFETY: HELLO is METHOD_BUFFERED; we own the IRP.
            let (input, output) = unsafe { irp::buffered(irp, input_len, output_len) };
            g.control
                .hello(input.as_slice(), output, ring_capacity)
                .map(Done::Complete)
                .map_err(to_status)
        }
        Request::Configure => {
            // SAFETY: CONFIGURE is METHOD_BUFFERED; we own the IRP.
            let (input, _) = unsafe { irp::buffered(irp, input_len, 0) };
            let n = g.control.configure(input.as_slice()).map_err(to_status)?;
            // Re-arm with the new period if the timer runs.
            queue::rearm_timer(g);
            Ok(Done::Complete(n))
        }
        Request::Stats => {
            // SAFETY: STATS is METHOD_BUFFERED; we own the IRP.
            let (_, output) = unsafe { irp::buffered(irp, input_len, output_len) };
            let mut stats = g.ring().map(|r| r.stats()).unwrap_or_default();
            stats.reads_completed = g
                .reads_completed
                .load(core::sync::atomic::Ordering::Relaxed);
            stats.reads_pending = g.pending.len.load(core::sync::atomic::Ordering::Relaxed);
            g.control
                .stats(output, stats)
                .map(Done::Complete)
                .map_err(to_status)
        }
        Request::Read => {
            g.control.read(output_len as usize).map_err(to_status)?;
            // READs complete in the order they came (FIFO): older pending
            // ones take what the ring holds first; if any is still waiting
            // (the ring ran dry), this one queues behind it.
            queue::complete_ready(g);
            if g.pending.len.load(core::sync::atomic::Ordering::Relaxed) != 0 {
                // SAFETY: we own the IRP; see `pend`.
                let status = unsafe { queue::pend(g, irp) };
                return if nt::nt_success(status) {
                    Ok(Done::Pending)
                } else {
                    Err(status)
                };
            }
            // SAFETY: we own the READ IRP (METHOD_OUT_DIRECT).
            match unsafe { queue::fill(g, irp) } {
                None => Err(nt::status::INSUFFICIENT_RESOURCES),
                Some(n) if n != 0 => Ok(Done::Complete(n)),
                Some(_) => {
                    // SAFETY: we own the IRP; IoCsqInsertIrpEx marks it pending
                    // and takes ownership only on success.
                    let status = unsafe { queue::pend(g, irp) };
                    if nt::nt_success(status) {
                        Ok(Done::Pending)
                    } else {
                        Err(status)
                    }
                }
            }
        }
    }
}
