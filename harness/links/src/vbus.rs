//! A virtual CAN bus between processes on one machine, without kernel CAN.
//!
//! One process runs the bus ([`VirtualBus::bind`]) on a Unix socket; every node
//! connects to it ([`connect`]). The bus behaves like a CAN segment:
//! - **one frame at a time, arbitrated**: when the medium goes idle, the frame with the
//!   lowest identifier among those waiting wins (as CAN arbitration does); every node
//!   receives every frame in the same bus order;
//! - **bus timestamps**: each delivered frame carries the bus time (ns, the bus
//!   process's monotonic clock) at which its transmission ended;
//! - **bit-rate limit**: a frame occupies the bus for its worst-case length (below);
//!   transmissions are paced in real time, so a 500 kbit/s bus carries at most
//!   500000 / 135 = 3703 eight-byte frames per second, as real hardware would. If the
//!   queue exceeds [`MAX_BACKLOG`] frames the newest are dropped and counted (overload).
//!
//! Frame length estimate (Davis, Burns, Bril, Lukkien, "Controller Area Network (CAN)
//! schedulability analysis: refuted, revisited and revised", Real-Time Systems 35,
//! 2007, eq. 2): a standard-identifier data frame with n data bytes takes at most
//! `8n + 47 + floor((34 + 8n - 1) / 4)` bit times including worst-case bit stuffing
//! and the 3-bit interframe space (135 bits for n = 8); extended identifiers:
//! `8n + 67 + floor((54 + 8n - 1) / 4)`.
//!
//! An error frame (flag bit2) occupies the bus for 20 bit times (6-bit flag, up to 6
//! bits of echoed flags, 8-bit delimiter) and is delivered to every other node.
//!
//! Wire format on the socket: `capsule_icd::vbus_wire` (14-byte node records,
//! 22-byte bus records with the bus time).

use crate::clock::now_ns;
use crate::{Link, LinkError, LinkStats, Packet, Received};
use capsule_icd::can::CanFrame;
use capsule_icd::vbus_wire::{self, BUS_RECORD_LEN, BusItem, NODE_RECORD_LEN};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// Frames the bus may hold waiting for the medium before it drops (overload).
pub const MAX_BACKLOG: usize = 10_000;

/// Bit times of an error frame plus its delimiter.
pub const ERROR_FRAME_BITS: u64 = 20;

/// Worst-case bit times of a frame (see the module docs).
pub fn frame_bits(f: &CanFrame) -> u64 {
    let n = u64::from(if f.rtr { 0 } else { f.dlc.min(8) });
    if f.extended {
        8 * n + 67 + (54 + 8 * n - 1) / 4
    } else {
        8 * n + 47 + (34 + 8 * n - 1) / 4
    }
}

fn to_item(p: &Packet) -> Option<BusItem> {
    match p {
        Packet::Frame(f) => Some(BusItem::Frame(*f)),
        Packet::ErrorFrame => Some(BusItem::ErrorFrame),
        Packet::Bytes(_) => None,
    }
}

fn from_item(i: BusItem) -> Packet {
    match i {
        BusItem::Frame(f) => Packet::Frame(f),
        BusItem::ErrorFrame => Packet::ErrorFrame,
    }
}

/// How the bus uses time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusTiming {
    /// Real time: paced at the bit rate, identifier arbitration among waiting frames
    /// (benches, real-time runs, timing tests).
    Paced,
    /// Lockstep: no pacing, frames in arrival order. In lockstep only one side talks at
    /// a time (the harness, then the FC until its acknowledgement), so arrival order is
    /// each sender's own order and the traffic is reproducible run after run.
    Lockstep,
}

/// Bus statistics.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Frames carried.
    pub frames: AtomicU64,
    /// Frames dropped for overload.
    pub overload_drops: AtomicU64,
    /// Malformed records received from nodes (counted and skipped: records have a
    /// fixed length, so the stream stays in step).
    pub bad_records: AtomicU64,
    /// Bus busy time, ns.
    pub busy_ns: AtomicU64,
    /// Nodes connected now.
    pub nodes: AtomicU64,
}

