//! Parachutes: pyro-commanded deployment, line stretch, inflation, reefing and
//! disreef, release, and failure modes.

use crate::vehicle::ParachuteSpec;
use serde::{Deserialize, Serialize};

/// Phase of one parachute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChutePhase {
    /// Packed.
    Stowed,
    /// Pyro fired; bag and lines paying out (no drag yet).
    Deploying,
    /// Canopy filling towards its (reefed or full) drag area.
    Inflating,
    /// Held at the reefed drag area.
    Reefed,
    /// Reefing line cut; filling to full drag area.
    Disreefing,
    /// Fully open.
    Open,
    /// Released or lines cut: no longer attached.
    Released,
    /// Commanded but did not come out (failure).
    Failed,
}

/// Injected parachute failure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChuteFault {
    /// The canopy never leaves the bag.
    FailsToDeploy,
    /// Inflates to only this fraction of its drag area.
    PartialInflation {
        /// Fraction of the full drag area (0..1).
        fraction: f64,
    },
    /// Lines cut (the canopy is lost) at this time after line stretch, s.
    LineCut {
        /// Seconds after line stretch.
        after_s: f64,
    },
}

/// One parachute's dynamic state.
#[derive(Debug, Clone, PartialEq)]
pub struct Parachute {
    /// Its spec.
    pub spec: ParachuteSpec,
    /// Phase.
    pub phase: ChutePhase,
    /// Time of the deploy command, s.
    pub fired_at_s: Option<f64>,
    /// Time of line stretch, s.
    pub line_stretch_at_s: Option<f64>,
    /// Injected fault, if any.
    pub fault: Option<ChuteFault>,
    /// Largest force seen since line stretch (opening load), N.
    pub peak_load_n: f64,
}

impl Parachute {
    /// A stowed parachute.
    pub fn new(spec: ParachuteSpec) -> Self {
        Self {
            spec,
            phase: ChutePhase::Stowed,
            fired_at_s: None,
            line_stretch_at_s: None,
            fault: None,
            peak_load_n: 0.0,
        }
    }

    /// Pyro command: start deployment at `t_s` (ignored unless stowed).
    pub fn deploy(&mut self, t_s: f64) {
        if self.phase != ChutePhase::Stowed {
            return;
        }
        self.fired_at_s = Some(t_s);
        self.phase = if matches!(self.fault, Some(ChuteFault::FailsToDeploy)) {
            ChutePhase::Failed
        } else {
            ChutePhase::Deploying
        };
    }

    /// Deployed earlier: the pyro fired at `fired_at_s` (before `t_s`, the present);
    /// the phase is the one the deployment sequence has reached by `t_s` (initial
    /// conditions that start under a parachute).
    pub fn deployed_at(&mut self, fired_at_s: f64, t_s: f64) {
        if self.phase != ChutePhase::Stowed {
            return;
        }
        self.deploy(fired_at_s);
        // Deploying -> Inflating (at line stretch), then the inflation / reefing phase
        // reached by `t_s`.
        self.update_phase(t_s);
        self.update_phase(t_s);
    }

    /// True in the phases with a canopy in the air (inflating, reefed, disreefing,
    /// open): the only ones [`cd_s_at`](Self::cd_s_at) can be non-zero in.
    #[inline]
    pub fn is_out(&self) -> bool {
        matches!(
            self.phase,
            ChutePhase::Inflating | ChutePhase::Reefed | ChutePhase::Disreefing | ChutePhase::Open
        )
    }

    /// Release / riser cut command.
    pub fn release(&mut self) {
        if !matches!(self.phase, ChutePhase::Stowed | ChutePhase::Failed) {
            self.phase = ChutePhase::Released;
        }
    }

    fn final_fraction(&self) -> f64 {
        match self.fault {
            Some(ChuteFault::PartialInflation { fraction }) => fraction.clamp(0.0, 1.0),
            _ => 1.0,
        }
    }

