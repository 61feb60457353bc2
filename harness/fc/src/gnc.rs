//! Guidance and control: attitude control with the cold-gas RCS (three-axis hold for
//! the deorbit burn and the approach to the atmosphere, bank-angle control in entry),
//! and entry guidance by a numerical predictor-corrector.
//!
//! Everything here works from the FC's own navigation state (inertial frame of the
//! ICD) and its own knowledge of the vehicle (jet geometry, ballistic coefficient,
//! lift-to-drag ratio, an atmosphere table), never from the twin.
//!
//! # Entry guidance
//! Once a second the guidance integrates the point-mass equations of motion from the
//! navigated state down to 12 km (near the drogue deployment) for a
//! candidate bank-angle magnitude, and finds by bisection the magnitude whose predicted
//! end point lies abeam the landing target (the downrange error is zero). The
//! deceleration limit is a constraint: when the solution's predicted peak load exceeds
//! [`G_LIMIT_PREDICTED`], the magnitude is lowered (more lift up) until it does not.
//! The bank's sign steers crossrange: it reverses when the target lies more than a
//! velocity-dependent deadband on the other side of the current ground track (Apollo's
//! lateral logic). The drag measured by the IMU against the model's corrects the
//! predictor's density (a filtered ratio), so dispersions in the atmosphere or the
//! aerodynamics are absorbed.

pub use crate::nav::air_velocity;
use crate::nav::{
    F, NavState, OMEGA_RAD_S, RE_M, ecef_to_inertial, geodetic_to_ecef, gravity, inertial_to_ecef,
};
use glam::{DQuat, DVec3};

const G0: f64 = crate::G0_M_S2;

/// The FC's knowledge of its vehicle: centre of gravity (body frame, m).
const CG_M: DVec3 = DVec3::new(-0.26, 0.0, 0.06);
/// RCS jets in `RCS_ValveCmd` bit order: position (body, m) and thrust (body, N).
const JETS: [(DVec3, DVec3); 8] = [
    (DVec3::new(-0.45, 0.0, 0.35), DVec3::new(0.0, -5.0, 0.0)),
    (DVec3::new(-0.45, 0.0, -0.35), DVec3::new(0.0, 5.0, 0.0)),
    (DVec3::new(-0.45, 0.0, 0.35), DVec3::new(0.0, 5.0, 0.0)),
    (DVec3::new(-0.45, 0.0, -0.35), DVec3::new(0.0, -5.0, 0.0)),
    (DVec3::new(-0.90, 0.0, 0.15), DVec3::new(0.0, 0.0, -5.0)),
    (DVec3::new(-0.90, 0.0, -0.15), DVec3::new(0.0, 0.0, 5.0)),
    (DVec3::new(-0.90, 0.15, 0.0), DVec3::new(0.0, -5.0, 0.0)),
    (DVec3::new(-0.90, -0.15, 0.0), DVec3::new(0.0, 5.0, 0.0)),
];
/// Trim angle of attack, rad (hypersonic; 22.5 deg).
pub const TRIM_ALPHA_RAD: f64 = std::f64::consts::FRAC_PI_8;
/// Trim lift-to-drag ratio.
pub const LIFT_TO_DRAG: f64 = 0.15;
/// Ballistic coefficient on the drag, kg/m².
pub const BALLISTIC_KG_M2: f64 = 316.0;
/// Deceleration limit the guidance protects (requirement 4 g, less a margin for the prediction error), g.
pub const G_LIMIT_PREDICTED: f64 = 3.8;
/// Smallest bank-angle magnitude while the target lies well off the ground track, rad
/// (lift turned sideways to steer; costs 1 - cos 30 deg = 13 % of the vertical lift).
const LATERAL_MIN_BANK_RAD: f64 = 30.0 * std::f64::consts::PI / 180.0;
/// Largest bank-angle magnitude the guidance commands, rad.
const MAX_BANK_RAD: f64 = 170.0 * std::f64::consts::PI / 180.0;
/// The predictor stops at this altitude (near the drogue deployment; the descent under
/// the parachutes adds little range), m.
const PREDICT_END_ALTITUDE_M: f64 = 12_000.0;
/// The guidance stops updating below this airspeed (the bank is held), m/s.
pub const GUIDANCE_END_AIRSPEED_M_S: f64 = 500.0;

