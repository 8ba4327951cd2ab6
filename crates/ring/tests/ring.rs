//! The ring's behaviour through its public API: unit tests, a model-based
//! property test against a `VecDeque` model, and a multi-threaded stress test.
//! All of it also runs under Miri (`cargo xtask miri`) with smaller sizes.

#![allow(
    clippy::needless_range_loop,
    reason = "per-kind arrays are compared index by index"
)]

use std::collections::VecDeque;

use proptest::prelude::*;
use ringside_ring::{Reservation, Ring, RingError};
use ringside_wire::kind::DROP_REASON_COUNT;
use ringside_wire::{
    DropReason, EVENT_KIND_COUNT, EventKind, HEADER_SEQ_OFFSET, HEADER_SIZE, MAX_RECORD_SIZE,
    Record, decode_record,
};
use zerocopy::IntoBytes;

const REASONS: [DropReason; DROP_REASON_COUNT] = [
    DropReason::RingFull,
    DropReason::Irql,
    DropReason::QueryFailed,
    DropReason::EncodeFailed,
    DropReason::Contention,
];
/// Size of a slot holding a `Lost` record (tag + header + 80-byte body).
const LOST_SLOT: u64 = 8 + 32 + 80;

/// 8-byte aligned, zero-filled memory for a ring.
fn memory(bytes: usize) -> Vec<u64> {
    vec![0; bytes / 8]
}

/// Deterministic record content for event `id`: a `size` field like a wire
/// header's, then a pattern. `seq` (bytes 16..24) is overwritten on drain.
fn fill(buf: &mut [u8], id: u64) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte = (id.wrapping_mul(131) as usize).wrapping_add(i.wrapping_mul(7)) as u8;
    }
    let size = (buf.len().next_multiple_of(8) as u32).to_le_bytes();
    buf[..4].copy_from_slice(&size);
}

/// What a drained copy of event `id` must be: its content, zero padding, seq.
fn expected(id: u64, len: usize, seq: u64) -> Vec<u8> {
    let mut bytes = vec![0; len.next_multiple_of(8)];
    fill(&mut bytes[..len], id);
    bytes[HEADER_SEQ_OFFSET..HEADER_SEQ_OFFSET + 8].copy_from_slice(&seq.to_le_bytes());
    bytes
}

fn seq_of(record: &[u8]) -> u64 {
    u64::from_le_bytes(
        record[HEADER_SEQ_OFFSET..HEADER_SEQ_OFFSET + 8]
            .try_into()
            .unwrap(),
    )
}

fn size_of_record(record: &[u8]) -> usize {
    u32::from_le_bytes(record[..4].try_into().unwrap()) as usize
}

#[test]
fn new_checks_length_and_alignment() {
    let mut small = memory(Ring::MIN_CAPACITY / 2);
    assert_eq!(
        Ring::new(small.as_mut_bytes()).err(),
        Some(RingError::BadCapacity {
            len: Ring::MIN_CAPACITY / 2
        })
    );
    let mut odd = memory(Ring::MIN_CAPACITY + 8);
    assert!(matches!(
        Ring::new(odd.as_mut_bytes()),
        Err(RingError::BadCapacity { .. })
    ));
    let mut backing = memory(Ring::MIN_CAPACITY * 2);
    let bytes = backing.as_mut_bytes();
    let misaligned = &mut bytes[4..4 + Ring::MIN_CAPACITY];
    assert_eq!(Ring::new(misaligned).err(), Some(RingError::Misaligned));
    assert!(RingError::Misaligned.to_string().contains("aligned"));
    assert!(
        RingError::BadCapacity { len: 5 }
            .to_string()
            .contains("5 bytes")
    );

    // Stale bytes in the memory are zeroed, not mistaken for records.
    let mut dirty = vec![u64::MAX; Ring::MIN_CAPACITY / 8];
    let ring = Ring::new(dirty.as_mut_bytes()).unwrap();
    assert_eq!(ring.capacity(), Ring::MIN_CAPACITY);
    assert_eq!(ring.drain_into(&mut [0; 256]), 0);
}