    /// Updates the phase for time `t_s` (call once per step, before forces).
    pub fn update_phase(&mut self, t_s: f64) {
        let s = &self.spec;
        match self.phase {
            ChutePhase::Deploying => {
                if let Some(f) = self.fired_at_s
                    && t_s >= f + s.line_stretch_s
                {
                    self.line_stretch_at_s = Some(f + s.line_stretch_s);
                    self.phase = ChutePhase::Inflating;
                }
            }
            ChutePhase::Inflating | ChutePhase::Reefed | ChutePhase::Disreefing => {
                let Some(ls) = self.line_stretch_at_s else {
                    return;
                };
                let dt = t_s - ls;
                if let Some(ChuteFault::LineCut { after_s }) = self.fault
                    && dt >= after_s
                {
                    self.phase = ChutePhase::Released;
                    return;
                }
                self.phase = match &s.reefing {
                    None => {
                        if dt >= s.inflation_time_s {
                            ChutePhase::Open
                        } else {
                            ChutePhase::Inflating
                        }
                    }
                    Some(r) => {
                        if dt < s.inflation_time_s {
                            ChutePhase::Inflating
                        } else if dt < r.disreef_after_s {
                            ChutePhase::Reefed
                        } else if dt < r.disreef_after_s + r.disreef_inflation_s {
                            ChutePhase::Disreefing
                        } else {
                            ChutePhase::Open
                        }
                    }
                };
            }
            ChutePhase::Open => {
                if let (Some(ChuteFault::LineCut { after_s }), Some(ls)) =
                    (self.fault, self.line_stretch_at_s)
                    && t_s - ls >= after_s
                {
                    self.phase = ChutePhase::Released;
                }
            }
            _ => {}
        }
    }

    /// Drag area at time `t_s`, m^2 (continuous within a phase, for the integrator).
    #[inline]
    pub fn cd_s_at(&self, t_s: f64) -> f64 {
        // Stowed, deploying, failed and released canopies first: they are most calls.
        if !self.is_out() {
            return 0.0;
        }
        let Some(ls) = self.line_stretch_at_s else {
            return 0.0;
        };
        let s = &self.spec;
        let full = s.full_cd_s_m2() * self.final_fraction();
        let first_target = s.reefing.as_ref().map_or(full, |r| r.cd_s_m2.min(full));
        if self.phase == ChutePhase::Open {
            // Fully open (the values of the branches below once inflation and any
            // disreefing are over; a phase does not change within a step).
            return match s.reefing {
                None => full,
                Some(_) => first_target + (full - first_target),
            };
        }
        let dt = (t_s - ls).max(0.0);
        if dt < s.inflation_time_s {
            return first_target * (dt / s.inflation_time_s).powf(s.inflation_exponent);
        }
        match &s.reefing {
            None => full,
            Some(r) => {
                if dt < r.disreef_after_s {
                    first_target
                } else {
                    let x = (dt - r.disreef_after_s) / r.disreef_inflation_s;
                    if x >= 1.0 {
                        // Fully disreefed (the expression at x = 1, without powf).
                        first_target + (full - first_target)
                    } else {
                        first_target + (full - first_target) * x.powf(s.inflation_exponent)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vehicle::ReefingSpec;

    fn spec(reefing: Option<ReefingSpec>) -> ParachuteSpec {
        ParachuteSpec {
            name: "p".into(),
            cd_s_m2: Some(2.0),
            cd: None,
            diameter_m: None,
            attach_m: [0.0; 3],
            line_stretch_s: 0.6,
            inflation_time_s: 0.5,
            inflation_exponent: 2.0,
            reefing,
        }
    }

    /// A parachute deployed some time ago is where a live deployment from that moment
    /// would be now: the same phase and drag area.
    #[test]
    fn deployed_earlier_matches_a_live_deployment() {
        let reef = ReefingSpec {
            cd_s_m2: 1.0,
            disreef_after_s: 4.0,
            disreef_inflation_s: 1.0,
        };
        for reefing in [None, Some(reef)] {
            for ago_s in [0.3, 0.8, 2.0, 4.9, 20.0] {
                let now_s = 100.0;
                let mut live = Parachute::new(spec(reefing.clone()));
                live.deploy(now_s - ago_s);
                let mut t = now_s - ago_s;
                while t < now_s {
                    t = (t + 0.001).min(now_s);
                    live.update_phase(t);
                }
                let mut snap = Parachute::new(spec(reefing.clone()));
                snap.deployed_at(now_s - ago_s, now_s);
                assert_eq!(snap.phase, live.phase, "ago {ago_s} s");
                assert!((snap.cd_s_at(now_s) - live.cd_s_at(now_s)).abs() < 1e-9);
            }
        }
        let mut open = Parachute::new(spec(None));
        open.deployed_at(80.0, 100.0);
        assert_eq!(open.phase, ChutePhase::Open);
        assert_eq!(open.cd_s_at(100.0), 2.0);
    }
}
