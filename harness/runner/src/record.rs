//! What a run records: bus traffic, device and avionics events, twin snapshots, peaks,
//! injections and, in real time, the loop's own timing.

use crate::devices::DeviceEvent;
use capsule_icd::can::CanFrame;
use serde::{Deserialize, Serialize};
use twin_core::twin::{Contact, Snapshot};

/// One frame on the bus, with its time.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRecord {
    /// Simulation time, s. In lockstep, the cycle the frame belongs to; in real time,
    /// for the flight computer's frames, the link's receive timestamp (the wire time)
    /// on the run's time base.
    pub t_s: f64,
    /// Sent by the flight computer (else by the harness's devices).
    pub from_fc: bool,
    /// The frame.
    pub frame: CanFrame,
}

/// Compact form `[t_s, from_fc, id, extended, rtr, "hex data"]` (a run has hundreds
/// of thousands of frames).
impl Serialize for FrameRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = &self.frame;
        (self.t_s, self.from_fc, f.id, f.extended, f.rtr, f.hex()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for FrameRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (t_s, from_fc, id, extended, rtr, data): (f64, bool, u32, bool, bool, String) =
            Deserialize::deserialize(d)?;
        let bytes = capsule_icd::can::parse_hex_bytes(&data)
            .filter(|b| b.len() <= 8)
            .ok_or_else(|| D::Error::custom(format!("bad frame data `{data}`")))?;
        let mut frame = CanFrame::new(id, &bytes);
        frame.extended = extended;
        frame.rtr = rtr;
        Ok(Self {
            t_s,
            from_fc,
            frame,
        })
    }
}

/// Why a run ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndReason {
    /// Splashdown plus the after-landing time.
    Landed,
    /// The time limit.
    MaxTime,
    /// Stopped by the operator (Ctrl-C): the record is incomplete.
    Interrupted,
}

/// FC mode names by `FC_Mode` value.
pub use capsule_icd::binding::FC_MODES as MODE_NAMES;

/// In-flight peaks, tracked every physics step until splashdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    /// Peak non-gravitational acceleration / g0.
    pub load_factor_g: f64,
    /// Peak load before any parachute is deployed (entry, burn), g.
    pub entry_load_factor_g: f64,
    /// Peak stagnation heat flux, W/m^2.
    pub heat_flux_w_m2: f64,
    /// Peak dynamic pressure, Pa.
    pub dynamic_pressure_pa: f64,
    /// Peak bondline temperature, K.
    pub bondline_k: f64,
    /// Velocity change delivered by the deorbit motor (truth: thrust over mass,
    /// integrated), m/s.
    pub deorbit_delta_v_m_s: f64,
}

/// The timing a real-time run must keep (from the bench file's `[timing]`). A run that
/// breaks any limit is marked so in its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimingBudget {
    /// Limit on the 99th percentile of step lateness, us.
    pub max_lateness_p99_us: f64,
    /// Limit on the worst step lateness, us.
    pub max_lateness_us: f64,
    /// Limit on the number of overruns (steps started more than one period late).
    pub max_overruns: u64,
    /// Limit on the 99th percentile of command latency (avionics command at the link
    /// to the actuator acting in physics), us.
    pub max_command_latency_p99_us: f64,
}

impl Default for TimingBudget {
    /// The defaults bench files inherit: p99 500 us, max 5 ms, no overrun, command
    /// latency p99 2 ms (our engineering choices for a 1 kHz loop).
    fn default() -> Self {
        Self {
            max_lateness_p99_us: 500.0,
            max_lateness_us: 5_000.0,
            max_overruns: 0,
            max_command_latency_p99_us: 2_000.0,
        }
    }
}

/// Percentiles of a sample, us.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median, us.
    pub p50_us: f64,
    /// 95th percentile, us.
    #[serde(default)]
    pub p95_us: f64,
    /// 99th percentile, us.
    pub p99_us: f64,
    /// 99.9th percentile, us.
    #[serde(default)]
    pub p999_us: f64,
    /// Worst, us.
    pub max_us: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of samples in ns (sorts them).
    pub fn of_ns<T: Copy + Ord + Into<u64>>(samples: &mut [T]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let k = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[k - 1].into() as f64 * 1e-3
        };
        Self {
            count: samples.len() as u64,
            p50_us: rank(0.50),
            p95_us: rank(0.95),
            p99_us: rank(0.99),
            p999_us: rank(0.999),
            max_us: rank(1.0),
        }
    }
}

