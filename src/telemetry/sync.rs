//! Named, instrumented synchronization primitives.
//!
//! Each primitive records, under its name: acquisitions, acquisitions that had to wait (contention),
//! the wait-time histogram, and acquisitions that gave up at their bounded wait (timeouts).
//! The uncontended path is a `try_*` call and a counter increment, so instrumenting costs little.

use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use metrics::{counter, histogram, Counter, Histogram};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Metric handles for one named wait site; built once so acquiring does no label lookups.
#[derive(Clone)]
pub struct WaitSite {
    name: String,
    acquisitions: Counter,
    contended: Counter,
    timeouts: Counter,
    wait: Histogram,
}

impl WaitSite {
    /// A site labelled `lock=<name>`, plus `collection=<c>` for per-collection primitives.
    pub fn new(name: &str, collection: Option<&str>) -> WaitSite {
        let mut labels = vec![("lock", name.to_string())];
        if let Some(c) = collection {
            labels.push(("collection", c.to_string()));
        }
        WaitSite {
            name: name.to_string(),
            acquisitions: counter!("vecdb_lock_acquisitions_total", &labels),
            contended: counter!("vecdb_lock_contended_total", &labels),
            timeouts: counter!("vecdb_lock_timeouts_total", &labels),
            wait: histogram!("vecdb_lock_wait_seconds", &labels),
        }
    }

    fn uncontended(&self) {
        self.acquisitions.increment(1);
    }

    /// Records a wait that began at `since` and got what it waited for.
    pub fn waited(&self, since: Instant) {
        self.acquisitions.increment(1);
        self.contended.increment(1);
        self.wait.record(since.elapsed().as_secs_f64());
    }

    /// Records a wait that began at `since` and gave up.
    pub fn gave_up(&self, since: Instant) {
        self.timed_out(since)
    }

    fn timed_out(&self, since: Instant) {
        self.contended.increment(1);
        self.timeouts.increment(1);
        self.wait.record(since.elapsed().as_secs_f64());
        tracing::warn!(lock = %self.name, waited_ms = since.elapsed().as_millis() as u64, "gave up waiting");
    }
}

/// A `std::sync::Mutex` that reports its waits. For short synchronous sections only; never held
/// across `.await`.
pub struct Lock<T> {
    site: WaitSite,
    inner: Mutex<T>,
}

impl<T> Lock<T> {
    /// Wraps `value` under the lock name `name`.
    pub fn new(name: &str, value: T) -> Lock<T> {
        Lock {
            site: WaitSite::new(name, None),
            inner: Mutex::new(value),
        }
    }

    /// Acquires the lock, recording the wait when it was held by someone else. A poisoned lock is
    /// taken anyway: the data it guards is kept consistent by each critical section, not by unwinding.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        match self.inner.try_lock() {
            Ok(guard) => {
                self.site.uncontended();
                guard
            }
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                let start = Instant::now();
                let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                self.site.waited(start);
                guard
            }
        }
    }
}

