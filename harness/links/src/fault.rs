//! Fault injection around any link.
//!
//! [`wrap`] puts a task between a link handle and the real link. Every packet going
//! out (`Tx`) or coming in (`Rx`) passes the active rules in order; each rule selects
//! packets (all, or CAN frames with one identifier), is active in a time window, and
//! fires with a seeded probability. Every injection is counted in [`FaultStats`] and
//! the effect is visible on the wire.
//!
//! | kind | links | effect |
//! |---|---|---|
//! | `Drop` | all | the packet is lost |
//! | `Duplicate` | all | sent twice |
//! | `Delay` | all | held `delay_s` +- uniform `jitter_s` (order kept unless jitter reorders) |
//! | `Corrupt` | all | `bits` random bit flips in the payload |
//! | `Reorder` | all | held and released after the next packet |
//! | `InsertBytes` | serial | `count` random bytes inserted at a random position |
//! | `DeleteBytes` | serial | `count` bytes removed at a random position |
//! | `NoiseBurst` | serial | a run of `length` bytes overwritten with random bytes |
//! | `Stall` | serial | nothing passes while active (lost) |
//! | `ErrorFrame` | CAN | an error frame is put on the bus before the packet |
//! | `Babble` | CAN | while active, frames with `id` are sent as fast as `rate_hz` (or the bus) allows |
//! | `BusOff` | CAN | the node neither sends nor receives while active |
//!
//! Time: rules are in seconds on a [`FaultClock`] that the runner advances (simulation
//! time in lockstep, wall time on a bench).

use crate::clock::now_ns;
use crate::{Event, Link, Packet, Received};
use capsule_icd::can::CanFrame;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Fault kinds (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Lose the packet.
    Drop,
    /// Send it twice.
    Duplicate,
    /// Hold it.
    Delay {
        /// Mean delay, s.
        delay_s: f64,
        /// Uniform jitter, +- s.
        #[serde(default)]
        jitter_s: f64,
    },
    /// Flip bits.
    Corrupt {
        /// Number of bit flips.
        bits: u32,
    },
    /// Swap with the next packet.
    Reorder,
    /// Insert random bytes (serial).
    InsertBytes {
        /// How many.
        count: usize,
    },
    /// Delete bytes (serial).
    DeleteBytes {
        /// How many.
        count: usize,
    },
    /// Overwrite a run of bytes with noise (serial).
    NoiseBurst {
        /// Run length.
        length: usize,
    },
    /// Nothing passes (serial).
    Stall,
    /// Put an error frame on the bus before the packet (CAN).
    ErrorFrame,
    /// Flood one identifier (CAN).
    Babble {
        /// Identifier.
        id: u32,
        /// Frames per second to attempt.
        rate_hz: f64,
    },
    /// The node is off the bus (CAN).
    BusOff,
}

/// Direction a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Packets the harness sends.
    Tx,
    /// Packets the harness receives.
    Rx,
    /// Both.
    #[default]
    Both,
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// What to do.
    pub fault: FaultKind,
    /// Which direction.
    #[serde(default)]
    pub direction: Direction,
    /// Only CAN frames with this identifier (all packets if absent).
    #[serde(default)]
    pub can_id: Option<u32>,
    /// Active from, s on the fault clock.
    #[serde(default)]
    pub start_s: f64,
    /// Active until, s (open-ended if absent).
    #[serde(default)]
    pub end_s: Option<f64>,
    /// Probability per packet (1 = always).
    #[serde(default = "one")]
    pub probability: f64,
}

fn one() -> f64 {
    1.0
}

impl FaultRule {
    /// A rule that always applies from t = 0.
    pub fn always(fault: FaultKind) -> Self {
        Self {
            fault,
            direction: Direction::Both,
            can_id: None,
            start_s: 0.0,
            end_s: None,
            probability: 1.0,
        }
    }

    fn active(&self, t_s: f64) -> bool {
        t_s >= self.start_s && self.end_s.is_none_or(|e| t_s < e)
    }

    fn selects(&self, dir: Direction, p: &Packet) -> bool {
        let dir_ok = self.direction == Direction::Both || self.direction == dir;
        let id_ok = match (self.can_id, p) {
            (None, _) => true,
            (Some(id), Packet::Frame(f)) => f.id == id,
            (Some(_), _) => false,
        };
        dir_ok && id_ok
    }
}

/// The clock fault windows are measured on, in ns (shared; the runner sets it).
#[derive(Debug, Clone, Default)]
pub struct FaultClock(Arc<AtomicU64>);