/// US Standard Atmosphere 1976 density, kg/m³, every 10 km from 0 to 150 km (the FC's
/// table; log-linear between entries).
const RHO_TABLE: [f64; 16] = [
    1.225, 4.135_1e-1, 8.891_0e-2, 1.841_0e-2, 3.995_7e-3, 1.026_9e-3, 3.096_8e-4, 8.282_9e-5,
    1.845_8e-5, 3.416e-6, 5.604e-7, 9.708e-8, 2.222e-8, 8.152e-9, 3.831e-9, 2.076e-9,
];

/// Density from the FC's table, kg/m³.
pub fn density_kg_m3(altitude_m: f64) -> f64 {
    let x = (altitude_m / 10_000.0).clamp(0.0, 14.999);
    let k = x.floor() as usize;
    let f = x - k as f64;
    (RHO_TABLE[k].ln() * (1.0 - f) + RHO_TABLE[k + 1].ln() * f).exp()
}

/// Quick altitude above the ellipsoid (geocentric-latitude approximation), m.
fn altitude_quick_m(r: DVec3) -> f64 {
    let rn = r.length();
    let s2 = (r.z / rn).powi(2);
    rn - RE_M * (1.0 - F * s2)
}

fn earth_rate() -> DVec3 {
    DVec3::new(0.0, 0.0, OMEGA_RAD_S)
}

/// Bank angle of the lift vector about the air-relative velocity (0 lift up, positive
/// lift to the right), rad, from the navigated attitude (the trim lift lies along the
/// body's +z axis tilted by the trim angle).
pub fn bank_rad(s: &NavState) -> f64 {
    let v = air_velocity(s).normalize_or(DVec3::X);
    let up = s.position_m.normalize_or(DVec3::Z);
    let l0 = (up - v * up.dot(v)).normalize_or(DVec3::Y);
    let right = v.cross(l0);
    let (sa, ca) = TRIM_ALPHA_RAD.sin_cos();
    let lift = s.inertial_from_body * DVec3::new(-sa, 0.0, ca);
    let l = lift - v * lift.dot(v);
    l.dot(right).atan2(l.dot(l0))
}

/// The attitude (inertial from body) that flies at trim with the lift at `bank`.
pub fn trim_attitude(s: &NavState, bank: f64) -> DQuat {
    let v = air_velocity(s).normalize_or(DVec3::X);
    let up = s.position_m.normalize_or(DVec3::Z);
    let l0 = (up - v * up.dot(v)).normalize_or(DVec3::Y);
    let right = v.cross(l0);
    let lift = l0 * bank.cos() + right * bank.sin();
    let (sa, ca) = TRIM_ALPHA_RAD.sin_cos();
    let u_b = DVec3::new(ca, 0.0, sa);
    let l_b = DVec3::new(-sa, 0.0, ca);
    let body = glam::DMat3::from_cols(u_b, l_b, u_b.cross(l_b));
    let inertial = glam::DMat3::from_cols(v, lift, v.cross(lift));
    DQuat::from_mat3(&(inertial * body.transpose())).normalize()
}

/// The deorbit-burn attitude: the motor axis (+x) along minus the inertial velocity,
/// body +z towards the Earth.
pub fn retrograde_attitude(s: &NavState) -> DQuat {
    let x = (-s.velocity_m_s).normalize_or(DVec3::X);
    let down = -s.position_m.normalize_or(DVec3::Z);
    let z = (down - x * down.dot(x)).normalize_or(x.any_orthonormal_vector());
    let y = z.cross(x);
    DQuat::from_mat3(&glam::DMat3::from_cols(x, y, z)).normalize()
}

/// Torque of each jet about the centre of gravity, body frame, N m.
pub fn jet_torques() -> [DVec3; 8] {
    JETS.map(|(p, f)| (p - CG_M).cross(f))
}

/// Valve mask that torques about body axis `axis` (0 x, 1 y, 2 z) in direction `sign`,
/// from the jets not isolated: those whose torque is mostly about that axis.
pub fn jets_for(axis: usize, sign: f64, isolated: u8) -> u8 {
    let mut mask = 0;
    for (k, t) in jet_torques().iter().enumerate() {
        let a = t.to_array();
        let main = (0..3)
            .max_by(|&i, &j| a[i].abs().total_cmp(&a[j].abs()))
            .unwrap_or(0);
        if main == axis && a[axis] * sign > 0.0 && isolated & (1 << k) == 0 {
            mask |= 1 << k;
        }
    }
    mask
}

