//! Gravity models.

use crate::planet::{Planet, PlanetShape};
use glam::DVec3;
use serde::{Deserialize, Serialize};

/// Gravity model option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GravityModel {
    /// No gravity.
    None,
    /// Point mass mu/r^2.
    InverseSquare,
    /// Point mass plus the J2 zonal term.
    #[default]
    J2,
}

impl GravityModel {
    /// Gravitational acceleration in eci, m/s^2, at eci position `r`.
    ///
    /// J2 term: Vallado, "Fundamentals of Astrodynamics and Applications", 4th ed.,
    /// eq. 8-30 (zonal, so eci and ecef give the same result).
    /// For the flat planet, gravity points along -z with magnitude mu/(R+h)^2.
    pub fn accel_eci(&self, planet: &Planet, r: DVec3) -> DVec3 {
        match (self, planet.shape) {
            (GravityModel::None, _) => DVec3::ZERO,
            (_, PlanetShape::Flat) => {
                let rr = planet.equatorial_radius_m + r.z;
                DVec3::new(0.0, 0.0, -planet.mu_m3_s2 / (rr * rr))
            }
            (GravityModel::InverseSquare, _) => {
                let r2 = r.length_squared();
                -planet.mu_m3_s2 / (r2 * r2.sqrt()) * r
            }
            (GravityModel::J2, _) => {
                // One division and one square root (this runs four times per step).
                let inv_r2 = 1.0 / r.length_squared();
                let mu_r3 = planet.mu_m3_s2 * inv_r2 * inv_r2.sqrt();
                let re = planet.equatorial_radius_m;
                let k = 1.5 * planet.j2 * re * re * inv_r2;
                let z2 = r.z * r.z * inv_r2;
                DVec3::new(
                    -mu_r3 * r.x * (1.0 - k * (5.0 * z2 - 1.0)),
                    -mu_r3 * r.y * (1.0 - k * (5.0 * z2 - 1.0)),
                    -mu_r3 * r.z * (1.0 - k * (5.0 * z2 - 3.0)),
                )
            }
        }
    }
}
