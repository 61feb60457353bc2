//! The vehicle description, read from a TOML data file (see
//! `fixtures/vehicles/capsule-srcv.toml` for a documented example).

use crate::aero::{AeroTable, TrimPoint, trim_table};
use crate::config::{Checks, ConfigError, Source};
use crate::sensors::SensorSuiteSpec;
use serde::{Deserialize, Serialize};

/// A complete vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleSpec {
    /// Identification.
    pub vehicle: VehicleId,
    /// Mass properties.
    pub mass: MassSpec,
    /// Outer mould line quantities used by the models.
    pub geometry: GeometrySpec,
    /// Aerodynamics.
    pub aero: AeroSpec,
    /// Propellant tanks.
    #[serde(default)]
    pub tanks: Vec<TankSpec>,
    /// Thrusters (RCS and the deorbit motor).
    #[serde(default)]
    pub thrusters: Vec<ThrusterSpec>,
    /// Parachutes, in deployment order.
    #[serde(default)]
    pub parachutes: Vec<ParachuteSpec>,
    /// Heat shield and backshell thermal model.
    #[serde(default)]
    pub thermal: ThermalSpec,
    /// Sensors.
    #[serde(default)]
    pub sensors: SensorSuiteSpec,
}

/// Name and provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleId {
    /// Vehicle name.
    pub name: String,
    /// Free text: where the numbers come from.
    #[serde(default)]
    pub source: String,
}

/// Mass properties (without propellant; tank contents are added).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MassSpec {
    /// Dry mass (everything but tank propellant), kg.
    pub dry_mass_kg: f64,
    /// Centre of gravity in the body frame, m.
    pub cg_m: [f64; 3],
    /// Inertia tensor about the CG, body axes, kg m^2 (rows).
    pub inertia_kg_m2: [[f64; 3]; 3],
}

/// Geometry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometrySpec {
    /// Maximum diameter, m.
    pub reference_diameter_m: f64,
    /// Heat-shield nose radius (for stagnation-point heating), m.
    pub nose_radius_m: f64,
}

/// Aerodynamic model choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum AeroSpec {
    /// Full coefficient database.
    Table(AeroTable),
    /// Constant drag coefficient and lift-to-drag ratio.
    Simple {
        /// Drag coefficient on the reference area.
        cd: f64,
        /// Lift-to-drag ratio (lift along the bank-rotated lift vector).
        #[serde(default)]
        lift_to_drag: f64,
    },
}

/// A propellant tank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TankSpec {
    /// Tank name, referenced by thrusters.
    pub name: String,
    /// Loaded propellant, kg.
    pub propellant_kg: f64,
}

/// A thruster: on/off or throttled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrusterSpec {
    /// Name (used by commands and faults).
    pub name: String,
    /// Tank it draws from.
    pub tank: String,
    /// Thrust application point, body frame, m.
    pub position_m: [f64; 3],
    /// Direction of the force on the vehicle, body frame (normalised on load).
    pub direction: [f64; 3],
    /// Vacuum thrust at full throttle, N.
    pub thrust_n: f64,
    /// Specific impulse, s.
    pub isp_s: f64,
}

/// A parachute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParachuteSpec {
    /// Name (`drogue`, `main`, ...).
    pub name: String,
    /// Fully open drag area Cd S, m^2. Either this or `cd` with `diameter_m`.
    #[serde(default)]
    pub cd_s_m2: Option<f64>,
    /// Drag coefficient on the nominal area pi D0^2 / 4.
    #[serde(default)]
    pub cd: Option<f64>,
    /// Nominal diameter D0, m.
    #[serde(default)]
    pub diameter_m: Option<f64>,
    /// Riser attachment point, body frame, m.
    #[serde(default)]
    pub attach_m: [f64; 3],
    /// Time from the pyro command to line stretch, s.
    #[serde(default = "default_line_stretch")]
    pub line_stretch_s: f64,
    /// Time from line stretch to full (or reefed) inflation, s.
    #[serde(default = "default_inflation")]
    pub inflation_time_s: f64,
    /// Exponent of the drag-area growth during inflation: CdS(t) = CdS (t/t_inf)^n.
    #[serde(default = "default_inflation_exponent")]
    pub inflation_exponent: f64,
    /// Reefing stage, if the canopy is reefed.
    #[serde(default)]
    pub reefing: Option<ReefingSpec>,
}

fn default_line_stretch() -> f64 {
    0.5
}
fn default_inflation() -> f64 {
    1.0
}
fn default_inflation_exponent() -> f64 {
    2.0
}

