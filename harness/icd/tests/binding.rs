//! The ICD binding: the shipped binding resolves against the shipped DBC (and the
//! variant ICD's against its own), encodes what the DBC says, and every kind of mistake
//! is an error naming file, line, column and field.

use capsule_files::config::Source;
use capsule_icd::binding::{Binding, encode_into, encode_one};
use capsule_icd::can::CanDb;

const DBC: &str = include_str!("../../../fixtures/icd/capsule.dbc");
const BINDING: &str = include_str!("../../../fixtures/icd/capsule.binding.toml");

fn db() -> CanDb {
    CanDb::from_dbc("capsule.dbc", DBC).expect("DBC loads")
}

fn bind(text: &str) -> Result<Binding, String> {
    Binding::from_toml(&Source::new("b.toml", text), &db()).map_err(|e| e.to_string())
}

#[test]
fn the_shipped_binding_resolves_and_encodes_like_the_dbc() {
    let b = bind(BINDING).expect("shipped binding resolves");
    assert_eq!(b.power.period_s, 0.1);
    assert_eq!(b.rcs.status_period_s, 0.02);
    assert_eq!(b.pyro.bit("main_release"), 5);
    assert_eq!(b.pyro.channel_name(6), "spare6");
    // Baro: the twin gives kelvin, the DBC carries degC.
    let f = encode_one(&[
        (&b.baro.pressure, 101_325.0),
        (&b.baro.temperature, 288.15),
        (&b.baro.status.sig, b.baro.status.ok),
        (&b.baro.counter, 3.0),
    ])
    .expect("encodes");
    let by_dbc = db()
        .encode(
            "Baro_Data",
            &[
                ("Baro_Pressure", 101_325.0),
                ("Baro_Temperature", 15.0),
                ("Baro_Status", 0.0),
                ("Baro_Counter", 3.0),
            ],
        )
        .expect("dbc encodes");
    assert_eq!(f, by_dbc);
    assert!((b.baro.temperature.read(&f) - 288.15).abs() < 1e-9);
    // State of charge: a fraction in the twin, percent on the wire.
    assert_eq!(b.power.state_of_charge.to_wire(0.5), 50.0);
    // The handover's five messages, time last.
    let mut out = Vec::new();
    let h = &b.handover;
    let vals: Vec<_> = h
        .position
        .iter()
        .chain(&h.velocity)
        .chain(&h.attitude)
        .map(|s| (s, 0.5))
        .chain([(&h.time, 12.5), (&h.mode, 3.0), (&h.sequence, 1.0)])
        .collect();
    encode_into(&vals, &mut out).expect("handover encodes");
    let names: Vec<_> = out
        .iter()
        .map(|f| db().by_id(f.id).expect("known").name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "HV_PosXY",
            "HV_PosZVelX",
            "HV_VelYZ",
            "HV_Attitude",
            "HV_StateTime"
        ]
    );
    assert_eq!(h.time.read_wire(&out[4]), 12_500_000.0);
    // The nodes the twin can silence own their messages.
    let nodes = b.device_messages();
    assert!(nodes.contains(&(768, "baro")) && nodes.contains(&(512, "pyro")));
}

#[test]
fn the_variant_icd_resolves_against_its_own_dbc() {
    let db = CanDb::from_dbc(
        "capsule-b.dbc",
        include_str!("../../../fixtures/icd/variant/capsule-b.dbc"),
    )
    .expect("variant DBC loads");
    let b = Binding::from_toml(
        &Source::new(
            "capsule-b.binding.toml",
            include_str!("../../../fixtures/icd/variant/capsule-b.binding.toml"),
        ),
        &db,
    )
    .expect("variant binding resolves");
    // Other names, units and rates than the shipped ICD.
    assert_ne!(b.baro.pressure.path(), "Baro_Data.Baro_Pressure");
    assert_eq!(b.baro.pressure.unit, "hPa");
    assert_ne!(b.pyro.status_period_s, 0.1);
    let f = encode_one(&[
        (&b.baro.pressure, 101_325.0),
        (&b.baro.temperature, 288.15),
        (&b.baro.status.sig, b.baro.status.ok),
        (&b.baro.counter, 3.0),
    ])
    .expect("encodes");
    assert!((b.baro.pressure.read(&f) - 101_325.0).abs() <= 1.0);
    assert_eq!(b.baro.pressure.read_wire(&f), 1013.25);
}

fn expect_error(edit: impl Fn(&str) -> String, located: &str, says: &str) {
    let text = edit(BINDING);
    let e = bind(&text).expect_err("must be refused");
    assert!(e.starts_with(located), "expected `{located}...`, got: {e}");
    assert!(e.contains(says), "expected `{says}` in: {e}");
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("line") + 1
}

