//! The driver's kernel cost: instructions executed inside `ringside.sys`
//! (RIP within the image; modelled kernel APIs excluded) per callback
//! invocation, by callback kind, and beside them the modelled kernel APIs
//! each invocation calls (name queries, token queries, time, locks): the
//! expensive work happens there, not in the driver's own instructions.
//! Deterministic: the same image and scenario always give the same counts,
//! so they serve as a regression metric.

use std::collections::BTreeMap;

use ringside_wire::ioctl::ConfigureRequest;

use crate::agent::connected;
use crate::file_io::*;
use crate::machine::Machine;
use crate::machine::PASSIVE_LEVEL;
use crate::scenario::{
    HandleOp, KeyOp, ProcessSpec, RegistryKeyOp, RegistrySet, ThreadCreate, USER_LOGON_ID,
    domain_sid, integrity_sid,
};

/// Invocations measured per kind (after one warm-up invocation).
pub const RUNS: u64 = 32;

/// One callback kind's cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cost {
    pub callback: &'static str,
    /// Instructions per invocation (total / RUNS; they are all equal in practice).
    pub instructions: u64,
    /// Kernel API calls over the `RUNS` measured invocations, by name.
    pub api_calls: BTreeMap<&'static str, u64>,
    /// With [`measure_profiled`]: instructions executed at each RVA of the
    /// image over the `RUNS` measured invocations (empty otherwise).
    pub profile: BTreeMap<u32, u64>,
}