#[test]
fn records_come_out_in_order_with_contiguous_seq() {
    let mut mem = memory(Ring::MIN_CAPACITY);
    let ring = Ring::new(mem.as_mut_bytes()).unwrap();
    for (id, len) in [(1u64, 32usize), (2, 45), (3, 200)] {
        let mut slot = ring.reserve(EventKind::ImageLoad, len).unwrap();
        assert_eq!(slot.buffer().len(), len);
        fill(slot.buffer(), id);
        slot.commit();
    }
    let mut out = vec![0; 1024];
    let n = ring.drain_into(&mut out);
    let want: Vec<u8> = [expected(1, 32, 0), expected(2, 45, 1), expected(3, 200, 2)].concat();
    assert_eq!(&out[..n], &want[..]);
    let stats = ring.stats();
    assert_eq!(stats.produced[EventKind::ImageLoad.index()], 3);
    assert_eq!(stats.delivered[EventKind::ImageLoad.index()], 3);
    assert_eq!(stats.next_seq, 3);
    assert_eq!(ring.pending_bytes(), 0);
}

#[test]
fn consumer_stops_at_an_uncommitted_record_but_producers_do_not() {
    let mut mem = memory(Ring::MIN_CAPACITY);
    let ring = Ring::new(mem.as_mut_bytes()).unwrap();
    let mut first = ring.reserve(EventKind::FileWrite, 64).unwrap();
    let mut second = ring.reserve(EventKind::FileWrite, 64).unwrap();
    fill(second.buffer(), 2);
    second.commit();
    let mut out = vec![0; 1024];
    assert_eq!(
        ring.drain_into(&mut out),
        0,
        "the first slot is not committed yet"
    );
    assert_eq!(ring.pending_bytes(), 2 * (64 + 8));
    fill(first.buffer(), 1);
    first.commit();
    let n = ring.drain_into(&mut out);
    assert_eq!(
        &out[..n],
        &[expected(1, 64, 0), expected(2, 64, 1)].concat()[..]
    );
}

#[test]
fn a_full_ring_drops_counts_and_reports_lost_in_band() {
    let mut mem = memory(Ring::MIN_CAPACITY);
    let ring = Ring::new(mem.as_mut_bytes()).unwrap();
    let slot = 1016 + 8;
    for id in 0..(Ring::MIN_CAPACITY / slot) as u64 {
        let mut r = ring.reserve(EventKind::ProcessCreate, 1016).unwrap();
        fill(r.buffer(), id);
        r.commit();
    }
    assert_eq!(
        ring.reserve(EventKind::FileCreate, 64).err(),
        Some(DropReason::RingFull)
    );
    ring.drop_event(EventKind::FileCreate, DropReason::Irql);
    let mut out = vec![0; 2 * 1024];
    assert_eq!(ring.drain_into(&mut out), 2 * 1016);
    let mut r = ring.reserve(EventKind::FileDelete, 40).unwrap();
    fill(r.buffer(), 99);
    r.commit();
    let mut out = vec![0; 8 * 1024];
    let n = ring.drain_into(&mut out);
    // Two old records, then Lost, then the new event.
    let lost = &out[2 * 1016..2 * 1016 + 112];
    match decode_record(lost).unwrap() {
        Record::Lost(event) => {
            assert_eq!(event.body.dropped[EventKind::FileCreate.index()], 2);
            assert_eq!(event.header.seq, 4);
        }
        other => panic!("expected a Lost record, got {other:?}"),
    }
    assert_eq!(&out[2 * 1016 + 112..n], &expected(99, 40, 5)[..]);
    let stats = ring.stats();
    assert_eq!(stats.dropped[EventKind::FileCreate.index()], 2);
    assert_eq!(stats.produced[EventKind::FileCreate.index()], 2);
    assert_eq!(stats.dropped_by_reason[DropReason::RingFull.index()], 1);
    assert_eq!(stats.dropped_by_reason[DropReason::Irql.index()], 1);
    assert_eq!(stats.lost_records, 1);
    assert_eq!(stats.next_seq, 6);
}

