//! Links: every transport the harness talks over, behind one interface.
//!
//! A [`Link`] is a handle to a background task that owns the port. The real-time loop
//! only does non-blocking queue operations on it ([`Link::try_send`],
//! [`Link::try_recv`]); the task timestamps what it receives as close to the wire as
//! the backend allows and counts everything. When the port fails or the peer goes
//! away, the task reports a [`LinkError::Closed`] naming the link and the cause, then
//! stops: a dead link is an event, never a hang.
//!
//! Backends: [`serial`] (tokio-serial: real ports and pseudo-terminal pairs); coming:
//! [`slcan`] (Lawicel ASCII over serial, host and adapter sides), [`vbus`] (a virtual
//! CAN bus between processes over a Unix socket, paced at the bus bit rate),
//! [`socketcan`] (Linux kernel CAN), and [`fault`] (a fault-injection layer around any
//! link).

pub mod address;
pub mod clock;
pub mod discover;
pub mod fault;
pub mod serial;
pub mod slcan;
pub mod socketcan;
pub mod vbus;

use capsule_icd::can::CanFrame;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// Opens the link at a bench address (see [`address`]): a serial port, a kernel CAN
/// interface, an SLCAN adapter, or the virtual bus.
pub async fn open(name: &str, address: &address::Address) -> Result<Link, LinkError> {
    use address::Address;
    match address {
        Address::Serial { path, settings } => serial::open(name, path, *settings),
        Address::SocketCan { interface } => socketcan::open(name, interface),
        Address::Slcan {
            path,
            settings,
            can_bitrate,
        } => {
            slcan::open_host(
                name,
                &address.to_string(),
                serial::open_stream(name, path, *settings)?,
                *can_bitrate,
            )
            .await
        }
        Address::VirtualBus { path } => vbus::connect(name, path).await,
    }
}

/// What travels over a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// A chunk of bytes (serial links).
    Bytes(Vec<u8>),
    /// A CAN frame (CAN links).
    Frame(CanFrame),
    /// A CAN error frame (injected by the fault layer, or reported by the bus).
    ErrorFrame,
}

/// A received packet with its receive timestamp (monotonic ns, see [`clock`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Monotonic receive time, ns, taken by the link task right after the read.
    pub t_ns: u64,
    /// Bus time for backends that have one (virtual bus), ns.
    pub bus_t_ns: Option<u64>,
    /// The packet.
    pub packet: Packet,
}

/// Link errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The link could not be opened. Fatal for the run.
    #[error("link `{link}`: cannot open {address}: {cause}{}", hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Open {
        /// Link name.
        link: String,
        /// Address.
        address: String,
        /// Cause.
        cause: String,
        /// What the operator can do.
        hint: Option<String>,
    },
    /// The link went away (peer closed, device unplugged, I/O error). Fatal for the link.
    #[error("link `{link}` closed: {cause}")]
    Closed {
        /// Link name.
        link: String,
        /// Cause.
        cause: String,
    },
    /// The outgoing queue is full; the packet was dropped and counted. Not fatal.
    #[error("link `{link}`: transmit queue full, packet dropped")]
    Full {
        /// Link name.
        link: String,
    },
    /// The address does not parse. Fatal.
    #[error("bad link address `{address}`: {reason}")]
    BadAddress {
        /// Address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The packet kind does not fit the link (bytes on CAN, frame on serial). Not fatal.
    #[error("link `{link}`: {what}")]
    WrongPacket {
        /// Link name.
        link: String,
        /// What.
        what: String,
    },
}

/// Counters of one link (shared with its task).
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Frames or chunks received.
    pub rx_packets: AtomicU64,
    /// Frames or chunks sent.
    pub tx_packets: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// Bytes sent.
    pub tx_bytes: AtomicU64,
    /// Frames with checksum / CRC errors (protocol layers count these).
    pub crc_errors: AtomicU64,
    /// Framing errors.
    pub framing_errors: AtomicU64,
    /// Packets dropped on the way out (transmit queue full, bus overload, injected
    /// drop, a packet of the wrong kind).
    pub drops: AtomicU64,
    /// Received packets dropped because the harness's receive queue was full (the loop
    /// did not read fast enough, or the peer floods the link).
    pub rx_dropped: AtomicU64,
    /// Why the link's task ended, once it has (shared so that a send after the end
    /// reports the real cause).
    closed_cause: std::sync::Mutex<Option<String>>,
}