#[test]
fn mistakes_are_located_and_named() {
    let at = |needle: &str| format!("b.toml:{}:", line_of(BINDING, needle));
    // A signal the DBC does not have.
    expect_error(
        |t| {
            t.replace(
                "pressure = \"Baro_Pressure\"",
                "pressure = \"Baro_Pressure_X\"",
            )
        },
        &at("pressure = \"Baro_Pressure\""),
        "no signal `Baro_Pressure_X`",
    );
    // A unit of the wrong dimension.
    expect_error(
        |t| {
            t.replace(
                "pressure = \"Baro_Pressure\"",
                "pressure = { signal = \"Baro_Pressure\", unit = \"V\" }",
            )
        },
        &at("pressure = \"Baro_Pressure\""),
        "the binding says `V` but the DBC gives `Baro_Data.Baro_Pressure` the unit `Pa`",
    );
    // A quantity bound to a signal of another dimension.
    expect_error(
        |t| {
            t.replace(
                "temperature = \"Baro_Temperature\"",
                "temperature = \"Power_BusVoltage\"",
            )
            .replace(
                "bus_voltage = \"Power_BusVoltage\"",
                "bus_voltage = \"Baro_Temperature\"",
            )
        },
        &at("temperature = \"Baro_Temperature\""),
        "`Power_Status.Power_BusVoltage` carries `V`, not a unit the twin converts",
    );
    // The same signal bound twice.
    expect_error(
        |t| {
            t.replace(
                "backshell = \"Thermo_Backshell\"",
                "backshell = \"Thermo_Bondline\"",
            )
        },
        &at("backshell = \"Thermo_Backshell\""),
        "already bound by `thermo.bondline`",
    );
    // A command role bound to a message the FC does not send.
    expect_error(
        |t| t.replace("arm = \"Pyro_Arm\"", "arm = \"Pyro_Armed\""),
        &at("arm = \"Pyro_Arm\""),
        "this role is the flight computer's",
    );
    // A mask too narrow for its channels.
    expect_error(
        |t| t.replace("main_release = 5", "main_release = 9"),
        &at("fire_mask = "),
        "has 8 bits; this role needs at least 10",
    );
    // An unknown pyro channel and a missing one.
    expect_error(
        |t| t.replace("drogue_backup = 1", "drouge_backup = 1"),
        "b.toml:",
        "channel `drogue_backup` has no bit",
    );
    // A period out of range, a key that does not fit.
    expect_error(
        |t| t.replace("status_period_ms = 20", "status_period_ms = 0"),
        &at("status_period_ms = 20"),
        "expected a period in [1, 10000] ms",
    );
    expect_error(
        |t| t.replace("value = 0xA5", "value = 300"),
        "b.toml:",
        "300 does not fit the key signal",
    );
    // An unknown key (a typo) and a syntax error.
    expect_error(
        |t| t.replace("[baro]\n", "[baro]\npresure = \"x\"\n"),
        &format!("b.toml:{}:", line_of(BINDING, "[baro]") + 1),
        "unknown field `presure`",
    );
    expect_error(|t| t.replace("[baro]", "[baro"), "b.toml:", "(syntax)");
    // The FC's node must send something.
    expect_error(
        |t| t.replace("node = \"FC\"", "node = \"AVIONICS\""),
        &at("node = \"FC\""),
        "no message of the DBC is sent by `AVIONICS`",
    );
}

#[test]
fn an_unbound_signal_without_a_start_value_is_refused() {
    // A signal the binding leaves unbound in a message the twin sends, with no start
    // value: the encoder would not know what to send.
    let dbc = DBC.replace(
        " SG_ MSN_BurnAttitude : 48|2@1+ (1,0) [0|3] \"\" FC\n",
        " SG_ MSN_BurnAttitude : 48|2@1+ (1,0) [0|3] \"\" FC\n SG_ MSN_Spare : 50|2@1+ (1,0) [0|3] \"\" FC\n",
    );
    assert_ne!(dbc, DBC);
    let db = CanDb::from_dbc("spare.dbc", &dbc).expect("DBC loads");
    let e = Binding::from_toml(&Source::new("b.toml", BINDING), &db)
        .expect_err("must be refused")
        .to_string();
    let line = line_of(BINDING, "ignition_time = ");
    assert!(e.starts_with(&format!("b.toml:{line}:")), "{e}");
    assert!(
        e.contains("message `MSN_Deorbit` has signal `MSN_Spare`, which the binding does not bind"),
        "{e}"
    );
}
