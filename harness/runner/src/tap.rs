//! The run's record stream: every packet on every link and the twin's state at the
//! telemetry rate, handed to a consumer on another thread (the evidence bundle writer)
//! as the run goes.
//!
//! The loop sends through a bounded queue. In lockstep the loop waits for room (time
//! is simulated, so nothing is lost and the stream is deterministic); in real time it
//! never waits: a record that finds the queue full is dropped and counted, and a
//! non-zero [`Tap::dropped`] means the stream is incomplete.

use capsule_links::Packet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use twin_core::twin::Snapshot;

/// Which way a packet went, seen from the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Dir {
    /// Harness to the avionics (transmitted).
    Tx,
    /// Avionics to the harness (received).
    Rx,
}

/// The logical link a packet crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WireLink {
    /// The CAN bus.
    Can,
    /// The IMU serial line.
    Imu,
    /// The GNSS serial line.
    Gnss,
}

impl WireLink {
    /// The link's name (as in bench files).
    pub fn name(self) -> &'static str {
        match self {
            WireLink::Can => "can",
            WireLink::Imu => "imu",
            WireLink::Gnss => "gnss",
        }
    }
}

/// One record of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum TapRecord {
    /// A packet handed to a link (`Tx`) or received from it (`Rx`), with its bus time:
    /// simulation time, s (in real time, received packets carry their wire time).
    Wire {
        /// Bus time, s.
        t_s: f64,
        /// The link.
        link: WireLink,
        /// The direction.
        dir: Dir,
        /// The packet.
        packet: Packet,
    },
    /// The twin's state at the telemetry rate.
    Sample(Box<Snapshot>),
    /// The links' counters (the view stream only, every [`COUNTERS_EVERY_S`]).
    Counters {
        /// Simulation time, s.
        t_s: f64,
        /// The counters.
        links: Box<crate::record::LinkCounters>,
    },
    /// A named event (as scenarios name them: `fc_mode:ENTRY`, `inject:<id>`, ...), and
    /// `inject_end:<id>` when an injection ends.
    Event {
        /// Simulation time, s.
        t_s: f64,
        /// The name.
        name: String,
    },
}

/// The sending end of the record stream (cheap to clone). Records travel in batches
/// ([`TapWriter`]), so the loop pays one queue operation per batch, not per record.
#[derive(Debug, Clone)]
pub struct Tap {
    tx: mpsc::SyncSender<Vec<TapRecord>>,
    dropped: Arc<AtomicU64>,
    pool: Arc<Mutex<Vec<Vec<TapRecord>>>>,
    /// Interval of [`TapRecord::Sample`]s, s.
    pub sample_every_s: f64,
}

/// Telemetry interval of a tap: 50 Hz.
pub const SAMPLE_EVERY_S: f64 = 0.02;

/// Interval of the link counters on the view stream, s.
pub const COUNTERS_EVERY_S: f64 = 0.25;

/// Records per batch.
pub const BATCH: usize = 1024;

/// A batch is sent at least this often in bus time, s, so that a consumer writing
/// files as the run goes is never far behind (a crash loses little).
pub const BATCH_EVERY_S: f64 = 0.25;

/// The longest a waiting send waits for room before it drops the batch (counted).
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Emptied batches kept for reuse.
const POOL: usize = 16;

impl Tap {
    /// A tap with room for about `depth` records in flight, and its receiving end
    /// (batches; give emptied ones back with [`Tap::recycle`]).
    pub fn bounded(depth: usize) -> (Tap, mpsc::Receiver<Vec<TapRecord>>) {
        let (tx, rx) = mpsc::sync_channel(depth.div_ceil(BATCH).max(1));
        (
            Tap {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
                pool: Arc::new(Mutex::new(Vec::new())),
                sample_every_s: SAMPLE_EVERY_S,
            },
            rx,
        )
    }

