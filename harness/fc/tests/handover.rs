//! The FC in lockstep with IMU data on a pty and the state handover on the virtual bus:
//! SIM_Sync keeps serial data and ticks in order, the handover initialises navigation
//! and the mode, and FC_Status reports the FC's own altitude estimate, which must
//! track the twin's truth.

use capsule_icd::can::{CanDb, CanFrame};
use capsule_icd::imu::ImuDatagram;
use capsule_links::vbus::{BusTiming, VirtualBus};
use capsule_links::{Link, Packet, serial, vbus};
use std::time::Duration;
use twin_core::config::Source;
use twin_core::initial::EntryState;
use twin_core::sensors::{ImuModel, ImuSpec};
use twin_core::twin::{ModelOptions, Twin};
use twin_core::vehicle::VehicleSpec;

fn db() -> CanDb {
    CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("dbc")
}

async fn next_frame(l: &mut Link) -> CanFrame {
    loop {
        let r = tokio::time::timeout(Duration::from_secs(10), l.recv())
            .await
            .expect("FC answers within 10 s")
            .expect("bus up");
        if let Packet::Frame(f) = r.packet {
            return f;
        }
    }
}

/// A near-ideal IMU: no bias, scale or misalignment errors, and white noise only
/// (sigma per sample 10 LSB on the wire) so that, as on any real sensor, no channel
/// repeats (the FC's IMU FDIR takes a channel that repeats for 100 datagrams as stuck).
fn ideal_imu() -> ImuSpec {
    let mut s = ImuSpec::default();
    // sigma = density * sqrt(1 kHz).
    s.gyro.noise_density = 10.0 * capsule_icd::imu::RATE_LSB_RAD_S / 1000f64.sqrt();
    s.accel.noise_density = 10.0 * capsule_icd::imu::ACCEL_LSB_M_S2 / 1000f64.sqrt();
    for a in [&mut s.gyro, &mut s.accel] {
        a.turn_on_bias_sigma = 0.0;
        a.bias_instability = 0.0;
        a.scale_factor_ppm = 0.0;
        a.misalignment_rad = 0.0;
        a.resolution = 0.0;
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handover_then_lockstep_imu_gives_an_altitude_that_tracks_truth() {
    let db = db();
    let dir = std::env::temp_dir().join(format!("fc-handover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("bus.sock").display().to_string();
    let bus = VirtualBus::bind_with(&sock, 500_000, BusTiming::Lockstep)
        .await
        .expect("bus");
    let mut can = vbus::connect("harness", &sock).await.expect("connect");
    let (imu_link, imu_slave) = serial::pty_pair("imu").expect("pty");
    let mut fc = tokio::process::Command::new(env!("CARGO_BIN_EXE_capsule-fc"))
        .args([
            "--can",
            &format!("vbus:{sock}"),
            "--imu",
            &format!("serial:{imu_slave}@921600"),
            "--clock",
            "lockstep",
        ])
        .kill_on_drop(true)
        .spawn()
        .expect("spawn FC");
    assert!(
        bus.wait_for_nodes(2, Duration::from_secs(20)).await,
        "FC did not connect"
    );

    // Truth.
    let text = include_str!("../../../fixtures/vehicles/capsule-srcv.toml");
    let veh = VehicleSpec::from_toml(&Source::new("capsule-srcv.toml", text)).expect("vehicle");
    let opts = ModelOptions::default();
    let e = EntryState {
        altitude_m: 120_000.0,
        speed_m_s: 7_400.0,
        flight_path_angle_rad: -1.6f64.to_radians(),
        heading_rad: 45f64.to_radians(),
        latitude_rad: 20f64.to_radians(),
        longitude_rad: -160f64.to_radians(),
        relative_to_atmosphere: true,
        bank_rad: 60f64.to_radians(),
    };
    let init = e.to_body_state(&opts.planet, &veh);
    let mut twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    let mut imu = ImuModel::new(&ideal_imu(), 1);

    // Handover: the state at t = 0, mode ENTRY.
    let s = *twin.state();
    let (p, v, q) = (s.position_eci_m, s.velocity_eci_m_s, s.eci_from_body);
    for (name, vals) in [
        ("HV_PosXY", vec![("HV_PosX", p.x), ("HV_PosY", p.y)]),
        ("HV_PosZVelX", vec![("HV_PosZ", p.z), ("HV_VelX", v.x)]),
        ("HV_VelYZ", vec![("HV_VelY", v.y), ("HV_VelZ", v.z)]),
        (
            "HV_Attitude",
            vec![
                ("HV_QuatW", q.w),
                ("HV_QuatX", q.x),
                ("HV_QuatY", q.y),
                ("HV_QuatZ", q.z),
            ],
        ),
        (
            "HV_StateTime",
            vec![("HV_TimeUs", 0.0), ("HV_Mode", 3.0), ("HV_Seq", 1.0)],
        ),
    ] {
        can.send(Packet::Frame(
            db.encode_zero_filled(name, &vals).expect(name),
        ))
        .await
        .expect("handover");
    }

    let (tick, sync, ack, status) = ["SIM_Tick", "SIM_Sync", "SIM_Ack", "FC_Status"]
        .map(|n| db.by_name(n).expect(n).clone())
        .into();
    let mut imu_bytes = 0u64;
    let mut counter = 0u16;
    let mut last_status = None;
    let ticks = 3000u64; // 30 s of simulated flight
    for k in 0..=ticks {
        // IMU data for this 10 ms frame, on the serial line.
        let mut bytes = Vec::new();
        loop {
            let truth = twin.sensor_truth();
            if let Some(smp) = imu.poll(&truth) {
                let d = ImuDatagram {
                    counter,
                    status: 0,
                    time_us: (truth.t_s * 1e6).round() as u32,
                    rate_rad_s: smp.rate_rad_s,
                    specific_force_m_s2: smp.specific_force_m_s2,
                    temperature_c: 30.0,
                };
                counter = counter.wrapping_add(1);
                bytes.extend_from_slice(&d.encode());
            }
            if twin.time_s() + 1e-9 >= k as f64 * 0.01 {
                break;
            }
            twin.step();
        }
        imu_bytes += bytes.len() as u64;
        if !bytes.is_empty() {
            imu_link.send(Packet::Bytes(bytes)).await.expect("imu");
        }
        can.send(Packet::Frame(
            sync.encode(&[("SIM_ImuBytes", imu_bytes as f64), ("SIM_GnssBytes", 0.0)])
                .expect("sync"),
        ))
        .await
        .expect("sync");
        can.send(Packet::Frame(
            tick.encode(&[
                ("SIM_TimeUs", (k * 10_000) as f64),
                ("SIM_Step", (k % 65_536) as f64),
            ])
            .expect("tick"),
        ))
        .await
        .expect("tick");
        loop {
            let f = next_frame(&mut can).await;
            if f.id == status.id {
                last_status = Some((
                    twin.time_s(),
                    twin.environment().altitude_m,
                    status
                        .decode(&f)
                        .expect("status")
                        .iter()
                        .map(|(n, v)| (n.to_string(), *v))
                        .collect::<Vec<_>>(),
                ));
            }
            if f.id == ack.id {
                break;
            }
        }
    }
    let (t, alt_true, st) = last_status.expect("status frames");
    let get = |n: &str| st.iter().find(|(k, _)| k == n).map(|(_, v)| *v).expect(n);
    assert!((t - 30.0).abs() < 1e-6, "last status at {t}");
    assert_eq!(get("FC_Mode"), 3.0, "mode from the handover");
    assert_eq!(get("FC_NavValid"), 1.0);
    assert_eq!(get("FC_ImuValid"), 1.0);
    let alt_fc = get("FC_EstAltitude");
    assert!(
        (alt_fc - alt_true).abs() < 2.0,
        "FC altitude {alt_fc} m vs truth {alt_true} m"
    );
    assert!(alt_true < 115_000.0, "the capsule descended ({alt_true} m)");

    drop(can);
    drop(imu_link);
    drop(bus);
    let status = tokio::time::timeout(Duration::from_secs(10), fc.wait())
        .await
        .expect("FC exits")
        .expect("status");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
