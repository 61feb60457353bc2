//! The device emulators through a power brown-out, driven directly (no flight
//! computer): which nodes stop, what they do on restart, and the pyro controller's
//! all-fire voltage.

use capsule_icd::can::{CanDb, CanFrame};
use capsule_runner::devices::{
    BUS_POWERED_NODES, DeviceEvent, Devices, NODE_UVLO_OFF_V, Outputs, PYRO_ALL_FIRE_V,
};

/// The shipped ICD's pyro arm key and drogue-primary bit (`Pyro_ArmKey`,
/// `Pyro_FireMask` bit 0); the drogue primary is channel 0 of the twin's channels.
const PYRO_ARM_KEY: u8 = 0xA5;
const DROGUE_PRIMARY_BIT: u8 = 1;
const DROGUE_PRIMARY: u8 = 0;
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

/// Under the drogue's altitude, subsonic (so that a fired drogue really opens).
fn twin_and_devices() -> (Twin, Devices) {
    let text = include_str!("../../../fixtures/vehicles/capsule-srcv.toml");
    let veh = VehicleSpec::from_toml(&Source::new("capsule-srcv.toml", text)).expect("vehicle");
    let opts = ModelOptions::default();
    let e = EntryState {
        altitude_m: 14_000.0,
        speed_m_s: 150.0,
        flight_path_angle_rad: -80f64.to_radians(),
        heading_rad: 0.0,
        latitude_rad: 20f64.to_radians(),
        longitude_rad: -160f64.to_radians(),
        relative_to_atmosphere: true,
        bank_rad: 0.0,
    };
    let init = e.to_body_state(&opts.planet, &veh);
    let devices = Devices::new(
        capsule_icd::Icd::shipped().expect("icd").binding,
        &veh.sensors,
        5,
    );
    let twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    (twin, devices)
}

/// Runs `seconds` of physics and devices; returns the CAN frames sent, with the
/// transmitting node's name.
fn run(twin: &mut Twin, devices: &mut Devices, seconds: f64) -> Vec<(String, CanFrame)> {
    let db = db();
    let mut sent = Vec::new();
    let steps = (seconds / twin.dt_s()).round() as u64;
    for _ in 0..steps {
        let mut out = Outputs::default();
        devices.actuate(twin);
        devices.step(twin, twin.dt_s(), &mut out).expect("encode");
        twin.step();
        for f in out.frames {
            let node = db
                .by_id(f.id)
                .map(|m| m.transmitter.to_lowercase())
                .unwrap_or_default();
            sent.push((node, f));
        }
    }
    sent
}

fn nodes(sent: &[(String, CanFrame)]) -> std::collections::BTreeSet<String> {
    sent.iter().map(|(n, _)| n.clone()).collect()
}

fn signal(db: &CanDb, f: &CanFrame, name: &str) -> f64 {
    let (_, v) = db.decode(f).expect("decodes");
    v.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, x)| *x)
        .expect("signal")
}

fn fire(db: &CanDb, mask: u8, counter: u8) -> CanFrame {
    db.encode_zero_filled(
        "Pyro_Command",
        &[
            ("Pyro_ArmKey", f64::from(PYRO_ARM_KEY)),
            ("Pyro_Arm", 1.0),
            ("Pyro_FireMask", f64::from(mask)),
            ("Pyro_CmdCounter", f64::from(counter)),
        ],
    )
    .expect("encode")
}

fn events(devices: &Devices) -> Vec<String> {
    devices.events.iter().map(|(_, e)| e.name()).collect()
}

