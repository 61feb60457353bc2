//! Judging a run against a scenario's expectations.

use crate::spec::{Expectation, Scenario, SignalCheck};
use capsule_icd::Icd;
use capsule_runner::record::{EndReason, RunRecord};
use serde::Serialize;
use twin_core::twin::Snapshot;

/// Verdict of one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Every expectation held.
    Pass,
    /// At least one expectation failed.
    Fail,
    /// The run could not be completed (named cause elsewhere).
    Error,
    /// The run was stopped (Ctrl-C) before its end: the expectations were judged on
    /// what was recorded, but the verdict cannot stand.
    Incomplete,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Error => "ERROR",
            Verdict::Incomplete => "INCOMPLETE",
        })
    }
}

/// Result of one expectation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationResult {
    /// Expectation id.
    pub id: String,
    /// Requirement.
    pub requirement: String,
    /// Held? (On what was recorded; see `judged`.)
    pub passed: bool,
    /// Judged on a complete run. False when the run was stopped before its end: the
    /// expectation could still have gone either way, so it is neither a pass nor a
    /// failure (JUnit: skipped).
    pub judged: bool,
    /// What was required.
    pub expected: String,
    /// What was measured.
    pub measured: String,
    /// The measured value as a number with its unit, when the form has one, beside the
    /// bound it was judged against.
    pub measurement: Option<Measurement>,
}

/// A measured value, its unit and time, and the bound it was judged against.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Measurement {
    /// What was measured (a signal, an outcome, `gap`, `delay`, `count`, ...).
    pub quantity: String,
    /// The value (not finite when the quantity could not be measured: JSON `null`).
    pub value: Option<f64>,
    /// Its unit (`s`, `m`, `Hz`, `count`, a DBC unit; empty when dimensionless).
    pub unit: String,
    /// When it was measured, s (simulation time), if at one moment.
    pub t_s: Option<f64>,
    /// The lower bound judged against, if any.
    pub min: Option<f64>,
    /// The upper bound judged against, if any.
    pub max: Option<f64>,
}

impl Measurement {
    fn new(quantity: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        Self {
            quantity: quantity.into(),
            value: value.is_finite().then_some(value),
            unit: unit.into(),
            t_s: None,
            min: None,
            max: None,
        }
    }
    fn at(mut self, t_s: f64) -> Self {
        self.t_s = t_s.is_finite().then_some(t_s);
        self
    }
    fn bounds(mut self, min: Option<f64>, max: Option<f64>) -> Self {
        self.min = min;
        self.max = max;
        self
    }
}

/// The unit of a signal or outcome: the DBC's for CAN signals, else from the name's
/// unit suffix (`_m_s` m/s, `_w_m2` W/m^2, `_m`, `_s`, `_k`, `_deg`, `_pa`, `_g`,
/// `_km`); `mach` is dimensionless.
pub fn unit_of(name: &str, db: &Icd) -> String {
    if let Some(role) = name.strip_prefix("icd.") {
        return db
            .binding
            .role(role)
            .map(|s| s.dimension.twin_unit().to_string())
            .unwrap_or_default();
    }
    if let Some((m, sig)) = name.strip_prefix("can.").and_then(|r| r.split_once('.')) {
        return db
            .by_name(m)
            .and_then(|d| d.signal(sig))
            .map(|s| s.unit.clone())
            .unwrap_or_default();
    }
    const SUFFIXES: [(&str, &str); 10] = [
        ("_m_s", "m/s"),
        ("_w_m2", "W/m^2"),
        ("_km", "km"),
        ("_m", "m"),
        ("_s", "s"),
        ("_k", "K"),
        ("_deg", "deg"),
        ("_pa", "Pa"),
        ("_g", "g"),
        ("_hz", "Hz"),
    ];
    SUFFIXES
        .iter()
        .find(|(suf, _)| name.ends_with(suf))
        .map_or(String::new(), |(_, u)| (*u).to_string())
}

