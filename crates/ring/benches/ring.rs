//! `cargo xtask bench ring`: the ring against rtrb (SPSC), crossbeam's
//! `ArrayQueue` (MPMC) and plain memcpy, one table from one run, then
//! criterion's detailed runs of the ring alone.
//!
//! The ring's producers each claim a lane of their own (`Ring::claim`, the
//! driver's per-CPU lanes: no lock, no read-modify-write); 2P splits the
//! same 1 MiB into two lanes.
//!
//! Workload: records of a 32-byte wire header plus a payload of 16 B .. 4 KiB,
//! copied from a source buffer by the producer and into a 64 KiB output
//! buffer by the consumer (as the driver's READ path does). Every queue gets
//! the same 1 MiB of memory. rtrb and ArrayQueue carry `[u8; N]` arrays (one
//! record per item, copied in and out by value); for two producers rtrb,
//! which is single-producer, gets one queue per producer and the consumer
//! polls both. memcpy is one thread copying the same bytes once into a 1 MiB
//! buffer: the physical limit of the producer's side alone.
//!
//! Every wait (queue full, queue empty) in every workload goes through the
//! same [`Backoff`]: spin a little, then yield the CPU. On a machine with
//! fewer free cores than threads (2P+1C on 2 cores, or a shared build box)
//! pure spinning measures the scheduler's quantum, not the queue. A ring
//! producer that finds the ring full waits until half of it is free before
//! it retries, so the run measures throughput rather than `Lost` records.
//!
//! Where the threads run is set, not left to the scheduler (Linux): in (a)
//! the consumer runs on CPU 0 and the producer on CPU 1, so the two never
//! time-share one CPU (left alone, the scheduler sometimes put both on one
//! CPU, and the cell then measured a one-thread run at two-thread speed
//! for whichever queue it happened to); in (c) the one thread runs on CPU
//! 0; in (b) the three threads may run anywhere (on two CPUs some always
//! share).
//!
//! The four workloads of a cell take turns: one round runs each once, and
//! each keeps its best round. On a shared machine a slow spell then slows
//! every queue's round, rather than all the runs of one queue.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use ringside_ring::{Producer, Ring};
use ringside_wire::EventKind;

const RING_BYTES: usize = 1 << 20;
const OUT_BYTES: usize = 64 * 1024;
const HEADER: usize = 32;
const PAYLOADS: [usize; 5] = [16, 64, 256, 1024, 4096];

fn ring_memory() -> Vec<u64> {
    vec![0; RING_BYTES / 8]
}

fn as_bytes(memory: &mut [u64]) -> &mut [u8] {
    zerocopy::IntoBytes::as_mut_bytes(memory)
}

/// Spin, then yield: the same waiting policy for every queue.
struct Backoff(u32);

impl Backoff {
    fn new() -> Self {
        Backoff(0)
    }

