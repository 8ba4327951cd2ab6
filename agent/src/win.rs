//! The agent's only FFI: Win32 calls wrapped in safe types.
//!
//! Wraps `CreateFileW`, `DeviceIoControl`, `GetOverlappedResult`,
//! `CancelIoEx`, `CreateEventW`,
//! `WaitForMultipleObjects` (the control device,
//! with overlapped READs in flight), `QueryDosDeviceW` (volume map) and
//! `LookupAccountSidW` (account names), `OpenProcess`, `GetProcessTimes`,
//! `NtQueryInformationProcess` and `ReadProcessMemory` (a new process's
//! current directory), and `CreateJobObjectW`,
//! `SetInformationJobObject`, `AssignProcessToJobObject` (the limits of the
//! separate content compile), `SetConsoleCtrlHandler` (Ctrl-C and
//! console close stop `run` cleanly), and `RegisterEventSourceW`,
//! `ReportEventW`, `RegCreateKeyExW`, `RegSetValueExW`, `RegDeleteKeyW`
//! (the service's Application event log source), and `WinVerifyTrust`
//! with the catalog lookup (an image's signature, [`trust`]). Everything else in the agent is safe code over
//! these wrappers.
//!
//! Overlapped I/O contract: while a request is pending, the kernel may write
//! into its buffer and `OVERLAPPED` at any time. Both live in a heap
//! allocation owned by a [`ReadQueue`] slot that is never moved or freed
//! while the request is in flight: [`ReadQueue::cancel`] (and `Drop`)
//! cancels every request and waits for each to complete before the memory
//! goes.

use std::ffi::c_void;
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use windows_sys::Win32::System::Console::{
    CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT,
    SetConsoleCtrlHandler,
};
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE, RegisterEventSourceW,
    ReportEventW,
};
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_LOCAL_MACHINE, KEY_SET_VALUE, REG_DWORD, REG_EXPAND_SZ, REG_OPTION_NON_VOLATILE,
    RegCloseKey, RegCreateKeyExW, RegDeleteKeyW, RegSetValueExW,
};
use windows_sys::core::BOOL;

use crate::source::stop::StopFlag;

mod trust;
pub use trust::verify_trust;

use windows_sys::Wdk::System::Threading::{NtQueryInformationProcess, ProcessBasicInformation};
use windows_sys::Win32::Foundation::FILETIME;
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_IO_PENDING, GENERIC_READ, GENERIC_WRITE, GetLastError, HANDLE,
    INVALID_HANDLE_VALUE, STATUS_PENDING, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::{LookupAccountSidW, SID_NAME_USE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_OVERLAPPED, OPEN_EXISTING, QueryDosDeviceW,
};
use windows_sys::Win32::System::Diagnostics::Debug::ReadProcessMemory;
use windows_sys::Win32::System::IO::{
    CancelIoEx, DeviceIoControl, GetOverlappedResult, OVERLAPPED,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_PROCESS_MEMORY,
    JOB_OBJECT_LIMIT_PROCESS_TIME, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JobObjectExtendedLimitInformation, SetInformationJobObject,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, GetCurrentProcess, GetProcessTimes, OpenProcess, PROCESS_BASIC_INFORMATION,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_VM_READ, WaitForMultipleObjects,
};

fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(Some(0)).collect()
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// An owned kernel handle, closed on drop.
///
/// # Invariants
/// `0` is a valid handle that this value alone closes.
#[derive(Debug)]
struct Handle(HANDLE);

impl Handle {
    fn new(raw: HANDLE) -> io::Result<Handle> {
        if raw.is_null() || raw == INVALID_HANDLE_VALUE {
            return Err(last_error());
        }
        // INVARIANT: checked non-null and not INVALID_HANDLE_VALUE; the
        // caller passes a handle it just received and gives up.
        Ok(Handle(raw))
    }

    /// A manual-reset event, initially not signalled.
    fn event() -> io::Result<Handle> {
        // SAFETY: null attributes and name are allowed; the result is checked.
        let raw = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        Handle::new(raw)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the handle is valid and owned here.
        unsafe { CloseHandle(self.0) };
    }
}

/// The opened control device.
#[derive(Debug)]
pub struct Device {
    handle: Handle,
}