/// A running virtual bus.
#[derive(Debug)]
pub struct VirtualBus {
    path: String,
    /// Bit rate, bit/s.
    pub bitrate_bps: u32,
    stats: Arc<BusStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for VirtualBus {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

struct Node {
    id: u64,
    tx: mpsc::Sender<[u8; BUS_RECORD_LEN]>,
}

enum BusMsg {
    Join(Node),
    Leave(u64),
    /// From node, packet, arrival time at the bus (ns).
    Frame(u64, Packet, u64),
}

impl VirtualBus {
    /// Starts a bus at `path` (an existing stale socket file is replaced).
    pub async fn bind(path: &str, bitrate_bps: u32) -> Result<Self, LinkError> {
        Self::bind_with(path, bitrate_bps, BusTiming::Paced).await
    }

    /// Starts a bus with the given timing.
    pub async fn bind_with(
        path: &str,
        bitrate_bps: u32,
        timing: BusTiming,
    ) -> Result<Self, LinkError> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|e| LinkError::Open {
            link: "vbus".into(),
            address: format!("vbus:{path}"),
            cause: e.to_string(),
            hint: Some("is the directory writable, and the path short enough (108 bytes)?".into()),
        })?;
        let stats = Arc::new(BusStats::default());
        let (bus_tx, bus_rx) = mpsc::channel::<BusMsg>(MAX_BACKLOG);
        let task = tokio::spawn(run_bus(
            listener,
            bus_tx,
            bus_rx,
            bitrate_bps.max(1),
            stats.clone(),
            timing,
        ));
        Ok(Self {
            path: path.to_string(),
            bitrate_bps,
            stats,
            task,
        })
    }

    /// The socket path (for `vbus:` addresses).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Statistics.
    pub fn stats(&self) -> &BusStats {
        &self.stats
    }

