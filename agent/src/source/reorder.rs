//! Puts READ batches back in sequence order before the pipeline sees them.
//!
//! Several READs are in flight and complete in any order. The driver
//! stamps sequence numbers when it drains the ring into a READ, so each
//! batch holds one contiguous run of numbers, but two READs drained one
//! after the other may reach the agent the other way round. The pipeline
//! checks numbers in delivery order, so an out-of-order batch would read
//! as a gap followed by a regression (which it takes for a driver
//! restart).
//!
//! [`Reorder`] holds a batch until the batch carrying the next expected
//! number has been handed on. A hole is declared — the held batch is
//! handed on anyway, and the pipeline reports the gap as 1002 — when it
//! can no longer be filled: every READ that was in flight when the held
//! batch arrived has completed since (a batch drained earlier can only be
//! in one of those), or more than `max_held` batches are held. At stop or
//! reconnect, [`Reorder::flush`] hands on everything held, in order.

use std::collections::BTreeMap;

use ringside_wire::Records;

/// Most batches held waiting for a hole to fill.
pub const MAX_HELD: usize = 64;

/// The first and one-past-last sequence numbers of a batch's readable
/// records, or `None` if it has none.
fn seq_range(batch: &[u8]) -> Option<(u64, u64)> {
    let mut range: Option<(u64, u64)> = None;
    for record in Records::new(batch).flatten() {
        let seq = record.header().seq;
        let next = seq.saturating_add(1);
        range = Some(match range {
            None => (seq, next),
            Some((first, end)) => (first.min(seq), end.max(next)),
        });
    }
    range
}

/// A batch waiting for the numbers in front of it.
#[derive(Debug)]
struct Held {
    bytes: Vec<u8>,
    /// One past its last sequence number.
    end: u64,
    /// READ slots (bit per slot) in flight when it arrived that have not
    /// completed since: while any remains, the hole may yet be filled.
    outstanding: u64,
}

/// The reorder stage between the READ queue and the pipeline.
#[derive(Debug)]
pub struct Reorder {
    /// The sequence number the next batch should start with, once known.
    expected: Option<u64>,
    /// Held batches by (first sequence number, arrival), oldest first on ties.
    held: BTreeMap<(u64, u64), Held>,
    arrivals: u64,
    /// Bit mask of the READ slots.
    slots: u64,
    max_held: usize,
    /// Holes declared (batches handed on with numbers missing before them).
    pub holes: u64,
}

impl Reorder {
    /// A stage for `in_flight` READ slots (numbered `0..in_flight`, at most
    /// 64) holding at most `max_held` batches.
    pub fn new(in_flight: usize, max_held: usize) -> Self {
        let slots = match in_flight {
            0 => 1,
            n if n >= 64 => u64::MAX,
            n => (1u64 << n) - 1,
        };
        Reorder {
            expected: None,
            held: BTreeMap::new(),
            arrivals: 0,
            slots,
            max_held,
            holes: 0,
        }
    }

    /// Batches held.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The batch READ slot `slot` completed with; returns the batches now
    /// ready to hand on, in sequence order.
    pub fn push(&mut self, slot: usize, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        let bit = u32::try_from(slot)
            .ok()
            .and_then(|s| 1u64.checked_shl(s))
            .unwrap_or(0);
        // This slot's completion answers for it in every batch held before.
        for held in self.held.values_mut() {
            held.outstanding &= !bit;
        }
        let mut ready = Vec::new();
        match seq_range(&bytes) {
            // Nothing numbered (an empty or unreadable batch): nothing to
            // order by, and the pipeline reports what it cannot read.
            None => ready.push(bytes),
            // Numbers already passed (a duplicate, or a driver that began
            // counting again): holding it cannot help; the pipeline judges.
            Some((first, _)) if self.expected.is_some_and(|e| first < e) => ready.push(bytes),
            Some((first, end)) => {
                self.arrivals += 1;
                let outstanding = self.slots & !bit;
                let held = Held {
                    bytes,
                    end,
                    outstanding,
                };
                self.held.insert((first, self.arrivals), held);
            }
        }
        self.release(&mut ready, false);
        ready
    }

    /// Sets the number the next batch should start with: the driver's
    /// `next_seq` from STATS before the first READ is issued. Without it,
    /// the first batches are held until their READs all completed (or
    /// the ring went idle), as the first to complete need not be first.
    pub fn expect(&mut self, seq: u64) {
        self.expected = Some(seq);
    }

    /// No READ completed for a while: nothing in flight is about to fill
    /// a hole (a drained READ completes at once), so everything held is
    /// handed on and its holes declared. The count carries on.
    pub fn idle(&mut self) -> Vec<Vec<u8>> {
        let mut ready = Vec::new();
        self.release(&mut ready, true);
        ready
    }

    /// Everything held, in sequence order (stop, reconnect).
    pub fn flush(&mut self) -> Vec<Vec<u8>> {
        let mut ready = Vec::new();
        self.release(&mut ready, true);
        self.expected = None;
        ready
    }

