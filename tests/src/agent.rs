//! A modelled user-mode consumer: opens `\\.\Ringside` (IRP_MJ_CREATE with a
//! caller token), sends IOCTLs through real IRPs (METHOD_BUFFERED system
//! buffers, METHOD_OUT_DIRECT MDLs), and closes (IRP_MJ_CLEANUP, IRP_MJ_CLOSE),
//! as the I/O manager does for CreateFile / DeviceIoControl / CloseHandle.

use crate::api::io::{self, IrpRecord, STATUS_PENDING};
use crate::layout::*;
use crate::machine::{Machine, PASSIVE_LEVEL, model_alloc, model_free};
use crate::memory::*;
use crate::smp::{CallKind, GuestCall};
use crate::verifier::Rule;

pub const IRP_MJ_CREATE: u8 = 0x00;
pub const IRP_MJ_CLOSE: u8 = 0x02;
pub const IRP_MJ_DEVICE_CONTROL: u8 = 0x0e;
pub const IRP_MJ_CLEANUP: u8 = 0x12;

/// The agent's process (a service running as an administrator or not).
pub const AGENT_PID: u32 = 3100;
pub const AGENT_TID: u32 = 3104;

/// An open handle: its FILE_OBJECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    pub file_object: u64,
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub status: i32,
    pub information: u64,
    pub output: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    Done(Completion),
    Pending(u64),
}

impl Machine {
    /// The control device the driver created.
    pub fn control_device(&self) -> Option<u64> {
        self.kernel().io.devices.keys().next().copied()
    }

    fn build_irp(&mut self, major: u8, file_object: u64) -> u64 {
        let uc = &mut self.uc;
        let irp = model_alloc(uc, (IRP_SIZE + IO_STACK_LOCATION_SIZE) as u64);
        let stack = irp + IRP_SIZE as u64;
        uc.write_u16(irp, 6); // IO_TYPE_IRP
        uc.write_u16(irp + 2, (IRP_SIZE + IO_STACK_LOCATION_SIZE) as u16);
        uc.write_u8(irp + IRP_STACK_COUNT, 1);
        uc.write_u8(irp + IRP_CURRENT_LOCATION, 1);
        uc.write_u8(irp + IRP_REQUESTOR_MODE, 1); // UserMode
        uc.write_u64(irp + IRP_THREAD, THREAD_BASE);
        uc.write_u64(irp + IRP_CURRENT_STACK_LOCATION, stack);
        uc.write_u8(stack + STACK_MAJOR, major);
        let device = self.control_device().unwrap_or(0);
        self.uc.write_u64(stack + STACK_DEVICE_OBJECT, device);
        self.uc.write_u64(stack + STACK_FILE_OBJECT, file_object);
        irp
    }

    /// Sends `irp` to the driver's dispatch routine and checks the
    /// pending/completion contract.
    fn send(&mut self, irp: u64, record: IrpRecord) -> Result<Sent, String> {
        let Some(call) = self.dispatch_call(irp, record) else {
            return Ok(Sent::Done(Completion {
                status: io::STATUS_INVALID_DEVICE_REQUEST,
                information: 0,
                output: Vec::new(),
            }));
        };
        self.set_current(AGENT_PID, AGENT_TID);
        let status = self.call_at(PASSIVE_LEVEL, call.function, &call.args)?;
        self.dispatched(irp, status)
    }

    /// The dispatch routine's call for `irp` (registered with the I/O
    /// manager as `record`), to make now or on a CPU of a multi-CPU run;
    /// `None` if the driver has no routine for the major function.
    fn dispatch_call(&mut self, irp: u64, record: IrpRecord) -> Option<GuestCall> {
        let major = record.major;
        self.kernel_mut().io.irps.insert(irp, record);
        let device = self.control_device().unwrap_or(0);
        let dispatch = io::major_function(&self.uc, self.driver_object, major);
        if dispatch == 0 {
            self.kernel_mut().io.irps.remove(&irp);
            return None;
        }
        Some(GuestCall {
            label: format!("dispatch major {major:#x} IRP {irp:#x}"),
            kind: CallKind::Dispatch,
            function: dispatch,
            args: vec![device, irp],
            irql: PASSIVE_LEVEL,
            pid: AGENT_PID,
            tid: AGENT_TID,
            copy_before: None,
        })
    }

