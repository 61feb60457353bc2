use super::SensorTruth;
use crate::rng::SimRng;
use serde::{Deserialize, Serialize};

/// Barometric pressure sensor (static port).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaroSpec {
    /// Output rate, Hz.
    pub rate_hz: f64,
    /// 1-sigma noise, Pa.
    pub noise_pa: f64,
    /// Fixed bias, Pa.
    pub bias_pa: f64,
    /// Measurement range [min, max], Pa (output saturates).
    pub range_pa: [f64; 2],
    /// Quantisation, Pa.
    pub resolution_pa: f64,
}

impl Default for BaroSpec {
    fn default() -> Self {
        Self {
            rate_hz: 50.0,
            noise_pa: 2.0,
            bias_pa: 0.0,
            range_pa: [100.0, 120_000.0],
            resolution_pa: 1.0,
        }
    }
}

/// One barometer output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaroSample {
    /// Time, s.
    pub t_s: f64,
    /// Static pressure, Pa.
    pub pressure_pa: f64,
    /// Sensor temperature, K.
    pub temperature_k: f64,
    /// The pressure was outside the measurement range and the output sits at its
    /// limit.
    pub saturated: bool,
}

/// Barometer model.
#[derive(Debug, Clone)]
pub struct BaroModel {
    spec: BaroSpec,
    rng: SimRng,
    next_t_s: f64,
}

impl BaroModel {
    /// Seeded barometer.
    pub fn new(spec: &BaroSpec, seed: u64) -> Self {
        Self {
            spec: spec.clone(),
            rng: SimRng::new(seed, "baro"),
            next_t_s: 0.0,
        }
    }

    /// Call every step; a sample when due.
    pub fn poll(&mut self, t: &SensorTruth) -> Option<BaroSample> {
        if !due(&mut self.next_t_s, self.spec.rate_hz, t.t_s) {
            return None;
        }
        let s = &self.spec;
        let mut p = t.static_pressure_pa + s.bias_pa + s.noise_pa * self.rng.normal();
        let saturated = p <= s.range_pa[0] || p >= s.range_pa[1];
        p = p.clamp(s.range_pa[0], s.range_pa[1]);
        if s.resolution_pa > 0.0 {
            p = (p / s.resolution_pa).round() * s.resolution_pa;
        }
        Some(BaroSample {
            t_s: t.t_s,
            pressure_pa: p,
            temperature_k: t.static_temperature_k.max(200.0),
            saturated,
        })
    }
}

fn due(next: &mut f64, rate_hz: f64, t_s: f64) -> bool {
    if t_s + 1e-9 < *next {
        return false;
    }
    *next += 1.0 / rate_hz;
    if *next <= t_s {
        *next = t_s + 1.0 / rate_hz;
    }
    true
}

/// Thermocouple channels (heat-shield surface, bondline, backshell).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermocoupleSpec {
    /// Output rate, Hz.
    pub rate_hz: f64,
    /// First-order junction time constant, s.
    pub time_constant_s: f64,
    /// 1-sigma noise, K.
    pub noise_k: f64,
    /// Range [min, max], K (type K: about 73 to 1645 K).
    pub range_k: [f64; 2],
}

impl Default for ThermocoupleSpec {
    fn default() -> Self {
        Self {
            rate_hz: 10.0,
            time_constant_s: 0.5,
            noise_k: 0.5,
            range_k: [73.0, 1645.0],
        }
    }
}

/// Thermocouple readings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThermocoupleSample {
    /// Time, s.
    pub t_s: f64,
    /// Heat-shield surface, K.
    pub heat_shield_k: f64,
    /// Bondline, K.
    pub bondline_k: f64,
    /// Backshell, K.
    pub backshell_k: f64,
}

/// Thermocouple model (lagged junctions, noise, range).
#[derive(Debug, Clone)]
pub struct ThermocoupleModel {
    spec: ThermocoupleSpec,
    rng: SimRng,
    junction_k: Option<[f64; 3]>,
    last_t_s: f64,
    next_t_s: f64,
}

impl ThermocoupleModel {
    /// Seeded model.
    pub fn new(spec: &ThermocoupleSpec, seed: u64) -> Self {
        Self {
            spec: spec.clone(),
            rng: SimRng::new(seed, "thermocouple"),
            junction_k: None,
            last_t_s: 0.0,
            next_t_s: 0.0,
        }
    }