impl Device {
    /// Opens `path` (`\\.\Ringside`) for overlapped I/O.
    pub fn open(path: &str) -> io::Result<Device> {
        let path = wide(path);
        // SAFETY: `path` is NUL-terminated and outlives the call; null
        // security attributes and template are allowed.
        let raw = unsafe {
            CreateFileW(
                path.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                0,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                std::ptr::null_mut(),
            )
        };
        Ok(Device {
            handle: Handle::new(raw)?,
        })
    }

    /// A buffered IOCTL, waited for: returns the bytes written to `output`.
    ///
    /// The OVERLAPPED and both buffers live in one heap allocation that is
    /// freed only once the request is known to be complete: if waiting
    /// fails, the request is cancelled and waited for again, and if even
    /// then it is still pending, the allocation is leaked rather than
    /// freed under the kernel.
    pub fn ioctl(&self, code: u32, input: &[u8], output: &mut [u8]) -> io::Result<usize> {
        let in_len = u32::try_from(input.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
        let out_len = u32::try_from(output.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
        let mut request = Box::new(IoctlRequest {
            // SAFETY: OVERLAPPED is plain data; all-zero is its documented initial state.
            overlapped: unsafe { std::mem::zeroed() },
            input: input.to_vec(),
            output: vec![0; output.len()],
            event: Handle::event()?,
        });
        request.overlapped.hEvent = request.event.0;
        let handle = self.handle.0;
        let request_ref = &mut *request;
        // SAFETY: the buffers and OVERLAPPED are in `request`, a heap
        // allocation freed only after the request completed (see below),
        // or never.
        let ok = unsafe {
            DeviceIoControl(
                handle,
                code,
                request_ref.input.as_ptr().cast::<c_void>(),
                in_len,
                request_ref.output.as_mut_ptr().cast::<c_void>(),
                out_len,
                std::ptr::null_mut(),
                &mut request_ref.overlapped,
            )
        };
        // SAFETY: reads the calling thread's last-error value; no memory access.
        if ok == 0 && unsafe { GetLastError() } != ERROR_IO_PENDING {
            // Not started: the kernel holds no pointer into `request`.
            return Err(last_error());
        }
        let mut returned = 0u32;
        // SAFETY: the request was issued with this handle and OVERLAPPED;
        // bWait = TRUE waits for it to complete.
        let ok = unsafe { GetOverlappedResult(handle, &request.overlapped, &mut returned, 1) };
        if ok == 0 {
            let error = last_error();
            if still_pending(&request.overlapped) {
                // The wait failed without the request completing: cancel
                // it and wait once more.
                // SAFETY: cancels only this request (its OVERLAPPED).
                unsafe { CancelIoEx(handle, &request.overlapped) };
                // SAFETY: as above; the result is the cancelled request's.
                unsafe { GetOverlappedResult(handle, &request.overlapped, &mut returned, 1) };
                if still_pending(&request.overlapped) {
                    // The kernel may still write into `request`: leak it
                    // (a few hundred bytes, on a path that should never
                    // run) rather than free memory it owns.
                    Box::leak(request);
                }
            }
            return Err(error);
        }
        let got = request.output.get(..returned as usize).unwrap_or_default();
        let len = got.len().min(output.len());
        output
            .get_mut(..len)
            .unwrap_or_default()
            .copy_from_slice(got.get(..len).unwrap_or_default());
        Ok(len)
    }
}

/// One buffered IOCTL's memory, which the kernel may write until the
/// request completes.
struct IoctlRequest {
    overlapped: OVERLAPPED,
    input: Vec<u8>,
    output: Vec<u8>,
    event: Handle,
}

/// True while the request of `overlapped` has not completed
/// (`HasOverlappedIoCompleted` is false): the kernel writes the final
/// status into `Internal` at completion.
fn still_pending(overlapped: &OVERLAPPED) -> bool {
    // SAFETY: a volatile read of the status word the kernel writes at
    // completion, through a reference to a live OVERLAPPED.
    let status = unsafe { std::ptr::read_volatile(&raw const overlapped.Internal) };
    status == STATUS_PENDING as usize
}

/// One READ request's memory.
struct Slot {
    overlapped: OVERLAPPED,
    buf: Vec<u8>,
    event: Handle,
    in_flight: bool,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("len", &self.buf.len())
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

/// Several READ IOCTLs kept in flight. They complete in any order; each
/// completion is returned with its slot number, and the reorder stage
/// (`source::reorder`) puts the batches back in sequence order.
#[derive(Debug)]
pub struct ReadQueue {
    device: Device,
    code: u32,
    /// Boxed so a slot's address never changes while a request is pending.
    #[expect(
        clippy::vec_box,
        reason = "the kernel holds pointers into each slot; a Box pins its address even if the Vec moves"
    )]
    slots: Vec<Box<Slot>>,
    /// The slot the next wait looks at first.
    next: usize,
}

/// Most READs [`ReadQueue`] keeps in flight (`MAXIMUM_WAIT_OBJECTS`, the
/// most events one wait can watch).
pub const MAX_READS_IN_FLIGHT: usize = 64;

impl ReadQueue {
    /// Issues `depth` READs of `size` bytes each.
    pub fn new(device: Device, code: u32, depth: usize, size: usize) -> io::Result<ReadQueue> {
        let mut queue = ReadQueue {
            device,
            code,
            slots: Vec::new(),
            next: 0,
        };
        for _ in 0..depth.clamp(1, MAX_READS_IN_FLIGHT) {
            // SAFETY: OVERLAPPED is plain data; all-zero is its documented initial state.
            let overlapped: OVERLAPPED = unsafe { std::mem::zeroed() };
            queue.slots.push(Box::new(Slot {
                overlapped,
                buf: vec![0; size],
                event: Handle::event()?,
                in_flight: false,
            }));
        }
        queue.issue_idle()?;
        Ok(queue)
    }

