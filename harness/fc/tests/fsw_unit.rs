//! Flight-software logic with synthetic inputs (no processes, no links).

use capsule_fc::fsw::Fsw;
use capsule_icd::can::CanDb;

fn db() -> CanDb {
    CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("dbc")
}

#[test]
fn barometer_frames_give_a_pressure_altitude() {
    let db = db();
    let mut f = Fsw::new(db.clone(), 1);
    f.cycle(0.0).expect("cycle");
    assert_eq!(f.baro_altitude_m(), None);
    // 70121 Pa is 3000 m in the ISA troposphere (44330.77 (1 - (p/p0)^0.190263)).
    let frame = db
        .encode(
            "Baro_Data",
            &[
                ("Baro_Pressure", 70_121.0),
                ("Baro_Temperature", -4.5),
                ("Baro_Status", 0.0),
                ("Baro_Counter", 1.0),
            ],
        )
        .expect("encode");
    f.on_can(&frame);
    f.cycle(0.01).expect("cycle");
    let h = f.baro_altitude_m().expect("valid baro");
    assert!((h - 3_000.0).abs() < 3.0, "{h}");
    // Stale after a second without data.
    f.cycle(1.2).expect("cycle");
    assert_eq!(f.baro_altitude_m(), None);
}
