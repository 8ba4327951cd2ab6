//! The ring itself: producers reserve and publish slots, one consumer at a
//! time drains committed records out, and every event is counted.
//!
//! # Layout and positions
//!
//! The caller's memory (`capacity` bytes, a power of two) holds slots back to
//! back. A slot is an 8-byte tag word ([`crate::tag`]) followed by one
//! record rounded up to 8 bytes; a slot never crosses the end of the memory:
//! a producer whose slot does not fit in the tail claims the tail too and
//! marks it [`State::Pad`] (a tail is always a multiple of 8, so it always
//! holds a tag).
//!
//! `prod_pos` and `cons_pos` are byte positions that only grow (a `u64` of
//! bytes does not wrap in the life of a machine); a position's offset in the
//! memory is `pos & (capacity - 1)`. Invariant: `cons_pos <= prod_pos <=
//! cons_pos + capacity`, and both are multiples of 8. `[cons_pos, prod_pos)`
//! is a chain of slots, each either published (its tag says so) or still
//! owned by the producer that reserved it; every byte outside that range is
//! zero, so an unpublished slot's tag reads as free (zero).
//!
//! # Producers
//!
//! A producer claims `[p, p + len)` by compare-and-swap on `prod_pos` after
//! checking it against `cons_pos`; the CAS is retried at most
//! [`MAX_CLAIM_TRIES`] times, then the event is dropped as
//! [`DropReason::Contention`]. It then owns the slot exclusively, writes it,
//! and publishes it with one Release store of the tag. No producer ever waits
//! for another: a producer that is slow between reserve and commit only makes
//! the consumer stop at its slot until it commits.
//!
//! # Consumer
//!
//! `drain_into` takes a try-lock, walks the slots from `cons_pos`, copies
//! committed records out (stamping their sequence numbers), zeroes what it
//! walked, and stops at the first unpublished slot, at `prod_pos`, or when the
//! output is full. It then returns the space with one Release store of
//! `cons_pos`.

use core::marker::PhantomData;
use core::ptr::NonNull;

use ringside_wire::kind::DROP_REASON_COUNT;
use ringside_wire::{
    DriverStats, DropReason, EVENT_KIND_COUNT, EventKind, HEADER_SEQ_OFFSET, HEADER_SIZE, Lost,
    MAX_RECORD_SIZE, Origin, encode,
};

use crate::reservation::Reservation;
use crate::sync::{AtomicBool, AtomicU64, CachePadded, Ordering, TagTable};
use crate::tag::{KIND_LOST, State, TAG_SIZE, Tag};

/// How often a producer retries the CAS on `prod_pos` before it gives up
/// and drops the event as [`DropReason::Contention`]. With a handful of CPUs
/// racing, a retry almost always wins within a few tries; 64 bounds the
/// time a callback can spend here.
pub const MAX_CLAIM_TRIES: u32 = 64;

/// Size of a `Lost` record: a header and the per-kind counts.
const LOST_RECORD_SIZE: usize = HEADER_SIZE + core::mem::size_of::<Lost>();
/// Size of the slot holding a `Lost` record.
const LOST_SLOT: usize = LOST_RECORD_SIZE + TAG_SIZE;

/// Why [`Ring::new`] refused the memory it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The length is not a power of two in
    /// `Ring::MIN_CAPACITY..=Ring::MAX_CAPACITY`.
    BadCapacity { len: usize },
    /// The memory does not start at a multiple of 8 bytes.
    Misaligned,
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            RingError::BadCapacity { len } => write!(
                f,
                "ring memory of {len} bytes: the length must be a power of two from {} to {} bytes",
                Ring::MIN_CAPACITY,
                Ring::MAX_CAPACITY
            ),
            RingError::Misaligned => f.write_str("ring memory must be 8-byte aligned"),
        }
    }
}

/// What producers write: the reservation frontier and the Lost-record duty.
#[derive(Debug)]
struct ProducerSide {
    /// `prod_pos`: end of the last reservation (see the module docs).
    pos: AtomicU64,
    /// Set when an event was dropped and no `Lost` record reports it yet.
    lost_pending: AtomicBool,
}

/// What the consumer writes, once per drain.
#[derive(Debug)]
struct ConsumerSide {
    /// `cons_pos`: everything before it has been drained and zeroed.
    pos: AtomicU64,
    /// The drain try-lock.
    draining: AtomicBool,
    /// Next sequence number to stamp.
    next_seq: AtomicU64,
    /// Events copied out, per kind.
    delivered: [AtomicU64; EVENT_KIND_COUNT],
}

