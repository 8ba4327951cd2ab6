//! Concurrent scenarios for the multi-CPU model ([`crate::smp`]): the
//! driver's callbacks on some CPUs while others READ, CONFIGURE, close the
//! device and unload it. Each scenario runs one schedule from a seed and
//! returns what it found; `tests/tests/smp.rs` sweeps a seed budget and
//! `cargo xtask soak --seeds N` sweeps more.

use ringside_wire::ioctl::{
    ConfigureRequest, IOCTL_CONFIGURE, IOCTL_READ, IOCTL_STATS, READ_MIN_BUFFER, StatsResponse,
};
use ringside_wire::{EVENT_KIND_COUNT, EventKind, Record, RecordKind, Records};
use zerocopy::IntoBytes;

use crate::agent::{Handle, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, Sent, connected_on};
use crate::machine::Machine;
use crate::machine::PASSIVE_LEVEL;
use crate::scenario::{HandleOp, KeyOp, RegistryKeyOp, RegistrySet, ThreadCreate};
use crate::smp::{GuestCall, Outcome, Report, Schedule};

/// A scenario: one schedule from `seed` over the driver image `sys`.
pub type Scenario = fn(sys: &[u8], seed: u64) -> Result<Found, String>;

/// What a schedule found: findings (empty when the driver held up) and
/// the run's statistics.
#[derive(Debug, Default)]
pub struct Found {
    pub findings: Vec<String>,
    pub steps: u64,
    pub switches: u64,
    pub dpcs: u64,
}

/// Every scenario, by name.
pub const SCENARIOS: &[(&str, Scenario)] = &[
    (
        "configure_races_the_timer_dpc",
        configure_races_the_timer_dpc,
    ),
    (
        "callbacks_race_reads_and_configure",
        callbacks_race_reads_and_configure,
    ),
    (
        "callbacks_race_close_and_unload",
        callbacks_race_close_and_unload,
    ),
];

const IMAGE_BASE_LOADED: u64 = 0x7ff6_1000_0000;

fn config() -> ConfigureRequest {
    ConfigureRequest {
        max_latency_ms: 2,
        // The default kinds and process access, which is off by default.
        event_mask: ringside_wire::kind::DEFAULT_EVENTS_MASK
            | ringside_wire::EventKind::ProcessAccess.mask_bit(),
        ..ConfigureRequest::default()
    }
}

fn loads(m: &mut Machine, cpu: u32, count: u64) -> Vec<GuestCall> {
    (0..count)
        .flat_map(|i| {
            let name = format!(r"\Device\HarddiskVolume3\Windows\System32\cpu{cpu}_{i}.dll");
            m.image_load_calls(900 + cpu, &name, IMAGE_BASE_LOADED + (i << 20), 0x1000, 0)
        })
        .collect()
}

/// Registry value sets by a process on `cpu`: each the registry
/// callback's pre- and post-notification.
fn registry_sets(m: &mut Machine, cpu: u32, count: u64) -> Vec<GuestCall> {
    (0..count)
        .flat_map(|i| {
            m.registry_set_value_calls(&RegistrySet {
                pid: 900 + cpu,
                key: format!(r"\REGISTRY\MACHINE\SOFTWARE\Ringside\cpu{cpu}"),
                value: format!("v{i}"),
                value_type: 4,
                data: (i as u32).to_le_bytes().to_vec(),
                status: 0,
            })
        })
        .collect()
}

/// Registry key renames and deletes by a process on `cpu`: the name taken
/// at each pre-notification travels in `CallContext` to its
/// post-notification while other CPUs read, configure and load images.
fn registry_key_ops(m: &mut Machine, cpu: u32, count: u64) -> Vec<GuestCall> {
    (0..count)
        .flat_map(|i| {
            let key = format!(r"\REGISTRY\MACHINE\SOFTWARE\Ringside\cpu{cpu}\k{i}");
            let mut calls = m.registry_key_op_calls(&RegistryKeyOp {
                pid: 900 + cpu,
                key: key.clone(),
                op: KeyOp::Rename(format!("r{i}")),
                status: 0,
            });
            calls.extend(m.registry_key_op_calls(&RegistryKeyOp {
                pid: 900 + cpu,
                key,
                op: KeyOp::Delete,
                status: 0,
            }));
            calls
        })
        .collect()
}

