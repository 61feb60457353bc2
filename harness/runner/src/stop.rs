//! Stop requests: how a signal handler (or a test) ends a run.
//!
//! A [`Stop`] has two levels. The first request ([`Stop::request`], a first Ctrl-C,
//! SIGTERM or SIGHUP) ends the run at once, wherever it waits: actuators are commanded
//! safe, the flight computer is stopped gently, and the record ends as
//! [`crate::record::EndReason::Interrupted`]. A second request ([`Stop::force`]) also
//! skips the gentle part: the flight computer's process group is killed at once.
//! Every wait of the runner observes it ([`Stop::wait`]), so no wait outlives it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::Notify;

/// A shared stop flag with an async wait.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    level: AtomicU8,
    notify: Notify,
}

impl Stop {
    /// A flag nobody has raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop (callable from any thread, a signal thread included).
    pub fn request(&self) {
        self.raise(1);
    }

    /// Asks the run to stop now, without the gentle shutdown of the flight computer.
    pub fn force(&self) {
        self.raise(2);
    }

    fn raise(&self, level: u8) {
        self.inner.level.fetch_max(level, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// A stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.inner.level.load(Ordering::SeqCst) >= 1
    }

    /// A forced stop was asked for.
    pub fn is_forced(&self) -> bool {
        self.inner.level.load(Ordering::SeqCst) >= 2
    }

    /// Resolves once a stop is asked for (at once if it already was).
    pub async fn wait(&self) {
        self.wait_level(1).await;
    }

    /// Resolves once a forced stop is asked for.
    pub async fn wait_forced(&self) {
        self.wait_level(2).await;
    }

    async fn wait_level(&self, level: u8) {
        loop {
            // Registered before the check, so a request between the two is not missed.
            let n = self.inner.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.inner.level.load(Ordering::SeqCst) >= level {
                return;
            }
            n.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_from_another_thread_wakes_a_waiter() {
        let s = Stop::new();
        let t = s.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            t.request();
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), s.wait())
            .await
            .expect("woken");
        assert!(s.is_requested() && !s.is_forced());
        h.join().expect("thread");
        s.force();
        tokio::time::timeout(std::time::Duration::from_secs(1), s.wait_forced())
            .await
            .expect("forced");
    }
}