/// A point-in-time copy of [`LinkStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    /// See [`LinkStats`].
    pub rx_packets: u64,
    /// See [`LinkStats`].
    pub tx_packets: u64,
    /// See [`LinkStats`].
    pub rx_bytes: u64,
    /// See [`LinkStats`].
    pub tx_bytes: u64,
    /// See [`LinkStats`].
    pub crc_errors: u64,
    /// See [`LinkStats`].
    pub framing_errors: u64,
    /// See [`LinkStats`].
    pub drops: u64,
    /// See [`LinkStats`].
    pub rx_dropped: u64,
}

impl std::fmt::Display for StatsSnapshot {
    /// `rx 120 (960 B) tx 80 (640 B) crc 0 framing 0 drops 0 rx-dropped 0`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rx {} ({} B) tx {} ({} B) crc {} framing {} drops {} rx-dropped {}",
            self.rx_packets,
            self.rx_bytes,
            self.tx_packets,
            self.tx_bytes,
            self.crc_errors,
            self.framing_errors,
            self.drops,
            self.rx_dropped
        )
    }
}

impl LinkStats {
    /// Copies the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            rx_packets: l(&self.rx_packets),
            tx_packets: l(&self.tx_packets),
            rx_bytes: l(&self.rx_bytes),
            tx_bytes: l(&self.tx_bytes),
            crc_errors: l(&self.crc_errors),
            framing_errors: l(&self.framing_errors),
            drops: l(&self.drops),
            rx_dropped: l(&self.rx_dropped),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn set_closed(&self, cause: &str) {
        if let Ok(mut g) = self.closed_cause.lock() {
            g.get_or_insert_with(|| cause.to_string());
        }
    }

    fn closed(&self) -> String {
        self.closed_cause
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_else(|| "link task ended".into())
    }
}

/// Carries a protocol decoder's error counts into the counters of the link it reads.
///
/// A serial line is framed above the link (IMU datagrams, NMEA sentences), so the link
/// itself sees bytes; the stream decoder that reads them finds the bad checksums and
/// broken frames. Call [`DecodeTally::report`] after feeding the decoder: the errors it
/// found since the last call are added to the link's `crc_errors` (checksum / CRC
/// mismatches) and `framing_errors` (bad structure; a report in which the decoder's
/// full input buffer dropped bytes adds one more).
#[derive(Debug, Default)]
pub struct DecodeTally {
    reported: capsule_icd::DecodeStats,
}

impl DecodeTally {
    /// Adds `now - last reported` to `link`'s counters.
    pub fn report(&mut self, link: &Link, now: &capsule_icd::DecodeStats) {
        let r = &mut self.reported;
        let crc = now.checksum_errors.saturating_sub(r.checksum_errors);
        let framing = now.framing_errors.saturating_sub(r.framing_errors)
            + u64::from(now.overflow_bytes > r.overflow_bytes);
        LinkStats::add(&link.stats.crc_errors, crc);
        LinkStats::add(&link.stats.framing_errors, framing);
        *r = *now;
    }
}

/// Events from a link task.
#[derive(Debug)]
pub(crate) enum Event {
    Data(Received),
    Closed(String),
}

/// Depth of the queues between the loop and a link task.
pub const QUEUE_DEPTH: usize = 4096;

/// A link handle.
#[derive(Debug)]
pub struct Link {
    name: String,
    tx: mpsc::Sender<Packet>,
    rx: mpsc::Receiver<Event>,
    stats: Arc<LinkStats>,
    closed: Option<String>,
    /// The slave end of a pty this link holds open until its peer attaches.
    pub(crate) guard: Option<serial::SlaveGuard>,
}

/// The task side of a link.
pub(crate) struct TaskEnds {
    pub name: String,
    pub to_task: mpsc::Receiver<Packet>,
    pub from_task: mpsc::Sender<Event>,
    pub stats: Arc<LinkStats>,
}

impl TaskEnds {
    /// Delivers a received packet (drops and counts it if the loop is not reading).
    pub fn deliver(&self, r: Received) {
        let n = match &r.packet {
            Packet::Bytes(b) => b.len() as u64,
            Packet::Frame(f) => u64::from(f.dlc),
            Packet::ErrorFrame => {
                LinkStats::add(&self.stats.framing_errors, 1);
                0
            }
        };
        LinkStats::add(&self.stats.rx_packets, 1);
        LinkStats::add(&self.stats.rx_bytes, n);
        if self.from_task.try_send(Event::Data(r)).is_err() {
            LinkStats::add(&self.stats.rx_dropped, 1);
        }
    }

