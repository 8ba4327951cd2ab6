//! How long the device source waits before reconnecting: exponential
//! backoff, reset by a session that ran a while.

use std::time::Duration;

/// First wait after a failure.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait; a session that ran longer than this resets the backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Exponential backoff between reconnects.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(MIN_BACKOFF, MAX_BACKOFF)
    }
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            next: min,
            min,
            max: max.max(min),
        }
    }

    /// A session failed after running for `ran` — its own run time, not
    /// counting the wait before it: were the wait included, a backoff that
    /// reached the maximum would count as a long session and fall back to
    /// the minimum. Returns how long to wait before the next attempt.
    pub fn failed(&mut self, ran: Duration) -> Duration {
        if ran > self.max {
            self.next = self.min;
        }
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_holds_its_maximum() {
        let mut backoff = Backoff::default();
        // Each session fails after a few milliseconds (a refused open).
        let ran = Duration::from_millis(3);
        let waits: Vec<Duration> = (0..20).map(|_| backoff.failed(ran)).collect();
        assert_eq!(waits[0], MIN_BACKOFF);
        assert_eq!(waits[1], MIN_BACKOFF * 2);
        let first_max = waits
            .iter()
            .position(|w| *w == MAX_BACKOFF)
            .expect("reaches max");
        assert!(
            waits[first_max..].iter().all(|w| *w == MAX_BACKOFF),
            "fell back below the maximum: {waits:?}"
        );
    }

    #[test]
    fn a_session_that_ran_a_while_resets_the_backoff() {
        let mut backoff = Backoff::default();
        for _ in 0..10 {
            backoff.failed(Duration::ZERO);
        }
        assert_eq!(
            backoff.failed(MAX_BACKOFF + Duration::from_secs(1)),
            MIN_BACKOFF
        );
        assert_eq!(backoff.failed(Duration::from_millis(5)), MIN_BACKOFF * 2);
    }
}
