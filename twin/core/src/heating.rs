//! Convective heating and the lumped heat-shield / backshell thermal model.

use crate::vehicle::ThermalSpec;
use serde::{Deserialize, Serialize};

/// Sutton-Graves constant for Earth air, kg^0.5/m: q = k sqrt(rho / r_n) V^3 (W/m^2).
///
/// Source: Sutton & Graves, "A general stagnation-point convective-heating equation
/// for arbitrary gas mixtures", NASA TR R-376 (1971); the SI value 1.7415e-4 is the
/// one tabulated by Tauber, "A review of high-speed, convective, heat-transfer
/// computation methods", NASA TP-2914 (1989), table 1.
pub const SUTTON_GRAVES_EARTH_K: f64 = 1.7415e-4;

/// Stefan-Boltzmann constant, W/(m^2 K^4).
pub const STEFAN_BOLTZMANN: f64 = 5.670_374_419e-8;

/// Stagnation-point convective heat flux, W/m^2.
#[inline]
pub fn sutton_graves_w_m2(k: f64, density_kg_m3: f64, nose_radius_m: f64, speed_m_s: f64) -> f64 {
    k * (density_kg_m3 / nose_radius_m).sqrt() * speed_m_s * speed_m_s * speed_m_s
}

/// Node temperatures of the lumped thermal model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThermalState {
    /// Heat-shield outer surface layer, K.
    pub heat_shield_surface_k: f64,
    /// Heat-shield bondline (ablator / structure interface), K.
    pub bondline_k: f64,
    /// Backshell, K.
    pub backshell_k: f64,
}

/// Two-node heat shield (surface, bondline) plus one backshell node.
///
/// Surface:  C_s dT_s/dt = (1 - f_loss) q_mean A - eps sigma (T_s^4 - T_amb^4) A - G (T_s - T_b)
/// Bondline: C_b dT_b/dt = G (T_s - T_b)
/// Backshell: C_bs dT_bs/dt = q_bs A_bs - eps_bs sigma (T_bs^4 - T_amb^4) A_bs
/// `conductance_scale` > 1 models a degraded heat shield (more heat reaches the bondline).
#[derive(Debug, Clone, PartialEq)]
pub struct ThermalModel {
    spec: ThermalSpec,
    /// Current node temperatures.
    pub state: ThermalState,
    /// Multiplier on the ablator conductance (heat-shield degradation fault), 1 nominal.
    pub conductance_scale: f64,
}

impl ThermalModel {
    /// Initial state from the spec.
    pub fn new(spec: &ThermalSpec) -> Self {
        let t0 = spec.initial_temperature_k;
        Self {
            spec: spec.clone(),
            state: ThermalState {
                heat_shield_surface_k: t0,
                bondline_k: t0,
                backshell_k: t0,
            },
            conductance_scale: 1.0,
        }
    }

    /// Advances by `dt_s` with stagnation heat flux `q_stag_w_m2` and ambient
    /// temperature `ambient_k` (explicit Euler; the node time constants are seconds).
    pub fn step(&mut self, dt_s: f64, q_stag_w_m2: f64, ambient_k: f64) {
        let s = &self.spec;
        let st = &mut self.state;
        let t4a = ambient_k.powi(4);
        let g = s.ablator_conductance_w_k * self.conductance_scale;
        let q_in = q_stag_w_m2 * s.heat_shield_mean_to_stagnation * s.heat_shield_area_m2;
        let rad = s.heat_shield_emissivity
            * STEFAN_BOLTZMANN
            * (st.heat_shield_surface_k.powi(4) - t4a)
            * s.heat_shield_area_m2;
        let cond = g * (st.heat_shield_surface_k - st.bondline_k);
        st.heat_shield_surface_k += dt_s * (q_in - rad - cond) / s.heat_shield_surface_capacity_j_k;
        st.bondline_k += dt_s * cond / s.bondline_capacity_j_k;
        let q_bs = q_stag_w_m2 * s.backshell_to_stagnation * s.backshell_area_m2;
        let rad_bs = s.backshell_emissivity
            * STEFAN_BOLTZMANN
            * (st.backshell_k.powi(4) - t4a)
            * s.backshell_area_m2;
        st.backshell_k += dt_s * (q_bs - rad_bs) / s.backshell_capacity_j_k;
    }
}
