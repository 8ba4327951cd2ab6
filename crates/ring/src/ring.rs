//! The ring itself: producers reserve and publish slots, one consumer at a
//! time drains committed records out, and every event is counted.
//!
//! # Layout and positions
//!
//! The caller's memory (`capacity` bytes, a power of two) holds slots back to
//! back. A slot is an 8-byte tag word (`tag.rs`) followed by one
//! record rounded up to 8 bytes; a slot never crosses the end of the memory:
//! a producer whose slot does not fit in the tail claims the tail too and
//! marks it `State::Pad` (a tail is always a multiple of 8, so it always
//! holds a tag).
//!
//! `prod_pos` and `cons_pos` are byte positions that only grow (a `u64` of
//! bytes does not wrap in the life of a machine); a position's offset in the
//! memory is `pos & (capacity - 1)`. Invariant: `cons_pos <= prod_pos <=
//! cons_pos + capacity`, and both are multiples of 8. `[cons_pos, prod_pos)`
//! is a chain of slots whose tags were all written in this lap *before*
//! `prod_pos` moved past them: each says busy (still owned by the producer
//! that reserved it), committed, discarded, or pad. Bytes outside that range
//! are never interpreted, whatever an earlier lap left there.
//!
//! # Lanes
//!
//! The memory may be split into 1..=[`MAX_LANES`] equal *lanes* (a power of
//! two of them), each a ring of its own with its own `prod_pos` and
//! `cons_pos`; everything below describes one lane. A lane is reserved in
//! one of two ways, never both at once:
//!
//! - **shared** ([`Ring::reserve`], [`Ring::reserve_in`]): any producer on
//!   any thread, under the lane's reservation try-lock (below);
//! - **exclusive** ([`Ring::claim`] → [`Producer`], or
//!   [`Ring::reserve_exclusive`]): one producer at a time by contract, so
//!   the reservation takes no lock and does no read-modify-write at all —
//!   the per-CPU scheme of perf buffers and ETW. The driver gives each CPU
//!   its own lane and reserves at DISPATCH_LEVEL, where nothing else runs
//!   on that CPU. A claimed lane holds its lock for the claim's lifetime, so
//!   a shared reservation there fails (`Contention`) instead of racing.
//!
//! The consumer drains the lanes in turn, starting one lane further each
//! drain, and stamps one sequence of numbers across all of them: records
//! of one lane keep their order; records of different lanes interleave by
//! drain, not by time (the header's timestamp orders them).
//!
//! # Producers (the scheme of the Linux BPF ring buffer)
//!
//! Reserving is a critical section of a handful of instructions under a
//! try-lock (`ProducerSide::locked`), taken with at most [`MAX_CLAIM_TRIES`]
//! spins; a producer that cannot take it drops the event as
//! [`DropReason::Contention`]. Under the lock it checks the space against
//! its cached copy of `cons_pos` (reloading the real one only when the cache
//! says full), writes the tag of every slot it claims (busy, or pad),
//! Release-stores the new `prod_pos`, and unlocks. It then owns its slot
//! exclusively, writes it, and publishes it with one Release store of the
//! tag (committed or discarded) — no lock. A producer that is slow between
//! reserve and commit only makes the consumer stop at its slot; other
//! producers wait only for the short reservation section.
//!
//! # Consumer
//!
//! `drain_into` takes a try-lock, Acquire-loads `prod_pos`, walks the slots
//! from `cons_pos`, copies committed records out with one copy each (and
//! stamps the sequence number into the copy), and stops at the first busy
//! slot, at `prod_pos`, or when the output is full. It then returns the
//! space with one Release store of `cons_pos`. It writes nothing into the
//! ring: there is no second pass over the memory.
//!
//! # Orderings
//!
//! | Release (writer)                         | Acquire (reader)                        | Orders |
//! |------------------------------------------|-----------------------------------------|--------|
//! | unlock in `unlock_reservations` (shared lanes) | lock in `lock_reservations` | `prod_pos`, cached `cons_pos`, reserved counts, tags between producers of a lane |
//! | `prod_pos` store in `claim_space`        | `prod_pos` load in `drain_lane`         | busy/pad tags of every slot below it |
//! | tag store in `publish` (commit/discard)  | tag load in `drain_lane`                | the record's bytes |
//! | `cons_pos` store in `drain_lane`         | `cons_pos` reload in `claim_space`      | the consumer's reads before the space is reused |
//! | `lost_pending` swap in `owe_lost` (every mark a swap, so each continues the release sequences before it) | `lost_pending` swap in `try_claim_slot` | the drop counts a `Lost` record reports |
//! | drain unlock in `drain_into`             | drain lock in `drain_into`              | `cons_pos`, `next_seq`, delivered counts between drains |

use core::marker::PhantomData;
use core::ptr::NonNull;

use ringside_wire::kind::DROP_REASON_COUNT;
use ringside_wire::{
    DriverStats, DropReason, EVENT_KIND_COUNT, EventKind, HEADER_SEQ_OFFSET, HEADER_SIZE, Lost,
    MAX_RECORD_SIZE, Origin, encode,
};

use crate::reservation::Reservation;
use crate::sync::{AtomicBool, AtomicU64, CachePadded, Ordering, TagTable, spin_hint};
use crate::tag::{KIND_LOST, State, TAG_SIZE, Tag};

/// How many times a producer tries to take the reservation lock before it
/// gives up and drops the event as [`DropReason::Contention`]. The lock is
/// held for a handful of instructions by a producer that cannot be
/// preempted (DISPATCH_LEVEL, see [`Ring`]), so a wait longer than this
/// many spins means an interrupt landed in the section or a great many
/// CPUs are reserving at once; dropping (and counting) then bounds the time
/// a callback can spend here.
#[cfg(not(loom))]
pub const MAX_CLAIM_TRIES: u32 = 128;
/// How many times a producer tries to take the reservation lock (loom:
/// small, so the models reach the contention drop).
#[cfg(loom)]
pub const MAX_CLAIM_TRIES: u32 = 2;

/// Most lanes a ring can have (one per CPU in the driver; a machine with
/// more CPUs shares lanes under their locks).
#[cfg(not(loom))]
pub const MAX_LANES: usize = 64;
/// Most lanes a ring can have (loom: two, for the models).
#[cfg(loom)]
pub const MAX_LANES: usize = 2;

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
    /// The lane count is not a power of two in `1..=MAX_LANES`, or leaves a
    /// lane smaller than `Ring::MIN_CAPACITY`.
    BadLanes { lanes: usize },
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
            RingError::BadLanes { lanes } => write!(
                f,
                "{lanes} lanes: the count must be a power of two from 1 to {MAX_LANES}, \
                 each lane at least {} bytes",
                Ring::MIN_CAPACITY
            ),
        }
    }
}