    /// After the dispatch routine returned `status` for `irp`: checks the
    /// pending/completion contract; the completion, or `Pending`.
    pub fn dispatched(&mut self, irp: u64, status: u64) -> Result<Sent, String> {
        let status = status as u32 as i32;
        let major = self.kernel().io.irps.get(&irp).map_or(0, |r| r.major);
        if major == IRP_MJ_CLOSE {
            // The file object's reference on the device goes with its CLOSE;
            // the last one on a delete-pending device takes the device and,
            // if the driver's unload already ran, the driver image with it.
            let device = self
                .uc
                .read_u64(io::stack_location(&self.uc, irp) + STACK_DEVICE_OBJECT);
            if io::release_device_handle(&mut self.uc, device) && self.kernel().unload_deferred {
                self.finish_unload();
            }
        }
        let stack = io::stack_location(&self.uc, irp);
        let marked = self.uc.read_u8(stack + STACK_CONTROL) & 1 != 0;
        let completed = self.kernel().io.irps.get(&irp).and_then(|r| r.completed);
        if status == STATUS_PENDING {
            if !marked {
                self.kernel_mut().verifier.report(
                    Rule::Irp,
                    format!("dispatch of major {major:#x} returned STATUS_PENDING without IoMarkIrpPending"),
                );
            }
            if completed.is_none() {
                return Ok(Sent::Pending(irp));
            }
        } else {
            match completed {
                None => self.kernel_mut().verifier.report(
                    Rule::Irp,
                    format!("dispatch of major {major:#x} returned {status:#x} without completing the IRP"),
                ),
                Some((s, _)) if s != status => self.kernel_mut().verifier.report(
                    Rule::Irp,
                    format!("dispatch of major {major:#x} returned {status:#x} but completed with {s:#x}"),
                ),
                Some(_) => {}
            }
        }
        self.take_completion(irp)
            .map(Sent::Done)
            .ok_or_else(|| format!("IRP {irp:#x} neither pending nor completed"))
    }

    /// The completion of `irp`, once the driver completed it (the IRP is then freed).
    pub fn take_completion(&mut self, irp: u64) -> Option<Completion> {
        let record = self.kernel().io.irps.get(&irp)?.clone();
        let (status, information) = record.completed?;
        self.kernel_mut().io.irps.remove(&irp);
        let user = if record.user_block != 0 {
            record.user_block
        } else {
            record.output_buffer
        };
        for block in [record.system_buffer, user] {
            if block != 0 {
                model_free(&mut self.uc, block);
            }
        }
        let mdl = self.uc.read_u64(irp + IRP_MDL_ADDRESS);
        if mdl != 0 {
            io::unmap_system_mapping(&mut self.uc, mdl);
            model_free(&mut self.uc, mdl);
        }
        model_free(&mut self.uc, irp);
        Some(Completion {
            status,
            information,
            output: record.output,
        })
    }

