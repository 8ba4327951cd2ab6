//! The driver's Stats checked against what reached the agent: the records
//! received and the drops reported in-band by `Lost` records, per kind.
//!
//! [`crate::stats`] checks the driver against itself (`produced ==
//! delivered + dropped`). That cannot see a duplicated batch, a batch that
//! never arrived, or `Lost` records that claim more or fewer drops than the
//! driver counted. This module compares the two sides. Some comparisons
//! hold at any moment (nothing can arrive that was not delivered); the
//! exact ones need the agent to have every record delivered before the
//! snapshot, a recording from the driver's first record, and, for the
//! in-band drops, an empty ring with no `Lost` record owed. When those do
//! not hold, [`CrossCheck::unchecked`] says what could not be checked and
//! why, rather than guessing.

use std::fmt;

use ringside_wire::{DriverStats, EVENT_KIND_COUNT, EventKind};

/// What reached the agent from one driver lifetime (sequence numbers
/// counting from 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentView {
    /// Event records received, per kind.
    pub received: [u64; EVENT_KIND_COUNT],
    /// Drops the `Lost` records report (their cumulative counts; the
    /// largest seen), per kind.
    pub lost_claimed: [u64; EVENT_KIND_COUNT],
    /// `Lost` records received.
    pub lost_records: u64,
    /// The first sequence number received.
    pub first_seq: Option<u64>,
    /// One past the largest sequence number received.
    pub next_seq: Option<u64>,
    /// The latest record timestamp (FILETIME) received.
    pub latest_time: u64,
}

impl AgentView {
    /// Notes a record's sequence number and timestamp (0 for a `Lost`
    /// record, which has none). A record numbered 0 after others, newer
    /// than any before it, begins a new driver lifetime: the driver
    /// restarted and counts from zero again. One that is not newer is an
    /// old record again (a duplicated batch), and stays in this view.
    pub fn sequence(&mut self, seq: u64, time: u64) {
        if seq == 0 && self.next_seq.is_some() && (time == 0 || time > self.latest_time) {
            *self = AgentView::default();
        }
        self.latest_time = self.latest_time.max(time);
        self.first_seq.get_or_insert(seq);
        let next = seq.saturating_add(1);
        self.next_seq = Some(self.next_seq.map_or(next, |n| n.max(next)));
    }

    /// Notes a `Lost` record's cumulative counts.
    pub fn lost(&mut self, dropped: &[u64; EVENT_KIND_COUNT]) {
        self.lost_records += 1;
        for (claimed, now) in self.lost_claimed.iter_mut().zip(dropped) {
            *claimed = (*claimed).max(*now);
        }
    }
}

/// One disagreement between the driver's Stats and the agent's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// More records of a kind reached the agent than the driver delivered:
    /// a batch was duplicated, or records came from somewhere else.
    Duplicated {
        kind: EventKind,
        received: u64,
        delivered: u64,
    },
    /// Sequence numbers past the last one the driver stamped.
    Ahead { next_seq: u64, driver_next_seq: u64 },
    /// Records the driver delivered that never reached the agent.
    Missing {
        kind: EventKind,
        received: u64,
        delivered: u64,
    },
    /// `Lost` records claim more drops than the driver counted.
    LostOverclaimed {
        kind: EventKind,
        claimed: u64,
        dropped: u64,
    },
    /// Drops the driver counted that no `Lost` record reported, though the
    /// ring was empty and no record was owed.
    LostUnreported {
        kind: EventKind,
        claimed: u64,
        dropped: u64,
    },
    /// Records delivered before the snapshot that had not arrived when
    /// the input ended.
    NeverArrived { next_seq: u64, driver_next_seq: u64 },
    /// `Lost` records the driver wrote that never reached the agent (or
    /// more than it wrote).
    LostRecords { received: u64, written: u64 },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Finding::Duplicated {
                kind,
                received,
                delivered,
            } => write!(
                f,
                "{received} {} record(s) received but the driver delivered {delivered}: \
                 batches were duplicated or records came from elsewhere",
                kind.name()
            ),
            Finding::Ahead {
                next_seq,
                driver_next_seq,
            } => write!(
                f,
                "records numbered up to {} received but the driver had stamped only {driver_next_seq}",
                next_seq - 1
            ),
            Finding::Missing {
                kind,
                received,
                delivered,
            } => write!(
                f,
                "the driver delivered {delivered} {} record(s) but {received} were received: \
                 {} never arrived",
                kind.name(),
                delivered - received
            ),
            Finding::LostOverclaimed {
                kind,
                claimed,
                dropped,
            } => write!(
                f,
                "Lost records claim {claimed} dropped {} event(s) but the driver counted {dropped}",
                kind.name()
            ),
            Finding::LostUnreported {
                kind,
                claimed,
                dropped,
            } => write!(
                f,
                "the driver counted {dropped} dropped {} event(s) but Lost records reported {claimed}: \
                 {} drop(s) were never reported in-band",
                kind.name(),
                dropped - claimed
            ),
            Finding::NeverArrived {
                next_seq,
                driver_next_seq,
            } => write!(
                f,
                "records {next_seq}..{driver_next_seq} were delivered but never arrived \
                 (the input ended)"
            ),
            Finding::LostRecords { received, written } => write!(
                f,
                "the driver wrote {written} Lost record(s) and {received} were received"
            ),
        }
    }
}

