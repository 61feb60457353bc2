//! Strapdown inertial navigation: the FC's own estimate of position, velocity and
//! attitude from the IMU datagrams, started from the handover state (and, later,
//! corrected by GNSS and the barometer). It never sees the twin's truth.
//!
//! Frame: the capsule inertial frame of the ICD (z along the Earth's rotation axis, x
//! towards the prime meridian at t = 0). Gravity: WGS-84 point mass plus J2.
//! Integration at the IMU rate: attitude by the rotation vector w dt (exact for a
//! constant rate over the interval), velocity and position by the trapezoid rule with
//! the specific force rotated at the mid-interval attitude.

use capsule_icd::imu::ImuDatagram;
use glam::{DQuat, DVec3};

const MU_M3_S2: f64 = 3.986_004_418e14;
/// WGS-84 equatorial radius, m.
pub(crate) const RE_M: f64 = 6_378_137.0;
const J2: f64 = 1.082_626_68e-3;
/// WGS-84 flattening.
pub(crate) const F: f64 = 1.0 / 298.257_223_563;
/// Earth rotation rate, rad/s.
pub(crate) const OMEGA_RAD_S: f64 = 7.292_115e-5;

/// Earth-fixed position of a geodetic latitude/longitude (deg) and height (m) on WGS-84.
pub fn geodetic_to_ecef(lat_deg: f64, lon_deg: f64, alt_m: f64) -> DVec3 {
    let e2 = F * (2.0 - F);
    let (sl, cl) = lat_deg.to_radians().sin_cos();
    let (so, co) = lon_deg.to_radians().sin_cos();
    let n = RE_M / (1.0 - e2 * sl * sl).sqrt();
    DVec3::new(
        (n + alt_m) * cl * co,
        (n + alt_m) * cl * so,
        (n * (1.0 - e2) + alt_m) * sl,
    )
}

/// An Earth-fixed vector in the inertial frame at time `t_s` (the frames coincide at 0).
pub fn ecef_to_inertial(v: DVec3, t_s: f64) -> DVec3 {
    let (st, ct) = (OMEGA_RAD_S * t_s).sin_cos();
    DVec3::new(ct * v.x - st * v.y, st * v.x + ct * v.y, v.z)
}

/// An inertial vector in the Earth-fixed frame at time `t_s`.
pub fn inertial_to_ecef(v: DVec3, t_s: f64) -> DVec3 {
    let (s, c) = (OMEGA_RAD_S * t_s).sin_cos();
    DVec3::new(c * v.x + s * v.y, -s * v.x + c * v.y, v.z)
}

/// Velocity relative to the rotating atmosphere (inertial frame), m/s.
pub fn air_velocity(s: &NavState) -> DVec3 {
    s.velocity_m_s - DVec3::new(0.0, 0.0, OMEGA_RAD_S).cross(s.position_m)
}

/// A navigation state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NavState {
    /// Time, s.
    pub t_s: f64,
    /// Position, inertial, m.
    pub position_m: DVec3,
    /// Velocity, inertial, m/s.
    pub velocity_m_s: DVec3,
    /// Attitude, body to inertial.
    pub inertial_from_body: DQuat,
}

/// J2 gravity, inertial frame.
pub fn gravity(r: DVec3) -> DVec3 {
    let r2 = r.length_squared();
    let rn = r2.sqrt();
    let mu_r3 = MU_M3_S2 / (r2 * rn);
    let k = 1.5 * J2 * RE_M * RE_M / r2;
    let z2 = r.z * r.z / r2;
    DVec3::new(
        -mu_r3 * r.x * (1.0 - k * (5.0 * z2 - 1.0)),
        -mu_r3 * r.y * (1.0 - k * (5.0 * z2 - 1.0)),
        -mu_r3 * r.z * (1.0 - k * (5.0 * z2 - 3.0)),
    )
}