    /// CreateFile(`\\.\Ringside`) by a caller whose token is (or is not) an
    /// administrator's. Returns the status and, on success, the handle.
    pub fn open_device(&mut self, admin: bool) -> Result<(i32, Option<Handle>), String> {
        let device = self.control_device().ok_or("the driver has no device")?;
        if self
            .kernel()
            .io
            .devices
            .get(&device)
            .is_some_and(|d| d.delete_pending)
        {
            // The I/O manager refuses opens of a device being deleted.
            return Ok((io::STATUS_DELETE_PENDING, None));
        }
        let file_object = model_alloc(&mut self.uc, FILE_OBJECT_SIZE as u64);
        self.uc.write_u16(file_object, 5); // IO_TYPE_FILE
        self.uc.write_u64(file_object + FILE_DEVICE_OBJECT, device);
        let irp = self.build_irp(IRP_MJ_CREATE, file_object);
        // IO_SECURITY_CONTEXT → ACCESS_STATE → SECURITY_SUBJECT_CONTEXT.
        let token = io::new_token(&mut self.uc, admin);
        let security = model_alloc(&mut self.uc, SECURITY_CONTEXT_SIZE as u64);
        let access_state = model_alloc(&mut self.uc, 0x200);
        let subject = access_state + ACCESS_STATE_SUBJECT_CONTEXT;
        self.uc.write_u64(subject + SUBJECT_CLIENT_TOKEN, 0); // not impersonating
        self.uc.write_u64(subject + SUBJECT_PRIMARY_TOKEN, token);
        self.uc
            .write_u64(security + SECURITY_CONTEXT_ACCESS_STATE, access_state);
        // GENERIC_READ | GENERIC_WRITE
        self.uc
            .write_u32(security + SECURITY_CONTEXT_DESIRED_ACCESS, 0xC000_0000);
        let stack = io::stack_location(&self.uc, irp);
        self.uc
            .write_u64(stack + STACK_CREATE_SECURITY_CONTEXT, security);
        let sent = self.send(
            irp,
            IrpRecord {
                major: IRP_MJ_CREATE,
                file_object,
                ..Default::default()
            },
        )?;
        model_free(&mut self.uc, security);
        model_free(&mut self.uc, access_state);
        match sent {
            Sent::Done(c) if c.status >= 0 => {
                if let Some(d) = self.kernel_mut().io.devices.get_mut(&device) {
                    d.handles += 1;
                }
                Ok((c.status, Some(Handle { file_object })))
            }
            Sent::Done(c) => {
                model_free(&mut self.uc, file_object);
                Ok((c.status, None))
            }
            Sent::Pending(_) => Err("IRP_MJ_CREATE pended".into()),
        }
    }

    /// DeviceIoControl. The method (buffered / out-direct) comes from the code.
    pub fn ioctl(
        &mut self,
        handle: Handle,
        code: u32,
        input: &[u8],
        output_len: u32,
    ) -> Result<Sent, String> {
        self.ioctl_with_user_offset(handle, code, input, output_len, 0)
    }

    /// DeviceIoControl whose caller's output buffer starts `user_offset`
    /// bytes into its page: a user buffer may have any alignment, and for
    /// METHOD_OUT_DIRECT the MDL then carries that ByteOffset. (System
    /// buffers of METHOD_BUFFERED are always pool-aligned by the I/O manager.)
    pub fn ioctl_with_user_offset(
        &mut self,
        handle: Handle,
        code: u32,
        input: &[u8],
        output_len: u32,
        user_offset: u64,
    ) -> Result<Sent, String> {
        let (irp, record) = self.build_ioctl(handle, code, input, output_len, user_offset);
        self.send(irp, record)
    }

    /// A DeviceIoControl's IRP, built as the I/O manager builds it, and
    /// its dispatch call, to run on a CPU of a multi-CPU run; hand the
    /// call's result to [`Machine::dispatched`].
    pub fn ioctl_call(
        &mut self,
        handle: Handle,
        code: u32,
        input: &[u8],
        output_len: u32,
    ) -> Result<(GuestCall, u64), String> {
        let (irp, record) = self.build_ioctl(handle, code, input, output_len, 0);
        let call = self
            .dispatch_call(irp, record)
            .ok_or("the driver has no DEVICE_CONTROL routine")?;
        Ok((call, irp))
    }

