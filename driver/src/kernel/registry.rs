//! The registry callback (wdm.h: `CmRegisterCallbackEx`,
//! `CmUnRegisterCallback`, `CmCallbackGetKeyObjectIDEx`,
//! `CmCallbackReleaseKeyObjectIDEx`): a trampoline that copies a successful
//! value set's raw facts into [`RegistrySetValueFacts`] and emits one
//! record. Observe only: it always returns STATUS_SUCCESS, so it never
//! blocks, bypasses or changes an operation.

use core::ffi::c_void;
use core::sync::atomic::Ordering;

use ringside_driver::record::RegistrySetValueFacts;
use ringside_wire::{DropReason, EventKind};
use windows_sys::Wdk::Foundation::DRIVER_OBJECT;
use windows_sys::Wdk::System::SystemServices::{
    PsGetCurrentProcessId, REG_POST_OPERATION_INFORMATION, REG_SET_VALUE_KEY_INFORMATION,
    RegNtPostSetValueKey,
};
use windows_sys::Win32::Foundation::{NTSTATUS, UNICODE_STRING};

use super::globals::{Globals, acquired, globals};
use super::notify::{after_emit, origin};
use super::nt::{self, DispatchRing};

/// `EX_CALLBACK_FUNCTION`: (CallbackContext, Argument1, Argument2).
type RegistryCallback = unsafe extern "system" fn(
    context: *mut c_void,
    class: *mut c_void,
    info: *mut c_void,
) -> NTSTATUS;

// windows-sys declares `PEX_CALLBACK_FUNCTION` as `fn()`; these are the
// ntoskrnl.exe exports with their wdm.h signatures (the cookie is a
// LARGE_INTEGER, passed by value to CmUnRegisterCallback).
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    fn CmRegisterCallbackEx(
        function: RegistryCallback,
        altitude: *const UNICODE_STRING,
        driver: *mut c_void,
        context: *mut c_void,
        cookie: *mut i64,
        reserved: *mut c_void,
    ) -> NTSTATUS;
    fn CmUnRegisterCallback(cookie: i64) -> NTSTATUS;
    fn CmCallbackGetKeyObjectIDEx(
        cookie: *const i64,
        object: *mut c_void,
        object_id: *mut usize,
        object_name: *mut *mut UNICODE_STRING,
        flags: u32,
    ) -> NTSTATUS;
    fn CmCallbackReleaseKeyObjectIDEx(object_name: *mut UNICODE_STRING);
}

/// The altitude among registry filters: the minifilter's own (ringside.inf,
/// `Instance1.Altitude`), a test value like it. Registry callbacks are
/// ordered separately from minifilter instances, so the two do not collide.
const ALTITUDE: &[u16] = nt::wide!("385201");

/// Registers the callback (DriverEntry, PASSIVE_LEVEL).
///
/// # Safety
/// DriverEntry's driver object.
pub unsafe fn register(driver: *mut DRIVER_OBJECT, g: &Globals) -> i32 {
    let altitude = nt::unicode(ALTITUDE);
    let mut cookie = 0i64;
    // SAFETY: PASSIVE_LEVEL (DriverEntry), as this API requires; the
    // routine is a static function; `altitude` and `cookie` are locals that
    // outlive the call (the configuration manager copies the altitude);
    // `driver` is DriverEntry's object; context and reserved are NULL.
    let status = unsafe {
        CmRegisterCallbackEx(
            registry_callback,
            &altitude,
            driver.cast(),
            core::ptr::null_mut(),
            &mut cookie,
            core::ptr::null_mut(),
        )
    };
    if !nt::nt_success(status) {
        return status;
    }
    // Release pairs with the Acquire in `registry_callback`: a callback
    // that runs before this store reads 0, its name query fails and the
    // event is counted as dropped (QueryFailed).
    g.registry_cookie.store(cookie, Ordering::Release);
    g.acquired.fetch_or(acquired::REGISTRY, Ordering::AcqRel);
    nt::status::SUCCESS
}

/// Unregisters the callback if registered (teardown, PASSIVE_LEVEL).
/// CmUnRegisterCallback waits for calls of the routine in progress (its
/// reference page: called from the routine itself it deadlocks), so no
/// call runs in the image after it returns; teardown then also waits out
/// rundown protection, which every call that touches the ring holds.
pub fn unregister(g: &Globals) {
    if g.acquired.fetch_and(!acquired::REGISTRY, Ordering::AcqRel) & acquired::REGISTRY != 0 {
        let cookie = g.registry_cookie.load(Ordering::Acquire);
        // SAFETY: PASSIVE_LEVEL; the cookie CmRegisterCallbackEx returned,
        // unregistered once (the bit was set and is now cleared).
        unsafe { CmUnRegisterCallback(cookie) };
    }
}

