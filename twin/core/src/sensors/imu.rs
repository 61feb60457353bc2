use super::SensorTruth;
use crate::config::Checks;
use crate::rng::SimRng;
use glam::{DMat3, DQuat, DVec3};
use serde::{Deserialize, Serialize};

/// Error parameters of one triad (gyro or accelerometer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisErrorSpec {
    /// White-noise density, unit/sqrt(Hz) (rad/s/sqrt(Hz) or m/s^2/sqrt(Hz)).
    pub noise_density: f64,
    /// 1-sigma turn-on bias, unit.
    pub turn_on_bias_sigma: f64,
    /// Bias instability (1-sigma of a first-order Gauss-Markov process), unit.
    pub bias_instability: f64,
    /// Correlation time of the bias instability, s.
    pub bias_correlation_s: f64,
    /// 1-sigma scale-factor error, ppm.
    pub scale_factor_ppm: f64,
    /// 1-sigma axis misalignment, rad.
    pub misalignment_rad: f64,
    /// Measurement range (saturation), +- unit.
    pub range: f64,
    /// Quantisation step (LSB), unit.
    pub resolution: f64,
}

/// IMU spec. Defaults: a tactical-grade MEMS unit (gyro 0.15 deg/sqrt(h) ARW,
/// accelerometer 60 ug/sqrt(Hz)); these are assumptions, typical of the class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImuSpec {
    /// Output rate, Hz.
    pub rate_hz: f64,
    /// Gyro errors (rad/s).
    pub gyro: AxisErrorSpec,
    /// Accelerometer errors (m/s^2).
    pub accel: AxisErrorSpec,
    /// Mounting: rotation from body to sensor axes, [roll, pitch, yaw] deg (Z-Y-X).
    #[serde(default)]
    pub sensor_from_body_deg: [f64; 3],
    /// Mounting position relative to the CG, body frame, m (lever arm).
    #[serde(default)]
    pub position_m: [f64; 3],
}

impl Default for ImuSpec {
    fn default() -> Self {
        Self {
            rate_hz: 1000.0,
            gyro: AxisErrorSpec {
                noise_density: 4.4e-5,
                turn_on_bias_sigma: 2.4e-5,
                bias_instability: 4.8e-6,
                bias_correlation_s: 100.0,
                scale_factor_ppm: 300.0,
                misalignment_rad: 5e-4,
                range: 8.7,
                resolution: 1e-6,
            },
            accel: AxisErrorSpec {
                noise_density: 5.9e-4,
                turn_on_bias_sigma: 2e-3,
                bias_instability: 1e-4,
                bias_correlation_s: 100.0,
                scale_factor_ppm: 500.0,
                misalignment_rad: 5e-4,
                range: 392.0,
                resolution: 1e-4,
            },
            sensor_from_body_deg: [0.0; 3],
            position_m: [0.0; 3],
        }
    }
}

impl ImuSpec {
    pub(crate) fn validate(&self, f: &str, c: &mut Checks) {
        c.in_range(&format!("{f}.rate_hz"), self.rate_hz, 1.0, 10_000.0, "Hz");
        c.all_in_range(
            &format!("{f}.sensor_from_body_deg"),
            &self.sensor_from_body_deg,
            -360.0,
            360.0,
            "deg",
        );
        c.all_in_range(
            &format!("{f}.position_m"),
            &self.position_m,
            -100.0,
            100.0,
            "m",
        );
        for (n, a) in [("gyro", &self.gyro), ("accel", &self.accel)] {
            // Units: rad/s for the gyro, m/s^2 for the accelerometer.
            let g = format!("{f}.{n}");
            c.in_range(
                &format!("{g}.noise_density"),
                a.noise_density,
                0.0,
                1.0,
                "unit/sqrt(Hz)",
            );
            c.in_range(&format!("{g}.range"), a.range, 1e-3, 1e5, "unit");
            c.in_range(&format!("{g}.resolution"), a.resolution, 0.0, 10.0, "unit");
            c.in_range(
                &format!("{g}.bias_correlation_s"),
                a.bias_correlation_s,
                1e-3,
                1e7,
                "s",
            );
            c.in_range(
                &format!("{g}.bias_instability"),
                a.bias_instability,
                0.0,
                1.0,
                "unit",
            );
            c.in_range(
                &format!("{g}.turn_on_bias_sigma"),
                a.turn_on_bias_sigma,
                0.0,
                10.0,
                "unit",
            );
            c.in_range(
                &format!("{g}.scale_factor_ppm"),
                a.scale_factor_ppm,
                0.0,
                1e5,
                "ppm",
            );
            c.in_range(
                &format!("{g}.misalignment_rad"),
                a.misalignment_rad,
                0.0,
                0.1,
                "rad",
            );
        }
    }
}

/// One IMU output sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImuSample {
    /// Time of validity, s.
    pub t_s: f64,
    /// Angular rate, sensor frame, rad/s.
    pub rate_rad_s: [f64; 3],
    /// Specific force, sensor frame, m/s^2.
    pub specific_force_m_s2: [f64; 3],
    /// Sensor temperature, K.
    pub temperature_k: f64,
    /// A channel hit its range limit.
    pub saturated: bool,
}