    /// Call every step (the lag integrates every step); a sample when due.
    pub fn poll(&mut self, t: &SensorTruth) -> Option<ThermocoupleSample> {
        let truth = [t.heat_shield_surface_k, t.bondline_k, t.backshell_k];
        let j = self.junction_k.get_or_insert(truth);
        let dt = (t.t_s - self.last_t_s).max(0.0);
        self.last_t_s = t.t_s;
        let a = 1.0 - (-dt / self.spec.time_constant_s).exp();
        for k in 0..3 {
            j[k] += a * (truth[k] - j[k]);
        }
        let j = *j;
        if !due(&mut self.next_t_s, self.spec.rate_hz, t.t_s) {
            return None;
        }
        let mut out = [0.0; 3];
        for k in 0..3 {
            out[k] = (j[k] + self.spec.noise_k * self.rng.normal())
                .clamp(self.spec.range_k[0], self.spec.range_k[1]);
        }
        Some(ThermocoupleSample {
            t_s: t.t_s,
            heat_shield_k: out[0],
            bondline_k: out[1],
            backshell_k: out[2],
        })
    }
}

/// Main battery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatterySpec {
    /// Capacity, Ah.
    pub capacity_ah: f64,
    /// Open-circuit voltage when full, V.
    pub full_voltage_v: f64,
    /// Open-circuit voltage when empty, V.
    pub empty_voltage_v: f64,
    /// Internal resistance, ohm.
    pub internal_resistance_ohm: f64,
    /// Avionics base load, A.
    pub base_load_a: f64,
    /// Initial state of charge (0..1).
    pub initial_soc: f64,
}

impl Default for BatterySpec {
    fn default() -> Self {
        Self {
            capacity_ah: 20.0,
            full_voltage_v: 33.6,
            empty_voltage_v: 24.0,
            internal_resistance_ohm: 0.08,
            base_load_a: 2.5,
            initial_soc: 0.95,
        }
    }
}

/// One battery reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatterySample {
    /// Bus voltage under load, V.
    pub voltage_v: f64,
    /// Current drawn, A.
    pub current_a: f64,
    /// State of charge (0..1).
    pub soc: f64,
}

/// Battery: coulomb counting, linear open-circuit voltage, internal resistance.
#[derive(Debug, Clone)]
pub struct Battery {
    spec: BatterySpec,
    soc: f64,
    current_a: f64,
    /// Brown-out fault: the bus is pulled down to at most this voltage (a short
    /// elsewhere on the bus, a failing cell string), V.
    pub fault_bus_limit_v: Option<f64>,
}

impl Battery {
    /// A charged battery.
    pub fn new(spec: &BatterySpec) -> Self {
        Self {
            spec: spec.clone(),
            soc: spec.initial_soc,
            current_a: spec.base_load_a,
            fault_bus_limit_v: None,
        }
    }

    /// Draws base load plus `extra_load_a` for `dt_s`.
    pub fn step(&mut self, dt_s: f64, extra_load_a: f64) {
        self.current_a = self.spec.base_load_a + extra_load_a.max(0.0);
        self.soc = (self.soc - self.current_a * dt_s / (self.spec.capacity_ah * 3600.0)).max(0.0);
    }

    /// Reading now.
    pub fn sample(&self) -> BatterySample {
        let s = &self.spec;
        let ocv = s.empty_voltage_v + (s.full_voltage_v - s.empty_voltage_v) * self.soc;
        let loaded_v = (ocv - self.current_a * s.internal_resistance_ohm).max(0.0);
        BatterySample {
            voltage_v: self
                .fault_bus_limit_v
                .map_or(loaded_v, |limit_v| loaded_v.min(limit_v.max(0.0))),
            current_a: self.current_a,
            soc: self.soc,
        }
    }
}

/// One pyro channel: continuity is read through the bridgewire; firing opens it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PyroChannel {
    /// Channel name (e.g. `drogue_primary`).
    pub name: String,
    /// Open-circuit fault injected.
    pub open_circuit: bool,
    /// Fired (bridgewire consumed).
    pub fired: bool,
}

impl PyroChannel {
    /// An intact channel.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            open_circuit: false,
            fired: false,
        }
    }

    /// Continuity as the pyro controller measures it.
    pub fn continuity(&self) -> bool {
        !self.open_circuit && !self.fired
    }

    /// Fire command: returns true if the initiator actually fired.
    pub fn fire(&mut self) -> bool {
        if self.continuity() {
            self.fired = true;
            true
        } else {
            false
        }
    }
}