#[test]
fn dropping_a_reservation_discards_it_as_encode_failed() {
    let mut mem = memory(Ring::MIN_CAPACITY);
    let ring = Ring::new(mem.as_mut_bytes()).unwrap();
    drop(ring.reserve(EventKind::ProcessExit, 40).unwrap());
    ring.reserve(EventKind::ProcessExit, 40)
        .unwrap()
        .discard(DropReason::QueryFailed);
    assert_eq!(
        ring.reserve(EventKind::ProcessExit, 8).err(),
        Some(DropReason::EncodeFailed)
    );
    assert_eq!(
        ring.reserve(EventKind::ProcessExit, MAX_RECORD_SIZE + 1)
            .err(),
        Some(DropReason::EncodeFailed)
    );
    // Larger than the whole ring: can never fit.
    assert_eq!(
        ring.reserve(EventKind::ProcessExit, Ring::MIN_CAPACITY)
            .err(),
        Some(DropReason::RingFull)
    );
    let stats = ring.stats();
    assert_eq!(stats.produced[EventKind::ProcessExit.index()], 5);
    assert_eq!(stats.dropped[EventKind::ProcessExit.index()], 5);
    assert_eq!(stats.dropped_by_reason[DropReason::EncodeFailed.index()], 3);
    // The discarded slots are skipped; what comes out is the Lost record the
    // second reservation wrote in front of itself for the first drop.
    let mut out = vec![0; 512];
    assert_eq!(ring.drain_into(&mut out), 112);
    match decode_record(&out).unwrap() {
        Record::Lost(event) => assert_eq!(event.body.dropped[EventKind::ProcessExit.index()], 1),
        other => panic!("expected a Lost record, got {other:?}"),
    }
    assert_eq!(ring.pending_bytes(), 0);
}

#[test]
fn drain_copies_only_whole_records_that_fit() {
    let mut mem = memory(Ring::MIN_CAPACITY);
    let ring = Ring::new(mem.as_mut_bytes()).unwrap();
    for id in 0..3 {
        let mut r = ring.reserve(EventKind::FileRename, 96).unwrap();
        fill(r.buffer(), id);
        r.commit();
    }
    let mut out = vec![0; 200];
    assert_eq!(ring.drain_into(&mut out[..95]), 0);
    assert_eq!(ring.drain_into(&mut out), 192);
    assert_eq!(seq_of(&out[96..]), 1);
    assert_eq!(ring.drain_into(&mut out), 96);
    assert_eq!(seq_of(&out), 2);
}

// ---------------------------------------------------------------------------
// Lanes (one per CPU in the driver).

/// Commits event `id` of `len` bytes in `lane` (shared reservation).
fn put(ring: &Ring<'_>, lane: usize, id: u64, len: usize) -> Result<(), DropReason> {
    let mut slot = ring.reserve_in(lane, EventKind::FileWrite, len)?;
    fill(slot.buffer(), id);
    slot.commit();
    Ok(())
}

/// The ids (content checked) and seqs of the non-Lost records in `batch`.
fn ids_and_seqs(batch: &[u8], len: usize) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < batch.len() {
        let size = size_of_record(&batch[at..]);
        let record = &batch[at..at + size];
        if !matches!(decode_record(record), Ok(Record::Lost(_))) {
            let id = (0..1000)
                .find(|&id| expected(id, len, seq_of(record)) == record)
                .expect("a record this test wrote, intact");
            out.push((id, seq_of(record)));
        }
        at += size;
    }
    out
}

#[test]
fn with_lanes_checks_the_lane_count() {
    let mut mem = memory(4 * Ring::MIN_CAPACITY);
    for lanes in [0, 3, 8, 2 * ringside_ring::MAX_LANES] {
        assert_eq!(
            Ring::with_lanes(mem.as_mut_bytes(), lanes).err(),
            Some(RingError::BadLanes { lanes }),
            "{lanes} lanes of a 4-lane memory"
        );
    }
    let ring = Ring::with_lanes(mem.as_mut_bytes(), 4).unwrap();
    assert_eq!((ring.lanes(), ring.capacity()), (4, 4 * Ring::MIN_CAPACITY));
}

