//! The registry callback (wdm.h: `CmRegisterCallbackEx`,
//! `CmUnRegisterCallback`, `CmCallbackGetKeyObjectIDEx`,
//! `CmCallbackReleaseKeyObjectIDEx`): a trampoline that copies the raw facts
//! of a successful value set, key creation, key deletion, value deletion or
//! key rename into one record. Observe only: it always returns
//! STATUS_SUCCESS, so it never blocks, bypasses or changes an operation.
//!
//! A deleted or renamed key no longer has the name the event must report
//! once the operation is done, so its name is queried at the
//! pre-notification and handed to the post-notification through the
//! operation's `CallContext`, which the configuration manager carries from
//! one to the other ("Specifying Context Information": the post structure's
//! CallContext matches the pre structure's). The name is the API's own
//! allocation; the post-notification releases it whatever the outcome.

use core::ffi::c_void;
use core::sync::atomic::Ordering;

use ringside_driver::record::{
    RegistryKeyFacts, RegistryRenameFacts, RegistrySetValueFacts, Reserve,
};
use ringside_wire::{
    DropReason, EventKind, REGISTRY_OP_CREATE_KEY, REGISTRY_OP_DELETE_KEY, REGISTRY_OP_DELETE_VALUE,
};
use windows_sys::Wdk::Foundation::DRIVER_OBJECT;
use windows_sys::Wdk::System::SystemServices::{
    PsGetCurrentProcessId, REG_DELETE_KEY_INFORMATION, REG_DELETE_VALUE_KEY_INFORMATION,
    REG_POST_OPERATION_INFORMATION, REG_RENAME_KEY_INFORMATION, REG_SET_VALUE_KEY_INFORMATION,
    RegNtPostCreateKeyEx, RegNtPostDeleteKey, RegNtPostDeleteValueKey, RegNtPostRenameKey,
    RegNtPostSetValueKey, RegNtPreDeleteKey, RegNtPreRenameKey,
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

    /// Hands the name to the operation's `CallContext`: the
    /// post-notification takes it back with [`KeyName::from_context`].
    fn into_context(self) -> *mut c_void {
        let name = self.0;
        core::mem::forget(self);
        name.cast()
    }

    /// The name a pre-notification stored in `CallContext` (null: none was
    /// stored), owned again, so it is released on drop.
    fn from_context(context: *mut c_void) -> Option<KeyName> {
        (!context.is_null()).then(|| KeyName(context.cast()))
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

/// The notification classes this callback acts on (`REG_NOTIFY_CLASS`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Notification {
    /// `RegNtPostSetValueKey`.
    SetValue,
    /// `RegNtPostCreateKeyEx`.
    CreateKey,
    /// `RegNtPreDeleteKey`: the name is held for the post-notification.
    PreDeleteKey,
    /// `RegNtPostDeleteKey`.
    DeleteKey,
    /// `RegNtPostDeleteValueKey`.
    DeleteValue,
    /// `RegNtPreRenameKey`: the name is held for the post-notification.
    PreRenameKey,
    /// `RegNtPostRenameKey`.
    RenameKey,
}

impl Notification {
    /// The notification, if this callback acts on `class`: one bounds
    /// check and one load for every class, including the ones it ignores
    /// (reads, opens, closes, queries: most of the registry's traffic).
    #[inline(always)]
    fn of(class: i32) -> Option<Notification> {
        /// Indexed by `REG_NOTIFY_CLASS`, up to the last class used.
        #[expect(
            clippy::indexing_slicing,
            reason = "const evaluation: an index out of range fails the build, never the driver"
        )]
        const TABLE: [Option<Notification>; RegNtPostCreateKeyEx as usize + 1] = {
            let mut table = [None; RegNtPostCreateKeyEx as usize + 1];
            table[RegNtPostSetValueKey as usize] = Some(Notification::SetValue);
            table[RegNtPostCreateKeyEx as usize] = Some(Notification::CreateKey);
            table[RegNtPreDeleteKey as usize] = Some(Notification::PreDeleteKey);
            table[RegNtPostDeleteKey as usize] = Some(Notification::DeleteKey);
            table[RegNtPostDeleteValueKey as usize] = Some(Notification::DeleteValue);
            table[RegNtPreRenameKey as usize] = Some(Notification::PreRenameKey);
            table[RegNtPostRenameKey as usize] = Some(Notification::RenameKey);
            table
        };
        usize::try_from(class)
            .ok()
            .and_then(|i| TABLE.get(i).copied().flatten())
    }

    /// The record kind the operation is reported as.
    fn kind(self) -> EventKind {
        match self {
            Notification::SetValue => EventKind::RegistrySetValue,
            Notification::PreRenameKey | Notification::RenameKey => EventKind::RegistryRename,
            _ => EventKind::RegistryKey,
        }
    }

    /// Whether the key's name was taken at the pre-notification: after
    /// the operation it is gone (delete) or another (rename).
    fn name_held(self) -> bool {
        matches!(self, Notification::DeleteKey | Notification::RenameKey)
    }
}