/// Why part of a cross-check could not be made at a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unchecked {
    /// Records delivered before the snapshot had not been received yet.
    Behind { next_seq: u64, driver_next_seq: u64 },
    /// The view starts after the driver's first record.
    StartsLate { first: u64 },
    /// The ring held records (a `Lost` record may be among them).
    RingNotEmpty { bytes: u32 },
    /// A `Lost` record was owed.
    LostOwed,
    /// No `Lost` record in a view that starts late.
    NoLostRecord,
}

impl fmt::Display for Unchecked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Unchecked::Behind {
                next_seq,
                driver_next_seq,
            } => write!(
                f,
                "records {next_seq}..{driver_next_seq} were delivered but had not been received \
                 at the snapshot"
            ),
            Unchecked::StartsLate { first } => write!(
                f,
                "records before number {first} (where this view starts) cannot be counted"
            ),
            Unchecked::RingNotEmpty { bytes } => write!(
                f,
                "{bytes} bytes were still in the ring, so the in-band drop reports may be behind"
            ),
            Unchecked::LostOwed => f.write_str(
                "a Lost record was owed (it is written ahead of the next event), so the latest \
                 drops are not reported in-band yet",
            ),
            Unchecked::NoLostRecord => {
                f.write_str("no Lost record in this view, and drops before it cannot be known")
            }
        }
    }
}

/// The outcome of one cross-check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrossCheck {
    pub findings: Vec<Finding>,
    /// What could not be checked exactly at this snapshot, and why.
    pub unchecked: Vec<Unchecked>,
}

impl CrossCheck {
    /// `"true"`, `"partial"` (consistent as far as it could be checked) or
    /// `"VIOLATED: …"` with the first finding (the 1004 event's `Accounted`).
    pub fn verdict(&self) -> String {
        match (self.findings.first(), self.unchecked.is_empty()) {
            (Some(finding), _) => format!("VIOLATED: {finding}"),
            (None, true) => "true".into(),
            (None, false) => "partial".into(),
        }
    }

    /// At the end of the input: records delivered before the snapshot
    /// (`stats`, taken with `then`) that still had not arrived when the
    /// input ended (`end`) are a finding, no longer "not received yet". A
    /// live agent cannot know this; a recording that has ended can.
    pub fn input_ended(&mut self, stats: &DriverStats, then: &AgentView, end: &AgentView) {
        if let Some(finding) = never_arrived(stats, then, end) {
            self.unchecked
                .retain(|u| !matches!(u, Unchecked::Behind { .. }));
            self.findings.push(finding);
        }
    }
}

/// Compares the driver's `stats` with what the agent had received when it
/// read them.
pub fn cross_check(stats: &DriverStats, view: &AgentView) -> CrossCheck {
    let mut check = CrossCheck::default();
    // At any moment: nothing arrives that was not delivered, and no `Lost`
    // record reports more than the (monotonic) count it was read from.
    for kind in EventKind::ALL {
        let i = kind.index();
        let (received, delivered) = (view.received[i], stats.delivered[i]);
        if received > delivered {
            check.findings.push(Finding::Duplicated {
                kind,
                received,
                delivered,
            });
        }
        let (claimed, dropped) = (view.lost_claimed[i], stats.dropped[i]);
        if claimed > dropped {
            check.findings.push(Finding::LostOverclaimed {
                kind,
                claimed,
                dropped,
            });
        }
    }
    let next_seq = view.next_seq.unwrap_or(0);
    if next_seq > stats.next_seq {
        check.findings.push(Finding::Ahead {
            next_seq,
            driver_next_seq: stats.next_seq,
        });
    }

    // The exact comparisons need every record delivered so far.
    if next_seq < stats.next_seq {
        check.unchecked.push(Unchecked::Behind {
            next_seq,
            driver_next_seq: stats.next_seq,
        });
        return check;
    }
    let complete = view.first_seq.is_none_or(|first| first == 0);
    if complete {
        for kind in EventKind::ALL {
            let i = kind.index();
            let (received, delivered) = (view.received[i], stats.delivered[i]);
            if received < delivered {
                check.findings.push(Finding::Missing {
                    kind,
                    received,
                    delivered,
                });
            }
        }
    } else if let Some(first) = view.first_seq {
        check.unchecked.push(Unchecked::StartsLate { first });
    }
    if stats.ring_used != 0 {
        check.unchecked.push(Unchecked::RingNotEmpty {
            bytes: stats.ring_used,
        });
        return check;
    }
    if complete && view.lost_records != stats.lost_records {
        check.findings.push(Finding::LostRecords {
            received: view.lost_records,
            written: stats.lost_records,
        });
    }
    if stats.lost_owed != 0 {
        check.unchecked.push(Unchecked::LostOwed);
    } else if complete || view.lost_records > 0 {
        for kind in EventKind::ALL {
            let i = kind.index();
            let (claimed, dropped) = (view.lost_claimed[i], stats.dropped[i]);
            if claimed < dropped {
                check.findings.push(Finding::LostUnreported {
                    kind,
                    claimed,
                    dropped,
                });
            }
        }
    } else {
        check.unchecked.push(Unchecked::NoLostRecord);
    }
    check
}