#[test]
fn lanes_are_drained_in_turn_under_one_sequence() {
    let mut mem = memory(4 * Ring::MIN_CAPACITY);
    let ring = Ring::with_lanes(mem.as_mut_bytes(), 4).unwrap();
    // Lane l gets ids 10l+1, 10l+2, 10l+3; 7 wraps into lane 3.
    for lane in 0..4 {
        for k in 1..=3 {
            put(&ring, lane, 10 * lane as u64 + k, 64).unwrap();
        }
    }
    put(&ring, 7, 99, 64).unwrap();
    // Drains that take two records at a time still deliver everything.
    let mut got = Vec::new();
    let mut out = [0u8; 128];
    loop {
        let n = ring.drain_into(&mut out);
        if n == 0 {
            break;
        }
        got.extend(ids_and_seqs(&out[..n], 64));
    }
    let seqs: Vec<u64> = got.iter().map(|&(_, seq)| seq).collect();
    assert_eq!(seqs, (0..13).collect::<Vec<_>>(), "one contiguous sequence");
    for lane in 0..4u64 {
        let ids: Vec<u64> = got
            .iter()
            .map(|&(id, _)| id)
            .filter(|&id| id / 10 == lane && id != 99)
            .collect();
        assert_eq!(
            ids,
            [1, 2, 3].map(|k| 10 * lane + k),
            "lane {lane} in order"
        );
    }
    let lane3: Vec<u64> = got
        .iter()
        .map(|&(id, _)| id)
        .filter(|&id| id / 10 == 3 || id == 99)
        .collect();
    assert_eq!(lane3, vec![31, 32, 33, 99], "lane 7 is lane 3");
    assert_eq!(ring.pending_bytes(), 0);
}

#[test]
fn a_committed_record_s_backlog_is_its_own_lane_up_to_its_slot() {
    let mut mem = memory(16 * 1024);
    let ring = Ring::with_lanes(mem.as_mut_bytes(), 2).unwrap();
    let commit = |lane: usize, len: usize| {
        let mut slot = ring.reserve_in(lane, EventKind::FileWrite, len).unwrap();
        fill(slot.buffer(), 1);
        slot.commit().lane_backlog()
    };
    // A slot is its record rounded up to 8 bytes, plus the 8-byte tag.
    assert_eq!(commit(0, 64), 72);
    assert_eq!(commit(0, 45), 72 + 56);
    assert_eq!(commit(1, 32), 40, "lane 1 does not see lane 0's bytes");
    // An older reservation still open counts: the backlog runs up to the
    // committed slot's end.
    let open = ring.reserve_in(1, EventKind::FileWrite, 32).unwrap();
    assert_eq!(commit(1, 32), 3 * 40);
    open.commit();
    let mut out = vec![0; 4096];
    assert_ne!(ring.drain_into(&mut out), 0);
    assert_eq!(commit(0, 64), 72, "drained bytes no longer count");
}

#[test]
fn a_claimed_lane_refuses_shared_reservations_until_released() {
    let mut mem = memory(2 * Ring::MIN_CAPACITY);
    let ring = Ring::with_lanes(mem.as_mut_bytes(), 2).unwrap();
    let mut producer = ring.claim(1).unwrap();
    assert!(ring.claim(1).is_none(), "one claim per lane");
    assert_eq!(put(&ring, 1, 1, 40), Err(DropReason::Contention));
    put(&ring, 0, 2, 40).unwrap();
    let mut slot = producer.reserve(EventKind::FileWrite, 40).unwrap();
    fill(slot.buffer(), 3);
    slot.commit();
    // The Lost record owed for the drop went in front of id 2, in lane 0.
    assert_eq!(producer.pending_bytes(), 48);
    drop(producer);
    put(&ring, 1, 4, 40).unwrap();

    let mut out = [0u8; 1024];
    let n = ring.drain_into(&mut out);
    let mut ids: Vec<u64> = ids_and_seqs(&out[..n], 40)
        .iter()
        .map(|&(id, _)| id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec![2, 3, 4]);
    let stats = ring.stats();
    let k = EventKind::FileWrite.index();
    assert_eq!(
        (stats.produced[k], stats.delivered[k], stats.dropped[k]),
        (4, 3, 1)
    );
    assert_eq!(
        stats.lost_records, 1,
        "the contention drop is reported in-band"
    );
}