    /// Reports the end of the link (best effort: the handle may already be gone).
    pub async fn close(&self, cause: impl Into<String>) {
        let cause = cause.into();
        self.stats.set_closed(&cause);
        let _ = self.from_task.send(Event::Closed(cause)).await;
    }

    /// Counts a sent packet.
    pub fn sent(&self, p: &Packet) {
        let n = match p {
            Packet::Bytes(b) => b.len() as u64,
            Packet::Frame(f) => u64::from(f.dlc),
            Packet::ErrorFrame => 0,
        };
        LinkStats::add(&self.stats.tx_packets, 1);
        LinkStats::add(&self.stats.tx_bytes, n);
    }
}

impl Link {
    /// A handle and its task ends.
    pub(crate) fn new_pair(name: &str) -> (Link, TaskEnds) {
        let (tx, to_task) = mpsc::channel(QUEUE_DEPTH);
        let (from_task, rx) = mpsc::channel(QUEUE_DEPTH);
        let stats = Arc::new(LinkStats::default());
        (
            Link {
                name: name.to_string(),
                tx,
                rx,
                stats: stats.clone(),
                closed: None,
                guard: None,
            },
            TaskEnds {
                name: name.to_string(),
                to_task,
                from_task,
                stats,
            },
        )
    }

    /// The link's name (as in the bench file).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Says that the peer has attached to the far end (a pty's slave), so the harness
    /// stops holding it open: from now on the peer closing its end closes the link.
    /// No effect on other links.
    pub fn peer_attached(&self) {
        if let Some(g) = &self.guard {
            serial::release(g);
        }
    }

    /// Shared counters (protocol layers add CRC/framing errors here).
    pub fn stats_handle(&self) -> Arc<LinkStats> {
        self.stats.clone()
    }

    /// Queues a packet without waiting. A full queue drops it and counts the drop.
    pub fn try_send(&self, p: Packet) -> Result<(), LinkError> {
        if let Some(c) = &self.closed {
            return Err(LinkError::Closed {
                link: self.name.clone(),
                cause: c.clone(),
            });
        }
        match self.tx.try_send(p) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                LinkStats::add(&self.stats.drops, 1);
                Err(LinkError::Full {
                    link: self.name.clone(),
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(LinkError::Closed {
                link: self.name.clone(),
                cause: self.stats.closed(),
            }),
        }
    }

    /// Queues a packet if there is room now; gives it back (not dropped, not counted)
    /// when the queue is full.
    pub fn send_now(&self, p: Packet) -> Result<Option<Packet>, LinkError> {
        if let Some(c) = &self.closed {
            return Err(LinkError::Closed {
                link: self.name.clone(),
                cause: c.clone(),
            });
        }
        match self.tx.try_send(p) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Full(p)) => Ok(Some(p)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(LinkError::Closed {
                link: self.name.clone(),
                cause: self.stats.closed(),
            }),
        }
    }

    /// Queues a packet, waiting for room.
    pub async fn send(&self, p: Packet) -> Result<(), LinkError> {
        if let Some(c) = &self.closed {
            return Err(LinkError::Closed {
                link: self.name.clone(),
                cause: c.clone(),
            });
        }
        self.tx.send(p).await.map_err(|_| LinkError::Closed {
            link: self.name.clone(),
            cause: self.stats.closed(),
        })
    }

    fn map(&mut self, e: Event) -> Result<Received, LinkError> {
        match e {
            Event::Data(r) => Ok(r),
            Event::Closed(cause) => {
                self.closed = Some(cause.clone());
                Err(LinkError::Closed {
                    link: self.name.clone(),
                    cause,
                })
            }
        }
    }

    /// Next received packet if one is waiting; `Some(Err)` once the link has closed.
    pub fn try_recv(&mut self) -> Option<Result<Received, LinkError>> {
        if let Some(c) = &self.closed {
            return Some(Err(LinkError::Closed {
                link: self.name.clone(),
                cause: c.clone(),
            }));
        }
        match self.rx.try_recv() {
            Ok(e) => Some(self.map(e)),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                Some(self.map(Event::Closed("link task ended".into())))
            }
        }
    }

    /// Waits for the next packet.
    pub async fn recv(&mut self) -> Result<Received, LinkError> {
        if let Some(c) = &self.closed {
            return Err(LinkError::Closed {
                link: self.name.clone(),
                cause: c.clone(),
            });
        }
        match self.rx.recv().await {
            Some(e) => self.map(e),
            None => self.map(Event::Closed("link task ended".into())),
        }
    }
}
