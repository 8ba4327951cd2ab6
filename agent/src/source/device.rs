//! The live source: the driver's control device `\\.\Ringside` (Windows).
//!
//! HELLO, then CONFIGURE, then several overlapped READs in flight; each
//! completed batch goes to the pipeline (and to `--record`). A Stats frame
//! is taken every [`STATS_INTERVAL`]. When the device fails (driver
//! unloaded or restarted), the source reconnects with exponential backoff;
//! the pipeline — and its process table — carries over.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ringside_wire::ioctl::{
    ConfigureRequest, DOS_DEVICE_PATH, HelloRequest, HelloResponse, IOCTL_CONFIGURE, IOCTL_HELLO,
    IOCTL_READ, IOCTL_STATS, READ_MIN_BUFFER, StatsResponse,
};
use ringside_wire::replay::FrameKind;
use zerocopy::{FromBytes, IntoBytes};

use crate::pipeline::Pipeline;
use crate::sink::Sink;
use crate::source::writer::ReplayWriter;
use crate::time::now_filetime;
use crate::win::{Device, ReadQueue, dos_devices};

/// READs kept in flight.
pub const READS_IN_FLIGHT: usize = 4;
/// How often driver counters are read.
pub const STATS_INTERVAL: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Set to stop the source (service stop, Ctrl-C).
#[derive(Clone, Debug, Default)]
pub struct StopFlag(pub Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        // Relaxed: a plain flag polled at least every READ timeout; no other
        // memory is published through it.
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

type Recorder = ReplayWriter<io::BufWriter<std::fs::File>>;

/// Runs until `stop` is set, reconnecting after device failures. The
/// pipeline (process table, detector) lives across reconnects.
pub fn run(
    mut pipeline: Pipeline,
    sink: &mut dyn Sink,
    record: Option<&Path>,
    stop: &StopFlag,
) -> io::Result<()> {
    let mut recorder = match record {
        Some(path) => Some(ReplayWriter::new(
            io::BufWriter::new(std::fs::File::create(path)?),
            now_filetime(),
        )?),
        None => None,
    };
    let mut backoff = Duration::from_millis(100);
    while !stop.stopped() {
        let started = Instant::now();
        match session(&mut pipeline, sink, recorder.as_mut(), stop) {
            Ok(()) => break,
            Err(error) => {
                eprintln!(
                    "ringside-agent: {DOS_DEVICE_PATH}: {error}; reconnecting in {backoff:?}"
                );
                pipeline.reconnected();
                std::thread::sleep(backoff);
                // A session that ran a while resets the backoff.
                backoff = if started.elapsed() > MAX_BACKOFF {
                    Duration::from_millis(100)
                } else {
                    (backoff * 2).min(MAX_BACKOFF)
                };
            }
        }
    }
    if let Some(recorder) = recorder {
        recorder.finish()?;
    }
    sink.flush()
}

fn bad_reply(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// CONFIGURE with the event kinds the pipeline wants (its Sysmon
/// configuration may rule some out); everything else as by default.
fn configure(device: &Device, pipeline: &mut Pipeline) -> io::Result<()> {
    let request = ConfigureRequest {
        event_mask: pipeline.configure_mask(),
        ..ConfigureRequest::default()
    };
    device
        .ioctl(IOCTL_CONFIGURE, request.as_bytes(), &mut [])
        .map(drop)
}

/// One connection: handshake, then READs until failure or stop.
fn session(
    pipeline: &mut Pipeline,
    sink: &mut dyn Sink,
    mut recorder: Option<&mut Recorder>,
    stop: &StopFlag,
) -> io::Result<()> {
    let device = Device::open(DOS_DEVICE_PATH)?;
    let hello = HelloRequest {
        size: core::mem::size_of::<HelloRequest>() as u32,
        abi_version: ringside_wire::ABI_VERSION,
        agent_version: 1 << 16,
        _pad: 0,
    };
    let mut reply = [0u8; core::mem::size_of::<HelloResponse>()];
    let got = device.ioctl(IOCTL_HELLO, hello.as_bytes(), &mut reply)?;
    let response = HelloResponse::read_from_bytes(reply.get(..got).unwrap_or_default())
        .map_err(|_| bad_reply("HELLO reply has the wrong size"))?;
    if response.abi_version != ringside_wire::ABI_VERSION {
        return Err(bad_reply("driver speaks another ABI version"));
    }
    configure(&device, &mut *pipeline)?;

    for (device_name, drive) in dos_devices() {
        pipeline.volumes.insert(&device_name, &drive);
    }
    if let Some(recorder) = recorder.as_deref_mut() {
        recorder.frame(
            FrameKind::VolumeMap,
            now_filetime(),
            &pipeline.volumes.to_frame(),
        )?;
    }

    let buffer = (response.read_min_buffer.max(READ_MIN_BUFFER)) as usize;
    let mut reads = ReadQueue::new(device, IOCTL_READ, READS_IN_FLIGHT, buffer)?;
    let mut stream_offset = 0u64;
    let mut last_stats = Instant::now();
    while !stop.stopped() {
        if let Some(batch) = reads.next(250)? {
            if let Some(recorder) = recorder.as_deref_mut() {
                recorder.batch(now_filetime(), batch)?;
            }
            pipeline.batch(batch, stream_offset, sink)?;
            stream_offset += batch.len() as u64;
            if pipeline.event_mask_changed() {
                configure(reads.device(), &mut *pipeline)?;
            }
        }
        if last_stats.elapsed() >= STATS_INTERVAL {
            last_stats = Instant::now();
            let mut out = [0u8; core::mem::size_of::<StatsResponse>()];
            let got = reads.device().ioctl(IOCTL_STATS, &[], &mut out)?;
            if let Ok(stats) = StatsResponse::read_from_bytes(out.get(..got).unwrap_or_default()) {
                if let Some(recorder) = recorder.as_deref_mut() {
                    recorder.stats(now_filetime(), &stats)?;
                }
                pipeline.driver_stats(&stats.stats, sink)?;
            }
            sink.flush()?;
        }
    }
    Ok(())
}
