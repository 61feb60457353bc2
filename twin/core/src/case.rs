//! Check cases: one entry run from a TOML description, producing the figures that
//! verification compares with references (see `fixtures/cases/README.md` for the
//! format).
//!
//! The case runner is a tiny controller around the twin: it holds the bank angle
//! (3-DOF / constant-L/D aero) and fires parachutes on simple triggers. It does no I/O;
//! the `twin-case` binary reads the files.

use crate::atmosphere::{Atmosphere, WindPoint, WindProfile};
use crate::config::{Checks, ConfigError, Source};
use crate::gravity::GravityModel;
use crate::initial::EntryState;
use crate::planet::{
    EGM96_J2, G0_M_S2, Planet, PlanetShape, WGS84_A_M, WGS84_F, WGS84_MU_M3_S2, WGS84_OMEGA_RAD_S,
};
use crate::twin::{Dof, ModelOptions, Twin, TwinError};
use crate::vehicle::{ParachuteSpec, VehicleSpec};
use serde::{Deserialize, Serialize};

/// A check case file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// Identification.
    #[serde(default)]
    pub case: CaseId,
    /// Model options.
    #[serde(default)]
    pub models: ModelsSpec,
    /// Vehicle: a file or simple parameters.
    pub vehicle: CaseVehicle,
    /// Entry state.
    pub entry: EntrySpec,
    /// Parachutes and their triggers.
    #[serde(default)]
    pub parachutes: Vec<CaseParachute>,
    /// Run control.
    #[serde(default)]
    pub run: RunSpec,
}

/// Case name and description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CaseId {
    /// Short name.
    #[serde(default)]
    pub name: String,
    /// What the case checks.
    #[serde(default)]
    pub description: String,
}

/// `planet` option.
pub use crate::planet::PlanetShape as PlanetOption;

/// `atmosphere` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AtmosphereOption {
    /// US Standard Atmosphere 1976.
    #[default]
    Us76,
    /// Exponential (`rho0_kg_m3`, `scale_height_m`).
    Exponential,
    /// No atmosphere.
    None,
}

/// The `[models]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSpec {
    /// `flat`, `spherical` or `wgs84`.
    #[serde(default)]
    pub planet: PlanetShape,
    /// Equatorial (or sphere) radius override, m.
    #[serde(default)]
    pub radius_m: Option<f64>,
    /// Gravitational parameter override, m^3/s^2.
    #[serde(default)]
    pub mu_m3_s2: Option<f64>,
    /// J2 override.
    #[serde(default)]
    pub j2: Option<f64>,
    /// `none`, `inverse_square` or `j2`.
    #[serde(default)]
    pub gravity: GravityModel,
    /// Planet rotation on or off.
    #[serde(default = "yes")]
    pub earth_rotation: bool,
    /// `us76`, `exponential` or `none`.
    #[serde(default)]
    pub atmosphere: AtmosphereOption,
    /// Exponential atmosphere: density at h = 0, kg/m^3.
    #[serde(default)]
    pub rho0_kg_m3: Option<f64>,
    /// Exponential atmosphere: scale height, m.
    #[serde(default)]
    pub scale_height_m: Option<f64>,
    /// Exponential atmosphere: temperature for the speed of sound, K.
    #[serde(default)]
    pub temperature_k: Option<f64>,
    /// Density multiplier.
    #[serde(default = "one")]
    pub density_scale: f64,
    /// Layered wind profile.
    #[serde(default)]
    pub wind: Vec<WindPoint>,
    /// 3 or 6.
    #[serde(default = "six")]
    pub dof: u8,
    /// Integration rate, Hz.
    #[serde(default = "thousand")]
    pub rate_hz: f64,
}

fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn six() -> u8 {
    6
}
fn thousand() -> f64 {
    1000.0
}

impl Default for ModelsSpec {
    fn default() -> Self {
        Self {
            planet: PlanetShape::Wgs84,
            radius_m: None,
            mu_m3_s2: None,
            j2: None,
            gravity: GravityModel::J2,
            earth_rotation: true,
            atmosphere: AtmosphereOption::Us76,
            rho0_kg_m3: None,
            scale_height_m: None,
            temperature_k: None,
            density_scale: 1.0,
            wind: vec![],
            dof: 6,
            rate_hz: 1000.0,
        }
    }
}

