//! The barometer node's status follows the ICD (`Baro_Status`: 0 ok, 2 out of range,
//! 3 sensor fault), found with cantools on captured traffic: in orbit the pressure sits
//! at the sensor's 100 Pa floor and the frame must say out of range, not OK.

use capsule_icd::can::CanDb;
use capsule_runner::devices::{Devices, Outputs};
use twin_core::config::Source;
use twin_core::initial::EntryState;
use twin_core::twin::{ModelOptions, Twin};
use twin_core::vehicle::VehicleSpec;

fn db() -> CanDb {
    CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("dbc")
}

/// (pressure, status) of every Baro_Data frame over 0.2 s at `altitude_m`.
fn baro_at(altitude_m: f64) -> Vec<(f64, f64)> {
    let db = db();
    let text = include_str!("../../../fixtures/vehicles/capsule-srcv.toml");
    let veh = VehicleSpec::from_toml(&Source::new("capsule-srcv.toml", text)).expect("vehicle");
    let opts = ModelOptions::default();
    let init = EntryState {
        altitude_m,
        speed_m_s: if altitude_m > 100_000.0 {
            7_600.0
        } else {
            150.0
        },
        flight_path_angle_rad: 0.0,
        heading_rad: 0.0,
        latitude_rad: 0.0,
        longitude_rad: 0.0,
        relative_to_atmosphere: true,
        bank_rad: 0.0,
    }
    .to_body_state(&opts.planet, &veh);
    let mut devices = Devices::new(
        capsule_icd::Icd::shipped().expect("icd").binding,
        &veh.sensors,
        3,
    );
    let mut twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    let baro = db.by_name("Baro_Data").expect("Baro_Data").clone();
    let mut got = Vec::new();
    for _ in 0..200 {
        let mut out = Outputs::default();
        devices.step(&twin, twin.dt_s(), &mut out).expect("encode");
        twin.step();
        for f in out.frames.iter().filter(|f| f.id == baro.id) {
            let v = baro.decode(f).expect("decodes");
            let get = |n: &str| v.iter().find(|(k, _)| *k == n).map(|(_, x)| *x).expect(n);
            got.push((get("Baro_Pressure"), get("Baro_Status")));
        }
    }
    assert!(got.len() >= 5, "{got:?}");
    got
}

#[test]
fn in_orbit_the_saturated_barometer_reports_out_of_range() {
    for (p, status) in baro_at(400_000.0) {
        assert_eq!(
            status, 2.0,
            "pressure {p} Pa at the range floor must be out of range"
        );
        assert!(p <= 100.5, "{p}");
    }
}

#[test]
fn in_the_lower_atmosphere_the_barometer_is_ok() {
    for (p, status) in baro_at(5_000.0) {
        assert_eq!(status, 0.0, "{p}");
        assert!((50_000.0..60_000.0).contains(&p), "{p}");
    }
}
