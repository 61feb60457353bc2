//! The runner in lockstep with the reference flight computer as a separate process.

use capsule_icd::can::CanDb;
use capsule_runner::devices::Devices;
use capsule_runner::record::{EndReason, RunRecord, TimingBudget};
use capsule_runner::session::{BenchLinks, Clock, RunConfig, RunError, run};
use capsule_runner::stop::Stop;
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

fn twin_and_devices(seed: u64) -> (Twin, Devices) {
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
    let devices = Devices::new(
        capsule_icd::Icd::shipped().expect("icd").binding,
        &veh.sensors,
        seed,
    );
    let twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    (twin, devices)
}

fn config(max_time_s: f64, clock: Clock) -> RunConfig {
    let fc = fc_binary().display().to_string();
    RunConfig {
        fc_command: Some(vec![
            fc,
            "--can".into(),
            "{can}".into(),
            "--imu".into(),
            "{imu}".into(),
            "--gnss".into(),
            "{gnss}".into(),
            "--clock".into(),
            clock.name().into(),
        ]),
        fc_can: Default::default(),
        ready_messages: vec!["FC_Ident".into(), "FC_Status".into()],
        links: BenchLinks::default(),
        clock,
        cycle_steps: 10,
        max_time_s,
        after_landing_s: 5.0,
        ack_timeout: Duration::from_secs(10),
        join_timeout: Duration::from_secs(20),
        fc_output_dir: None,
        handover_mode: 3,
        mission: Default::default(),
        separation: None,
        snapshot_every_s: 1.0,
        injections: vec![],
        fault_seed: 7,
        stop: Stop::new(),
        progress_ms: None,
        tap: None,
        view: None,
        pace: None,
        rt: Default::default(),
        budget_source: String::new(),
    }
}

async fn nominal(max_time_s: f64) -> RunRecord {
    let (twin, devices) = twin_and_devices(11);
    let cfg = config(max_time_s, Clock::Lockstep);
    run(&cfg, db(), twin, devices).await.expect("run completes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockstep_runs_are_identical_and_the_fc_reports_at_its_rate() {
    let a = nominal(60.0).await;
    let b = nominal(60.0).await;
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
    use capsule_runner::devices::DeviceEvent;
    // Channels: indices in capsule_icd::binding::PYRO_CHANNELS.
    let (drogue_primary, main_primary, drogue_release) = (0u8, 2u8, 4u8);
    let r = nominal(2_000.0).await;
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
        .find(|(_, ch)| *ch == drogue_primary)
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
        .find(|(_, ch)| *ch == main_primary)
        .expect("main fired");
    assert!(
        fired
            .iter()
            .any(|(t, ch)| *ch == drogue_release && (*t - main.0).abs() < 1e-9),
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

/// A real-time run against the flight computer in its own process: simulation time
/// follows the wall clock, the loop reports its timing on every step, the FC's status
/// arrives at its own 10 Hz (counted on wire timestamps), and the budget is judged.
/// Nothing here depends on the machine's speed: the figures are checked for
/// consistency, and the budget verdict is checked with limits no machine can break or
/// keep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_run_reports_its_timing_and_judges_the_budget() {
    let (twin, devices) = twin_and_devices(5);
    let impossible = TimingBudget {
        max_lateness_p99_us: 1e9,
        max_lateness_us: 0.0,
        max_overruns: u64::MAX,
        max_command_latency_p99_us: 1e9,
    };
    let cfg = config(4.0, Clock::Realtime(impossible));
    let wall = std::time::Instant::now();
    let r = run(&cfg, db(), twin, devices).await.expect("run completes");
    let wall_s = wall.elapsed().as_secs_f64();
    assert_eq!(r.clock, "realtime");
    assert_eq!(r.end, EndReason::MaxTime);
    assert!(
        wall_s >= 4.0,
        "4 s of simulation took {wall_s:.2} s of wall time: not paced"
    );
    let t = r
        .timing
        .as_ref()
        .expect("a real-time run has a timing report");
    assert_eq!(t.period_us, 1000.0);
    assert_eq!(t.lateness.count, (r.t_end_s * 1000.0).round() as u64);
    assert!(t.lateness.p50_us <= t.lateness.p99_us && t.lateness.p99_us <= t.lateness.max_us);
    assert!(t.overruns <= t.lateness.count);
    // Lateness is never exactly zero nanoseconds, so a zero limit on the worst step
    // must be reported broken, by name.
    assert!(!t.met(), "{t:?}");
    assert!(
        t.violations.iter().any(|v| v.contains("step lateness max")),
        "{:?}",
        t.violations
    );
    // The FC cycles on its own clock: FC_Status at 10 Hz over the run, by wire time.
    let status_id = db().by_name("FC_Status").expect("FC_Status").id;
    let times: Vec<f64> = r
        .frames
        .iter()
        .filter(|f| f.from_fc && f.frame.id == status_id)
        .map(|f| f.t_s)
        .collect();
    assert!(
        (32..=48).contains(&times.len()),
        "FC_Status x{} in {} s",
        times.len(),
        r.t_end_s
    );
    assert!(
        times.windows(2).all(|w| w[1] >= w[0]),
        "wire times in order"
    );
    // The IMU streamed at 1 kHz in real time.
    assert_eq!(r.serial_bytes.0, (r.t_end_s * 1000.0).round() as u64 * 40);
    // With a budget no loop can break, the same figures pass.
    let lenient = capsule_runner::record::TimingReport::new(
        t.period_us,
        t.lateness,
        t.overruns,
        t.command_latency,
        TimingBudget {
            max_lateness_p99_us: 1e12,
            max_lateness_us: 1e12,
            max_overruns: u64::MAX,
            max_command_latency_p99_us: 1e12,
        },
    );
    assert!(lenient.met());
}

/// A Ctrl-C (the stop flag) ends a lockstep run early: the record is marked
/// interrupted and the emulated actuators were commanded safe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_request_ends_the_run_marked_interrupted_with_actuators_safe() {
    let (twin, devices) = twin_and_devices(3);
    let cfg = config(900.0, Clock::Lockstep);
    let stop = cfg.stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.request();
    });
    let r = run(&cfg, db(), twin, devices).await.expect("run ends");
    assert_eq!(r.end, EndReason::Interrupted);
    assert!(r.t_end_s < 900.0);
    assert!(
        r.named_events.iter().any(|(_, n)| n == "safed"),
        "{:?}",
        r.named_events
    );
}

