//! Physics-core benchmarks: one 6-DOF RK4 step, and a full nominal entry from 120 km to
//! splashdown at 1 kHz (the README reports the ratio to real time).
//!
//! Run: `cargo bench -p twin-core --bench physics`

use twin_core::case::{CaseSpec, run_case};
use twin_core::config::Source;
use twin_core::initial::EntryState;
use twin_core::twin::{ModelOptions, Twin};
use twin_core::vehicle::VehicleSpec;

const VEHICLE: &str = include_str!("../../../fixtures/vehicles/capsule-srcv.toml");
const CASE: &str = include_str!("../../../fixtures/cases/nominal-entry.toml");

fn main() {
    divan::main();
}

fn vehicle() -> VehicleSpec {
    VehicleSpec::from_toml(&Source::new("capsule-srcv.toml", VEHICLE)).expect("vehicle")
}

/// One 6-DOF RK4 step (WGS-84, J2, US76, aero table) at Mach ~20, 70 km.
#[divan::bench]
fn six_dof_step(bencher: divan::Bencher) {
    let opts = ModelOptions::default();
    let veh = vehicle();
    let e = EntryState {
        altitude_m: 70_000.0,
        speed_m_s: 6_500.0,
        flight_path_angle_rad: -2f64.to_radians(),
        heading_rad: 0.7,
        latitude_rad: 0.4,
        longitude_rad: -2.8,
        relative_to_atmosphere: true,
        bank_rad: 1.0,
    };
    let init = e.to_body_state(&opts.planet, &veh);
    let mut twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    bencher.bench_local(move || {
        twin.step();
        divan::black_box(twin.state().position_eci_m)
    });
}

/// The full nominal entry (`fixtures/cases/nominal-entry.toml`, about 1000 s simulated).
#[divan::bench(sample_count = 5, sample_size = 1)]
fn full_entry_120km_to_splashdown_1khz() -> f64 {
    let src = Source::new("nominal-entry.toml", CASE);
    let mut spec = CaseSpec::from_toml(&src).expect("case");
    spec.vehicle.file = None;
    let r = run_case(&spec, vehicle()).expect("runs");
    divan::black_box(r.t_end_s)
}