    fn build_ioctl(
        &mut self,
        handle: Handle,
        code: u32,
        input: &[u8],
        output_len: u32,
        user_offset: u64,
    ) -> (u64, IrpRecord) {
        let irp = self.build_irp(IRP_MJ_DEVICE_CONTROL, handle.file_object);
        let stack = io::stack_location(&self.uc, irp);
        self.uc
            .write_u32(stack + STACK_IOCTL_OUTPUT_LENGTH, output_len);
        self.uc
            .write_u32(stack + STACK_IOCTL_INPUT_LENGTH, input.len() as u32);
        self.uc.write_u32(stack + STACK_IOCTL_CODE, code);
        let method = code & 3;
        let mut record = IrpRecord {
            major: IRP_MJ_DEVICE_CONTROL,
            file_object: handle.file_object,
            output_len,
            method,
            ..Default::default()
        };
        let buffered_len = if method == 0 {
            input.len().max(output_len as usize)
        } else {
            input.len()
        };
        if buffered_len > 0 {
            let system_buffer = model_alloc(&mut self.uc, buffered_len as u64);
            self.uc.write_bytes(system_buffer, input);
            self.uc.write_u64(irp + IRP_SYSTEM_BUFFER, system_buffer);
            record.system_buffer = system_buffer;
        }
        if method == 2 && output_len > 0 {
            // The caller's buffer, probed and locked: an MDL describes it.
            let block = model_alloc(&mut self.uc, u64::from(output_len) + user_offset);
            let buffer = block + user_offset;
            let mdl = model_alloc(
                &mut self.uc,
                MDL_SIZE as u64 + 8 * (u64::from(output_len) / PAGE + 2),
            );
            self.uc.write_u16(mdl + MDL_SIZE_FIELD, MDL_SIZE as u16);
            self.uc.write_u16(mdl + MDL_FLAGS, 0x0002); // MDL_PAGES_LOCKED
            self.uc.write_u64(mdl + MDL_START_VA, buffer & !(PAGE - 1));
            self.uc
                .write_u32(mdl + MDL_BYTE_OFFSET, (buffer & (PAGE - 1)) as u32);
            self.uc.write_u32(mdl + MDL_BYTE_COUNT, output_len);
            self.uc.write_u64(irp + IRP_MDL_ADDRESS, mdl);
            self.uc.write_u64(irp + IRP_USER_BUFFER, buffer);
            record.output_buffer = buffer;
            record.user_block = block;
        }
        (irp, record)
    }

    /// A request that must not pend.
    pub fn ioctl_now(
        &mut self,
        handle: Handle,
        code: u32,
        input: &[u8],
        output_len: u32,
    ) -> Result<Completion, String> {
        match self.ioctl(handle, code, input, output_len)? {
            Sent::Done(c) => Ok(c),
            Sent::Pending(irp) => Err(format!("IOCTL {code:#x} pended (IRP {irp:#x})")),
        }
    }

    /// The dispatch call of an IRP_MJ_CLEANUP or IRP_MJ_CLOSE of `handle`
    /// (its IRP), for a multi-CPU run; see [`Machine::dispatched`].
    pub fn handle_call(&mut self, handle: Handle, major: u8) -> Result<(GuestCall, u64), String> {
        let irp = self.build_irp(major, handle.file_object);
        let call = self
            .dispatch_call(
                irp,
                IrpRecord {
                    major,
                    file_object: handle.file_object,
                    ..Default::default()
                },
            )
            .ok_or_else(|| format!("the driver has no routine for major {major:#x}"))?;
        Ok((call, irp))
    }

    /// CloseHandle: IRP_MJ_CLEANUP then IRP_MJ_CLOSE.
    pub fn close_device(&mut self, handle: Handle) -> Result<(i32, i32), String> {
        let mut statuses = [0i32; 2];
        for (i, major) in [IRP_MJ_CLEANUP, IRP_MJ_CLOSE].into_iter().enumerate() {
            let irp = self.build_irp(major, handle.file_object);
            match self.send(
                irp,
                IrpRecord {
                    major,
                    file_object: handle.file_object,
                    ..Default::default()
                },
            )? {
                Sent::Done(c) => statuses[i] = c.status,
                Sent::Pending(_) => return Err(format!("major {major:#x} pended")),
            }
        }
        model_free(&mut self.uc, handle.file_object);
        Ok((statuses[0], statuses[1]))
    }

