//! The nominal entry of the reference capsule: deterministic (two runs give identical
//! results) and guarded by a snapshot of its figures (rounded to 6 significant digits).

use twin_core::case::{CaseSpec, run_case};
use twin_core::config::Source;
use twin_core::vehicle::VehicleSpec;

fn nominal() -> String {
    let case = include_str!("../../../fixtures/cases/nominal-entry.toml");
    let vtext = include_str!("../../../fixtures/vehicles/capsule-srcv.toml");
    let src = Source::new("nominal-entry.toml", case);
    let spec = CaseSpec::from_toml(&src).expect("case");
    let veh = VehicleSpec::from_toml(&Source::new("capsule-srcv.toml", vtext)).expect("vehicle");
    let veh = spec
        .vehicle(&src, Some(veh))
        .expect("vehicle with parachutes");
    serde_json::to_string(&run_case(&spec, veh).expect("runs")).expect("json")
}

fn round(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) if x != 0.0 && n.is_f64() => {
                let mag = x.abs().log10().floor() as i32;
                let scale = 10f64.powi(5 - mag);
                serde_json::json!((x * scale).round() / scale)
            }
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(round).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, round(v))).collect()),
        other => other,
    }
}

#[test]
fn nominal_entry_is_deterministic_and_matches_its_snapshot() {
    let a = nominal();
    let b = nominal();
    assert_eq!(a, b, "two runs of the same case differ");
    let v: serde_json::Value = serde_json::from_str(&a).expect("json");
    // Physical sanity, independent of the snapshot.
    let g = v["peak_g"].as_f64().expect("peak_g");
    assert!((3.0..8.0).contains(&g), "peak g {g}");
    let land = v["landing_speed_m_s"].as_f64().expect("landed");
    assert!((6.0..9.0).contains(&land), "landing speed {land}");
    insta::assert_json_snapshot!(round(v));
}
