//! GNSS-aided strapdown inertial navigation: the FC's own estimate of position,
//! velocity and attitude from the IMU datagrams, started from the handover state and
//! corrected by GNSS fixes through an error-state Kalman filter. It never sees the
//! twin's truth.
//!
//! Frame: the capsule inertial frame of the ICD (z along the Earth's rotation axis, x
//! towards the prime meridian at t = 0). Gravity: WGS-84 point mass plus J2.
//! Integration at the IMU rate: attitude by the rotation vector w dt (exact for a
//! constant rate over the interval), velocity and position by the trapezoid rule with
//! the specific force rotated at the mid-interval attitude; the estimated gyro and
//! accelerometer biases are removed from every datagram.
//!
//! The filter (15 error states: position, velocity, attitude as a small inertial-frame
//! rotation, gyro bias, accelerometer bias) propagates its covariance every 0.1 s with
//! the sensed specific force: during a burn or the deceleration pulse an attitude error
//! turns into a velocity error, so the covariance grows through a plasma blackout as
//! the navigation error really does, and the first fixes after it correct position,
//! velocity and the attitude (the two axes across the deceleration) at once. Fixes are
//! gated on their innovation against that covariance (chi-square, 3 degrees of
//! freedom): a position jump that no navigation error explains is rejected.

// The filter's matrix code indexes rows and columns together: index loops read as
// the algebra.
#![allow(clippy::needless_range_loop)]

use capsule_icd::imu::ImuDatagram;
use glam::{DMat3, DQuat, DVec3};

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

/// Number of error states.
const N: usize = 15;
/// Error-state offsets: position, velocity, attitude, gyro bias, accelerometer bias.
const IR: usize = 0;
const IV: usize = 3;
const IPSI: usize = 6;
const IBG: usize = 9;
const IBA: usize = 12;

type Mat = [[f64; N]; N];

/// The IMU's data sheet, as the flight software knows it (tactical-grade MEMS; the
/// vehicle file's IMU is of this class): gyro angle random walk, rad/sqrt(s).
pub const GYRO_ARW_RAD_SQRT_S: f64 = 4.4e-5;
/// Gyro turn-on bias (1 sigma), rad/s (5 deg/h).
pub const GYRO_BIAS_RAD_S: f64 = 2.4e-5;
/// Gyro bias instability (1 sigma) and its correlation time, rad/s and s.
const GYRO_BIAS_INSTABILITY_RAD_S: f64 = 4.8e-6;
/// Accelerometer velocity random walk, m/s/sqrt(s).
const ACCEL_VRW_M_S_SQRT_S: f64 = 5.9e-4;
/// Accelerometer turn-on bias (1 sigma), m/s^2.
const ACCEL_BIAS_M_S2: f64 = 2e-3;
/// Accelerometer bias instability (1 sigma), m/s^2.
const ACCEL_BIAS_INSTABILITY_M_S2: f64 = 1e-4;
/// Bias correlation time, s.
const BIAS_CORRELATION_S: f64 = 100.0;
/// Scale factor and misalignment (1 sigma, ppm of the sensed rate or specific force),
/// not estimated: process noise, correlated over [`SCALE_CORRELATION_S`] (they are
/// nearly constant, so their effect grows with time, not with its square root).
const GYRO_SCALE_PPM: f64 = 1_000.0;
const ACCEL_SCALE_PPM: f64 = 1_000.0;
const SCALE_CORRELATION_S: f64 = 100.0;
/// Each rejected fix inflates the covariance by this factor (fading memory): a
/// filter that has grown over-confident (model errors it does not carry) takes the
/// fixes back within a few seconds, while a position jump stays rejected for about a
/// minute (from metres of uncertainty to the kilometres of a jump).
const REJECT_INFLATION: f64 = 1.02;
/// Handover uncertainty (1 sigma): position m, velocity m/s, attitude rad.
const INIT_POSITION_M: f64 = 10.0;
const INIT_VELOCITY_M_S: f64 = 0.1;
const INIT_ATTITUDE_RAD: f64 = 2e-3;
/// GNSS position noise (1 sigma, per axis), m.
const GNSS_SIGMA_M: f64 = 4.0;
/// The receiver's nominal latency (its fix is this old when it arrives), s.
const GNSS_LATENCY_S: f64 = 0.05;
/// Covariance propagation interval, s.
const PROPAGATE_S: f64 = 0.1;
/// Innovation gate: squared Mahalanobis distance of a fix (chi-square with 3 degrees
/// of freedom: 1e-6 of good fixes rejected).
pub const GNSS_GATE_CHI2: f64 = 36.0;

/// The navigator.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    state: Option<NavState>,
    last_time_us: Option<u32>,
    last_rate: DVec3,
    last_force: DVec3,
    /// Estimated gyro bias (sensor axes), rad/s, and accelerometer bias, m/s^2.
    gyro_bias_rad_s: DVec3,
    accel_bias_m_s2: DVec3,
    /// Error covariance.
    p: Mat,
    /// Since the last covariance propagation: time, s, and sensed velocity change
    /// (inertial), m/s, and the largest body rate, rad/s.
    acc_dt_s: f64,
    acc_dv_m_s: DVec3,
    acc_rate_rad_s: f64,
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
}