impl ModelsSpec {
    /// Builds the model options.
    pub fn to_options(&self) -> ModelOptions {
        let spherical = self.planet != PlanetShape::Wgs84;
        let planet = Planet {
            shape: self.planet,
            equatorial_radius_m: self.radius_m.unwrap_or(if spherical {
                6_371_000.0
            } else {
                WGS84_A_M
            }),
            flattening: if spherical { 0.0 } else { WGS84_F },
            mu_m3_s2: self.mu_m3_s2.unwrap_or(WGS84_MU_M3_S2),
            j2: self.j2.unwrap_or(EGM96_J2),
            rotation_rate_rad_s: if self.earth_rotation && self.planet != PlanetShape::Flat {
                WGS84_OMEGA_RAD_S
            } else {
                0.0
            },
        };
        let atmosphere = match self.atmosphere {
            AtmosphereOption::Us76 => Atmosphere::Us76,
            AtmosphereOption::None => Atmosphere::None,
            AtmosphereOption::Exponential => Atmosphere::Exponential {
                rho0_kg_m3: self.rho0_kg_m3.unwrap_or(1.225),
                scale_height_m: self.scale_height_m.unwrap_or(7_200.0),
                temperature_k: self.temperature_k.unwrap_or(288.15),
            },
        };
        ModelOptions {
            planet,
            gravity: self.gravity,
            atmosphere,
            wind: WindProfile::new(self.wind.clone()),
            dof: if self.dof == 3 { Dof::Three } else { Dof::Six },
            rate_hz: self.rate_hz,
        }
    }

    fn validate(&self, c: &mut Checks) {
        c.require(
            self.dof == 3 || self.dof == 6,
            "models.dof",
            format!("expected 3 or 6, found {}", self.dof),
        );
        c.in_range("models.rate_hz", self.rate_hz, 1.0, 100_000.0, "Hz");
        if let Some(r) = self.radius_m {
            // A planet of this project's kind: Earth-sized within two orders of magnitude.
            c.in_range("models.radius_m", r, 1e5, 1e8, "m");
        }
        if let Some(m) = self.mu_m3_s2 {
            c.in_range("models.mu_m3_s2", m, 1e10, 1e16, "m^3/s^2");
        }
        if let Some(r) = self.rho0_kg_m3 {
            c.in_range("models.rho0_kg_m3", r, 1e-6, 100.0, "kg/m^3");
        }
        if let Some(h) = self.scale_height_m {
            c.in_range("models.scale_height_m", h, 100.0, 1e5, "m");
        }
        if let Some(t) = self.temperature_k {
            c.in_range("models.temperature_k", t, 1.0, 3000.0, "K");
        }
        c.in_range(
            "models.density_scale",
            self.density_scale,
            0.0,
            10.0,
            "dimensionless",
        );
        for (k, w) in self.wind.iter().enumerate() {
            c.in_range(
                &format!("models.wind[{k}].altitude_m"),
                w.altitude_m,
                -1_000.0,
                1e6,
                "m",
            );
            c.in_range(
                &format!("models.wind[{k}].north_m_s"),
                w.north_m_s,
                -200.0,
                200.0,
                "m/s",
            );
            c.in_range(
                &format!("models.wind[{k}].east_m_s"),
                w.east_m_s,
                -200.0,
                200.0,
                "m/s",
            );
        }
        let exp_only = self.rho0_kg_m3.is_some() || self.scale_height_m.is_some();
        c.require(
            !exp_only || self.atmosphere == AtmosphereOption::Exponential,
            "models.atmosphere",
            "`rho0_kg_m3` / `scale_height_m` are given, so expected `atmosphere = \"exponential\"`",
        );
    }
}

/// The `[vehicle]` table: a file, or simple parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CaseVehicle {
    /// Vehicle file, relative to the case file.
    #[serde(default)]
    pub file: Option<String>,
    /// Simple vehicle: mass, kg.
    #[serde(default)]
    pub mass_kg: Option<f64>,
    /// Simple vehicle: diameter, m (or give `reference_area_m2`).
    #[serde(default)]
    pub diameter_m: Option<f64>,
    /// Simple vehicle: reference area, m^2.
    #[serde(default)]
    pub reference_area_m2: Option<f64>,
    /// Simple vehicle: drag coefficient.
    #[serde(default)]
    pub cd: Option<f64>,
    /// Simple vehicle: nose radius for heating, m.
    #[serde(default)]
    pub nose_radius_m: Option<f64>,
    /// Simple vehicle: lift-to-drag ratio.
    #[serde(default)]
    pub lift_to_drag: Option<f64>,
    /// Bank angle held throughout (3-DOF / constant L/D) or initial bank (6-DOF), deg.
    #[serde(default)]
    pub bank_deg: f64,
}

