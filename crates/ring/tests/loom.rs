//! loom models of the ring: every interleaving (within the preemption bound)
//! of one or two producers against the consumer, on a tiny ring whose slots
//! wrap around its end.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p ringside-ring
//! --test loom --release` (what `cargo xtask test` does, in `target/loom`).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use ringside_ring::Ring;
use ringside_wire::{EventKind, HEADER_SEQ_OFFSET, Record, decode_record};
use zerocopy::IntoBytes;

/// Record length used by the models: a header and 16 bytes of payload.
const LEN: usize = 48;

fn produce(ring: &Ring<'_>, kind: EventKind, id: u8) -> bool {
    match ring.reserve(kind, LEN) {
        Ok(mut slot) => {
            let buf = slot.buffer();
            buf[..4].copy_from_slice(&(LEN as u32).to_le_bytes());
            buf[4] = id;
            buf[32..].fill(id);
            slot.commit();
            true
        }
        Err(_) => false,
    }
}

/// Splits a drained batch into (seq, id) pairs, Lost records as id 0.
fn records(batch: &[u8], into: &mut Vec<(u64, u8)>) {
    let mut at = 0;
    while at < batch.len() {
        let record = &batch[at..];
        let seq = u64::from_le_bytes(
            record[HEADER_SEQ_OFFSET..HEADER_SEQ_OFFSET + 8]
                .try_into()
                .unwrap(),
        );
        let size = u32::from_le_bytes(record[..4].try_into().unwrap()) as usize;
        let id = match decode_record(record) {
            Ok(Record::Lost(_)) => 0,
            _ => {
                assert!(
                    record[32..size].iter().all(|&b| b == record[4]),
                    "torn record"
                );
                record[4]
            }
        };
        into.push((seq, id));
        at += size;
    }
}

/// The consumer as its own thread: one drain racing the producers. (loom
/// explores far fewer interleavings when the model's main thread races.)
fn spawn_consumer(ring: &Arc<Ring<'static>>) -> thread::JoinHandle<Vec<(u64, u8)>> {
    let ring = ring.clone();
    thread::spawn(move || {
        let mut seen = Vec::new();
        let mut out = vec![0u8; 256];
        let n = ring.drain_into(&mut out);
        records(&out[..n], &mut seen);
        seen
    })
}

/// A ring whose next slot starts 64 bytes before the end of its memory, so
/// the second 48-byte record needs a pad slot and wraps.
fn ring_near_the_end(memory: &mut [u64]) -> Ring<'_> {
    let ring = Ring::new(memory.as_mut_bytes()).unwrap();
    let first = Ring::MIN_CAPACITY - 64 - 8;
    let mut slot = ring.reserve(EventKind::ProcessExit, first).unwrap();
    slot.buffer()[..4].copy_from_slice(&(first as u32).to_le_bytes());
    slot.commit();
    let mut out = vec![0; Ring::MIN_CAPACITY];
    assert_eq!(ring.drain_into(&mut out), first);
    ring
}

#[test]
fn one_producer_and_the_consumer() {
    loom::model(|| {
        let memory = vec![0u64; Ring::MIN_CAPACITY / 8];
        // Leak so the ring can be shared with a spawned thread ('static).
        let memory: &'static mut [u64] = Box::leak(memory.into_boxed_slice());
        let ring = Arc::new(ring_near_the_end(memory));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                assert!(produce(&ring, EventKind::FileWrite, 1));
                assert!(produce(&ring, EventKind::FileWrite, 2));
            })
        };
        let consumer = spawn_consumer(&ring);
        producer.join().unwrap();
        let mut seen = consumer.join().unwrap();
        let mut out = vec![0u8; 256];
        let n = ring.drain_into(&mut out);
        records(&out[..n], &mut seen);

        assert_eq!(
            seen,
            vec![(1, 1), (2, 2)],
            "both records, in order, seq after the setup record"
        );
        let stats = ring.stats();
        let k = EventKind::FileWrite.index();
        assert_eq!(
            (stats.produced[k], stats.delivered[k], stats.dropped[k]),
            (2, 2, 0)
        );
        assert_eq!(ring.pending_bytes(), 0);
    });
}

#[test]
fn two_producers_and_the_consumer() {
    loom::model(|| {
        let memory = vec![0u64; Ring::MIN_CAPACITY / 8];
        let memory: &'static mut [u64] = Box::leak(memory.into_boxed_slice());
        let ring = Arc::new(ring_near_the_end(memory));
        let producers: Vec<_> = [(EventKind::FileCreate, 1u8), (EventKind::FileDelete, 2u8)]
            .into_iter()
            .map(|(kind, id)| {
                let ring = ring.clone();
                thread::spawn(move || produce(&ring, kind, id))
            })
            .collect();
        let consumer = spawn_consumer(&ring);
        let produced: Vec<bool> = producers.into_iter().map(|p| p.join().unwrap()).collect();
        let mut seen = consumer.join().unwrap();
        let mut out = vec![0u8; 256];
        let n = ring.drain_into(&mut out);
        records(&out[..n], &mut seen);

        // Both fit (the ring is empty but for them), in either order.
        assert_eq!(produced, vec![true, true]);
        let mut ids: Vec<u8> = seen.iter().map(|&(_, id)| id).collect();
        ids.sort();
        assert_eq!(ids, vec![1, 2]);
        let seqs: Vec<u64> = seen.iter().map(|&(seq, _)| seq).collect();
        assert_eq!(seqs, vec![1, 2]);
        let stats = ring.stats();
        for kind in [EventKind::FileCreate, EventKind::FileDelete] {
            let k = kind.index();
            assert_eq!(stats.produced[k], stats.delivered[k] + stats.dropped[k]);
            assert_eq!(stats.delivered[k], 1);
        }
        assert_eq!(ring.pending_bytes(), 0);
    });
}

#[test]
fn a_drop_races_a_producer_and_lost_is_reported() {
    loom::model(|| {
        let memory = vec![0u64; Ring::MIN_CAPACITY / 8];
        let memory: &'static mut [u64] = Box::leak(memory.into_boxed_slice());
        let ring = Arc::new(Ring::new(memory.as_mut_bytes()).unwrap());
        let dropper = {
            let ring = ring.clone();
            thread::spawn(move || {
                ring.drop_event(EventKind::ImageLoad, ringside_wire::DropReason::Irql)
            })
        };
        assert!(produce(&ring, EventKind::FileWrite, 1));
        dropper.join().unwrap();
        // Whatever the interleaving, the drop is reported by the time the
        // next producer succeeds after it.
        assert!(produce(&ring, EventKind::FileWrite, 2));
        let mut out = vec![0u8; 256];
        let n = ring.drain_into(&mut out);
        let mut lost_seen = 0;
        let mut at = 0;
        while at < n {
            if let Ok(Record::Lost(lost)) = decode_record(&out[at..]) {
                assert_eq!(lost.body.dropped[EventKind::ImageLoad.index()], 1);
                lost_seen += 1;
            }
            at += u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) as usize;
        }
        assert_eq!(lost_seen, 1);
        assert_eq!(ring.stats().lost_records, 1);
    });
}