    /// Nodes connected now.
    pub fn nodes(&self) -> u64 {
        self.stats.nodes.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` nodes are connected (readiness), up to `timeout`.
    pub async fn wait_for_nodes(&self, n: u64, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.nodes() < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        true
    }

    /// Frames carried so far.
    pub fn frames(&self) -> u64 {
        self.stats.frames.load(Ordering::Relaxed)
    }

    /// A copy of the counters.
    pub fn counters(&self) -> BusCounters {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BusCounters {
            frames: l(&self.stats.frames),
            overload_drops: l(&self.stats.overload_drops),
            bad_records: l(&self.stats.bad_records),
            busy_ns: l(&self.stats.busy_ns),
        }
    }
}

/// A point-in-time copy of [`BusStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BusCounters {
    /// Frames carried.
    pub frames: u64,
    /// Frames dropped for overload (backlog full, or a node not reading).
    pub overload_drops: u64,
    /// Malformed records from nodes, skipped.
    pub bad_records: u64,
    /// Bus busy time, ns.
    pub busy_ns: u64,
}

async fn run_bus(
    listener: UnixListener,
    bus_tx: mpsc::Sender<BusMsg>,
    mut bus_rx: mpsc::Receiver<BusMsg>,
    bitrate: u32,
    stats: Arc<BusStats>,
    timing: BusTiming,
) {
    let accept_tx = bus_tx.clone();
    let stats_a = stats.clone();
    // The accept loop ends with this task: aborting the bus stops accepting nodes.
    let accept = tokio::spawn(async move {
        let mut next_id = 0u64;
        while let Ok((stream, _)) = listener.accept().await {
            next_id += 1;
            let id = next_id;
            let (out_tx, out_rx) = mpsc::channel::<[u8; BUS_RECORD_LEN]>(MAX_BACKLOG);
            if accept_tx
                .send(BusMsg::Join(Node { id, tx: out_tx }))
                .await
                .is_err()
            {
                return;
            }
            tokio::spawn(serve_node(
                id,
                stream,
                accept_tx.clone(),
                out_rx,
                stats_a.clone(),
            ));
        }
    });
    let _accept = AbortOnDrop(accept);
    let mut nodes: Vec<Node> = Vec::new();
    let mut bus_free_ns = 0u64;
    let bit_ns = 1e9 / f64::from(bitrate);
    // Frames waiting for the medium: (from, packet, arrival ns, arrival sequence).
    let mut pending: Vec<(u64, Packet, u64, u64)> = Vec::new();
    let mut seq = 0u64;
    loop {
        // Wait for something when idle, then take everything already queued.
        if pending.is_empty() {
            match bus_rx.recv().await {
                Some(m) => absorb(m, &mut nodes, &mut pending, &mut seq, &stats),
                None => return,
            }
        }
        while let Ok(m) = bus_rx.try_recv() {
            absorb(m, &mut nodes, &mut pending, &mut seq, &stats);
        }
        if pending.is_empty() {
            continue;
        }
        // Arbitration: among the frames waiting when the bus goes idle, the lowest
        // identifier wins (11-bit base identifier first, a standard frame before an
        // extended one with the same base); error frames pre-empt; ties keep arrival
        // order. The medium is scheduled from arrival times, so late wake-ups of this
        // task never cost bus capacity.
        let earliest = pending.iter().map(|p| p.2).min().unwrap_or(0);
        let start = earliest.max(bus_free_ns);
        let chosen = match timing {
            BusTiming::Paced => pending
                .iter()
                .enumerate()
                .filter(|(_, p)| p.2 <= start)
                .min_by_key(|(_, p)| (arbitration_key(&p.1), p.3))
                .map(|(k, _)| k),
            BusTiming::Lockstep => pending
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.3)
                .map(|(k, _)| k),
        };
        let Some(k) = chosen else { continue };
        let (from, p, _, _) = pending.remove(k);
        let now = now_ns();
        let bits = match &p {
            Packet::Frame(f) => frame_bits(f),
            _ => ERROR_FRAME_BITS,
        };
        let dur = (bits as f64 * bit_ns).round() as u64;
        let end = start + dur;
        bus_free_ns = end;
        // Pace in real time. Timers are millisecond-grained, so frames are released up
        // to 1 ms early but the bus never runs ahead of its bit rate by more than that;
        // each frame carries its exact bus end time.
        if timing == BusTiming::Paced && end > now + 1_000_000 {
            tokio::time::sleep(std::time::Duration::from_nanos(end - now - 1_000_000)).await;
        }
        stats.frames.fetch_add(1, Ordering::Relaxed);
        stats.busy_ns.fetch_add(dur, Ordering::Relaxed);
        let Some(item) = to_item(&p) else { continue };
        let rec = vbus_wire::encode_delivery(end, &item);
        for n in nodes.iter().filter(|n| n.id != from) {
            // A node that does not read fast enough loses frames (counted by the bus).
            if n.tx.try_send(rec).is_err() {
                stats.overload_drops.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Aborts a task when dropped (the bus's helper tasks end with the bus).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn absorb(
    m: BusMsg,
    nodes: &mut Vec<Node>,
    pending: &mut Vec<(u64, Packet, u64, u64)>,
    seq: &mut u64,
    stats: &BusStats,
) {
    match m {
        BusMsg::Join(n) => {
            nodes.push(n);
            stats.nodes.store(nodes.len() as u64, Ordering::Relaxed);
        }
        BusMsg::Leave(id) => {
            nodes.retain(|n| n.id != id);
            stats.nodes.store(nodes.len() as u64, Ordering::Relaxed);
        }
        BusMsg::Frame(from, p, arrived) => {
            if pending.len() >= MAX_BACKLOG {
                stats.overload_drops.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *seq += 1;
            pending.push((from, p, arrived, *seq));
        }
    }
}

/// Arbitration order: smaller wins.
fn arbitration_key(p: &Packet) -> (u32, u32, u32) {
    match p {
        Packet::ErrorFrame | Packet::Bytes(_) => (0, 0, 0),
        Packet::Frame(f) if f.extended => ((f.id >> 18) & 0x7FF, 1, f.id & 0x3FFFF),
        Packet::Frame(f) => (f.id & 0x7FF, 0, 0),
    }
}

async fn serve_node(
    id: u64,
    stream: UnixStream,
    bus: mpsc::Sender<BusMsg>,
    mut out: mpsc::Receiver<[u8; BUS_RECORD_LEN]>,
    stats: Arc<BusStats>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        // Everything already queued goes out in one write (one system call per burst,
        // not per frame).
        let mut batch = Vec::with_capacity(BUS_RECORD_LEN * 64);
        while let Some(rec) = out.recv().await {
            batch.clear();
            batch.extend_from_slice(&rec);
            while batch.len() < WRITE_BATCH_BYTES
                && let Ok(rec) = out.try_recv()
            {
                batch.extend_from_slice(&rec);
            }
            if wr.write_all(&batch).await.is_err() {
                return;
            }
        }
    });
    let mut records = RecordReader::<NODE_RECORD_LEN>::default();
    loop {
        match records.fill(&mut rd).await {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
        while let Some(rec) = records.next_record() {
            match vbus_wire::decode(&rec).map(from_item) {
                Some(p) => {
                    if bus.try_send(BusMsg::Frame(id, p, now_ns())).is_err() {
                        stats.overload_drops.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    stats.bad_records.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    let _ = bus.send(BusMsg::Leave(id)).await;
    writer.abort();
}

/// Largest burst written in one system call.
const WRITE_BATCH_BYTES: usize = 16 * 1024;

/// Fixed-length records from a byte stream, read in bulk. Reading is cancel-safe (a
/// plain `read` into a buffer that survives cancellation), so it can sit in a
/// `select!`; a record split across reads is completed by the next read.
struct RecordReader<const N: usize> {
    buf: Vec<u8>,
    start: usize,
}

impl<const N: usize> Default for RecordReader<N> {
    fn default() -> Self {
        Self {
            buf: Vec::with_capacity(N * 256),
            start: 0,
        }
    }
}

impl<const N: usize> RecordReader<N> {
    /// Reads what the stream has (at least one byte); `Ok(false)` at end of stream.
    /// Cancel-safe: bytes join the buffer only once a read has completed.
    async fn fill(&mut self, rd: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<bool> {
        let mut chunk = [0u8; 4096];
        let n = rd.read(&mut chunk).await?;
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next complete record, if one has arrived.
    fn next_record(&mut self) -> Option<[u8; N]> {
        let rec: [u8; N] = self.buf.get(self.start..self.start + N)?.try_into().ok()?;
        self.start += N;
        Some(rec)
    }
}

/// Connects a node to the bus at `path`.
pub async fn connect(name: &str, path: &str) -> Result<Link, LinkError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|e| LinkError::Open {
            link: name.into(),
            address: format!("vbus:{path}"),
            cause: e.to_string(),
            hint: Some(
                "is the virtual bus running (the runner starts it for simulated benches)?".into(),
            ),
        })?;
    let (link, mut ends) = Link::new_pair(name);
    tokio::spawn(async move {
        let (mut rd, mut wr) = stream.into_split();
        let mut records = RecordReader::<BUS_RECORD_LEN>::default();
        let mut batch: Vec<u8> = Vec::with_capacity(NODE_RECORD_LEN * 64);
        let mut sent: Vec<Packet> = Vec::with_capacity(64);
        loop {
            tokio::select! {
                r = records.fill(&mut rd) => match r {
                    Ok(true) => {
                        let t = now_ns();
                        while let Some(rec) = records.next_record() {
                            match vbus_wire::decode_delivery(&rec) {
                                Some((bus_t, i)) => ends.deliver(Received { t_ns: t, bus_t_ns: Some(bus_t), packet: from_item(i) }),
                                None => LinkStats::add(&ends.stats.framing_errors, 1),
                            }
                        }
                    }
                    Ok(false) => { ends.close("virtual bus gone: end of stream").await; return; }
                    Err(e) => { ends.close(format!("virtual bus gone: {e}")).await; return; }
                },
                p = ends.to_task.recv() => {
                    let Some(p) = p else { return };
                    // Everything already queued goes out in one write.
                    batch.clear();
                    sent.clear();
                    let mut next = Some(p);
                    while let Some(p) = next.take() {
                        match to_item(&p).map(|i| vbus_wire::encode(&i)) {
                            Some(rec) => {
                                batch.extend_from_slice(&rec);
                                sent.push(p);
                            }
                            None => LinkStats::add(&ends.stats.drops, 1),
                        }
                        if batch.len() < WRITE_BATCH_BYTES {
                            next = ends.to_task.try_recv().ok();
                        }
                    }
                    if batch.is_empty() {
                        continue;
                    }
                    if let Err(e) = wr.write_all(&batch).await {
                        ends.close(format!("virtual bus gone: {e}")).await;
                        return;
                    }
                    for p in &sent {
                        ends.sent(p);
                    }
                }
            }
        }
    });
    Ok(link)
}
