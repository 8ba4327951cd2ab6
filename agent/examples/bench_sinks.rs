//! Delivery throughput, side by side in one run: the same generated replay
//! through the pipeline into the file sink, into RELP/TLS and into
//! syslog/TLS to a real rsyslog on 127.0.0.1 (started here, throwaway
//! certificates), each until the last message was taken (RELP: acknowledged).
//! Wall time, events/s and the agent's CPU time per event (this process:
//! pipeline and sender thread, TLS included). Run by `cargo xtask bench
//! sinks` (which installs rsyslog).
//!
//! usage: bench_sinks [RECORDS]   (default 2_600_000 records, about 1M events)

#[path = "../tests/support/rsyslog.rs"]
mod rsyslog;

use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use ringside_agent::enrich::EnrichConfig;
use ringside_agent::pipeline::{Config, Depth, Pipeline};
use ringside_agent::sink::network::{NetworkOptions, NetworkSink, Target};
use ringside_agent::sink::tls::TlsOptions;
use ringside_agent::sink::{RotatingFile, Sink};
use ringside_agent::source::replay::ReplayReader;

/// User + system CPU time of this process, in seconds (Linux /proc).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

struct Row {
    name: &'static str,
    events: u64,
    seconds: f64,
    cpu: f64,
    note: String,
}

fn run(name: &'static str, replay: &Path, sink: &mut dyn Sink) -> Row {
    let mut reader = ReplayReader::open(replay).expect("open replay");
    let mut pipeline = Pipeline::new(Config {
        depth: Depth::Emit,
        enrich: EnrichConfig::none(),
        ..Config::default()
    });
    let cpu = cpu_seconds();
    let start = Instant::now();
    pipeline
        .replay(&mut reader, sink, |_, _| {})
        .expect("replay");
    let events = ringside_agent::pipeline::saturating_sum(&pipeline.counters.written);
    Row {
        name,
        events,
        seconds: start.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu,
        note: String::new(),
    }
}

fn network(
    name: &'static str,
    replay: &Path,
    target: &str,
    spool: &Path,
    certs: &rsyslog::Certs,
) -> Row {
    let target = Target::parse(target).expect("url").expect("target");
    let options = NetworkOptions {
        tls: TlsOptions {
            ca: Some(certs.ca.clone()),
            cert: Some(certs.client_cert.clone()),
            key: Some(certs.client_key.clone()),
            server_name: None,
        },
        drain_timeout: std::time::Duration::from_secs(600),
        // The replay outruns any network: what memory cannot hold waits
        // in the spool, so every event is delivered and counted.
        spool: Some((spool.to_owned(), 8 << 30)),
        ..NetworkOptions::default()
    };
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut sink = NetworkSink::start(target, options).expect("start sink");
    let mut row = run(name, replay, &mut sink);
    // Until the sender delivered everything: close waits for it.
    sink.close();
    let figures = sink.figures();
    row.seconds = start.elapsed().as_secs_f64();
    row.cpu = cpu_seconds() - cpu;
    let figures = figures.first().cloned().unwrap_or_default();
    // Delivered: acknowledged (RELP) or written to the connection (syslog).
    row.events = figures.acknowledged.max(figures.sent);
    row.note = figures.text();
    row
}

fn main() {
    rsyslog::require_rsyslog();
    let records: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_600_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = rsyslog::certs(dir.path());
    let collector = rsyslog::Rsyslog::start(dir.path(), &certs);
    let replay = dir.path().join("bench.replay");
    ringside_agent::synth::realistic(
        BufWriter::new(std::fs::File::create(&replay).expect("create")),
        records,
        ringside_agent::time::filetime_from_unix(1_795_256_130),
    )
    .expect("write replay");

    let mut file = RotatingFile::open(&dir.path().join("events.jsonl"), u64::MAX, 0).expect("file");
    let file_row = run("file", &replay, &mut file);
    file.flush().expect("flush");
    let relp = network(
        "relp+tls (acknowledged)",
        &replay,
        &format!("relp+tls://127.0.0.1:{}", collector.relp_port),
        &dir.path().join("spool"),
        &certs,
    );
    let syslog = network(
        "syslog+tls",
        &replay,
        &format!("syslog+tls://127.0.0.1:{}", collector.syslog_port),
        &dir.path().join("spool"),
        &certs,
    );
    collector.settle();
    let received = collector.received();
    println!(
        "sinks bench: {records} records, {} events each; rsyslog on 127.0.0.1 wrote {} lines",
        file_row.events,
        received.seqs.values().map(|&n| u64::from(n)).sum::<u64>()
    );
    println!(
        "{:<26} {:>10} {:>9} {:>12} {:>9} {:>12}",
        "sink", "delivered", "seconds", "events/s", "CPU s", "CPU µs/event"
    );
    for row in [&file_row, &relp, &syslog] {
        println!(
            "{:<26} {:>10} {:>9.2} {:>12.0} {:>9.2} {:>12.2}",
            row.name,
            row.events,
            row.seconds,
            row.events as f64 / row.seconds,
            row.cpu,
            row.cpu * 1e6 / row.events.max(1) as f64
        );
    }
    for row in [&relp, &syslog] {
        println!("{}", row.note);
    }
    // Both network sinks delivered every event: rsyslog has each Seq twice.
    let short: Vec<u64> = received
        .seqs
        .iter()
        .filter(|&(_, &n)| n < 2)
        .map(|(&seq, _)| seq)
        .take(10)
        .collect();
    let lines: u64 = received.seqs.values().map(|&n| u64::from(n)).sum();
    if lines != 2 * file_row.events || !short.is_empty() {
        eprintln!(
            "sinks bench: rsyslog wrote {lines} lines, expected {} (first Seqs not received twice: {short:?})",
            2 * file_row.events
        );
        // exit skips destructors: stop rsyslog and remove the files first.
        drop(collector);
        drop(dir);
        std::process::exit(1);
    }
}