/// A histogram of durations in ns with 3 significant digits (relative error under
/// 0.1 %) from 1 ns to 1 hour, in memory fixed when it is made: recording never
/// allocates, whatever the run's length. Values beyond an hour count as an hour.
#[derive(Debug, Clone)]
pub struct DurationHistogram(hdrhistogram::Histogram<u64>);

impl Default for DurationHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl DurationHistogram {
    /// Longest value kept exactly, ns (one hour).
    pub const MAX_NS: u64 = 3_600_000_000_000;

    /// An empty histogram.
    pub fn new() -> Self {
        // Bounds are constants that satisfy the crate's rules (low >= 1, high >= 2 low,
        // sigfig <= 5), so this cannot fail.
        Self(
            hdrhistogram::Histogram::new_with_bounds(1, Self::MAX_NS, 3)
                .expect("constant bounds the crate accepts"),
        )
    }

    /// Records one value (0 counts as 1 ns: below the resolution).
    pub fn record(&mut self, ns: u64) {
        self.0.saturating_record(ns.clamp(1, Self::MAX_NS));
    }

    /// Number of values.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Counts in log-spaced bins: (upper edge, us; count) for edges 1 us, 2 us, 4 us,
    /// ... up to the largest value; empty bins included, so the edges are fixed.
    pub fn log_bins(&self) -> Vec<(f64, u64)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        self.0
            .iter_log(1_000, 2.0)
            .map(|v| {
                (
                    v.value_iterated_to() as f64 * 1e-3,
                    v.count_since_last_iteration(),
                )
            })
            .collect()
    }

    /// Nearest-rank percentiles, us (each within 0.1 % of the exact value).
    pub fn percentiles(&self) -> Percentiles {
        if self.0.is_empty() {
            return Percentiles::default();
        }
        let at = |q: f64| self.0.value_at_quantile(q) as f64 * 1e-3;
        Percentiles {
            count: self.0.len(),
            p50_us: at(0.50),
            p95_us: at(0.95),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: self.0.max() as f64 * 1e-3,
        }
    }
}

/// The counters of every link of a run, and of the virtual bus when the runner made
/// one, when the run ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkCounters {
    /// (link name, counters), in the order can, imu, gnss.
    pub links: Vec<(String, capsule_links::StatsSnapshot)>,
    /// The virtual bus's own counters.
    pub bus: Option<capsule_links::vbus::BusCounters>,
}

impl LinkCounters {
    /// One line for the console: every link's counters, then the bus's.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .links
            .iter()
            .map(|(n, c)| format!("{n}: {c}"))
            .collect();
        if let Some(b) = &self.bus {
            parts.push(format!(
                "bus: {} frames, {} overload drops, {} malformed records",
                b.frames, b.overload_drops, b.bad_records
            ));
        }
        format!("links: {}", parts.join("; "))
    }
}

/// The loop's own timing in a real-time run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingReport {
    /// Physics step period, us.
    pub period_us: f64,
    /// Step lateness: wake-up time minus the step's deadline.
    pub lateness: Percentiles,
    /// Steps that started more than one period late.
    pub overruns: u64,
    /// Avionics command at the link (receive timestamp) to the start of the physics
    /// step that acts on it.
    pub command_latency: Percentiles,
    /// The budget the run was held to.
    pub budget: TimingBudget,
    /// Where the budget came from (a bench file's `[timing]`, or the defaults).
    #[serde(default)]
    pub budget_source: String,
    /// Every limit broken, in words (empty when the budget held).
    pub violations: Vec<String>,
    /// Step lateness in log-spaced bins: (upper edge, us; steps).
    #[serde(default)]
    pub lateness_bins: Vec<(f64, u64)>,
    /// When the overruns happened (simulation time, s; the first
    /// [`MAX_OVERRUN_TIMES`]).
    #[serde(default)]
    pub overrun_times_s: Vec<f64>,
    /// Command latency per command message (the DBC's `*_Command` messages the flight
    /// computer sends).
    #[serde(default)]
    pub command_latency_by_message: Vec<(String, Percentiles)>,
    /// Steps late by more than a tenth of the period.
    #[serde(default)]
    pub late_steps: u64,
    /// What the operating system granted the loop (timer slack, `SCHED_FIFO`, locked
    /// memory, pinning), in words.
    #[serde(default)]
    pub grants: String,
    /// The worst step lateness of each 100 ms of the run, us (from the run's start):
    /// what the harness's own loop was doing when a check on the avionics failed.
    #[serde(default)]
    pub lateness_trace_us: Vec<u32>,
    /// Simulation time of the trace's first entry, s.
    #[serde(default)]
    pub lateness_trace_t0_s: f64,
}