    /// Sends a batch, waiting for room when `wait` (lockstep; at most
    /// [`SEND_TIMEOUT`]), else dropping and counting its records when the queue is
    /// full. A consumer that has gone or stays stuck counts every record as dropped.
    pub fn send(&self, batch: Vec<TapRecord>, wait: bool) {
        let n = batch.len() as u64;
        let mut batch = batch;
        let deadline = std::time::Instant::now() + SEND_TIMEOUT;
        let ok = loop {
            match self.tx.try_send(batch) {
                Ok(()) => break true,
                Err(mpsc::TrySendError::Disconnected(_)) => break false,
                Err(mpsc::TrySendError::Full(b)) => {
                    if !wait || std::time::Instant::now() >= deadline {
                        break false;
                    }
                    batch = b;
                    std::thread::sleep(std::time::Duration::from_micros(500));
                }
            }
        };
        if !ok {
            self.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Gives an emptied batch back for reuse (the consumer's side).
    pub fn recycle(&self, mut batch: Vec<TapRecord>) {
        batch.clear();
        if let Ok(mut p) = self.pool.lock()
            && p.len() < POOL
        {
            p.push(batch);
        }
    }

    fn fresh(&self) -> Vec<TapRecord> {
        self.pool
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| Vec::with_capacity(BATCH))
    }

    /// Records that could not be queued so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The batching writer the loop uses.
    pub fn writer(&self, wait: bool) -> TapWriter {
        self.writer_every(wait, BATCH_EVERY_S)
    }

    /// A batching writer that sends at least every `every_s` of bus time (a live
    /// view wants each sample at once).
    pub fn writer_every(&self, wait: bool, every_s: f64) -> TapWriter {
        TapWriter {
            buf: self.fresh(),
            tap: self.clone(),
            wait,
            last_send_s: f64::NEG_INFINITY,
            every_s,
        }
    }

    /// The same tap with another sample interval.
    pub fn with_sample_every(mut self, sample_every_s: f64) -> Tap {
        self.sample_every_s = sample_every_s;
        self
    }
}

/// Collects records into batches and sends one when it is full or [`BATCH_EVERY_S`]
/// of bus time has passed; sends the rest when dropped.
#[derive(Debug)]
pub struct TapWriter {
    buf: Vec<TapRecord>,
    tap: Tap,
    wait: bool,
    last_send_s: f64,
    every_s: f64,
}

impl TapWriter {
    /// Adds a record at bus time `t_s`.
    pub fn push(&mut self, r: TapRecord, t_s: f64) {
        self.buf.push(r);
        if self.buf.len() >= BATCH || t_s >= self.last_send_s + self.every_s {
            self.last_send_s = t_s;
            self.flush();
        }
    }

    /// Sends what is collected.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            let b = std::mem::replace(&mut self.buf, self.tap.fresh());
            self.tap.send(b, self.wait);
        }
    }

    /// Interval of samples, s.
    pub fn sample_every_s(&self) -> f64 {
        self.tap.sample_every_s
    }
}

impl Drop for TapWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: &str) -> TapRecord {
        TapRecord::Event {
            t_s: 0.0,
            name: n.into(),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_in_real_time_only() {
        let (tap, rx) = Tap::bounded(BATCH * 2);
        for n in ["a", "b", "c", "d"] {
            tap.send(vec![ev(n), ev(n)], false);
        }
        assert_eq!(tap.dropped(), 4, "two batches of two records did not fit");
        assert_eq!(rx.try_iter().map(|b| b.len()).sum::<usize>(), 4);
        drop(rx);
        tap.send(vec![ev("e")], true);
        assert_eq!(
            tap.dropped(),
            5,
            "a gone consumer counts as a drop, never blocks"
        );
    }

    #[test]
    fn the_writer_batches_by_count_and_by_time_and_sends_the_rest_when_dropped() {
        let (tap, rx) = Tap::bounded(BATCH * 64);
        let mut w = tap.writer(true);
        // The first record always goes (no batch was sent yet), then every BATCH
        // records at one time...
        for k in 0..(2 * BATCH + 1) {
            w.push(ev(&k.to_string()), 0.0);
        }
        let sizes: Vec<usize> = rx.try_iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![1, BATCH, BATCH]);
        // ... or when BATCH_EVERY_S has passed.
        w.push(ev("late"), BATCH_EVERY_S);
        assert_eq!(rx.try_iter().map(|b| b.len()).collect::<Vec<_>>(), vec![1]);
        w.push(ev("last"), BATCH_EVERY_S);
        drop(w);
        assert_eq!(rx.try_iter().map(|b| b.len()).collect::<Vec<_>>(), vec![1]);
        assert_eq!(tap.dropped(), 0);
    }
}