/// Phase-plane rate controller per axis: jets fire when the rate error exceeds the
/// deadband. `rate_cmd` and `rate` are body-frame, rad/s.
pub fn rate_control(rate_cmd: DVec3, rate: DVec3, deadband_rad_s: f64, isolated: u8) -> u8 {
    let err = (rate_cmd - rate).to_array();
    let mut mask = 0;
    for (axis, e) in err.iter().enumerate() {
        if e.abs() > deadband_rad_s {
            mask |= jets_for(axis, e.signum(), isolated);
        }
    }
    mask
}

/// Three-axis attitude hold: the rate command points the body at `target` at up to
/// `max_rate` rad/s.
pub fn attitude_control(s: &NavState, target: DQuat, rate: DVec3, isolated: u8) -> (u8, f64) {
    let mut q_err = s.inertial_from_body.inverse() * target;
    if q_err.w < 0.0 {
        q_err = -q_err;
    }
    let e = q_err.to_scaled_axis();
    let max_rate = 3.0_f64.to_radians();
    let cmd = (e * 0.15).clamp_length_max(max_rate);
    (
        rate_control(cmd, rate, 0.2_f64.to_radians(), isolated),
        e.length(),
    )
}

/// Bank-angle control in the atmosphere: roll about the air-relative velocity towards
/// `bank_cmd` at up to 15 deg/s; pitch and yaw left to the aerodynamic stability, with
/// their rates damped above 5 deg/s.
pub fn bank_control(s: &NavState, bank_cmd: f64, rate: DVec3, isolated: u8) -> u8 {
    let bank = bank_rad(s);
    let err = wrap(bank_cmd - bank);
    let max_rate = 15.0_f64.to_radians();
    let roll_cmd = (err * 0.6).clamp(-max_rate, max_rate);
    // Roll about the velocity seen in the body frame.
    let v_b = (s.inertial_from_body.inverse() * air_velocity(s)).normalize_or(DVec3::X);
    let roll_rate = rate.dot(v_b);
    let mut mask = 0;
    let e = roll_cmd - roll_rate;
    if e.abs() > 1.0_f64.to_radians() {
        mask |= jets_for(0, e.signum(), isolated);
    }
    let damp = 5.0_f64.to_radians();
    for axis in [1, 2] {
        let r = rate.to_array()[axis];
        if r.abs() > damp {
            mask |= jets_for(axis, -r.signum(), isolated);
        }
    }
    mask
}

/// An angle wrapped to (-pi, pi].
pub fn wrap(a: f64) -> f64 {
    let t = std::f64::consts::TAU;
    let w = a.rem_euclid(t);
    if w > std::f64::consts::PI { w - t } else { w }
}

/// Earth-fixed unit vector (from the centre) of a point on the WGS-84 ellipsoid at a
/// geodetic latitude/longitude, deg.
pub fn ecef_unit(lat_deg: f64, lon_deg: f64) -> DVec3 {
    geodetic_to_ecef(lat_deg, lon_deg, 0.0).normalize()
}

/// What a prediction found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Downrange error, m: positive when the target lies beyond the predicted end point.
    pub downrange_m: f64,
    /// Highest predicted load, g.
    pub peak_g: f64,
}

/// The entry guidance state.
#[derive(Debug, Clone)]
pub struct EntryGuidance {
    /// Landing target (Earth-fixed unit vector).
    target_ecef: DVec3,
    /// Density correction (measured drag over modelled).
    pub density_ratio: f64,
    /// Sign of the bank (+1 right, -1 left).
    pub sign: f64,
    /// Current bank-angle magnitude, rad.
    pub magnitude_rad: f64,
    /// Bank reversals so far.
    pub reversals: u32,
    /// Time of the last update, s.
    last_update_s: f64,
    /// Crossrange to the target from the current ground track (right positive), m.
    pub crossrange_m: f64,
}