/// What judging one expectation gives: verdict, texts, and the number.
struct Judged(bool, String, String, Option<Measurement>);

/// Result of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioResult {
    /// Scenario id.
    pub id: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Per expectation (and, for a real-time run, `timing-budget`).
    pub expectations: Vec<ExpectationResult>,
    /// `lockstep` or `realtime`.
    pub clock: String,
    /// The loop's timing (real-time runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<capsule_runner::record::TimingReport>,
    /// The run was stopped before its end.
    pub incomplete: bool,
    /// Simulated time reached, s.
    pub t_end_s: f64,
    /// The links' counters at the end of the run.
    pub links: capsule_runner::record::LinkCounters,
}

/// In real time, what the harness's own loop was doing during a gap the avionics left:
/// its worst step lateness then, and whose stall that makes it.
fn whose_stall(run: &RunRecord, from_s: f64, to_s: f64) -> String {
    let Some(t) = &run.timing else {
        return String::new();
    };
    match t.worst_lateness_us(from_s, to_s) {
        Some(w) if f64::from(w) <= t.period_us => format!(
            "; the harness loop kept time during the gap (worst step lateness {w} us): the avionics' stall"
        ),
        Some(w) => format!(
            "; the harness loop was itself {w} us late during the gap: the stall may be the harness's"
        ),
        None => String::new(),
    }
}

/// Slack of a rate check's longest gap: one 10 ms FC cycle (plus 0.1 ms for
/// rounding), s.
pub const RATE_SLACK_S: f64 = 0.0101;

/// Requirement ID of the wire-integrity check every run gets: the flight computer
/// sends no frame with another node's identifier (event `can_id_conflict:<Message>`).
pub const ICD_REQUIREMENT: &str = "ICD-IDS";

/// Requirement ID of the timing budget check of real-time runs (from the bench file).
pub const TIMING_REQUIREMENT: &str = "BENCH-TIMING";

/// Every event of a run as (time, name), in time order.
pub fn events(run: &RunRecord) -> Vec<(f64, String)> {
    run.named_events.clone()
}

fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(p) => name.starts_with(p),
        None => pattern == name,
    }
}

/// A signal's samples over a run, in time order: truth signals at the recorded
/// snapshots (read between them by linear interpolation), CAN signals at each frame
/// of their message on the wire (held until the next).
struct Series {
    name: String,
    samples: Vec<(f64, f64)>,
    interpolate: bool,
}

impl Series {
    fn of(run: &RunRecord, db: &Icd, name: &str) -> Series {
        let fc_node = db.binding.fc.node.as_str();
        if let Some(role) = name.strip_prefix("icd.") {
            // A bound signal, in the twin's unit, from its own side's frames.
            let samples = match db.binding.role(role) {
                Some(sig) => {
                    let fc_sends = sig.message().transmitter == fc_node;
                    run.frames
                        .iter()
                        .filter(|r| {
                            r.frame.id == sig.id()
                                && !r.frame.rtr
                                && r.from_fc == fc_sends
                                && r.frame.dlc >= sig.message().dlc
                        })
                        .map(|r| (r.t_s, sig.read(&r.frame)))
                        .collect()
                }
                None => Vec::new(),
            };
            return Series {
                name: name.to_string(),
                samples,
                interpolate: false,
            };
        }
        let samples = match name.strip_prefix("can.").and_then(|r| r.split_once('.')) {
            // A message is judged on its own transmitter's frames only: a frame with a
            // device's identifier sent by the flight computer (a forgery, or an
            // identifier conflict) never counts as the device's.
            Some((m, sig)) => match db
                .by_name(m)
                .and_then(|d| Some((d.id, d.transmitter == fc_node, d.signal(sig)?)))
            {
                Some((id, fc_sends, sd)) => run
                    .frames
                    .iter()
                    .filter(|r| r.frame.id == id && !r.frame.rtr && r.from_fc == fc_sends)
                    .map(|r| (r.t_s, sd.physical(sd.extract(&r.frame.data))))
                    .collect(),
                None => Vec::new(),
            },
            None => run
                .snapshots
                .iter()
                .filter_map(|s| Some((s.t_s, signal(s, name)?)))
                .collect(),
        };
        Series {
            name: name.to_string(),
            samples,
            interpolate: !name.starts_with("can.") && !name.starts_with("icd."),
        }
    }

