//! `twin-case` on bad input: a clear error naming the file, line, column, field and
//! what was expected; exit code 2; never a panic.

use std::path::PathBuf;
use std::process::Command;

const GOOD: &str = r#"
[models]
planet = "spherical"
gravity = "inverse_square"
earth_rotation = false
atmosphere = "us76"
dof = 3

[vehicle]
mass_kg = 180.0
diameter_m = 0.84
cd = 1.2

[entry]
altitude_m = 120000.0
speed_m_s = 7400.0
flight_path_angle_deg = -2.0
"#;

fn run_with(name: &str, text: &str) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("twin-case-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path: PathBuf = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write case");
    let out = Command::new(env!("CARGO_BIN_EXE_twin-case"))
        .arg(&path)
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_error(name: &str, text: &str, line: usize, field: &str, expected: &str) {
    let (code, stdout, stderr) = run_with(name, text);
    assert_eq!(code, 2, "exit code; stderr: {stderr}");
    assert!(stdout.is_empty(), "no results on error: {stdout}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let loc = format!("{name}.toml:{line}:");
    assert!(
        stderr.contains(&loc),
        "expected location {loc} in: {stderr}"
    );
    assert!(
        stderr.contains(&format!("field `{field}`")),
        "expected field {field} in: {stderr}"
    );
    assert!(
        stderr.contains(expected),
        "expected '{expected}' in: {stderr}"
    );
}

#[test]
fn a_good_case_runs_and_prints_the_fields() {
    let (code, stdout, stderr) = run_with("good", GOOD);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    for k in [
        "peak_g",
        "t_peak_g_s",
        "alt_peak_g_m",
        "peak_heat_flux_w_m2",
        "heat_load_j_m2",
        "t_mach_1_5_s",
        "t_alt_10km_s",
        "landing_speed_m_s",
        "t_landing_s",
        "t_alt_100km_s",
        "t_alt_80km_s",
        "t_alt_60km_s",
        "t_alt_40km_s",
        "t_alt_20km_s",
        "t_alt_5km_s",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert!(v["peak_g"].as_f64().is_some_and(|g| g > 1.0));
    assert!(v["landing_speed_m_s"].as_f64().is_some_and(|s| s > 0.0));
}

#[test]
fn unknown_option_is_named_with_its_location() {
    let text = GOOD.replace("dof = 3", "dof = 3\nintegrator = \"euler\"");
    assert_error(
        "unknown",
        &text,
        8,
        "models.integrator",
        "unknown field `integrator`",
    );
}

#[test]
fn missing_field_is_named() {
    let text = GOOD.replace("speed_m_s = 7400.0\n", "");
    assert_error("missing", &text, 14, "entry", "missing field `speed_m_s`");
}

#[test]
fn negative_mass_is_rejected_with_the_unit() {
    let text = GOOD.replace("mass_kg = 180.0", "mass_kg = -5.0");
    assert_error(
        "negative",
        &text,
        10,
        "vehicle.mass_kg",
        "expected a number in [0.001, 1000000] (kg), found -5",
    );
}

#[test]
fn non_numeric_value_is_rejected() {
    let text = GOOD.replace("cd = 1.2", "cd = \"high\"");
    assert_error("nonnumeric", &text, 12, "vehicle.cd", "expected f64");
}

#[test]
fn bad_option_value_is_rejected() {
    let text = GOOD.replace("planet = \"spherical\"", "planet = \"donut\"");
    assert_error(
        "badplanet",
        &text,
        3,
        "models.planet",
        "unknown variant `donut`",
    );
}

#[test]
fn syntax_error_has_a_location() {
    let text = GOOD.replace("cd = 1.2", "cd = = 1.2");
    let (code, _, stderr) = run_with("syntax", &text);
    assert_eq!(code, 2);
    assert!(stderr.contains("syntax.toml:12:"), "{stderr}");
}

#[test]
fn missing_vehicle_file_is_named() {
    let text = GOOD.replace(
        "mass_kg = 180.0\ndiameter_m = 0.84\ncd = 1.2",
        "file = \"nope.toml\"",
    );
    let (code, _, stderr) = run_with("nofile", &text);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("vehicle.file") && stderr.contains("nope.toml"),
        "{stderr}"
    );
}

#[test]
fn no_arguments_prints_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_twin-case"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: twin-case"));
}

#[test]
fn nan_and_infinite_values_are_rejected() {
    let text = GOOD.replace("mass_kg = 180.0", "mass_kg = nan");
    assert_error(
        "nanmass",
        &text,
        10,
        "vehicle.mass_kg",
        "expected a number in [0.001, 1000000] (kg), found NaN",
    );
    let text = GOOD.replace("speed_m_s = 7400.0", "speed_m_s = inf");
    assert_error(
        "infspeed",
        &text,
        16,
        "entry.speed_m_s",
        "expected a number in",
    );
}