/// How long each entry of [`TimingReport::lateness_trace_us`] covers, s.
pub const LATENESS_TRACE_S: f64 = 0.1;

/// How many overrun times a timing report lists.
pub const MAX_OVERRUN_TIMES: usize = 1_000;

impl TimingReport {
    /// Builds the report and judges it against the budget.
    pub fn new(
        period_us: f64,
        lateness: Percentiles,
        overruns: u64,
        command_latency: Percentiles,
        budget: TimingBudget,
    ) -> Self {
        let mut v = Vec::new();
        if lateness.p99_us > budget.max_lateness_p99_us {
            v.push(format!(
                "step lateness p99 {:.0} us > {:.0} us",
                lateness.p99_us, budget.max_lateness_p99_us
            ));
        }
        if lateness.max_us > budget.max_lateness_us {
            v.push(format!(
                "step lateness max {:.0} us > {:.0} us",
                lateness.max_us, budget.max_lateness_us
            ));
        }
        if overruns > budget.max_overruns {
            v.push(format!("{overruns} overruns > {}", budget.max_overruns));
        }
        if command_latency.p99_us > budget.max_command_latency_p99_us {
            v.push(format!(
                "command latency p99 {:.0} us > {:.0} us",
                command_latency.p99_us, budget.max_command_latency_p99_us
            ));
        }
        Self {
            period_us,
            lateness,
            overruns,
            command_latency,
            budget,
            budget_source: String::new(),
            violations: v,
            lateness_bins: Vec::new(),
            overrun_times_s: Vec::new(),
            command_latency_by_message: Vec::new(),
            late_steps: 0,
            grants: String::new(),
            lateness_trace_us: Vec::new(),
            lateness_trace_t0_s: 0.0,
        }
    }

    /// The harness loop's worst step lateness between `from_s` and `to_s`
    /// (simulation time, s), us; `None` outside the trace.
    pub fn worst_lateness_us(&self, from_s: f64, to_s: f64) -> Option<u32> {
        let t0 = self.lateness_trace_t0_s;
        let (a, b) = (from_s.min(to_s) - t0, from_s.max(to_s) - t0);
        if b < 0.0 || self.lateness_trace_us.is_empty() {
            return None;
        }
        let first = (a.max(0.0) / LATENESS_TRACE_S).floor() as usize;
        let last = (b.max(0.0) / LATENESS_TRACE_S).floor() as usize;
        self.lateness_trace_us
            .get(first..=last.min(self.lateness_trace_us.len().saturating_sub(1)))
            .and_then(|w| w.iter().copied().max())
    }

    /// True when every limit held.
    pub fn met(&self) -> bool {
        self.violations.is_empty()
    }

    /// One line for the console: the harness loop's own timing, and where its budget
    /// came from.
    pub fn summary(&self) -> String {
        format!(
            "harness loop timing: step {:.0} us, lateness p50 {:.0} / p99 {:.0} / max {:.0} us over {} steps, {} late > 10 % of the step, {} overruns; command latency p50 {:.0} / p99 {:.0} / max {:.0} us over {} commands; budget from {}",
            self.period_us,
            self.lateness.p50_us,
            self.lateness.p99_us,
            self.lateness.max_us,
            self.lateness.count,
            self.late_steps,
            self.overruns,
            self.command_latency.p50_us,
            self.command_latency.p99_us,
            self.command_latency.max_us,
            self.command_latency.count,
            if self.budget_source.is_empty() {
                "the defaults"
            } else {
                &self.budget_source
            }
        )
    }
}