    /// The value at `t` (none before the first sample).
    fn at(&self, t: f64) -> Option<f64> {
        let k = self.samples.partition_point(|(ts, _)| *ts <= t + 1e-9);
        let (ta, va) = *self.samples.get(k.checked_sub(1)?)?;
        match self.samples.get(k) {
            Some(&(tb, vb)) if self.interpolate && tb > ta => {
                Some(va + (vb - va) * ((t - ta) / (tb - ta)).clamp(0.0, 1.0))
            }
            _ => Some(va),
        }
    }

    /// The samples in [from, until].
    fn within(&self, from: f64, until: f64) -> impl Iterator<Item = &(f64, f64)> {
        self.samples
            .iter()
            .filter(move |(t, _)| *t >= from - 1e-9 && *t <= until + 1e-9)
    }
}

/// What one check says about a value at `t`: the text of the failure, if it fails.
fn check_value(c: &SignalCheck, v: f64, t: f64, near: Option<&Series>) -> Result<f64, String> {
    if !in_bounds(v, c.min, c.max) || !v.is_finite() {
        return Err(format!(
            "{} = {v:.3} at t = {t:.2} s (expected {})",
            c.signal,
            bounds_text(c.min, c.max)
        ));
    }
    match (near, c.tolerance) {
        (Some(r), Some(tol)) => {
            let Some(rv) = r.at(t) else {
                return Err(format!("{} has no value at t = {t:.2} s", r.name));
            };
            let d = (v - rv).abs();
            if d > tol {
                Err(format!(
                    "{} = {v:.3} at t = {t:.2} s, {} = {rv:.3}: differs by {d:.3} (> {tol})",
                    c.signal, r.name
                ))
            } else {
                Ok(d)
            }
        }
        _ => Ok(0.0),
    }
}

fn check_text(c: &SignalCheck) -> String {
    let mut parts = Vec::new();
    if c.min.is_some() || c.max.is_some() {
        parts.push(format!("{} {}", c.signal, bounds_text(c.min, c.max)));
    }
    if let (Some(n), Some(t)) = (&c.near, c.tolerance) {
        parts.push(format!("{} within {t} of {n}", c.signal));
    }
    parts.join(", ")
}

/// The scope of a `never` or `always` expectation: (from, until, text).
fn scope(
    x: &Expectation,
    evs: &[(f64, String)],
    run: &RunRecord,
) -> Result<(f64, f64, String), String> {
    let first_after = |pattern: &str, t0: f64| {
        evs.iter()
            .find(|(t, n)| *t >= t0 - 1e-9 && matches(pattern, n))
            .map(|(t, _)| *t)
    };
    if let Some(m) = &x.during {
        let entered = format!("fc_mode:{m}");
        let Some(from) = first_after(&entered, f64::NEG_INFINITY) else {
            return Err(format!("the FC never entered {m}"));
        };
        let until = evs
            .iter()
            .find(|(t, n)| *t >= from - 1e-9 && n.starts_with("fc_mode:") && *n != entered)
            .map_or(run.t_end_s, |(t, _)| *t);
        return Ok((
            from,
            until,
            format!(" during {m} ({from:.2} to {until:.2} s)"),
        ));
    }
    let from = match &x.from {
        Some(e) => {
            first_after(e, f64::NEG_INFINITY).ok_or_else(|| format!("{e} never happened"))?
        }
        None => f64::NEG_INFINITY,
    };
    let until = x
        .until
        .as_deref()
        .and_then(|e| first_after(e, from))
        .unwrap_or(run.t_end_s);
    let text = match (&x.from, &x.until) {
        (None, None) => String::new(),
        (f, u) => format!(
            " from {} until {} ({} to {until:.2} s)",
            f.as_deref().unwrap_or("the start"),
            u.as_deref().unwrap_or("the end"),
            if from.is_finite() {
                format!("{from:.2}")
            } else {
                "0".into()
            }
        ),
    };
    Ok((from, until, text))
}

