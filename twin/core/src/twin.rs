//! The twin: state, models and a fixed-step integrator (RK4 at the configured rate).
//!
//! One call to [`Twin::step`] advances the vehicle by `1 / rate_hz` seconds with the
//! actuator commands currently set. Commands and faults are applied between steps,
//! which is where the HIL loop exchanges I/O.

use crate::aero::{AeroGrid, TrimPoint, trim_at};
use crate::atmosphere::{AirState, Atmosphere, WindProfile};
use crate::gravity::GravityModel;
use crate::heating::{ThermalModel, sutton_graves_w_m2};
use crate::parachute::{ChuteFault, ChutePhase, Parachute};
use crate::planet::{G0_M_S2, Geodetic, Planet};
use crate::sensors::SensorTruth;
use crate::vehicle::{AeroSpec, VehicleSpec};
use glam::{DMat3, DQuat, DVec3};
use serde::{Deserialize, Serialize};

/// Time constant of the water-impact deceleration transient, s (assumption: a blunt
/// capsule on water stops within a few tenths of a second; peak shock = v / tau).
pub const IMPACT_TAU_S: f64 = 0.05;

/// Degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dof {
    /// Point mass: translation only; aerodynamics from trim (or constant Cd, L/D) with
    /// a commanded bank angle.
    Three,
    /// Rigid body: translation and rotation.
    Six,
}

/// Model selection and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// Planet.
    pub planet: Planet,
    /// Gravity.
    pub gravity: GravityModel,
    /// Atmosphere.
    pub atmosphere: Atmosphere,
    /// Wind profile.
    pub wind: WindProfile,
    /// Degrees of freedom.
    pub dof: Dof,
    /// Integration rate, Hz.
    pub rate_hz: f64,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            planet: Planet::wgs84(),
            gravity: GravityModel::J2,
            atmosphere: Atmosphere::Us76,
            wind: WindProfile::default(),
            dof: Dof::Six,
            rate_hz: 1000.0,
        }
    }
}

/// Rigid-body state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BodyState {
    /// Position, eci, m.
    pub position_eci_m: DVec3,
    /// Velocity, eci, m/s.
    pub velocity_eci_m_s: DVec3,
    /// Attitude: rotation from body to eci.
    pub eci_from_body: DQuat,
    /// Angular rate relative to eci, body frame, rad/s.
    pub rate_body_rad_s: DVec3,
}

#[derive(Debug, Clone, Copy)]
struct Deriv {
    dr: DVec3,
    dv: DVec3,
    dq: DQuat,
    dw: DVec3,
}

impl BodyState {
    #[inline]
    fn add(&self, d: &Deriv, h: f64) -> BodyState {
        BodyState {
            position_eci_m: self.position_eci_m + d.dr * h,
            velocity_eci_m_s: self.velocity_eci_m_s + d.dv * h,
            eci_from_body: self.eci_from_body + d.dq * h,
            rate_body_rad_s: self.rate_body_rad_s + d.dw * h,
        }
    }
}

/// The diagonal of a matrix whose off-diagonal elements are all zero.
fn diagonal(m: &DMat3) -> Option<DVec3> {
    let off = [
        m.x_axis.y, m.x_axis.z, m.y_axis.x, m.y_axis.z, m.z_axis.x, m.z_axis.y,
    ];
    off.iter()
        .all(|&x| x == 0.0)
        .then(|| DVec3::new(m.x_axis.x, m.y_axis.y, m.z_axis.z))
}

/// The angle of attack at a step's first RK4 stage, from which the later stages of the
/// same step get theirs by the small rotation between them instead of an arccosine.
#[derive(Debug, Clone, Copy)]
struct AlphaRef {
    alpha_rad: f64,
    cos_alpha: f64,
    sin_alpha: f64,
}

/// Largest |sin(alpha - alpha_ref)| the increment is used for (a capsule turning its
/// air velocity by more than 0.057 deg between the first and a later stage of one step,
/// 2 rad/s at 1 kHz, gets the arccosine).
const ALPHA_INCREMENT_MAX: f64 = 1e-3;

/// Total angle of attack from the body-frame air velocity's axial component `vx`, its
/// cross-flow magnitude `cl` (both unnormalised) and 1/airspeed: alpha_ref plus
/// asin(sin(alpha - alpha_ref)) by its series x + x^3/6 + 3x^5/40 (the first omitted
/// term, 5x^7/112, is below 5e-23 rad for |x| <= 1e-3) when the reference is close,
/// `acos` otherwise. The division by the airspeed comes last and the series is short:
/// this sits on the step's longest dependency chain.
#[inline]
fn alpha_from(vx: f64, cl: f64, inv_speed: f64, reference: Option<&AlphaRef>) -> f64 {
    if let Some(r) = reference {
        let x = (cl * r.cos_alpha - vx * r.sin_alpha) * inv_speed;
        let cos_d = vx * r.cos_alpha + cl * r.sin_alpha;
        if x.abs() <= ALPHA_INCREMENT_MAX && cos_d > 0.0 {
            let x2 = x * x;
            return (r.alpha_rad + x) + x * x2 * (1.0 / 6.0 + x2 * (3.0 / 40.0));
        }
    }
    (vx * inv_speed).clamp(-1.0, 1.0).acos()
}

/// Environment and aerodynamic quantities at one state (everything but thrust).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Environment {
    /// Altitude, m.
    pub altitude_m: f64,
    /// Air.
    #[serde(skip)]
    pub air: Option<AirState>,
    /// Air-relative velocity, body frame, m/s.
    pub air_velocity_body_m_s: DVec3,
    /// Airspeed, m/s.
    pub airspeed_m_s: f64,
    /// Mach number.
    pub mach: f64,
    /// Dynamic pressure, Pa.
    pub dynamic_pressure_pa: f64,
    /// Total angle of attack, rad.
    pub alpha_rad: f64,
    /// Gravity, eci, m/s^2.
    pub gravity_eci_m_s2: DVec3,
    /// Aerodynamic force, body frame, N.
    pub aero_force_body_n: DVec3,
    /// Parachute force, body frame, N.
    pub chute_force_body_n: DVec3,
    /// Moment about the CG from aerodynamics and parachutes, body frame, N m.
    pub moment_body_n_m: DVec3,
}