/// What a lane's producers write in their reservation section (in the
/// lane's first cache line).
#[derive(Debug)]
struct ProducerSide {
    /// The reservation lock (see the module docs); held for good by a claim.
    locked: AtomicBool,
    /// `prod_pos`: end of the last reservation. Written only by the one
    /// reserving producer (lock holder or exclusive owner).
    pos: AtomicU64,
    /// A `cons_pos` the consumer has published (at most the current one),
    /// so a reservation need not read the consumer's line while the cache
    /// says there is room. Accessed only by the reserving producer.
    cons_cache: AtomicU64,
    /// Events that got space, per kind. Written only by the reserving
    /// producer (a plain load and store, no read-modify-write).
    reserved: [AtomicU64; EVENT_KIND_COUNT],
    /// The producers' copy of the lane's layout.
    memory: LaneMemory,
}

/// What the consumer writes in a lane (in the lane's second cache line).
#[derive(Debug)]
struct DrainSide {
    /// `cons_pos`: everything before it has been drained. Written only by
    /// the consumer (under the drain lock).
    consumed: AtomicU64,
    /// The consumer's copy of the lane's layout.
    memory: LaneMemory,
}

/// Where a lane's bytes are; never changes after `Ring::new`.
///
/// Each side of a lane keeps its own copy on its own cache line. The
/// consumer reads the layout once per record it copies out; were that a
/// read of the producers' line, which every reservation writes, the line
/// would cross between the two CPUs once per record.
///
/// # Invariants
///
/// `data` points to `capacity` bytes owned by the ring, 8-byte aligned,
/// `capacity` a power of two (0 for a lane the ring does not use, which is
/// never accessed); `tags` is the table over those bytes.
#[derive(Clone, Debug)]
struct LaneMemory {
    tags: TagTable,
    data: NonNull<u8>,
    capacity: usize,
}

/// One lane: a ring of its own over a part of the memory. Its first cache
/// lines hold what the reserving producer writes, the next what the
/// consumer writes, each with its own copy of the layout. With nine event
/// kinds the producer side fit one 128-byte line (256 bytes a lane); the
/// tenth kind's `reserved` counter pushes it to 136 bytes, so it takes two
/// lines and a lane is 384 bytes (the driver's 64 lanes cost 24 KiB, not
/// 16). The two sides still never share a line.
#[derive(Debug)]
#[repr(C, align(128))]
pub(crate) struct Lane {
    producer: ProducerSide,
    drain: CachePadded<DrainSide>,
}

// The layout the doc above promises (the driver's globals hold 64 lanes).
#[cfg(all(not(loom), target_pointer_width = "64"))]
const _: () = assert!(core::mem::size_of::<Lane>() == 384);

/// Where a lane keeps its producer state, for tools that watch a ring in
/// memory they did not build (the kernel model checks that the driver
/// writes it only inside the reservation's raised-IRQL window).
#[cfg(not(loom))]
pub mod lane_layout {
    use core::mem::{offset_of, size_of};

    use super::{DrainSide, Lane, LaneMemory, ProducerSide};

    /// Bytes from one lane to the next (`Ring::lanes` is an array).
    pub const LANE_SIZE: usize = size_of::<Lane>();
    /// The producer state: `[PRODUCER_OFFSET, PRODUCER_OFFSET + PRODUCER_SIZE)`
    /// of a lane, written only by reservations.
    pub const PRODUCER_OFFSET: usize = offset_of!(Lane, producer);
    pub const PRODUCER_SIZE: usize = size_of::<ProducerSide>();
    /// The producer's copy of the lane's data pointer (lane `i` of a ring
    /// over memory `m` with lanes of `c` bytes holds `m + i * c` here): how
    /// a tool finds the lanes.
    pub const PRODUCER_DATA_POINTER: usize = offset_of!(Lane, producer)
        + offset_of!(ProducerSide, memory)
        + offset_of!(LaneMemory, data);
    /// The consumer's copy of the same pointer (both copies hold it).
    pub const DRAIN_DATA_POINTER: usize = offset_of!(Lane, drain)
        + offset_of!(crate::sync::CachePadded<DrainSide>, 0)
        + offset_of!(DrainSide, memory)
        + offset_of!(LaneMemory, data);
}

// SAFETY: as for `Ring` (a lane is a part of one): its shared state is
// atomics, and its memory is accessed under the byte-range ownership
// protocol of the module documentation.
unsafe impl Sync for Lane {}
// SAFETY: nothing in a lane is tied to a thread.
unsafe impl Send for Lane {}

/// What the consumer writes, once per drain.
#[derive(Debug)]
struct ConsumerSide {
    /// The drain try-lock.
    draining: AtomicBool,
    /// Next sequence number to stamp.
    next_seq: AtomicU64,
    /// The lane the next drain starts with (round robin).
    first_lane: AtomicU64,
    /// Events copied out, per kind. Written only under the drain lock.
    delivered: [AtomicU64; EVENT_KIND_COUNT],
}

/// Counters producers bump on failure (rare, so they share a line), and the
/// Lost-record duty that every reservation glances at.
#[derive(Debug)]
struct DropCounters {
    /// Set when an event was dropped and no `Lost` record reports it yet.
    lost_pending: AtomicBool,
    /// Events that never got space (dropped before or at reserve), per kind.
    unreserved: [AtomicU64; EVENT_KIND_COUNT],
    per_kind: [AtomicU64; EVENT_KIND_COUNT],
    per_reason: [AtomicU64; DROP_REASON_COUNT],
    lost_records: AtomicU64,
}