impl<T> Lock<T> {
    /// Acquires the lock, giving up after `max_wait` (counted as a timeout and logged with the
    /// lock's name, so a lock that is never released shows in `/metrics` instead of hanging
    /// requests). For locks whose holders do slow blocking work: waiters poll with a backoff of
    /// at most a millisecond instead of parking.
    pub fn lock_within(&self, max_wait: Duration) -> Result<MutexGuard<'_, T>, WaitError> {
        match self.inner.try_lock() {
            Ok(guard) => {
                self.site.uncontended();
                return Ok(guard);
            }
            Err(TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => {}
        }
        let start = Instant::now();
        let mut pause = Duration::from_micros(10);
        loop {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
            match self.inner.try_lock() {
                Ok(guard) => {
                    self.site.waited(start);
                    return Ok(guard);
                }
                Err(TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
                Err(TryLockError::WouldBlock) if start.elapsed() >= max_wait => {
                    self.site.timed_out(start);
                    return Err(WaitError::TimedOut);
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
    }
}

/// A counting semaphore with a bounded wait: admission control for CPU-heavy requests.
pub struct Gate {
    site: WaitSite,
    semaphore: std::sync::Arc<Semaphore>,
}

/// Why a bounded wait ended without the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitError {
    /// The bound elapsed first.
    TimedOut,
    /// The other side is gone (queue receiver dropped, semaphore closed).
    Closed,
}

impl Gate {
    /// A gate admitting `permits` holders at once.
    pub fn new(name: &str, permits: usize) -> Gate {
        Gate {
            site: WaitSite::new(name, None),
            semaphore: std::sync::Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    /// Waits at most `max_wait` for a permit.
    pub async fn enter(&self, max_wait: Duration) -> Result<OwnedSemaphorePermit, WaitError> {
        if let Ok(permit) = self.semaphore.clone().try_acquire_owned() {
            self.site.uncontended();
            return Ok(permit);
        }
        let start = Instant::now();
        match tokio::time::timeout(max_wait, self.semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => {
                self.site.waited(start);
                Ok(permit)
            }
            Ok(Err(_)) => Err(WaitError::Closed),
            Err(_) => {
                self.site.timed_out(start);
                Err(WaitError::TimedOut)
            }
        }
    }
}

/// The sending side of a bounded queue that reports how long senders wait for room.
pub struct Queue<T> {
    site: WaitSite,
    tx: mpsc::Sender<T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            site: self.site.clone(),
            tx: self.tx.clone(),
        }
    }
}

impl<T> Queue<T> {
    /// A bounded queue named `name` (labelled with `collection` when given).
    pub fn bounded(
        name: &str,
        collection: Option<&str>,
        capacity: usize,
    ) -> (Queue<T>, mpsc::Receiver<T>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Queue {
                site: WaitSite::new(name, collection),
                tx,
            },
            rx,
        )
    }

    /// Enqueues, waiting at most `max_wait` for room.
    pub async fn send(&self, item: T, max_wait: Duration) -> Result<(), WaitError> {
        let item = match self.tx.try_send(item) {
            Ok(()) => {
                self.site.uncontended();
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(WaitError::Closed),
            Err(mpsc::error::TrySendError::Full(item)) => item,
        };
        let start = Instant::now();
        match self.tx.send_timeout(item, max_wait).await {
            Ok(()) => {
                self.site.waited(start);
                Ok(())
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(WaitError::Closed),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.site.timed_out(start);
                Err(WaitError::TimedOut)
            }
        }
    }

    /// Enqueues from a plain thread (the index builder handing back a segment), waiting for room.
    pub fn send_blocking(&self, item: T) -> Result<(), WaitError> {
        let start = Instant::now();
        self.tx.blocking_send(item).map_err(|_| WaitError::Closed)?;
        self.site.waited(start);
        Ok(())
    }

    /// Items waiting in the queue now.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_guards_data_across_threads() {
        let lock = std::sync::Arc::new(Lock::new("test_lock", 0u64));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*lock.lock(), 4000);
    }

    #[test]
    fn lock_within_gives_up_at_its_bound_and_succeeds_once_free() {
        let lock = std::sync::Arc::new(Lock::new("test_bounded_lock", 0u32));
        let held = lock.lock();
        let waiter = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let outcome = lock.lock_within(Duration::from_millis(30)).map(|_| ());
                (outcome, started.elapsed())
            })
        };
        let (outcome, waited) = waiter.join().unwrap();
        assert_eq!(outcome, Err(WaitError::TimedOut));
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
        drop(held);
        *lock.lock_within(Duration::from_millis(30)).unwrap() += 1;
        assert_eq!(*lock.lock(), 1);
    }

    #[tokio::test]
    async fn gate_times_out_when_full() {
        let gate = Gate::new("test_gate", 1);
        let held = gate.enter(Duration::from_millis(10)).await.unwrap();
        assert_eq!(
            gate.enter(Duration::from_millis(20)).await.err(),
            Some(WaitError::TimedOut)
        );
        drop(held);
        assert!(gate.enter(Duration::from_millis(20)).await.is_ok());
    }

    #[tokio::test]
    async fn queue_times_out_when_full_and_reports_depth() {
        let (q, mut rx) = Queue::bounded("test_queue", Some("c"), 1);
        q.send(1u32, Duration::from_millis(10)).await.unwrap();
        assert_eq!(q.depth(), 1);
        assert_eq!(
            q.send(2, Duration::from_millis(20)).await,
            Err(WaitError::TimedOut)
        );
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(q.depth(), 0);
    }
}
