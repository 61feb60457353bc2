//! Flight-software logic with synthetic inputs (no processes, no links).

use capsule_fc::fsw::Fsw;
use capsule_icd::Icd;

/// The shipped ICD (the tests encode frames by its DBC names).
fn db() -> Icd {
    Icd::shipped().expect("shipped ICD")
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
        f.on_can(&db.encode_zero_filled(name, &vals).expect(name));
    }
    let status = |switches: f64, counter: f64| {
        db.encode_zero_filled(
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

/// What one cycle sent: (message name, signals).
type Sent = Vec<(String, Vec<(String, f64)>)>;

fn decode_all(db: &capsule_icd::can::CanDb, frames: &[capsule_icd::can::CanFrame]) -> Sent {
    frames
        .iter()
        .map(|f| {
            let (m, v) = db.decode(f).expect("FC frames decode");
            (
                m.name.clone(),
                v.into_iter().map(|(k, x)| (k.to_string(), x)).collect(),
            )
        })
        .collect()
}

fn value(sig: &[(String, f64)], name: &str) -> f64 {
    sig.iter()
        .find(|(k, _)| k == name)
        .map(|(_, x)| *x)
        .expect("signal")
}

/// Under the drogue at 2900 m by the barometer (the main is due at 3000 m), with the
/// pyro and power nodes reporting every 100 ms at `bus_v(t)`; returns, per cycle, its
/// time and what the flight software sent.
fn drogue_descent_with_bus(
    bus_v: impl Fn(f64) -> f64,
    baro_from_s: f64,
    until_s: f64,
) -> Vec<(f64, Sent)> {
    use capsule_fc::fsw::Mode;
    let db = db();
    let mut f = Fsw::new(db.clone(), 1);
    f.cycle(0.0).expect("cycle");
    f.set_mode(Mode::Drogue);
    // ISA troposphere: p = p0 (1 - h / 44330.77)^(1 / 0.190263).
    let p_2900 = 101_325.0 * (1.0 - 2_900.0 / 44_330.77f64).powf(1.0 / 0.190_263);
    let mut out = Vec::new();
    let mut k = 0u32;
    loop {
        k += 1;
        let t = f64::from(k) * 0.01;
        if t > until_s + 1e-9 {
            break;
        }
        if k.is_multiple_of(10) {
            let n = f64::from((k / 10) % 16);
            let frames = [
                db.encode_zero_filled(
                    "Power_Status",
                    &[("Power_BusVoltage", bus_v(t)), ("Power_Counter", n)],
                ),
                db.encode_zero_filled(
                    "Pyro_Status",
                    &[
                        ("Pyro_Armed", 1.0),
                        ("Pyro_Continuity", 63.0),
                        ("Pyro_BusVoltage", bus_v(t)),
                        ("Pyro_Counter", n),
                    ],
                ),
            ];
            for fr in frames {
                f.on_can(&fr.expect("encode"));
            }
            if t >= baro_from_s {
                let baro = db.encode_zero_filled(
                    "Baro_Data",
                    &[
                        ("Baro_Pressure", p_2900.round()),
                        ("Baro_Temperature", -3.9),
                        ("Baro_Status", 0.0),
                        ("Baro_Counter", n),
                    ],
                );
                f.on_can(&baro.expect("encode"));
            }
        }
        let sent = f.cycle(t).expect("cycle");
        out.push((t, decode_all(&db, &sent)));
    }
    out
}

fn first(
    log: &[(f64, Sent)],
    pred: impl Fn(&str, &[(String, f64)]) -> bool,
) -> Option<(f64, &[(String, f64)])> {
    log.iter().find_map(|(t, sent)| {
        sent.iter()
            .find(|(n, s)| pred(n, s))
            .map(|(_, s)| (*t, s.as_slice()))
    })
}

fn fault_event(code: f64, detail: u16) -> impl Fn(&str, &[(String, f64)]) -> bool {
    move |n, s| {
        n == "FC_Event"
            && value(s, "FC_EventCode") == code
            && value(s, "FC_EventDetail") == f64::from(detail)
    }
}

fn fire_command(n: &str, s: &[(String, f64)]) -> bool {
    n == "Pyro_Command" && value(s, "Pyro_FireMask") != 0.0
}

/// A bus under 24 V in two consecutive `Power_Status` frames is an under-voltage
/// (0x010D); the main, due meanwhile, is held and fired through its primary (with the
/// drogue riser cutter) once the bus has read over 26 V for five frames.
#[test]
fn pyro_functions_wait_for_the_bus_to_recover() {
    use capsule_fc::fsw::{BUS_LOW_FRAMES, BUS_OK_FRAMES, FAULT_BUS_LOW, event};
    // Low from the start, back to 28 V at 1.55 s; the baro shows 2900 m from 0.5 s.
    let log = drogue_descent_with_bus(|t| if t < 1.55 { 20.0 } else { 28.0 }, 0.5, 3.0);
    let (t_low, _) = first(
        &log,
        fault_event(f64::from(event::FAULT_DETECTED), FAULT_BUS_LOW),
    )
    .expect("under-voltage reported");
    // Frames at 0.1 s and 0.2 s: declared on the second.
    assert!(
        (t_low - 0.1 * f64::from(BUS_LOW_FRAMES)).abs() < 0.015,
        "{t_low}"
    );
    let (t_ok, _) = first(
        &log,
        fault_event(f64::from(event::FAULT_CLEARED), FAULT_BUS_LOW),
    )
    .expect("under-voltage cleared");
    // 28 V from the frame at 1.6 s: the fifth good frame is at 2.0 s.
    assert!(
        (t_ok - (1.5 + 0.1 * f64::from(BUS_OK_FRAMES))).abs() < 0.015,
        "{t_ok}"
    );
    let (t_fire, s) = first(&log, fire_command).expect("the main is fired");
    assert!(
        t_fire >= t_ok - 1e-9 && t_fire - t_ok < 0.015,
        "fired at {t_fire}, bus ok at {t_ok}"
    );
    // Main primary (bit 2) and the drogue riser cutter (bit 4); not the backup.
    assert_eq!(value(s, "Pyro_FireMask"), f64::from(0b1_0100u8));
    assert_eq!(value(s, "Pyro_Arm"), 1.0);
}

/// The hold is bounded: with the bus low for good, the main goes 3 s after the
/// under-voltage was declared.
#[test]
fn the_pyro_hold_ends_after_its_limit() {
    use capsule_fc::fsw::{FAULT_BUS_LOW, PYRO_HOLD_MAX_S, event};
    let log = drogue_descent_with_bus(|_| 20.0, 0.5, 5.0);
    let (t_low, _) = first(
        &log,
        fault_event(f64::from(event::FAULT_DETECTED), FAULT_BUS_LOW),
    )
    .expect("under-voltage reported");
    let (t_fire, s) = first(&log, fire_command).expect("the main is fired");
    assert!(
        (t_fire - (t_low + PYRO_HOLD_MAX_S)).abs() < 0.015,
        "fired at {t_fire}, under-voltage from {t_low}"
    );
    assert_eq!(value(s, "Pyro_FireMask"), f64::from(0b1_0100u8));
}

/// Without a bus fault the main is fired on the first cycle the baro shows it due.
#[test]
fn a_good_bus_does_not_delay_the_main() {
    let log = drogue_descent_with_bus(|_| 28.0, 0.5, 1.0);
    let (t_fire, _) = first(&log, fire_command).expect("the main is fired");
    assert!((t_fire - 0.5).abs() < 0.015, "{t_fire}");
}

fn baro_frame(
    db: &capsule_icd::can::CanDb,
    pressure_pa: f64,
    status: f64,
    counter: f64,
) -> capsule_icd::can::CanFrame {
    db.encode(
        "Baro_Data",
        &[
            ("Baro_Pressure", pressure_pa),
            ("Baro_Temperature", -4.5),
            ("Baro_Status", status),
            ("Baro_Counter", counter),
        ],
    )
    .expect("encode")
}

/// FC_BaroValid says whether the barometer is usable (it was 0 in every frame, the
/// encoder filling a signal it was not given); a barometer reporting out of range
/// (status 2, e.g. in orbit) is alive, so it is not declared lost, but not usable.
#[test]
fn fc_status_reports_the_barometer_and_an_out_of_range_one_is_not_a_fault() {
    let db = db();
    let status_of = |frames: &[capsule_icd::can::CanFrame]| {
        let sent = decode_all(&db, frames);
        sent.iter()
            .filter(|(n, _)| n == "FC_Status")
            .map(|(_, s)| value(s, "FC_BaroValid"))
            .collect::<Vec<_>>()
    };
    let mut f = Fsw::new(db.clone(), 1);
    assert_eq!(status_of(&f.cycle(0.0).expect("cycle")), vec![0.0]);
    f.on_can(&baro_frame(&db, 70_121.0, 0.0, 1.0));
    let mut t = 0.0;
    let mut seen = Vec::new();
    while t < 0.1 + 1e-9 {
        t += 0.01;
        seen.extend(status_of(&f.cycle(t).expect("cycle")));
    }
    assert_eq!(seen, vec![1.0]);
    // Out of range for 3 s: not usable, and no baro fault (0x0102) either.
    let mut g = Fsw::new(db.clone(), 1);
    let mut events = Vec::new();
    let mut bv = Vec::new();
    for k in 0..300 {
        let t = f64::from(k) * 0.01;
        if k % 2 == 0 {
            g.on_can(&baro_frame(&db, 100.0, 2.0, f64::from(k / 2 % 16)));
        }
        let out = g.cycle(t).expect("cycle");
        bv.extend(status_of(&out));
        events.extend(
            decode_all(&db, &out)
                .into_iter()
                .filter(|(n, _)| n == "FC_Event"),
        );
    }
    assert!(bv.iter().all(|v| *v == 0.0), "{bv:?}");
    assert!(
        !events
            .iter()
            .any(|(_, s)| value(s, "FC_EventDetail") == 258.0),
        "an out-of-range barometer was declared lost: {events:?}"
    );
}
