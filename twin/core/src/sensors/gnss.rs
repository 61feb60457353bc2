use super::SensorTruth;
use crate::config::Checks;
use crate::rng::SimRng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// GNSS receiver spec. Defaults describe a space-qualified receiver (no export-control
/// altitude/velocity limits); set `max_altitude_m` to 18000 and `max_speed_m_s` to 515
/// for a COCOM-limited commercial unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GnssSpec {
    /// Output rate, Hz.
    pub rate_hz: f64,
    /// 1-sigma horizontal position noise, m.
    pub horizontal_sigma_m: f64,
    /// 1-sigma vertical position noise, m.
    pub vertical_sigma_m: f64,
    /// 1-sigma velocity noise per axis, m/s.
    pub velocity_sigma_m_s: f64,
    /// Time from measurement to output, s.
    pub latency_s: f64,
    /// No fix above this altitude, m.
    pub max_altitude_m: f64,
    /// No fix above this ground speed, m/s.
    pub max_speed_m_s: f64,
    /// Plasma blackout: no fix while the airspeed exceeds this...
    pub blackout_min_airspeed_m_s: f64,
    /// ...and the altitude is within this band, m.
    pub blackout_altitude_band_m: [f64; 2],
    /// Time to regain a fix after an outage ends, s.
    pub reacquisition_s: f64,
    /// Satellites tracked with a fix.
    pub satellites: u8,
}

impl Default for GnssSpec {
    fn default() -> Self {
        Self {
            rate_hz: 10.0,
            horizontal_sigma_m: 2.5,
            vertical_sigma_m: 4.0,
            velocity_sigma_m_s: 0.1,
            latency_s: 0.05,
            max_altitude_m: 3_000_000.0,
            max_speed_m_s: 12_000.0,
            blackout_min_airspeed_m_s: 4_500.0,
            blackout_altitude_band_m: [40_000.0, 95_000.0],
            reacquisition_s: 12.0,
            satellites: 9,
        }
    }
}

impl GnssSpec {
    pub(crate) fn validate(&self, f: &str, c: &mut Checks) {
        c.in_range(&format!("{f}.rate_hz"), self.rate_hz, 0.1, 100.0, "Hz");
        c.in_range(&format!("{f}.latency_s"), self.latency_s, 0.0, 10.0, "s");
        c.in_range(
            &format!("{f}.reacquisition_s"),
            self.reacquisition_s,
            0.0,
            3_600.0,
            "s",
        );
        c.in_range(
            &format!("{f}.horizontal_sigma_m"),
            self.horizontal_sigma_m,
            0.0,
            1e4,
            "m",
        );
        c.in_range(
            &format!("{f}.vertical_sigma_m"),
            self.vertical_sigma_m,
            0.0,
            1e4,
            "m",
        );
        c.in_range(
            &format!("{f}.velocity_sigma_m_s"),
            self.velocity_sigma_m_s,
            0.0,
            1e3,
            "m/s",
        );
        c.in_range(
            &format!("{f}.max_altitude_m"),
            self.max_altitude_m,
            0.0,
            1e8,
            "m",
        );
        c.in_range(
            &format!("{f}.max_speed_m_s"),
            self.max_speed_m_s,
            0.0,
            1e5,
            "m/s",
        );
        c.in_range(
            &format!("{f}.blackout_min_airspeed_m_s"),
            self.blackout_min_airspeed_m_s,
            0.0,
            1e5,
            "m/s",
        );
        c.all_in_range(
            &format!("{f}.blackout_altitude_band_m"),
            &self.blackout_altitude_band_m,
            -1e4,
            1e7,
            "m",
        );
        c.require(
            self.blackout_altitude_band_m[0] <= self.blackout_altitude_band_m[1],
            format!("{f}.blackout_altitude_band_m"),
            "expected [lower, upper] with lower <= upper (m)",
        );
    }
}

/// Fix quality, as in NMEA GGA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixQuality {
    /// No fix: position fields are empty.
    NoFix,
    /// Autonomous 3-D fix.
    Fix3d,
}

/// One receiver output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GnssFix {
    /// Time the solution is valid for, s.
    pub t_valid_s: f64,
    /// Time the solution is output, s.
    pub t_output_s: f64,
    /// Fix quality.
    pub quality: FixQuality,
    /// Latitude, rad (meaningless without a fix).
    pub latitude_rad: f64,
    /// Longitude, rad.
    pub longitude_rad: f64,
    /// Altitude, m.
    pub altitude_m: f64,
    /// NED velocity, m/s.
    pub velocity_ned_m_s: [f64; 3],
    /// Satellites used.
    pub satellites: u8,
    /// Horizontal dilution of precision.
    pub hdop: f64,
}

