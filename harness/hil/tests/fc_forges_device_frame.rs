//! A flight computer that sends frames with the barometer's identifier: they are
//! recorded as the FC's, never judged as the barometer's, and the run fails on the
//! identifier conflict (requirement ICD-IDS), in both clocks.
mod common;
use std::time::Duration;

fn forged(clock: &str) {
    let d = common::test_dir(&format!("forges-{clock}"));
    let scn = common::short_scenario(d.path(), "short.toml", 3.0);
    // A check on the barometer's pressure that the forged frames (1 Pa) would fail.
    let text = std::fs::read_to_string(&scn).expect("read")
        + r#"
[[expect]]
id = "baro-pressure"
requirement = "REQ-SEQ-001"
always = [{ signal = "can.Baro_Data.Baro_Pressure", min = 100.0 }]
"#;
    std::fs::write(&scn, text).expect("write");
    let bench = common::rogue_bench(d.path(), "forges", clock, &[]);
    let (f, v) = common::run_rogue(d.path(), &scn, &bench, Duration::from_secs(60));
    assert!(
        f.code == Some(1) || f.code == Some(2),
        "{}{}",
        f.stdout,
        f.stderr
    );
    let res = &v["scenarios"][0]["result"];
    let exps = res["expectations"].as_array().expect("judged");
    let by = |id: &str| {
        exps.iter()
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        by("baro-pressure")["passed"],
        true,
        "forged frames judged as the device's: {res}"
    );
    let c = by("can-id-conflict");
    assert_eq!(c["passed"], false, "{res}");
    assert_eq!(c["requirement"], "ICD-IDS");
    assert!(
        c["measured"]
            .as_str()
            .is_some_and(|m| m.contains("can_id_conflict:Baro_Data")),
        "{c}"
    );
}

#[test]
fn lockstep_forged_baro_frames_are_a_conflict_not_the_barometer() {
    forged("lockstep");
}

#[test]
fn realtime_forged_baro_frames_are_a_conflict_not_the_barometer() {
    forged("realtime");
}