impl FaultClock {
    /// A clock at 0.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the time, s.
    pub fn set_s(&self, t_s: f64) {
        self.0.store((t_s.max(0.0) * 1e9) as u64, Ordering::Relaxed);
    }
    /// The time, s.
    pub fn now_s(&self) -> f64 {
        self.0.load(Ordering::Relaxed) as f64 * 1e-9
    }
}

/// Injection counters, per fault kind name (`drop`, `duplicate`, ...).
#[derive(Debug, Default)]
pub struct FaultStats {
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl FaultStats {
    /// Counts one injection of a kind (for layers that inject outside `apply`).
    pub fn record(&self, k: &'static str) {
        if let Ok(mut m) = self.counts.lock() {
            *m.entry(k).or_default() += 1;
        }
    }
    /// Count of one kind.
    pub fn get(&self, k: &str) -> u64 {
        self.counts
            .lock()
            .map(|m| m.get(k).copied().unwrap_or(0))
            .unwrap_or(0)
    }
    /// All counts, sorted by kind.
    pub fn all(&self) -> BTreeMap<&'static str, u64> {
        self.counts.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// The name every fault kind is counted under (`<link>.<kind>` in a run's
/// `faults_injected`).
pub const KIND_NAMES: &[&str] = &[
    "drop",
    "duplicate",
    "delay",
    "corrupt",
    "reorder",
    "insert_bytes",
    "delete_bytes",
    "noise_burst",
    "stall",
    "error_frame",
    "babble",
    "bus_off",
];

fn kind_name(k: &FaultKind) -> &'static str {
    match k {
        FaultKind::Drop => "drop",
        FaultKind::Duplicate => "duplicate",
        FaultKind::Delay { .. } => "delay",
        FaultKind::Corrupt { .. } => "corrupt",
        FaultKind::Reorder => "reorder",
        FaultKind::InsertBytes { .. } => "insert_bytes",
        FaultKind::DeleteBytes { .. } => "delete_bytes",
        FaultKind::NoiseBurst { .. } => "noise_burst",
        FaultKind::Stall => "stall",
        FaultKind::ErrorFrame => "error_frame",
        FaultKind::Babble { .. } => "babble",
        FaultKind::BusOff => "bus_off",
    }
}

/// Controls a wrapped link's rules at run time.
#[derive(Debug, Clone)]
pub struct FaultControl {
    rules: Arc<Mutex<Vec<FaultRule>>>,
    /// Counters.
    pub stats: Arc<FaultStats>,
    /// The clock the windows use.
    pub clock: FaultClock,
}

impl FaultControl {
    /// Adds a rule.
    pub fn add(&self, r: FaultRule) {
        if let Ok(mut v) = self.rules.lock() {
            v.push(r);
        }
    }
    /// Removes every rule.
    pub fn clear(&self) {
        if let Ok(mut v) = self.rules.lock() {
            v.clear();
        }
    }
}

struct Injector {
    rules: Arc<Mutex<Vec<FaultRule>>>,
    stats: Arc<FaultStats>,
    clock: FaultClock,
    rng: ChaCha8Rng,
    held_reorder: [Option<Packet>; 2],
}

impl Injector {
    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Applies the rules to one packet; returns (delay ns, packet) pairs to emit.
    fn apply(&mut self, dir: Direction, p: Packet) -> Vec<(u64, Packet)> {
        let t = self.clock.now_s();
        let rules: Vec<FaultRule> = self.rules.lock().map(|v| v.clone()).unwrap_or_default();
        let mut out = vec![(0u64, p)];
        let slot = usize::from(dir == Direction::Rx);
        for r in rules.iter().filter(|r| r.active(t)) {
            let mut next = Vec::new();
            for (d, p) in out.drain(..) {
                if !r.selects(dir, &p) || matches!(r.fault, FaultKind::Babble { .. }) {
                    next.push((d, p));
                    continue;
                }
                if r.probability < 1.0 && self.uniform() >= r.probability {
                    next.push((d, p));
                    continue;
                }
                self.stats.record(kind_name(&r.fault));
                match r.fault {
                    FaultKind::Drop | FaultKind::Stall | FaultKind::BusOff => {}
                    FaultKind::Duplicate => {
                        next.push((d, p.clone()));
                        next.push((d, p));
                    }
                    FaultKind::Delay { delay_s, jitter_s } => {
                        let j = (2.0 * self.uniform() - 1.0) * jitter_s;
                        next.push((d + ((delay_s + j).max(0.0) * 1e9) as u64, p));
                    }
                    FaultKind::Corrupt { bits } => next.push((d, self.corrupt(p, bits))),
                    FaultKind::Reorder => match self.held_reorder[slot].take() {
                        // Already holding one: release both, swapped.
                        Some(h) => {
                            next.push((d, p));
                            next.push((d, h));
                        }
                        None => self.held_reorder[slot] = Some(p),
                    },
                    FaultKind::InsertBytes { count } => next.push((
                        d,
                        self.edit_bytes(p, |s, b| {
                            let at = (s.uniform() * (b.len() + 1) as f64) as usize;
                            let ins: Vec<u8> = (0..count).map(|_| s.rng.next_u32() as u8).collect();
                            b.splice(at..at, ins);
                        }),
                    )),
                    FaultKind::DeleteBytes { count } => next.push((
                        d,
                        self.edit_bytes(p, |s, b| {
                            let n = count.min(b.len());
                            let at = (s.uniform() * (b.len() - n + 1) as f64) as usize;
                            b.drain(at..at + n);
                        }),
                    )),
                    FaultKind::NoiseBurst { length } => next.push((
                        d,
                        self.edit_bytes(p, |s, b| {
                            let n = length.min(b.len());
                            let at = (s.uniform() * (b.len() - n + 1) as f64) as usize;
                            for x in &mut b[at..at + n] {
                                *x = s.rng.next_u32() as u8;
                            }
                        }),
                    )),
                    FaultKind::ErrorFrame => {
                        next.push((d, Packet::ErrorFrame));
                        next.push((d, p));
                    }
                    FaultKind::Babble { .. } => unreachable!("filtered above"),
                }
            }
            out = next;
        }
        // Packets not selected by any reorder rule but with one held: release the held
        // one after this packet (reorder by one position).
        if !rules
            .iter()
            .any(|r| r.active(t) && matches!(r.fault, FaultKind::Reorder))
            && let Some(h) = self.held_reorder[slot].take()
        {
            out.push((0, h));
        }
        out
    }

