//! Verification of the physics core against analytic and published references.

mod common;

use common::{options, rel, sphere};
use twin_core::atmosphere::{Atmosphere, us76};
use twin_core::case::{CaseSpec, run_case};
use twin_core::config::Source;
use twin_core::glam::{DQuat, DVec3};
use twin_core::gravity::GravityModel;
use twin_core::heating::{SUTTON_GRAVES_EARTH_K, sutton_graves_w_m2};
use twin_core::initial::circular_orbit;
use twin_core::planet::G0_M_S2;
use twin_core::twin::{BodyState, Dof, Twin};
use twin_core::vehicle::{ParachuteSpec, VehicleSpec};

// ---------------------------------------------------------------------------------
// Allen-Eggers ballistic entry.
//
// Reference: Allen & Eggers, "A study of the motion and aerodynamic heating of
// ballistic missiles entering the Earth's atmosphere at high supersonic speeds",
// NACA Report 1381 (1958). With no gravity, a flat planet, rho = rho0 exp(-h/H) and
// constant Cd, the path is straight and V(h) = V_E exp(-C (e^{-h/H} - e^{-h_E/H})),
// C = rho0 H / (2 beta sin|gamma|). The deceleration rho V^2 / (2 beta) peaks at
// h* = H ln(rho0 H / (beta sin|gamma|)) with a_max = V_E'^2 sin|gamma| / (2 e H), where
// V_E' = V_E exp(C e^{-h_E/H}) corrects for the finite entry altitude h_E.
// ---------------------------------------------------------------------------------

fn allen_eggers_case(beta_kg_m2: f64, gamma_deg: f64) -> (f64, f64, f64, f64) {
    let (rho0, h_s, v_e, h_e) = (1.225, 7_200.0, 7_500.0, 120_000.0);
    let cd = 1.0;
    let diameter = 1.0;
    let area = std::f64::consts::PI * diameter * diameter / 4.0;
    let mass = beta_kg_m2 * cd * area;
    let text = format!(
        r#"
[models]
planet = "flat"
gravity = "none"
earth_rotation = false
atmosphere = "exponential"
rho0_kg_m3 = {rho0}
scale_height_m = {h_s}
dof = 3
rate_hz = 1000.0
[vehicle]
mass_kg = {mass}
diameter_m = {diameter}
cd = {cd}
[entry]
altitude_m = {h_e}
speed_m_s = {v_e}
flight_path_angle_deg = {gamma_deg}
[run]
max_time_s = 2000.0
"#
    );
    let src = Source::new("allen-eggers.toml", &text);
    let spec = CaseSpec::from_toml(&src).expect("case parses");
    let veh = spec.vehicle(&src, None).expect("vehicle");
    let r = run_case(&spec, veh).expect("runs");
    let s = gamma_deg.to_radians().sin().abs();
    let c = rho0 * h_s / (2.0 * beta_kg_m2 * s);
    let v_e_eff = v_e * (c * (-h_e / h_s).exp()).exp();
    let a_max = v_e_eff * v_e_eff * s / (2.0 * std::f64::consts::E * h_s);
    let h_star = h_s * (rho0 * h_s / (beta_kg_m2 * s)).ln();
    (r.peak_g * G0_M_S2, a_max, r.alt_peak_g_m, h_star)
}