/// `EX_CALLBACK_FUNCTION`. PASSIVE_LEVEL, in the thread performing the
/// registry operation (EX_CALLBACK_FUNCTION, remarks).
unsafe extern "system" fn registry_callback(
    _context: *mut c_void,
    class: *mut c_void,
    info: *mut c_void,
) -> NTSTATUS {
    let Some(notification) = Notification::of(class as usize as i32) else {
        return nt::status::SUCCESS;
    };
    let g = globals();
    g.with_rundown(|g| match notification {
        Notification::PreDeleteKey => {
            // SAFETY: for RegNtPreDeleteKey Argument2 is a
            // REG_DELETE_KEY_INFORMATION, valid for the callback's duration;
            // its CallContext is this callback's to write.
            let pre = unsafe { info.cast::<REG_DELETE_KEY_INFORMATION>().as_mut() };
            // SAFETY: PASSIVE_LEVEL, in our registry callback.
            unsafe {
                hold_name(
                    g,
                    notification.kind(),
                    pre.map(|p| (p.Object, &mut p.CallContext)),
                )
            };
        }
        Notification::PreRenameKey => {
            // SAFETY: for RegNtPreRenameKey Argument2 is a
            // REG_RENAME_KEY_INFORMATION, as above.
            let pre = unsafe { info.cast::<REG_RENAME_KEY_INFORMATION>().as_mut() };
            // SAFETY: PASSIVE_LEVEL, in our registry callback.
            unsafe {
                hold_name(
                    g,
                    notification.kind(),
                    pre.map(|p| (p.Object, &mut p.CallContext)),
                )
            };
        }
        _ => {
            // SAFETY: for every post class Argument2 is a
            // REG_POST_OPERATION_INFORMATION valid for the callback.
            let Some(post) = (unsafe { info.cast::<REG_POST_OPERATION_INFORMATION>().as_ref() })
            else {
                return;
            };
            if notification == Notification::SetValue {
                // SAFETY: PASSIVE_LEVEL; a RegNtPostSetValueKey's structure.
                unsafe { set_value(g, post) };
            } else {
                // SAFETY: PASSIVE_LEVEL; `post` is the notification's.
                unsafe { post_operation(g, notification, post) };
            }
        }
    });
    nt::status::SUCCESS
}

/// The pre-notification of a delete or rename: the key's current name,
/// stored in the operation's CallContext for the post-notification. Nothing
/// is stored when the kind is off or the query fails; the post-notification
/// then counts the event as dropped if the operation succeeded.
///
/// # Safety
/// PASSIVE_LEVEL, in a registry callback; `pre` is the pre-notification's
/// key object and CallContext slot.
unsafe fn hold_name(g: &Globals, kind: EventKind, pre: Option<(*mut c_void, &mut *mut c_void)>) {
    let Some((object, context)) = pre else { return };
    if g.ring().is_none() || !g.control.config.enabled(kind) {
        return;
    }
    let cookie = g.registry_cookie.load(Ordering::Acquire);
    // SAFETY: PASSIVE_LEVEL; the operation's key object, valid in a
    // pre-notification.
    if let Some(name) = unsafe { KeyName::query(cookie, object) } {
        *context = name.into_context();
    }
}

