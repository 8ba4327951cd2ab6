//! The stop request shared by a source and whoever stops it (the service
//! control handler, the console control handler), and a sleep that ends
//! as soon as stop is requested.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a [`StopFlag::sleep`] may overrun a stop request: the service
/// promises the Service Control Manager a stop within a wait hint, and
/// Ctrl-C should feel immediate.
pub const STOP_LATENCY: Duration = Duration::from_millis(50);

/// Set to stop the source (service stop, Ctrl-C, console close).
#[derive(Clone, Debug, Default)]
pub struct StopFlag(pub Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        // Relaxed: a plain flag polled at least every READ timeout; no other
        // memory is published through it.
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sleeps for `duration` or until stop is requested, whichever comes
    /// first (polling every [`STOP_LATENCY`]); true if stopped. A backoff
    /// of 30 s must not hold a service stop for 30 s.
    pub fn sleep(&self, duration: Duration) -> bool {
        let end = Instant::now() + duration;
        loop {
            if self.stopped() {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(STOP_LATENCY));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_sleep_ends_promptly_on_stop() {
        let stop = StopFlag::default();
        let stopper = stop.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            stopper.stop();
        });
        let started = Instant::now();
        assert!(stop.sleep(Duration::from_secs(30)));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "slept {:?} after stop",
            started.elapsed()
        );
        thread.join().expect("stopper");
    }

    #[test]
    fn a_sleep_without_stop_lasts_its_duration() {
        let started = Instant::now();
        assert!(!StopFlag::default().sleep(Duration::from_millis(120)));
        assert!(started.elapsed() >= Duration::from_millis(120));
    }
}