#[test]
fn allen_eggers_peak_deceleration_and_altitude_within_0_1_percent() {
    for beta in [60.0, 150.0, 500.0] {
        for gamma in [-3.0, -10.0, -30.0, -60.0] {
            let (a, a_ref, h, h_ref) = allen_eggers_case(beta, gamma);
            assert!(
                rel(a, a_ref) < 1e-3,
                "beta {beta}, gamma {gamma}: a_max {a} vs {a_ref} ({:.2e})",
                rel(a, a_ref)
            );
            assert!(
                rel(h, h_ref) < 1e-3,
                "beta {beta}, gamma {gamma}: h* {h} vs {h_ref} ({:.2e})",
                rel(h, h_ref)
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Two-body orbit (Vallado, "Fundamentals of Astrodynamics and Applications", 4th ed.,
// ch. 1-2): specific energy v^2/2 - mu/r and angular momentum r x v are constants;
// the period of a circular orbit of radius a is 2 pi sqrt(a^3 / mu).
// ---------------------------------------------------------------------------------

fn point_mass() -> VehicleSpec {
    VehicleSpec::simple(180.0, 0.84, 1.2, 0.4, 0.0)
}

#[test]
fn two_body_conserves_energy_and_momentum_and_keeps_kepler_period() {
    let planet = sphere();
    let opts = options(
        planet,
        GravityModel::InverseSquare,
        Atmosphere::None,
        Dof::Three,
        100.0,
    );
    let init = circular_orbit(&planet, 400_000.0, 0.9, 0.3, 0.0);
    let a = planet.equatorial_radius_m + 400_000.0;
    let period = 2.0 * std::f64::consts::PI * (a.powi(3) / planet.mu_m3_s2).sqrt();
    let energy = |s: &BodyState| {
        0.5 * s.velocity_eci_m_s.length_squared() - planet.mu_m3_s2 / s.position_eci_m.length()
    };
    let h = |s: &BodyState| s.position_eci_m.cross(s.velocity_eci_m_s);
    let (e0, h0) = (energy(&init), h(&init));
    let r0_hat = init.position_eci_m.normalize();
    let along = init.velocity_eci_m_s.normalize();
    let mut twin = Twin::new(opts, point_mass(), init, 0.0).expect("twin");
    let mut prev_proj = 0.0;
    let mut measured = None;
    let mut worst_e: f64 = 0.0;
    let mut worst_h: f64 = 0.0;
    while twin.time_s() < 1.2 * period {
        let t0 = twin.time_s();
        twin.step();
        let s = *twin.state();
        worst_e = worst_e.max(rel(energy(&s), e0));
        worst_h = worst_h.max((h(&s) - h0).length() / h0.length());
        // Return to the start direction: the along-track component changes sign from
        // negative to positive while the radial component is positive.
        let proj = s.position_eci_m.dot(along);
        if measured.is_none()
            && t0 > 0.5 * period
            && prev_proj < 0.0
            && proj >= 0.0
            && s.position_eci_m.dot(r0_hat) > 0.0
        {
            measured = Some(t0 + twin.dt_s() * (-prev_proj) / (proj - prev_proj));
        }
        prev_proj = proj;
    }
    let measured = measured.expect("completed one orbit");
    assert!(worst_e < 1e-9, "energy drift {worst_e:.3e}");
    assert!(worst_h < 1e-9, "angular momentum drift {worst_h:.3e}");
    assert!(
        rel(measured, period) < 1e-6,
        "period {measured} vs Kepler {period} ({:.2e})",
        rel(measured, period)
    );
}

#[test]
fn j2_nodal_regression_of_a_51_6_deg_orbit_within_1_percent() {
    // Vallado eq. 9-41: dOmega/dt = -3/2 n J2 (R/p)^2 cos i.
    let planet = sphere();
    let inc = 51.6f64.to_radians();
    let opts = options(planet, GravityModel::J2, Atmosphere::None, Dof::Three, 10.0);
    let init = circular_orbit(&planet, 400_000.0, inc, 0.0, 0.5);
    let a = planet.equatorial_radius_m + 400_000.0;
    let n = (planet.mu_m3_s2 / a.powi(3)).sqrt();
    let analytic = -1.5 * n * planet.j2 * (planet.equatorial_radius_m / a).powi(2) * inc.cos();
    let mut twin = Twin::new(opts, point_mass(), init, 0.0).expect("twin");
    let mut nodes: Vec<(f64, f64)> = Vec::new();
    let mut prev = *twin.state();
    while nodes.len() < 9 {
        let t0 = twin.time_s();
        twin.step();
        let s = *twin.state();
        if prev.position_eci_m.z < 0.0 && s.position_eci_m.z >= 0.0 {
            let f = -prev.position_eci_m.z / (s.position_eci_m.z - prev.position_eci_m.z);
            let r = prev.position_eci_m + (s.position_eci_m - prev.position_eci_m) * f;
            nodes.push((t0 + f * twin.dt_s(), r.y.atan2(r.x)));
        }
        prev = s;
    }
    let (t_a, o_a) = nodes[0];
    let (t_b, o_b) = nodes[nodes.len() - 1];
    let mut d = o_b - o_a;
    while d > std::f64::consts::PI {
        d -= 2.0 * std::f64::consts::PI;
    }
    let rate = d / (t_b - t_a);
    assert!(
        rel(rate, analytic) < 0.01,
        "nodal rate {rate:.6e} rad/s vs analytic {analytic:.6e} ({:.2e})",
        rel(rate, analytic)
    );
}

// ---------------------------------------------------------------------------------
// Torque-free rigid body (Euler's equations): the inertial angular momentum and the
// rotational kinetic energy are constants; the attitude quaternion stays unit.
// ---------------------------------------------------------------------------------

#[test]
fn torque_free_rigid_body_conserves_angular_momentum_and_quaternion_norm() {
    let planet = sphere();
    let opts = options(
        planet,
        GravityModel::None,
        Atmosphere::None,
        Dof::Six,
        1000.0,
    );
    let mut veh = point_mass();
    veh.mass.inertia_kg_m2 = [[12.5, 0.3, -0.2], [0.3, 10.8, 0.1], [-0.2, 0.1, 9.1]];
    let i = twin_core::glam::DMat3::from_cols_array_2d(&veh.mass.inertia_kg_m2);
    let init = BodyState {
        position_eci_m: DVec3::new(7.0e6, 0.0, 0.0),
        velocity_eci_m_s: DVec3::new(0.0, 7_500.0, 0.0),
        eci_from_body: DQuat::from_euler(twin_core::glam::EulerRot::ZYX, 0.3, -0.4, 1.1),
        rate_body_rad_s: DVec3::new(0.4, -0.7, 0.9),
    };
    let h = |s: &BodyState| s.eci_from_body * (i * s.rate_body_rad_s);
    let ke = |s: &BodyState| 0.5 * s.rate_body_rad_s.dot(i * s.rate_body_rad_s);
    let (h0, k0) = (h(&init), ke(&init));
    let mut twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    let mut worst_h: f64 = 0.0;
    let mut worst_k: f64 = 0.0;
    let mut worst_q: f64 = 0.0;
    for _ in 0..60_000 {
        twin.step();
        let s = twin.state();
        worst_h = worst_h.max((h(s) - h0).length() / h0.length());
        worst_k = worst_k.max(rel(ke(s), k0));
        worst_q = worst_q.max((s.eci_from_body.length() - 1.0).abs());
    }
    assert!(worst_h < 1e-9, "angular momentum drift {worst_h:.3e}");
    assert!(worst_k < 1e-9, "kinetic energy drift {worst_k:.3e}");
    assert!(worst_q < 1e-12, "quaternion norm error {worst_q:.3e}");
}

// ---------------------------------------------------------------------------------
// Parachute steady descent: terminal velocity sqrt(2 m g / (rho CdS)) with the local
// density (US76) and local gravity, CdS the total drag area (canopy + body).
// ---------------------------------------------------------------------------------

#[test]
fn parachute_descent_reaches_terminal_velocity_within_0_5_percent() {
    let planet = sphere();
    let opts = options(
        planet,
        GravityModel::InverseSquare,
        Atmosphere::Us76,
        Dof::Three,
        1000.0,
    );
    let mut veh = VehicleSpec::simple(180.0, 0.84, 1.0, 0.4, 0.0);
    let chute_cds = 50.9;
    veh.parachutes.push(ParachuteSpec {
        name: "main".into(),
        cd_s_m2: Some(chute_cds),
        cd: None,
        diameter_m: None,
        attach_m: [0.0; 3],
        line_stretch_s: 0.5,
        inflation_time_s: 2.0,
        inflation_exponent: 2.0,
        reefing: None,
    });
    let body_cds = veh.reference_area_m2() * 1.0;
    let r0 = planet.equatorial_radius_m + 4_000.0;
    let init = BodyState {
        position_eci_m: DVec3::new(r0, 0.0, 0.0),
        velocity_eci_m_s: DVec3::new(-60.0, 0.0, 0.0),
        eci_from_body: DQuat::IDENTITY,
        rate_body_rad_s: DVec3::ZERO,
    };
    let mut twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    twin.deploy_parachute(0);
    let mut checked = 0;
    for check_alt in [2_000.0, 1_000.0, 200.0] {
        while twin.environment().altitude_m > check_alt {
            twin.step();
        }
        let env = twin.environment();
        let r = twin.state().position_eci_m.length();
        let g = planet.mu_m3_s2 / (r * r);
        let rho = us76(env.altitude_m).density_kg_m3;
        let v_t = (2.0 * 180.0 * g / (rho * (chute_cds + body_cds))).sqrt();
        let v = twin.state().velocity_eci_m_s.length();
        assert!(
            rel(v, v_t) < 5e-3,
            "at {:.0} m: {v:.4} m/s vs terminal {v_t:.4} m/s",
            env.altitude_m
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}

// ---------------------------------------------------------------------------------
// Sutton-Graves stagnation-point heating.
// ---------------------------------------------------------------------------------

#[test]
fn sutton_graves_check_point() {
    // Golden value computed by hand from q = k sqrt(rho / r_n) V^3 with the published
    // Earth constant k = 1.7415e-4 kg^0.5/m (Sutton & Graves 1971; Tauber 1989):
    // rho = 1e-4 kg/m^3, r_n = 1 m, V = 7000 m/s:
    // sqrt(1e-4) = 1e-2; 7000^3 = 3.43e11; q = 1.7415e-4 * 1e-2 * 3.43e11 = 5.973345e5 W/m^2.
    let q = sutton_graves_w_m2(SUTTON_GRAVES_EARTH_K, 1e-4, 1.0, 7_000.0);
    assert!((q - 5.973_345e5).abs() < 1.0, "q = {q}");
    // Nose-radius scaling: a 0.25 m nose doubles the flux.
    let q2 = sutton_graves_w_m2(SUTTON_GRAVES_EARTH_K, 1e-4, 0.25, 7_000.0);
    assert!((q2 / q - 2.0).abs() < 1e-12);
}

#[test]
fn twin_heat_flux_is_sutton_graves_at_the_current_state() {
    let planet = sphere();
    let opts = options(
        planet,
        GravityModel::InverseSquare,
        Atmosphere::Us76,
        Dof::Three,
        1000.0,
    );
    let veh = point_mass();
    let init = BodyState {
        position_eci_m: DVec3::new(planet.equatorial_radius_m + 70_000.0, 0.0, 0.0),
        velocity_eci_m_s: DVec3::new(-100.0, 7_000.0, 0.0),
        eci_from_body: DQuat::IDENTITY,
        rate_body_rad_s: DVec3::ZERO,
    };
    let mut twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    twin.step();
    let env = twin.environment();
    let rho = us76(env.altitude_m).density_kg_m3;
    let expected = SUTTON_GRAVES_EARTH_K * (rho / 0.4).sqrt() * env.airspeed_m_s.powi(3);
    // The loop uses the 20 m US76 table (interpolation error < 1e-6 on density).
    assert!(
        rel(twin.heat_flux_w_m2(), expected) < 1e-6,
        "{} vs {expected}",
        twin.heat_flux_w_m2()
    );
}

#[test]
fn splashdown_shock_is_felt_then_the_floating_capsule_reads_one_g() {
    // Vertical drop under a parachute onto the sea: after contact the specific force
    // peaks at about v / tau along the vertical, then settles to +1 g (the water holds
    // the capsule up).
    let planet = sphere();
    let opts = options(
        planet,
        GravityModel::InverseSquare,
        Atmosphere::Us76,
        Dof::Three,
        1000.0,
    );
    let veh = VehicleSpec::simple(180.0, 0.84, 1.0, 0.4, 0.0);
    let init = BodyState {
        position_eci_m: DVec3::new(planet.equatorial_radius_m + 5.0, 0.0, 0.0),
        velocity_eci_m_s: DVec3::new(-7.5, 0.0, 0.0),
        eci_from_body: DQuat::IDENTITY,
        rate_body_rad_s: DVec3::ZERO,
    };
    let mut twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    let mut peak: f64 = 0.0;
    for _ in 0..3_000 {
        twin.step();
        if twin.contact().is_some() {
            peak = peak.max(twin.load_factor_g());
        }
    }
    let c = twin.contact().expect("landed");
    let v = c.vertical_speed_m_s;
    // 7.5 m/s at 5 m, accelerated by gravity: sqrt(7.5^2 + 2 g 5) = 12.4 m/s.
    assert!(
        (v - (7.5f64.powi(2) + 2.0 * 9.8 * 5.0).sqrt()).abs() < 0.3,
        "impact at {v} m/s"
    );
    let expected_peak_g = v / twin_core::twin::IMPACT_TAU_S / G0_M_S2;
    assert!(
        peak > 0.8 * expected_peak_g && peak < 1.3 * expected_peak_g,
        "shock {peak:.1} g vs about {expected_peak_g:.1} g"
    );
    assert!(
        (twin.load_factor_g() - 1.0).abs() < 0.01,
        "floating reads {} g",
        twin.load_factor_g()
    );
}