impl EntryGuidance {
    /// Guidance to a target at geodetic latitude/longitude, deg.
    pub fn new(lat_deg: f64, lon_deg: f64) -> Self {
        Self {
            target_ecef: ecef_unit(lat_deg, lon_deg),
            density_ratio: 1.0,
            sign: 0.0,
            magnitude_rad: 0.0,
            reversals: 0,
            last_update_s: f64::NEG_INFINITY,
            crossrange_m: 0.0,
        }
    }

    /// The commanded bank angle, rad.
    pub fn bank_cmd_rad(&self) -> f64 {
        self.magnitude_rad * if self.sign == 0.0 { 1.0 } else { self.sign }
    }

    /// Takes the drag measured by the IMU (specific force along minus the air-relative
    /// velocity, m/s²) at a navigated state, to correct the predictor's density.
    pub fn measure_drag(&mut self, s: &NavState, drag_m_s2: f64) {
        let v = air_velocity(s).length();
        let rho = density_kg_m3(altitude_quick_m(s.position_m));
        let model = rho * v * v / (2.0 * BALLISTIC_KG_M2);
        if drag_m_s2 > 1.0 && model > 0.5 {
            let r = (drag_m_s2 / model).clamp(0.3, 3.0);
            self.density_ratio += 0.05 * (r - self.density_ratio);
        }
    }