/// Physical fault on a thruster.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ThrusterFault {
    /// Firing at full thrust whatever the command (until its tank is empty).
    StuckOpen,
    /// Never fires.
    StuckClosed,
    /// Thrust (and flow) scaled by `scale`.
    Degraded {
        /// Thrust multiplier (0..1 for under-performance).
        scale: f64,
    },
}

/// Surface contact record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Time of contact, s.
    pub t_s: f64,
    /// Speed relative to the surface at contact, m/s.
    pub speed_m_s: f64,
    /// Vertical (downward) speed at contact, m/s.
    pub vertical_speed_m_s: f64,
    /// Where, geodetic.
    pub geodetic: Geodetic,
}

/// Flight phase as the twin sees it (truth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruthPhase {
    /// Above the sensible atmosphere (dynamic pressure < 1 Pa), no parachute.
    Exoatmospheric,
    /// In the atmosphere, no parachute out.
    Atmospheric,
    /// At least one parachute producing drag.
    UnderParachute,
    /// On the surface.
    Floating,
}

/// A serialisable snapshot of the twin, published to the renderer and recorders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Simulation time, s.
    pub t_s: f64,
    /// Step counter.
    pub step: u64,
    /// Phase.
    pub phase: TruthPhase,
    /// Position, eci, m.
    pub position_eci_m: [f64; 3],
    /// Velocity, eci, m/s.
    pub velocity_eci_m_s: [f64; 3],
    /// Attitude eci_from_body quaternion [x, y, z, w].
    pub eci_from_body_xyzw: [f64; 4],
    /// Body rates, rad/s.
    pub rate_body_rad_s: [f64; 3],
    /// Mass, kg.
    pub mass_kg: f64,
    /// Geodetic latitude, deg.
    pub latitude_deg: f64,
    /// Longitude, deg.
    pub longitude_deg: f64,
    /// Altitude, m.
    pub altitude_m: f64,
    /// Airspeed, m/s.
    pub airspeed_m_s: f64,
    /// Mach.
    pub mach: f64,
    /// Dynamic pressure, Pa.
    pub dynamic_pressure_pa: f64,
    /// Total angle of attack, deg.
    pub alpha_deg: f64,
    /// Bank angle, deg.
    pub bank_deg: f64,
    /// Non-gravitational acceleration / g0.
    pub load_factor_g: f64,
    /// Stagnation heat flux, W/m^2.
    pub heat_flux_w_m2: f64,
    /// Integrated stagnation heat load, J/m^2.
    pub heat_load_j_m2: f64,
    /// Heat-shield surface temperature, K.
    pub heat_shield_surface_k: f64,
    /// Bondline temperature, K.
    pub bondline_k: f64,
    /// Backshell temperature, K.
    pub backshell_k: f64,
    /// Parachute phases and drag areas.
    pub parachutes: Vec<(String, ChutePhase, f64)>,
    /// Effective thruster throttles (after faults).
    pub thrusters: Vec<f64>,
    /// Propellant per tank, kg.
    pub tanks_kg: Vec<f64>,
}

/// Errors building a twin. Fatal for the run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TwinError {
    /// The integration rate is not usable.
    #[error("integration rate {rate_hz} Hz is out of range (1 to 100000 Hz)")]
    BadRate {
        /// Given rate.
        rate_hz: f64,
    },
    /// The vehicle description breaks a physical constraint.
    #[error("invalid vehicle: field `{field}`: {message}")]
    InvalidVehicle {
        /// Field path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Initial state contains non-finite values.
    #[error("initial state is not finite: {what}")]
    NonFinite {
        /// Which quantity.
        what: &'static str,
    },
}

/// The capsule twin.
#[derive(Debug, Clone)]
pub struct Twin {
    opts: ModelOptions,
    vehicle: VehicleSpec,
    trim: Option<Vec<TrimPoint>>,
    /// The aerodynamic table compiled for the loop (table vehicles).
    aero_grid: Option<AeroGrid>,
    dt_s: f64,
    // Derived vehicle constants.
    inertia: DMat3,
    inertia_inv: DMat3,
    /// Diagonals of the inertia and its inverse when both matrices are diagonal
    /// (principal axes along the body axes): element-wise products, same bits.
    inertia_diagonal: Option<(DVec3, DVec3)>,
    cg_m: DVec3,
    s_ref_m2: f64,
    l_ref_m: f64,
    // Dynamic state.
    state: BodyState,
    t_s: f64,
    step: u64,
    tanks_kg: Vec<f64>,
    throttle: Vec<f64>,
    thruster_tank: Vec<usize>,
    thruster_dir: Vec<DVec3>,
    thruster_pos: Vec<DVec3>,
    thruster_faults: Vec<Option<ThrusterFault>>,
    thruster_isolated: Vec<bool>,
    chutes: Vec<Parachute>,
    thermal: ThermalModel,
    heat_flux_w_m2: f64,
    heat_load_j_m2: f64,
    bank_command_rad: f64,
    density_scale: f64,
    contact: Option<Contact>,
    floating_ecef_m: DVec3,
    ecef_from_body_floating: DQuat,
    env: Environment,
    env_valid: bool,
    alt_ref: (DVec3, f64, DVec3),
    alpha_ref: Option<AlphaRef>,
    angular_accel_body: DVec3,
}