/// Reefing stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReefingSpec {
    /// Reefed drag area, m^2.
    pub cd_s_m2: f64,
    /// Time from line stretch to the reefing-line cutter firing, s.
    pub disreef_after_s: f64,
    /// Time from disreef to full inflation, s.
    pub disreef_inflation_s: f64,
}

impl ParachuteSpec {
    /// Fully open drag area, m^2.
    pub fn full_cd_s_m2(&self) -> f64 {
        match (self.cd_s_m2, self.cd, self.diameter_m) {
            (Some(s), _, _) => s,
            (None, Some(cd), Some(d)) => cd * std::f64::consts::PI * d * d / 4.0,
            _ => 0.0,
        }
    }

    /// Validation; `field` is the path of this entry.
    pub fn validate(&self, field: &str, c: &mut Checks) {
        match (self.cd_s_m2, self.cd, self.diameter_m) {
            (Some(s), None, None) => c.in_range(&format!("{field}.cd_s_m2"), s, 1e-3, 1e5, "m^2"),
            (None, Some(cd), Some(d)) => {
                c.in_range(&format!("{field}.cd"), cd, 1e-3, 10.0, "dimensionless");
                c.in_range(&format!("{field}.diameter_m"), d, 1e-2, 300.0, "m");
            }
            _ => c.fail(
                field.to_string(),
                "expected either `cd_s_m2`, or both `cd` and `diameter_m`",
            ),
        }
        c.in_range(
            &format!("{field}.line_stretch_s"),
            self.line_stretch_s,
            0.0,
            600.0,
            "s",
        );
        c.in_range(
            &format!("{field}.inflation_time_s"),
            self.inflation_time_s,
            1e-3,
            600.0,
            "s",
        );
        c.in_range(
            &format!("{field}.inflation_exponent"),
            self.inflation_exponent,
            0.1,
            10.0,
            "dimensionless",
        );
        if let Some(r) = &self.reefing {
            c.in_range(
                &format!("{field}.reefing.cd_s_m2"),
                r.cd_s_m2,
                1e-3,
                1e5,
                "m^2",
            );
            c.in_range(
                &format!("{field}.reefing.disreef_after_s"),
                r.disreef_after_s,
                1e-3,
                3600.0,
                "s",
            );
            c.in_range(
                &format!("{field}.reefing.disreef_inflation_s"),
                r.disreef_inflation_s,
                1e-3,
                600.0,
                "s",
            );
        }
    }
}

/// Lumped thermal model of the heat shield and backshell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermalSpec {
    /// Sutton-Graves constant k, kg^0.5/m (q = k sqrt(rho/rn) V^3).
    #[serde(default = "default_sutton_graves")]
    pub sutton_graves_k: f64,
    /// Ratio of the mean heat-shield heat flux to the stagnation value.
    #[serde(default = "default_mean_ratio")]
    pub heat_shield_mean_to_stagnation: f64,
    /// Heat-shield surface node: area, m^2.
    #[serde(default = "default_hs_area")]
    pub heat_shield_area_m2: f64,
    /// Heat capacity of the heat-shield surface layer, J/K.
    #[serde(default = "default_hs_c")]
    pub heat_shield_surface_capacity_j_k: f64,
    /// Heat capacity of the bondline / structure node behind it, J/K.
    #[serde(default = "default_bond_c")]
    pub bondline_capacity_j_k: f64,
    /// Conductance through the ablator, surface to bondline, W/K.
    #[serde(default = "default_g")]
    pub ablator_conductance_w_k: f64,
    /// Surface emissivity of the heat shield.
    #[serde(default = "default_eps")]
    pub heat_shield_emissivity: f64,
    /// Ratio of backshell heat flux to the stagnation value.
    #[serde(default = "default_bs_ratio")]
    pub backshell_to_stagnation: f64,
    /// Backshell area, m^2.
    #[serde(default = "default_bs_area")]
    pub backshell_area_m2: f64,
    /// Backshell heat capacity, J/K.
    #[serde(default = "default_bs_c")]
    pub backshell_capacity_j_k: f64,
    /// Backshell emissivity.
    #[serde(default = "default_eps_bs")]
    pub backshell_emissivity: f64,
    /// Initial temperature of every node, K.
    #[serde(default = "default_t0")]
    pub initial_temperature_k: f64,
}

fn default_sutton_graves() -> f64 {
    crate::heating::SUTTON_GRAVES_EARTH_K
}
fn default_mean_ratio() -> f64 {
    0.6
}
fn default_hs_area() -> f64 {
    0.62
}
fn default_hs_c() -> f64 {
    6_000.0
}
fn default_bond_c() -> f64 {
    12_000.0
}
fn default_g() -> f64 {
    3.0
}
fn default_eps() -> f64 {
    0.85
}
fn default_bs_ratio() -> f64 {
    0.03
}
fn default_bs_area() -> f64 {
    1.2
}
fn default_bs_c() -> f64 {
    20_000.0
}
fn default_eps_bs() -> f64 {
    0.8
}
fn default_t0() -> f64 {
    293.0
}