fn signal(s: &Snapshot, name: &str) -> Option<f64> {
    Some(match name {
        "truth.time_s" => s.t_s,
        "truth.altitude_m" => s.altitude_m,
        "truth.mach" => s.mach,
        "truth.airspeed_m_s" => s.airspeed_m_s,
        "truth.dynamic_pressure_pa" => s.dynamic_pressure_pa,
        "truth.load_factor_g" => s.load_factor_g,
        "truth.heat_flux_w_m2" => s.heat_flux_w_m2,
        "truth.heat_shield_surface_k" => s.heat_shield_surface_k,
        "truth.bondline_k" => s.bondline_k,
        _ => return None,
    })
}

fn in_bounds(v: f64, min: Option<f64>, max: Option<f64>) -> bool {
    min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m)
}

fn bounds_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("in [{a}, {b}]"),
        (Some(a), None) => format!(">= {a}"),
        (None, Some(b)) => format!("<= {b}"),
        (None, None) => "any".into(),
    }
}

/// Great-circle distance on a 6371-km sphere, km.
pub fn great_circle_km(lat1_rad: f64, lon1_rad: f64, lat2_rad: f64, lon2_rad: f64) -> f64 {
    let h = ((lat2_rad - lat1_rad) * 0.5).sin().powi(2)
        + lat1_rad.cos() * lat2_rad.cos() * ((lon2_rad - lon1_rad) * 0.5).sin().powi(2);
    2.0 * 6_371.0 * h.sqrt().min(1.0).asin()
}