/// The `[entry]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntrySpec {
    /// Altitude, m.
    pub altitude_m: f64,
    /// Speed, m/s.
    pub speed_m_s: f64,
    /// Flight-path angle, deg (negative = descending).
    pub flight_path_angle_deg: f64,
    /// Heading, deg from north towards east.
    #[serde(default)]
    pub heading_deg: f64,
    /// Latitude, deg.
    #[serde(default)]
    pub latitude_deg: f64,
    /// Longitude, deg.
    #[serde(default)]
    pub longitude_deg: f64,
    /// `atmosphere` (default) or `inertial`.
    #[serde(default)]
    pub relative_to: RelativeTo,
}

impl EntrySpec {
    /// The entry state, with the initial attitude's bank angle.
    pub fn to_state(&self, bank_deg: f64) -> EntryState {
        EntryState {
            altitude_m: self.altitude_m,
            speed_m_s: self.speed_m_s,
            flight_path_angle_rad: self.flight_path_angle_deg.to_radians(),
            heading_rad: self.heading_deg.to_radians(),
            latitude_rad: self.latitude_deg.to_radians(),
            longitude_rad: self.longitude_deg.to_radians(),
            relative_to_atmosphere: self.relative_to == RelativeTo::Atmosphere,
            bank_rad: bank_deg.to_radians(),
        }
    }

    /// Validation; `f` is the table's field path.
    pub fn validate(&self, f: &str, c: &mut Checks) {
        c.in_range(
            &format!("{f}.altitude_m"),
            self.altitude_m,
            0.0,
            2_000_000.0,
            "m",
        );
        c.in_range(
            &format!("{f}.speed_m_s"),
            self.speed_m_s,
            1e-3,
            20_000.0,
            "m/s",
        );
        c.in_range(
            &format!("{f}.flight_path_angle_deg"),
            self.flight_path_angle_deg,
            -90.0,
            90.0,
            "deg",
        );
        c.in_range(
            &format!("{f}.latitude_deg"),
            self.latitude_deg,
            -90.0,
            90.0,
            "deg",
        );
        c.in_range(
            &format!("{f}.longitude_deg"),
            self.longitude_deg,
            -360.0,
            360.0,
            "deg",
        );
        c.in_range(
            &format!("{f}.heading_deg"),
            self.heading_deg,
            -360.0,
            360.0,
            "deg",
        );
    }
}

/// Reference of the entry speed and angles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RelativeTo {
    /// The rotating atmosphere.
    #[default]
    Atmosphere,
    /// Inertial space.
    Inertial,
}

/// A parachute entry in a case: a trigger for a vehicle-file parachute of that name,
/// or a full definition (simple vehicles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseParachute {
    /// Name.
    pub name: String,
    /// Drag area, m^2 (definition).
    #[serde(default)]
    pub cd_s_m2: Option<f64>,
    /// Drag coefficient (definition, with `diameter_m`).
    #[serde(default)]
    pub cd: Option<f64>,
    /// Nominal diameter, m (definition).
    #[serde(default)]
    pub diameter_m: Option<f64>,
    /// Line stretch delay, s (definition).
    #[serde(default)]
    pub line_stretch_s: Option<f64>,
    /// Inflation time, s (definition).
    #[serde(default)]
    pub inflation_time_s: Option<f64>,
    /// Trigger: Mach number falls below this.
    #[serde(default)]
    pub mach_below: Option<f64>,
    /// Trigger: altitude falls below this, m.
    #[serde(default)]
    pub altitude_below_m: Option<f64>,
    /// Parachutes released when this one is fired.
    #[serde(default)]
    pub release: Vec<String>,
}