/// Process handles opened by a process on `cpu` (each the object
/// callbacks' pre- and post-operation calls), every other one failing.
fn handle_ops(m: &mut Machine, cpu: u32, count: u64) -> Vec<GuestCall> {
    (0..count)
        .flat_map(|i| {
            m.handle_operation_calls(&HandleOp {
                status: if i % 2 == 1 {
                    0xC000_0022_u32 as i32
                } else {
                    0
                },
                ..HandleOp::open_process(900 + cpu, 860, 0x1410, vec![0x7ffa_0000_1000 + i; 3])
            })
        })
        .collect()
}

/// Threads a process on `cpu` creates in another process (remote threads,
/// each the thread-creation routine's call in the creating thread, which
/// queries the start address).
fn remote_threads(m: &mut Machine, cpu: u32, count: u64) -> Vec<GuestCall> {
    (0..count)
        .flat_map(|i| {
            m.create_thread_calls(&ThreadCreate {
                source_pid: 900 + cpu,
                source_tid: 904 + cpu,
                target_pid: 636,
                new_tid: 10_000 + cpu * 100 + i as u32,
                start_address: 0x7ffb_9e0b_0000 + (i << 4),
                irql: PASSIVE_LEVEL,
            })
        })
        .collect()
}

/// `first` then `second`, as one CPU's plan.
fn then(mut first: Vec<GuestCall>, second: Vec<GuestCall>) -> Vec<GuestCall> {
    first.extend(second);
    first
}

fn found(m: &Machine, report: &Report, mut extra: Vec<String>) -> Found {
    let mut findings: Vec<String> = m.findings().iter().map(|f| f.to_string()).collect();
    findings.append(&mut extra);
    Found {
        findings,
        steps: report.steps,
        switches: report.switches,
        dpcs: report.dpcs_delivered,
    }
}

/// A READ pends (the latency timer runs); CPU 0 sends CONFIGURE (which
/// re-arms a running timer) while CPU 1 loads an image and the timer's DPC
/// completes the READ and stops the timer. Then the driver unloads: no
/// timer may stay armed into unloaded code (bugcheck 0xC7).
pub fn configure_races_the_timer_dpc(sys: &[u8], seed: u64) -> Result<Found, String> {
    let (mut m, h) = connected_on(sys, &config(), None, 2)?;
    let read = match m.ioctl(h, IOCTL_READ, &[], READ_MIN_BUFFER)? {
        Sent::Pending(irp) => irp,
        Sent::Done(c) => return Err(format!("READ on an empty ring completed: {c:?}")),
    };
    // A record waits in the ring: the next timer tick completes the READ.
    for call in loads(&mut m, 0, 1) {
        m.call_at(call.irql, call.function, &call.args)?;
    }
    let mut cpu0 = Vec::new();
    let mut irps = Vec::new();
    for _ in 0..3 {
        let (configure, irp) = m.ioctl_call(h, IOCTL_CONFIGURE, config().as_bytes(), 0)?;
        cpu0.push(configure);
        irps.push(irp);
    }
    let cpu1 = loads(&mut m, 1, 2);
    let report = m.run_smp(vec![cpu0, cpu1], Schedule::new(seed))?;
    let mut extra = Vec::new();
    for (i, irp) in irps.into_iter().enumerate() {
        match m.dispatched(irp, returned(&report, 0, i)?)? {
            Sent::Done(c) if c.status == 0 => {}
            other => extra.push(format!("CONFIGURE: {other:?}")),
        }
    }
    // The READ completes (with the record) or is still pending; either way
    // the consumer closes and the driver unloads.
    let _ = m.take_completion(read);
    m.close_device(h)?;
    m.unload()?;
    Ok(found(&m, &report, extra))
}