impl Twin {
    /// A twin of `vehicle` at `initial`, with the given models.
    pub fn new(
        opts: ModelOptions,
        vehicle: VehicleSpec,
        initial: BodyState,
        t0_s: f64,
    ) -> Result<Self, TwinError> {
        if !(opts.rate_hz.is_finite() && (1.0..=100_000.0).contains(&opts.rate_hz)) {
            return Err(TwinError::BadRate {
                rate_hz: opts.rate_hz,
            });
        }
        if !initial.position_eci_m.is_finite() || !initial.velocity_eci_m_s.is_finite() {
            return Err(TwinError::NonFinite {
                what: "position/velocity",
            });
        }
        if !initial.eci_from_body.is_finite() || !initial.rate_body_rad_s.is_finite() {
            return Err(TwinError::NonFinite {
                what: "attitude/rates",
            });
        }
        let mut checks = crate::config::Checks::default();
        vehicle.validate(&mut checks);
        if let Some((field, message)) = checks.first() {
            return Err(TwinError::InvalidVehicle {
                field: field.to_string(),
                message: message.to_string(),
            });
        }
        let i = vehicle.mass.inertia_kg_m2;
        let inertia = DMat3::from_cols(
            DVec3::new(i[0][0], i[1][0], i[2][0]),
            DVec3::new(i[0][1], i[1][1], i[2][1]),
            DVec3::new(i[0][2], i[1][2], i[2][2]),
        );
        let thruster_tank = vehicle
            .thrusters
            .iter()
            .map(|t| {
                vehicle
                    .tanks
                    .iter()
                    .position(|k| k.name == t.tank)
                    .unwrap_or(0)
            })
            .collect();
        let mut state = initial;
        state.eci_from_body = state.eci_from_body.normalize();
        let trim = vehicle.trim();
        let mut twin = Self {
            dt_s: 1.0 / opts.rate_hz,
            inertia,
            inertia_inv: inertia.inverse(),
            inertia_diagonal: diagonal(&inertia).zip(diagonal(&inertia.inverse())),
            cg_m: DVec3::from_array(vehicle.mass.cg_m),
            s_ref_m2: vehicle.reference_area_m2(),
            l_ref_m: vehicle.reference_length_m(),
            state,
            t_s: t0_s,
            step: 0,
            tanks_kg: vehicle.tanks.iter().map(|t| t.propellant_kg).collect(),
            throttle: vec![0.0; vehicle.thrusters.len()],
            thruster_tank,
            thruster_dir: vehicle
                .thrusters
                .iter()
                .map(|t| DVec3::from_array(t.direction).normalize())
                .collect(),
            thruster_pos: vehicle
                .thrusters
                .iter()
                .map(|t| DVec3::from_array(t.position_m))
                .collect(),
            thruster_faults: vec![None; vehicle.thrusters.len()],
            thruster_isolated: vec![false; vehicle.thrusters.len()],
            chutes: vehicle
                .parachutes
                .iter()
                .cloned()
                .map(Parachute::new)
                .collect(),
            thermal: ThermalModel::new(&vehicle.thermal),
            heat_flux_w_m2: 0.0,
            heat_load_j_m2: 0.0,
            bank_command_rad: 0.0,
            density_scale: 1.0,
            contact: None,
            floating_ecef_m: DVec3::ZERO,
            ecef_from_body_floating: DQuat::IDENTITY,
            env: Environment::default(),
            env_valid: false,
            alt_ref: (DVec3::ZERO, 0.0, DVec3::Z),
            alpha_ref: None,
            angular_accel_body: DVec3::ZERO,
            trim,
            aero_grid: match &vehicle.aero {
                AeroSpec::Table(t) => Some(AeroGrid::new(t)),
                AeroSpec::Simple { .. } => None,
            },
            opts,
            vehicle,
        };
        twin.refresh_env();
        Ok(twin)
    }

    // ----- accessors -----

    /// Simulation time, s.
    pub fn time_s(&self) -> f64 {
        self.t_s
    }
    /// Step length, s.
    pub fn dt_s(&self) -> f64 {
        self.dt_s
    }
    /// Steps taken.
    pub fn step_count(&self) -> u64 {
        self.step
    }
    /// Current state.
    pub fn state(&self) -> &BodyState {
        &self.state
    }
    /// Model options.
    pub fn options(&self) -> &ModelOptions {
        &self.opts
    }
    /// Vehicle.
    pub fn vehicle(&self) -> &VehicleSpec {
        &self.vehicle
    }
    /// Trim table (table aero only).
    pub fn trim_table(&self) -> Option<&[TrimPoint]> {
        self.trim.as_deref()
    }
    /// Current mass, kg.
    pub fn mass_kg(&self) -> f64 {
        self.vehicle.mass.dry_mass_kg + self.tanks_kg.iter().sum::<f64>()
    }
    /// Environment at the current state.
    pub fn environment(&self) -> &Environment {
        &self.env
    }
    /// Contact record, once the vehicle has reached the surface.
    pub fn contact(&self) -> Option<&Contact> {
        self.contact.as_ref()
    }
    /// Parachutes.
    pub fn parachutes(&self) -> &[Parachute] {
        &self.chutes
    }
    /// Stagnation heat flux at the current state, W/m^2.
    pub fn heat_flux_w_m2(&self) -> f64 {
        self.heat_flux_w_m2
    }
    /// Integrated stagnation heat load, J/m^2.
    pub fn heat_load_j_m2(&self) -> f64 {
        self.heat_load_j_m2
    }
    /// Thermal model state.
    pub fn thermal(&self) -> &crate::heating::ThermalState {
        &self.thermal.state
    }
    /// Propellant per tank, kg.
    pub fn tanks_kg(&self) -> &[f64] {
        &self.tanks_kg
    }