/// The bounded multi-producer, single-consumer event ring over caller memory.
///
/// # Shared reservations run at DISPATCH_LEVEL
///
/// [`Ring::reserve`] holds a spin lock (try-acquire, bounded) for a few
/// instructions. The driver calls it at DISPATCH_LEVEL (raising IRQL around
/// the call if the callback runs lower), so the holder cannot be preempted
/// by a thread that then spins for it; an interrupt may still delay it,
/// which is why the spin is bounded and ends in a
/// [`DropReason::Contention`] drop. The *writing* of a record, between
/// `reserve` and `commit`, holds no lock and may run at any IRQL the data
/// allows (encoding from paged memory needs < DISPATCH_LEVEL): a writer
/// that is preempted there delays only the consumer, never other producers.
/// In user mode (tests, benches) the same code is correct, but a holder can
/// be preempted, so a contending producer may drop more often. Exclusive
/// lanes ([`Ring::reserve_exclusive`]) have no lock to wait for.
///
/// # Invariants
///
/// The lanes `0..lane_count` split `capacity` bytes, exclusively borrowed
/// for `'a`, into equal parts (each a power of two of at least
/// `MIN_CAPACITY`), `lane_count` a power of two in `1..=MAX_LANES`. The
/// byte-range ownership rules of the module documentation hold in every
/// lane: a producer writes tags only in its reservation section for slots
/// it is claiming, and record bytes only inside the slot it claimed, before
/// publishing it; the consumer reads only published slots below the
/// `prod_pos` it loaded and writes nothing in the memory.
#[derive(Debug)]
pub struct Ring<'a> {
    lanes: [Lane; MAX_LANES],
    lane_count: usize,
    consumer: CachePadded<ConsumerSide>,
    drops: CachePadded<DropCounters>,
    capacity: usize,
    _memory: PhantomData<&'a mut [u8]>,
}

// SAFETY: the ring owns its memory exclusively for `'a` (it holds the
// `&'a mut [u8]` as pointers); moving it to another thread moves that
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

/// Adds `by` to a counter that only one writer at a time updates: a plain
/// load and store, no read-modify-write (readers take any value).
fn add_owned(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
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

/// A lane claimed for one producer: reservations take no lock and do no
/// read-modify-write. Releases the lane when dropped.
///
/// # Invariants
///
/// `ring.lane(lane)`'s reservation lock is held by this handle, so no
/// shared reservation enters the lane, and `&mut self` makes its
/// reservations one at a time.
#[derive(Debug)]
pub struct Producer<'r> {
    ring: &'r Ring<'r>,
    lane: usize,
}

impl<'r> Producer<'r> {
    /// Like [`Ring::reserve`], in this producer's own lane.
    pub fn reserve(&mut self, kind: EventKind, len: usize) -> Result<Reservation<'r>, DropReason> {
        // SAFETY: the claim keeps shared reservations out of the lane and
        // `&mut self` keeps this handle's reservations apart (invariants).
        unsafe { self.ring.reserve_exclusive(self.lane, kind, len) }
    }

    /// Bytes reserved or committed in this lane and not yet drained.
    pub fn pending_bytes(&self) -> usize {
        self.ring.lane(self.lane).pending_bytes()
    }
}

impl Drop for Producer<'_> {
    fn drop(&mut self) {
        self.ring.lane(self.lane).unlock_reservations();
    }
}

impl Lane {
    /// A lane over `capacity` bytes at `data` (which the caller made
    /// satisfy the invariants).
    fn new(data: NonNull<u8>, capacity: usize) -> Lane {
        // SAFETY: the caller guarantees `data` is 8-byte aligned and valid
        // for `capacity` bytes while the ring lives, which outlives the
        // table (it lives inside the lane).
        let tags = unsafe { TagTable::new(data, capacity) };
        // INVARIANT: as the caller guaranteed, for both copies.
        let memory = LaneMemory {
            tags,
            data,
            capacity,
        };
        Lane {
            producer: ProducerSide {
                locked: AtomicBool::new(false),
                pos: AtomicU64::new(0),
                cons_cache: AtomicU64::new(0),
                reserved: zeroed_counters(),
                memory: memory.clone(),
            },
            drain: CachePadded(DrainSide {
                consumed: AtomicU64::new(0),
                memory,
            }),
        }
    }

    /// Takes the reservation lock, spinning at most [`MAX_CLAIM_TRIES`]
    /// times; `false` if it could not.
    #[inline]
    fn lock_reservations(&self) -> bool {
        let locked = &self.producer.locked;
        for _ in 0..MAX_CLAIM_TRIES {
            // The plain load keeps waiters from bouncing the line with
            // writes. Acquire on the swap pairs with the Release store in
            // `unlock_reservations`: the previous holder's `prod_pos`,
            // cached `cons_pos`, counts and tags happen before our section.
            if !locked.load(Ordering::Relaxed) && !locked.swap(true, Ordering::Acquire) {
                return true;
            }
            spin_hint();
        }
        false
    }

    #[inline]
    fn unlock_reservations(&self) {
        // Release pairs with the Acquire swap in `lock_reservations`.
        self.producer.locked.store(false, Ordering::Release);
    }

    /// Stores the tag of a slot being claimed, in the reservation section;
    /// returns the tag word.
    #[inline]
    fn stamp(&self, pos: u64, state: State, kind: u8, slot_len: usize) -> &AtomicU64 {
        let tag = Tag {
            state,
            kind,
            slot_len,
        };
        // Relaxed: published to the consumer by the Release store of
        // `prod_pos` that follows, and ordered after the consumer's reads
        // of the previous lap by the Acquire of `cons_pos` (directly or
        // through the lock, when the cached value was loaded by an earlier
        // holder).
        let word = self.producer.memory.tag_word(pos);
        word.store(tag.encode(pos), Ordering::Relaxed);
        word
    }

    /// The reservation section: claims `[pos, end)` for an optional pad, an
    /// optional `Lost` slot and the event's slot, stamps their tags busy
    /// (pad: pad) and publishes `prod_pos`. Returns the position of the
    /// `Lost` slot (if `lost`) and of the event's slot, and the event slot's
    /// tag word.
    ///
    /// The caller is the only producer in this section for this lane (lock
    /// holder or exclusive owner); `body` is `slot_len` plus `LOST_SLOT` if
    /// `lost`.
    #[inline(always)]
    fn claim_space(
        &self,
        kind: EventKind,
        slot_len: usize,
        body: usize,
        lost: bool,
    ) -> Result<(u64, u64, &AtomicU64), DropReason> {
        let memory = &self.producer.memory;
        // Relaxed: only the reserving producer writes `prod_pos`, ordered
        // by the lock or by the exclusive owner's program order.
        let pos = self.producer.pos.load(Ordering::Relaxed);
        let tail = memory.capacity.wrapping_sub(memory.offset(pos));
        let pad = if body > tail { tail } else { 0 };
        // Cannot overflow: positions stay below 2^64 - 2^32 for centuries.
        let end = pos.wrapping_add(pad as u64).wrapping_add(body as u64);
        // The slot fits if `end - cons_pos <= capacity`.
        let needed = end.saturating_sub(memory.capacity as u64);
        // Relaxed: only the reserving producer accesses the cache.
        let mut room = self.producer.cons_cache.load(Ordering::Relaxed) >= needed;
        if !room {
            // Acquire pairs with the Release store of `cons_pos` at the end
            // of `drain_lane`: the consumer's reads of the space we are
            // about to reuse happen before our writes to it (ours, and
            // through the lock those of later holders that trust the cache).
            let cons = self.drain.consumed.load(Ordering::Acquire);
            self.producer.cons_cache.store(cons, Ordering::Relaxed);
            room = cons >= needed;
        }
        if !room {
            return Err(DropReason::RingFull);
        }
        let mut at = pos;
        if pad != 0 {
            let _ = self.stamp(at, State::Pad, 0, pad);
            at = at.wrapping_add(pad as u64);
        }
        let lost_at = at;
        if lost {
            let _ = self.stamp(at, State::Busy, KIND_LOST, LOST_SLOT);
            at = at.wrapping_add(LOST_SLOT as u64);
        }
        let tag = self.stamp(at, State::Busy, kind.index() as u8, slot_len);
        if let Some(count) = self.producer.reserved.get(kind.index()) {
            add_owned(count, 1);
        }
        // Release pairs with the Acquire load of `prod_pos` in `drain_lane`:
        // the tags stamped above are visible to a consumer that walks up to
        // `end`, so it never reads a tag left over from an earlier lap.
        self.producer.pos.store(end, Ordering::Release);
        Ok((lost_at, at, tag))
    }