    /// Runs the guidance (at most once per second) and returns the bank command, rad.
    /// `wrong_sign` is the seeded defect that flips the lateral logic.
    pub fn update(&mut self, s: &NavState, wrong_sign: bool) -> f64 {
        if s.t_s - self.last_update_s < 1.0 - 1e-9 {
            return self.bank_cmd_rad();
        }
        self.last_update_s = s.t_s;
        let v_air = air_velocity(s);
        let speed = v_air.length();
        // Lateral: target side of the current ground track.
        let n = s.position_m.cross(v_air).normalize_or(DVec3::Z);
        let target_in = ecef_to_inertial(self.target_ecef, s.t_s);
        self.crossrange_m = -target_in.dot(n).clamp(-1.0, 1.0).asin() * RE_M;
        let side = if wrong_sign { -1.0 } else { 1.0 } * self.crossrange_m.signum();
        if self.sign == 0.0 {
            self.sign = if side == 0.0 { 1.0 } else { side };
        }
        let deadband_m = 1_000.0 + 12_000.0 * (speed / 7_400.0).powi(2);
        if self.crossrange_m.abs() > deadband_m && side != self.sign {
            self.sign = side;
            self.reversals += 1;
        }
        if speed < GUIDANCE_END_AIRSPEED_M_S {
            return self.bank_cmd_rad();
        }
        // Longitudinal: bisection on the magnitude for zero downrange error.
        let p0 = self.predict(s, 0.0);
        let pmax = self.predict(s, MAX_BANK_RAD);
        let mut mag = if p0.downrange_m >= 0.0 {
            0.0
        } else if pmax.downrange_m <= 0.0 {
            MAX_BANK_RAD
        } else {
            let (mut lo, mut hi) = (0.0, MAX_BANK_RAD);
            for _ in 0..12 {
                let mid = 0.5 * (lo + hi);
                if self.predict(s, mid).downrange_m < 0.0 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        };
        // Crossrange needs some bank: at least [`LATERAL_MIN_BANK_RAD`] while the target
        // is 10 km or more off the ground track (less, in proportion, closer in).
        let lateral_min = LATERAL_MIN_BANK_RAD * (self.crossrange_m.abs() / 10_000.0).min(1.0);
        if mag < lateral_min {
            mag = lateral_min;
        }
        // Deceleration limit.
        if self.predict(s, mag).peak_g > G_LIMIT_PREDICTED {
            let (mut lo, mut hi) = (0.0, mag);
            for _ in 0..10 {
                let mid = 0.5 * (lo + hi);
                if self.predict(s, mid).peak_g > G_LIMIT_PREDICTED {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            mag = lo;
        }
        self.magnitude_rad = mag;
        self.bank_cmd_rad()
    }

    /// Integrates the point-mass entry from `s` with a constant bank magnitude (the
    /// current sign) down to [`PREDICT_END_ALTITUDE_M`].
    pub fn predict(&self, s: &NavState, magnitude: f64) -> Prediction {
        let bank = magnitude * if self.sign == 0.0 { 1.0 } else { self.sign };
        let (sb, cb) = bank.sin_cos();
        let accel = |r: DVec3, v: DVec3| -> (DVec3, f64) {
            let va = v - earth_rate().cross(r);
            let speed = va.length();
            let h = altitude_quick_m(r);
            let rho = density_kg_m3(h) * self.density_ratio;
            let drag = rho * speed * speed / (2.0 * BALLISTIC_KG_M2);
            let vh = va / speed.max(1e-3);
            let up = r.normalize();
            let l0 = (up - vh * up.dot(vh)).normalize_or(DVec3::Y);
            let right = vh.cross(l0);
            let lift_dir = l0 * cb + right * sb;
            let aero = -vh * drag + lift_dir * (drag * LIFT_TO_DRAG);
            (aero + gravity(r), aero.length() / G0)
        };
        let (mut r, mut v, mut t) = (s.position_m, s.velocity_m_s, s.t_s);
        let mut peak_g: f64 = 0.0;
        for _ in 0..20_000 {
            let va = v - earth_rate().cross(r);
            let h = altitude_quick_m(r);
            if va.length() < 20.0 || h < PREDICT_END_ALTITUDE_M || t - s.t_s > 4_000.0 {
                break;
            }
            let dt = if h > 90_000.0 { 4.0 } else { 1.0 };
            // Midpoint (RK2).
            let (a1, g1) = accel(r, v);
            let rm = r + v * (0.5 * dt);
            let vm = v + a1 * (0.5 * dt);
            let (a2, g2) = accel(rm, vm);
            r += vm * dt;
            v += a2 * dt;
            t += dt;
            peak_g = peak_g.max(g1).max(g2);
        }
        // Downrange error along the end state's direction of flight (Earth-fixed).
        let r_e = inertial_to_ecef(r, t).normalize();
        let va_e = inertial_to_ecef(v - earth_rate().cross(r), t);
        let n = r_e.cross(va_e).normalize_or(DVec3::Z);
        let ahead = r_e.cross(self.target_ecef).dot(n);
        let downrange = ahead.atan2(r_e.dot(self.target_ecef)) * RE_M;
        Prediction {
            downrange_m: downrange,
            peak_g,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_density_matches_us76_at_its_nodes_and_between() {
        // Nodes are US76 Table I values; 25 km (US76: 4.0084e-2) is interpolated.
        assert!((density_kg_m3(0.0) - 1.225).abs() < 1e-12);
        let mid = density_kg_m3(25_000.0);
        assert!((mid / 4.008_4e-2 - 1.0).abs() < 0.02, "{mid}");
    }

    #[test]
    fn roll_jets_give_pure_roll_and_each_axis_has_both_signs() {
        let t = jet_torques();
        let roll_pos = t[0] + t[1];
        assert!((roll_pos.x - 3.5).abs() < 1e-9 && roll_pos.y.abs() < 1e-9);
        assert!(roll_pos.z.abs() < 1e-9);
        for axis in 0..3 {
            for sign in [-1.0, 1.0] {
                let m = jets_for(axis, sign, 0);
                assert_ne!(m, 0, "axis {axis} sign {sign}");
                let sum: DVec3 = (0..8).filter(|k| m & (1 << k) != 0).map(|k| t[k]).sum();
                assert!(sum.to_array()[axis] * sign > 1.0, "axis {axis} sign {sign}");
            }
        }
        // An isolated jet is never selected; its partner still torques.
        let m = jets_for(0, 1.0, 0b01);
        assert_eq!(m, 0b10);
    }

    #[test]
    fn trim_attitude_has_the_bank_it_was_built_with() {
        let r = DVec3::new(RE_M + 80_000.0, 0.0, 0.0);
        let v = DVec3::new(-100.0, 7_000.0, 1_000.0);
        for bank_deg in [-150.0_f64, -60.0, 0.0, 45.0, 120.0] {
            let mut s = NavState {
                t_s: 0.0,
                position_m: r,
                velocity_m_s: v,
                inertial_from_body: DQuat::IDENTITY,
            };
            s.inertial_from_body = trim_attitude(&s, bank_deg.to_radians());
            assert!(
                (bank_rad(&s).to_degrees() - bank_deg).abs() < 1e-6,
                "{bank_deg}"
            );
        }
    }
}