#[derive(Debug, Clone)]
struct Triad {
    bias: DVec3,
    gm: DVec3,
    /// Scale factor and misalignment: measured = m * truth.
    m: DMat3,
}

impl Triad {
    fn draw(spec: &AxisErrorSpec, rng: &mut SimRng) -> Self {
        let b = DVec3::new(rng.normal(), rng.normal(), rng.normal()) * spec.turn_on_bias_sigma;
        let sf =
            DVec3::new(rng.normal(), rng.normal(), rng.normal()) * spec.scale_factor_ppm * 1e-6;
        let mut mis = [0.0; 6];
        for x in &mut mis {
            *x = rng.normal() * spec.misalignment_rad;
        }
        let m = DMat3::from_cols(
            DVec3::new(1.0 + sf.x, mis[0], mis[1]),
            DVec3::new(mis[2], 1.0 + sf.y, mis[3]),
            DVec3::new(mis[4], mis[5], 1.0 + sf.z),
        );
        Self {
            bias: b,
            gm: DVec3::ZERO,
            m,
        }
    }

    fn measure(
        &mut self,
        spec: &AxisErrorSpec,
        truth: DVec3,
        dt: f64,
        rate_hz: f64,
        rng: &mut SimRng,
    ) -> (DVec3, bool) {
        // First-order Gauss-Markov bias instability, exact discretisation.
        let phi = (-dt / spec.bias_correlation_s).exp();
        let q = spec.bias_instability * (1.0 - phi * phi).sqrt();
        self.gm = self.gm * phi + DVec3::new(rng.normal(), rng.normal(), rng.normal()) * q;
        let sigma = spec.noise_density * rate_hz.sqrt();
        let noise = DVec3::new(rng.normal(), rng.normal(), rng.normal()) * sigma;
        let raw = self.m * truth + self.bias + self.gm + noise;
        let mut sat = false;
        let mut out = [0.0; 3];
        for (k, o) in out.iter_mut().enumerate() {
            let mut v = raw[k];
            if v.abs() > spec.range {
                sat = true;
                v = v.clamp(-spec.range, spec.range);
            }
            if spec.resolution > 0.0 {
                v = (v / spec.resolution).round() * spec.resolution;
            }
            *o = v;
        }
        (DVec3::from_array(out), sat)
    }
}

/// IMU model.
#[derive(Debug, Clone)]
pub struct ImuModel {
    spec: ImuSpec,
    sensor_from_body: DQuat,
    gyro: Triad,
    accel: Triad,
    rng: SimRng,
    next_t_s: f64,
}

impl ImuModel {
    /// A unit with its errors drawn from `seed`.
    pub fn new(spec: &ImuSpec, seed: u64) -> Self {
        let mut rng = SimRng::new(seed, "imu");
        let gyro = Triad::draw(&spec.gyro, &mut rng);
        let accel = Triad::draw(&spec.accel, &mut rng);
        let [r, p, y] = spec.sensor_from_body_deg.map(f64::to_radians);
        let sensor_from_body = DQuat::from_euler(glam::EulerRot::ZYX, y, p, r).conjugate();
        Self {
            spec: spec.clone(),
            sensor_from_body,
            gyro,
            accel,
            rng,
            next_t_s: 0.0,
        }
    }

    /// Output period, s.
    pub fn period_s(&self) -> f64 {
        1.0 / self.spec.rate_hz
    }

    /// Returns a sample if one is due at `truth.t_s` (call every physics step).
    pub fn poll(&mut self, truth: &SensorTruth) -> Option<ImuSample> {
        if truth.t_s + 1e-9 < self.next_t_s {
            return None;
        }
        self.next_t_s += self.period_s();
        if self.next_t_s <= truth.t_s {
            self.next_t_s = truth.t_s + self.period_s();
        }
        Some(self.sample(truth))
    }

    /// Measures now, regardless of rate.
    pub fn sample(&mut self, truth: &SensorTruth) -> ImuSample {
        let dt = self.period_s();
        let r = DVec3::from_array(self.spec.position_m);
        let w = truth.rate_body_rad_s;
        // Lever arm: f_p = f_cg + dw/dt x r + w x (w x r).
        let f_body = truth.specific_force_body_m_s2
            + truth.angular_accel_body_rad_s2.cross(r)
            + w.cross(w.cross(r));
        let w_s = self.sensor_from_body * w;
        let f_s = self.sensor_from_body * f_body;
        let (rate, s1) =
            self.gyro
                .measure(&self.spec.gyro, w_s, dt, self.spec.rate_hz, &mut self.rng);
        let (acc, s2) =
            self.accel
                .measure(&self.spec.accel, f_s, dt, self.spec.rate_hz, &mut self.rng);
        ImuSample {
            t_s: truth.t_s,
            rate_rad_s: rate.to_array(),
            specific_force_m_s2: acc.to_array(),
            temperature_k: 303.0 + 0.1 * self.rng.normal(),
            saturated: s1 || s2,
        }
    }
}