/// Height above the WGS-84 ellipsoid (Bowring's method, one iteration: error well
/// below a metre for the capsule's altitudes).
pub fn altitude_m(r: DVec3) -> f64 {
    let b = RE_M * (1.0 - F);
    let e2 = F * (2.0 - F);
    let ep2 = e2 / (1.0 - e2);
    let p = (r.x * r.x + r.y * r.y).sqrt();
    if p < 1.0 {
        return r.z.abs() - b;
    }
    let th = (r.z * RE_M).atan2(p * b);
    let (st, ct) = th.sin_cos();
    let lat = (r.z + ep2 * b * st * st * st).atan2(p - e2 * RE_M * ct * ct * ct);
    let (sl, cl) = lat.sin_cos();
    let n = RE_M / (1.0 - e2 * sl * sl).sqrt();
    if cl.abs() > 1e-6 {
        p / cl - n
    } else {
        r.z.abs() / sl.abs() - n * (1.0 - e2)
    }
}

/// The navigator.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    state: Option<NavState>,
    last_time_us: Option<u32>,
    last_rate: DVec3,
    last_force: DVec3,
    /// Datagrams used.
    pub samples: u64,
    /// Datagrams rejected (invalid flag, time going backwards or jumping).
    pub rejected: u64,
    /// GNSS fixes used.
    pub gnss_used: u64,
    /// GNSS fixes rejected.
    pub gnss_rejected: u64,
    /// IMU gaps bridged by coasting.
    pub coasts: u64,
    /// Time of the last GNSS fix used, s.
    gnss_last_used_s: Option<f64>,
    /// The gate's base after the last fix used, m.
    gnss_gate_base_m: f64,
}

/// GNSS innovation gate right after a fix was used, m.
pub const GNSS_GATE_M: f64 = 1_000.0;
/// Growth of the gate without a fix used: the inertial drift of a tactical-grade IMU
/// through the entry (attitude error under the deceleration pulse), as an acceleration
/// error, m/s² (the gate grows by half of it times the time squared: 22 km after a
/// 300-s blackout).
pub const GNSS_GATE_DRIFT_M_S2: f64 = 0.5;

/// The longest IMU gap navigation coasts across, us; beyond it the gap is not bridged.
pub const MAX_COAST_US: u32 = 2_000_000;

impl Nav {
    /// An uninitialised navigator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts (or restarts) from a state valid at `s.t_s`: IMU datagrams after that
    /// time propagate it (the state time is the time base, so the result does not depend
    /// on whether IMU data arrived before or after the handover).
    pub fn init(&mut self, s: NavState) {
        self.last_time_us = Some((s.t_s * 1e6).round() as u32);
        self.state = Some(s);
    }

    /// The current estimate.
    pub fn state(&self) -> Option<&NavState> {
        self.state.as_ref()
    }

    /// Altitude above the ellipsoid, m.
    pub fn altitude_m(&self) -> Option<f64> {
        self.state.map(|s| altitude_m(s.position_m))
    }

    /// Speed relative to the rotating atmosphere, m/s.
    pub fn airspeed_m_s(&self) -> Option<f64> {
        self.state.map(|s| air_velocity(&s).length())
    }

