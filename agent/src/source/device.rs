//! The live source: the driver's control device `\\.\Ringside` (Windows).
//!
//! HELLO, then CONFIGURE, then several overlapped READs in flight. They
//! complete in any order; the reorder stage ([`crate::source::reorder`])
//! hands their batches on in sequence order, to `--record` and then the
//! pipeline. The driver's counters are read at connect (their `next_seq`
//! is where the first batch starts) and a Stats frame is taken every
//! [`STATS_INTERVAL`]. When the session ends
//! — stop, or the device failed (driver unloaded or restarted) — the READs
//! are cancelled and those that had completed with data are delivered with
//! everything the reorder stage held; then the source reconnects with
//! backoff. The pipeline — its process table and expected sequence number —
//! carries over, so a loss across the reconnect is reported.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use ringside_wire::ioctl::{
    ConfigureRequest, DOS_DEVICE_PATH, HelloRequest, HelloResponse, IOCTL_CONFIGURE, IOCTL_HELLO,
    IOCTL_READ, IOCTL_STATS, READ_MIN_BUFFER, StatsResponse,
};
use ringside_wire::replay::FrameKind;
use zerocopy::{FromBytes, IntoBytes};

use crate::pipeline::Pipeline;
use crate::sink::Sink;
use crate::source::backoff::Backoff;
use crate::source::reorder::{MAX_HELD, Reorder};
pub use crate::source::stop::StopFlag;
use crate::source::writer::ReplayWriter;
use crate::time::now_filetime;
use crate::win::{Device, ReadQueue, dos_devices};