#[test]
fn a_full_lane_drops_while_other_lanes_take_events() {
    let mut mem = memory(2 * Ring::MIN_CAPACITY);
    let ring = Ring::with_lanes(mem.as_mut_bytes(), 2).unwrap();
    let mut id = 0;
    while put(&ring, 0, id, 256).is_ok() {
        id += 1;
    }
    assert_eq!(put(&ring, 0, 500, 256), Err(DropReason::RingFull));
    // Lane 1 has room: its next event carries the Lost record for lane 0's drops.
    put(&ring, 1, 501, 256).unwrap();
    let mut out = vec![0u8; 2 * Ring::MIN_CAPACITY];
    let n = ring.drain_into(&mut out);
    let mut lost = None;
    let mut at = 0;
    while at < n {
        if let Ok(Record::Lost(record)) = decode_record(&out[at..n]) {
            lost = Some(record.body.dropped[EventKind::FileWrite.index()]);
        }
        at += size_of_record(&out[at..]);
    }
    assert_eq!(lost, Some(2));
    let delivered = ids_and_seqs(&out[..n], 256).len() as u64;
    assert_eq!(delivered, id + 1);
    let stats = ring.stats();
    let k = EventKind::FileWrite.index();
    assert_eq!(stats.produced[k], stats.delivered[k] + stats.dropped[k]);
    assert_eq!((stats.delivered[k], stats.dropped[k]), (delivered, 2));
}

// ---------------------------------------------------------------------------
// Model-based test: the ring against a VecDeque of the slots it must hold.