impl Default for ThermalSpec {
    fn default() -> Self {
        Self {
            sutton_graves_k: default_sutton_graves(),
            heat_shield_mean_to_stagnation: default_mean_ratio(),
            heat_shield_area_m2: default_hs_area(),
            heat_shield_surface_capacity_j_k: default_hs_c(),
            bondline_capacity_j_k: default_bond_c(),
            ablator_conductance_w_k: default_g(),
            heat_shield_emissivity: default_eps(),
            backshell_to_stagnation: default_bs_ratio(),
            backshell_area_m2: default_bs_area(),
            backshell_capacity_j_k: default_bs_c(),
            backshell_emissivity: default_eps_bs(),
            initial_temperature_k: default_t0(),
        }
    }
}

impl VehicleSpec {
    /// Parses and validates a vehicle file.
    pub fn from_toml(src: &Source<'_>) -> Result<Self, ConfigError> {
        let v: VehicleSpec = src.parse()?;
        let mut c = Checks::default();
        v.validate(&mut c);
        c.finish(src)?;
        Ok(v)
    }

    /// Checks every physical constraint, recording failures by field path.
    pub fn validate(&self, c: &mut Checks) {
        c.in_range("mass.dry_mass_kg", self.mass.dry_mass_kg, 1e-3, 1e6, "kg");
        let i = self.mass.inertia_kg_m2;
        let sym = (0..3)
            .all(|a| (0..3).all(|b| (i[a][b] - i[b][a]).abs() <= 1e-9 * i[a][a].abs().max(1.0)));
        let diag_ok = (0..3).all(|k| i[k][k].is_finite() && i[k][k] > 0.0);
        c.require(
            sym && diag_ok,
            "mass.inertia_kg_m2",
            "expected a symmetric 3x3 inertia tensor with positive diagonal (kg m^2)",
        );
        if diag_ok {
            let tri = i[0][0] + i[1][1] >= i[2][2]
                && i[1][1] + i[2][2] >= i[0][0]
                && i[0][0] + i[2][2] >= i[1][1];
            c.require(
                tri,
                "mass.inertia_kg_m2",
                "principal moments violate the triangle inequality (not a physical body)",
            );
        }
        c.all_in_range("mass.cg_m", &self.mass.cg_m, -100.0, 100.0, "m");
        c.in_range(
            "geometry.reference_diameter_m",
            self.geometry.reference_diameter_m,
            1e-3,
            100.0,
            "m",
        );
        c.in_range(
            "geometry.nose_radius_m",
            self.geometry.nose_radius_m,
            1e-3,
            100.0,
            "m",
        );
        match &self.aero {
            AeroSpec::Table(t) => t.validate("aero", c),
            AeroSpec::Simple { cd, lift_to_drag } => {
                c.positive("aero.cd", *cd, "dimensionless");
                c.in_range(
                    "aero.lift_to_drag",
                    *lift_to_drag,
                    0.0,
                    2.0,
                    "dimensionless",
                );
            }
        }
        for (k, t) in self.tanks.iter().enumerate() {
            c.in_range(
                &format!("tanks[{k}].propellant_kg"),
                t.propellant_kg,
                0.0,
                1e6,
                "kg",
            );
        }
        for (k, t) in self.thrusters.iter().enumerate() {
            let f = format!("thrusters[{k}]");
            c.require(
                self.tanks.iter().any(|x| x.name == t.tank),
                format!("{f}.tank"),
                format!(
                    "no tank named `{}` (tanks: {})",
                    t.tank,
                    self.tanks
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            c.in_range(&format!("{f}.thrust_n"), t.thrust_n, 1e-6, 1e7, "N");
            c.in_range(&format!("{f}.isp_s"), t.isp_s, 1.0, 1e4, "s");
            c.all_in_range(
                &format!("{f}.position_m"),
                &t.position_m,
                -100.0,
                100.0,
                "m",
            );
            let d = t.direction;
            let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
            c.require(
                n.is_finite() && n > 1e-9,
                format!("{f}.direction"),
                "expected a non-zero direction vector",
            );
        }
        for (k, p) in self.parachutes.iter().enumerate() {
            p.validate(&format!("parachutes[{k}]"), c);
            c.all_in_range(
                &format!("parachutes[{k}].attach_m"),
                &p.attach_m,
                -100.0,
                100.0,
                "m",
            );
        }
        let th = &self.thermal;
        c.in_range(
            "thermal.sutton_graves_k",
            th.sutton_graves_k,
            1e-6,
            1e-2,
            "kg^0.5/m",
        );
        c.in_range(
            "thermal.heat_shield_surface_capacity_j_k",
            th.heat_shield_surface_capacity_j_k,
            1e-3,
            1e9,
            "J/K",
        );
        c.in_range(
            "thermal.bondline_capacity_j_k",
            th.bondline_capacity_j_k,
            1e-3,
            1e9,
            "J/K",
        );
        c.in_range(
            "thermal.backshell_capacity_j_k",
            th.backshell_capacity_j_k,
            1e-3,
            1e9,
            "J/K",
        );
        c.in_range(
            "thermal.heat_shield_mean_to_stagnation",
            th.heat_shield_mean_to_stagnation,
            0.0,
            10.0,
            "dimensionless",
        );
        c.in_range(
            "thermal.heat_shield_area_m2",
            th.heat_shield_area_m2,
            1e-4,
            1e4,
            "m^2",
        );
        c.in_range(
            "thermal.ablator_conductance_w_k",
            th.ablator_conductance_w_k,
            0.0,
            1e6,
            "W/K",
        );
        c.in_range(
            "thermal.backshell_area_m2",
            th.backshell_area_m2,
            0.0,
            1e4,
            "m^2",
        );
        c.in_range(
            "thermal.backshell_to_stagnation",
            th.backshell_to_stagnation,
            0.0,
            10.0,
            "dimensionless",
        );
        c.in_range(
            "thermal.heat_shield_emissivity",
            th.heat_shield_emissivity,
            0.0,
            1.0,
            "dimensionless",
        );
        c.in_range(
            "thermal.backshell_emissivity",
            th.backshell_emissivity,
            0.0,
            1.0,
            "dimensionless",
        );
        c.in_range(
            "thermal.initial_temperature_k",
            th.initial_temperature_k,
            1.0,
            3000.0,
            "K",
        );
        self.sensors.validate("sensors", c);
    }

    /// Reference area, m^2.
    pub fn reference_area_m2(&self) -> f64 {
        match &self.aero {
            AeroSpec::Table(t) => t.reference_area_m2.unwrap_or_else(|| self.disc_area()),
            AeroSpec::Simple { .. } => self.disc_area(),
        }
    }

    /// Reference length, m.
    pub fn reference_length_m(&self) -> f64 {
        match &self.aero {
            AeroSpec::Table(t) => t
                .reference_length_m
                .unwrap_or(self.geometry.reference_diameter_m),
            AeroSpec::Simple { .. } => self.geometry.reference_diameter_m,
        }
    }

    fn disc_area(&self) -> f64 {
        let d = self.geometry.reference_diameter_m;
        std::f64::consts::PI * d * d / 4.0
    }

    /// Total propellant, kg.
    pub fn propellant_kg(&self) -> f64 {
        self.tanks.iter().map(|t| t.propellant_kg).sum()
    }

    /// Trim table (table aero only).
    pub fn trim(&self) -> Option<Vec<TrimPoint>> {
        match &self.aero {
            AeroSpec::Table(t) => Some(trim_table(t, self.mass.cg_m, self.reference_length_m())),
            AeroSpec::Simple { .. } => None,
        }
    }

    /// A minimal vehicle from the simple-case parameters: a sphere-cone-like point mass
    /// with constant Cd and L/D (isotropic inertia so 6-DOF runs are well posed).
    pub fn simple(
        mass_kg: f64,
        diameter_m: f64,
        cd: f64,
        nose_radius_m: f64,
        lift_to_drag: f64,
    ) -> Self {
        let r = diameter_m / 2.0;
        let inertia = 0.4 * mass_kg * r * r;
        VehicleSpec {
            vehicle: VehicleId {
                name: "simple".into(),
                source: "check-case parameters".into(),
            },
            mass: MassSpec {
                dry_mass_kg: mass_kg,
                cg_m: [0.0; 3],
                inertia_kg_m2: [
                    [inertia, 0.0, 0.0],
                    [0.0, inertia, 0.0],
                    [0.0, 0.0, inertia],
                ],
            },
            geometry: GeometrySpec {
                reference_diameter_m: diameter_m,
                nose_radius_m,
            },
            aero: AeroSpec::Simple { cd, lift_to_drag },
            tanks: vec![],
            thrusters: vec![],
            parachutes: vec![],
            thermal: ThermalSpec::default(),
            sensors: SensorSuiteSpec::default(),
        }
    }
}
