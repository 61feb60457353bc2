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

/// Mated (handed over in PRE_SEPARATION), the flight software coasts only when both
/// separation switches read open in two consecutive `Pyro_Status` frames: one switch
/// open, or a single open reading, does not separate it.
#[test]
fn separation_needs_both_switches_open_twice() {
    use capsule_fc::fsw::Mode;
    let db = db();
    let mut f = Fsw::new(db.clone(), 1);
    // Handover on a 6728-km circular orbit, mode PRE_SEPARATION (0).
    for (name, vals) in [
        ("HV_PosXY", vec![("HV_PosX", 6_728_000.0), ("HV_PosY", 0.0)]),
        ("HV_PosZVelX", vec![("HV_PosZ", 0.0), ("HV_VelX", 0.0)]),
        ("HV_VelYZ", vec![("HV_VelY", 7_697.0), ("HV_VelZ", 0.0)]),
        (
            "HV_Attitude",
            vec![
                ("HV_QuatW", 1.0),
                ("HV_QuatX", 0.0),
                ("HV_QuatY", 0.0),
                ("HV_QuatZ", 0.0),
            ],
        ),
        (
            "HV_StateTime",
            vec![("HV_TimeUs", 0.0), ("HV_Mode", 0.0), ("HV_Seq", 1.0)],
        ),
    ] {
        f.on_can(&db.encode(name, &vals).expect(name));
    }
    let status = |switches: f64, counter: f64| {
        db.encode(
            "Pyro_Status",
            &[
                ("Pyro_Continuity", 0x0F as f64),
                ("Pyro_BusVoltage", 28.0),
                ("Pyro_Counter", counter),
                ("Pyro_SepSwitch", switches),
            ],
        )
        .expect("encode")
    };
    let mut t = 0.0;
    let mut step = |f: &mut Fsw, switches: f64, n: f64| {
        f.on_can(&status(switches, n));
        t += 0.1;
        f.cycle(t).expect("cycle");
        f.mode()
    };
    assert_eq!(step(&mut f, 3.0, 1.0), Mode::PreSeparation);
    // One switch open (a failed or bouncing switch): still mated.
    for k in 0..5 {
        assert_eq!(step(&mut f, 2.0, 2.0 + f64::from(k)), Mode::PreSeparation);
    }
    // Both open once, then a glitch: the count restarts.
    assert_eq!(step(&mut f, 0.0, 7.0), Mode::PreSeparation);
    assert_eq!(step(&mut f, 1.0, 8.0), Mode::PreSeparation);
    assert_eq!(step(&mut f, 0.0, 9.0), Mode::PreSeparation);
    // The second consecutive open reading separates it.
    assert_eq!(step(&mut f, 0.0, 10.0), Mode::Coast);
}
