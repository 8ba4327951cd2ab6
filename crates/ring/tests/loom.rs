//! loom models of the ring: every interleaving (within the preemption bound)
//! of one or two producers against the consumer, on a tiny ring whose slots
//! wrap around its end.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p ringside-ring
//! --test loom --release` (what `cargo xtask test` does, in `target/loom`).
//!
//! Under loom the consumer leaves forged next-lap tags behind in every slot
//! it consumed (`TagTable::forge_stale`, the attacker-shaped payload of an
//! earlier lap), so reading any tag not stamped for the current lap shows
//! up as an extra record. Each key ordering was checked by weakening it to
//! Relaxed and watching a model fail:
//!
//! | weakened                                   | fails                                  |
//! |--------------------------------------------|----------------------------------------|
//! | `cons_pos` Acquire reload in `claim_space` | space_is_reused… (causality violation) |
//! | `cons_pos` Release store in `drain_lane`   | space_is_reused… (causality violation) |
//! | `prod_pos` Release store in `claim_space`  | one_producer…, two_producers… (forged tag delivered) |
//! | `prod_pos` Acquire load in `drain_lane`    | one_producer…, two_producers… (forged tag delivered) |
//! | busy tag stamped after `prod_pos` moves    | one_producer…, two_producers… (forged tag delivered) |
//! | tag Release store in `publish`             | one_producer…, two_producers… (causality violation) |
//! | reservation lock Acquire                   | two_producers… (causality violation)   |
//!
//! `two_claimed_lanes…` runs the lock-free per-CPU path: the same orderings
//! (`prod_pos`, tags, `cons_pos`) with no lock between producers, each in
//! its own lane.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use ringside_ring::Ring;
use ringside_wire::{EventKind, HEADER_SEQ_OFFSET, HEADER_SIZE, Record, decode_record};
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

        // Both fit (the ring is empty but for them). A producer may lose the
        // reservation lock after its bounded spin (loom preempts the holder
        // inside its section), but never both, and that is the only drop.
        assert!(produced.contains(&true));
        let mut ids: Vec<u8> = seen.iter().map(|&(_, id)| id).collect();
        ids.sort();
        let want: Vec<u8> = [1u8, 2]
            .into_iter()
            .zip(&produced)
            .filter_map(|(id, &ok)| ok.then_some(id))
            .collect();
        assert_eq!(ids, want);
        let seqs: Vec<u64> = seen.iter().map(|&(seq, _)| seq).collect();
        assert_eq!(seqs, (1..=want.len() as u64).collect::<Vec<_>>());
        let stats = ring.stats();
        for (kind, ok) in [EventKind::FileCreate, EventKind::FileDelete]
            .into_iter()
            .zip(produced)
        {
            let k = kind.index();
            assert_eq!(stats.produced[k], stats.delivered[k] + stats.dropped[k]);
            assert_eq!(stats.delivered[k], u64::from(ok));
        }
        let contention = stats.dropped_by_reason[ringside_wire::DropReason::Contention.index()];
        assert_eq!(stats.dropped.iter().sum::<u64>(), contention);
        assert_eq!(ring.pending_bytes(), 0);
    });
}

