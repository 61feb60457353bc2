//! What the viewer knows of a run: the stream's records in time order, the time on
//! screen, and the replay controls. No Bevy rendering here: the HUD's text is made
//! from this alone, so it is tested without a GPU.

use bevy::prelude::Resource;
use std::collections::BTreeMap;
use twin_stream::{End, ExpectationState, ExpectationStatus, Header, Record, Snapshot};

/// Replay speeds, x real time.
pub const MIN_SPEED: f64 = 0.1;
/// See [`MIN_SPEED`].
pub const MAX_SPEED: f64 = 100.0;

/// The run as far as the viewer has it.
#[derive(Resource, Debug, Default)]
pub struct Timeline {
    /// The stream's header (absent until it arrives).
    pub header: Option<Header>,
    /// Snapshots in time order.
    pub snapshots: Vec<Snapshot>,
    /// Events in time order.
    pub events: Vec<(f64, String)>,
    /// The run's end, once judged.
    pub end: Option<End>,
    /// The latest state of each expectation, with the time it was judged.
    pub expectations: BTreeMap<String, (ExpectationState, String)>,
    /// The time on screen, s.
    pub t_view_s: f64,
    /// Replay: playing (else paused).
    pub playing: bool,
    /// Replay speed, x real time.
    pub speed: f64,
    /// Live: follow the newest snapshot (else a replay).
    pub live: bool,
    /// The live connection ended.
    pub disconnected: bool,
}

impl Timeline {
    /// An empty timeline; `live` follows the newest snapshot.
    pub fn new(live: bool) -> Self {
        Self {
            live,
            playing: !live,
            speed: 1.0,
            ..Self::default()
        }
    }

    /// Takes in records (in stream order).
    pub fn push(&mut self, records: impl IntoIterator<Item = Record>) {
        for r in records {
            match r {
                Record::Header(h) => self.header = Some(h),
                Record::Snapshot(s) => {
                    for e in &s.expectations {
                        self.set_state(e);
                    }
                    // A snapshot older than the newest (a late viewer's history then
                    // live lines are in order; anything else is ignored).
                    if self.snapshots.last().is_none_or(|l| s.t_s > l.t_s) {
                        self.snapshots.push(*s);
                    }
                }
                Record::Event { t_s, name } => self.events.push((t_s, name)),
                Record::End(e) => {
                    for x in &e.expectations {
                        self.set_state(x);
                    }
                    self.end = Some(e);
                }
            }
        }
        self.events
            .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        if self.live
            && let Some(l) = self.snapshots.last()
        {
            self.t_view_s = l.t_s;
        }
    }

    fn set_state(&mut self, e: &ExpectationStatus) {
        self.expectations
            .insert(e.id.clone(), (e.state, e.measured.clone()));
    }

    /// First and last snapshot times, s.
    pub fn span_s(&self) -> (f64, f64) {
        match (self.snapshots.first(), self.snapshots.last()) {
            (Some(a), Some(b)) => (a.t_s, b.t_s),
            _ => (0.0, 0.0),
        }
    }

    /// The snapshot on screen: the last one at or before the time on screen.
    pub fn current(&self) -> Option<&Snapshot> {
        let k = self
            .snapshots
            .partition_point(|s| s.t_s <= self.t_view_s + 1e-9);
        self.snapshots.get(k.saturating_sub(1))
    }

    /// Replay: advances the time on screen by `dt_s` of wall time.
    pub fn advance(&mut self, dt_s: f64) {
        if !self.live && self.playing {
            let (_, t1) = self.span_s();
            self.t_view_s = (self.t_view_s + dt_s * self.speed).min(t1);
            if self.t_view_s >= t1 {
                self.playing = false;
            }
        }
    }

    /// Replay: moves the time on screen (clamped to the run).
    pub fn seek(&mut self, t_s: f64) {
        let (t0, t1) = self.span_s();
        self.t_view_s = t_s.clamp(t0, t1);
    }

    /// Replay: multiplies the speed (kept within [`MIN_SPEED`] and [`MAX_SPEED`]).
    pub fn scale_speed(&mut self, factor: f64) {
        self.speed = (self.speed * factor).clamp(MIN_SPEED, MAX_SPEED);
    }

    /// Injections active at the time on screen, from the events.
    pub fn active_injections(&self) -> Vec<String> {
        let mut on: Vec<String> = Vec::new();
        for (t, n) in self.events.iter().filter(|(t, _)| *t <= self.t_view_s) {
            let _ = t;
            if let Some(id) = n.strip_prefix("inject:") {
                on.push(id.to_string());
            } else if let Some(id) = n.strip_prefix("inject_end:") {
                on.retain(|x| x != id);
            }
        }
        on
    }

