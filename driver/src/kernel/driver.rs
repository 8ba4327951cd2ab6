//! DriverEntry and teardown: acquire everything in order or roll it all
//! back; unload stops producers, waits out callbacks, completes READs, then
//! frees the ring and deletes the device (DESIGN.md, "Lifecycle").

use core::ffi::c_void;
use core::sync::atomic::Ordering;

use ringside_driver::params;
use windows_sys::Wdk::Foundation::{DRIVER_OBJECT, OBJECT_ATTRIBUTES};
use windows_sys::Wdk::System::SystemServices::{
    ExAllocatePool2, ExFreePoolWithTag, ExInitializeRundownProtection,
    ExWaitForRundownProtectionRelease, KeFlushQueuedDpcs, KeQueryMaximumProcessorCountEx,
};
use windows_sys::Win32::Foundation::{HANDLE, UNICODE_STRING};
use windows_sys::Win32::System::Threading::ALL_PROCESSOR_GROUPS;

use super::globals::{Globals, acquired, globals};
use super::{access, device, filter, notify, nt, queue, registry, thread};

const POOL_FLAG_NON_PAGED: u64 = 0x0000_0000_0000_0040;
const KEY_READ: u32 = 0x0002_0019;
const OBJ_CASE_INSENSITIVE: u32 = 0x40;
const OBJ_KERNEL_HANDLE: u32 = 0x200;
const KEY_VALUE_PARTIAL_INFORMATION: u32 = 2;

/// The image entry point (`/ENTRY:DriverEntry`). PASSIVE_LEVEL, system thread.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn DriverEntry(
    driver: *mut DRIVER_OBJECT,
    registry_path: *const UNICODE_STRING,
) -> i32 {
    let g = globals();
    // SAFETY: DriverEntry's contract: a valid driver object and service key.
    let status = unsafe { start(g, driver, registry_path) };
    if !nt::nt_success(status) {
        teardown(g);
    }
    status
}

/// # Safety
/// DriverEntry's arguments.
unsafe fn start(
    g: &'static Globals,
    driver: *mut DRIVER_OBJECT,
    registry_path: *const UNICODE_STRING,
) -> i32 {
    // SAFETY: first use of the rundown reference, before any callback exists.
    unsafe { ExInitializeRundownProtection(g.rundown.get()) };

    // SAFETY: PASSIVE_LEVEL; registry_path is the service key name.
    let size = params::ring_size(unsafe { read_ring_size(registry_path) }) as usize;
    // SAFETY: PASSIVE_LEVEL; non-paged pool is NX with POOL_FLAG_NON_PAGED.
    let memory = unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, size, ringside_driver::POOL_TAG) }
        .cast::<u8>();
    if memory.is_null() {
        return nt::status::INSUFFICIENT_RESOURCES;
    }
    g.ring_memory.store(memory, Ordering::Release);
    g.ring_size.store(size, Ordering::Release);
    g.acquired.fetch_or(acquired::RING, Ordering::AcqRel);
    // SAFETY: a fresh allocation of `size` bytes (page-aligned, as every
    // allocation of a page or more is), owned by the ring until teardown
    // frees it after the ring was dropped.
    let slice: &'static mut [u8] = unsafe { core::slice::from_raw_parts_mut(memory, size) };
    // SAFETY: PASSIVE_LEVEL; counts every processor the machine can have,
    // hot-added ones included, so every CPU index is below it.
    let cpus = unsafe { KeQueryMaximumProcessorCountEx(ALL_PROCESSOR_GROUPS) };
    let (lanes, exclusive) = params::ring_lanes(size as u32, cpus);
    // Relaxed: published with the ring by `install_ring`'s Release.
    g.exclusive_lanes.store(exclusive, Ordering::Relaxed);
    if g.install_ring(slice, lanes).is_err() {
        return nt::status::UNSUCCESSFUL;
    }

    let status = queue::initialize(g);
    if !nt::nt_success(status) {
        return status;
    }
    // SAFETY: DriverEntry's driver object.
    let status = unsafe { device::create(driver, g) };
    if !nt::nt_success(status) {
        return status;
    }
    // SAFETY: DriverEntry's driver object; registers, does not start.
    let status = unsafe { filter::register(driver, g) };
    if !nt::nt_success(status) {
        return status;
    }
    let status = notify::register(g);
    if !nt::nt_success(status) {
        return status;
    }
    // SAFETY: DriverEntry's driver object.
    let status = unsafe { registry::register(driver, g) };
    if !nt::nt_success(status) {
        return status;
    }
    // A failure leaves the driver without process access events, and says
    // so in HELLO; it does not fail the load (see `access::register`).
    access::register(g);
    let status = thread::register(g);
    if !nt::nt_success(status) {
        return status;
    }
    filter::start(g)
}