#[derive(Clone, Debug)]
enum Op {
    Reserve { kind: usize, len: usize },
    Commit(usize),
    Discard(usize, usize),
    Abandon(usize),
    Drain(usize),
    DropEvent(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop_oneof![
        20 => HEADER_SIZE..=700usize,
        1 => 0..HEADER_SIZE,
        1 => 3000..=MAX_RECORD_SIZE + 16,
    ];
    prop_oneof![
        8 => (0..EVENT_KIND_COUNT, len).prop_map(|(kind, len)| Op::Reserve { kind, len }),
        6 => any::<usize>().prop_map(Op::Commit),
        1 => (any::<usize>(), 0..DROP_REASON_COUNT).prop_map(|(i, r)| Op::Discard(i, r)),
        1 => any::<usize>().prop_map(Op::Abandon),
        3 => prop_oneof![0..200usize, 200..5000usize].prop_map(Op::Drain),
        1 => (0..EVENT_KIND_COUNT, 0..DROP_REASON_COUNT).prop_map(|(k, r)| Op::DropEvent(k, r)),
    ]
}

#[derive(Debug, PartialEq)]
enum Content {
    Pad,
    Lost([u64; EVENT_KIND_COUNT]),
    Event {
        id: u64,
        kind: usize,
        len: usize,
        state: Slot,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Slot {
    Open,
    Committed,
    Discarded,
}

/// The specification: positions, slots in order, counters.
struct Model {
    cap: u64,
    prod: u64,
    cons: u64,
    lost_pending: bool,
    slots: VecDeque<(u64, Content)>,
    produced: [u64; EVENT_KIND_COUNT],
    delivered: [u64; EVENT_KIND_COUNT],
    dropped: [u64; EVENT_KIND_COUNT],
    by_reason: [u64; DROP_REASON_COUNT],
    lost_records: u64,
    next_seq: u64,
}

impl Model {
    fn drop(&mut self, kind: usize, reason: DropReason) {
        self.dropped[kind] += 1;
        self.by_reason[reason.index()] += 1;
        self.lost_pending = true;
    }

    /// Predicts `reserve`: `Ok(())` with the slots pushed, or the reason.
    fn reserve(&mut self, id: u64, kind: usize, len: usize) -> Result<(), DropReason> {
        self.produced[kind] += 1;
        let result = if !(HEADER_SIZE..=MAX_RECORD_SIZE).contains(&len) {
            Err(DropReason::EncodeFailed)
        } else {
            let slot = len.next_multiple_of(8) as u64 + 8;
            let body = slot + if self.lost_pending { LOST_SLOT } else { 0 };
            let tail = self.cap - self.prod % self.cap;
            let pad = if body > tail { tail } else { 0 };
            if self.prod + pad + body - self.cons > self.cap {
                Err(DropReason::RingFull)
            } else {
                if pad > 0 {
                    self.slots.push_back((pad, Content::Pad));
                }
                if self.lost_pending {
                    self.slots
                        .push_back((LOST_SLOT, Content::Lost(self.dropped)));
                    self.lost_records += 1;
                    self.lost_pending = false;
                }
                let state = Slot::Open;
                self.slots.push_back((
                    slot,
                    Content::Event {
                        id,
                        kind,
                        len,
                        state,
                    },
                ));
                self.prod += pad + body;
                Ok(())
            }
        };
        if let Err(reason) = result {
            self.drop(kind, reason);
        }
        result
    }

    fn set_state(&mut self, want: u64, to: Slot) {
        for (_, content) in &mut self.slots {
            if let Content::Event { id, state, .. } = content {
                if *id == want {
                    *state = to;
                }
            }
        }
    }

    /// Predicts `drain_into` with `out` bytes: the bytes copied.
    fn drain(&mut self, out: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        while let Some((len, content)) = self.slots.front() {
            let record = (*len - 8) as usize;
            match content {
                Content::Pad
                | Content::Event {
                    state: Slot::Discarded,
                    ..
                } => {}
                Content::Event {
                    state: Slot::Open, ..
                } => break,
                _ if bytes.len() + record > out => break,
                Content::Lost(dropped) => {
                    let start = bytes.len();
                    bytes.resize(start + record, 0);
                    let lost = ringside_wire::Lost { dropped: *dropped };
                    let origin = ringside_wire::Origin::default();
                    ringside_wire::encode(&mut bytes[start..], origin, lost, &[]).unwrap();
                    bytes[start + 16..start + 24].copy_from_slice(&self.next_seq.to_le_bytes());
                    self.next_seq += 1;
                }
                Content::Event { id, kind, len, .. } => {
                    bytes.extend(expected(*id, *len, self.next_seq));
                    self.delivered[*kind] += 1;
                    self.next_seq += 1;
                }
            }
            self.cons += len;
            self.slots.pop_front();
        }
        bytes
    }

    /// Events of each kind reserved and not discarded, still in the ring.
    fn in_ring(&self) -> [u64; EVENT_KIND_COUNT] {
        let mut counts = [0; EVENT_KIND_COUNT];
        for (_, content) in &self.slots {
            if let Content::Event {
                kind,
                state: Slot::Open | Slot::Committed,
                ..
            } = content
            {
                counts[*kind] += 1;
            }
        }
        counts
    }
}

fn check(ring: &Ring<'_>, model: &Model) {
    let stats = ring.stats();
    let in_ring = model.in_ring();
    for k in 0..EVENT_KIND_COUNT {
        assert_eq!(
            stats.produced[k],
            stats.delivered[k] + stats.dropped[k] + in_ring[k],
            "kind {k}"
        );
    }
    assert_eq!(stats.produced, model.produced);
    assert_eq!(stats.delivered, model.delivered);
    assert_eq!(stats.dropped, model.dropped);
    assert_eq!(stats.dropped_by_reason, model.by_reason);
    assert_eq!(stats.lost_records, model.lost_records);
    assert_eq!(stats.next_seq, model.next_seq);
    assert_eq!(ring.pending_bytes() as u64, model.prod - model.cons);
    assert_eq!(stats.ring_used as u64, model.prod - model.cons);
}

fn run_model(ops: &[Op]) {
    let mut mem = memory(Ring::MIN_CAPACITY);
    let ring = Ring::new(mem.as_mut_bytes()).unwrap();
    let mut model = Model {
        cap: ring.capacity() as u64,
        prod: 0,
        cons: 0,
        lost_pending: false,
        slots: VecDeque::new(),
        produced: [0; EVENT_KIND_COUNT],
        delivered: [0; EVENT_KIND_COUNT],
        dropped: [0; EVENT_KIND_COUNT],
        by_reason: [0; DROP_REASON_COUNT],
        lost_records: 0,
        next_seq: 0,
    };
    let mut open: Vec<(u64, Reservation<'_>)> = Vec::new();
    let mut next_id = 0u64;
    let mut seqs_seen = 0u64;
    for op in ops {
        match *op {
            Op::Reserve { kind, len } => {
                next_id += 1;
                let want = model.reserve(next_id, kind, len);
                match ring.reserve(EventKind::ALL[kind], len) {
                    Ok(mut slot) => {
                        assert_eq!(want, Ok(()));
                        assert_eq!(slot.buffer().len(), len);
                        fill(slot.buffer(), next_id);
                        open.push((next_id, slot));
                    }
                    Err(reason) => assert_eq!(want, Err(reason)),
                }
            }
            Op::Commit(i) | Op::Discard(i, _) | Op::Abandon(i) if !open.is_empty() => {
                let (id, slot) = open.remove(i % open.len());
                let kind = slot.kind().index();
                match *op {
                    Op::Commit(_) => {
                        slot.commit();
                        model.set_state(id, Slot::Committed);
                    }
                    Op::Discard(_, r) => {
                        slot.discard(REASONS[r]);
                        model.set_state(id, Slot::Discarded);
                        model.drop(kind, REASONS[r]);
                    }
                    _ => {
                        drop(slot);
                        model.set_state(id, Slot::Discarded);
                        model.drop(kind, DropReason::EncodeFailed);
                    }
                }
            }
            Op::Commit(_) | Op::Discard(..) | Op::Abandon(_) => {}
            Op::Drain(size) => {
                let mut out = vec![0xAAu8; size];
                let n = ring.drain_into(&mut out);
                let want = model.drain(size);
                assert_eq!(&out[..n], &want[..]);
                // Every copied record is whole and its seq is the next one.
                let mut at = 0;
                while at < n {
                    assert_eq!(seq_of(&out[at..]), seqs_seen);
                    seqs_seen += 1;
                    at += size_of_record(&out[at..]);
                }
                assert_eq!(at, n);
            }
            Op::DropEvent(kind, r) => {
                ring.drop_event(EventKind::ALL[kind], REASONS[r]);
                model.produced[kind] += 1;
                model.drop(kind, REASONS[r]);
            }
        }
        check(&ring, &model);
    }
    // Finish everything: then produced == delivered + dropped exactly.
    for (id, slot) in open.drain(..) {
        slot.commit();
        model.set_state(id, Slot::Committed);
    }
    let mut out = vec![0; 2 * Ring::MIN_CAPACITY];
    let n = ring.drain_into(&mut out);
    assert_eq!(&out[..n], &model.drain(out.len())[..]);
    check(&ring, &model);
    let stats = ring.stats();
    for k in 0..EVENT_KIND_COUNT {
        assert_eq!(stats.produced[k], stats.delivered[k] + stats.dropped[k]);
    }
    assert_eq!(ring.pending_bytes(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn ring_matches_its_model(ops in prop::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 300 })) {
        run_model(&ops);
    }
}

// ---------------------------------------------------------------------------
// Stress: real threads, two producers and two competing consumers.

#[test]
fn concurrent_producers_and_consumers_lose_nothing_uncounted() {
    stress(false);
}

/// The same with per-CPU lanes: each producer claims a lane of its own and
/// reserves with no lock.
#[test]
fn producers_on_claimed_lanes_lose_nothing_uncounted() {
    stress(true);
}

const PRODUCERS: usize = 3;

/// Reserves in lane `p` (claimed) or in the shared lane 0.
fn stress_reserve<'r>(
    ring: &'r Ring<'r>,
    claimed: &mut Option<ringside_ring::Producer<'r>>,
    kind: EventKind,
    len: usize,
) -> Result<Reservation<'r>, DropReason> {
    match claimed {
        Some(producer) => producer.reserve(kind, len),
        None => ring.reserve(kind, len),
    }
}

fn stress(lanes: bool) {
    let per_producer: u64 = if cfg!(miri) { 60 } else { 100_000 };
    // Four lanes (one unused) of the same size as the one shared lane.
    let lane_count = if lanes { 4 } else { 1 };
    let mut mem = memory(Ring::MIN_CAPACITY * lane_count);
    let ring = Ring::with_lanes(mem.as_mut_bytes(), lane_count).unwrap();
    let done = std::sync::atomic::AtomicUsize::new(0);

    let (batches_a, batches_b) = std::thread::scope(|s| {
        for p in 0..PRODUCERS {
            let ring = &ring;
            let done = &done;
            s.spawn(move || {
                let kind = EventKind::ALL[p];
                let mut claimed = lanes.then(|| ring.claim(p).unwrap());
                for n in 0..per_producer {
                    // Lengths vary so slots straddle the end in every way.
                    let len = 32 + 8 * ((n as usize * 7 + p) % 40);
                    if let Ok(mut slot) = stress_reserve(ring, &mut claimed, kind, len) {
                        let buf = slot.buffer();
                        buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
                        buf[4..8].copy_from_slice(&(p as u32).to_le_bytes());
                        buf[24..32].copy_from_slice(&n.to_le_bytes());
                        buf[32..].fill(p as u8);
                        slot.commit();
                    }
                    if n % 1000 == 999 {
                        std::thread::yield_now();
                    }
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Release);
            });
        }
        let consumer = || {
            let mut batches = Vec::new();
            let mut out = vec![0u8; 1500];
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire) == PRODUCERS;
                let n = ring.drain_into(&mut out);
                if n > 0 {
                    batches.push(out[..n].to_vec());
                } else if finished && ring.pending_bytes() == 0 {
                    return batches;
                } else {
                    std::thread::yield_now();
                }
            }
        };
        let a = s.spawn(consumer);
        let b = s.spawn(consumer);
        (a.join().unwrap(), b.join().unwrap())
    });