    fn corrupt(&mut self, p: Packet, bits: u32) -> Packet {
        match p {
            Packet::Bytes(mut b) if !b.is_empty() => {
                for _ in 0..bits {
                    let i = (self.uniform() * (b.len() * 8) as f64) as usize;
                    b[i / 8] ^= 1 << (i % 8);
                }
                Packet::Bytes(b)
            }
            Packet::Frame(mut f) if f.dlc > 0 => {
                for _ in 0..bits {
                    let i = (self.uniform() * (usize::from(f.dlc) * 8) as f64) as usize;
                    f.data[i / 8] ^= 1 << (i % 8);
                }
                Packet::Frame(f)
            }
            other => other,
        }
    }

    fn edit_bytes(&mut self, p: Packet, f: impl FnOnce(&mut Self, &mut Vec<u8>)) -> Packet {
        match p {
            Packet::Bytes(mut b) => {
                f(self, &mut b);
                Packet::Bytes(b)
            }
            other => other,
        }
    }

    /// Active babble rules: (id, rate).
    fn babble(&self) -> Option<(u32, f64)> {
        let t = self.clock.now_s();
        self.rules.lock().ok()?.iter().find_map(|r| match r.fault {
            FaultKind::Babble { id, rate_hz } if r.active(t) => Some((id, rate_hz)),
            _ => None,
        })
    }
}

/// The fault layer without a task, for callers that own the timing (the lockstep
/// runner): packets go through [`FaultInjector::apply`] synchronously, so the result is
/// reproducible and byte counts after the faults are known at once.
pub struct FaultInjector {
    inner: Injector,
    /// Control (rules, counters, clock).
    pub control: FaultControl,
}

impl FaultInjector {
    /// A layer with its own seeded random stream.
    pub fn new(seed: u64, clock: FaultClock) -> Self {
        let rules = Arc::new(Mutex::new(Vec::new()));
        let stats = Arc::new(FaultStats::default());
        let control = FaultControl {
            rules: rules.clone(),
            stats: stats.clone(),
            clock: clock.clone(),
        };
        Self {
            inner: Injector {
                rules,
                stats,
                clock,
                rng: ChaCha8Rng::seed_from_u64(seed),
                held_reorder: [None, None],
            },
            control,
        }
    }

    /// Applies the active rules to one packet: the packets to emit, each with a delay
    /// in ns (0 = now).
    pub fn apply(&mut self, dir: Direction, p: Packet) -> Vec<(u64, Packet)> {
        self.inner.apply(dir, p)
    }