#[test]
fn a_collapsed_bus_stops_the_bus_powered_nodes_and_they_restart_disarmed() {
    let db = db();
    let (mut twin, mut devices) = twin_and_devices();
    let before = run(&mut twin, &mut devices, 1.2);
    for node in BUS_POWERED_NODES.iter().chain(&["power", "beacon"]) {
        // The motor controller and the RCS driver report as `deorbit` and `rcs`.
        assert!(nodes(&before).contains(*node), "{node} sends before");
    }
    // Arm the pyro controller (no fire).
    let t = twin.time_s();
    assert!(devices.on_fc_frame(&fire(&db, 0, 1), &mut twin, t));

    // A roll valve commanded open just before the collapse...
    let jet = twin.thruster_index("roll_pos_a").expect("roll jet");
    let open = |counter: u8| {
        db.encode_zero_filled(
            "RCS_Command",
            &[
                ("RCS_ValveCmd", 1.0),
                ("RCS_CmdCounter", f64::from(counter)),
            ],
        )
        .expect("encode")
    };
    let t = twin.time_s();
    assert!(devices.on_fc_frame(&open(1), &mut twin, t));
    run(&mut twin, &mut devices, 0.002);
    assert!(twin.thruster_valve_open(jet));

    devices.set_brown_out(Some(15.0));
    // ...closes at once with its unpowered driver (well before the 0.1-s command
    // timeout), and a new command is not heard.
    run(&mut twin, &mut devices, 0.002);
    assert!(!twin.thruster_valve_open(jet));
    let t = twin.time_s();
    assert!(!devices.on_fc_frame(&open(2), &mut twin, t));
    assert!(!twin.thruster_valve_open(jet));
    let during = run(&mut twin, &mut devices, 1.2);
    assert_eq!(events(&devices), ["brown_out"]);
    let up = nodes(&during);
    for node in BUS_POWERED_NODES {
        assert!(!up.contains(node), "{node} is unpowered but sent");
    }
    // The power node measures the collapse; the beacon (own battery) keeps sending.
    assert!(up.contains("beacon"));
    let power: Vec<f64> = during
        .iter()
        .filter(|(n, _)| n == "power")
        .map(|(_, f)| signal(&db, f, "Power_BusVoltage"))
        .collect();
    assert!(power.len() >= 11, "{} Power_Status frames", power.len());
    assert!(power.iter().all(|v| (*v - 15.0).abs() < 0.006), "{power:?}");
    // An unpowered controller hears nothing: the drogue stays in its bag.
    let drogue = twin.parachute_index("drogue").expect("drogue");
    let t = twin.time_s();
    assert!(!devices.on_fc_frame(&fire(&db, DROGUE_PRIMARY_BIT, 2), &mut twin, t));
    assert!(twin.parachutes()[drogue].fired_at_s.is_none());
    assert!(!devices.pyro[0].fired);

    devices.set_brown_out(None);
    let after = run(&mut twin, &mut devices, 0.25);
    assert_eq!(events(&devices), ["brown_out", "bus_restored"]);
    let first_pyro = after
        .iter()
        .find(|(n, _)| n == "pyro")
        .map(|(_, f)| *f)
        .expect("the pyro controller is back");
    // Restarted: disarmed (the arming before the brown-out is gone), counter from 0.
    assert_eq!(signal(&db, &first_pyro, "Pyro_Armed"), 0.0);
    assert_eq!(signal(&db, &first_pyro, "Pyro_Counter"), 0.0);
    // A repeated counter is a new command to a restarted controller.
    let t = twin.time_s();
    assert!(devices.on_fc_frame(&fire(&db, DROGUE_PRIMARY_BIT, 2), &mut twin, t));
    assert!(devices.pyro[0].fired);
    assert!(twin.parachutes()[drogue].fired_at_s.is_some());
}

#[test]
fn a_sagging_bus_keeps_the_nodes_up_but_the_initiators_do_not_fire() {
    let db = db();
    let (mut twin, mut devices) = twin_and_devices();
    run(&mut twin, &mut devices, 0.5);
    let sag_v = 20.0;
    assert!(sag_v > NODE_UVLO_OFF_V && sag_v < PYRO_ALL_FIRE_V);
    devices.set_brown_out(Some(sag_v));
    let during = run(&mut twin, &mut devices, 1.0);
    assert!(events(&devices).is_empty(), "{:?}", events(&devices));
    for node in BUS_POWERED_NODES {
        assert!(
            nodes(&during).contains(node),
            "{node} still sends at {sag_v} V"
        );
    }
    let t = twin.time_s();
    assert!(devices.on_fc_frame(&fire(&db, DROGUE_PRIMARY_BIT, 1), &mut twin, t));
    assert!(matches!(
        devices.events.last(),
        Some((_, DeviceEvent::PyroNoFire { channel })) if *channel == DROGUE_PRIMARY
    ));
    // The initiator is intact: its continuity still reads, and it fires once the bus
    // is back.
    assert!(devices.pyro[0].continuity());
    devices.set_brown_out(None);
    run(&mut twin, &mut devices, 0.1);
    let t = twin.time_s();
    assert!(devices.on_fc_frame(&fire(&db, DROGUE_PRIMARY_BIT, 2), &mut twin, t));
    assert!(devices.pyro[0].fired);
}