/// Avionics that never talk (a hardware bench with nothing connected): the real-time
/// run ends with an error naming the link, after the silence timeout, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_avionics_on_a_real_time_bench_are_named_not_waited_for() {
    let (twin, devices) = twin_and_devices(3);
    let dir = std::env::temp_dir().join(format!("runner-{}-silent", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("bench.sock").display().to_string();
    let _bus = capsule_links::vbus::VirtualBus::bind(&sock, 500_000)
        .await
        .expect("bus");
    let mut cfg = config(60.0, Clock::Realtime(TimingBudget::default()));
    cfg.fc_command = None;
    cfg.links.can =
        Some(capsule_links::address::Address::parse(&format!("vbus:{sock}")).expect("address"));
    cfg.ack_timeout = Duration::from_millis(500);
    cfg.join_timeout = Duration::from_secs(1);
    // Waiting for a readiness signal: bounded by the join time, naming link and signal.
    let wall = std::time::Instant::now();
    let e = run(&cfg, db(), twin, devices)
        .await
        .expect_err("no avionics");
    assert!(wall.elapsed() < Duration::from_secs(20));
    assert!(
        matches!(&e.error, RunError::NotReady { link, .. } if link == "can"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("no FC_Ident or FC_Status on link `can` within 1s"),
        "{e}"
    );
    // Without one: the silence timeout names the link.
    cfg.ready_messages.clear();
    let (twin, devices) = twin_and_devices(3);
    let wall = std::time::Instant::now();
    let e = run(&cfg, db(), twin, devices)
        .await
        .expect_err("no avionics");
    assert!(wall.elapsed() < Duration::from_secs(20));
    assert!(
        matches!(&e.error, RunError::FcSilent { link, .. } if link == "can"),
        "{e}"
    );
    assert!(e.to_string().contains("silent on link `can`"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