    /// The active babble rule, if any: (identifier, frames per second).
    pub fn babble(&self) -> Option<(u32, f64)> {
        self.inner.babble()
    }
}

/// Wraps `inner` in a fault layer. `seed` makes every random choice reproducible.
pub fn wrap(mut inner: Link, seed: u64, clock: FaultClock) -> (Link, FaultControl) {
    let name = inner.name().to_string();
    let (outer, mut ends) = Link::new_pair(&name);
    let rules = Arc::new(Mutex::new(Vec::new()));
    let stats = Arc::new(FaultStats::default());
    let control = FaultControl {
        rules: rules.clone(),
        stats: stats.clone(),
        clock: clock.clone(),
    };
    let mut inj = Injector {
        rules,
        stats,
        clock,
        rng: ChaCha8Rng::seed_from_u64(seed),
        held_reorder: [None, None],
    };
    tokio::spawn(async move {
        // Delayed packets: (due ns, seq, direction rx?, packet).
        let mut delayed: VecDeque<(u64, u64, bool, Packet)> = VecDeque::new();
        let mut seq = 0u64;
        let mut tick = tokio::time::interval(std::time::Duration::from_micros(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut next_babble_ns = 0u64;
        let mut babble_count = 0u64;
        loop {
            tokio::select! {
                p = ends.to_task.recv() => {
                    let Some(p) = p else { return };
                    for (d, q) in inj.apply(Direction::Tx, p) {
                        if d == 0 {
                            let _ = inner.try_send(q.clone());
                            ends.sent(&q);
                        } else {
                            seq += 1;
                            insert_sorted(&mut delayed, (now_ns() + d, seq, false, q));
                        }
                    }
                }
                r = inner.recv() => match r {
                    Ok(rx) => {
                        let t = rx.t_ns;
                        let bus_t = rx.bus_t_ns;
                        for (d, q) in inj.apply(Direction::Rx, rx.packet) {
                            if d == 0 {
                                ends.deliver(Received { t_ns: t, bus_t_ns: bus_t, packet: q });
                            } else {
                                seq += 1;
                                insert_sorted(&mut delayed, (now_ns() + d, seq, true, q));
                            }
                        }
                    }
                    Err(e) => {
                        let cause = match e { crate::LinkError::Closed { cause, .. } => cause, other => other.to_string() };
                        let _ = ends.from_task.send(Event::Closed(cause)).await;
                        return;
                    }
                },
                _ = tick.tick() => {
                    let now = now_ns();
                    while delayed.front().is_some_and(|d| d.0 <= now) {
                        if let Some((_, _, rx, q)) = delayed.pop_front() {
                            if rx {
                                ends.deliver(Received { t_ns: now, bus_t_ns: None, packet: q });
                            } else {
                                let _ = inner.try_send(q.clone());
                                ends.sent(&q);
                            }
                        }
                    }
                    if let Some((id, rate)) = inj.babble() {
                        let period = (1e9 / rate.max(1.0)) as u64;
                        if next_babble_ns == 0 { next_babble_ns = now; }
                        // Bounded burst per tick: the link queue and the bus do the rest.
                        let mut burst = 0;
                        while next_babble_ns <= now && burst < 64 {
                            babble_count += 1;
                            let f = CanFrame::new(id, &babble_count.to_le_bytes());
                            if inner.try_send(Packet::Frame(f)).is_ok() {
                                inj.stats.record("babble");
                            }
                            next_babble_ns += period;
                            burst += 1;
                        }
                        if next_babble_ns + 10 * period < now { next_babble_ns = now; }
                    } else {
                        next_babble_ns = 0;
                    }
                }
            }
        }
    });
    (outer, control)
}

fn insert_sorted(q: &mut VecDeque<(u64, u64, bool, Packet)>, item: (u64, u64, bool, Packet)) {
    let pos = q.partition_point(|x| (x.0, x.1) <= (item.0, item.1));
    q.insert(pos, item);
}

#[cfg(test)]
mod kind_name_tests {
    use super::*;

    /// Every kind is counted under a name that scenarios may use (`KIND_NAMES`), and
    /// every name there belongs to a kind.
    #[test]
    fn kind_names_and_the_list_agree() {
        let kinds = [
            FaultKind::Drop,
            FaultKind::Duplicate,
            FaultKind::Delay {
                delay_s: 0.0,
                jitter_s: 0.0,
            },
            FaultKind::Corrupt { bits: 1 },
            FaultKind::Reorder,
            FaultKind::InsertBytes { count: 1 },
            FaultKind::DeleteBytes { count: 1 },
            FaultKind::NoiseBurst { length: 1 },
            FaultKind::Stall,
            FaultKind::ErrorFrame,
            FaultKind::Babble {
                id: 1,
                rate_hz: 1.0,
            },
            FaultKind::BusOff,
        ];
        let names: Vec<&str> = kinds.iter().map(kind_name).collect();
        assert_eq!(names, KIND_NAMES);
    }
}