/// GNSS receiver model.
#[derive(Debug, Clone)]
pub struct GnssModel {
    spec: GnssSpec,
    rng: SimRng,
    next_t_s: f64,
    pending: VecDeque<GnssFix>,
    outage_ended_at_s: Option<f64>,
    in_outage: bool,
    /// Forced loss of fix (device fault), until this time.
    pub forced_outage_until_s: f64,
}

impl GnssModel {
    /// A receiver seeded from `seed`.
    pub fn new(spec: &GnssSpec, seed: u64) -> Self {
        Self {
            spec: spec.clone(),
            rng: SimRng::new(seed, "gnss"),
            next_t_s: 0.0,
            pending: VecDeque::new(),
            outage_ended_at_s: None,
            in_outage: false,
            forced_outage_until_s: f64::NEG_INFINITY,
        }
    }

    /// True if the receiver cannot track at this truth (limits, blackout, forced).
    pub fn outage(&self, t: &SensorTruth) -> bool {
        let s = &self.spec;
        let ground_speed = t.velocity_ned_m_s.length();
        let blackout = t.airspeed_m_s > s.blackout_min_airspeed_m_s
            && t.altitude_m >= s.blackout_altitude_band_m[0]
            && t.altitude_m <= s.blackout_altitude_band_m[1];
        t.altitude_m > s.max_altitude_m
            || ground_speed > s.max_speed_m_s
            || blackout
            || t.t_s < self.forced_outage_until_s
    }

    /// Call every physics step; returns a fix when one is output at this time.
    pub fn poll(&mut self, truth: &SensorTruth) -> Option<GnssFix> {
        if truth.t_s + 1e-9 >= self.next_t_s {
            self.next_t_s += 1.0 / self.spec.rate_hz;
            if self.next_t_s <= truth.t_s {
                self.next_t_s = truth.t_s + 1.0 / self.spec.rate_hz;
            }
            let fix = self.measure(truth);
            // Bounded: at most latency * rate + 1 fixes wait.
            if self.pending.len() < 1024 {
                self.pending.push_back(fix);
            }
        }
        match self.pending.front() {
            Some(f) if f.t_output_s <= truth.t_s + 1e-9 => self.pending.pop_front(),
            _ => None,
        }
    }

    fn measure(&mut self, t: &SensorTruth) -> GnssFix {
        let s = &self.spec;
        let out = self.outage(t);
        if out {
            self.in_outage = true;
            self.outage_ended_at_s = None;
        } else if self.in_outage {
            self.in_outage = false;
            self.outage_ended_at_s = Some(t.t_s);
        }
        let reacquiring = self
            .outage_ended_at_s
            .is_some_and(|e| t.t_s < e + s.reacquisition_s);
        let t_output_s = t.t_s + s.latency_s;
        if out || reacquiring {
            return GnssFix {
                t_valid_s: t.t_s,
                t_output_s,
                quality: FixQuality::NoFix,
                latitude_rad: 0.0,
                longitude_rad: 0.0,
                altitude_m: 0.0,
                velocity_ned_m_s: [0.0; 3],
                satellites: 0,
                hdop: 99.9,
            };
        }
        let r_n = 6_378_137.0 + t.altitude_m;
        let dn = self.rng.normal() * s.horizontal_sigma_m;
        let de = self.rng.normal() * s.horizontal_sigma_m;
        let dh = self.rng.normal() * s.vertical_sigma_m;
        let v = t.velocity_ned_m_s;
        let vn = [
            v.x + self.rng.normal() * s.velocity_sigma_m_s,
            v.y + self.rng.normal() * s.velocity_sigma_m_s,
            v.z + self.rng.normal() * s.velocity_sigma_m_s,
        ];
        GnssFix {
            t_valid_s: t.t_s,
            t_output_s,
            quality: FixQuality::Fix3d,
            latitude_rad: t.latitude_rad + dn / r_n,
            longitude_rad: t.longitude_rad + de / (r_n * t.latitude_rad.cos().max(1e-6)),
            altitude_m: t.altitude_m + dh,
            velocity_ned_m_s: vn,
            satellites: s.satellites,
            hdop: 0.9,
        }
    }
}