/// Undoes whatever DriverEntry acquired, in reverse order. Idempotent: each
/// step clears its bit in `acquired` before undoing it. PASSIVE_LEVEL.
pub fn teardown(g: &Globals) {
    // 1. Stop the producers.
    access::unregister(g);
    thread::unregister(g);
    registry::unregister(g);
    notify::unregister(g);
    filter::unregister(g);
    // 2. Wait out every callback, dispatch and DPC that holds rundown
    //    protection; from now on none can start.
    // SAFETY: initialised in `start` (or zero, its initial state, if start
    // never ran); PASSIVE_LEVEL.
    unsafe { ExWaitForRundownProtectionRelease(g.rundown.get()) };
    // 3. Stop the timer, whatever `timer_armed` says (no one can re-arm it
    //    now: every arming path holds rundown protection), then wait out
    //    its DPC: KeCancelTimer dequeues a queued one but does not wait for
    //    one already running on another CPU; KeFlushQueuedDpcs does.
    if g.acquired.fetch_and(!acquired::TIMER, Ordering::AcqRel) & acquired::TIMER != 0 {
        queue::stop_timer(g);
        // SAFETY: PASSIVE_LEVEL.
        unsafe { KeFlushQueuedDpcs() };
        // 4. Complete every pending READ.
        queue::cancel_all(g, core::ptr::null_mut());
    }
    // 5. Free the ring.
    if g.acquired.fetch_and(!acquired::RING, Ordering::AcqRel) & acquired::RING != 0 {
        g.take_ring();
        let memory = g.ring_memory.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !memory.is_null() {
            // SAFETY: allocated in `start` with this tag; the ring that
            // borrowed it was dropped above and nothing else refers to it.
            unsafe { ExFreePoolWithTag(memory.cast::<c_void>(), ringside_driver::POOL_TAG) };
        }
    }
    // 6. Delete the symbolic link and the device.
    device::delete(g);
}

/// `RingSizeBytes` under `<service key>\Parameters`, if present as a DWORD.
///
/// # Safety
/// PASSIVE_LEVEL; `registry_path` is DriverEntry's service key name.
unsafe fn read_ring_size(registry_path: *const UNICODE_STRING) -> Option<u32> {
    // SAFETY: PASSIVE_LEVEL; DriverEntry's service key name.
    let service = unsafe { open_key(core::ptr::null_mut(), registry_path) }?;
    let parameters_name = nt::unicode(nt::wide!("Parameters"));
    // SAFETY: PASSIVE_LEVEL; a name on our stack, relative to our handle.
    let parameters = unsafe { open_key(service.0, &parameters_name) };
    drop(service);
    let parameters = parameters?;
    let value_name = nt::unicode(nt::wide!("RingSizeBytes"));
    let mut buffer = [0u8; 32];
    let mut result_len = 0u32;
    // SAFETY: PASSIVE_LEVEL; our key handle; the buffer is ours and its
    // length is passed; the kernel writes at most that many bytes.
    let status = unsafe {
        nt::ZwQueryValueKey(
            parameters.0,
            (&raw const value_name).cast(),
            KEY_VALUE_PARTIAL_INFORMATION,
            buffer.as_mut_ptr().cast(),
            buffer.len() as u32,
            &mut result_len,
        )
    };
    drop(parameters);
    if !nt::nt_success(status) {
        return None;
    }
    params::dword_from_partial_information(buffer.get(..result_len as usize)?)
}

/// A kernel registry key handle, closed on drop.
struct Key(HANDLE);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: a kernel handle we opened and close once.
        unsafe { nt::ZwClose(self.0) };
    }
}

/// # Safety
/// PASSIVE_LEVEL; `name` points to a valid `UNICODE_STRING`; `root` is null
/// or an open key handle.
unsafe fn open_key(root: HANDLE, name: *const UNICODE_STRING) -> Option<Key> {
    let attributes = OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: root,
        ObjectName: name,
        Attributes: OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
        SecurityDescriptor: core::ptr::null(),
        SecurityQualityOfService: core::ptr::null(),
    };
    let mut handle: HANDLE = core::ptr::null_mut();
    // SAFETY: PASSIVE_LEVEL (DriverEntry); `attributes` and `name` live
    // across the call; a kernel handle is returned on success.
    let status = unsafe { nt::ZwOpenKey(&mut handle, KEY_READ, (&raw const attributes).cast()) };
    // `then`, not `then_some`: an eagerly built `Key` would be dropped on
    // failure and ZwClose an invalid handle (bugcheck 0x93 under Verifier).
    nt::nt_success(status).then(|| Key(handle))
}
