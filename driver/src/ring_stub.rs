//! TEMPORARY stand-in for `ringside-ring` (being written on branch `ring`),
//! with the same names and signatures so the driver can be built against it.
//! It is a linear buffer that resets when fully drained and only drains while
//! no reservation is outstanding: good enough to exercise the driver's code,
//! not the real lock-free ring. Replaced by the `ringside-ring` dependency as
//! soon as that crate lands.

#![allow(unsafe_code, reason = "temporary stand-in for crates/ring")]

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use ringside_wire::kind::DROP_REASON_COUNT;
use ringside_wire::{DriverStats, DropReason, EVENT_KIND_COUNT, EventKind, RecordHeader};
use zerocopy::FromBytes;

/// Why the memory cannot hold a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Not a power of two of at least 4096 bytes.
    BadSize,
    /// Not 8-byte aligned.
    Misaligned,
}

const ZERO: AtomicU64 = AtomicU64::new(0);

/// The ring over caller memory.
pub struct Ring<'a> {
    base: *mut u8,
    capacity: usize,
    head: AtomicUsize,
    tail: AtomicUsize,
    in_flight: AtomicUsize,
    draining: AtomicBool,
    next_seq: AtomicU64,
    produced: [AtomicU64; EVENT_KIND_COUNT],
    delivered: [AtomicU64; EVENT_KIND_COUNT],
    dropped: [AtomicU64; EVENT_KIND_COUNT],
    by_reason: [AtomicU64; DROP_REASON_COUNT],
    _memory: PhantomData<&'a mut [u8]>,
    _cell: PhantomData<UnsafeCell<u8>>,
}

impl core::fmt::Debug for Ring<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ring").field("capacity", &self.capacity).finish()
    }
}

// SAFETY: all shared state is atomic; the memory is only written through
// disjoint reservations (stub-level argument, see module doc).
unsafe impl Sync for Ring<'_> {}
// SAFETY: as above; the ring owns its borrow of the memory.
unsafe impl Send for Ring<'_> {}

/// Space reserved for one record.
#[derive(Debug)]
pub struct Reservation<'r> {
    ring: &'r Ring<'r>,
    offset: usize,
    len: usize,
    kind: EventKind,
}

impl<'a> Ring<'a> {
    /// A ring over `memory`.
    pub fn new(memory: &'a mut [u8]) -> Result<Self, RingError> {
        let capacity = memory.len();
        if capacity < 4096 || !capacity.is_power_of_two() {
            return Err(RingError::BadSize);
        }
        if memory.as_ptr().align_offset(8) != 0 {
            return Err(RingError::Misaligned);
        }
        Ok(Ring {
            base: memory.as_mut_ptr(),
            capacity,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            next_seq: AtomicU64::new(0),
            produced: [ZERO; EVENT_KIND_COUNT],
            delivered: [ZERO; EVENT_KIND_COUNT],
            dropped: [ZERO; EVENT_KIND_COUNT],
            by_reason: [ZERO; DROP_REASON_COUNT],
            _memory: PhantomData,
            _cell: PhantomData,
        })
    }

    fn count(counters: &[AtomicU64], index: usize) {
        if let Some(c) = counters.get(index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reserves `len` bytes (a multiple of 8) for a record of `kind`.
    pub fn reserve(&self, kind: EventKind, len: usize) -> Result<Reservation<'_>, DropReason> {
        Self::count(&self.produced, kind.index());
        self.in_flight.fetch_add(1, Ordering::Acquire);
        let mut tail = self.tail.load(Ordering::Relaxed);
        for _ in 0..8 {
            let end = tail.saturating_add(len);
            if len == 0 || len % 8 != 0 || end > self.capacity {
                break;
            }
            match self
                .tail
                .compare_exchange(tail, end, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Ok(Reservation {
                        ring: self,
                        offset: tail,
                        len,
                        kind,
                    });
                }
                Err(now) => tail = now,
            }
        }
        self.in_flight.fetch_sub(1, Ordering::Release);
        self.count_drop(kind, DropReason::RingFull);
        Err(DropReason::RingFull)
    }