    /// Publishes the slot at `pos` (committed or discarded), replacing its
    /// busy tag; after this the producer no longer touches it.
    #[inline]
    pub(crate) fn publish(&self, pos: u64, tag: Tag) {
        // Release pairs with the Acquire load of the tag in `drain_lane`:
        // everything written into the slot is visible to the consumer that
        // sees the tag.
        self.producer
            .memory
            .tag_word(pos)
            .store(tag.encode(pos), Ordering::Release);
    }

    /// The `len` record bytes of the slot at `pos` (after its tag), for
    /// the producer that claimed it.
    ///
    /// # Safety
    ///
    /// As [`LaneMemory::slot_record`].
    #[expect(clippy::mut_from_ref, reason = "exclusivity is the caller's contract")]
    pub(crate) unsafe fn slot_record(&self, pos: u64, len: usize) -> &mut [u8] {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.producer.memory.slot_record(pos, len) }
    }

    /// Bytes reserved or committed and not yet drained in this lane.
    fn pending_bytes(&self) -> usize {
        usize::try_from(self.pending_u64()).unwrap_or(usize::MAX)
    }

    #[inline]
    fn pending_u64(&self) -> u64 {
        // Acquire pairs with the Release store of `cons_pos` in
        // `drain_lane`: the `prod_pos` the consumer had seen is visible, so
        // `prod_pos >= cons_pos` in what we read (and the difference is at
        // most the lane's capacity).
        let cons = self.drain.consumed.load(Ordering::Acquire);
        let prod = self.producer.pos.load(Ordering::Relaxed);
        prod.saturating_sub(cons)
    }

    /// Bytes between the consumer and `end`, a position this producer
    /// reserved up to (so at most the lane's capacity ahead of `cons_pos`).
    #[inline]
    pub(crate) fn pending_bytes_before(&self, end: u64) -> usize {
        // Relaxed: a hint for batching; the consumer only moves forward, so
        // a stale value overstates the backlog, never understates it.
        let cons = self.drain.consumed.load(Ordering::Relaxed);
        usize::try_from(end.saturating_sub(cons)).unwrap_or(usize::MAX)
    }
}

impl LaneMemory {
    /// The offset of position `pos` in the lane's memory.
    #[inline]
    fn offset(&self, pos: u64) -> usize {
        // Truncation is intended: `capacity` is a power of two that fits
        // `usize`, so the low bits are the offset.
        (pos as usize) & self.capacity.wrapping_sub(1)
    }

    /// The tag word of the slot at `pos`.
    #[inline]
    fn tag_word(&self, pos: u64) -> &AtomicU64 {
        // The table wraps any value into the lane (its length is the lane's
        // capacity), so the position's low bits need no masking here.
        self.tags.get(pos as usize)
    }

    /// The `len` record bytes of the slot at `pos` (after its tag).
    ///
    /// # Safety
    ///
    /// The caller must have exclusive access to those bytes for the returned
    /// lifetime (it claimed the slot and has not published it, or it is the
    /// consumer and the slot is published and not yet drained), and
    /// `TAG_SIZE + len` does not exceed the slot.
    #[expect(clippy::mut_from_ref, reason = "exclusivity is the caller's contract")]
    unsafe fn slot_record(&self, pos: u64, len: usize) -> &mut [u8] {
        let start = self.offset(pos).wrapping_add(TAG_SIZE);
        self.tags.track_access(start, len);
        // SAFETY: a claimed slot lies within the lane (slots never cross its
        // end), so `start + len <= capacity`; the caller guarantees
        // exclusive access; the memory is valid while the ring lives (type
        // invariant).
        unsafe { core::slice::from_raw_parts_mut(self.data.as_ptr().wrapping_add(start), len) }
    }
}

/// What a drain carries from lane to lane.
struct Drain<'o> {
    out: &'o mut [u8],
    written: usize,
    seq: u64,
    delivered: [u64; EVENT_KIND_COUNT],
}

impl<'a> Ring<'a> {
    /// Smallest memory accepted, and smallest lane (loom models use tiny
    /// rings).
    #[cfg(not(loom))]
    pub const MIN_CAPACITY: usize = 4096;
    /// Smallest memory accepted, and smallest lane (loom models use tiny
    /// rings).
    #[cfg(loom)]
    pub const MIN_CAPACITY: usize = 256;
    /// Largest memory accepted: `DriverStats::ring_capacity` is a `u32`, and
    /// the tag's 32 position bits then tell laps apart for 16 laps.
    pub const MAX_CAPACITY: usize = 1 << 31;

    /// A ring of one lane over `memory`; see [`Ring::with_lanes`].
    pub fn new(memory: &'a mut [u8]) -> Result<Self, RingError> {
        Self::with_lanes(memory, 1)
    }

    /// A ring over `memory` split into `lanes` equal lanes, which it zeroes
    /// (correctness does not depend on it; nothing stale is ever read). The
    /// length must be a power of two in `MIN_CAPACITY..=MAX_CAPACITY`, the
    /// start 8-byte aligned, and `lanes` a power of two in `1..=MAX_LANES`
    /// that leaves each lane at least `MIN_CAPACITY` bytes.
    ///
    /// The ring is a few hundred bytes per possible lane; a kernel stack
    /// cannot take it by value: the driver uses [`Ring::init_in`].
    pub fn with_lanes(memory: &'a mut [u8], lanes: usize) -> Result<Self, RingError> {
        let mut slot = core::mem::MaybeUninit::uninit();
        Self::init_in(&mut slot, memory, lanes)?;
        // SAFETY: `init_in` returned Ok, so it initialised every field.
        Ok(unsafe { slot.assume_init() })
    }