    // After the producers stopped (and released their lanes), one more
    // event flushes the Lost record owed for their last drops (the ring is
    // empty, so it fits).
    let flushed = ring
        .reserve(EventKind::FileCloseModified, 32)
        .map(|mut slot| {
            slot.buffer()[..4].copy_from_slice(&32u32.to_le_bytes());
            slot.buffer()[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
            slot.commit();
        });
    assert!(flushed.is_ok());
    let mut out = vec![0u8; 1500];
    let n = ring.drain_into(&mut out);
    let tail_batch = out[..n].to_vec();

    // Order all records by seq: each drain is one contiguous seq range, and
    // the try-lock keeps the two consumers' ranges disjoint. Each producer's
    // records keep their order (one lane each, or the shared lane).
    let mut records: Vec<Vec<u8>> = Vec::new();
    for batch in batches_a.iter().chain(&batches_b).chain([&tail_batch]) {
        let mut at = 0;
        while at < batch.len() {
            let size = size_of_record(&batch[at..]);
            records.push(batch[at..at + size].to_vec());
            at += size;
        }
    }
    records.sort_by_key(|r| seq_of(r));
    let flush = records.pop().expect("the flush record");
    assert_eq!(
        flush[4..8],
        u32::MAX.to_le_bytes(),
        "the flush record comes last"
    );
    let mut last = [None::<u64>; PRODUCERS];
    let mut delivered = [0u64; PRODUCERS];
    // Lost counts are cumulative, but two producers that took the Lost duty
    // one after the other may land in either order, so the agent takes the
    // maximum; after the flush that maximum is every drop.
    let mut max_lost = [0u64; EVENT_KIND_COUNT];
    for (i, record) in records.iter().enumerate() {
        assert_eq!(seq_of(record), i as u64, "seq numbers are contiguous");
        if let Ok(Record::Lost(lost)) = decode_record(record) {
            for k in 0..EVENT_KIND_COUNT {
                max_lost[k] = max_lost[k].max(lost.body.dropped[k]);
            }
            continue;
        }
        let p = u32::from_le_bytes(record[4..8].try_into().unwrap()) as usize;
        let n = u64::from_le_bytes(record[24..32].try_into().unwrap());
        assert!(
            last[p].is_none_or(|l| n > l),
            "producer {p}: {n} after {:?}",
            last[p]
        );
        assert!(
            record[32..].iter().all(|&b| b == p as u8),
            "record content intact"
        );
        last[p] = Some(n);
        delivered[p] += 1;
    }
    let stats = ring.stats();
    for p in 0..PRODUCERS {
        assert_eq!(stats.produced[p], per_producer);
        assert_eq!(stats.delivered[p], delivered[p]);
        assert_eq!(stats.produced[p], stats.delivered[p] + stats.dropped[p]);
    }
    assert_eq!(
        max_lost, stats.dropped,
        "the Lost records report every drop"
    );
    assert_eq!(stats.next_seq, records.len() as u64 + 1);
    assert_eq!(
        stats.lost_records,
        records.len() as u64 - delivered.iter().sum::<u64>()
    );
}