fn judge(
    x: &Expectation,
    run: &RunRecord,
    db: &Icd,
    evs: &[(f64, String)],
    s: &Scenario,
) -> Judged {
    let unit = |n: &str| unit_of(n, db);
    if let Some(at) = &x.at {
        let expected = format!(
            "at {at}: {}",
            x.check
                .iter()
                .map(|c| format!("{} {}", c.signal, bounds_text(c.min, c.max)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let Some((t, _)) = evs.iter().find(|(_, n)| matches(at, n)) else {
            return Judged(false, expected, format!("{at} never happened"), None);
        };
        let mut ok = true;
        let mut parts = vec![format!("t = {t:.2} s")];
        // The number for the record: the first check that failed, else the first.
        let (mut first, mut failed) = (None, None);
        for c in &x.check {
            let v = Series::of(run, db, &c.signal).at(*t).unwrap_or(f64::NAN);
            let near = c.near.as_deref().map(|n| Series::of(run, db, n));
            let this_ok = check_value(c, v, *t, near.as_ref()).is_ok();
            ok &= this_ok;
            if !this_ok && failed.is_none() {
                failed = Some(
                    Measurement::new(&c.signal, v, unit(&c.signal))
                        .at(*t)
                        .bounds(c.min, c.max),
                );
            }
            parts.push(format!("{} = {v:.3}", c.signal));
            if let Some(r) = &near {
                parts.push(format!("{} = {:.3}", r.name, r.at(*t).unwrap_or(f64::NAN)));
            }
            first.get_or_insert_with(|| {
                Measurement::new(&c.signal, v, unit(&c.signal))
                    .at(*t)
                    .bounds(c.min, c.max)
            });
        }
        return Judged(ok, expected, parts.join(", "), failed.or(first));
    }
    if let (Some(e), None) = (&x.event, x.window_s) {
        // Order: the event's first occurrence comes after `after` and before `before`
        // (in the order things happened, which within one cycle is the wire order).
        let expected = match (&x.after, &x.before) {
            (Some(a), Some(b)) => format!("{e} after {a} and before {b}"),
            (Some(a), None) => format!("{e} after {a}"),
            (None, Some(b)) => format!("{e} before {b}"),
            (None, None) => format!("{e} in order"),
        };
        let first = |p: &str| evs.iter().position(|(_, n)| matches(p, n));
        let Some(ie) = first(e) else {
            return Judged(false, expected, format!("{e} never happened"), None);
        };
        let te = evs[ie].0;
        let m = Some(Measurement::new(format!("time of {e}"), te, "s").at(te));
        let mut measured = vec![format!("{} at {te:.2} s", evs[ie].1)];
        let mut ok = true;
        if let Some(a) = &x.after {
            match first(a) {
                Some(ia) => {
                    ok &= ia < ie;
                    measured.push(format!("{} at {:.2} s", evs[ia].1, evs[ia].0));
                }
                None => {
                    ok = false;
                    measured.push(format!("{a} never happened"));
                }
            }
        }
        if let Some(b) = &x.before {
            match first(b) {
                Some(ib) => {
                    ok &= ie < ib;
                    measured.push(format!("{} at {:.2} s", evs[ib].1, evs[ib].0));
                }
                None => measured.push(format!("{b} did not happen")),
            }
        }
        return Judged(ok, expected, measured.join(", "), m);
    }
    if let (Some(a), Some(e), Some([lo, hi])) = (&x.after, &x.event, x.window_s) {
        let expected = format!("{e} within [{lo}, {hi}] s after {a}");
        let Some((ta, _)) = evs.iter().find(|(_, n)| matches(a, n)) else {
            return Judged(false, expected, format!("{a} never happened"), None);
        };
        let quantity = format!("delay of {e} after {a}");
        return match evs.iter().find(|(t, n)| matches(e, n) && *t >= ta - 1e-9) {
            Some((te, _)) => {
                let d = te - ta;
                Judged(
                    d >= lo - 1e-9 && d <= hi + 1e-9,
                    expected,
                    format!("{e} {d:.3} s after {a}"),
                    Some(
                        Measurement::new(quantity, d, "s")
                            .at(*te)
                            .bounds(Some(lo), Some(hi)),
                    ),
                )
            }
            None => Judged(
                false,
                expected,
                format!("{e} never happened after {a} (t = {ta:.2} s)"),
                Some(Measurement::new(quantity, f64::NAN, "s").bounds(Some(lo), Some(hi))),
            ),
        };
    }
    if let Some(o) = &x.outcome {
        let expected = format!("{o} {}", bounds_text(x.min, x.max));
        let landing = run.contact.map(|c| c.t_s);
        let (v, t) = match o.as_str() {
            "landing_speed_m_s" => (run.contact.map(|c| c.speed_m_s), landing),
            "landing_vertical_speed_m_s" => (run.contact.map(|c| c.vertical_speed_m_s), landing),
            "landing_time_s" => (run.contact.map(|c| c.t_s), landing),
            "peak_load_factor_g" => (Some(run.peaks.load_factor_g), None),
            "peak_heat_flux_w_m2" => (Some(run.peaks.heat_flux_w_m2), None),
            "peak_bondline_k" => (Some(run.peaks.bondline_k), None),
            "deorbit_delta_v_m_s" => (Some(run.peaks.deorbit_delta_v_m_s), None),
            "peak_entry_load_factor_g" => (Some(run.peaks.entry_load_factor_g), None),
            "landing_latitude_deg" => (
                run.contact.map(|c| c.geodetic.latitude_rad.to_degrees()),
                landing,
            ),
            "landing_longitude_deg" => (
                run.contact.map(|c| c.geodetic.longitude_rad.to_degrees()),
                landing,
            ),
            "landing_distance_to_target_km" => (
                match (run.contact, s.initial.target) {
                    (Some(c), Some(t)) => Some(great_circle_km(
                        c.geodetic.latitude_rad,
                        c.geodetic.longitude_rad,
                        t.latitude_deg.to_radians(),
                        t.longitude_deg.to_radians(),
                    )),
                    _ => None,
                },
                landing,
            ),
            other => (
                other
                    .strip_prefix("injected:")
                    .map(|k| run.faults_injected.get(k).copied().unwrap_or(0) as f64),
                None,
            ),
        };
        let u = if o.starts_with("injected:") {
            "count".to_string()
        } else {
            unit(o)
        };
        let m = |v: f64| {
            let m = Measurement::new(o, v, u.clone()).bounds(x.min, x.max);
            Some(match t {
                Some(t) => m.at(t),
                None => m,
            })
        };
        return match v {
            Some(v) => Judged(
                in_bounds(v, x.min, x.max),
                expected,
                format!("{o} = {v:.3}"),
                m(v),
            ),
            None => Judged(
                false,
                expected,
                format!("{o}: not available (no splashdown?)"),
                m(f64::NAN),
            ),
        };
    }
    if let (Some(m), Some(rate)) = (&x.message, x.min_rate_hz) {
        // The tolerance is part of the requirement's text: the flight computer sends on
        // 10 ms cycle boundaries, so a gap may exceed the period by one cycle.
        let expected = format!(
            "{m} at >= {rate} Hz throughout (mean rate >= {rate} Hz, and no gap longer than 1/{rate} s + {:.0} ms, one FC cycle of time quantisation)",
            RATE_SLACK_S * 1e3
        );
        let quantity = format!("longest gap between {m} frames");
        let bound = Some(1.0 / rate + RATE_SLACK_S);
        let def = match m.strip_prefix("icd.") {
            Some(role) => db.binding.message_role(role),
            None => db.by_name(m),
        };
        let Some(def) = def else {
            return Judged(false, expected, format!("{m} is not in the DBC"), None);
        };
        let times: Vec<f64> = run
            .frames
            .iter()
            .filter(|r| r.from_fc && r.frame.id == def.id)
            .map(|r| r.t_s)
            .collect();
        if times.is_empty() {
            let gap = Measurement::new(quantity, run.t_end_s, "s").bounds(None, bound);
            return Judged(false, expected, format!("no {m} at all"), Some(gap));
        }
        // The longest silence, including the run's end.
        let (mut gap, mut gap_t) = (times[0], 0.0);
        for w in times.windows(2) {
            if w[1] - w[0] > gap {
                (gap, gap_t) = (w[1] - w[0], w[0]);
            }
        }
        if run.t_end_s - times[times.len() - 1] > gap {
            (gap, gap_t) = (run.t_end_s - times[times.len() - 1], times[times.len() - 1]);
        }
        let gap_ok = gap <= 1.0 / rate + RATE_SLACK_S;
        // The mean rate over the run (first frame to the end): a slower sender whose
        // gaps fit in the slack still fails.
        let span = (run.t_end_s - times[0]).max(1e-9);
        let mean_hz = times.len() as f64 / span;
        let mean_ok = times.len() < 2 || mean_hz + 1e-9 >= rate || span < 2.0 / rate;
        let mut measured = format!(
            "longest gap {gap:.3} s (rate {:.2} Hz)",
            1.0 / gap.max(1e-9)
        );
        if !gap_ok {
            measured.push_str(&whose_stall(run, gap_t, gap_t + gap));
        }
        let number = if gap_ok && !mean_ok {
            Measurement::new(format!("mean rate of {m}"), mean_hz, "Hz").bounds(Some(rate), None)
        } else {
            Measurement::new(quantity, gap, "s")
                .at(gap_t)
                .bounds(None, bound)
        };
        return Judged(
            gap_ok && mean_ok,
            expected,
            if mean_ok {
                measured
            } else {
                format!("mean rate {mean_hz:.2} Hz; {measured}")
            },
            Some(number),
        );
    }
    if let Some(want) = &x.modes {
        let got: Vec<String> = evs
            .iter()
            .filter_map(|(_, n)| n.strip_prefix("fc_mode:").map(str::to_string))
            .collect();
        return Judged(
            got == *want,
            format!("modes {}", want.join(" > ")),
            format!("modes {}", got.join(" > ")),
            None,
        );
    }
    if let Some(n) = &x.never {
        let (from, until, text) = match scope(x, evs, run) {
            Ok(s) => s,
            Err(m) => return Judged(false, format!("never {n} (scoped)"), m, None),
        };
        let expected = format!("never {n}{text}");
        let hits: Vec<&(f64, String)> = evs
            .iter()
            .filter(|(t, e)| *t >= from - 1e-9 && *t <= until + 1e-9 && matches(n, e))
            .collect();
        let m = Measurement::new(format!("count of {n}"), hits.len() as f64, "count")
            .bounds(None, Some(0.0));
        return match hits.first() {
            Some((t, e)) => Judged(false, expected, format!("{e} at {t:.2} s"), Some(m.at(*t))),
            None => Judged(true, expected, "did not happen".into(), Some(m)),
        };
    }
    if let Some(n) = &x.count {
        let (from, until, text) = match scope(x, evs, run) {
            Ok(s) => s,
            Err(m) => return Judged(false, format!("count {n} (scoped)"), m, None),
        };
        let k = evs
            .iter()
            .filter(|(t, e)| *t >= from - 1e-9 && *t <= until + 1e-9 && matches(n, e))
            .count();
        let expected = format!("count {n}{text} {}", bounds_text(x.min, x.max));
        let ok = x.min.is_none_or(|lo| k as f64 >= lo) && x.max.is_none_or(|hi| k as f64 <= hi);
        let m = Measurement::new(format!("count of {n}"), k as f64, "count").bounds(x.min, x.max);
        return Judged(ok, expected, format!("{n} happened {k} times"), Some(m));
    }
    if let Some(checks) = &x.always {
        let (from, until, text) = match scope(x, evs, run) {
            Ok(s) => s,
            Err(m) => return Judged(false, "always (scoped)".into(), m, None),
        };
        let expected = format!(
            "always{text}: {}",
            checks.iter().map(check_text).collect::<Vec<_>>().join("; ")
        );
        let mut measured = Vec::new();
        let mut first = None;
        for c in checks {
            let series = Series::of(run, db, &c.signal);
            let near = c.near.as_deref().map(|n| Series::of(run, db, n));
            let (mut n, mut lo, mut hi, mut worst_d) = (
                0usize,
                (f64::INFINITY, 0.0),
                (f64::NEG_INFINITY, 0.0),
                (0.0f64, 0.0),
            );
            for &(t, v) in series.within(from, until) {
                match check_value(c, v, t, near.as_ref()) {
                    Err(m) => {
                        let number = Measurement::new(&c.signal, v, unit(&c.signal))
                            .at(t)
                            .bounds(c.min, c.max);
                        return Judged(false, expected, m, Some(number));
                    }
                    Ok(d) if d > worst_d.0 => worst_d = (d, t),
                    Ok(_) => {}
                }
                n += 1;
                if v < lo.0 {
                    lo = (v, t);
                }
                if v > hi.0 {
                    hi = (v, t);
                }
            }
            if n == 0 {
                return Judged(
                    false,
                    expected,
                    format!("no sample of {} in the scope", c.signal),
                    None,
                );
            }
            // The number for the record: the value nearest to breaking its check.
            let number = match (&near, c.tolerance) {
                (Some(r), Some(tol)) => Measurement::new(
                    format!("largest difference of {} from {}", c.signal, r.name),
                    worst_d.0,
                    unit(&c.signal),
                )
                .at(worst_d.1)
                .bounds(None, Some(tol)),
                _ => {
                    let (v, t) = if c.max.is_some() { hi } else { lo };
                    Measurement::new(&c.signal, v, unit(&c.signal))
                        .at(t)
                        .bounds(c.min, c.max)
                }
            };
            first.get_or_insert(number);
            measured.push(match &near {
                Some(r) => format!(
                    "{}: {n} samples, largest difference from {} {:.3}",
                    c.signal, r.name, worst_d.0
                ),
                None => format!("{}: {n} samples in [{:.3}, {:.3}]", c.signal, lo.0, hi.0),
            });
        }
        return Judged(true, expected, measured.join("; "), first);
    }
    Judged(
        false,
        "a valid expectation".into(),
        "none of the forms is set".into(),
        None,
    )
}

/// Judges a run.
pub fn evaluate(s: &Scenario, run: &RunRecord, db: &Icd) -> ScenarioResult {
    let evs = events(run);
    let expectations: Vec<ExpectationResult> = s
        .expect
        .iter()
        .map(|x| {
            let Judged(passed, expected, measured, measurement) = judge(x, run, db, &evs, s);
            ExpectationResult {
                id: x.id.clone(),
                requirement: x.requirement.clone(),
                passed,
                judged: run.end != EndReason::Interrupted,
                expected,
                measured,
                measurement,
            }
        })
        .collect();
    let mut expectations = expectations;
    // A real-time run is held to its bench's timing budget, in the verdict.
    if let Some(t) = &run.timing {
        expectations.push(ExpectationResult {
            id: "timing-budget".into(),
            requirement: TIMING_REQUIREMENT.into(),
            passed: t.met(),
            judged: run.end != EndReason::Interrupted,
            expected: format!(
                "step lateness p99 <= {:.0} us, max <= {:.0} us; overruns <= {}; command latency p99 <= {:.0} us",
                t.budget.max_lateness_p99_us,
                t.budget.max_lateness_us,
                t.budget.max_overruns,
                t.budget.max_command_latency_p99_us
            ),
            measured: if t.met() {
                format!(
                    "lateness p99 {:.0} us, max {:.0} us; {} overruns; command latency p99 {:.0} us",
                    t.lateness.p99_us, t.lateness.max_us, t.overruns, t.command_latency.p99_us
                )
            } else {
                t.violations.join("; ")
            },
            measurement: Some(
                Measurement::new("step lateness p99", t.lateness.p99_us, "us")
                    .bounds(None, Some(t.budget.max_lateness_p99_us)),
            ),
        });
    }
    // Identifier conflicts fail the run unless the scenario allows them (listed only
    // when they happen).
    let conflicts: Vec<&(f64, String)> = evs
        .iter()
        .filter(|(_, e)| e.starts_with("can_id_conflict:"))
        .collect();
    if !conflicts.is_empty() && !s.run.allow_can_id_conflicts {
        let (t0, first) = conflicts[0];
        expectations.push(ExpectationResult {
            id: "can-id-conflict".into(),
            requirement: ICD_REQUIREMENT.into(),
            passed: false,
            judged: run.end != EndReason::Interrupted,
            expected:
                "never can_id_conflict:* (the flight computer sends only its own identifiers)"
                    .into(),
            measured: format!(
                "{} frames with another node's identifier, the first {first} at t = {t0:.3} s",
                conflicts.len()
            ),
            measurement: Some(
                Measurement::new(
                    "count of can_id_conflict:*",
                    conflicts.len() as f64,
                    "count",
                )
                .at(*t0)
                .bounds(None, Some(0.0)),
            ),
        });
    }
    let incomplete = run.end == EndReason::Interrupted;
    let verdict = if incomplete {
        Verdict::Incomplete
    } else if expectations.iter().all(|e| e.passed) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    ScenarioResult {
        id: s.scenario.id.clone(),
        verdict,
        expectations,
        clock: run.clock.to_string(),
        timing: run.timing.clone(),
        incomplete,
        t_end_s: run.t_end_s,
        links: run.links.clone(),
    }
}