/// CPUs 1..3 load images (CPU 3 sets registry values, CPU 2 opens
/// processes and creates and connects named pipes, CPU 1 creates remote
/// threads) while CPU 0 READs, CONFIGUREs and asks for
/// STATS; timers and DPCs fire anywhere. Afterwards every record produced
/// was delivered or counted as dropped: `produced == delivered + dropped`,
/// per kind, from the driver's STATS and from the records the READs got.
pub fn callbacks_race_reads_and_configure(sys: &[u8], seed: u64) -> Result<Found, String> {
    let (mut m, h) = connected_on(sys, &config(), Some(64 * 1024), 4)?;
    let mut cpu0 = Vec::new();
    let mut irps = Vec::new();
    let configure = config();
    for code in [
        IOCTL_READ,
        IOCTL_CONFIGURE,
        IOCTL_READ,
        IOCTL_STATS,
        IOCTL_READ,
    ] {
        let (input, output): (&[u8], u32) = match code {
            IOCTL_CONFIGURE => (configure.as_bytes(), 0),
            IOCTL_STATS => (&[], size_of::<StatsResponse>() as u32),
            _ => (&[], READ_MIN_BUFFER),
        };
        let (call, irp) = m.ioctl_call(h, code, input, output)?;
        cpu0.push(call);
        irps.push(irp);
    }
    let plan = vec![
        cpu0,
        {
            let loads = loads(&mut m, 1, 4);
            then(loads, remote_threads(&mut m, 1, 2))
        },
        {
            let loads = loads(&mut m, 2, 3);
            let opens = handle_ops(&mut m, 2, 4);
            then(then(loads, opens), m.pipe_plan(2, 3))
        },
        {
            let loads = loads(&mut m, 3, 3);
            let sets = registry_sets(&mut m, 3, 3);
            then(then(loads, sets), registry_key_ops(&mut m, 3, 2))
        },
    ];
    let report = m.run_smp(plan, Schedule::new(seed))?;
    let mut extra = Vec::new();
    let mut batches = Vec::new();
    let mut pending = Vec::new();
    for (i, irp) in irps.into_iter().enumerate() {
        let is_read = i % 2 == 0;
        match m.dispatched(irp, returned(&report, 0, i)?)? {
            Sent::Done(c) if c.status == 0 => {
                if is_read {
                    batches.push(c.output[..c.information as usize].to_vec());
                }
            }
            Sent::Done(c) => extra.push(format!("request {i} failed: {:#x}", c.status)),
            Sent::Pending(irp) => pending.push(irp),
        }
    }
    // A READ still pending completes within the latency bound once records
    // are committed; with none left to deliver it stays pending, and the
    // consumer takes it back (CancelIoEx).
    for irp in pending {
        for _ in 0..20 {
            if m.kernel()
                .io
                .irps
                .get(&irp)
                .is_some_and(|r| r.completed.is_some())
            {
                break;
            }
            m.advance_time_100ns(10_000)?;
        }
        if m.kernel()
            .io
            .irps
            .get(&irp)
            .is_some_and(|r| r.completed.is_none())
        {
            m.cancel(irp);
            let waiting = m.drain(h)?;
            if !waiting.is_empty() {
                extra.push(format!(
                    "a READ stayed pending 20 ms while {} bytes of records were ready",
                    waiting.iter().map(Vec::len).sum::<usize>()
                ));
            }
            batches.extend(waiting);
        }
        match m.take_completion(irp) {
            Some(c) if c.status == 0 => batches.push(c.output[..c.information as usize].to_vec()),
            Some(c) if c.status == ringside_wire::ioctl::status::CANCELLED => {}
            Some(c) => extra.push(format!("pending READ completed with {:#x}", c.status)),
            None => extra.push("a cancelled READ was never completed".into()),
        }
    }
    batches.extend(m.drain(h)?);
    extra.extend(accounting(&mut m, h, &batches)?);
    m.close_device(h)?;
    m.unload()?;
    Ok(found(&m, &report, extra))
}