/// Everything a run saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// `lockstep` or `realtime`.
    pub clock: String,
    /// Bus traffic.
    pub frames: Vec<FrameRecord>,
    /// Device events.
    pub events: Vec<(f64, DeviceEvent)>,
    /// Splashdown, if it happened.
    pub contact: Option<Contact>,
    /// Twin snapshots at the snapshot interval and at every cycle with an event, in
    /// time order.
    pub snapshots: Vec<Snapshot>,
    /// Why the run ended.
    pub end: EndReason,
    /// Final simulation time, s.
    pub t_end_s: f64,
    /// Serial bytes sent (IMU, GNSS).
    pub serial_bytes: (u64, u64),
    /// In-flight peaks (before splashdown), tracked every physics step.
    pub peaks: Peaks,
    /// Every event by its scenario name, with its time, in time order: device events,
    /// `splashdown`, `fc_mode:<MODE>`, `fc_fault` and
    /// `fc_fault:<detail>` (the FC reported a fault; detail as `0x0108`),
    /// `fc_fault_cleared` and `fc_fault_cleared:<detail>` (reported gone),
    /// `inject:<id>`.
    pub named_events: Vec<(f64, String)>,
    /// Injections started and ended: (time, id, started).
    pub injections: Vec<(f64, String, bool)>,
    /// Bus faults injected, by `link.kind` (e.g. `imu.noise_burst`).
    pub faults_injected: std::collections::BTreeMap<String, u64>,
    /// The loop's timing (real-time runs only).
    pub timing: Option<TimingReport>,
    /// The links' counters at the end.
    pub links: LinkCounters,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_match_a_hand_count() {
        // 1..=100 us: p50 is the 50th value, p99 the 99th, max the 100th.
        let mut s: Vec<u64> = (1..=100).rev().map(|u| u * 1_000).collect();
        let p = Percentiles::of_ns(&mut s);
        assert_eq!(
            (p.count, p.p50_us, p.p99_us, p.max_us),
            (100, 50.0, 99.0, 100.0)
        );
        assert_eq!(Percentiles::of_ns::<u64>(&mut []), Percentiles::default());
    }

    #[test]
    fn histogram_percentiles_match_the_exact_ones_to_a_tenth_of_a_percent() {
        let mut h = DurationHistogram::new();
        let mut exact: Vec<u64> = Vec::new();
        let mut x = 12_345u64;
        for _ in 0..100_000 {
            // A deterministic spread over 1 us .. 10 ms.
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = 1_000 + (x >> 33) % 10_000_000;
            h.record(v);
            exact.push(v);
        }
        let (a, b) = (h.percentiles(), Percentiles::of_ns(&mut exact));
        assert_eq!(a.count, b.count);
        for (x, y) in [
            (a.p50_us, b.p50_us),
            (a.p99_us, b.p99_us),
            (a.max_us, b.max_us),
        ] {
            assert!((x - y).abs() <= y * 1e-3, "{x} vs {y}");
        }
        h.record(u64::MAX);
        assert!(h.percentiles().max_us <= DurationHistogram::MAX_NS as f64 * 1e-3 * 1.001);
    }

    #[test]
    fn log_bins_double_and_count_every_value() {
        let mut h = DurationHistogram::new();
        for ns in [500, 1_500, 1_600, 3_000, 9_000, 70_000] {
            h.record(ns);
        }
        let bins = h.log_bins();
        assert_eq!(bins.iter().map(|b| b.1).sum::<u64>(), 6);
        for w in bins.windows(2) {
            assert!((w[1].0 / w[0].0 - 2.0).abs() < 0.01, "{bins:?}");
        }
        // 1.5 and 1.6 us fall in the bin that ends at 2 us.
        let two = bins
            .iter()
            .find(|b| (b.0 - 2.0).abs() < 0.01)
            .expect("2 us bin");
        assert_eq!(two.1, 2, "{bins:?}");
        assert!(DurationHistogram::new().log_bins().is_empty());
    }

    #[test]
    fn a_broken_budget_names_every_limit() {
        let late = Percentiles {
            count: 10,
            p50_us: 10.0,
            p95_us: 500.0,
            p99_us: 900.0,
            p999_us: 5_000.0,
            max_us: 9_000.0,
        };
        let r = TimingReport::new(
            1000.0,
            late,
            3,
            Percentiles::default(),
            TimingBudget::default(),
        );
        assert!(!r.met());
        assert_eq!(r.violations.len(), 3, "{:?}", r.violations);
        assert!(r.violations[0].contains("p99 900 us > 500 us"));
        let ok = TimingReport::new(
            1000.0,
            Percentiles::default(),
            0,
            Percentiles::default(),
            TimingBudget::default(),
        );
        assert!(ok.met());
    }
}