/// The `[run]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Stop after this much simulated time even without landing, s.
    #[serde(default = "default_max_time")]
    pub max_time_s: f64,
    /// Keep running this long after surface contact (floating), s.
    #[serde(default)]
    pub after_landing_s: f64,
}

fn default_max_time() -> f64 {
    4_000.0
}

impl Default for RunSpec {
    fn default() -> Self {
        Self {
            max_time_s: default_max_time(),
            after_landing_s: 0.0,
        }
    }
}

/// Results printed by `twin-case` (JSON). Times in s from entry, altitudes in m.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    /// Case name.
    pub case: String,
    /// Peak non-gravitational acceleration (aero + parachutes) / g0.
    pub peak_g: f64,
    /// Time of peak g.
    pub t_peak_g_s: f64,
    /// Altitude at peak g.
    pub alt_peak_g_m: f64,
    /// Speed (air-relative) at peak g.
    pub speed_peak_g_m_s: f64,
    /// Peak stagnation-point heat flux (Sutton-Graves), W/m^2.
    pub peak_heat_flux_w_m2: f64,
    /// Time of peak heat flux.
    pub t_peak_heat_flux_s: f64,
    /// Integrated stagnation heat load, J/m^2.
    pub heat_load_j_m2: f64,
    /// Peak dynamic pressure, Pa.
    pub peak_dynamic_pressure_pa: f64,
    /// First time Mach falls below 1.5.
    pub t_mach_1_5_s: Option<f64>,
    /// First time the altitude falls below 10 km.
    pub t_alt_10km_s: Option<f64>,
    /// Speed relative to the surface at altitude 0.
    pub landing_speed_m_s: Option<f64>,
    /// Time of landing.
    pub t_landing_s: Option<f64>,
    /// Landing latitude, deg.
    pub landing_latitude_deg: Option<f64>,
    /// Landing longitude, deg.
    pub landing_longitude_deg: Option<f64>,
    /// First time the altitude falls below each level.
    pub t_alt_100km_s: Option<f64>,
    /// See `t_alt_100km_s`.
    pub t_alt_80km_s: Option<f64>,
    /// See `t_alt_100km_s`.
    pub t_alt_60km_s: Option<f64>,
    /// See `t_alt_100km_s`.
    pub t_alt_40km_s: Option<f64>,
    /// See `t_alt_100km_s`.
    pub t_alt_20km_s: Option<f64>,
    /// See `t_alt_100km_s`.
    pub t_alt_5km_s: Option<f64>,
    /// Parachute events.
    pub parachutes: Vec<ChuteEvent>,
    /// Peak heat-shield surface temperature, K.
    pub peak_heat_shield_k: f64,
    /// Peak bondline temperature, K.
    pub peak_bondline_k: f64,
    /// Simulated time at the end, s.
    pub t_end_s: f64,
    /// Steps integrated.
    pub steps: u64,
    /// Why the run stopped: `landed` or `max_time`.
    pub stop_reason: String,
}

/// Parachute deployment record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChuteEvent {
    /// Name.
    pub name: String,
    /// Deploy command time, s.
    pub t_deploy_s: f64,
    /// Altitude at the command, m.
    pub alt_deploy_m: f64,
    /// Mach at the command.
    pub mach_deploy: f64,
    /// Peak riser load, N.
    pub peak_load_n: f64,
}

/// Errors running a case.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CaseError {
    /// The case or vehicle file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The twin could not be built.
    #[error(transparent)]
    Twin(#[from] TwinError),
}

impl CaseSpec {
    /// Parses and validates a case file. `vehicle_file` says whether the caller will
    /// supply a vehicle from `vehicle.file`.
    pub fn from_toml(src: &Source<'_>) -> Result<Self, ConfigError> {
        let c: CaseSpec = src.parse()?;
        let mut ch = Checks::default();
        c.validate(&mut ch);
        ch.finish(src)?;
        Ok(c)
    }