/// CPUs 1 and 2 load images (CPU 2 sets registry values and creates and
/// connects named pipes, CPU 1 opens processes and creates remote threads)
/// while CPU 0 closes the device (CLEANUP,
/// CLOSE) with a READ pending and unloads the driver: unregistration waits
/// for the callbacks in flight, no callback or DPC runs after the unload,
/// nothing leaks.
pub fn callbacks_race_close_and_unload(sys: &[u8], seed: u64) -> Result<Found, String> {
    let (mut m, h) = connected_on(sys, &config(), None, 3)?;
    let read = match m.ioctl(h, IOCTL_READ, &[], READ_MIN_BUFFER)? {
        Sent::Pending(irp) => irp,
        Sent::Done(c) => return Err(format!("READ on an empty ring completed: {c:?}")),
    };
    let (cleanup, cleanup_irp) = m.handle_call(h, IRP_MJ_CLEANUP)?;
    let (close, close_irp) = m.handle_call(h, IRP_MJ_CLOSE)?;
    let unload = m
        .unload_call(0)
        .ok_or("no FilterUnloadCallback registered")?;
    let plan = vec![
        vec![cleanup, close, unload],
        {
            let loads = loads(&mut m, 1, 2);
            let opens = handle_ops(&mut m, 1, 2);
            then(then(loads, opens), remote_threads(&mut m, 1, 2))
        },
        {
            let loads = loads(&mut m, 2, 2);
            let sets = registry_sets(&mut m, 2, 2);
            then(then(loads, sets), m.pipe_plan(2, 2))
        },
    ];
    let report = m.run_smp(plan, Schedule::new(seed))?;
    let mut extra = Vec::new();
    for (i, irp) in [cleanup_irp, close_irp].into_iter().enumerate() {
        match m.dispatched(irp, returned(&report, 0, i)?)? {
            Sent::Done(c) if c.status == 0 => {}
            other => extra.push(format!("{}: {other:?}", ["CLEANUP", "CLOSE"][i])),
        }
    }
    match m.take_completion(read) {
        Some(c) if c.status == 0 || c.status == ringside_wire::ioctl::status::CANCELLED => {}
        Some(c) => extra.push(format!("the pending READ completed with {:#x}", c.status)),
        None => extra.push("the pending READ was never completed".into()),
    }
    m.unloaded(returned(&report, 0, 2)?)?;
    // Time goes on after the unload: a timer left armed would fire now.
    m.advance_time_100ns(100 * 10_000)?;
    Ok(found(&m, &report, extra))
}

/// The value call `index` on `cpu` returned.
fn returned(report: &Report, cpu: usize, index: usize) -> Result<u64, String> {
    match report.outcomes.get(cpu).and_then(|o| o.get(index)) {
        Some((_, Outcome::Returned(v))) => Ok(*v),
        Some((label, Outcome::NotCalled)) => Err(format!("{label} was not called")),
        None => Err(format!("CPU {cpu} made no call {index}")),
    }
}

/// `produced == delivered + dropped` per kind, from STATS, and the same
/// from what the consumer saw: records per kind and Lost records' counts.
fn accounting(m: &mut Machine, h: Handle, batches: &[Vec<u8>]) -> Result<Vec<String>, String> {
    let stats = m.stats(h)?.stats;
    let mut seen = [0u64; EVENT_KIND_COUNT];
    let mut lost = [0u64; EVENT_KIND_COUNT];
    let mut problems = Vec::new();
    for batch in batches {
        for record in Records::new(batch) {
            let record = record.map_err(|e| format!("a READ batch does not decode: {e:?}"))?;
            match record {
                Record::Lost(l) => {
                    // Cumulative counts: the latest Lost record has them all.
                    for (k, n) in l.body.dropped.iter().enumerate() {
                        lost[k] = lost[k].max(*n);
                    }
                }
                other => {
                    if let Ok(RecordKind::Event(kind)) = RecordKind::try_from(other.header().kind) {
                        seen[kind.index()] += 1;
                    }
                }
            }
        }
    }
    for kind in EventKind::ALL {
        let k = kind.index();
        let (produced, delivered, dropped) =
            (stats.produced[k], stats.delivered[k], stats.dropped[k]);
        if produced != delivered + dropped {
            problems.push(format!(
                "{kind:?}: produced {produced} != delivered {delivered} + dropped {dropped}"
            ));
        }
        if seen[k] != delivered {
            problems.push(format!(
                "{kind:?}: the consumer got {} records, STATS says {delivered} delivered",
                seen[k]
            ));
        }
        if lost[k] > dropped {
            problems.push(format!(
                "{kind:?}: Lost records report {} drops, STATS {dropped}",
                lost[k]
            ));
        }
    }
    Ok(problems)
}
