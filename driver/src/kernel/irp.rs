//! IRP accessors (the wdm.h inlines: `IoGetCurrentIrpStackLocation`,
//! `IoMarkIrpPending`, `IoCompleteRequest`) and safe views of the buffers
//! the I/O manager hands us.

use core::ffi::c_void;

use windows_sys::Wdk::Foundation::{IO_STACK_LOCATION, IRP};
use windows_sys::Wdk::System::SystemServices::IofCompleteRequest;

use ringside_driver::wdk::{self, DeviceIoControlParameters};

use super::nt;

/// `IoGetCurrentIrpStackLocation`.
///
/// # Safety
/// `irp` is a valid IRP currently owned by the caller.
pub unsafe fn stack<'a>(irp: *mut IRP) -> Option<&'a IO_STACK_LOCATION> {
    // SAFETY: the caller owns a valid IRP.
    let irp = unsafe { &*irp };
    // SAFETY: while the driver owns an IRP, Overlay is the tail's active member.
    let overlay = unsafe { &irp.Tail.Overlay };
    // SAFETY: and CurrentStackLocation is the active member of its union.
    let location = unsafe { overlay.Anonymous2.Anonymous.CurrentStackLocation };
    // SAFETY: the I/O manager points it at our stack location, valid while
    // we own the IRP.
    unsafe { location.as_ref() }
}

/// `Parameters.DeviceIoControl` with the x64 layout (windows-sys's drops
/// `POINTER_ALIGNMENT`; see `ringside_driver::wdk`).
pub fn device_io_control(stack: &IO_STACK_LOCATION) -> DeviceIoControlParameters {
    const _: () = {
        assert!(core::mem::offset_of!(IO_STACK_LOCATION, Parameters) == wdk::STACK_PARAMETERS);
        assert!(
            core::mem::size_of::<DeviceIoControlParameters>()
                <= core::mem::size_of::<windows_sys::Wdk::Foundation::IO_STACK_LOCATION_0>()
        );
    };
    let parameters = core::ptr::addr_of!(stack.Parameters).cast::<DeviceIoControlParameters>();
    // SAFETY: the union is at least as large as the view (asserted above)
    // and 8-aligned like the stack location; every bit pattern is a valid
    // DeviceIoControlParameters (integers and a raw pointer). The I/O
    // manager filled it for IRP_MJ_DEVICE_CONTROL and it is not written
    // while we own the IRP, so the copy aliases nothing.
    unsafe { parameters.read() }
}

/// The file object the request was sent on (the consumer's handle).
///
/// # Safety
/// As [`stack`].
pub unsafe fn file_object(irp: *mut IRP) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { stack(irp) }.map_or(core::ptr::null_mut(), |s| s.FileObject.cast())
}

/// Sets the IRP's status and information and completes it.
///
/// # Safety
/// The caller owns `irp` and completes it exactly once; IRQL <= DISPATCH_LEVEL.
pub unsafe fn complete(irp: *mut IRP, status: i32, information: usize) {
    // SAFETY: we own the IRP; IoStatus is ours to fill before completion.
    let owned = unsafe { &mut *irp };
    owned.IoStatus.Anonymous.Status = status;
    owned.IoStatus.Information = information;
    // SAFETY: completes an IRP we own, once; IO_NO_INCREMENT.
    unsafe { IofCompleteRequest(irp, 0) };
}

/// Largest METHOD_BUFFERED input the driver copies; every request struct
/// is smaller, so a longer input fails validation as a length mismatch.
pub const MAX_INPUT: usize = 64;

/// A METHOD_BUFFERED input, copied out of the system buffer before the
/// output is written into the same buffer.
pub struct Input {
    bytes: [u8; MAX_INPUT],
    len: usize,
}

impl Input {
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// METHOD_BUFFERED: a copy of the input and the output view of the system
/// buffer (input and output share that buffer, so the input is copied
/// first and no two views alias).
///
/// # Safety
/// The caller owns the IRP, whose request is METHOD_BUFFERED; the returned
/// slice must not outlive the IRP's completion.
pub unsafe fn buffered<'a>(
    irp: *mut IRP,
    input_len: u32,
    output_len: u32,
) -> (Input, &'a mut [u8]) {
    let mut input = Input {
        bytes: [0; MAX_INPUT],
        len: 0,
    };
    // SAFETY: the caller owns the IRP.
    let owned = unsafe { &*irp };
    // SAFETY: for METHOD_BUFFERED requests SystemBuffer is the active member.
    let buffer = unsafe { owned.AssociatedIrp.SystemBuffer }.cast::<u8>();
    if buffer.is_null() {
        return (input, &mut []);
    }
    input.len = (input_len as usize).min(MAX_INPUT);
    // SAFETY: the system buffer holds at least `input_len` bytes of input,
    // and `input.len <= input_len`; the destination is our stack copy.
    unsafe { core::ptr::copy_nonoverlapping(buffer, input.bytes.as_mut_ptr(), input.len) };
    // SAFETY: the system buffer holds max(input, output) bytes and is ours
    // until completion; the only view of it from now on is this one.
    let output = unsafe { core::slice::from_raw_parts_mut(buffer, output_len as usize) };
    (input, output)
}

/// The READ output buffer (METHOD_OUT_DIRECT): the MDL's system mapping.
///
/// # Safety
/// The caller owns the READ IRP; IRQL <= DISPATCH_LEVEL.
pub unsafe fn read_buffer<'a>(irp: *mut IRP) -> Option<&'a mut [u8]> {
    // SAFETY: the caller owns the IRP; MdlAddress is set by the I/O manager
    // for METHOD_OUT_DIRECT with a non-empty output buffer.
    let mdl = unsafe { (*irp).MdlAddress };
    if mdl.is_null() {
        return None;
    }
    // SAFETY: a locked MDL from the I/O manager, IRQL <= DISPATCH_LEVEL.
    unsafe { nt::system_address_for_mdl(mdl) }
}