    /// Non-gravitational acceleration at the CG (aero + parachutes + thrust), body, m/s^2.
    pub fn specific_force_body_m_s2(&self) -> DVec3 {
        if let Some(c) = self.contact {
            let r = self.state.position_eci_m;
            let w = self.opts.planet.omega_eci();
            let a = w.cross(w.cross(r));
            let g = self.opts.gravity.accel_eci(&self.opts.planet, r);
            // Water impact: the vertical speed is taken out over a short exponential
            // transient (time constant IMPACT_TAU_S), which the IMU feels as a shock
            // along the local vertical (peak v / tau).
            let since = self.t_s - c.t_s;
            let shock = if (0.0..10.0 * IMPACT_TAU_S).contains(&since) {
                let up = self.opts.planet.up_ecef(self.floating_ecef_m);
                let up_eci = self.opts.planet.ecef_from_eci(self.t_s).transpose() * up;
                up_eci
                    * (c.vertical_speed_m_s.max(0.0) / IMPACT_TAU_S * (-since / IMPACT_TAU_S).exp())
            } else {
                DVec3::ZERO
            };
            return self.state.eci_from_body.inverse() * (a - g + shock);
        }
        let (ft, _) = self.thrust_body();
        (self.env.aero_force_body_n + self.env.chute_force_body_n + ft) / self.mass_kg()
    }

    /// Load factor |specific force| / g0.
    pub fn load_factor_g(&self) -> f64 {
        self.specific_force_body_m_s2().length() / G0_M_S2
    }

    /// Geodetic position.
    pub fn geodetic(&self) -> Geodetic {
        let r = self.opts.planet.ecef_from_eci(self.t_s) * self.state.position_eci_m;
        self.opts.planet.geodetic_from_ecef(r)
    }

    /// Velocity relative to the rotating planet, ecef axes, m/s.
    pub fn velocity_ecef_m_s(&self) -> DVec3 {
        let w = self.opts.planet.omega_eci();
        self.opts.planet.ecef_from_eci(self.t_s)
            * (self.state.velocity_eci_m_s - w.cross(self.state.position_eci_m))
    }

    /// Truth for the sensor models.
    pub fn sensor_truth(&self) -> SensorTruth {
        let g = self.geodetic();
        let ned_from_ecef = self.opts.planet.ecef_from_ned(&g).transpose();
        let air = self.env.air.unwrap_or(AirState::VACUUM);
        let th = &self.thermal.state;
        SensorTruth {
            t_s: self.t_s,
            specific_force_body_m_s2: self.specific_force_body_m_s2(),
            rate_body_rad_s: self.state.rate_body_rad_s,
            angular_accel_body_rad_s2: self.angular_accel_body,
            latitude_rad: g.latitude_rad,
            longitude_rad: g.longitude_rad,
            altitude_m: g.altitude_m,
            velocity_ned_m_s: ned_from_ecef * self.velocity_ecef_m_s(),
            airspeed_m_s: self.env.airspeed_m_s,
            static_pressure_pa: air.pressure_pa,
            static_temperature_k: air.temperature_k,
            heat_shield_surface_k: th.heat_shield_surface_k,
            bondline_k: th.bondline_k,
            backshell_k: th.backshell_k,
        }
    }

    /// Snapshot for renderers and recorders.
    pub fn snapshot(&self) -> Snapshot {
        let g = self.geodetic();
        let e = &self.env;
        let th = &self.thermal.state;
        let phase = if self.contact.is_some() {
            TruthPhase::Floating
        } else if self.chutes.iter().any(|c| c.cd_s_at(self.t_s) > 0.0) {
            TruthPhase::UnderParachute
        } else if e.dynamic_pressure_pa >= 1.0 {
            TruthPhase::Atmospheric
        } else {
            TruthPhase::Exoatmospheric
        };
        Snapshot {
            t_s: self.t_s,
            step: self.step,
            phase,
            position_eci_m: self.state.position_eci_m.to_array(),
            velocity_eci_m_s: self.state.velocity_eci_m_s.to_array(),
            eci_from_body_xyzw: self.state.eci_from_body.to_array(),
            rate_body_rad_s: self.state.rate_body_rad_s.to_array(),
            mass_kg: self.mass_kg(),
            latitude_deg: g.latitude_rad.to_degrees(),
            longitude_deg: g.longitude_rad.to_degrees(),
            altitude_m: g.altitude_m,
            airspeed_m_s: e.airspeed_m_s,
            mach: e.mach,
            dynamic_pressure_pa: e.dynamic_pressure_pa,
            alpha_deg: e.alpha_rad.to_degrees(),
            bank_deg: self.bank_rad().to_degrees(),
            load_factor_g: self.load_factor_g(),
            heat_flux_w_m2: self.heat_flux_w_m2,
            heat_load_j_m2: self.heat_load_j_m2,
            heat_shield_surface_k: th.heat_shield_surface_k,
            bondline_k: th.bondline_k,
            backshell_k: th.backshell_k,
            parachutes: self
                .chutes
                .iter()
                .map(|c| (c.spec.name.clone(), c.phase, c.cd_s_at(self.t_s)))
                .collect(),
            thrusters: (0..self.throttle.len())
                .map(|k| self.effective_throttle(k))
                .collect(),
            tanks_kg: self.tanks_kg.clone(),
        }
    }

    // ----- commands and faults (between steps) -----

    /// Index of a thruster by name.
    pub fn thruster_index(&self, name: &str) -> Option<usize> {
        self.vehicle.thrusters.iter().position(|t| t.name == name)
    }
    /// Index of a parachute by name.
    pub fn parachute_index(&self, name: &str) -> Option<usize> {
        self.chutes.iter().position(|c| c.spec.name == name)
    }
    /// Sets a thruster's commanded throttle (0 off, 1 full; clamped).
    pub fn set_throttle(&mut self, thruster: usize, throttle: f64) {
        if let Some(t) = self.throttle.get_mut(thruster) {
            *t = if throttle.is_finite() {
                throttle.clamp(0.0, 1.0)
            } else {
                0.0
            };
        }
    }
    /// Commanded throttles.
    pub fn throttles(&self) -> &[f64] {
        &self.throttle
    }
    /// Pyro command to deploy a parachute.
    pub fn deploy_parachute(&mut self, idx: usize) {
        let t = self.t_s;
        if let Some(c) = self.chutes.get_mut(idx) {
            c.deploy(t);
        }
        self.env_valid = false;
    }
    /// An impulsive velocity change given in the body frame, m/s (separation springs
    /// pushing the capsule off its host vehicle). The attitude and rates are kept.
    pub fn apply_delta_v_body(&mut self, delta_v_body_m_s: DVec3) {
        if delta_v_body_m_s.is_finite() {
            self.state.velocity_eci_m_s += self.state.eci_from_body * delta_v_body_m_s;
            self.env_valid = false;
            self.refresh_env();
        }
    }