/// A key's object name from `CmCallbackGetKeyObjectIDEx`, released on drop
/// (the API's own allocation; no other allocation happens here).
struct KeyName(*mut UNICODE_STRING);

impl KeyName {
    /// # Safety
    /// PASSIVE_LEVEL, in a registry callback; `object` is the key object
    /// the configuration manager passed to it.
    unsafe fn query(cookie: i64, object: *mut c_void) -> Option<KeyName> {
        let mut name: *mut UNICODE_STRING = core::ptr::null_mut();
        // SAFETY: PASSIVE_LEVEL in our callback; `cookie` is a local copy of
        // our registration's cookie (the API reads it during the call only);
        // `object` is the operation's key object, valid for the callback;
        // object_id NULL is allowed; flags 0; on success `name` holds a
        // string that `drop` releases.
        let status = unsafe {
            CmCallbackGetKeyObjectIDEx(&cookie, object, core::ptr::null_mut(), &mut name, 0)
        };
        // `then`, not `then_some`: an eagerly built `KeyName` would be
        // dropped on failure and release a name never returned (the kernel
        // model's fault-injection test caught exactly that).
        (nt::nt_success(status) && !name.is_null()).then(|| KeyName(name))
    }

    fn units(&self) -> &[u16] {
        // SAFETY: a string from CmCallbackGetKeyObjectIDEx, valid and
        // unchanged until released in `drop`, which `&self` outlives.
        unsafe { nt::units(self.0) }
    }
}

impl Drop for KeyName {
    fn drop(&mut self) {
        // SAFETY: returned by CmCallbackGetKeyObjectIDEx, released once.
        unsafe { CmCallbackReleaseKeyObjectIDEx(self.0) };
    }
}

/// `EX_CALLBACK_FUNCTION`. PASSIVE_LEVEL, in the thread performing the
/// registry operation (EX_CALLBACK_FUNCTION, remarks).
unsafe extern "system" fn registry_callback(
    _context: *mut c_void,
    class: *mut c_void,
    info: *mut c_void,
) -> NTSTATUS {
    // One compare for every other notification class (reads, opens,
    // closes): nothing else happens for them.
    if class as usize as i32 != RegNtPostSetValueKey {
        return nt::status::SUCCESS;
    }
    let g = globals();
    g.with_rundown(|g| {
        let Some(ring) = g.ring() else { return };
        if !g.control.config.enabled(EventKind::RegistrySetValue) {
            return;
        }
        // SAFETY: for RegNtPostSetValueKey Argument2 is a
        // REG_POST_OPERATION_INFORMATION valid for the callback's duration.
        let Some(post) = (unsafe { info.cast::<REG_POST_OPERATION_INFORMATION>().as_ref() }) else {
            return;
        };
        // A failed set changed nothing: not reported as done.
        if !nt::nt_success(post.Status) {
            return;
        }
        // SAFETY: PreInformation is the REG_SET_VALUE_KEY_INFORMATION the
        // pre-notification received, valid until the operation returns to
        // its caller, i.e. through this post-notification.
        let Some(pre) = (unsafe {
            post.PreInformation
                .cast::<REG_SET_VALUE_KEY_INFORMATION>()
                .as_ref()
        }) else {
            return;
        };
        let cookie = g.registry_cookie.load(Ordering::Acquire);
        // SAFETY: PASSIVE_LEVEL; the operation's key object.
        let Some(key) = (unsafe { KeyName::query(cookie, post.Object) }) else {
            ring.drop_event(EventKind::RegistrySetValue, DropReason::QueryFailed);
            return;
        };
        let data: &[u8] = if pre.Data.is_null() {
            &[]
        } else {
            // SAFETY: Data holds DataSize bytes for the operation's
            // duration. It is never a user-mode buffer here: "Starting with
            // Windows 8, the kernel captures all input buffers pointed to by
            // members of the Argument2 structures in system memory before
            // calling the RegistryCallback routine" (EX_CALLBACK_FUNCTION,
            // remarks), and this image imports CmCallbackGetKeyObjectIDEx,
            // which exists from Windows 8 on, so it cannot load on an older
            // kernel. Read-only; the caller's buffer is not aliased mutably
            // while the operation is in progress.
            unsafe { core::slice::from_raw_parts(pre.Data.cast::<u8>(), pre.DataSize as usize) }
        };
        let facts = RegistrySetValueFacts {
            // SAFETY: callable at any IRQL; returns a value.
            origin: origin(nt::handle_id(unsafe { PsGetCurrentProcessId() })),
            value_type: pre.Type,
            data_size: pre.DataSize,
            key_name: key.units(),
            // SAFETY: ValueName is null or a UNICODE_STRING valid (and
            // captured, see above) for the callback's duration.
            value_name: unsafe { nt::units(pre.ValueName) },
            data,
        };
        after_emit(g, facts.emit(&DispatchRing(ring), g.control.config.caps()));
    });
    nt::status::SUCCESS
}