impl Cost {
    /// `Name×n` for each API called per invocation (a fraction where it is
    /// not called every time), most called first.
    pub fn api_text(&self) -> String {
        let mut calls: Vec<_> = self.api_calls.iter().collect();
        calls.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let runs = RUNS as f64;
        calls
            .iter()
            .map(|(name, n)| {
                let per = **n as f64 / runs;
                if per.fract() == 0.0 {
                    format!("{name}\u{d7}{per}")
                } else {
                    format!("{name}\u{d7}{per:.2}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Kernel API calls per invocation, all names.
    pub fn api_calls_per_call(&self) -> f64 {
        self.api_calls.values().sum::<u64>() as f64 / RUNS as f64
    }
}

/// The cost of `callback`: runs `step` once to warm up, then `RUNS` times
/// counted.
fn per_call(
    m: &mut Machine,
    callback: &'static str,
    mut step: impl FnMut(&mut Machine, u64) -> Result<(), String>,
) -> Result<Cost, String> {
    step(m, 1_000)?;
    // The API trace is capped; the measured runs get an empty one.
    let trace = std::mem::take(&mut m.kernel_mut().trace);
    let profiled = m.kernel().profile.is_some();
    if profiled {
        m.kernel_mut().profile = Some(Default::default());
    }
    let before = m.kernel().driver_instructions;
    for i in 0..RUNS {
        step(m, i)?;
    }
    let per_call = (m.kernel().driver_instructions - before) / RUNS;
    let measured_trace = std::mem::replace(&mut m.kernel_mut().trace, trace);
    let mut api_calls = BTreeMap::new();
    for name in measured_trace {
        *api_calls.entry(name).or_default() += 1;
    }
    let profile = if profiled {
        m.kernel_mut()
            .profile
            .replace(Default::default())
            .unwrap_or_default()
            .into_iter()
            .collect()
    } else {
        BTreeMap::new()
    };
    Ok(Cost {
        callback,
        instructions: per_call,
        api_calls,
        profile,
    })
}

/// Measures every callback kind on `sys`. Batching is configured so no
/// READ completion work is triggered: only the callbacks themselves count.
pub fn measure(sys: &[u8]) -> Result<Vec<Cost>, String> {
    measure_with(sys, false)
}

/// [`measure`], also recording where in the image the instructions ran
/// ([`Cost::profile`]); the counts are the same as without profiling.
pub fn measure_profiled(sys: &[u8]) -> Result<Vec<Cost>, String> {
    measure_with(sys, true)
}

fn measure_with(sys: &[u8], profile: bool) -> Result<Vec<Cost>, String> {
    // Every kind asked for, so each callback does the work its row names
    // (FileWrite and FileCloseModified are off by default).
    let config = ConfigureRequest {
        event_mask: ringside_wire::kind::ALL_EVENTS_MASK,
        batch_bytes: 64 * 1024,
        max_latency_ms: 50,
        ..ConfigureRequest::default()
    };
    let (mut m, handle) = connected(sys, &config)?;
    if profile {
        m.kernel_mut().profile = Some(Default::default());
    }
    let who = Requestor {
        pid: 2000,
        tid: 2004,
    };
    let spec = |pid: u32| ProcessSpec {
        pid,
        parent_pid: 1000,
        creating_pid: 1000,
        creating_tid: 1004,
        image: r"\??\C:\Windows\System32\cmd.exe".into(),
        command_line: r#"cmd.exe /c "echo ringside""#.into(),
        user_sid: domain_sid(1001),
        integrity_sid: integrity_sid(0x2000),
        logon_id: USER_LOGON_ID,
        admin: false,
    };
    let mut costs = Vec::new();
    let mut processes = Vec::new();
    costs.push(per_call(&mut m, "process create", |m, i| {
        processes.push(m.process_create(&spec(10_000 + i as u32))?);
        Ok(())
    })?);
    let mut exiting = processes.clone().into_iter();
    costs.push(per_call(&mut m, "process exit", |m, _| {
        m.process_exit(exiting.next().ok_or("no process")?, 0)
    })?);
    costs.push(per_call(&mut m, "image load", |m, i| {
        m.image_load(
            2000,
            r"\Device\HarddiskVolume3\Windows\System32\kernel32.dll",
            0x7ff0_0000_0000 + (i << 24),
            0x10_0000,
            0,
        )
    })?);
    let name = |i: u64| format!(r"\Device\HarddiskVolume3\Users\alice\Documents\report-{i}.docx");
    let mut files = Vec::new();
    costs.push(per_call(&mut m, "post-create (event)", |m, i| {
        let f = m.new_file_object(&name(i));
        files.push(f);
        m.file_create(
            who,
            f,
            GENERIC_WRITE,
            FILE_NON_DIRECTORY_FILE,
            0,
            FILE_CREATED,
        )
    })?);
    let reader = m.new_file_object(&name(0));
    costs.push(per_call(
        &mut m,
        "post-create (read-only, no event)",
        |m, _| m.file_create(who, reader, FILE_READ_DATA, 0, 0, FILE_OPENED),
    )?);
    let mut writing = files.clone().into_iter();
    costs.push(per_call(&mut m, "pre-write (first write)", |m, _| {
        m.file_write(who, writing.next().ok_or("no file")?, 4096, false)
    })?);
    let again = files[0];
    costs.push(per_call(&mut m, "pre-write (again, no event)", |m, _| {
        m.file_write(who, again, 4096, false)
    })?);
    let mut renaming = files.clone().into_iter();
    costs.push(per_call(
        &mut m,
        "set-information (rename, pre + post)",
        |m, i| {
            m.file_rename(
                who,
                renaming.next().ok_or("no file")?,
                &format!("{}.locked", name(i)),
                false,
            )
        },
    )?);
    let mut deleting = files.clone().into_iter();
    costs.push(per_call(
        &mut m,
        "set-information (delete, pre + post)",
        |m, _| m.file_delete_disposition(who, deleting.next().ok_or("no file")?),
    )?);
    let mut closing = files.clone().into_iter();
    costs.push(per_call(
        &mut m,
        "pre-cleanup (close after modify)",
        |m, _| m.file_cleanup(who, closing.next().ok_or("no file")?),
    )?);
    costs.push(per_call(&mut m, "registry callback (value set, pre + post)", |m, i| {
        m.registry_set_value(&RegistrySet {
            pid: 2000,
            key: r"\REGISTRY\USER\S-1-5-21-1004336348-1177238915-682003330-1001\SOFTWARE\Microsoft\Windows\CurrentVersion\Run".into(),
            value: format!("Updater{i}"),
            value_type: 1,
            data: r"C:\Users\alice\AppData\Local\upd.exe"
                .encode_utf16()
                .chain([0])
                .flat_map(u16::to_le_bytes)
                .collect(),
            status: 0,
        })
    })?);
    costs.push(per_call(
        &mut m,
        "registry callback (failed set, no event)",
        |m, _| {
            m.registry_set_value(&RegistrySet {
                pid: 2000,
                key: r"\REGISTRY\MACHINE\SOFTWARE\Ringside".into(),
                value: "Denied".into(),
                value_type: 4,
                data: vec![1, 0, 0, 0],
                status: 0xC000_0022_u32 as i32,
            })
        },
    )?);
    // Key operations: each one pre- and one post-notification.
    for (callback, op) in [
        ("registry callback (create key, pre + post)", KeyOp::Create),
        ("registry callback (delete key, pre + post)", KeyOp::Delete),
        (
            "registry callback (delete value, pre + post)",
            KeyOp::DeleteValue("Updater".into()),
        ),
        (
            "registry callback (rename key, pre + post)",
            KeyOp::Rename("Renamed".into()),
        ),
    ] {
        costs.push(per_call(&mut m, callback, |m, i| {
            m.registry_key_op(&RegistryKeyOp {
                pid: 2000,
                key: format!(r"\REGISTRY\MACHINE\SOFTWARE\Ringside\Key{i}"),
                op: op.clone(),
                status: 0,
            })
        })?);
    }
    // Threads: one created in another process (the routine's compare,
    // the kind's bit, rundown, the start address through a thread lookup,
    // a kernel handle and ZwQueryInformationThread, the record), one a
    // process creates in itself (nearly every thread), and the remote one
    // again with the kind switched off by CONFIGURE.
    let thread = |source: u32, target: u32, i: u64| ThreadCreate {
        source_pid: source,
        source_tid: source + 4,
        target_pid: target,
        new_tid: 20_000 + i as u32,
        start_address: 0x7ffb_9e0b_2d50,
        irql: PASSIVE_LEVEL,
    };
    let mut next_tid = 0;
    for (callback, source, target) in [
        ("thread notify (remote thread)", 2000, 636),
        ("thread notify (local thread, no event)", 2000, 2000),
    ] {
        costs.push(per_call(&mut m, callback, |m, _| {
            next_tid += 1;
            m.create_thread(&thread(source, target, next_tid))
        })?);
    }
    let without_threads = ConfigureRequest {
        event_mask: config.event_mask & !ringside_wire::EventKind::RemoteThread.mask_bit(),
        ..config
    };
    m.configure(handle, &without_threads)?;
    costs.push(per_call(
        &mut m,
        "thread notify (remote thread, kind disabled)",
        |m, _| {
            next_tid += 1;
            m.create_thread(&thread(2000, 636, next_tid))
        },
    )?);
    m.configure(handle, &config)?;
    // A process opened for VM_READ | QUERY_INFORMATION from a 16-frame
    // user-mode call trace (Sysmon's samples show 11 to 16).
    let frames: Vec<u64> = (0..16).map(|i| 0x7ffa_8c30_0000 + 0x1000 * i).collect();
    let open = HandleOp::open_process(2000, 860, 0x1410, frames);
    costs.push(per_call(
        &mut m,
        "object callbacks (process open, pre + post)",
        |m, _| m.handle_operation(&open),
    )?);
    let denied = HandleOp {
        status: 0xC000_0022_u32 as i32,
        ..open.clone()
    };
    costs.push(per_call(
        &mut m,
        "object callbacks (failed open, no event)",
        |m, _| m.handle_operation(&denied),
    )?);
    // The kind switched off by CONFIGURE: what every handle operation on
    // the machine costs an agent that does not ask for process access.
    let without = ConfigureRequest {
        event_mask: ringside_wire::kind::ALL_EVENTS_MASK
            & !ringside_wire::EventKind::ProcessAccess.mask_bit(),
        ..config
    };
    {
        use zerocopy::IntoBytes;
        let done = m.ioctl_now(
            handle,
            ringside_wire::ioctl::IOCTL_CONFIGURE,
            without.as_bytes(),
            0,
        )?;
        if done.status != 0 {
            return Err(format!("CONFIGURE failed: {:#x}", done.status));
        }
    }
    costs.push(per_call(
        &mut m,
        "object callbacks (kind disabled)",
        |m, _| m.handle_operation(&open),
    )?);
    // Named pipes: a server's create of a pipe instance (post
    // IRP_MJ_CREATE_NAMED_PIPE: the kind's bit, the status, rundown, the
    // opened name, the record), a client's connect (post-create on the
    // named-pipe instance: one compare against it first), a connect that
    // failed (nothing reported), and both with the kind switched off.
    let pipes: Vec<_> = (0..RUNS + 1)
        .map(|i| m.new_file_object(&format!(r"\Device\NamedPipe\MSSE-{i}-server")))
        .collect();
    for (callback, connect, status) in [
        ("pipe create (event)", false, 0),
        ("pipe connect (event)", true, 0),
        (
            "pipe connect (failed, no event)",
            true,
            0xC000_00AC_u32 as i32,
        ),
    ] {
        let mut next = pipes.iter().copied();
        costs.push(per_call(&mut m, callback, |m, _| {
            let pipe = next.next().ok_or("no pipe")?;
            if connect {
                m.pipe_connect(who, pipe, status)
            } else {
                m.pipe_create(who, pipe, status)
            }
        })?);
    }
    let without_pipes = ConfigureRequest {
        event_mask: without.event_mask & !ringside_wire::EventKind::NamedPipe.mask_bit(),
        ..config
    };
    m.configure(handle, &without_pipes)?;
    for (callback, connect) in [
        ("pipe create (kind disabled)", false),
        ("pipe connect (kind disabled)", true),
    ] {
        let mut next = pipes.iter().copied();
        costs.push(per_call(&mut m, callback, |m, _| {
            let pipe = next.next().ok_or("no pipe")?;
            if connect {
                m.pipe_connect(who, pipe, 0)
            } else {
                m.pipe_create(who, pipe, 0)
            }
        })?);
    }
    // A write with FileWrite and FileCloseModified both off (the default
    // mask): what every write on the machine costs, every write into a
    // pipe too, since the filter attached to the named-pipe file system.
    m.configure(
        handle,
        &ConfigureRequest {
            event_mask: ringside_wire::kind::DEFAULT_EVENTS_MASK,
            ..config
        },
    )?;
    let quiet = m.new_file_object(&name(RUNS + 1));
    costs.push(per_call(
        &mut m,
        "pre-write (kinds off, no event)",
        |m, _| m.file_write(who, quiet, 4096, false),
    )?);
    m.free_file_object(quiet);
    let stats = m.stats(handle)?.stats;
    if stats.dropped.iter().sum::<u64>() != 0 {
        return Err(format!(
            "events dropped while measuring: {:?}",
            stats.dropped
        ));
    }
    for f in files.into_iter().chain([reader]).chain(pipes) {
        m.free_file_object(f);
    }
    m.close_device(handle)?;
    m.unload()?;
    if !m.findings().is_empty() {
        return Err(format!(
            "verifier findings while measuring: {:?}",
            m.findings()
        ));
    }
    Ok(costs)
}