    /// A parachute deployed `ago_s` before now (initial conditions that start under a
    /// parachute, e.g. descent scenarios): its phase and drag area are what the
    /// deployment sequence gives `ago_s` after the pyro fired.
    pub fn set_parachute_deployed_ago(&mut self, idx: usize, ago_s: f64) {
        let t = self.t_s;
        if let Some(c) = self.chutes.get_mut(idx) {
            c.deployed_at(t - ago_s.max(0.0), t);
        }
        self.env_valid = false;
        self.refresh_env();
    }
    /// Pyro command to release (cut away) a parachute.
    pub fn release_parachute(&mut self, idx: usize) {
        if let Some(c) = self.chutes.get_mut(idx) {
            c.release();
        }
        self.env_valid = false;
        self.refresh_env();
    }
    /// Bank angle used by 3-DOF flight and by constant-Cd, L/D aerodynamics, rad.
    pub fn set_bank_command(&mut self, bank_rad: f64) {
        if bank_rad.is_finite() {
            self.bank_command_rad = bank_rad;
            self.env_valid = false;
            self.refresh_env();
        }
    }
    /// Injects (or clears) a thruster fault.
    pub fn set_thruster_fault(&mut self, thruster: usize, fault: Option<ThrusterFault>) {
        if let Some(f) = self.thruster_faults.get_mut(thruster) {
            *f = fault;
        }
    }
    /// Propellant of a thruster's tank: (left, loaded), kg.
    pub fn thruster_tank_kg(&self, thruster: usize) -> Option<(f64, f64)> {
        let k = *self.thruster_tank.get(thruster)?;
        Some((self.tanks_kg[k], self.vehicle.tanks[k].propellant_kg))
    }
    /// Closes (or opens) the latch valve upstream of a thruster: an isolated thruster
    /// gets no propellant, whatever its own valve does (stuck open included).
    pub fn set_thruster_isolated(&mut self, thruster: usize, isolated: bool) {
        if let Some(f) = self.thruster_isolated.get_mut(thruster) {
            *f = isolated;
        }
    }
    /// True when a thruster's own valve is open (commanded, or stuck open), whether or
    /// not propellant reaches it: what the valve's position switch reads.
    pub fn thruster_valve_open(&self, thruster: usize) -> bool {
        match self.thruster_faults.get(thruster).copied().flatten() {
            Some(ThrusterFault::StuckOpen) => true,
            Some(ThrusterFault::StuckClosed) => false,
            _ => self.throttle.get(thruster).is_some_and(|t| *t > 0.0),
        }
    }
    /// Injects (or clears) a parachute fault; takes effect for phases not yet reached.
    pub fn set_parachute_fault(&mut self, idx: usize, fault: Option<ChuteFault>) {
        if let Some(c) = self.chutes.get_mut(idx) {
            c.fault = fault;
            if matches!(fault, Some(ChuteFault::FailsToDeploy)) && c.phase == ChutePhase::Deploying
            {
                c.phase = ChutePhase::Failed;
            }
        }
        self.env_valid = false;
        self.refresh_env();
    }
    /// Atmospheric density multiplier (environment dispersion), 1 nominal.
    pub fn set_density_scale(&mut self, scale: f64) {
        if scale.is_finite() && scale >= 0.0 {
            self.density_scale = scale;
            self.env_valid = false;
            self.refresh_env();
        }
    }
    /// Replaces the wind profile.
    pub fn set_wind(&mut self, wind: WindProfile) {
        self.opts.wind = wind;
        self.env_valid = false;
        self.refresh_env();
    }
    /// Heat-shield degradation: multiplier on the ablator conductance.
    pub fn set_heat_shield_conductance_scale(&mut self, scale: f64) {
        if scale.is_finite() && scale >= 0.0 {
            self.thermal.conductance_scale = scale;
        }
    }

    // ----- dynamics -----

    /// A thruster's effective throttle after faults, isolation and propellant (0 for an
    /// unknown index).
    pub fn thruster_output(&self, k: usize) -> f64 {
        if k >= self.throttle.len() {
            return 0.0;
        }
        self.effective_throttle(k)
    }

    fn effective_throttle(&self, k: usize) -> f64 {
        if self.tanks_kg[self.thruster_tank[k]] <= 0.0 || self.thruster_isolated[k] {
            return 0.0;
        }
        match self.thruster_faults[k] {
            None => self.throttle[k],
            Some(ThrusterFault::StuckOpen) => 1.0,
            Some(ThrusterFault::StuckClosed) => 0.0,
            Some(ThrusterFault::Degraded { scale }) => self.throttle[k] * scale.max(0.0),
        }
    }

    /// Thrust force and moment about the CG, body frame.
    fn thrust_body(&self) -> (DVec3, DVec3) {
        let mut f = DVec3::ZERO;
        let mut m = DVec3::ZERO;
        for k in 0..self.throttle.len() {
            let th = self.effective_throttle(k);
            if th > 0.0 {
                let fk = self.thruster_dir[k] * (self.vehicle.thrusters[k].thrust_n * th);
                f += fk;
                m += (self.thruster_pos[k] - self.cg_m).cross(fk);
            }
        }
        (f, m)
    }

