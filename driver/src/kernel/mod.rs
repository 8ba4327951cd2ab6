//! The kernel half of `ringside.sys`: all FFI lives in these modules.
//!
//! - `driver`: DriverEntry and teardown (acquire or roll back; unload order)
//! - `device`: the control device's IRP dispatch
//! - `queue`: the READ cancel-safe queue, latency timer and DPC
//! - `filter`: FltMgr registration and operation callbacks
//! - `notify`: process and image-load notify routines
//! - `registry`: the registry callback (value sets)
//! - `access`: the object manager's process and thread handle callbacks
//! - `thread`: the thread-creation notify routine (remote threads)
//! - `irp`, `nt`: small wrappers over IRPs and ntoskrnl.exe
//! - `globals`: `RINGSIDE_GLOBALS`, the state reachable by symbol
//!
//! Unsafe fns are about contract, not implementation
//! (`#![forbid(unsafe_op_in_unsafe_fn)]` in main.rs).

mod device;
mod driver;
mod filter;
mod globals;
mod irp;
mod notify;
mod nt;
mod queue;
mod registry;
mod thread;
// Declared last, on purpose: the crate a module names first decides the
// order of the crates on the link line, and `ringside_driver` (whose
// ntoskrnl.exe import library must win over windows-sys's, which binds
// Zw* and RtlWalkFrameChain to ntdll.dll) must come before windows-sys.
// `access`, declared first, put windows-sys ahead and the binary gate
// failed on ntdll.dll imports; an `extern crate` in main.rs did not help.
mod access;

/// The floating-point marker the MSVC toolchain expects when floats appear
/// anywhere (core's formatting code); the kernel needs only the symbol.
#[unsafe(no_mangle)]
#[used]
pub static _fltused: i32 = 0;

/// Unoptimised builds of the prebuilt `core` reference the C++ exception
/// personality routine; with panic=abort nothing unwinds, so "continue
/// search" (1) is the right answer if it were ever asked.
#[cfg(debug_assertions)]
#[unsafe(no_mangle)]
pub extern "C" fn __CxxFrameHandler3() -> i32 {
    1
}

/// Bugchecks with ringside's code (0xE0000052, parameter 1 = source line).
/// A release image must not reach this: the binary gate fails if it still
/// imports `KeBugCheckEx` after LTO.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let line = info.location().map_or(0, |l| l.line() as usize);
    // SAFETY: KeBugCheckEx may be called at any IRQL and does not return.
    unsafe { nt::KeBugCheckEx(ringside_driver::BUGCHECK_CODE, line, 0, 0, 0) }
}
