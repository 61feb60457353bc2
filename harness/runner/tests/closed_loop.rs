//! The runner in lockstep with the reference flight computer as a separate process.

use capsule_icd::can::CanDb;
use capsule_runner::devices::Devices;
use capsule_runner::lockstep::{EndReason, LockstepConfig, RunRecord, run};
use std::path::PathBuf;
use std::time::Duration;
use twin_core::config::Source;
use twin_core::initial::EntryState;
use twin_core::twin::{ModelOptions, Twin};
use twin_core::vehicle::VehicleSpec;

/// The `capsule-fc` binary of this workspace (built on demand).
fn fc_binary() -> PathBuf {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "capsule-fc",
            "--bin",
            "capsule-fc",
            "--locked",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("capsule-fc")
}

fn db() -> CanDb {
    CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("dbc")
}

async fn nominal(tag: &str, max_time_s: f64) -> RunRecord {
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
    let devices = Devices::new(db(), &veh.sensors, 11);
    let twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    let fc = fc_binary().display().to_string();
    let cfg = LockstepConfig {
        fc_command: vec![
            fc,
            "--can".into(),
            "{can}".into(),
            "--imu".into(),
            "{imu}".into(),
            "--gnss".into(),
            "{gnss}".into(),
            "--clock".into(),
            "lockstep".into(),
        ],
        cycle_steps: 10,
        max_time_s,
        after_landing_s: 5.0,
        ack_timeout: Duration::from_secs(10),
        workdir: std::env::temp_dir().join(format!("runner-{}-{tag}", std::process::id())),
        handover_mode: 3,
        snapshot_every_s: 1.0,
        injections: vec![],
        fault_seed: 7,
    };
    let r = run(&cfg, db(), twin, devices).await.expect("run completes");
    let _ = std::fs::remove_dir_all(&cfg.workdir);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockstep_runs_are_identical_and_the_fc_reports_at_its_rate() {
    let a = nominal("det-a", 60.0).await;
    let b = nominal("det-b", 60.0).await;
    assert_eq!(a.end, EndReason::MaxTime);
    if let Some(k) = (0..a.frames.len().min(b.frames.len())).find(|&k| a.frames[k] != b.frames[k]) {
        panic!(
            "two lockstep runs differ on the bus at record {k}: {:?} vs {:?} (previous {:?})",
            a.frames[k],
            b.frames[k],
            a.frames.get(k.wrapping_sub(1))
        );
    }
    assert_eq!(
        a.frames.len(),
        b.frames.len(),
        "two lockstep runs differ in length"
    );
    assert_eq!(a.serial_bytes, b.serial_bytes);
    let db = db();
    let status_id = db.by_name("FC_Status").expect("FC_Status").id;
    let n_status = a
        .frames
        .iter()
        .filter(|f| f.from_fc && f.frame.id == status_id)
        .count();
    let expect_status = (a.t_end_s * 10.0).floor() as usize + 1;
    assert_eq!(
        n_status, expect_status,
        "10 Hz over {} s, inclusive",
        a.t_end_s
    );
    // IMU at 1 kHz (40 bytes per datagram) and GNSS bursts at 10 Hz went out.
    assert_eq!(a.serial_bytes.0, (a.t_end_s * 1000.0).round() as u64 * 40);
    assert!(a.serial_bytes.1 > 600 * 4 * 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nominal_descent_drogue_main_splashdown_beacon() {
    use capsule_runner::devices::{DeviceEvent, pyro_bits};
    let r = nominal("descent", 2_000.0).await;
    let c = r.contact.expect("splashdown");
    assert_eq!(r.end, EndReason::Landed);
    let at = |t: f64| {
        r.snapshots
            .iter()
            .min_by(|a, b| (a.t_s - t).abs().total_cmp(&(b.t_s - t).abs()))
            .expect("snapshot")
    };
    let fired: Vec<(f64, u8)> = r
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            DeviceEvent::PyroFired { channel } => Some((*t, *channel)),
            _ => None,
        })
        .collect();
    let drogue = fired
        .iter()
        .find(|(_, ch)| *ch == pyro_bits::DROGUE_PRIMARY)
        .expect("drogue fired");
    let s = at(drogue.0);
    assert!(
        s.mach < 0.8 && (13_500.0..15_500.0).contains(&s.altitude_m),
        "drogue at Mach {:.2}, {:.0} m",
        s.mach,
        s.altitude_m
    );
    let main = fired
        .iter()
        .find(|(_, ch)| *ch == pyro_bits::MAIN_PRIMARY)
        .expect("main fired");
    assert!(
        fired
            .iter()
            .any(|(t, ch)| *ch == pyro_bits::DROGUE_RELEASE && (*t - main.0).abs() < 1e-9),
        "drogue released with the main"
    );
    let s = at(main.0);
    assert!(
        (2_800.0..3_200.0).contains(&s.altitude_m),
        "main at {:.0} m",
        s.altitude_m
    );
    assert!(c.speed_m_s < 9.0, "splashdown at {:.2} m/s", c.speed_m_s);
    let beacon = r
        .events
        .iter()
        .find(|(_, e)| *e == DeviceEvent::BeaconOn)
        .expect("beacon on");
    assert!(
        beacon.0 > c.t_s && beacon.0 < c.t_s + 5.0,
        "beacon at {:.2} s, splashdown {:.2} s",
        beacon.0,
        c.t_s
    );
    // The FC's mode sequence, from its own event messages.
    let db = db();
    let ev = db.by_name("FC_Event").expect("FC_Event");
    let modes: Vec<u8> = r
        .frames
        .iter()
        .filter(|f| f.from_fc && f.frame.id == ev.id)
        .filter_map(|f| ev.decode(&f.frame).ok())
        .map(|v| {
            v.iter()
                .find(|(n, _)| *n == "FC_EventModeTo")
                .map_or(99, |(_, x)| *x as u8)
        })
        .collect();
    assert_eq!(
        modes,
        vec![3, 4, 5, 6, 7],
        "ENTRY, DROGUE, MAIN, SPLASHDOWN, RECOVERY"
    );
    let (sd, sm) = (at(drogue.0), at(main.0));
    eprintln!(
        "drogue at {:.1} s, Mach {:.2}, {:.0} m; main at {:.1} s, {:.0} m; splashdown at {:.1} s, {:.2} m/s; beacon at {:.1} s",
        drogue.0, sd.mach, sd.altitude_m, main.0, sm.altitude_m, c.t_s, c.speed_m_s, beacon.0
    );
}