    fn refresh_env(&mut self) {
        // Refine the previous step's normal when the vehicle is near it (within 1 km,
        // i.e. always inside a run at any rate above 10 Hz); the closed form otherwise.
        let r = self.state.position_eci_m;
        let (r_ref, _, n_ref) = self.alt_ref;
        let (h, n) = if r.distance_squared(r_ref) < 1e6 {
            self.opts.planet.altitude_and_normal_near(r, n_ref)
        } else {
            self.opts.planet.altitude_and_normal(r)
        };
        self.alt_ref = (r, h, n);
        let mut env = Environment::default();
        self.alpha_ref = self.environment_at::<true>(self.t_s, &self.state, h, None, &mut env);
        self.env = env;
        self.env_valid = true;
    }

    /// Altitude at a point near the step's start state: exact at the start (cached),
    /// first order in the displacement for the RK4 stages (error |d|^2 / 2R, below
    /// 1e-5 m for a 1 ms step at orbital speed).
    #[inline]
    fn stage_altitude(&self, r: DVec3) -> f64 {
        let (r0, h0, n) = self.alt_ref;
        h0 + n.dot(r - r0)
    }

    /// Lift reference at a state: the local "up" component perpendicular to the air
    /// velocity, and "right" (velocity x up), body frame; bank angles are measured from
    /// up towards right.
    fn lift_frame(&self, s: &BodyState, v_hat_body: DVec3) -> (DVec3, DVec3) {
        let up_eci = if self.opts.planet.shape == crate::planet::PlanetShape::Flat {
            DVec3::Z
        } else {
            s.position_eci_m.normalize()
        };
        let up_body = s.eci_from_body.conjugate() * up_eci;
        let l0 = (up_body - v_hat_body * up_body.dot(v_hat_body)).normalize_or_zero();
        (l0, v_hat_body.cross(l0))
    }

    /// Bank angle of the aerodynamic lift about the air-relative velocity now, rad
    /// (0 = lift up, positive = lift to the right); the commanded bank in the 3-DOF and
    /// simple-aerodynamics modes, 0 without airspeed or lift. Computed on demand (reports
    /// need it, the integration does not).
    pub fn bank_rad(&self) -> f64 {
        let e = &self.env;
        if e.airspeed_m_s < 1e-6 {
            return 0.0;
        }
        match (&self.vehicle.aero, self.opts.dof) {
            (AeroSpec::Table(_), Dof::Six) => {
                let v_hat_body = e.air_velocity_body_m_s / e.airspeed_m_s;
                let f = e.aero_force_body_n;
                let lift = f - v_hat_body * f.dot(v_hat_body);
                if lift.length() <= 1e-9 {
                    return 0.0;
                }
                let (l0, right) = self.lift_frame(&self.state, v_hat_body);
                lift.dot(right).atan2(lift.dot(l0))
            }
            _ => self.bank_command_rad,
        }
    }

    /// Everything but thrust at a state, written into `env` (filled in place: the
    /// struct is large and this runs four times per step); returns the angle of attack
    /// for later stages to start from (`alpha_ref` given: this is a later stage).
    /// `FULL = false` (the later RK4 stages) leaves `env.air` empty, so the air's
    /// temperature and pressure, which no force needs, are not computed.
    fn environment_at<const FULL: bool>(
        &self,
        t_s: f64,
        s: &BodyState,
        altitude_m: f64,
        alpha_ref: Option<&AlphaRef>,
        env: &mut Environment,
    ) -> Option<AlphaRef> {
        let p = &self.opts.planet;
        let gravity = self.opts.gravity.accel_eci(p, s.position_eci_m);
        let air = self.opts.atmosphere.at(altitude_m, self.density_scale);
        // omega x r with omega along z (the same bits as the full cross product).
        let w_z = p.rotation_rate_rad_s;
        let r = s.position_eci_m;
        let mut v_air_eci = s.velocity_eci_m_s - DVec3::new(-w_z * r.y, w_z * r.x, 0.0);
        if !self.opts.wind.is_calm() {
            let (wn, we) = self.opts.wind.at(altitude_m);
            let ecef_from_eci = p.ecef_from_eci(t_s);
            let r_ecef = ecef_from_eci * s.position_eci_m;
            let g = p.geodetic_from_ecef(r_ecef);
            let ecef_from_ned = p.ecef_from_ned(&g);
            let w_ecef = ecef_from_ned * DVec3::new(wn, we, 0.0);
            v_air_eci -= ecef_from_eci.transpose() * w_ecef;
        }
        let v_air_body = s.eci_from_body.conjugate() * v_air_eci;
        let speed = v_air_body.length();
        let q = 0.5 * air.density_kg_m3 * speed * speed;
        let mach = speed / air.speed_of_sound_m_s;
        *env = Environment {
            altitude_m,
            air: if FULL { Some(air) } else { None },
            air_velocity_body_m_s: v_air_body,
            airspeed_m_s: speed,
            mach,
            dynamic_pressure_pa: q,
            gravity_eci_m_s2: gravity,
            ..Default::default()
        };
        if speed < 1e-6 {
            return None;
        }
        // Reciprocals once: a vector divided by a scalar is three divisions.
        let inv_speed = 1.0 / speed;
        let mut new_ref = None;
        let v_hat_body = v_air_body * inv_speed;

        let six_dof = self.opts.dof == Dof::Six;
        // A table vehicle always has its compiled grid (built with the twin).
        match (&self.vehicle.aero, &self.aero_grid, six_dof) {
            (AeroSpec::Table(t), Some(grid), true) => {
                let cross = DVec3::new(0.0, v_air_body.y, v_air_body.z);
                let cl = cross.length();
                let alpha = alpha_from(v_air_body.x, cl, inv_speed, alpha_ref);
                if alpha_ref.is_none() {
                    new_ref = Some(AlphaRef {
                        alpha_rad: alpha,
                        cos_alpha: v_hat_body.x.clamp(-1.0, 1.0),
                        sin_alpha: (cl * inv_speed).min(1.0),
                    });
                }
                let c_hat = if cl > 1e-9 * speed {
                    cross * (1.0 / cl)
                } else {
                    DVec3::Z
                };
                let c = grid.lookup(mach, alpha);
                let qs = q * self.s_ref_m2;
                let f = (DVec3::X * -c.ca - c_hat * c.cn) * qs;
                let mref = DVec3::from_array(t.moment_reference_m);
                // c_hat x X, written out.
                let mut m = DVec3::new(0.0, c_hat.z, -c_hat.y) * (qs * self.l_ref_m * c.cm)
                    + (mref - self.cg_m).cross(f);
                let k = qs * self.l_ref_m * self.l_ref_m * (0.5 * inv_speed);
                let w = s.rate_body_rad_s;
                m += DVec3::new(
                    t.clp_per_rad * w.x,
                    t.cmq_per_rad * w.y,
                    t.cmq_per_rad * w.z,
                ) * k;
                env.alpha_rad = alpha;
                env.aero_force_body_n = f;
                env.moment_body_n_m = m;
            }
            _ => {
                let (cd, cl, alpha) = match &self.vehicle.aero {
                    AeroSpec::Simple { cd, lift_to_drag } => (*cd, cd * lift_to_drag, 0.0),
                    AeroSpec::Table(_) => {
                        let tp = trim_at(self.trim.as_deref().unwrap_or(&[]), mach);
                        (tp.cd, tp.cl, tp.alpha_rad)
                    }
                };
                let (sb, cb) = self.bank_command_rad.sin_cos();
                let (l0, right) = self.lift_frame(s, v_hat_body);
                let lift_dir = l0 * cb + right * sb;
                let qs = q * self.s_ref_m2;
                env.aero_force_body_n = -v_hat_body * (qs * cd) + lift_dir * (qs * cl);
                env.alpha_rad = alpha;
            }
        }
        // Parachutes: drag along the air velocity at the attachment point.
        for c in &self.chutes {
            let cds = c.cd_s_at(t_s);
            if cds <= 0.0 {
                continue;
            }
            let r_att = DVec3::from_array(c.spec.attach_m) - self.cg_m;
            let v_att = if six_dof {
                v_air_body + s.rate_body_rad_s.cross(r_att)
            } else {
                v_air_body
            };
            let va = v_att.length();
            let f = -v_att * (0.5 * air.density_kg_m3 * va * cds);
            env.chute_force_body_n += f;
            if six_dof {
                env.moment_body_n_m += r_att.cross(f);
            }
        }
        new_ref
    }