/// The longest IMU gap navigation coasts across, us; beyond it the gap is not bridged.
pub const MAX_COAST_US: u32 = 2_000_000;

/// `[v x]`, the cross-product matrix.
fn skew(v: DVec3) -> DMat3 {
    DMat3::from_cols(
        DVec3::new(0.0, v.z, -v.y),
        DVec3::new(-v.z, 0.0, v.x),
        DVec3::new(v.y, -v.x, 0.0),
    )
}

/// Writes a 3x3 block at (row, col).
fn set_block(m: &mut Mat, row: usize, col: usize, b: DMat3) {
    for i in 0..3 {
        for j in 0..3 {
            m[row + i][col + j] = b.col(j)[i];
        }
    }
}

fn block(m: &Mat, row: usize, col: usize) -> DMat3 {
    DMat3::from_cols(
        DVec3::new(m[row][col], m[row + 1][col], m[row + 2][col]),
        DVec3::new(m[row][col + 1], m[row + 1][col + 1], m[row + 2][col + 1]),
        DVec3::new(m[row][col + 2], m[row + 1][col + 2], m[row + 2][col + 2]),
    )
}

fn mul(a: &Mat, b: &Mat) -> Mat {
    let mut c = [[0.0; N]; N];
    for i in 0..N {
        for k in 0..N {
            let aik = a[i][k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..N {
                c[i][j] += aik * b[k][j];
            }
        }
    }
    c
}

fn transpose(a: &Mat) -> Mat {
    let mut t = [[0.0; N]; N];
    for i in 0..N {
        for j in 0..N {
            t[j][i] = a[i][j];
        }
    }
    t
}

impl Nav {
    /// An uninitialised navigator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts (or restarts) from a state valid at `s.t_s`: IMU datagrams after that
    /// time propagate it (the state time is the time base, so the result does not depend
    /// on whether IMU data arrived before or after the handover). The bias estimates
    /// restart from zero with the data sheet's uncertainty.
    pub fn init(&mut self, s: NavState) {
        self.last_time_us = Some((s.t_s * 1e6).round() as u32);
        self.state = Some(s);
        self.gyro_bias_rad_s = DVec3::ZERO;
        self.accel_bias_m_s2 = DVec3::ZERO;
        self.p = [[0.0; N]; N];
        for (first, sigma) in [
            (IR, INIT_POSITION_M),
            (IV, INIT_VELOCITY_M_S),
            (IPSI, INIT_ATTITUDE_RAD),
            (IBG, GYRO_BIAS_RAD_S),
            (IBA, ACCEL_BIAS_M_S2),
        ] {
            for k in first..first + 3 {
                self.p[k][k] = sigma * sigma;
            }
        }
        self.acc_dt_s = 0.0;
        self.acc_dv_m_s = DVec3::ZERO;
        self.acc_rate_rad_s = 0.0;
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

    /// The filter's 1-sigma position and velocity uncertainty (root of the trace of
    /// their covariance blocks), m and m/s.
    pub fn sigma_position_velocity(&self) -> (f64, f64) {
        let tr = |k0: usize| (k0..k0 + 3).map(|k| self.p[k][k]).sum::<f64>().sqrt();
        (tr(IR), tr(IV))
    }

    /// GNSS position update (geodetic, WGS-84; the fix is [`GNSS_LATENCY_S`] old when
    /// it arrives: it is placed in the inertial frame at its own time and carried
    /// forward with the navigated velocity). A fix whose innovation is beyond
    /// [`GNSS_GATE_CHI2`] against the filter's covariance is rejected; `gate` false
    /// takes every fix (the seeded defect). Returns whether the fix was used.
    pub fn gnss_update(&mut self, lat_deg: f64, lon_deg: f64, alt_m: f64, gate: bool) -> bool {
        self.propagate_covariance();
        let Some(s) = self.state.as_ref() else {
            return false;
        };
        let r_fix = ecef_to_inertial(
            geodetic_to_ecef(lat_deg, lon_deg, alt_m),
            s.t_s - GNSS_LATENCY_S,
        );
        let y = r_fix + s.velocity_m_s * GNSS_LATENCY_S - s.position_m;
        let s_mat = block(&self.p, IR, IR) + DMat3::IDENTITY * (GNSS_SIGMA_M * GNSS_SIGMA_M);
        if s_mat.determinant().abs() < 1e-30 {
            return false;
        }
        let s_inv = s_mat.inverse();
        let d2 = y.dot(s_inv * y);
        // (NaN, from a broken covariance, is outside.)
        let inside = d2 <= GNSS_GATE_CHI2;
        if gate && !inside {
            // A jump no navigation error explains: reject.
            self.gnss_rejected += 1;
            for row in &mut self.p {
                for x in row.iter_mut() {
                    *x *= REJECT_INFLATION;
                }
            }
            return false;
        }
        // K = P H' S^-1 (H selects the position error), 15 x 3.
        let mut k = [[0.0; 3]; N];
        for (i, row) in k.iter_mut().enumerate() {
            let ph = DVec3::new(self.p[i][IR], self.p[i][IR + 1], self.p[i][IR + 2]);
            let kr = s_inv.transpose() * ph;
            *row = kr.to_array();
        }
        let dx: [f64; N] = std::array::from_fn(|i| k[i][0] * y.x + k[i][1] * y.y + k[i][2] * y.z);
        // P = (I - K H) P (I - K H)' + K R K' (Joseph form).
        let mut a = [[0.0; N]; N];
        for i in 0..N {
            a[i][i] = 1.0;
            for j in 0..3 {
                a[i][IR + j] -= k[i][j];
            }
        }
        let mut p = mul(&mul(&a, &self.p), &transpose(&a));
        let r2 = GNSS_SIGMA_M * GNSS_SIGMA_M;
        for i in 0..N {
            for j in 0..N {
                p[i][j] += r2 * (k[i][0] * k[j][0] + k[i][1] * k[j][1] + k[i][2] * k[j][2]);
            }
        }
        self.p = p;
        let v3 = |i: usize| DVec3::new(dx[i], dx[i + 1], dx[i + 2]);
        let Some(s) = self.state.as_mut() else {
            return false;
        };
        s.position_m += v3(IR);
        s.velocity_m_s += v3(IV);
        s.inertial_from_body =
            (DQuat::from_scaled_axis(v3(IPSI)) * s.inertial_from_body).normalize();
        self.gyro_bias_rad_s += v3(IBG);
        self.accel_bias_m_s2 += v3(IBA);
        self.gnss_used += 1;
        true
    }

    /// Propagates the error covariance over the time integrated since the last
    /// propagation, with the mean sensed specific force over it.
    fn propagate_covariance(&mut self) {
        let dt = self.acc_dt_s;
        let Some(s) = self.state.as_ref() else {
            return;
        };
        if dt <= 0.0 {
            return;
        }
        let f_i = self.acc_dv_m_s / dt;
        let c = DMat3::from_quat(s.inertial_from_body);
        let r = s.position_m;
        let rn = r.length();
        let u = r / rn;
        let g = (DMat3::from_cols(u * u.x, u * u.y, u * u.z) * 3.0 - DMat3::IDENTITY)
            * (MU_M3_S2 / (rn * rn * rn));
        // Phi = I + F dt.
        let mut phi = [[0.0; N]; N];
        for (i, row) in phi.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        set_block(&mut phi, IR, IV, DMat3::IDENTITY * dt);
        set_block(&mut phi, IV, IR, g * dt);
        set_block(&mut phi, IV, IPSI, skew(f_i) * (-dt));
        set_block(&mut phi, IV, IBA, c * (-dt));
        set_block(&mut phi, IPSI, IBG, c * (-dt));
        let mut p = mul(&mul(&phi, &self.p), &transpose(&phi));
        // Process noise: random walks, bias instabilities, and the scale-factor and
        // misalignment errors (not estimated) on the sensed rate and specific force.
        let q_v = ACCEL_VRW_M_S_SQRT_S.powi(2) * dt
            + (ACCEL_SCALE_PPM * 1e-6 * f_i.length()).powi(2) * dt * SCALE_CORRELATION_S;
        let q_psi = GYRO_ARW_RAD_SQRT_S.powi(2) * dt
            + (GYRO_SCALE_PPM * 1e-6 * self.acc_rate_rad_s).powi(2) * dt * SCALE_CORRELATION_S;
        let q_bg = 2.0 * GYRO_BIAS_INSTABILITY_RAD_S.powi(2) / BIAS_CORRELATION_S * dt;
        let q_ba = 2.0 * ACCEL_BIAS_INSTABILITY_M_S2.powi(2) / BIAS_CORRELATION_S * dt;
        for k in 0..3 {
            p[IV + k][IV + k] += q_v;
            p[IPSI + k][IPSI + k] += q_psi;
            p[IBG + k][IBG + k] += q_bg;
            p[IBA + k][IBA + k] += q_ba;
        }
        // Keep it symmetric.
        for i in 0..N {
            for j in 0..i {
                let m = 0.5 * (p[i][j] + p[j][i]);
                p[i][j] = m;
                p[j][i] = m;
            }
        }
        self.p = p;
        self.acc_dt_s = 0.0;
        self.acc_dv_m_s = DVec3::ZERO;
        self.acc_rate_rad_s = 0.0;
    }

    /// Propagates with one IMU datagram.
    pub fn on_imu(&mut self, d: &ImuDatagram) {
        let rate = DVec3::from_array(d.rate_rad_s) - self.gyro_bias_rad_s;
        let force = DVec3::from_array(d.specific_force_m_s2) - self.accel_bias_m_s2;
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
    /// (rate, force) at its end (bias-corrected); the covariance follows every
    /// [`PROPAGATE_S`].
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
        self.acc_dt_s += dt;
        self.acc_dv_m_s += f_mid * dt;
        self.acc_rate_rad_s = self.acc_rate_rad_s.max(w.length());
        if self.acc_dt_s >= PROPAGATE_S - 1e-9 {
            self.propagate_covariance();
        }
    }
}