/// The post-notifications: each reports its operation only when `Status`
/// is a success, and only then is `Object` valid ("Invalid Key Object
/// Pointers in Registry Notifications").
///
/// # Safety
/// PASSIVE_LEVEL, in a registry callback; `post` is the
/// REG_POST_OPERATION_INFORMATION of `notification`.
unsafe fn post_operation(
    g: &Globals,
    notification: Notification,
    post: &REG_POST_OPERATION_INFORMATION,
) {
    // A name the pre-notification held is released on every path, whatever
    // the outcome or the configuration is now.
    let held = if notification.name_held() {
        KeyName::from_context(post.CallContext)
    } else {
        None
    };
    let Some(ring) = g.ring() else { return };
    // A failed operation changed nothing: not reported as done.
    if !nt::nt_success(post.Status) {
        return;
    }
    let kind = notification.kind();
    if !g.control.config.enabled(kind) {
        return;
    }
    let ring = DispatchRing(ring);
    let key = if notification.name_held() {
        held
    } else {
        let cookie = g.registry_cookie.load(Ordering::Acquire);
        // SAFETY: PASSIVE_LEVEL; the operation's key object, valid because
        // Status is a success.
        unsafe { KeyName::query(cookie, post.Object) }
    };
    let Some(key) = key else {
        ring.drop_event(kind, DropReason::QueryFailed);
        return;
    };
    // SAFETY: callable at any IRQL; returns a value.
    let origin = origin(nt::handle_id(unsafe { PsGetCurrentProcessId() }));
    let caps = g.control.config.caps();
    let pre = post.PreInformation;
    // SAFETY (every arm): PreInformation points to the pre-notification's
    // structure of this notification, valid through this call; the names
    // in it are null or captured UNICODE_STRINGs (EX_CALLBACK_FUNCTION,
    // remarks).
    let written = match notification {
        Notification::DeleteValue => {
            // SAFETY: see above.
            let Some(pre) = (unsafe { pre.cast::<REG_DELETE_VALUE_KEY_INFORMATION>().as_ref() })
            else {
                return;
            };
            RegistryKeyFacts {
                origin,
                operation: REGISTRY_OP_DELETE_VALUE,
                key_name: key.units(),
                // SAFETY: see above.
                value_name: unsafe { nt::units(pre.ValueName) },
            }
            .emit(&ring, caps)
        }
        Notification::RenameKey => {
            // SAFETY: see above.
            let Some(pre) = (unsafe { pre.cast::<REG_RENAME_KEY_INFORMATION>().as_ref() }) else {
                return;
            };
            RegistryRenameFacts {
                origin,
                key_name: key.units(),
                // SAFETY: see above.
                new_name: unsafe { nt::units(pre.NewName) },
            }
            .emit(&ring, caps)
        }
        _ => RegistryKeyFacts {
            origin,
            operation: if notification == Notification::DeleteKey {
                REGISTRY_OP_DELETE_KEY
            } else {
                REGISTRY_OP_CREATE_KEY
            },
            key_name: key.units(),
            value_name: &[],
        }
        .emit(&ring, caps),
    };
    after_emit(g, written);
}

/// `RegNtPostSetValueKey`, the most frequent of the operations reported:
/// its own path, without the held-name handling of the others.
///
/// # Safety
/// PASSIVE_LEVEL, in a registry callback; `post` is a
/// RegNtPostSetValueKey's REG_POST_OPERATION_INFORMATION.
unsafe fn set_value(g: &Globals, post: &REG_POST_OPERATION_INFORMATION) {
    let Some(ring) = g.ring() else { return };
    if !g.control.config.enabled(EventKind::RegistrySetValue) {
        return;
    }
    // A failed set changed nothing: not reported as done.
    if !nt::nt_success(post.Status) {
        return;
    }
    // SAFETY: PreInformation is the REG_SET_VALUE_KEY_INFORMATION the
    // pre-notification received, valid until the operation returns to its
    // caller, i.e. through this post-notification.
    let Some(pre) = (unsafe {
        post.PreInformation
            .cast::<REG_SET_VALUE_KEY_INFORMATION>()
            .as_ref()
    }) else {
        return;
    };
    let cookie = g.registry_cookie.load(Ordering::Acquire);
    // SAFETY: PASSIVE_LEVEL; the operation's key object, valid because
    // Status is a success.
    let Some(key) = (unsafe { KeyName::query(cookie, post.Object) }) else {
        ring.drop_event(EventKind::RegistrySetValue, DropReason::QueryFailed);
        return;
    };
    let data: &[u8] = if pre.Data.is_null() {
        &[]
    } else {
        // SAFETY: Data holds DataSize bytes for the operation's duration.
        // It is never a user-mode buffer here: "Starting with Windows 8, the
        // kernel captures all input buffers pointed to by members of the
        // Argument2 structures in system memory before calling the
        // RegistryCallback routine" (EX_CALLBACK_FUNCTION, remarks), and this
        // image imports CmCallbackGetKeyObjectIDEx, which exists from
        // Windows 8 on, so it cannot load on an older kernel. Read-only; the
        // caller's buffer is not aliased mutably while the operation is in
        // progress.
        unsafe { core::slice::from_raw_parts(pre.Data.cast::<u8>(), pre.DataSize as usize) }
    };
    let facts = RegistrySetValueFacts {
        // SAFETY: callable at any IRQL; returns a value.
        origin: origin(nt::handle_id(unsafe { PsGetCurrentProcessId() })),
        value_type: pre.Type,
        data_size: pre.DataSize,
        key_name: key.units(),
        // SAFETY: ValueName is null or a UNICODE_STRING valid (and captured,
        // see above) for the callback's duration.
        value_name: unsafe { nt::units(pre.ValueName) },
        data,
    };
    after_emit(g, facts.emit(&DispatchRing(ring), g.control.config.caps()));
}