    #[inline]
    fn derivative(
        &self,
        s: &BodyState,
        env: &Environment,
        thrust_f: DVec3,
        thrust_m: DVec3,
        inv_mass: f64,
    ) -> Deriv {
        let f_body = env.aero_force_body_n + env.chute_force_body_n + thrust_f;
        let dv = env.gravity_eci_m_s2 + s.eci_from_body * (f_body * inv_mass);
        if self.opts.dof == Dof::Three {
            return Deriv {
                dr: s.velocity_eci_m_s,
                dv,
                dq: DQuat::from_xyzw(0.0, 0.0, 0.0, 0.0),
                dw: DVec3::ZERO,
            };
        }
        let w = s.rate_body_rad_s;
        let m = env.moment_body_n_m + thrust_m;
        let dw = match self.inertia_diagonal {
            Some((i, i_inv)) => (m - w.cross(i * w)) * i_inv,
            None => self.inertia_inv * (m - w.cross(self.inertia * w)),
        };
        let dq = s.eci_from_body * DQuat::from_xyzw(0.5 * w.x, 0.5 * w.y, 0.5 * w.z, 0.0);
        Deriv {
            dr: s.velocity_eci_m_s,
            dv,
            dq,
            dw,
        }
    }

    /// Advances one step.
    pub fn step(&mut self) {
        let h = self.dt_s;
        if self.contact.is_some() {
            self.float_step(h);
            return;
        }
        let t = self.t_s;
        for c in &mut self.chutes {
            c.update_phase(t);
        }
        let inv_mass = 1.0 / self.mass_kg();
        // Only a commanded or faulted thruster can produce thrust (saves two loops over
        // the thrusters in the common coasting step; same result bit for bit).
        let thrusting = self.throttle.iter().any(|&t| t > 0.0)
            || self.thruster_faults.iter().any(Option::is_some);
        let (tf, tm) = if thrusting {
            self.thrust_body()
        } else {
            (DVec3::ZERO, DVec3::ZERO)
        };
        if !self.env_valid {
            self.refresh_env();
        }
        let s0 = self.state;
        let prev_alt = self.env.altitude_m;
        let k1 = self.derivative(&s0, &self.env, tf, tm, inv_mass);
        // A later stage: its environment from the step's exact altitude (linearised)
        // and angle of attack (incremented), then its derivative.
        let mut env = Environment::default();
        let mut stage = |s: &BodyState, t_s: f64| {
            self.environment_at::<false>(
                t_s,
                s,
                self.stage_altitude(s.position_eci_m),
                self.alpha_ref.as_ref(),
                &mut env,
            );
            self.derivative(s, &env, tf, tm, inv_mass)
        };
        let k2 = stage(&s0.add(&k1, 0.5 * h), t + 0.5 * h);
        let k3 = stage(&s0.add(&k2, 0.5 * h), t + 0.5 * h);
        let k4 = stage(&s0.add(&k3, h), t + h);
        let mut s1 = BodyState {
            position_eci_m: s0.position_eci_m
                + (k1.dr + 2.0 * k2.dr + 2.0 * k3.dr + k4.dr) * (h / 6.0),
            velocity_eci_m_s: s0.velocity_eci_m_s
                + (k1.dv + 2.0 * k2.dv + 2.0 * k3.dv + k4.dv) * (h / 6.0),
            eci_from_body: s0.eci_from_body
                + (k1.dq + k2.dq * 2.0 + k3.dq * 2.0 + k4.dq) * (h / 6.0),
            rate_body_rad_s: s0.rate_body_rad_s
                + (k1.dw + 2.0 * k2.dw + 2.0 * k3.dw + k4.dw) * (h / 6.0),
        };
        s1.eci_from_body = s1.eci_from_body.normalize();

        // Propellant: flow is constant over the step.
        for k in 0..if thrusting { self.throttle.len() } else { 0 } {
            let th = self.effective_throttle(k);
            if th > 0.0 {
                let spec = &self.vehicle.thrusters[k];
                // Flow follows the delivered thrust (a degraded motor burns slower).
                let mdot = spec.thrust_n * th / (spec.isp_s * G0_M_S2);
                let tank = &mut self.tanks_kg[self.thruster_tank[k]];
                *tank = (*tank - mdot * h).max(0.0);
            }
        }

        // Heating and thermal model (first order in time; these do not feed back).
        let q0 = self.heat_flux_w_m2;
        self.state = s1;
        self.t_s = t + h;
        self.step += 1;
        self.refresh_env();
        if self.opts.dof == Dof::Six {
            self.angular_accel_body = (s1.rate_body_rad_s - s0.rate_body_rad_s) / h;
        }
        let air = self.env.air.unwrap_or(AirState::VACUUM);
        let q_now = self.env.dynamic_pressure_pa;
        for c in &mut self.chutes {
            let load = q_now * c.cd_s_at(self.t_s);
            c.peak_load_n = c.peak_load_n.max(load);
        }
        self.heat_flux_w_m2 = sutton_graves_w_m2(
            self.vehicle.thermal.sutton_graves_k,
            air.density_kg_m3,
            self.vehicle.geometry.nose_radius_m,
            self.env.airspeed_m_s,
        );
        self.heat_load_j_m2 += 0.5 * (q0 + self.heat_flux_w_m2) * h;
        self.thermal
            .step(h, self.heat_flux_w_m2, air.temperature_k.max(200.0));

        // Surface contact.
        if self.env.altitude_m <= 0.0 && prev_alt > 0.0 {
            let f = prev_alt / (prev_alt - self.env.altitude_m);
            let t_c = t + f * h;
            let v1 = self.velocity_ecef_m_s();
            let w = self.opts.planet.omega_eci();
            let prev_v_ecef = self.opts.planet.ecef_from_eci(t)
                * (s0.velocity_eci_m_s - w.cross(s0.position_eci_m));
            let v_c = prev_v_ecef + (v1 - prev_v_ecef) * f;
            let ecef_from_eci = self.opts.planet.ecef_from_eci(self.t_s);
            let r1 = ecef_from_eci * s1.position_eci_m;
            let r0 = self.opts.planet.ecef_from_eci(t) * s0.position_eci_m;
            let rc = r0 + (r1 - r0) * f;
            let mut g = self.opts.planet.geodetic_from_ecef(rc);
            g.altitude_m = 0.0;
            let up = self.opts.planet.up_ecef(rc);
            self.contact = Some(Contact {
                t_s: t_c,
                speed_m_s: v_c.length(),
                vertical_speed_m_s: -v_c.dot(up),
                geodetic: g,
            });
            self.floating_ecef_m = self.opts.planet.ecef_from_geodetic(g);
            let ecef_q = DQuat::from_mat3(&ecef_from_eci);
            self.ecef_from_body_floating = (ecef_q * s1.eci_from_body).normalize();
            for c in &mut self.chutes {
                c.release();
            }
            for t in &mut self.throttle {
                *t = 0.0;
            }
            self.float_step(0.0);
        }
    }

