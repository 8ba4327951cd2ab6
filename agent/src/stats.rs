//! The driver's counters checked against its promise: for every kind,
//! `produced == delivered + dropped + (still in the ring)`, and exactly
//! `produced == delivered + dropped` once the ring is empty.

use std::fmt::Write;

use ringside_wire::{DriverStats, EVENT_KIND_COUNT, EventKind};

/// Counts of one kind (or of all kinds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindCounts {
    pub produced: u64,
    pub delivered: u64,
    pub dropped: u64,
    /// `produced - delivered - dropped`: events still in the ring. Negative
    /// is impossible for a correct driver.
    pub in_ring: i128,
}

/// The check of one stats snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsCheck {
    pub per_kind: [KindCounts; EVENT_KIND_COUNT],
    pub total: KindCounts,
    /// Bytes in the ring at the snapshot.
    pub ring_used: u32,
}

/// The outcome of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `produced == delivered + dropped` for every kind.
    Balanced,
    /// Some events were still in the ring; consistent, not yet balanced.
    InFlight,
    /// More delivered + dropped than produced, or an empty ring that does
    /// not balance: the driver lost count.
    Violated,
}

impl StatsCheck {
    pub fn new(stats: &DriverStats) -> Self {
        let mut per_kind = [KindCounts::default(); EVENT_KIND_COUNT];
        let mut total = KindCounts::default();
        for (i, counts) in per_kind.iter_mut().enumerate() {
            let produced = stats.produced[i];
            let delivered = stats.delivered[i];
            let dropped = stats.dropped[i];
            *counts = KindCounts {
                produced,
                delivered,
                dropped,
                in_ring: i128::from(produced) - i128::from(delivered) - i128::from(dropped),
            };
            total.produced = total.produced.saturating_add(produced);
            total.delivered = total.delivered.saturating_add(delivered);
            total.dropped = total.dropped.saturating_add(dropped);
            total.in_ring += counts.in_ring;
        }
        StatsCheck {
            per_kind,
            total,
            ring_used: stats.ring_used,
        }
    }

    pub fn verdict_kind(&self) -> Verdict {
        if self.per_kind.iter().any(|k| k.in_ring < 0)
            || (self.ring_used == 0 && self.total.in_ring != 0)
        {
            Verdict::Violated
        } else if self.total.in_ring > 0 {
            Verdict::InFlight
        } else {
            Verdict::Balanced
        }
    }

    /// `"true"`, `"in_flight"` or `"VIOLATED"` (the 1004 event's `Balanced`).
    pub fn verdict(&self) -> &'static str {
        match self.verdict_kind() {
            Verdict::Balanced => "true",
            Verdict::InFlight => "in_flight",
            Verdict::Violated => "VIOLATED",
        }
    }

    /// `process_create=10/9/1,…` (produced/delivered/dropped) for kinds
    /// with any activity.
    pub fn per_kind_text(&self) -> String {
        per_kind_text(
            self.per_kind
                .iter()
                .map(|k| [k.produced, k.delivered, k.dropped]),
        )
    }
}

/// `kind=a/b/c,…` for the kinds (in [`EventKind::ALL`] order) whose three
/// counts are not all zero.
pub fn per_kind_text(counts: impl IntoIterator<Item = [u64; 3]>) -> String {
    let mut out = String::new();
    for (kind, [a, b, c]) in EventKind::ALL.iter().zip(counts) {
        if a == 0 && b == 0 && c == 0 {
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{}={a}/{b}/{c}", kind.name());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(produced: u64, delivered: u64, dropped: u64, ring_used: u32) -> DriverStats {
        let mut s = DriverStats::default();
        s.produced[0] = produced;
        s.delivered[0] = delivered;
        s.dropped[0] = dropped;
        s.ring_used = ring_used;
        s
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            StatsCheck::new(&stats(10, 7, 3, 0)).verdict_kind(),
            Verdict::Balanced
        );
        assert_eq!(
            StatsCheck::new(&stats(10, 6, 3, 64)).verdict_kind(),
            Verdict::InFlight
        );
        assert_eq!(
            StatsCheck::new(&stats(10, 6, 3, 0)).verdict_kind(),
            Verdict::Violated
        );
        assert_eq!(
            StatsCheck::new(&stats(10, 8, 3, 64)).verdict_kind(),
            Verdict::Violated
        );
        assert_eq!(
            StatsCheck::new(&stats(10, 7, 3, 0)).per_kind_text(),
            "process_create=10/7/3"
        );
    }
}