    /// [`Ring::with_lanes`], built in place in `slot` (no copy of the ring
    /// on the stack). On error `slot` is left as it was.
    pub fn init_in<'s>(
        slot: &'s mut core::mem::MaybeUninit<Ring<'a>>,
        memory: &'a mut [u8],
        lanes: usize,
    ) -> Result<&'s mut Ring<'a>, RingError> {
        let len = memory.len();
        if !len.is_power_of_two() || !(Self::MIN_CAPACITY..=Self::MAX_CAPACITY).contains(&len) {
            return Err(RingError::BadCapacity { len });
        }
        if memory.as_ptr().addr() % 8 != 0 {
            return Err(RingError::Misaligned);
        }
        let lane_len = len.checked_div(lanes).unwrap_or(0);
        if !lanes.is_power_of_two() || lanes > MAX_LANES || lane_len < Self::MIN_CAPACITY {
            return Err(RingError::BadLanes { lanes });
        }
        // Not needed for the protocol (tags are only read below `prod_pos`);
        // it keeps whatever the memory held before out of the ring.
        memory.fill(0);
        let base = NonNull::from(memory).cast::<u8>();
        let ring = slot.as_mut_ptr();
        // INVARIANT: lane `i` gets `[i * lane_len, (i + 1) * lane_len)`, a
        // power of two of at least MIN_CAPACITY bytes at a multiple of 8
        // (checked above); lanes past `lanes` get nothing and are never
        // used; `_memory` keeps the borrow for `'a`.
        for i in 0..MAX_LANES {
            let lane = if i < lanes {
                let start = base.as_ptr().wrapping_add(i.wrapping_mul(lane_len));
                // Never null: `start` is inside the caller's memory.
                Lane::new(NonNull::new(start).unwrap_or(base), lane_len)
            } else {
                Lane::new(NonNull::dangling(), 0)
            };
            #[expect(
                clippy::multiple_unsafe_ops_per_block,
                reason = "one in-place write: project to the field, offset, write"
            )]
            // SAFETY: `ring` points to writable (uninitialised) memory for a
            // `Ring`, and `i < MAX_LANES`, the length of its `lanes` array;
            // writing does not read or drop the old bytes.
            unsafe {
                core::ptr::addr_of_mut!((*ring).lanes)
                    .cast::<Lane>()
                    .add(i)
                    .write(lane)
            };
        }
        #[expect(
            clippy::multiple_unsafe_ops_per_block,
            reason = "the remaining fields, each projected and written in place once"
        )]
        // SAFETY: as above, for each remaining field, written once.
        unsafe {
            core::ptr::addr_of_mut!((*ring).lane_count).write(lanes);
            core::ptr::addr_of_mut!((*ring).consumer).write(CachePadded(ConsumerSide {
                draining: AtomicBool::new(false),
                next_seq: AtomicU64::new(0),
                first_lane: AtomicU64::new(0),
                delivered: zeroed_counters(),
            }));
            core::ptr::addr_of_mut!((*ring).drops).write(CachePadded(DropCounters {
                lost_pending: AtomicBool::new(false),
                unreserved: zeroed_counters(),
                per_kind: zeroed_counters(),
                per_reason: zeroed_counters(),
                lost_records: AtomicU64::new(0),
            }));
            core::ptr::addr_of_mut!((*ring).capacity).write(len);
            core::ptr::addr_of_mut!((*ring)._memory).write(PhantomData);
        }
        // SAFETY: every field was written above.
        Ok(unsafe { slot.assume_init_mut() })
    }

    /// Bytes of memory the ring manages (slot tags and padding included).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many lanes the memory is split into.
    pub fn lanes(&self) -> usize {
        self.lane_count
    }

    /// Lane `index`, wrapped into `0..lanes()` (any index is a lane).
    #[inline]
    pub(crate) fn lane(&self, index: usize) -> &Lane {
        // `lane_count <= MAX_LANES`, both powers of two: the second mask
        // changes nothing but lets the compiler see the index is in bounds,
        // so the fallback (and any panic path) is compiled away.
        let index = index & self.lane_count.wrapping_sub(1) & (MAX_LANES - 1);
        match self.lanes.get(index) {
            Some(lane) => lane,
            None => &self.lanes[0],
        }
    }

    /// Reserves space in lane 0 for a record of `len` bytes (rounded up to
    /// a multiple of 8) of an event of `kind`; see [`Ring::reserve_in`].
    pub fn reserve(&self, kind: EventKind, len: usize) -> Result<Reservation<'_>, DropReason> {
        self.reserve_in(0, kind, len)
    }

    /// Reserves space in lane `lane` (wrapped into `0..lanes()`), shared
    /// with any other producer of that lane under its reservation lock.
    ///
    /// Counts the event as produced; on failure counts it dropped
    /// ([`DropReason::RingFull`], [`DropReason::Contention`] — the lock
    /// stayed taken, or the lane is claimed — or
    /// [`DropReason::EncodeFailed`] for a `len` outside
    /// `HEADER_SIZE..=MAX_RECORD_SIZE`) and returns the reason. Never blocks
    /// beyond a bounded spin; call it at DISPATCH_LEVEL (see [`Ring`]; atomics
    /// only, no allocation).
    ///
    /// If events were dropped since the last `Lost` record, this first writes
    /// one in front of the reservation (and fails if both do not fit).
    #[inline]
    pub fn reserve_in(
        &self,
        lane: usize,
        kind: EventKind,
        len: usize,
    ) -> Result<Reservation<'_>, DropReason> {
        self.claim_slot(self.lane(lane), kind, len, true)
    }

    /// Reserves space in lane `lane` (wrapped into `0..lanes()`) without a
    /// lock or any read-modify-write: otherwise as [`Ring::reserve_in`].
    ///
    /// # Safety
    ///
    /// No other reservation of the same lane may run concurrently with this
    /// call: neither a shared one ([`Ring::reserve_in`], [`Ring::reserve`]
    /// for lane 0) nor another exclusive one, and successive exclusive ones
    /// must be ordered (same thread, or synchronised). The driver meets this
    /// by reserving lane *n* only on CPU *n* at DISPATCH_LEVEL and never
    /// sharing a lane it reserves exclusively; [`Producer`] meets it with a
    /// claim.
    #[inline(always)]
    pub unsafe fn reserve_exclusive(
        &self,
        lane: usize,
        kind: EventKind,
        len: usize,
    ) -> Result<Reservation<'_>, DropReason> {
        self.claim_slot(self.lane(lane), kind, len, false)
    }

    /// Claims lane `lane` (wrapped into `0..lanes()`) for one producer, or
    /// `None` if another claim or a shared reservation holds it right now.
    pub fn claim(&self, lane: usize) -> Option<Producer<'_>> {
        let lane = lane & self.lane_count.wrapping_sub(1);
        // A single try: a claim is set-up, not an event; the caller decides.
        let locked = &self.lane(lane).producer.locked;
        // Acquire pairs with the Release of the previous holder's unlock.
        if locked.swap(true, Ordering::Acquire) {
            return None;
        }
        // INVARIANT: we hold the lane's lock until the producer is dropped.
        Some(Producer { ring: self, lane })
    }

    /// Counts an event that the producer could not even try to reserve for
    /// (IRQL too high, a query failed) as produced and dropped.
    pub fn drop_event(&self, kind: EventKind, reason: DropReason) {
        bump(&self.drops.unreserved, kind.index(), 1);
        self.count_drop(kind, reason);
    }

    /// Counts one dropped event and owes a `Lost` record for it.
    #[cold]
    pub(crate) fn count_drop(&self, kind: EventKind, reason: DropReason) {
        bump(&self.drops.per_kind, kind.index(), 1);
        bump(&self.drops.per_reason, reason.index(), 1);
        self.owe_lost();
    }

    /// Marks a `Lost` record as owed, after the counts it must report were
    /// bumped.
    #[cold]
    fn owe_lost(&self) {
        // Release pairs with the Acquire swap in `try_claim_slot`: the
        // producer that takes the duty of writing the `Lost` record sees
        // the counts bumped before this. A swap, not a store: the taker
        // synchronises only with the release sequence of the value it
        // reads, and a plain store by another producer would end this one's
        // sequence. Were two drops marked by stores, a taker reading the
        // later one could report the earlier drop's count stale, and then
        // nobody would owe the record any more (Miri found it: 1 seed in
        // 10 of the shared-lane stress test).
        self.drops.lost_pending.swap(true, Ordering::Release);
    }

    /// Reserves a slot in `lane`, under its lock if `locked` (else the
    /// caller is its exclusive producer), counting a failure as a drop.
    ///
    /// This and the reservation functions it calls are `inline(always)`:
    /// left to `#[inline]`, a small change anywhere on the driver's event
    /// path made LLVM stop inlining them and cost ~40 instructions per
    /// event (`cargo xtask bench driver` showed it).
    #[inline(always)]
    fn claim_slot<'r>(
        &'r self,
        lane: &'r Lane,
        kind: EventKind,
        len: usize,
        locked: bool,
    ) -> Result<Reservation<'r>, DropReason> {
        // A successful claim counted the event as produced.
        self.try_claim_slot(lane, kind, len, locked)
            .inspect_err(|&reason| {
                bump(&self.drops.unreserved, kind.index(), 1);
                self.count_drop(kind, reason);
            })
    }

    #[inline(always)]
    fn try_claim_slot<'r>(
        &'r self,
        lane: &'r Lane,
        kind: EventKind,
        len: usize,
        locked: bool,
    ) -> Result<Reservation<'r>, DropReason> {
        if !(HEADER_SIZE..=MAX_RECORD_SIZE).contains(&len) {
            return Err(DropReason::EncodeFailed);
        }
        // Cannot overflow: len <= MAX_RECORD_SIZE, a multiple of 8.
        let record_len = len.next_multiple_of(8);
        let slot_len = record_len.wrapping_add(TAG_SIZE);

        // Take the duty of writing the owed `Lost` record, if any. The plain
        // load first keeps the common case free of a read-modify-write. If
        // this reservation then fails, its own drop owes the record again.
        // Acquire pairs with the Release store in `count_drop`.
        let lost = self.drops.lost_pending.load(Ordering::Relaxed)
            && self.drops.lost_pending.swap(false, Ordering::Acquire);
        let body = if lost {
            slot_len.wrapping_add(LOST_SLOT)
        } else {
            slot_len
        };

        let claimed = if locked {
            if !lane.lock_reservations() {
                return Err(DropReason::Contention);
            }
            let claimed = lane.claim_space(kind, slot_len, body, lost);
            lane.unlock_reservations();
            claimed
        } else {
            lane.claim_space(kind, slot_len, body, lost)
        };
        let (lost_at, at, tag) = claimed?;

        if lost {
            self.write_lost(lane, lost_at);
        }
        if record_len != len {
            // SAFETY: we claimed `[at, at + slot_len)` above and have not
            // published it, so nobody else accesses its record bytes.
            let record = unsafe { lane.slot_record(at, record_len) };
            // The promise of `Reservation::buffer`: the bytes after `len` are
            // zero (the copy out never carries an earlier lap's bytes).
            if let Some(last) = record.get_mut(record_len.wrapping_sub(8)..) {
                last.fill(0);
            }
        }
        Ok(Reservation::new(self, lane, at, tag, kind, len))
    }

    /// Writes and commits a `Lost` record in the slot at `pos` of `lane`,
    /// which the caller claimed.
    #[cold]
    fn write_lost(&self, lane: &Lane, pos: u64) {
        let body = Lost {
            dropped: load_all(&self.drops.per_kind),
        };
        // SAFETY: the caller claimed `[pos, pos + LOST_SLOT)` and has not
        // published it, so nobody else accesses those bytes.
        let buf = unsafe { lane.slot_record(pos, LOST_RECORD_SIZE) };
        let state = match encode(buf, Origin::default(), body, &[]) {
            Ok(_) => {
                self.drops.lost_records.fetch_add(1, Ordering::Relaxed);
                State::Committed
            }
            // Cannot happen (the slot is exactly the encoded size); if it
            // did, the consumer skips the slot and the duty stays owed.
            Err(_) => {
                self.owe_lost();
                State::Discarded
            }
        };
        let tag = Tag {
            state,
            kind: KIND_LOST,
            slot_len: LOST_SLOT,
        };
        lane.publish(pos, tag);
    }

    /// Copies whole committed records into `out`, back to back (each at a
    /// multiple of 8), stamping [`ringside_wire::RecordHeader::seq`]
    /// (contiguous from 0, `Lost` records included) into the copies, and
    /// returns the bytes written. Visits every lane once, starting one lane
    /// further than the previous drain; in each it stops at the first slot
    /// a producer has not published yet; it stops altogether when the next
    /// record does not fit in `out`.
    ///
    /// One consumer at a time: if another drain is running it returns 0.
    pub fn drain_into(&self, out: &mut [u8]) -> usize {
        // Acquire pairs with the Release store that ends the previous drain:
        // its `cons_pos`, `next_seq` and delivered counts happen before ours.
        if self.consumer.draining.swap(true, Ordering::Acquire) {
            return 0;
        }
        // Relaxed: only the drain-lock holder writes these.
        let first = self.consumer.first_lane.load(Ordering::Relaxed) as usize;
        let mut drain = Drain {
            out,
            written: 0,
            seq: self.consumer.next_seq.load(Ordering::Relaxed),
            delivered: [0; EVENT_KIND_COUNT],
        };
        for step in 0..self.lane_count {
            if !self.drain_lane(self.lane(first.wrapping_add(step)), &mut drain) {
                break; // `out` is full
            }
        }
        if drain.written != 0 {
            self.consumer.next_seq.store(drain.seq, Ordering::Relaxed);
            for (counter, count) in self.consumer.delivered.iter().zip(drain.delivered) {
                if count != 0 {
                    add_owned(counter, count);
                }
            }
        }
        let next = first.wrapping_add(1) & self.lane_count.wrapping_sub(1);
        self.consumer
            .first_lane
            .store(next as u64, Ordering::Relaxed);
        // Release pairs with the Acquire swap that starts the next drain.
        self.consumer.draining.store(false, Ordering::Release);
        drain.written
    }

    /// Drains `lane` into `drain`; `false` if it stopped because the next
    /// record did not fit.
    fn drain_lane(&self, lane: &Lane, drain: &mut Drain<'_>) -> bool {
        // Relaxed: only the drain-lock holder writes `cons_pos`.
        let start = lane.drain.consumed.load(Ordering::Relaxed);
        // Acquire pairs with the Release store of `prod_pos` in
        // `claim_space`: every tag below `end` was stamped for this lap and
        // is visible.
        let end = lane.producer.pos.load(Ordering::Acquire);
        // Locals, not fields: `Lane` and `Drain` are behind references the
        // compiler must assume each record's copy (a call) may change, so
        // it would reload every field once per record. The layout is the
        // consumer's own copy (see `LaneMemory`).
        let memory = &lane.drain.memory;
        let capacity = memory.capacity;
        let mut written = drain.written;
        let mut seq = drain.seq;
        let mut pos = start;
        let mut fits = true;

        // Bounded: `pos` grows by at least 8 per slot and stops at `end`,
        // at most `capacity` bytes past `start`.
        while pos < end {
            let offset = memory.offset(pos);
            // Acquire pairs with the Release store in `publish`: the slot's
            // bytes are visible before we copy them.
            let Some(tag) = Tag::decode(memory.tags.get(offset).load(Ordering::Acquire), pos)
            else {
                break; // impossible below `end`; never trust it
            };
            if tag.state == State::Busy {
                break; // not published yet
            }
            let room = capacity
                .wrapping_sub(offset)
                .min(usize::try_from(end.wrapping_sub(pos)).unwrap_or(usize::MAX));
            if tag.slot_len < TAG_SIZE || tag.slot_len > room {
                break; // impossible for a tag this ring wrote; never trust it
            }
            let record_len = tag.slot_len.wrapping_sub(TAG_SIZE);
            if tag.state == State::Committed {
                let Some(dest) = drain
                    .out
                    .get_mut(written..)
                    .and_then(|rest| rest.get_mut(..record_len))
                else {
                    fits = false;
                    break; // the caller's buffer is full
                };
                // SAFETY: the slot is published and the consumer (us, under
                // the drain lock) owns it until `cons_pos` moves past it; no
                // producer writes it again before that.
                let src = unsafe { memory.slot_record(pos, record_len) };
                // Equal by construction (both `record_len`); the check costs
                // nothing and keeps a length-mismatch panic out of the
                // release ringside.sys (the binary gate rejects it).
                if dest.len() == src.len() {
                    dest.copy_from_slice(src);
                }
                if let Some(stamp) = dest.get_mut(HEADER_SEQ_OFFSET..HEADER_SEQ_OFFSET + 8) {
                    stamp.copy_from_slice(&seq.to_le_bytes());
                }
                seq = seq.wrapping_add(1);
                if let Some(count) = drain.delivered.get_mut(usize::from(tag.kind)) {
                    *count = count.wrapping_add(1);
                }
                written = written.wrapping_add(record_len);
            }
            // Under loom only: leave forged next-lap tags behind (see
            // `TagTable::forge_stale`); nothing in the product build.
            memory.tags.forge_stale(offset, pos, tag.slot_len);
            pos = pos.wrapping_add(tag.slot_len as u64);
        }

        drain.written = written;
        drain.seq = seq;
        if pos != start {
            // Release pairs with the Acquire load of `cons_pos` in
            // `claim_space` (and in `pending_bytes`): our reads of
            // `[start, pos)` happen before a producer reuses it.
            lane.drain.consumed.store(pos, Ordering::Release);
        }
        fits
    }

    /// Bytes reserved or committed and not yet drained, in all lanes (slot
    /// tags, padding and `Lost` records included): what a READ could pick
    /// up soon.
    pub fn pending_bytes(&self) -> usize {
        // The driver's DPC asks before each READ it completes; producers
        // use their own lane's figure (`Committed::lane_backlog`) instead.
        let mut pending = 0u64;
        for lane in self.used_lanes() {
            pending = pending.wrapping_add(lane.pending_u64());
        }
        usize::try_from(pending).unwrap_or(usize::MAX)
    }

    fn used_lanes(&self) -> &[Lane] {
        self.lanes.get(..self.lane_count).unwrap_or_default()
    }

    /// The counters, as of roughly now (each is read atomically, the set is
    /// not a snapshot while producers run). `reads_completed`,
    /// `reads_pending` and `consumer_connected` are the driver's to fill.
    pub fn stats(&self) -> DriverStats {
        let mut produced = load_all(&self.drops.unreserved);
        for lane in self.used_lanes() {
            for (total, count) in produced.iter_mut().zip(load_all(&lane.producer.reserved)) {
                *total = total.wrapping_add(count);
            }
        }
        DriverStats {
            produced,
            delivered: load_all(&self.consumer.delivered),
            dropped: load_all(&self.drops.per_kind),
            dropped_by_reason: load_all(&self.drops.per_reason),
            // Read after `dropped`, as `count_drop` bumps the count before
            // it owes the record: a drop counted above with nothing owed
            // below is one whose record was already claimed, or (while
            // producers run) one whose producer is between those two steps.
            lost_owed: u64::from(self.drops.lost_pending.load(Ordering::Acquire)),
            lost_records: self.drops.lost_records.load(Ordering::Relaxed),
            next_seq: self.consumer.next_seq.load(Ordering::Relaxed),
            ring_capacity: u32::try_from(self.capacity).unwrap_or(u32::MAX),
            ring_used: u32::try_from(self.pending_bytes()).unwrap_or(u32::MAX),
            ..DriverStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_memory() -> [u64; Ring::MIN_CAPACITY / 8] {
        [0; Ring::MIN_CAPACITY / 8]
    }

    fn bytes(memory: &mut [u64]) -> &mut [u8] {
        // SAFETY: a `u64` slice is valid as bytes, aligned, same extent.
        unsafe { core::slice::from_raw_parts_mut(memory.as_mut_ptr().cast(), memory.len() * 8) }
    }

    #[test]
    fn a_held_reservation_lock_drops_as_contention_after_the_bounded_spin() {
        let mut memory = ring_memory();
        let ring = Ring::new(bytes(&mut memory)).unwrap();
        // Another producer is inside its reservation section (and stays).
        ring.lane(0).producer.locked.store(true, Ordering::Relaxed);
        assert_eq!(
            ring.reserve(EventKind::FileWrite, 40).err(),
            Some(DropReason::Contention)
        );
        assert_eq!(ring.pending_bytes(), 0, "nothing was claimed");
        assert_eq!(ring.stats().lost_owed, 1, "the drop is not reported yet");
        ring.lane(0).unlock_reservations();
        let mut slot = ring.reserve(EventKind::FileWrite, 40).unwrap();
        slot.buffer()[..4].copy_from_slice(&40u32.to_le_bytes());
        slot.commit();
        let stats = ring.stats();
        let k = EventKind::FileWrite.index();
        assert_eq!(stats.produced[k], 2);
        assert_eq!(stats.dropped[k], 1);
        assert_eq!(stats.dropped_by_reason[DropReason::Contention.index()], 1);
        assert_eq!(
            stats.lost_owed, 0,
            "the Lost record was claimed with the event"
        );
        // The drop is reported in-band in front of the next event.
        let mut out = [0u8; 512];
        assert_eq!(ring.drain_into(&mut out), LOST_RECORD_SIZE + 40);
        assert_eq!(ring.stats().lost_records, 1);
    }

    #[test]
    fn the_busy_tag_is_in_place_when_prod_pos_moves() {
        let mut memory = ring_memory();
        let ring = Ring::new(bytes(&mut memory)).unwrap();
        let slot = ring.reserve(EventKind::ImageLoad, 45).unwrap();
        assert_eq!(ring.lane(0).producer.pos.load(Ordering::Relaxed), 56);
        let first_tag = || {
            ring.lane(0)
                .producer
                .memory
                .tag_word(0)
                .load(Ordering::Relaxed)
        };
        let word = first_tag();
        let busy = Tag {
            state: State::Busy,
            kind: EventKind::ImageLoad.index() as u8,
            slot_len: 56,
        };
        assert_eq!(Tag::decode(word, 0), Some(busy));
        assert_eq!(
            ring.drain_into(&mut [0; 256]),
            0,
            "busy: the consumer waits"
        );
        slot.discard(DropReason::QueryFailed);
        let word = first_tag();
        assert_eq!(
            Tag::decode(word, 0).map(|t| t.state),
            Some(State::Discarded)
        );
    }

    /// The attack the consumer's old zeroing pass defended against: an
    /// earlier lap's payload (file-name bytes an attacker chooses) holding
    /// words shaped exactly like committed tags of the next lap.
    #[test]
    fn forged_tags_in_an_earlier_lap_are_never_read() {
        let mut memory = ring_memory();
        let ring = Ring::new(bytes(&mut memory)).unwrap();
        let cap = Ring::MIN_CAPACITY;
        let len = cap - 8;
        let mut slot = ring.reserve(EventKind::FileCreate, len).unwrap();
        let buf = slot.buffer();
        buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
        // Every word of the payload forges a committed 64-byte slot for the
        // position it will have in the next lap.
        for (i, word) in buf.chunks_exact_mut(8).enumerate().skip(4) {
            let forged = Tag {
                state: State::Committed,
                kind: 0,
                slot_len: 64,
            };
            let next_lap = (cap + 8 + 8 * i) as u64;
            word.copy_from_slice(&forged.encode(next_lap).to_le_bytes());
        }
        slot.commit();
        let mut out = [0u8; Ring::MIN_CAPACITY];
        assert_eq!(ring.drain_into(&mut out), len);
        // The next lap: reserve a slot and leave it busy; nothing beyond it
        // (where the forged words sit) is read, and nothing at all is copied.
        let first = ring.reserve(EventKind::FileCreate, 32).unwrap();
        assert_eq!(ring.drain_into(&mut out), 0);
        // Committing it yields exactly it, although the forged words right
        // after it are still in memory.
        first.discard(DropReason::QueryFailed);
        let mut second = ring.reserve(EventKind::FileCreate, 32).unwrap();
        second.buffer()[..4].copy_from_slice(&32u32.to_le_bytes());
        second.commit();
        assert_eq!(ring.drain_into(&mut out), LOST_RECORD_SIZE + 32);
        assert_eq!(ring.pending_bytes(), 0);
    }

    #[test]
    fn the_cached_consumer_position_is_refreshed_only_when_short() {
        let mut memory = ring_memory();
        let ring = Ring::new(bytes(&mut memory)).unwrap();
        let half = Ring::MIN_CAPACITY / 2 - 8;
        for _ in 0..2 {
            let mut slot = ring.reserve(EventKind::FileWrite, half).unwrap();
            slot.buffer()[..4].copy_from_slice(&(half as u32).to_le_bytes());
            slot.commit();
        }
        let mut out = [0u8; Ring::MIN_CAPACITY];
        assert_eq!(ring.drain_into(&mut out), 2 * half);
        assert_eq!(
            ring.lane(0).producer.cons_cache.load(Ordering::Relaxed),
            0,
            "room was cached"
        );
        let slot = ring.reserve(EventKind::FileWrite, half).unwrap();
        let cap = Ring::MIN_CAPACITY as u64;
        assert_eq!(
            ring.lane(0).producer.cons_cache.load(Ordering::Relaxed),
            cap
        );
        slot.commit();
    }
}