    /// Hands on held batches from the lowest while each is expected or
    /// can no longer be preceded by anything (or `all`). A batch whose
    /// READs in flight at its arrival have all completed can have no
    /// more batches in front of it; nor can any held below it.
    fn release(&mut self, ready: &mut Vec<Vec<u8>>, all: bool) {
        let settled = self
            .held
            .iter()
            .filter(|(_, held)| held.outstanding == 0)
            .map(|(key, _)| *key)
            .next_back();
        loop {
            let over = self.held.len() > self.max_held;
            let Some(entry) = self.held.first_entry() else {
                break;
            };
            let key = *entry.key();
            let expected = self.expected.is_some_and(|e| key.0 <= e);
            let hopeless = over || settled.is_some_and(|s| key <= s);
            if !(expected || hopeless || all) {
                break;
            }
            if !expected && self.expected.is_some() {
                self.holes += 1;
            }
            let held = entry.remove();
            self.expected = Some(self.expected.map_or(held.end, |e| e.max(held.end)));
            ready.push(held.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::BatchBuilder;
    use ringside_wire::Origin;

    /// A batch of `count` records numbered from `first`.
    fn batch(first: u64, count: u64) -> Vec<u8> {
        let mut builder = BatchBuilder::new();
        builder.skip(first);
        for i in 0..count {
            let origin = Origin {
                pid: 4,
                tid: 8,
                timestamp: 1000 + first + i,
            };
            builder.file_write(origin, r"\Device\HarddiskVolume3\x");
        }
        builder.take()
    }

    fn firsts(batches: &[Vec<u8>]) -> Vec<u64> {
        batches
            .iter()
            .map(|b| seq_range(b).map_or(u64::MAX, |r| r.0))
            .collect()
    }

    #[test]
    fn batches_that_complete_out_of_order_are_handed_on_in_order() {
        let mut reorder = Reorder::new(4, MAX_HELD);
        reorder.expect(0);
        assert_eq!(firsts(&reorder.push(0, batch(0, 3))), [0]);
        // READs 2 and 3 drained after READ 1 but completed first.
        assert!(reorder.push(2, batch(5, 2)).is_empty());
        assert!(reorder.push(3, batch(7, 4)).is_empty());
        assert_eq!(firsts(&reorder.push(1, batch(3, 2))), [3, 5, 7]);
        assert_eq!(reorder.holes, 0);
        assert_eq!(reorder.held(), 0);
    }

    /// Fed through the pipeline, out-of-order completions report no gap
    /// and no regression.
    #[test]
    fn the_pipeline_sees_no_false_gap() {
        let mut pipeline = crate::pipeline::Pipeline::new(crate::pipeline::Config::default());
        let mut sink = crate::sink::Discard::default();
        let mut reorder = Reorder::new(4, MAX_HELD);
        reorder.expect(0);
        let mut offset = 0;
        for (slot, bytes) in [
            (0, batch(0, 3)),
            (2, batch(5, 2)),
            (1, batch(3, 2)),
            (0, batch(9, 1)),
            (3, batch(7, 2)),
        ] {
            for ready in reorder.push(slot, bytes) {
                pipeline.batch(&ready, offset, &mut sink).expect("sink");
                offset += ready.len() as u64;
            }
        }
        for ready in reorder.flush() {
            pipeline.batch(&ready, offset, &mut sink).expect("sink");
        }
        let c = &pipeline.counters;
        assert_eq!(c.records, 10);
        assert_eq!((c.sequence_gaps, c.sequence_regressions), (0, 0));
    }

    #[test]
    fn a_hole_no_read_in_flight_can_fill_is_declared() {
        let mut reorder = Reorder::new(3, MAX_HELD);
        reorder.expect(0);
        assert_eq!(firsts(&reorder.push(0, batch(0, 2))), [0]);
        // Records 2..4 were drained but never arrive.
        assert!(reorder.push(1, batch(4, 1)).is_empty());
        // Slots 0 and 2 were in flight when it arrived; both complete.
        assert!(reorder.push(0, batch(5, 1)).is_empty());
        let ready = reorder.push(2, batch(6, 1));
        assert_eq!(firsts(&ready), [4, 5, 6]);
        assert_eq!(reorder.holes, 1);
        // The pipeline reports the real gap once.
        let mut pipeline = crate::pipeline::Pipeline::new(crate::pipeline::Config::default());
        let mut sink = crate::sink::Discard::default();
        pipeline.batch(&batch(0, 2), 0, &mut sink).expect("sink");
        for bytes in &ready {
            pipeline.batch(bytes, 0, &mut sink).expect("sink");
        }
        assert_eq!(pipeline.counters.sequence_gaps, 1);
        assert_eq!(pipeline.counters.missing_records, 2);
    }

    #[test]
    fn the_hold_is_bounded() {
        let mut reorder = Reorder::new(64, 2);
        reorder.expect(0);
        assert_eq!(firsts(&reorder.push(0, batch(0, 1))), [0]);
        assert!(reorder.push(1, batch(10, 1)).is_empty());
        assert!(reorder.push(2, batch(11, 1)).is_empty());
        assert_eq!(firsts(&reorder.push(3, batch(12, 1))), [10, 11, 12]);
        assert_eq!(reorder.holes, 1);
    }

    #[test]
    fn without_a_starting_number_the_first_batches_wait_for_their_reads_or_idle() {
        let mut reorder = Reorder::new(3, MAX_HELD);
        assert!(reorder.push(1, batch(4, 2)).is_empty());
        assert!(reorder.push(0, batch(0, 4)).is_empty());
        assert_eq!(firsts(&reorder.push(2, batch(6, 1))), [0, 4, 6]);
        assert!(reorder.push(0, batch(9, 1)).is_empty(), "7..9 are missing");
        assert_eq!(firsts(&reorder.idle()), [9]);
        assert_eq!(reorder.holes, 1);
    }

    #[test]
    fn flush_hands_on_everything_held_in_order() {
        let mut reorder = Reorder::new(4, MAX_HELD);
        assert!(reorder.push(1, batch(8, 1)).is_empty());
        assert!(reorder.push(2, batch(3, 2)).is_empty());
        assert_eq!(firsts(&reorder.push(3, Vec::new())), [u64::MAX]);
        assert_eq!(firsts(&reorder.flush()), [3, 8]);
        assert_eq!(reorder.held(), 0);
    }
}
