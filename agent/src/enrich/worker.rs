//! A thread that does the slow enrichment — reading and hashing image
//! files (up to 256 MiB), and SID lookups that may ask a domain
//! controller — off the thread that reads the driver.
//!
//! Jobs go through a bounded queue. A full queue does not block the
//! caller: the job is refused and counted ([`Worker::overflow`]). Results
//! come back on an unbounded channel (at most one per queued job) and are
//! collected by the caller between events.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

/// What became of a submitted job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    Queued,
    /// The queue was full: the job was dropped and counted.
    Overflow,
    /// The worker is gone (it panicked): nothing will be done.
    Gone,
}

/// A worker thread running `work` on each job of type `J`.
#[derive(Debug)]
pub struct Worker<J, D> {
    jobs: SyncSender<J>,
    done: Receiver<D>,
    /// Jobs refused because the queue was full.
    pub overflow: u64,
}

impl<J: Send + 'static, D: Send + 'static> Worker<J, D> {
    /// Starts the thread with a queue of `capacity` jobs (at least 1).
    pub fn spawn(
        name: &str,
        capacity: usize,
        mut work: impl FnMut(J) -> D + Send + 'static,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<J>(capacity.max(1));
        let (results, done) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // Ends when the owner drops its sender (or stops listening).
                while let Ok(job) = queue.recv() {
                    if results.send(work(job)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Worker {
            jobs,
            done,
            overflow: 0,
        })
    }

    /// Queues `job` without blocking.
    pub fn submit(&mut self, job: J) -> Submitted {
        match self.jobs.try_send(job) {
            Ok(()) => Submitted::Queued,
            Err(TrySendError::Full(_)) => {
                self.overflow += 1;
                Submitted::Overflow
            }
            Err(TrySendError::Disconnected(_)) => Submitted::Gone,
        }
    }

    /// A result, if one is ready (never blocks).
    pub fn try_done(&self) -> Option<D> {
        self.done.try_recv().ok()
    }

    /// A result, waiting for one at most `timeout`.
    pub fn done_within(&self, timeout: std::time::Duration) -> Option<D> {
        self.done.recv_timeout(timeout).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_queue_refuses_and_counts_without_blocking() {
        let (started_tx, started) = mpsc::channel();
        let (gate, gate_rx) = mpsc::channel::<()>();
        let mut worker = Worker::spawn("test-worker", 1, move |job: u32| {
            let _ = started_tx.send(job);
            let _ = gate_rx.recv();
            job * 10
        })
        .expect("spawn");
        assert_eq!(worker.submit(1), Submitted::Queued);
        // The worker holds job 1; the queue (1 place) takes job 2.
        assert_eq!(started.recv_timeout(Duration::from_secs(5)), Ok(1));
        assert_eq!(worker.submit(2), Submitted::Queued);
        assert_eq!(worker.submit(3), Submitted::Overflow);
        assert_eq!(worker.submit(4), Submitted::Overflow);
        assert_eq!(worker.overflow, 2);
        gate.send(()).expect("gate");
        gate.send(()).expect("gate");
        let mut results = Vec::new();
        for _ in 0..500 {
            if let Some(result) = worker.try_done() {
                results.push(result);
            }
            if results.len() == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(results, [10, 20]);
    }
}