/// Per-CPU lanes: each producer claims its own lane and reserves with no
/// lock at all; the consumer drains both lanes in turn. Nothing is dropped,
/// each lane keeps its order, and one sequence runs across both.
#[test]
fn two_claimed_lanes_and_the_consumer() {
    loom::model(|| {
        let memory = vec![0u64; 2 * Ring::MIN_CAPACITY / 8];
        let memory: &'static mut [u64] = Box::leak(memory.into_boxed_slice());
        let ring = Ring::with_lanes(memory.as_mut_bytes(), 2).unwrap();
        // As in `ring_near_the_end`, per lane: the second record of each
        // lane wraps, over bytes the first lap left forged tags in.
        let first = Ring::MIN_CAPACITY - 64 - 8;
        for lane in 0..2 {
            let mut slot = ring
                .reserve_in(lane, EventKind::ProcessExit, first)
                .unwrap();
            slot.buffer()[..4].copy_from_slice(&(first as u32).to_le_bytes());
            slot.commit();
        }
        let mut out = vec![0; 2 * Ring::MIN_CAPACITY];
        assert_eq!(ring.drain_into(&mut out), 2 * first);
        let ring = Arc::new(ring);
        let producers: Vec<_> = [(0usize, [1u8, 2]), (1, [3, 4])]
            .into_iter()
            .map(|(lane, ids)| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let mut producer = ring.claim(lane).unwrap();
                    for id in ids {
                        let mut slot = producer.reserve(EventKind::FileWrite, LEN).unwrap();
                        let buf = slot.buffer();
                        buf[..4].copy_from_slice(&(LEN as u32).to_le_bytes());
                        buf[4] = id;
                        buf[32..].fill(id);
                        slot.commit();
                    }
                })
            })
            .collect();
        let consumer = spawn_consumer(&ring);
        for producer in producers {
            producer.join().unwrap();
        }
        let mut seen = consumer.join().unwrap();
        let mut out = vec![0u8; 256];
        let n = ring.drain_into(&mut out);
        records(&out[..n], &mut seen);

        let ids: Vec<u8> = seen.iter().map(|&(_, id)| id).collect();
        let lane0: Vec<u8> = ids.iter().copied().filter(|&id| id <= 2).collect();
        let lane1: Vec<u8> = ids.iter().copied().filter(|&id| id >= 3).collect();
        assert_eq!(
            (lane0, lane1),
            (vec![1, 2], vec![3, 4]),
            "each lane in order"
        );
        let seqs: Vec<u64> = seen.iter().map(|&(seq, _)| seq).collect();
        assert_eq!(seqs, vec![2, 3, 4, 5], "one sequence across the lanes");
        let stats = ring.stats();
        let k = EventKind::FileWrite.index();
        assert_eq!(
            (stats.produced[k], stats.delivered[k], stats.dropped[k]),
            (4, 4, 0)
        );
        assert_eq!(ring.pending_bytes(), 0);
    });
}

#[test]
fn a_drop_races_a_producer_and_lost_is_reported() {
    // Room for two records and the Lost record between them: 2 × 56 bytes
    // and a Lost slot that grows with the kinds (152 bytes at 14), past
    // the 256 of a minimal loom ring since the fourteenth kind.
    let lost_slot = HEADER_SIZE + core::mem::size_of::<ringside_wire::Lost>() + 8;
    let capacity = (2 * (LEN + 8) + lost_slot).next_power_of_two();
    loom::model(move || {
        let memory = vec![0u64; capacity.max(Ring::MIN_CAPACITY) / 8];
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

/// Space is reused while a producer reserves it: the ring holds one big
/// committed record, the consumer drains it while a producer reserves a slot
/// that fits only once that space is free. If the producer gets it, its
/// writes must come after the consumer's reads of the same bytes (loom
/// tracks them per 8 bytes). Weakening the producer's Acquire load of
/// `cons_pos` in `claim_space` to Relaxed makes this model fail ("Causality
/// violation" on the reused bytes).
#[test]
fn space_is_reused_while_a_producer_reserves_it() {
    loom::model(|| {
        let memory = vec![0u64; Ring::MIN_CAPACITY / 8];
        let memory: &'static mut [u64] = Box::leak(memory.into_boxed_slice());
        let ring = Arc::new(Ring::new(memory.as_mut_bytes()).unwrap());
        // One record of 200 bytes (slot 208): a 48-byte record (slot 56)
        // does not fit in the 48-byte tail, so it needs a pad and then
        // [0, 56) of the memory, which the big record's bytes occupy.
        let big = 200;
        let mut slot = ring.reserve(EventKind::ProcessExit, big).unwrap();
        slot.buffer()[..4].copy_from_slice(&(big as u32).to_le_bytes());
        slot.buffer()[4] = 9;
        slot.buffer()[32..].fill(9);
        slot.commit();
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || produce(&ring, EventKind::FileWrite, 1))
        };
        let consumer = spawn_consumer(&ring);
        let produced = producer.join().unwrap();
        let mut seen = consumer.join().unwrap();
        let mut out = vec![0u8; 256];
        let n = ring.drain_into(&mut out);
        records(&out[..n], &mut seen);

        let ids: Vec<u8> = seen.iter().map(|&(_, id)| id).collect();
        if produced {
            assert_eq!(ids, vec![9, 1]);
        } else {
            // RingFull: the consumer had not freed the space yet. The drop is
            // owed as a Lost record, written by the next reservation.
            assert_eq!(ids, vec![9]);
            let stats = ring.stats();
            assert_eq!(stats.dropped[EventKind::FileWrite.index()], 1);
            assert_eq!(
                stats.dropped_by_reason[ringside_wire::DropReason::RingFull.index()],
                1
            );
        }
        let stats = ring.stats();
        let k = EventKind::FileWrite.index();
        assert_eq!(stats.produced[k], stats.delivered[k] + stats.dropped[k]);
        assert_eq!(ring.pending_bytes(), 0);
    });
}