    /// Cancels a pending IRP as the I/O manager does (CancelIoEx).
    pub fn cancel(&mut self, irp: u64) -> bool {
        io::cancel_irp(&mut self.uc, irp)
    }
}

/// CONFIGURE as the event tests send it: every kind on, names up to 1 KiB,
/// 64 KiB batches within 50 ms.
pub fn every_kind() -> ringside_wire::ioctl::ConfigureRequest {
    ringside_wire::ioctl::ConfigureRequest {
        event_mask: ringside_wire::kind::ALL_EVENTS_MASK,
        max_name_bytes: 1024,
        batch_bytes: 64 * 1024,
        max_latency_ms: 50,
        ..Default::default()
    }
}

/// A consumer session as the agent runs it: the device opened by an
/// administrator, HELLO at the current ABI, CONFIGURE with `config`.
pub fn connected(
    sys: &[u8],
    config: &ringside_wire::ioctl::ConfigureRequest,
) -> Result<(Machine, Handle), String> {
    connected_with_ring(sys, config, None)
}

/// The service's `Parameters` key, where `RingSizeBytes` lives.
pub const PARAMETERS_KEY: &str =
    r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services\ringside\Parameters";

/// [`connected`], with the DWORD `RingSizeBytes` set before DriverEntry.
pub fn connected_with_ring(
    sys: &[u8],
    config: &ringside_wire::ioctl::ConfigureRequest,
    ring_bytes: Option<u32>,
) -> Result<(Machine, Handle), String> {
    connected_on(sys, config, ring_bytes, 1)
}

/// [`connected_with_ring`] on a machine of `processors` CPUs.
pub fn connected_on(
    sys: &[u8],
    config: &ringside_wire::ioctl::ConfigureRequest,
    ring_bytes: Option<u32>,
    processors: u32,
) -> Result<(Machine, Handle), String> {
    use ringside_wire::ioctl::{HelloRequest, IOCTL_CONFIGURE, IOCTL_HELLO};
    use zerocopy::IntoBytes;
    let mut machine = Machine::load(sys)?;
    machine.kernel_mut().processors = processors;
    if let Some(bytes) = ring_bytes {
        machine
            .kernel_mut()
            .reg
            .set_dword(PARAMETERS_KEY, "RingSizeBytes", bytes);
    }
    let status = machine.driver_entry()?;
    if status != 0 {
        return Err(format!("DriverEntry failed: {status:#x}"));
    }
    let (status, handle) = machine.open_device(true)?;
    let handle = handle.ok_or_else(|| format!("open failed: {status:#x}"))?;
    let hello = HelloRequest {
        size: size_of::<HelloRequest>() as u32,
        abi_version: ringside_wire::ABI_VERSION,
        agent_version: 1 << 16,
        _pad: 0,
    };
    let done = machine.ioctl_now(handle, IOCTL_HELLO, hello.as_bytes(), 32)?;
    if done.status != 0 {
        return Err(format!("HELLO failed: {:#x}", done.status));
    }
    let done = machine.ioctl_now(handle, IOCTL_CONFIGURE, config.as_bytes(), 0)?;
    if done.status != 0 {
        return Err(format!("CONFIGURE failed: {:#x}", done.status));
    }
    Ok((machine, handle))
}

impl Machine {
    /// Every record waiting in the ring, READ until none is left, as one
    /// byte string.
    pub fn drained(&mut self, handle: Handle) -> Vec<u8> {
        self.drain(handle).expect("drain").concat()
    }

    /// The kinds of [`Self::drained`]'s records, in order.
    pub fn drained_kinds(&mut self, handle: Handle) -> Vec<ringside_wire::RecordKind> {
        let bytes = self.drained(handle);
        ringside_wire::Records::new(&bytes)
            .map(|r| r.expect("decodes").kind())
            .collect()
    }