/// The records delivered before the snapshot (`stats`, taken with `then`)
/// that never arrived, even by the end of the input (`end`).
fn never_arrived(stats: &DriverStats, then: &AgentView, end: &AgentView) -> Option<Finding> {
    // Another driver lifetime began after the snapshot: not comparable.
    if end.first_seq != then.first_seq || end.next_seq < then.next_seq {
        return None;
    }
    let next_seq = end.next_seq.unwrap_or(0);
    (next_seq < stats.next_seq).then_some(Finding::NeverArrived {
        next_seq,
        driver_next_seq: stats.next_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FC: usize = 2;

    /// A driver that produced `delivered + dropped` file creates, delivered
    /// and reported everything: `delivered` events then one `Lost`.
    fn quiet(delivered: u64, dropped: u64) -> (DriverStats, AgentView) {
        let kind = EventKind::ALL[FC];
        let mut stats = DriverStats::default();
        stats.produced[kind.index()] = delivered + dropped;
        stats.delivered[kind.index()] = delivered;
        stats.dropped[kind.index()] = dropped;
        stats.lost_records = 1;
        stats.next_seq = delivered + 1;
        let mut view = AgentView::default();
        for seq in 0..=delivered {
            view.sequence(seq, 1000 + seq);
        }
        view.received[kind.index()] = delivered;
        let mut lost = [0; EVENT_KIND_COUNT];
        lost[kind.index()] = dropped;
        view.lost(&lost);
        (stats, view)
    }

    #[test]
    fn a_quiet_driver_whose_every_record_arrived_holds() {
        let (stats, view) = quiet(300, 40);
        let check = cross_check(&stats, &view);
        assert_eq!(check, CrossCheck::default());
        assert_eq!(check.verdict(), "true");
    }

    #[test]
    fn each_disagreement_is_found() {
        let kind = EventKind::ALL[FC];
        // Lost records claim 5,000; the driver counted 1,000.
        let (stats, mut view) = quiet(300, 1000);
        view.lost_claimed[FC] = 5000;
        assert_eq!(
            cross_check(&stats, &view).findings,
            [Finding::LostOverclaimed {
                kind,
                claimed: 5000,
                dropped: 1000
            }]
        );
        // 400 of 1,000 drops never reported, nothing owed.
        view.lost_claimed[FC] = 600;
        assert_eq!(
            cross_check(&stats, &view).findings,
            [Finding::LostUnreported {
                kind,
                claimed: 600,
                dropped: 1000
            }]
        );
        // Owed: not yet a finding, but not a clean "true" either.
        let mut owed = stats;
        owed.lost_owed = 1;
        let check = cross_check(&owed, &view);
        assert!(check.findings.is_empty(), "{check:?}");
        assert_eq!(check.verdict(), "partial");
        // A batch received twice: 500 of 300.
        let (stats, mut view) = quiet(300, 0);
        view.received[FC] = 500;
        assert_eq!(
            cross_check(&stats, &view).findings,
            [Finding::Duplicated {
                kind,
                received: 500,
                delivered: 300
            }]
        );
        // 100 delivered records that never arrived.
        view.received[FC] = 200;
        assert_eq!(
            cross_check(&stats, &view).findings,
            [Finding::Missing {
                kind,
                received: 200,
                delivered: 300
            }]
        );
    }

    #[test]
    fn records_still_on_their_way_are_not_called_missing() {
        let (mut stats, view) = quiet(300, 0);
        stats.delivered[FC] = 350;
        stats.next_seq = 351;
        let check = cross_check(&stats, &view);
        assert!(check.findings.is_empty(), "{check:?}");
        assert_eq!(
            check.unchecked,
            [Unchecked::Behind {
                next_seq: 301,
                driver_next_seq: 351
            }]
        );
    }

    #[test]
    fn a_restart_begins_a_new_view_and_a_repeated_first_batch_does_not() {
        let mut view = AgentView::default();
        view.sequence(0, 10);
        view.sequence(1, 11);
        view.received[FC] = 2;
        // The first record again, with its old timestamp: a duplicate.
        view.sequence(0, 10);
        assert_eq!((view.next_seq, view.received[FC]), (Some(2), 2));
        // Record 0 from later on: the driver restarted.
        view.sequence(0, 20);
        assert_eq!(view.next_seq, Some(1));
        assert_eq!(view.received, [0; EVENT_KIND_COUNT]);
    }
}