    fn validate(&self, c: &mut Checks) {
        self.models.validate(c);
        let v = &self.vehicle;
        if v.file.is_none() {
            match v.mass_kg {
                Some(m) => c.in_range("vehicle.mass_kg", m, 1e-3, 1e6, "kg"),
                None => c.fail("vehicle", "expected either `file` or `mass_kg` (with `cd` and `diameter_m` or `reference_area_m2`)"),
            }
            match v.cd {
                Some(cd) => c.in_range("vehicle.cd", cd, 1e-3, 10.0, "dimensionless"),
                None => c.fail(
                    "vehicle",
                    "missing field `cd` (drag coefficient) for a simple vehicle",
                ),
            }
            match (v.diameter_m, v.reference_area_m2) {
                (Some(d), None) => c.in_range("vehicle.diameter_m", d, 1e-3, 100.0, "m"),
                (None, Some(a)) => c.in_range("vehicle.reference_area_m2", a, 1e-6, 1e4, "m^2"),
                _ => c.fail(
                    "vehicle",
                    "expected exactly one of `diameter_m` or `reference_area_m2`",
                ),
            }
            if let Some(r) = v.nose_radius_m {
                c.in_range("vehicle.nose_radius_m", r, 1e-3, 100.0, "m");
            }
            if let Some(ld) = v.lift_to_drag {
                c.in_range("vehicle.lift_to_drag", ld, 0.0, 2.0, "dimensionless");
            }
        } else {
            for k in [
                "mass_kg",
                "diameter_m",
                "reference_area_m2",
                "cd",
                "nose_radius_m",
                "lift_to_drag",
            ] {
                let given = match k {
                    "mass_kg" => v.mass_kg.is_some(),
                    "diameter_m" => v.diameter_m.is_some(),
                    "reference_area_m2" => v.reference_area_m2.is_some(),
                    "cd" => v.cd.is_some(),
                    "nose_radius_m" => v.nose_radius_m.is_some(),
                    _ => v.lift_to_drag.is_some(),
                };
                c.require(
                    !given,
                    format!("vehicle.{k}"),
                    "not allowed together with `file` (the vehicle file defines it)",
                );
            }
        }
        c.in_range("vehicle.bank_deg", v.bank_deg, -180.0, 180.0, "deg");
        self.entry.validate("entry", c);
        for (k, p) in self.parachutes.iter().enumerate() {
            let f = format!("parachutes[{k}]");
            c.require(
                p.mach_below.is_some() || p.altitude_below_m.is_some(),
                f.clone(),
                "expected a trigger: `mach_below` and/or `altitude_below_m`",
            );
            if let Some(m) = p.mach_below {
                c.in_range(&format!("{f}.mach_below"), m, 1e-3, 100.0, "Mach");
            }
            if let Some(h) = p.altitude_below_m {
                c.in_range(&format!("{f}.altitude_below_m"), h, 1e-3, 1e6, "m");
            }
            for r in &p.release {
                c.require(
                    self.parachutes.iter().any(|x| &x.name == r),
                    format!("{f}.release"),
                    format!("no parachute named `{r}` in this case"),
                );
            }
        }
        check_run_limits(c, self.run.max_time_s, self.run.after_landing_s);
    }