    /// On the surface: fixed to the rotating planet.
    fn float_step(&mut self, h: f64) {
        self.t_s += h;
        if h > 0.0 {
            self.step += 1;
        }
        let p = &self.opts.planet;
        let eci_from_ecef = p.ecef_from_eci(self.t_s).transpose();
        let r = eci_from_ecef * self.floating_ecef_m;
        let w = p.omega_eci();
        let q = (DQuat::from_mat3(&eci_from_ecef) * self.ecef_from_body_floating).normalize();
        self.state = BodyState {
            position_eci_m: r,
            velocity_eci_m_s: w.cross(r),
            eci_from_body: q,
            rate_body_rad_s: q.conjugate() * w,
        };
        self.angular_accel_body = DVec3::ZERO;
        self.heat_flux_w_m2 = 0.0;
        let air = self.opts.atmosphere.at(0.0, self.density_scale);
        self.thermal.step(h, 0.0, air.temperature_k.max(200.0));
        self.env = Environment {
            altitude_m: 0.0,
            air: Some(air),
            gravity_eci_m_s2: self.opts.gravity.accel_eci(p, r),
            ..Default::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The angle of attack of a later RK4 stage, incremented from the first stage's,
    /// is the angle itself (to rounding) across the whole range and for turns up to
    /// the increment's limit; beyond it the arccosine is used.
    #[test]
    fn alpha_increment_matches_the_angle() {
        let reference = |a0: f64| AlphaRef {
            alpha_rad: a0,
            cos_alpha: a0.cos(),
            sin_alpha: a0.sin(),
        };
        for deg in 0..=180 {
            let a0 = f64::from(deg).to_radians();
            let r = reference(a0);
            for d in [-9e-4, -1e-4, -1e-7, 0.0, 1e-7, 1e-4, 9e-4] {
                let a = (a0 + d).clamp(0.0, std::f64::consts::PI);
                // Unnormalised components (airspeed 7 km/s), as the loop has them.
                let speed = 7000.0;
                let got = alpha_from(a.cos() * speed, a.sin() * speed, 1.0 / speed, Some(&r));
                assert!(
                    (got - a).abs() < 1e-14,
                    "alpha0 {deg} deg, d {d}: {got} vs {a}"
                );
            }
        }
        // A large turn within one step falls back to acos.
        let got = alpha_from(1.2f64.cos(), 1.2f64.sin(), 1.0, Some(&reference(0.5)));
        assert!((got - 1.2).abs() < 1e-14, "{got}");
    }
}
