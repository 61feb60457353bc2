//! Initial states: entry-interface conditions and circular orbits.

use crate::aero::trim_at;
use crate::planet::{Geodetic, Planet, PlanetShape};
use crate::twin::BodyState;
use crate::vehicle::{AeroSpec, VehicleSpec};
use glam::{DMat3, DQuat, DVec3};

/// Entry-interface state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntryState {
    /// Altitude, m.
    pub altitude_m: f64,
    /// Speed, m/s.
    pub speed_m_s: f64,
    /// Flight-path angle, rad (negative = descending).
    pub flight_path_angle_rad: f64,
    /// Heading, rad from north towards east.
    pub heading_rad: f64,
    /// Latitude, rad.
    pub latitude_rad: f64,
    /// Longitude, rad.
    pub longitude_rad: f64,
    /// Speed and angles are relative to the (rotating) atmosphere rather than inertial.
    pub relative_to_atmosphere: bool,
    /// Bank angle for the initial attitude (6-DOF), rad.
    pub bank_rad: f64,
}

impl EntryState {
    /// Position and velocity in eci at t = 0 (eci = ecef at t = 0), and an attitude
    /// trimmed at the entry Mach number with the lift vector at `bank_rad`.
    pub fn to_body_state(&self, planet: &Planet, vehicle: &VehicleSpec) -> BodyState {
        let g = Geodetic {
            latitude_rad: self.latitude_rad,
            longitude_rad: self.longitude_rad,
            altitude_m: self.altitude_m,
        };
        let r = planet.ecef_from_geodetic(g);
        let ecef_from_ned = planet.ecef_from_ned(&g);
        let (sg, cg) = self.flight_path_angle_rad.sin_cos();
        let (sh, ch) = self.heading_rad.sin_cos();
        let v_ned = DVec3::new(cg * ch, cg * sh, -sg) * self.speed_m_s;
        let v_rel = ecef_from_ned * v_ned;
        let v = if self.relative_to_atmosphere && planet.shape != PlanetShape::Flat {
            v_rel + planet.omega_eci().cross(r)
        } else {
            v_rel
        };
        let v_air = if self.relative_to_atmosphere {
            v_rel
        } else {
            v - planet.omega_eci().cross(r)
        };
        let up = if planet.shape == PlanetShape::Flat {
            DVec3::Z
        } else {
            r.normalize()
        };
        let q = trimmed_attitude(vehicle, v_air, up, self.bank_rad, v_air.length() / 300.0);
        BodyState {
            position_eci_m: r,
            velocity_eci_m_s: v,
            eci_from_body: q,
            rate_body_rad_s: DVec3::ZERO,
        }
    }
}

/// Attitude (eci_from_body) that flies at the trim angle of attack with its lift
/// vector rotated by `bank_rad` about the air-relative velocity from "up".
pub fn trimmed_attitude(
    vehicle: &VehicleSpec,
    v_air_eci: DVec3,
    up_eci: DVec3,
    bank_rad: f64,
    mach: f64,
) -> DQuat {
    let v_hat = v_air_eci.normalize_or(DVec3::X);
    let l0 = (up_eci - v_hat * up_eci.dot(v_hat)).normalize_or(v_hat.any_orthonormal_vector());
    let right = v_hat.cross(l0);
    let (sb, cb) = bank_rad.sin_cos();
    let lift_eci = l0 * cb + right * sb;
    let alpha = match (&vehicle.aero, vehicle.trim()) {
        (AeroSpec::Table(_), Some(t)) => trim_at(&t, mach).alpha_rad,
        _ => 0.0,
    };
    // In the body frame, at trim the air velocity is (cos a, 0, sin a) and the lift
    // (perpendicular to it, from F = -CA x - CN z) points along (-sin a, 0, cos a).
    let (sa, ca) = alpha.sin_cos();
    let u_b = DVec3::new(ca, 0.0, sa);
    let l_b = DVec3::new(-sa, 0.0, ca);
    let body = DMat3::from_cols(u_b, l_b, u_b.cross(l_b));
    let eci = DMat3::from_cols(v_hat, lift_eci, v_hat.cross(lift_eci));
    DQuat::from_mat3(&(eci * body.transpose())).normalize()
}

/// A circular orbit of the given altitude (above the equatorial radius), inclination,
/// right ascension of the ascending node and argument of latitude; attitude with the
/// body +x axis along the velocity.
pub fn circular_orbit(
    planet: &Planet,
    altitude_m: f64,
    inclination_rad: f64,
    raan_rad: f64,
    arg_latitude_rad: f64,
) -> BodyState {
    let a = planet.equatorial_radius_m + altitude_m;
    let v = (planet.mu_m3_s2 / a).sqrt();
    let (su, cu) = arg_latitude_rad.sin_cos();
    let (si, ci) = inclination_rad.sin_cos();
    let (so, co) = raan_rad.sin_cos();
    let p_hat = DVec3::new(co, so, 0.0);
    let q_hat = DVec3::new(-so * ci, co * ci, si);
    let r = (p_hat * cu + q_hat * su) * a;
    let vv = (-p_hat * su + q_hat * cu) * v;
    let x = vv.normalize();
    let z = -r.normalize();
    let y = z.cross(x);
    let q = DQuat::from_mat3(&DMat3::from_cols(x, y, z)).normalize();
    BodyState {
        position_eci_m: r,
        velocity_eci_m_s: vv,
        eci_from_body: q,
        rate_body_rad_s: DVec3::ZERO,
    }
}