    /// The vehicle to fly: `file_vehicle` (already loaded from `vehicle.file`) or the
    /// simple one, with case-defined parachutes added. Errors point into `src`.
    pub fn vehicle(
        &self,
        src: &Source<'_>,
        file_vehicle: Option<VehicleSpec>,
    ) -> Result<VehicleSpec, ConfigError> {
        let v = &self.vehicle;
        let mut veh = match file_vehicle {
            Some(fv) => fv,
            None => {
                let d = match (v.diameter_m, v.reference_area_m2) {
                    (Some(d), _) => d,
                    (None, Some(a)) => (4.0 * a / std::f64::consts::PI).sqrt(),
                    _ => {
                        return Err(src.error_at_field(
                            "vehicle",
                            "expected `diameter_m` or `reference_area_m2`",
                        ));
                    }
                };
                VehicleSpec::simple(
                    v.mass_kg.unwrap_or(1.0),
                    d,
                    v.cd.unwrap_or(1.0),
                    v.nose_radius_m.unwrap_or(d / 2.0),
                    v.lift_to_drag.unwrap_or(0.0),
                )
            }
        };
        for (k, p) in self.parachutes.iter().enumerate() {
            let defined = p.cd_s_m2.is_some() || p.cd.is_some() || p.diameter_m.is_some();
            let exists = veh.parachutes.iter().any(|x| x.name == p.name);
            if !exists && !defined {
                return Err(src.error_at_field(
                    &format!("parachutes[{k}].name"),
                    format!(
                        "the vehicle has no parachute named `{}` (it has: {}); define it here with `cd_s_m2` or `cd` and `diameter_m`",
                        p.name,
                        veh.parachutes.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            if defined {
                let spec = ParachuteSpec {
                    name: p.name.clone(),
                    cd_s_m2: p.cd_s_m2,
                    cd: p.cd,
                    diameter_m: p.diameter_m,
                    attach_m: [0.0; 3],
                    line_stretch_s: p.line_stretch_s.unwrap_or(0.5),
                    inflation_time_s: p.inflation_time_s.unwrap_or(1.0),
                    inflation_exponent: 2.0,
                    reefing: None,
                };
                let mut c = Checks::default();
                spec.validate(&format!("parachutes[{k}]"), &mut c);
                c.finish(src)?;
                veh.parachutes.retain(|x| x.name != p.name);
                veh.parachutes.push(spec);
            }
        }
        Ok(veh)
    }
}

/// Running maximum with the time and altitude where it occurred.
#[derive(Debug, Clone, Copy)]
struct Peak {
    value: f64,
    t_s: f64,
    alt_m: f64,
    speed_m_s: f64,
}

/// The run limits every file format shares: `run.max_time_s` in (0, 1 day] and
/// `run.after_landing_s` in [0, 1 h].
pub fn check_run_limits(c: &mut Checks, max_time_s: f64, after_landing_s: f64) {
    c.in_range("run.max_time_s", max_time_s, 1e-3, 86_400.0, "s");
    c.in_range("run.after_landing_s", after_landing_s, 0.0, 3_600.0, "s");
}

/// Runs a case to landing (or `max_time_s`).
pub fn run_case(spec: &CaseSpec, vehicle: VehicleSpec) -> Result<CaseResult, CaseError> {
    let opts = spec.models.to_options();
    let entry = spec.entry.to_state(spec.vehicle.bank_deg);
    let initial = entry.to_body_state(&opts.planet, &vehicle);
    let mut twin = Twin::new(opts, vehicle, initial, 0.0)?;
    twin.set_bank_command(spec.vehicle.bank_deg.to_radians());
    if spec.models.density_scale != 1.0 {
        twin.set_density_scale(spec.models.density_scale);
    }
    Ok(fly(spec, twin))
}

fn fly(spec: &CaseSpec, mut twin: Twin) -> CaseResult {
    let chute_idx: Vec<Option<usize>> = spec
        .parachutes
        .iter()
        .map(|p| twin.parachute_index(&p.name))
        .collect();
    let mut fired = vec![false; spec.parachutes.len()];
    let mut events = Vec::new();
    let levels = [
        100_000.0, 80_000.0, 60_000.0, 40_000.0, 20_000.0, 10_000.0, 5_000.0,
    ];
    let mut crossings: [Option<f64>; 7] = [None; 7];
    let mut t_mach_15 = None;
    let mut peak_g = Peak {
        value: 0.0,
        t_s: 0.0,
        alt_m: 0.0,
        speed_m_s: 0.0,
    };
    let mut peak_q = Peak {
        value: 0.0,
        t_s: 0.0,
        alt_m: 0.0,
        speed_m_s: 0.0,
    };
    let mut peak_qdot = Peak {
        value: 0.0,
        t_s: 0.0,
        alt_m: 0.0,
        speed_m_s: 0.0,
    };
    let mut peak_hs: f64 = 0.0;
    let mut peak_bond: f64 = 0.0;
    let mut prev_alt = twin.environment().altitude_m;
    let mut prev_mach = twin.environment().mach;
    let mut prev_t = twin.time_s();
    let mut stop_reason = "max_time";
    let g0 = G0_M_S2;
    loop {
        // Triggers (evaluated on the current state, before the step).
        let (mach, q_pa, alt_m) = {
            let e = twin.environment();
            (e.mach, e.dynamic_pressure_pa, e.altitude_m)
        };
        for (k, p) in spec.parachutes.iter().enumerate() {
            if fired[k] || twin.contact().is_some() {
                continue;
            }
            let go = p.mach_below.is_some_and(|m| mach < m && q_pa > 1.0)
                || p.altitude_below_m.is_some_and(|h| alt_m < h);
            if go && let Some(i) = chute_idx[k] {
                fired[k] = true;
                for r in &p.release {
                    if let Some(j) = twin.parachute_index(r) {
                        twin.release_parachute(j);
                    }
                }
                twin.deploy_parachute(i);
                events.push((k, i, twin.time_s(), alt_m, mach));
            }
        }
        twin.step();
        let t = twin.time_s();
        let env = twin.environment();
        if twin.contact().is_none() {
            // Load factor from aero + parachutes only.
            let f = env.aero_force_body_n + env.chute_force_body_n;
            let g = f.length() / twin.mass_kg() / g0;
            if g > peak_g.value {
                peak_g = Peak {
                    value: g,
                    t_s: t,
                    alt_m: env.altitude_m,
                    speed_m_s: env.airspeed_m_s,
                };
            }
            if env.dynamic_pressure_pa > peak_q.value {
                peak_q = Peak {
                    value: env.dynamic_pressure_pa,
                    t_s: t,
                    alt_m: env.altitude_m,
                    speed_m_s: env.airspeed_m_s,
                };
            }
            if twin.heat_flux_w_m2() > peak_qdot.value {
                peak_qdot = Peak {
                    value: twin.heat_flux_w_m2(),
                    t_s: t,
                    alt_m: env.altitude_m,
                    speed_m_s: env.airspeed_m_s,
                };
            }
            for (k, lvl) in levels.iter().enumerate() {
                if crossings[k].is_none() && env.altitude_m < *lvl && prev_alt >= *lvl {
                    crossings[k] = Some(
                        prev_t + (t - prev_t) * (prev_alt - lvl) / (prev_alt - env.altitude_m),
                    );
                }
            }
            if t_mach_15.is_none()
                && env.mach < 1.5
                && prev_mach >= 1.5
                && env.dynamic_pressure_pa > 1.0
            {
                t_mach_15 =
                    Some(prev_t + (t - prev_t) * (prev_mach - 1.5) / (prev_mach - env.mach));
            }
            prev_alt = env.altitude_m;
            prev_mach = env.mach;
        }
        let th = twin.thermal();
        peak_hs = peak_hs.max(th.heat_shield_surface_k);
        peak_bond = peak_bond.max(th.bondline_k);
        prev_t = t;
        if let Some(c) = twin.contact()
            && t >= c.t_s + spec.run.after_landing_s
        {
            stop_reason = "landed";
            break;
        }
        if t >= spec.run.max_time_s {
            break;
        }
    }
    let contact = twin.contact().copied();
    CaseResult {
        case: spec.case.name.clone(),
        peak_g: peak_g.value,
        t_peak_g_s: peak_g.t_s,
        alt_peak_g_m: peak_g.alt_m,
        speed_peak_g_m_s: peak_g.speed_m_s,
        peak_heat_flux_w_m2: peak_qdot.value,
        t_peak_heat_flux_s: peak_qdot.t_s,
        heat_load_j_m2: twin.heat_load_j_m2(),
        peak_dynamic_pressure_pa: peak_q.value,
        t_mach_1_5_s: t_mach_15,
        t_alt_10km_s: crossings[5],
        landing_speed_m_s: contact.map(|c| c.speed_m_s),
        t_landing_s: contact.map(|c| c.t_s),
        landing_latitude_deg: contact.map(|c| c.geodetic.latitude_rad.to_degrees()),
        landing_longitude_deg: contact.map(|c| c.geodetic.longitude_rad.to_degrees()),
        t_alt_100km_s: crossings[0],
        t_alt_80km_s: crossings[1],
        t_alt_60km_s: crossings[2],
        t_alt_40km_s: crossings[3],
        t_alt_20km_s: crossings[4],
        t_alt_5km_s: crossings[6],
        parachutes: events
            .iter()
            .map(|&(k, i, t, h, m)| ChuteEvent {
                name: spec.parachutes[k].name.clone(),
                t_deploy_s: t,
                alt_deploy_m: h,
                mach_deploy: m,
                peak_load_n: twin.parachutes()[i].peak_load_n,
            })
            .collect(),
        peak_heat_shield_k: peak_hs,
        peak_bondline_k: peak_bond,
        t_end_s: twin.time_s(),
        steps: twin.step_count(),
        stop_reason: stop_reason.to_string(),
    }
}
