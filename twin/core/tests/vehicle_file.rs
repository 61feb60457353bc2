//! The reference vehicle file loads, trims where its provenance says, and bad vehicle
//! files are rejected with located errors.

use twin_core::config::Source;
use twin_core::vehicle::VehicleSpec;

const TEXT: &str = include_str!("../../../fixtures/vehicles/capsule-srcv.toml");

#[test]
fn reference_vehicle_trims_at_l_over_d_0_15_hypersonic() {
    let v = VehicleSpec::from_toml(&Source::new("capsule-srcv.toml", TEXT)).expect("loads");
    assert!((v.mass.dry_mass_kg + v.propellant_kg() - 180.0).abs() < 1e-9);
    let trim = v.trim().expect("table aero");
    let hyper = trim.iter().find(|t| t.mach >= 25.0).expect("Mach 25 row");
    let ld = hyper.cl / hyper.cd;
    // The CG offset was chosen (tools/newtonian_aero.py) for L/D = 0.15 at Mach 25.
    assert!((ld - 0.15).abs() < 0.005, "L/D {ld}");
    assert!(hyper.alpha_rad.to_degrees() > 15.0 && hyper.alpha_rad.to_degrees() < 30.0);
}

#[test]
fn negative_dry_mass_is_located() {
    let bad = TEXT.replace("dry_mass_kg = 167.0", "dry_mass_kg = -167.0");
    let line = bad
        .lines()
        .position(|l| l.starts_with("dry_mass_kg"))
        .expect("line")
        + 1;
    let e = VehicleSpec::from_toml(&Source::new("v.toml", &bad)).expect_err("rejected");
    assert_eq!(e.file, "v.toml");
    assert_eq!(e.line, line);
    assert_eq!(e.field, "mass.dry_mass_kg");
    assert!(
        e.message
            .contains("expected a number in [0.001, 1000000] (kg)"),
        "{e}"
    );
}

#[test]
fn thruster_with_unknown_tank_is_located() {
    let bad = TEXT.replacen("tank = \"rcs_n2\"", "tank = \"rcs_xe\"", 1);
    let e = VehicleSpec::from_toml(&Source::new("v.toml", &bad)).expect_err("rejected");
    assert_eq!(e.field, "thrusters[0].tank");
    assert!(e.message.contains("no tank named `rcs_xe`"), "{e}");
}

#[test]
fn ragged_aero_table_is_located() {
    let bad = TEXT.replacen(
        "cmq_per_rad = -0.10",
        "cmq_per_rad = -0.10\nmach = [0.3, 0.6]",
        1,
    );
    let e = VehicleSpec::from_toml(&Source::new("v.toml", &bad)).expect_err("rejected");
    assert!(e.to_string().contains("v.toml:"), "{e}");
}

#[test]
fn unphysical_inertia_is_rejected() {
    let bad = TEXT.replace(
        "[[12.5, 0.0, 0.0], [0.0, 10.8, 0.0], [0.0, 0.0, 10.8]]",
        "[[40.0, 0.0, 0.0], [0.0, 10.8, 0.0], [0.0, 0.0, 10.8]]",
    );
    let e = VehicleSpec::from_toml(&Source::new("v.toml", &bad)).expect_err("rejected");
    assert_eq!(e.field, "mass.inertia_kg_m2");
}
