//! The driver's kernel cost: instructions executed inside `ringside.sys`
//! (RIP within the image; modelled kernel APIs excluded) per callback
//! invocation, by callback kind. Deterministic: the same image and scenario
//! always give the same counts, so they serve as a regression metric.

use std::collections::BTreeMap;

use ringside_wire::ioctl::ConfigureRequest;

use crate::agent::connected;
use crate::file_io::*;
use crate::machine::Machine;
use crate::scenario::{ProcessSpec, domain_sid, integrity_sid};

/// Invocations measured per kind (after one warm-up invocation).
pub const RUNS: u64 = 32;

/// One callback kind's cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cost {
    pub callback: &'static str,
    /// Instructions per invocation (total / RUNS; they are all equal in practice).
    pub instructions: u64,
    /// With [`measure_profiled`]: instructions executed at each RVA of the
    /// image over the `RUNS` measured invocations (empty otherwise).
    pub profile: BTreeMap<u32, u64>,
}

/// Runs `step` once to warm up, then `RUNS` times counted.
fn per_call(
    m: &mut Machine,
    mut step: impl FnMut(&mut Machine, u64) -> Result<(), String>,
) -> Result<(u64, BTreeMap<u32, u64>), String> {
    step(m, 1_000)?;
    let profiled = m.kernel().profile.is_some();
    if profiled {
        m.kernel_mut().profile = Some(Default::default());
    }
    let before = m.kernel().driver_instructions;
    for i in 0..RUNS {
        step(m, i)?;
    }
    let per_call = (m.kernel().driver_instructions - before) / RUNS;
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
    Ok((per_call, profile))
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
        admin: false,
    };
    let mut costs = Vec::new();
    let mut processes = Vec::new();
    let (cost, profile) = per_call(&mut m, |m, i| {
        processes.push(m.process_create(&spec(10_000 + i as u32))?);
        Ok(())
    })?;
    costs.push(Cost {
        callback: "process create",
        instructions: cost,
        profile,
    });
    let mut exiting = processes.clone().into_iter();
    let (cost, profile) = per_call(&mut m, |m, _| {
        m.process_exit(exiting.next().ok_or("no process")?, 0)
    })?;
    costs.push(Cost {
        callback: "process exit",
        instructions: cost,
        profile,
    });
    let (cost, profile) = per_call(&mut m, |m, i| {
        m.image_load(
            2000,
            r"\Device\HarddiskVolume3\Windows\System32\kernel32.dll",
            0x7ff0_0000_0000 + (i << 24),
            0x10_0000,
            0,
        )
    })?;
    costs.push(Cost {
        callback: "image load",
        instructions: cost,
        profile,
    });
    let name = |i: u64| format!(r"\Device\HarddiskVolume3\Users\alice\Documents\report-{i}.docx");
    let mut files = Vec::new();
    let (cost, profile) = per_call(&mut m, |m, i| {
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
    })?;
    costs.push(Cost {
        callback: "post-create (event)",
        instructions: cost,
        profile,
    });
    let reader = m.new_file_object(&name(0));
    let (cost, profile) = per_call(&mut m, |m, _| {
        m.file_create(who, reader, FILE_READ_DATA, 0, 0, FILE_OPENED)
    })?;
    costs.push(Cost {
        callback: "post-create (read-only, no event)",
        instructions: cost,
        profile,
    });
    let mut writing = files.clone().into_iter();
    let (cost, profile) = per_call(&mut m, |m, _| {
        m.file_write(who, writing.next().ok_or("no file")?, 4096, false)
    })?;
    costs.push(Cost {
        callback: "pre-write (first write)",
        instructions: cost,
        profile,
    });
    let again = files[0];
    let (cost, profile) = per_call(&mut m, |m, _| m.file_write(who, again, 4096, false))?;
    costs.push(Cost {
        callback: "pre-write (again, no event)",
        instructions: cost,
        profile,
    });
    let mut renaming = files.clone().into_iter();
    let (cost, profile) = per_call(&mut m, |m, i| {
        m.file_rename(
            who,
            renaming.next().ok_or("no file")?,
            &format!("{}.locked", name(i)),
            false,
        )
    })?;
    costs.push(Cost {
        callback: "set-information (rename, pre + post)",
        instructions: cost,
        profile,
    });
    let mut deleting = files.clone().into_iter();
    let (cost, profile) = per_call(&mut m, |m, _| {
        m.file_delete_disposition(who, deleting.next().ok_or("no file")?)
    })?;
    costs.push(Cost {
        callback: "set-information (delete, pre + post)",
        instructions: cost,
        profile,
    });
    let mut closing = files.clone().into_iter();
    let (cost, profile) = per_call(&mut m, |m, _| {
        m.file_cleanup(who, closing.next().ok_or("no file")?)
    })?;
    costs.push(Cost {
        callback: "pre-cleanup (close after modify)",
        instructions: cost,
        profile,
    });
    let stats = m.stats(handle)?.stats;
    if stats.dropped.iter().sum::<u64>() != 0 {
        return Err(format!(
            "events dropped while measuring: {:?}",
            stats.dropped
        ));
    }
    for f in files.into_iter().chain([reader]) {
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