    /// GNSS position update (geodetic, WGS-84; the receiver's nominal 50 ms latency is
    /// compensated with the navigated velocity): a fixed-gain (alpha-beta) correction of
    /// position and velocity, which bounds the inertial drift. A fix whose innovation
    /// exceeds the gate ([`GNSS_GATE_M`], growing with [`GNSS_GATE_DRIFT_M_S2`] since
    /// the last fix used, for the inertial drift meanwhile) is rejected; `gate` false takes
    /// every fix (the seeded defect). Returns whether the fix was used.
    pub fn gnss_update(
        &mut self,
        t_s: f64,
        lat_deg: f64,
        lon_deg: f64,
        alt_m: f64,
        gate: bool,
    ) -> bool {
        const ALPHA: f64 = 0.5;
        const BETA_PER_S: f64 = 1.0;
        const LATENCY_S: f64 = 0.05;
        let last_used_s = self.gnss_last_used_s.unwrap_or(t_s);
        let Some(s) = self.state.as_mut() else {
            return false;
        };
        let r_in = ecef_to_inertial(geodetic_to_ecef(lat_deg, lon_deg, alt_m), s.t_s);
        let r_meas = r_in + s.velocity_m_s * LATENCY_S;
        let err = r_meas - s.position_m;
        let dt = (t_s - last_used_s).max(0.0);
        let gate_m = self.gnss_gate_base_m.max(GNSS_GATE_M) + 0.5 * GNSS_GATE_DRIFT_M_S2 * dt * dt;
        if gate && err.length() > gate_m {
            // A jump no navigation error explains: reject.
            self.gnss_rejected += 1;
            return false;
        }
        s.position_m += err * ALPHA;
        s.velocity_m_s += err * (BETA_PER_S * 0.1);
        // The error left after this correction is what the next fix may still show:
        // the gate converges back to its floor over a few fixes after a long outage.
        self.gnss_gate_base_m = (2.0 * err.length() * (1.0 - ALPHA)).max(GNSS_GATE_M);
        self.gnss_used += 1;
        self.gnss_last_used_s = Some(t_s);
        true
    }

    /// Propagates with one IMU datagram.
    pub fn on_imu(&mut self, d: &ImuDatagram) {
        let rate = DVec3::from_array(d.rate_rad_s);
        let force = DVec3::from_array(d.specific_force_m_s2);
        if d.status & capsule_icd::imu::status::DATA_INVALID != 0 {
            self.rejected += 1;
            return;
        }
        let Some(last) = self.last_time_us.replace(d.time_us) else {
            self.last_rate = rate;
            self.last_force = force;
            return;
        };
        let dt_us = d.time_us.wrapping_sub(last);
        if dt_us == 0 {
            // The sample at the state time itself: nothing to integrate.
            self.last_rate = rate;
            self.last_force = force;
            return;
        }
        if dt_us > MAX_COAST_US {
            // Repeated or stale sample (counter wrapped backwards), or a gap too long to
            // bridge: do not integrate across it.
            self.rejected += 1;
            self.last_rate = rate;
            self.last_force = force;
            return;
        }
        if dt_us > 100_000 {
            // A gap (IMU reset, line dropout): coast across it in 10 ms steps, holding
            // the last good rate and specific force, so navigation time keeps up.
            let held = (self.last_rate, self.last_force);
            let mut left_us = dt_us;
            while left_us > 0 {
                let step = left_us.min(10_000);
                self.integrate(held.0, held.1, held.0, held.1, f64::from(step) * 1e-6);
                left_us -= step;
            }
            self.coasts += 1;
            self.last_rate = rate;
            self.last_force = force;
            return;
        }
        let dt = f64::from(dt_us) * 1e-6;
        let (last_rate, last_force) = (self.last_rate, self.last_force);
        self.integrate(last_rate, last_force, rate, force, dt);
        self.last_rate = rate;
        self.last_force = force;
        self.samples += 1;
    }

    /// One trapezoidal strapdown step over `dt` from (rate, force) at its start to
    /// (rate, force) at its end.
    fn integrate(&mut self, rate0: DVec3, force0: DVec3, rate: DVec3, force: DVec3, dt: f64) {
        let Some(s) = self.state.as_mut() else { return };
        // Attitude: mean rate over the interval.
        let w = (rate + rate0) * 0.5;
        let q_mid = s.inertial_from_body * DQuat::from_scaled_axis(w * (0.5 * dt));
        let q_end = (s.inertial_from_body * DQuat::from_scaled_axis(w * dt)).normalize();
        let f_mid = q_mid * ((force + force0) * 0.5);
        let g0 = gravity(s.position_m);
        let r_pred = s.position_m + s.velocity_m_s * dt;
        let g1 = gravity(r_pred);
        let a = f_mid + (g0 + g1) * 0.5;
        s.position_m += s.velocity_m_s * dt + a * (0.5 * dt * dt);
        s.velocity_m_s += a * dt;
        s.inertial_from_body = q_end;
        s.t_s += dt;
    }
}