/// Counters producers bump on failure (rare, so they share a line).
#[derive(Debug)]
struct DropCounters {
    per_kind: [AtomicU64; EVENT_KIND_COUNT],
    per_reason: [AtomicU64; DROP_REASON_COUNT],
    lost_records: AtomicU64,
}

/// The bounded multi-producer, single-consumer event ring over caller memory.
///
/// # Invariants
///
/// `data` points to `capacity` bytes, exclusively borrowed for `'a`, 8-byte
/// aligned, `capacity` a power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
/// The byte-range ownership rules of the module documentation hold: a
/// producer writes only inside the slot it claimed, before publishing it;
/// the consumer reads only published slots and writes (zeroes) only
/// `[cons_pos, its new cons_pos)` before releasing it.
#[derive(Debug)]
pub struct Ring<'a> {
    producer: CachePadded<ProducerSide>,
    consumer: CachePadded<ConsumerSide>,
    /// Events reserved or reported, per kind (producers, every event).
    produced: CachePadded<[AtomicU64; EVENT_KIND_COUNT]>,
    drops: CachePadded<DropCounters>,
    tags: TagTable,
    data: NonNull<u8>,
    capacity: usize,
    _memory: PhantomData<&'a mut [u8]>,
}

// SAFETY: the ring owns its memory exclusively for `'a` (it holds the
// `&'a mut [u8]` as a pointer); moving it to another thread moves that
// ownership. Nothing in it is tied to a thread.
unsafe impl Send for Ring<'_> {}
// SAFETY: all shared mutation goes through atomics, and the byte-range
// ownership protocol (type invariants) gives every non-atomic access to the
// memory exactly one accessor at a time, ordered by Release/Acquire pairs.
unsafe impl Sync for Ring<'_> {}

fn bump(counters: &[AtomicU64], index: usize, by: u64) {
    if let Some(counter) = counters.get(index) {
        counter.fetch_add(by, Ordering::Relaxed);
    }
}

fn load_all<const N: usize>(counters: &[AtomicU64; N]) -> [u64; N] {
    let mut values = [0; N];
    for (value, counter) in values.iter_mut().zip(counters) {
        *value = counter.load(Ordering::Relaxed);
    }
    values
}

fn zeroed_counters<const N: usize>() -> [AtomicU64; N] {
    core::array::from_fn(|_| AtomicU64::new(0))
}

impl<'a> Ring<'a> {
    /// Smallest memory accepted (loom models use tiny rings).
    #[cfg(not(loom))]
    pub const MIN_CAPACITY: usize = 4096;
    /// Smallest memory accepted (loom models use tiny rings).
    #[cfg(loom)]
    pub const MIN_CAPACITY: usize = 256;
    /// Largest memory accepted: `DriverStats::ring_capacity` is a `u32`, and
    /// the tag's 32 position bits then tell laps apart for 16 laps.
    pub const MAX_CAPACITY: usize = 1 << 31;

    /// A ring over `memory`, which it zeroes. The length must be a power of
    /// two in `MIN_CAPACITY..=MAX_CAPACITY` and the start 8-byte aligned.
    pub fn new(memory: &'a mut [u8]) -> Result<Self, RingError> {
        let len = memory.len();
        if !len.is_power_of_two() || !(Self::MIN_CAPACITY..=Self::MAX_CAPACITY).contains(&len) {
            return Err(RingError::BadCapacity { len });
        }
        if memory.as_ptr().addr() % 8 != 0 {
            return Err(RingError::Misaligned);
        }
        // INVARIANT: every byte outside `[cons_pos, prod_pos)` (all of them)
        // is zero, so every tag reads free.
        memory.fill(0);
        let data = NonNull::from(memory).cast::<u8>();
        // SAFETY: `data` is 8-byte aligned and valid for `len` bytes for
        // `'a`, which outlives the table (it lives inside the ring).
        let tags = unsafe { TagTable::new(data, len) };
        // INVARIANT: checked above; `_memory` keeps the borrow for `'a`.
        Ok(Ring {
            producer: CachePadded(ProducerSide {
                pos: AtomicU64::new(0),
                lost_pending: AtomicBool::new(false),
            }),
            consumer: CachePadded(ConsumerSide {
                pos: AtomicU64::new(0),
                draining: AtomicBool::new(false),
                next_seq: AtomicU64::new(0),
                delivered: zeroed_counters(),
            }),
            produced: CachePadded(zeroed_counters()),
            drops: CachePadded(DropCounters {
                per_kind: zeroed_counters(),
                per_reason: zeroed_counters(),
                lost_records: AtomicU64::new(0),
            }),
            tags,
            data,
            capacity: len,
            _memory: PhantomData,
        })
    }