/// READs kept in flight.
pub const READS_IN_FLIGHT: usize = 4;
/// How often driver counters are read.
pub const STATS_INTERVAL: Duration = Duration::from_secs(10);
/// Longest the sink and the recorder hold output while events flow.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How often the drive letters are read again (26 cheap QueryDosDeviceW
/// calls).
pub const VOLUME_INTERVAL: Duration = Duration::from_secs(2);

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
    let mut backoff = Backoff::default();
    let mut delivery = Delivery {
        pipeline: &mut pipeline,
        sink,
        recorder: recorder.as_mut(),
        stream_offset: 0,
    };
    while !stop.stopped() {
        let started = Instant::now();
        match session(&mut delivery, stop) {
            Ok(()) => break,
            Err(error) => {
                // Measured before the wait: the session's own run time.
                let wait = backoff.failed(started.elapsed());
                eprintln!("ringside-agent: {DOS_DEVICE_PATH}: {error}; reconnecting in {wait:?}");
                delivery.pipeline.reconnected();
                stop.sleep(wait);
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

/// Where batches go, in sequence order: the recorder, then the pipeline.
struct Delivery<'a> {
    pipeline: &'a mut Pipeline,
    sink: &'a mut dyn Sink,
    recorder: Option<&'a mut Recorder>,
    /// Bytes of batches delivered so far (the offsets problems name).
    stream_offset: u64,
}

impl Delivery<'_> {
    fn batches(&mut self, batches: Vec<Vec<u8>>) -> io::Result<()> {
        for batch in batches {
            if let Some(recorder) = self.recorder.as_deref_mut() {
                recorder.batch(now_filetime(), &batch)?;
            }
            self.pipeline.batch(&batch, self.stream_offset, self.sink)?;
            self.stream_offset += batch.len() as u64;
        }
        Ok(())
    }

    /// Reads the drive letters again (volumes come and go: a USB stick, a
    /// mounted image); a change, or `always`, is recorded as a VolumeMap
    /// frame so a replay maps paths as the live agent did.
    fn volumes(&mut self, always: bool) -> io::Result<()> {
        let current = dos_devices();
        let changed = self.pipeline.volumes.refresh(
            current
                .iter()
                .map(|(device, drive)| (device.as_str(), drive.as_str())),
        );
        if let (true, Some(recorder)) = (changed || always, self.recorder.as_deref_mut()) {
            let frame = self.pipeline.volumes.to_frame();
            recorder.frame(FrameKind::VolumeMap, now_filetime(), &frame)?;
        }
        Ok(())
    }

    /// Pushes the sink's and the recorder's buffered output out.
    fn flush(&mut self) -> io::Result<()> {
        if let Some(recorder) = self.recorder.as_deref_mut() {
            recorder.flush()?;
        }
        self.sink.flush()
    }

    /// A STATS snapshot: recorded, checked, emitted as 1004.
    fn stats(&mut self, device: &Device) -> io::Result<()> {
        let Some(stats) = query_stats(device)? else {
            return Ok(());
        };
        if let Some(recorder) = self.recorder.as_deref_mut() {
            recorder.stats(now_filetime(), &stats)?;
        }
        self.pipeline.driver_stats(&stats.stats, self.sink)
    }
}

/// The driver's counters, if the reply has the expected size.
fn query_stats(device: &Device) -> io::Result<Option<StatsResponse>> {
    let mut out = [0u8; core::mem::size_of::<StatsResponse>()];
    let got = device.ioctl(IOCTL_STATS, &[], &mut out)?;
    Ok(StatsResponse::read_from_bytes(out.get(..got).unwrap_or_default()).ok())
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

/// One connection: handshake, then READs until failure or stop. Whatever
/// way it ends, READs that completed with data are delivered.
fn session(delivery: &mut Delivery<'_>, stop: &StopFlag) -> io::Result<()> {
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
    configure(&device, delivery.pipeline)?;

    delivery.volumes(true)?;

    let mut reorder = Reorder::new(READS_IN_FLIGHT, MAX_HELD);
    // Before any READ is issued, the driver's next number is the one the
    // first batch starts with. Not checked or emitted: after a driver
    // restart the pipeline still holds the old driver's view until the
    // first record, and a 1004 now would compare the two lifetimes.
    if let Some(stats) = query_stats(&device)? {
        reorder.expect(stats.stats.next_seq);
    }
    let buffer = (response.read_min_buffer.max(READ_MIN_BUFFER)) as usize;
    let mut reads = ReadQueue::new(device, IOCTL_READ, READS_IN_FLIGHT, buffer)?;
    let result = read_loop(delivery, &mut reads, &mut reorder, stop);
    // Stop or failure: what completed is delivered, then whatever the
    // reorder stage still holds (its holes become 1002 in the pipeline).
    let mut ready = Vec::new();
    for (slot, batch) in reads.cancel() {
        ready.extend(reorder.push(slot, batch));
    }
    ready.extend(reorder.flush());
    let delivered = delivery.batches(ready);
    result.and(delivered)
}

/// READs until stop or failure.
fn read_loop(
    delivery: &mut Delivery<'_>,
    reads: &mut ReadQueue,
    reorder: &mut Reorder,
    stop: &StopFlag,
) -> io::Result<()> {
    let mut last_stats = Instant::now();
    let mut last_volumes = Instant::now();
    let mut last_flush = Instant::now();
    while !stop.stopped() {
        let idle = match reads.next(250)? {
            Some((slot, batch)) => {
                delivery.batches(reorder.push(slot, batch))?;
                false
            }
            None => {
                delivery.batches(reorder.idle())?;
                true
            }
        };
        // A reloaded Sysmon configuration or bundle may want other kinds.
        if delivery.pipeline.event_mask_changed() {
            configure(reads.device(), delivery.pipeline)?;
        }
        // Output is pushed out when the ring goes quiet and at least every
        // FLUSH_INTERVAL under load, so a reader of the output (or a
        // killed agent) is never more than that behind.
        if idle || last_flush.elapsed() >= FLUSH_INTERVAL {
            last_flush = Instant::now();
            delivery.flush()?;
        }
        if last_volumes.elapsed() >= VOLUME_INTERVAL {
            last_volumes = Instant::now();
            delivery.volumes(false)?;
        }
        if last_stats.elapsed() >= STATS_INTERVAL {
            last_stats = Instant::now();
            delivery.stats(reads.device())?;
        }
    }
    Ok(())
}