    /// One READ of `READ_MIN_BUFFER` bytes; if it pends, modelled time
    /// advances in 1 ms steps (timers fire) until the driver completes it,
    /// at most `limit_ms`. Returns the completion and the modelled
    /// milliseconds it waited.
    pub fn read_batch(
        &mut self,
        handle: Handle,
        limit_ms: u64,
    ) -> Result<(Completion, u64), String> {
        use ringside_wire::ioctl::{IOCTL_READ, READ_MIN_BUFFER};
        match self.ioctl(handle, IOCTL_READ, &[], READ_MIN_BUFFER)? {
            Sent::Done(c) => Ok((c, 0)),
            Sent::Pending(irp) => {
                for waited in 1..=limit_ms {
                    self.advance_time_100ns(10_000)?;
                    if let Some(c) = self.take_completion(irp) {
                        return Ok((c, waited));
                    }
                }
                Err(format!(
                    "READ still pending after {limit_ms} ms of modelled time"
                ))
            }
        }
    }

    /// Reads until a READ would pend: every committed record, as the raw
    /// READ batches (each a whole number of records).
    pub fn drain(&mut self, handle: Handle) -> Result<Vec<Vec<u8>>, String> {
        use ringside_wire::ioctl::{IOCTL_READ, READ_MIN_BUFFER};
        let mut batches = Vec::new();
        loop {
            match self.ioctl(handle, IOCTL_READ, &[], READ_MIN_BUFFER)? {
                Sent::Done(c) if c.status == 0 => {
                    batches.push(c.output[..c.information as usize].to_vec());
                }
                Sent::Done(c) => return Err(format!("READ failed: {:#x}", c.status)),
                Sent::Pending(irp) => {
                    // Nothing committed: take the READ back (CancelIoEx).
                    if !self.cancel(irp) {
                        return Err("pending READ could not be cancelled".into());
                    }
                    let c = self
                        .take_completion(irp)
                        .ok_or("cancelled READ not completed")?;
                    if c.status != ringside_wire::ioctl::status::CANCELLED {
                        return Err(format!("cancelled READ completed with {:#x}", c.status));
                    }
                    return Ok(batches);
                }
            }
        }
    }

    /// The end of a session: the consumer closes its handle, the driver
    /// unloads, and nothing is left behind (no finding).
    pub fn close_and_unload(&mut self, handle: Handle) -> Result<(), String> {
        self.close_device(handle)?;
        self.unload()?;
        let findings = self.findings();
        if findings.is_empty() {
            Ok(())
        } else {
            Err(format!("{findings:?}"))
        }
    }

    /// CONFIGURE on an open session (e.g. switching an event kind off).
    pub fn configure(
        &mut self,
        handle: Handle,
        config: &ringside_wire::ioctl::ConfigureRequest,
    ) -> Result<(), String> {
        use ringside_wire::ioctl::IOCTL_CONFIGURE;
        use zerocopy::IntoBytes;
        let done = self.ioctl_now(handle, IOCTL_CONFIGURE, config.as_bytes(), 0)?;
        if done.status != 0 {
            return Err(format!("CONFIGURE failed: {:#x}", done.status));
        }
        Ok(())
    }

    /// STATS: the driver's counters.
    pub fn stats(&mut self, handle: Handle) -> Result<ringside_wire::ioctl::StatsResponse, String> {
        use ringside_wire::ioctl::{IOCTL_STATS, StatsResponse};
        use zerocopy::FromBytes;
        let done = self.ioctl_now(handle, IOCTL_STATS, &[], size_of::<StatsResponse>() as u32)?;
        if done.status != 0 {
            return Err(format!("STATS failed: {:#x}", done.status));
        }
        StatsResponse::read_from_prefix(&done.output)
            .map(|(s, _)| s)
            .map_err(|_| format!("STATS returned {} bytes", done.output.len()))
    }
}