    fn count_drop(&self, kind: EventKind, reason: DropReason) {
        Self::count(&self.dropped, kind.index());
        Self::count(&self.by_reason, reason.index());
    }

    /// Counts an event that was produced but could not be recorded.
    pub fn drop_event(&self, kind: EventKind, reason: DropReason) {
        Self::count(&self.produced, kind.index());
        self.count_drop(kind, reason);
    }

    /// Copies whole committed records into `out`, stamping sequence numbers.
    pub fn drain_into(&self, out: &mut [u8]) -> usize {
        if self.draining.swap(true, Ordering::Acquire) {
            return 0;
        }
        let mut written = 0usize;
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let tail = self.tail.load(Ordering::Acquire);
            let mut head = self.head.load(Ordering::Relaxed);
            while head < tail {
                // SAFETY: [head, tail) holds committed records and no
                // reservation is outstanding, so nothing writes this memory.
                let data = unsafe { core::slice::from_raw_parts(self.base.add(head), tail - head) };
                let Ok((header, _)) = RecordHeader::read_from_prefix(data) else { break };
                let size = header.size as usize;
                let Some(record) = data.get(..size) else { break };
                if header.kind == 0 {
                    head += size;
                    continue;
                }
                let Some(dest) = out.get_mut(written..written + size) else { break };
                dest.copy_from_slice(record);
                let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
                if let Some(s) = dest.get_mut(16..24) {
                    s.copy_from_slice(&seq.to_le_bytes());
                }
                if let Ok(kind) = EventKind::try_from(header.kind) {
                    Self::count(&self.delivered, kind.index());
                }
                written += size;
                head += size;
            }
            self.head.store(head, Ordering::Relaxed);
            if head == tail
                && self
                    .tail
                    .compare_exchange(tail, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                self.head.store(0, Ordering::Relaxed);
            }
        }
        self.draining.store(false, Ordering::Release);
        written
    }

    /// Committed or reserved bytes not yet drained.
    pub fn pending_bytes(&self) -> usize {
        self.tail
            .load(Ordering::Acquire)
            .saturating_sub(self.head.load(Ordering::Relaxed))
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The counters.
    pub fn stats(&self) -> DriverStats {
        let mut stats = DriverStats::default();
        for i in 0..EVENT_KIND_COUNT {
            if let (Some(p), Some(d), Some(x)) = (
                stats.produced.get_mut(i),
                stats.delivered.get_mut(i),
                stats.dropped.get_mut(i),
            ) {
                *p = self.produced.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
                *d = self.delivered.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
                *x = self.dropped.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
            }
        }
        for (slot, c) in stats.dropped_by_reason.iter_mut().zip(self.by_reason.iter()) {
            *slot = c.load(Ordering::Relaxed);
        }
        stats.next_seq = self.next_seq.load(Ordering::Relaxed);
        stats.ring_capacity = u32::try_from(self.capacity).unwrap_or(u32::MAX);
        stats.ring_used = u32::try_from(self.pending_bytes()).unwrap_or(u32::MAX);
        stats
    }
}

impl Reservation<'_> {
    /// The reserved bytes.
    pub fn buffer(&mut self) -> &mut [u8] {
        // SAFETY: [offset, offset+len) was reserved by CAS for this
        // reservation alone and lies inside the ring's memory.
        unsafe { core::slice::from_raw_parts_mut(self.ring.base.add(self.offset), self.len) }
    }

    /// Publishes the record (its header must already be written).
    pub fn commit(self) {
        self.ring.in_flight.fetch_sub(1, Ordering::Release);
    }

    /// Gives the space back as padding and counts the event as dropped.
    pub fn discard(mut self, reason: DropReason) {
        let len = self.len as u32;
        let buf = self.buffer();
        buf.fill(0);
        if let Some(s) = buf.get_mut(..4) {
            s.copy_from_slice(&len.to_le_bytes());
        }
        self.ring.count_drop(self.kind, reason);
        self.ring.in_flight.fetch_sub(1, Ordering::Release);
    }
}