    /// The HUD's left panel: time, mode and flight figures, links, faults.
    pub fn hud_flight(&self) -> String {
        let Some(s) = self.current() else {
            return "waiting for the run's first snapshot".into();
        };
        let h = self.header.as_ref();
        let mut t = String::new();
        t.push_str(&format!(
            "{}  {}\n",
            h.map_or("?", |h| h.scenario_id.as_str()),
            h.map_or("", |h| h.title.as_str())
        ));
        t.push_str(&format!(
            "t = {:.1} s  clock {}  {}\n",
            s.t_s,
            h.map_or("?", |h| h.clock.as_str()),
            if self.live {
                if self.disconnected {
                    "live (ended)".to_string()
                } else {
                    "live".to_string()
                }
            } else {
                format!(
                    "replay {} x{}",
                    if self.playing { "playing" } else { "paused" },
                    trim_speed(self.speed)
                )
            }
        ));
        let a = &s.avionics;
        t.push_str(&format!(
            "avionics mode {}\n",
            a.mode.as_deref().unwrap_or("(not reported)")
        ));
        t.push_str(&format!("altitude {:.1} km", s.altitude_m / 1000.0));
        if let Some(e) = a.est_altitude_m {
            t.push_str(&format!(" (avionics {:.1} km)", e / 1000.0));
        }
        t.push('\n');
        t.push_str(&format!(
            "speed {:.0} m/s  Mach {:.2}\n",
            s.airspeed_m_s, s.mach
        ));
        t.push_str(&format!(
            "deceleration {:.2} g  q {:.1} kPa\n",
            s.load_factor_g,
            s.dynamic_pressure_pa / 1000.0
        ));
        t.push_str(&format!(
            "heat flux {:.0} kW/m2  shield {:.0} K\n",
            s.heat_flux_w_m2 / 1000.0,
            s.heat_shield_surface_k
        ));
        t.push_str(&format!("bank {:.1} deg  phase {}\n", s.bank_deg, s.phase));
        t.push_str(&format!(
            "GNSS {}{}\n",
            match a.gnss_fix {
                Some(true) => "fix",
                Some(false) => "no fix",
                None => "?",
            },
            if s.gnss_blackout { " (blackout)" } else { "" }
        ));
        for c in s.parachutes.iter().filter(|c| c.phase != "stowed") {
            t.push_str(&format!(
                "{} {} ({:.0} m2)\n",
                c.name, c.phase, c.drag_area_m2
            ));
        }
        for l in &s.links {
            t.push_str(&format!(
                "link {} tx {} rx {} err {} drop {}{}\n",
                l.name,
                l.tx,
                l.rx,
                l.errors,
                l.drops,
                l.silent_s
                    .filter(|s| *s >= 0.5)
                    .map_or(String::new(), |s| format!(" silent {s:.1} s"))
            ));
        }
        let faults = if self.live {
            s.active_injections.clone()
        } else {
            self.active_injections()
        };
        if faults.is_empty() {
            t.push_str("faults: none active\n");
        } else {
            t.push_str(&format!("faults: {}\n", faults.join(", ")));
        }
        t
    }

    /// The HUD's right panel: every expectation with its state.
    pub fn hud_expectations(&self) -> String {
        let mut t = String::new();
        if let Some(e) = &self.end {
            t.push_str(&format!("verdict {}\n", e.verdict));
        } else {
            t.push_str("verdict pending\n");
        }
        let ids: Vec<String> = match &self.header {
            Some(h) => h.expectations.iter().map(|e| e.id.clone()).collect(),
            None => self.expectations.keys().cloned().collect(),
        };
        for id in ids {
            let (state, measured) = self
                .expectations
                .get(&id)
                .cloned()
                .unwrap_or((ExpectationState::Pending, String::new()));
            let mark = match state {
                ExpectationState::Pending => "pending",
                ExpectationState::Holding => "holding",
                ExpectationState::Passed => "PASSED",
                ExpectationState::Failed => "FAILED",
            };
            let m: String = measured.chars().take(48).collect();
            t.push_str(&format!("{mark:<8} {id}  {m}\n"));
        }
        t
    }
}

fn trim_speed(s: f64) -> String {
    let t = format!("{s:.2}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t_s: f64, alt: f64) -> Record {
        Record::Snapshot(Box::new(Snapshot {
            t_s,
            altitude_m: alt,
            ..Snapshot::default()
        }))
    }

    #[test]
    fn the_hud_shows_the_snapshot_on_screen() {
        let mut tl = Timeline::new(false);
        tl.push([
            Record::Header(Header::new("SCN-9", "t", "lockstep", "replay")),
            snap(0.0, 120_000.0),
            snap(10.0, 61_234.0),
            snap(20.0, 30_000.0),
        ]);
        tl.seek(12.0);
        assert!(
            tl.hud_flight().contains("altitude 61.2 km"),
            "{}",
            tl.hud_flight()
        );
        tl.seek(-5.0);
        assert_eq!(tl.t_view_s, 0.0);
        tl.playing = true;
        tl.speed = 100.0;
        tl.advance(1.0);
        assert_eq!(tl.t_view_s, 20.0, "clamped to the end, and paused there");
        assert!(!tl.playing);
        tl.scale_speed(10.0);
        assert_eq!(tl.speed, MAX_SPEED);
        tl.scale_speed(1e-6);
        assert_eq!(tl.speed, MIN_SPEED);
    }

    #[test]
    fn injections_are_active_between_their_events() {
        let mut tl = Timeline::new(false);
        tl.push([
            snap(0.0, 1.0),
            snap(100.0, 1.0),
            Record::Event {
                t_s: 10.0,
                name: "inject:imu-dropout".into(),
            },
            Record::Event {
                t_s: 20.0,
                name: "inject_end:imu-dropout".into(),
            },
        ]);
        tl.seek(15.0);
        assert_eq!(tl.active_injections(), vec!["imu-dropout".to_string()]);
        tl.seek(25.0);
        assert!(tl.active_injections().is_empty());
    }
}
