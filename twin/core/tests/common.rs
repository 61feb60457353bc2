//! Helpers shared by the verification tests.
#![allow(dead_code)]

use twin_core::atmosphere::Atmosphere;
use twin_core::gravity::GravityModel;
use twin_core::planet::{Planet, PlanetShape, WGS84_MU_M3_S2};
use twin_core::twin::{Dof, ModelOptions};

/// A non-rotating sphere of radius 6371 km.
pub fn sphere() -> Planet {
    Planet {
        shape: PlanetShape::Spherical,
        equatorial_radius_m: 6_371_000.0,
        flattening: 0.0,
        mu_m3_s2: WGS84_MU_M3_S2,
        j2: twin_core::planet::EGM96_J2,
        rotation_rate_rad_s: 0.0,
    }
}

/// Options with the given pieces.
pub fn options(
    planet: Planet,
    gravity: GravityModel,
    atmosphere: Atmosphere,
    dof: Dof,
    rate_hz: f64,
) -> ModelOptions {
    ModelOptions {
        planet,
        gravity,
        atmosphere,
        wind: Default::default(),
        dof,
        rate_hz,
    }
}

/// Relative difference.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}
