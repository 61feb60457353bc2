//! The run's record stream: every packet on every link and the twin's state at the
//! telemetry rate, handed to a consumer on another thread (the evidence bundle writer)
//! as the run goes.
//!
//! The loop sends through a bounded queue. In lockstep the loop waits for room (time
//! is simulated, so nothing is lost and the stream is deterministic); in real time it
//! never waits: a record that finds the queue full is dropped and counted, and a
//! non-zero [`Tap::dropped`] means the stream is incomplete.

use capsule_links::Packet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
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
    /// A named event (as scenarios name them: `fc_mode:ENTRY`, `inject:<id>`, ...), and
    /// `inject_end:<id>` when an injection ends.
    Event {
        /// Simulation time, s.
        t_s: f64,
        /// The name.
        name: String,
    },
}

/// The sending end of the record stream (cheap to clone).
#[derive(Debug, Clone)]
pub struct Tap {
    tx: mpsc::SyncSender<TapRecord>,
    dropped: Arc<AtomicU64>,
    /// Interval of [`TapRecord::Sample`]s, s.
    pub sample_every_s: f64,
}

/// Telemetry interval of a tap: 50 Hz.
pub const SAMPLE_EVERY_S: f64 = 0.02;

impl Tap {
    /// A tap with room for `depth` records in flight, and its receiving end.
    pub fn bounded(depth: usize) -> (Tap, mpsc::Receiver<TapRecord>) {
        let (tx, rx) = mpsc::sync_channel(depth);
        (
            Tap {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
                sample_every_s: SAMPLE_EVERY_S,
            },
            rx,
        )
    }

    /// Sends a record, waiting for room when `wait` (lockstep), else dropping and
    /// counting it when the queue is full. A consumer that has gone counts every
    /// record as dropped.
    pub fn send(&self, r: TapRecord, wait: bool) {
        let ok = if wait {
            self.tx.send(r).is_ok()
        } else {
            self.tx.try_send(r).is_ok()
        };
        if !ok {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records that could not be queued so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_in_real_time_only() {
        let (tap, rx) = Tap::bounded(2);
        let ev = |n: &str| TapRecord::Event {
            t_s: 0.0,
            name: n.into(),
        };
        for n in ["a", "b", "c", "d"] {
            tap.send(ev(n), false);
        }
        assert_eq!(tap.dropped(), 2);
        assert_eq!(rx.try_iter().count(), 2);
        drop(rx);
        tap.send(ev("e"), true);
        assert_eq!(
            tap.dropped(),
            3,
            "a gone consumer counts as a drop, never blocks"
        );
    }
}