    /// Bytes of memory the ring manages (slot tags and padding included).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The offset of position `pos` in the memory.
    #[inline]
    fn offset(&self, pos: u64) -> usize {
        // Truncation is intended: `capacity` is a power of two that fits
        // `usize`, so the low bits are the offset.
        (pos as usize) & self.capacity.wrapping_sub(1)
    }

    /// Reserves space for a record of `len` bytes (rounded up to a multiple
    /// of 8) of an event of `kind`.
    ///
    /// Counts the event as produced; on failure counts it dropped
    /// ([`DropReason::RingFull`], [`DropReason::Contention`], or
    /// [`DropReason::EncodeFailed`] for a `len` outside
    /// `HEADER_SIZE..=MAX_RECORD_SIZE`) and returns the reason. Never blocks;
    /// safe at IRQL <= DISPATCH_LEVEL (atomics only, no allocation).
    ///
    /// If events were dropped since the last `Lost` record, this first writes
    /// one in front of the reservation (and fails if both do not fit).
    pub fn reserve(&self, kind: EventKind, len: usize) -> Result<Reservation<'_>, DropReason> {
        bump(&self.produced.0, kind.index(), 1);
        self.claim(kind, len)
            .inspect_err(|&reason| self.count_drop(kind, reason))
    }

    /// Counts an event that the producer could not even try to reserve for
    /// (IRQL too high, a query failed) as produced and dropped.
    pub fn drop_event(&self, kind: EventKind, reason: DropReason) {
        bump(&self.produced.0, kind.index(), 1);
        self.count_drop(kind, reason);
    }

    /// Counts one dropped event and owes a `Lost` record for it.
    #[cold]
    pub(crate) fn count_drop(&self, kind: EventKind, reason: DropReason) {
        bump(&self.drops.per_kind, kind.index(), 1);
        bump(&self.drops.per_reason, reason.index(), 1);
        // Release pairs with the Acquire swap in `claim`: the producer that
        // takes the duty of writing the `Lost` record sees these counts.
        self.producer.lost_pending.store(true, Ordering::Release);
    }

    fn claim(&self, kind: EventKind, len: usize) -> Result<Reservation<'_>, DropReason> {
        if !(HEADER_SIZE..=MAX_RECORD_SIZE).contains(&len) {
            return Err(DropReason::EncodeFailed);
        }
        // Cannot overflow: len <= MAX_RECORD_SIZE, a multiple of 8.
        let record_len = len.next_multiple_of(8);
        let slot_len = record_len.wrapping_add(TAG_SIZE);

        // Take the duty of writing the owed `Lost` record, if any. The plain
        // load first keeps the common case free of a read-modify-write.
        // Acquire pairs with the Release store in `count_drop`.
        let lost = self.producer.lost_pending.load(Ordering::Relaxed)
            && self.producer.lost_pending.swap(false, Ordering::Acquire);
        let body = if lost {
            slot_len.wrapping_add(LOST_SLOT)
        } else {
            slot_len
        };

        let capacity = self.capacity as u64;
        let mut pos = self.producer.pos.load(Ordering::Relaxed);
        for _ in 0..MAX_CLAIM_TRIES {
            // Acquire pairs with the Release store of `cons_pos` at the end
            // of `drain_into`: the consumer's reads and zeroing of the space
            // we are about to reuse happen before our writes to it.
            let cons = self.consumer.pos.load(Ordering::Acquire);
            let tail = self.capacity.wrapping_sub(self.offset(pos));
            let pad = if body > tail { tail } else { 0 };
            // Cannot overflow: positions stay below 2^64 - 2^32 for centuries.
            let end = pos.wrapping_add(pad as u64).wrapping_add(body as u64);
            let Some(used) = end.checked_sub(cons) else {
                // `pos` is older than the consumer's progress; reload it.
                pos = self.producer.pos.load(Ordering::Relaxed);
                continue;
            };
            if used > capacity {
                return Err(DropReason::RingFull);
            }
            // Relaxed: the CAS only divides space between producers; what
            // the consumer needs is ordered by the tag stores.
            match self
                .producer
                .pos
                .compare_exchange(pos, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    // INVARIANT: `[pos, end)` is now ours alone.
                    let mut at = pos;
                    if pad != 0 {
                        let tag = Tag {
                            state: State::Pad,
                            kind: 0,
                            slot_len: pad,
                        };
                        self.publish(at, tag);
                        at = at.wrapping_add(pad as u64);
                    }
                    if lost {
                        self.write_lost(at);
                        at = at.wrapping_add(LOST_SLOT as u64);
                    }
                    return Ok(Reservation::new(self, at, kind, len, slot_len));
                }
                Err(now) => pos = now,
            }
        }
        Err(DropReason::Contention)
    }

    /// Writes and commits a `Lost` record in the slot at `pos`, which the
    /// caller claimed.
    #[cold]
    fn write_lost(&self, pos: u64) {
        let body = Lost {
            dropped: load_all(&self.drops.per_kind),
        };
        // SAFETY: the caller claimed `[pos, pos + LOST_SLOT)` and has not
        // published it, so nobody else accesses those bytes.
        let buf = unsafe { self.slot_record(pos, LOST_RECORD_SIZE) };
        let state = match encode(buf, Origin::default(), body, &[]) {
            Ok(_) => {
                self.drops.lost_records.fetch_add(1, Ordering::Relaxed);
                State::Committed
            }
            // Cannot happen (the slot is exactly the encoded size); if it
            // did, the consumer skips the slot and the duty stays owed.
            Err(_) => {
                self.producer.lost_pending.store(true, Ordering::Relaxed);
                State::Discarded
            }
        };
        let tag = Tag {
            state,
            kind: KIND_LOST,
            slot_len: LOST_SLOT,
        };
        self.publish(pos, tag);
    }

    /// Publishes the slot at `pos` (committed, discarded or pad); after
    /// this the producer no longer touches it.
    #[inline]
    pub(crate) fn publish(&self, pos: u64, tag: Tag) {
        // Release pairs with the Acquire load of the tag in `drain_into`:
        // everything written into the slot is visible to the consumer that
        // sees the tag.
        self.tags
            .get(self.offset(pos))
            .store(tag.encode(pos), Ordering::Release);
    }

    /// The `len` record bytes of the slot at `pos` (after its tag).
    ///
    /// # Safety
    ///
    /// The caller must have exclusive access to those bytes for the returned
    /// lifetime: it claimed the slot and has not published it, and
    /// `TAG_SIZE + len` does not exceed the slot.
    #[expect(clippy::mut_from_ref, reason = "exclusivity is the caller's contract")]
    pub(crate) unsafe fn slot_record(&self, pos: u64, len: usize) -> &mut [u8] {
        let start = self.offset(pos).wrapping_add(TAG_SIZE);
        self.tags.track_access(start, len);
        // SAFETY: a claimed slot lies within the memory (slots never cross
        // its end), so `start + len <= capacity`; the caller guarantees
        // exclusive access; the memory is valid for `'a` (type invariant).
        unsafe { core::slice::from_raw_parts_mut(self.data.as_ptr().wrapping_add(start), len) }
    }

    /// Copies whole committed records into `out`, back to back (each at a
    /// multiple of 8), stamping [`ringside_wire::RecordHeader::seq`]
    /// (contiguous from 0, `Lost` records included) into the copies, and
    /// returns the bytes written. Stops at the first slot a producer has not
    /// published yet, or when the next record does not fit in `out`.
    ///
    /// One consumer at a time: if another drain is running it returns 0.
    pub fn drain_into(&self, out: &mut [u8]) -> usize {
        // Acquire pairs with the Release store that ends the previous drain:
        // its `cons_pos`, `next_seq` and zeroing happen before ours.
        if self.consumer.draining.swap(true, Ordering::Acquire) {
            return 0;
        }
        // Relaxed: only the lock holder writes `cons_pos` and `next_seq`.
        let start = self.consumer.pos.load(Ordering::Relaxed);
        // Relaxed: only a bound; each slot's tag says whether it is ready.
        let end = self.producer.pos.load(Ordering::Relaxed);
        let mut seq = self.consumer.next_seq.load(Ordering::Relaxed);
        let mut delivered = [0u64; EVENT_KIND_COUNT];
        let mut pos = start;
        let mut written = 0usize;

        // Bounded: `pos` grows by at least 8 per slot and stops at `end`,
        // at most `capacity` bytes past `start`.
        while pos < end {
            let offset = self.offset(pos);
            let cell = self.tags.get(offset);
            // Acquire pairs with the Release store in `publish`: the slot's
            // bytes are visible before we copy them.
            let Some(tag) = Tag::decode(cell.load(Ordering::Acquire), pos) else {
                break; // not published yet
            };
            let room = self
                .capacity
                .wrapping_sub(offset)
                .min(usize::try_from(end.wrapping_sub(pos)).unwrap_or(usize::MAX));
            if tag.slot_len < TAG_SIZE || tag.slot_len > room {
                break; // impossible for a tag this ring wrote; never trust it
            }
            let record_len = tag.slot_len.wrapping_sub(TAG_SIZE);
            if tag.state == State::Committed {
                let Some(dest) = out.get_mut(written..written.saturating_add(record_len)) else {
                    break; // the caller's buffer is full
                };
                // SAFETY: the slot is published and the consumer (us, under
                // the drain lock) owns it until `cons_pos` moves past it; no
                // producer writes it again before that.
                let src = unsafe { self.slot_record(pos, record_len) };
                // Equal by construction, but `saturating_add` above keeps the
                // compiler from proving it; without this check the release
                // ringside.sys keeps a reachable panic (the binary gate
                // rejects its KeBugCheckEx import).
                if dest.len() == src.len() {
                    dest.copy_from_slice(src);
                }
                if let Some(stamp) = dest.get_mut(HEADER_SEQ_OFFSET..HEADER_SEQ_OFFSET + 8) {
                    stamp.copy_from_slice(&seq.to_le_bytes());
                }
                seq = seq.wrapping_add(1);
                if let Some(count) = delivered.get_mut(usize::from(tag.kind)) {
                    *count = count.wrapping_add(1);
                }
                written = written.wrapping_add(record_len);
            }
            if tag.state != State::Pad {
                // A pad's body was never written; every other body is zeroed
                // so a future slot tag can never be mistaken for old data.
                // SAFETY: as above, the published slot is ours until we
                // release it.
                unsafe { self.slot_record(pos, record_len) }.fill(0);
            }
            // Relaxed: ordered before any reuse by the Release store of
            // `cons_pos` below.
            cell.store(0, Ordering::Relaxed);
            pos = pos.wrapping_add(tag.slot_len as u64);
        }

        if pos != start {
            self.consumer.next_seq.store(seq, Ordering::Relaxed);
            for (kind, count) in delivered.iter().enumerate() {
                if *count != 0 {
                    bump(&self.consumer.delivered, kind, *count);
                }
            }
            // Release pairs with the Acquire load of `cons_pos` in `claim`
            // (and in `pending_bytes`): our reads and zeroing of
            // `[start, pos)` happen before a producer reuses it.
            self.consumer.pos.store(pos, Ordering::Release);
        }
        // Release pairs with the Acquire swap that starts the next drain.
        self.consumer.draining.store(false, Ordering::Release);
        written
    }

    /// Bytes reserved or committed and not yet drained (slot tags, padding
    /// and `Lost` records included): what a READ could pick up soon.
    pub fn pending_bytes(&self) -> usize {
        // Acquire pairs with the Release store of `cons_pos` in
        // `drain_into`: the `prod_pos` the consumer had seen is visible, so
        // `prod_pos >= cons_pos` in what we read.
        let cons = self.consumer.pos.load(Ordering::Acquire);
        let prod = self.producer.pos.load(Ordering::Relaxed);
        usize::try_from(prod.saturating_sub(cons)).unwrap_or(usize::MAX)
    }

    /// The counters, as of roughly now (each is read atomically, the set is
    /// not a snapshot while producers run). `reads_completed`,
    /// `reads_pending` and `consumer_connected` are the driver's to fill.
    pub fn stats(&self) -> DriverStats {
        DriverStats {
            produced: load_all(&self.produced.0),
            delivered: load_all(&self.consumer.delivered),
            dropped: load_all(&self.drops.per_kind),
            dropped_by_reason: load_all(&self.drops.per_reason),
            lost_records: self.drops.lost_records.load(Ordering::Relaxed),
            next_seq: self.consumer.next_seq.load(Ordering::Relaxed),
            ring_capacity: u32::try_from(self.capacity).unwrap_or(u32::MAX),
            ring_used: u32::try_from(self.pending_bytes()).unwrap_or(u32::MAX),
            ..DriverStats::default()
        }
    }
}