    fn wait(&mut self) {
        if self.0 < 64 {
            self.0 += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

// ---------------------------------------------------------------- placement

/// Where a thread may run.
#[derive(Clone, Copy)]
enum Cpu {
    Any,
    Only(usize),
}

/// The consumer's CPU in a workload with `producers` producer threads (0:
/// the one-thread workloads).
fn consumer_cpu(producers: u64) -> Cpu {
    if producers <= 1 {
        Cpu::Only(0)
    } else {
        Cpu::Any
    }
}

/// A producer thread's CPU: another than the consumer's, if it alone is.
fn producer_cpu(producers: u64) -> Cpu {
    if producers == 1 {
        Cpu::Only(1)
    } else {
        Cpu::Any
    }
}

/// Restricts the calling thread to `cpu`. Best effort: on a machine
/// without that CPU, or off Linux, the thread runs where it is scheduled.
fn run_on(cpu: Cpu) {
    #[cfg(target_os = "linux")]
    {
        // A CPU mask of 1024 bits, as the kernel reads it (one bit a CPU,
        // low bit first in each word).
        let mut mask = [0u64; 16];
        match cpu {
            Cpu::Any => mask = [u64::MAX; 16],
            Cpu::Only(c) => {
                if let Some(word) = mask.get_mut(c / 64) {
                    *word = 1 << (c % 64);
                }
            }
        }
        // SAFETY: the kernel reads `size_of_val(&mask)` bytes at the
        // pointer, a live local, and applies them to the calling thread
        // (pid 0); bits of CPUs that do not exist are ignored.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&mask), mask.as_ptr().cast()) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

// ---------------------------------------------------------------- ringside

/// One producer on its own claimed lane (the driver's per-CPU lanes).
fn ring_produce(producer: &mut Producer<'_>, lane_bytes: usize, src: &[u8], count: u64) {
    for _ in 0..count {
        loop {
            if let Ok(mut slot) = producer.reserve(EventKind::FileWrite, src.len()) {
                slot.buffer().copy_from_slice(src);
                slot.commit();
                break;
            }
            // Full: wait for room rather than hammering `reserve`, each
            // failure of which is a counted drop.
            let mut backoff = Backoff::new();
            while producer.pending_bytes() > lane_bytes / 2 {
                backoff.wait();
            }
        }
    }
}

/// Drains until `events` events (`Lost` records not included) were
/// delivered since the ring's creation, `bytes` of them since this call.
/// The counters are many loads on the producers' lines, so they are read
/// only when idle and once the bytes say the work could be done.
fn ring_consume(ring: &Ring<'_>, out: &mut [u8], events: u64, bytes: u64) {
    let k = EventKind::FileWrite.index();
    let mut backoff = Backoff::new();
    let mut got = 0u64;
    loop {
        let n = ring.drain_into(out);
        if n != 0 {
            black_box(&out[..n]);
            got += n as u64;
            backoff = Backoff::new();
            continue;
        }
        // `Lost` records count as bytes too, so the bytes alone may say
        // "done" early; the delivered count decides.
        if got >= bytes && ring.stats().delivered[k] >= events {
            return;
        }
        backoff.wait();
    }
}

fn ring_threads(record: usize, count: u64, producers: u64) -> Duration {
    let mut memory = ring_memory();
    let ring = Ring::with_lanes(as_bytes(&mut memory), producers as usize).unwrap();
    let lane_bytes = ring.capacity() / ring.lanes();
    let src = vec![7u8; record];
    let mut out = vec![0u8; OUT_BYTES];
    run_on(consumer_cpu(producers));
    let start = Instant::now();
    std::thread::scope(|s| {
        for lane in 0..producers as usize {
            let (ring, src) = (&ring, &src);
            s.spawn(move || {
                run_on(producer_cpu(producers));
                let mut producer = ring.claim(lane).unwrap();
                ring_produce(&mut producer, lane_bytes, src, count / producers)
            });
        }
        let total = count / producers * producers;
        ring_consume(&ring, &mut out, total, total * record as u64);
    });
    start.elapsed()
}

fn ring_one_thread(record: usize, count: u64) -> Duration {
    let mut memory = ring_memory();
    let ring = Ring::new(as_bytes(&mut memory)).unwrap();
    let mut producer = ring.claim(0).unwrap();
    let src = vec![7u8; record];
    let mut out = vec![0u8; OUT_BYTES];
    let batch = (OUT_BYTES / record).max(1) as u64;
    run_on(consumer_cpu(0));
    let start = Instant::now();
    let mut left = count;
    while left > 0 {
        let n = batch.min(left);
        ring_produce(&mut producer, RING_BYTES, &src, n);
        ring_consume(&ring, &mut out, count - left + n, n * record as u64);
        left -= n;
    }
    start.elapsed()
}

// ---------------------------------------------------------------- rtrb

fn rtrb_pop_batch<const N: usize>(consumer: &mut rtrb::Consumer<[u8; N]>, out: &mut [u8]) -> u64 {
    let slots = consumer.slots().min(out.len() / N);
    let Ok(chunk) = consumer.read_chunk(slots) else {
        return 0;
    };
    let (a, b) = chunk.as_slices();
    let mut at = 0;
    for item in a.iter().chain(b) {
        out[at..at + N].copy_from_slice(item);
        at += N;
    }
    black_box(&out[..at]);
    chunk.commit_all();
    slots as u64
}

fn rtrb_push<const N: usize>(producer: &mut rtrb::Producer<[u8; N]>, src: &[u8; N], count: u64) {
    for _ in 0..count {
        let mut backoff = Backoff::new();
        while producer.push(*src).is_err() {
            backoff.wait();
        }
    }
}

fn rtrb_threads<const N: usize>(count: u64, producers: u64) -> Duration {
    let src = [7u8; N];
    let mut out = vec![0u8; OUT_BYTES];
    let per = count / producers;
    let queues: Vec<_> = (0..producers)
        .map(|_| rtrb::RingBuffer::<[u8; N]>::new(RING_BYTES / N / producers as usize))
        .collect();
    let (mut txs, mut rxs): (Vec<_>, Vec<_>) = queues.into_iter().unzip();
    run_on(consumer_cpu(producers));
    let start = Instant::now();
    std::thread::scope(|s| {
        for tx in &mut txs {
            s.spawn(|| {
                run_on(producer_cpu(producers));
                rtrb_push(tx, &src, per)
            });
        }
        let mut got = 0;
        let mut backoff = Backoff::new();
        while got < per * producers {
            let mut n = 0;
            for rx in &mut rxs {
                n += rtrb_pop_batch(rx, &mut out);
            }
            if n == 0 {
                backoff.wait();
            } else {
                backoff = Backoff::new();
            }
            got += n;
        }
    });
    start.elapsed()
}

fn rtrb_one_thread<const N: usize>(count: u64) -> Duration {
    let src = [7u8; N];
    let mut out = vec![0u8; OUT_BYTES];
    let (mut tx, mut rx) = rtrb::RingBuffer::<[u8; N]>::new(RING_BYTES / N);
    let batch = (OUT_BYTES / N).max(1) as u64;
    run_on(consumer_cpu(0));
    let start = Instant::now();
    let mut left = count;
    while left > 0 {
        let n = batch.min(left);
        rtrb_push(&mut tx, &src, n);
        let mut got = 0;
        while got < n {
            got += rtrb_pop_batch(&mut rx, &mut out);
        }
        left -= n;
    }
    start.elapsed()
}

// ---------------------------------------------------------------- ArrayQueue

fn aq_push<const N: usize>(queue: &ArrayQueue<[u8; N]>, src: &[u8; N], count: u64) {
    for _ in 0..count {
        let mut backoff = Backoff::new();
        while queue.push(*src).is_err() {
            backoff.wait();
        }
    }
}

fn aq_pop_batch<const N: usize>(queue: &ArrayQueue<[u8; N]>, out: &mut [u8]) -> u64 {
    let mut at = 0;
    while at + N <= out.len() {
        let Some(item) = queue.pop() else { break };
        out[at..at + N].copy_from_slice(&item);
        at += N;
    }
    black_box(&out[..at]);
    (at / N) as u64
}

fn aq_threads<const N: usize>(count: u64, producers: u64) -> Duration {
    let src = [7u8; N];
    let mut out = vec![0u8; OUT_BYTES];
    let queue = ArrayQueue::<[u8; N]>::new(RING_BYTES / N);
    let per = count / producers;
    run_on(consumer_cpu(producers));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..producers {
            s.spawn(|| {
                run_on(producer_cpu(producers));
                aq_push(&queue, &src, per)
            });
        }
        let mut got = 0;
        let mut backoff = Backoff::new();
        while got < per * producers {
            let n = aq_pop_batch(&queue, &mut out);
            if n == 0 {
                backoff.wait();
            } else {
                backoff = Backoff::new();
            }
            got += n;
        }
    });
    start.elapsed()
}

fn aq_one_thread<const N: usize>(count: u64) -> Duration {
    let src = [7u8; N];
    let mut out = vec![0u8; OUT_BYTES];
    let queue = ArrayQueue::<[u8; N]>::new(RING_BYTES / N);
    let batch = (OUT_BYTES / N).max(1) as u64;
    run_on(consumer_cpu(0));
    let start = Instant::now();
    let mut left = count;
    while left > 0 {
        let n = batch.min(left);
        aq_push(&queue, &src, n);
        let mut got = 0;
        while got < n {
            got += aq_pop_batch(&queue, &mut out);
        }
        left -= n;
    }
    start.elapsed()
}

// ---------------------------------------------------------------- memcpy

fn memcpy(record: usize, count: u64) -> Duration {
    let src = vec![7u8; record];
    let mut dst = vec![0u8; RING_BYTES];
    run_on(consumer_cpu(0));
    let start = Instant::now();
    let mut at = 0;
    for _ in 0..count {
        if at + record > dst.len() {
            at = 0;
        }
        dst[at..at + record].copy_from_slice(black_box(&src));
        at += record;
    }
    black_box(&dst);
    start.elapsed()
}

// ---------------------------------------------------------------- table

/// Ring, rtrb, ArrayQueue and memcpy times of one cell: each one's best of
/// `runs` rounds, after one untimed warm-up round (the machine is shared;
/// the minimum is the least disturbed).
/// `producers`: producer threads beside the consumer; 0 for the
/// one-thread workloads.
fn cell<const N: usize>(producers: u64, count: u64, runs: usize) -> [Duration; 4] {
    let round = || {
        if producers == 0 {
            [
                ring_one_thread(N, count),
                rtrb_one_thread::<N>(count),
                aq_one_thread::<N>(count),
                memcpy(N, count),
            ]
        } else {
            [
                ring_threads(N, count, producers),
                rtrb_threads::<N>(count, producers),
                aq_threads::<N>(count, producers),
                memcpy(N, count),
            ]
        }
    };
    round();
    let mut best = round();
    for _ in 1..runs {
        for (best, time) in best.iter_mut().zip(round()) {
            *best = (*best).min(time);
        }
    }
    best
}

fn print_table(budget_bytes: u64, runs: usize) {
    println!(
        "\nringside-ring vs rtrb (SPSC; 2P = one rtrb per producer), crossbeam ArrayQueue<[u8; N]>, memcpy"
    );
    println!(
        "record = 32 B header + payload; {} MiB per cell, warm-up + best of {runs} rounds; GB/s = record bytes / s",
        budget_bytes >> 20
    );
    println!("threads: (a) consumer on CPU 0, producer on CPU 1; (b) unpinned; (c) CPU 0");
    println!(
        "{:<10} {:>7} {:>10} {:>8} | {:>8} {:>6} | {:>8} {:>6} | {:>8} {:>6}",
        "scenario",
        "payload",
        "ring Mr/s",
        "GB/s",
        "rtrb",
        "ring/x",
        "ArrayQ",
        "ring/x",
        "memcpy",
        "ring/x"
    );
    for (producers, name) in [(1, "(a) 1P+1C"), (2, "(b) 2P+1C"), (0, "(c) 1 thr")] {
        for payload in PAYLOADS {
            let record = payload + HEADER;
            let count = (budget_bytes / record as u64).max(20_000);
            let times = match record {
                48 => cell::<48>(producers, count, runs),
                96 => cell::<96>(producers, count, runs),
                288 => cell::<288>(producers, count, runs),
                1056 => cell::<1056>(producers, count, runs),
                _ => cell::<4128>(producers, count, runs),
            };
            let gbs = |d: Duration| (count * record as u64) as f64 / d.as_secs_f64() / 1e9;
            let [ring, rtrb, aq, copy] = times.map(gbs);
            let mrec = count as f64 / times[0].as_secs_f64() / 1e6;
            println!(
                "{name:<10} {payload:>6}B {mrec:>10.2} {ring:>8.2} | {rtrb:>8.2} {:>6.2} | {aq:>8.2} {:>6.2} | {copy:>8.2} {:>6.2}",
                ring / rtrb,
                ring / aq,
                ring / copy
            );
        }
    }
    println!();
}

// ---------------------------------------------------------------- criterion

fn criterion_runs(c: &mut Criterion) {
    for (name, producers) in [
        ("ring_1p1c", 1u64),
        ("ring_2p1c", 2),
        ("ring_one_thread", 0),
    ] {
        let mut group = c.benchmark_group(name);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(700));
        for payload in PAYLOADS {
            let record = payload + HEADER;
            group.throughput(Throughput::Bytes(record as u64));
            group.bench_function(format!("{payload}B"), |b| {
                b.iter_custom(|iters| {
                    let iters = iters.max(producers.max(1));
                    if producers == 0 {
                        ring_one_thread(record, iters)
                    } else {
                        ring_threads(record, iters, producers)
                    }
                })
            });
        }
        group.finish();
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = std::env::var("RING_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(if quick { 8 } else { 32 })
        << 20;
    // Timed runs per cell after the warm-up (the best is reported).
    let runs = std::env::var("RING_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(3)
        .max(1);
    print_table(budget, runs);
    if std::env::var_os("RING_BENCH_TABLE_ONLY").is_none() {
        let mut c = Criterion::default().configure_from_args();
        criterion_runs(&mut c);
        c.final_summary();
    }
}
