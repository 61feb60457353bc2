//! Sensor models: truth in, realistic sensor output out, each with its own seeded
//! random stream, and a [`fault::FaultLayer`] between the model and its consumer.
//!
//! | sensor | output | default rate | error model |
//! |---|---|---|---|
//! | IMU | body rates rad/s, specific force m/s^2 (sensor frame), temperature K | 1000 Hz | noise density, turn-on bias, Gauss-Markov bias instability, scale factor, misalignment, range saturation, quantisation |
//! | GNSS | geodetic position, NED velocity, fix quality | 10 Hz | white noise, latency, outage above altitude/speed limits and in plasma blackout, reacquisition delay |
//! | barometer | static pressure Pa, temperature K | 50 Hz | noise, bias, range, quantisation |
//! | thermocouples | heat-shield surface, bondline, backshell K | 10 Hz | first-order lag, noise, range |
//! | battery | bus voltage V, current A, state of charge | 10 Hz | open-circuit voltage vs charge, internal resistance |
//! | pyro continuity | per channel ok / open | on request | open-circuit fault, open after firing |

pub mod fault;
mod gnss;
mod imu;
mod misc;

pub use gnss::{FixQuality, GnssFix, GnssModel, GnssSpec};
pub use imu::{AxisErrorSpec, ImuModel, ImuSample, ImuSpec};
pub use misc::{
    BaroModel, BaroSample, BaroSpec, Battery, BatterySample, BatterySpec, PyroChannel,
    ThermocoupleModel, ThermocoupleSample, ThermocoupleSpec,
};

use crate::config::Checks;
use glam::DVec3;
use serde::{Deserialize, Serialize};

/// Truth that the sensor models read, produced by the twin every step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SensorTruth {
    /// Simulation time, s.
    pub t_s: f64,
    /// Specific force (non-gravitational acceleration) at the CG, body frame, m/s^2.
    pub specific_force_body_m_s2: DVec3,
    /// Angular rate, body frame, rad/s.
    pub rate_body_rad_s: DVec3,
    /// Angular acceleration, body frame, rad/s^2.
    pub angular_accel_body_rad_s2: DVec3,
    /// Geodetic latitude, rad.
    pub latitude_rad: f64,
    /// Longitude, rad.
    pub longitude_rad: f64,
    /// Altitude, m.
    pub altitude_m: f64,
    /// Velocity relative to the ground, NED, m/s.
    pub velocity_ned_m_s: DVec3,
    /// Air-relative speed, m/s.
    pub airspeed_m_s: f64,
    /// Static pressure, Pa.
    pub static_pressure_pa: f64,
    /// Static temperature, K.
    pub static_temperature_k: f64,
    /// Heat-shield surface temperature, K.
    pub heat_shield_surface_k: f64,
    /// Bondline temperature, K.
    pub bondline_k: f64,
    /// Backshell temperature, K.
    pub backshell_k: f64,
}

/// All sensor specs of a vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SensorSuiteSpec {
    /// Inertial measurement unit.
    #[serde(default)]
    pub imu: ImuSpec,
    /// GNSS receiver.
    #[serde(default)]
    pub gnss: GnssSpec,
    /// Barometric pressure sensor.
    #[serde(default)]
    pub baro: BaroSpec,
    /// Thermocouples.
    #[serde(default)]
    pub thermocouples: ThermocoupleSpec,
    /// Main battery.
    #[serde(default)]
    pub battery: BatterySpec,
}

impl SensorSuiteSpec {
    /// Validation; `field` is the table path.
    pub fn validate(&self, field: &str, c: &mut Checks) {
        self.imu.validate(&format!("{field}.imu"), c);
        self.gnss.validate(&format!("{field}.gnss"), c);
        let b = &self.baro;
        let g = format!("{field}.baro");
        c.in_range(&format!("{g}.rate_hz"), b.rate_hz, 0.1, 10_000.0, "Hz");
        c.in_range(&format!("{g}.noise_pa"), b.noise_pa, 0.0, 1e4, "Pa");
        c.in_range(&format!("{g}.bias_pa"), b.bias_pa, -1e4, 1e4, "Pa");
        c.all_in_range(&format!("{g}.range_pa"), &b.range_pa, 0.0, 1e6, "Pa");
        c.require(
            b.range_pa[0] < b.range_pa[1],
            format!("{g}.range_pa"),
            "expected [min, max] with min < max (Pa)",
        );
        c.in_range(
            &format!("{g}.resolution_pa"),
            b.resolution_pa,
            0.0,
            1e3,
            "Pa",
        );
        let t = &self.thermocouples;
        let g = format!("{field}.thermocouples");
        c.in_range(&format!("{g}.rate_hz"), t.rate_hz, 0.1, 10_000.0, "Hz");
        c.in_range(
            &format!("{g}.time_constant_s"),
            t.time_constant_s,
            1e-4,
            1e3,
            "s",
        );
        c.in_range(&format!("{g}.noise_k"), t.noise_k, 0.0, 100.0, "K");
        c.all_in_range(&format!("{g}.range_k"), &t.range_k, 0.0, 5_000.0, "K");
        c.require(
            t.range_k[0] < t.range_k[1],
            format!("{g}.range_k"),
            "expected [min, max] with min < max (K)",
        );
        let e = &self.battery;
        let g = format!("{field}.battery");
        c.in_range(&format!("{g}.capacity_ah"), e.capacity_ah, 1e-3, 1e5, "Ah");
        c.in_range(
            &format!("{g}.internal_resistance_ohm"),
            e.internal_resistance_ohm,
            0.0,
            100.0,
            "ohm",
        );
        c.in_range(
            &format!("{g}.full_voltage_v"),
            e.full_voltage_v,
            1.0,
            1_000.0,
            "V",
        );
        c.in_range(
            &format!("{g}.empty_voltage_v"),
            e.empty_voltage_v,
            0.0,
            1_000.0,
            "V",
        );
        c.require(
            e.empty_voltage_v < e.full_voltage_v,
            format!("{g}.empty_voltage_v"),
            "expected the empty voltage under the full voltage (V)",
        );
        c.in_range(&format!("{g}.base_load_a"), e.base_load_a, 0.0, 1e3, "A");
        c.in_range(
            &format!("{g}.initial_soc"),
            e.initial_soc,
            0.0,
            1.0,
            "state of charge",
        );
    }
}