    /// The device, for other IOCTLs (STATS) on the same handle.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Issues a READ on every slot not in flight.
    fn issue_idle(&mut self) -> io::Result<()> {
        for index in 0..self.slots.len() {
            if self.slots.get(index).is_some_and(|s| !s.in_flight) {
                self.issue(index)?;
            }
        }
        Ok(())
    }

    fn issue(&mut self, index: usize) -> io::Result<()> {
        let handle = self.device.handle.0;
        let code = self.code;
        let slot = self
            .slots
            .get_mut(index)
            .ok_or(io::ErrorKind::InvalidInput)?;
        // SAFETY: OVERLAPPED is plain data; all-zero is its documented initial state.
        slot.overlapped = unsafe { std::mem::zeroed() };
        slot.overlapped.hEvent = slot.event.0;
        let len = u32::try_from(slot.buf.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: the slot is boxed and stays in `self.slots` until it is
        // drained, which cancels and awaits this request first, so buffer
        // and OVERLAPPED outlive it.
        let ok = unsafe {
            DeviceIoControl(
                handle,
                code,
                std::ptr::null(),
                0,
                slot.buf.as_mut_ptr().cast::<c_void>(),
                len,
                std::ptr::null_mut(),
                &mut slot.overlapped,
            )
        };
        // SAFETY: reads the calling thread's last-error value; no memory access.
        if ok == 0 && unsafe { GetLastError() } != ERROR_IO_PENDING {
            return Err(last_error());
        }
        slot.in_flight = true;
        Ok(())
    }

    /// Waits up to `timeout_ms` for any READ to complete. Returns its slot
    /// number and a copy of its batch (the slot is reissued on the next
    /// call, so the batch can wait in the reorder stage), or `None` on
    /// timeout.
    pub fn next(&mut self, timeout_ms: u32) -> io::Result<Option<(usize, Vec<u8>)>> {
        self.issue_idle()?;
        // The wait reports the first signalled handle in the array, so the
        // array starts after the slot reaped last: under load every slot
        // gets its turn, and none waits behind one that keeps refilling
        // (which would look like a hole to the reorder stage).
        let count = self.slots.len();
        if count == 0 {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let order: Vec<usize> = (0..count).map(|i| (self.next + i) % count).collect();
        let events: Vec<HANDLE> = order
            .iter()
            .filter_map(|i| self.slots.get(*i).map(|s| s.event.0))
            .collect();
        let len = u32::try_from(events.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: `events` holds `len` event handles owned by the slots,
        // which outlive the call; at most MAX_READS_IN_FLIGHT of them.
        let wait = unsafe { WaitForMultipleObjects(len, events.as_ptr(), 0, timeout_ms) };
        if wait == WAIT_TIMEOUT {
            return Ok(None);
        }
        let Some(&index) = order.get(wait.wrapping_sub(WAIT_OBJECT_0) as usize) else {
            return Err(last_error());
        };
        self.next = (index + 1) % count;
        let handle = self.device.handle.0;
        let slot = self
            .slots
            .get_mut(index)
            .ok_or(io::ErrorKind::InvalidInput)?;
        let mut returned = 0u32;
        // SAFETY: the request was issued on `handle` with this slot's
        // OVERLAPPED, and its event is signalled: it has completed.
        let ok = unsafe { GetOverlappedResult(handle, &slot.overlapped, &mut returned, 0) };
        slot.in_flight = false;
        if ok == 0 {
            return Err(last_error());
        }
        let batch = slot
            .buf
            .get(..returned as usize)
            .unwrap_or_default()
            .to_vec();
        Ok(Some((index, batch)))
    }

    /// Cancels every READ and waits for each to finish. READs that had
    /// already completed with data are returned (slot, batch): the driver
    /// stamped and counted those records as delivered, so dropping them
    /// would lose events without a trace.
    pub fn cancel(mut self) -> Vec<(usize, Vec<u8>)> {
        self.drain()
    }

    fn drain(&mut self) -> Vec<(usize, Vec<u8>)> {
        let handle = self.device.handle.0;
        let mut completed = Vec::new();
        // SAFETY: cancels this handle's requests issued by this thread or
        // others; a null OVERLAPPED means all of them.
        unsafe { CancelIoEx(handle, std::ptr::null()) };
        for (index, slot) in std::mem::take(&mut self.slots).into_iter().enumerate() {
            if !slot.in_flight {
                continue;
            }
            let mut returned = 0u32;
            // SAFETY: waits (bWait = TRUE) until the kernel is done with the
            // slot's memory; the slot is freed only after this.
            let ok = unsafe { GetOverlappedResult(handle, &slot.overlapped, &mut returned, 1) };
            // Waiting, the call returns once the request completed (with
            // the request's own error, ERROR_OPERATION_ABORTED after the
            // cancel). It can also fail without waiting (a bad handle):
            // then the request is still pending (HasOverlappedIoCompleted
            // is false) and the kernel may yet write into the slot, so its
            // memory is leaked rather than freed.
            if still_pending(&slot.overlapped) {
                Box::leak(slot);
                continue;
            }
            if ok != 0 && returned > 0 {
                let batch = slot.buf.get(..returned as usize).unwrap_or_default();
                completed.push((index, batch.to_vec()));
            }
        }
        completed
    }
}

impl Drop for ReadQueue {
    fn drop(&mut self) {
        // Only reached without `cancel` on an early error return, when the
        // session is failing anyway; `session` cancels on every path it
        // can, so completed batches reach the pipeline.
        self.drain();
    }
}

/// The stop flag the console control handler sets, and whether the agent
/// has finished writing its output (set by [`console_output_finished`]).
static CONSOLE_STOP: OnceLock<StopFlag> = OnceLock::new();
static CONSOLE_FINISHED: AtomicBool = AtomicBool::new(false);
/// The console event that stopped the agent, plus one (0: none yet).
static CONSOLE_EVENT: AtomicU32 = AtomicU32::new(0);
/// Longest the handler holds a console close, logoff or shutdown for the
/// output to be written: Windows ends the process after about 5 s.
const CONSOLE_CLOSE_WAIT: Duration = Duration::from_millis(4500);

/// Makes Ctrl-C, Ctrl-Break, closing the console window, logoff and
/// shutdown set `stop`, so `run` flushes its sinks and finishes the
/// recorder before the process ends.
pub fn stop_on_console_events(stop: StopFlag) -> io::Result<()> {
    let _ = CONSOLE_STOP.set(stop);
    // SAFETY: registers a function that lives for the whole program.
    if unsafe { SetConsoleCtrlHandler(Some(console_handler), 1) } == 0 {
        return Err(last_error());
    }
    Ok(())
}

/// The console event that stopped the agent, by name, if one did.
pub fn console_event() -> Option<&'static str> {
    Some(
        match CONSOLE_EVENT.load(Ordering::Relaxed).checked_sub(1)? {
            CTRL_C_EVENT => "Ctrl-C",
            CTRL_BREAK_EVENT => "Ctrl-Break",
            CTRL_CLOSE_EVENT => "console close",
            CTRL_LOGOFF_EVENT => "logoff",
            CTRL_SHUTDOWN_EVENT => "shutdown",
            _ => "a console event",
        },
    )
}

/// The agent has flushed its output: a console close may proceed.
pub fn console_output_finished() {
    // Release: pairs with the Acquire load in `console_handler`, so the
    // handler's thread sees the output complete when it lets Windows go on.
    CONSOLE_FINISHED.store(true, Ordering::Release);
}

/// Runs on a thread Windows creates for the console event.
unsafe extern "system" fn console_handler(event: u32) -> BOOL {
    // Relaxed: read after the run loop stopped, for a message only.
    let _ = CONSOLE_EVENT.compare_exchange(
        0,
        event.saturating_add(1),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    if let Some(stop) = CONSOLE_STOP.get() {
        stop.stop();
    }
    if matches!(
        event,
        CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT
    ) {
        // Windows ends the process as soon as this handler returns: hold
        // it until the run loop has flushed (or the time Windows allows).
        let end = std::time::Instant::now() + CONSOLE_CLOSE_WAIT;
        while !CONSOLE_FINISHED.load(Ordering::Acquire) && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Handled: for Ctrl-C and Ctrl-Break the process carries on and
    // stops by itself.
    1
}

/// Where event sources of the Application log are registered.
const EVENT_LOG_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application";

/// An entry for the Application event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventLogKind {
    Information,
    Error,
}

/// Writes `message` to the Application event log under `source` (which
/// [`register_event_source`] registered at install) with event ID `id`.
pub fn report_event(source: &str, kind: EventLogKind, id: u32, message: &str) -> io::Result<()> {
    let source = wide(source);
    // SAFETY: a null server name means this machine; `source` is
    // NUL-terminated and outlives the call. The result is checked.
    let log = unsafe { RegisterEventSourceW(std::ptr::null(), source.as_ptr()) };
    if log.is_null() {
        return Err(last_error());
    }
    let text = wide(message);
    let strings = [text.as_ptr()];
    let kind = match kind {
        EventLogKind::Information => EVENTLOG_INFORMATION_TYPE,
        EventLogKind::Error => EVENTLOG_ERROR_TYPE,
    };
    // SAFETY: `log` is the handle just opened; `strings` holds one pointer
    // to the NUL-terminated `text`, both alive for the call; no SID, no
    // raw data.
    let ok = unsafe {
        ReportEventW(
            log,
            kind,
            0,
            id,
            std::ptr::null_mut(),
            1,
            0,
            strings.as_ptr(),
            std::ptr::null(),
        )
    };
    let result = if ok == 0 { Err(last_error()) } else { Ok(()) };
    // SAFETY: closes the handle RegisterEventSourceW returned, once.
    unsafe { DeregisterEventSource(log) };
    result
}

/// Registers `source` in the Application log
/// (`HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\SOURCE`),
/// naming `message_file` as its message file and all entry types.
pub fn register_event_source(source: &str, message_file: &std::path::Path) -> io::Result<()> {
    let subkey = wide(&format!(r"{EVENT_LOG_KEY}\{source}"));
    let mut key: HKEY = std::ptr::null_mut();
    // SAFETY: `subkey` is NUL-terminated; null class, security attributes
    // and disposition are allowed; `key` receives the opened key.
    let status = unsafe {
        RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            subkey.as_ptr(),
            0,
            std::ptr::null(),
            REG_OPTION_NON_VOLATILE,
            KEY_SET_VALUE,
            std::ptr::null(),
            &mut key,
            std::ptr::null_mut(),
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    let file: Vec<u8> = wide(&message_file.display().to_string())
        .iter()
        .flat_map(|c| c.to_le_bytes())
        .collect();
    let types = 7u32.to_le_bytes(); // error, warning, information
    let mut result = Ok(());
    for (name, kind, data) in [
        ("EventMessageFile", REG_EXPAND_SZ, file.as_slice()),
        ("TypesSupported", REG_DWORD, types.as_slice()),
    ] {
        let name = wide(name);
        let len = u32::try_from(data.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: `key` is open for KEY_SET_VALUE; `name` is
        // NUL-terminated; `data` holds `len` bytes; all outlive the call.
        let status = unsafe { RegSetValueExW(key, name.as_ptr(), 0, kind, data.as_ptr(), len) };
        if status != 0 {
            result = Err(io::Error::from_raw_os_error(status as i32));
        }
    }
    // SAFETY: closes the key opened above, once.
    unsafe { RegCloseKey(key) };
    result
}

/// Removes what [`register_event_source`] registered.
pub fn unregister_event_source(source: &str) -> io::Result<()> {
    let subkey = wide(&format!(r"{EVENT_LOG_KEY}\{source}"));
    // SAFETY: `subkey` is NUL-terminated and outlives the call.
    let status = unsafe { RegDeleteKeyW(HKEY_LOCAL_MACHINE, subkey.as_ptr()) };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    Ok(())
}

/// `(\Device\HarddiskVolume3, C:)` for every drive letter in use.
pub fn dos_devices() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut target = vec![0u16; 1024];
    for letter in b'A'..=b'Z' {
        let drive = format!("{}:", char::from(letter));
        let name = wide(&drive);
        // SAFETY: `name` is NUL-terminated; `target` holds `len` u16s.
        let len =
            unsafe { QueryDosDeviceW(name.as_ptr(), target.as_mut_ptr(), target.len() as u32) };
        if len == 0 {
            continue;
        }
        // The result is a list of NUL-terminated strings; the first is current.
        let first: Vec<u16> = target
            .iter()
            .take(len as usize)
            .take_while(|c| **c != 0)
            .copied()
            .collect();
        out.push((String::from_utf16_lossy(&first), drive));
    }
    out
}

/// `DOMAIN\name` of a binary SID, if Windows knows it.
pub fn lookup_account_sid(sid: &[u8]) -> Option<String> {
    // Parse first: LookupAccountSidW must only ever see a well-formed SID.
    crate::enrich::sid::Sid::parse(sid).ok()?;
    let mut sid = sid.to_vec();
    let mut name = vec![0u16; 256];
    let mut domain = vec![0u16; 256];
    let mut name_len = name.len() as u32;
    let mut domain_len = domain.len() as u32;
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: `sid` holds a SID validated above; the buffers hold the
    // lengths passed, which the call updates.
    let ok = unsafe {
        LookupAccountSidW(
            std::ptr::null(),
            sid.as_mut_ptr().cast::<c_void>(),
            name.as_mut_ptr(),
            &mut name_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if ok == 0 {
        return None;
    }
    let name = String::from_utf16_lossy(name.get(..name_len as usize)?);
    let domain = String::from_utf16_lossy(domain.get(..domain_len as usize)?);
    Some(if domain.is_empty() {
        name
    } else {
        format!(r"{domain}\{name}")
    })
}

/// Reads `buf.len()` bytes at `address` in `process`; all of them or none.
fn read_process(process: &Handle, address: u64, buf: &mut [u8]) -> Option<()> {
    let mut read = 0usize;
    // SAFETY: `process` is open with PROCESS_VM_READ; the call copies at
    // most `buf.len()` bytes into `buf`, which is ours and exclusively
    // borrowed, and fails (without a partial copy counted as success)
    // when the range is not readable in the other process.
    let ok = unsafe {
        ReadProcessMemory(
            process.0,
            address as usize as *const c_void,
            buf.as_mut_ptr().cast::<c_void>(),
            buf.len(),
            &mut read,
        )
    };
    (ok != 0 && read == buf.len()).then_some(())
}

/// `CurrentDirectory.DosPath` of process `pid` from its parameters block
/// (see `enrich::process_params`), if it is still running and was
/// created no later than `created_by` (FILETIME).
pub fn process_current_directory(pid: u32, created_by: u64) -> Option<String> {
    use crate::enrich::process_params as params;
    // SAFETY: plain call; the result is checked by `Handle::new`.
    let raw = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ, 0, pid) };
    let process = Handle::new(raw).ok()?;
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the handle is open with PROCESS_QUERY_LIMITED_INFORMATION;
    // the four FILETIMEs are ours.
    if unsafe { GetProcessTimes(process.0, &mut created, &mut exited, &mut kernel, &mut user) } == 0
    {
        return None;
    }
    let created = u64::from(created.dwHighDateTime) << 32 | u64::from(created.dwLowDateTime);
    if created > created_by {
        // A later process that has the pid now.
        return None;
    }
    // SAFETY: PROCESS_BASIC_INFORMATION is plain data; all-zero is valid.
    let mut basic: PROCESS_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    let mut returned = 0u32;
    // SAFETY: ProcessBasicInformation (0) fills exactly one
    // PROCESS_BASIC_INFORMATION, whose size is passed; the handle is open
    // with PROCESS_QUERY_LIMITED_INFORMATION, which this class needs.
    let status = unsafe {
        NtQueryInformationProcess(
            process.0,
            ProcessBasicInformation,
            (&raw mut basic).cast::<c_void>(),
            std::mem::size_of::<PROCESS_BASIC_INFORMATION>() as u32,
            &mut returned,
        )
    };
    if status < 0 || basic.PebBaseAddress.is_null() {
        return None;
    }
    let peb = basic.PebBaseAddress as usize as u64;
    let mut pointer = [0u8; 8];
    read_process(
        &process,
        peb.checked_add(params::PEB_PROCESS_PARAMETERS as u64)?,
        &mut pointer,
    )?;
    let block = u64::from_le_bytes(pointer);
    if block == 0 {
        return None;
    }
    let mut flags = [0u8; 4];
    read_process(
        &process,
        block.checked_add(params::PARAMS_FLAGS as u64)?,
        &mut flags,
    )?;
    let mut dos_path = [0u8; 16];
    read_process(
        &process,
        block.checked_add(params::PARAMS_CURRENT_DIRECTORY as u64)?,
        &mut dos_path,
    )?;
    let (address, length) = params::dos_path_location(block, u32::from_le_bytes(flags), &dos_path)?;
    let mut text = vec![0u8; length];
    read_process(&process, address, &mut text)?;
    Some(params::sysmon_directory(params::utf16_text(&text)))
}

/// Puts this process in a new job object that limits it to `memory` bytes
/// of committed memory and `cpu_seconds` of user-mode CPU time: past
/// either, Windows fails its allocations or terminates it. The separate
/// content compile (`content validate`) calls this before it reads any
/// content, so nothing runs outside the limits.
pub fn limit_this_process(memory: usize, cpu_seconds: u64) -> io::Result<()> {
    // SAFETY: null attributes and name are allowed; the result is checked.
    let job = Handle::new(unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) })?;
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    limits.BasicLimitInformation.LimitFlags =
        JOB_OBJECT_LIMIT_PROCESS_MEMORY | JOB_OBJECT_LIMIT_PROCESS_TIME;
    // In 100 ns units.
    limits.BasicLimitInformation.PerProcessUserTimeLimit =
        i64::try_from(cpu_seconds.saturating_mul(10_000_000)).unwrap_or(i64::MAX);
    limits.ProcessMemoryLimit = memory;
    // SAFETY: `job` is a job handle we own; the pointer and length name
    // `limits`, a JOBOBJECT_EXTENDED_LIMIT_INFORMATION that outlives the
    // call (the function copies it).
    let set = unsafe {
        SetInformationJobObject(
            job.0,
            JobObjectExtendedLimitInformation,
            (&raw const limits).cast::<c_void>(),
            size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    };
    if set == 0 {
        return Err(last_error());
    }
    // SAFETY: no arguments; returns a pseudo-handle that needs no closing.
    let this = unsafe { GetCurrentProcess() };
    // SAFETY: `job` is a job handle we own, `this` the current process. A
    // process in a job stays in it (and under its limits) after our handle
    // closes.
    if unsafe { AssignProcessToJobObject(job.0, this) } == 0 {
        return Err(last_error());
    }
    Ok(())
}
