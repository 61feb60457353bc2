//! A flight computer from outside the project: the shipped Python example
//! (`examples/python-fc/fc.py`: python-can's `slcan` interface, pyserial, cantools)
//! flies the nominal scenario through the emulated SLCAN adapter on a pseudo-terminal and
//! passes every expectation (guidance included),
//! in lockstep and (cut short) in real time; start-up failures over SLCAN are named.
//!
//! Needs python3 with python-can, pyserial and cantools: required when
//! `HIL_REQUIRE_PEERS=1` (CI), else a missing one skips, saying so.
mod common;
use common::{first_error_line, root, run_rogue, short_scenario, test_dir};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn have_python_peers() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import can, serial, cantools"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("HIL_REQUIRE_PEERS").as_deref() != Ok("1"),
            "python3 with python-can, pyserial and cantools is required (see .ci/run)"
        );
        eprintln!("SKIPPED: python3 with python-can, pyserial and cantools not found");
    }
    ok
}

/// A bench that starts `command` with the CAN link over SLCAN and the given readiness
/// messages (a TOML list).
fn slcan_bench(dir: &Path, name: &str, clock: &str, command: &[&str], ready: &str) -> PathBuf {
    let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    common::command_bench(
        dir,
        name,
        clock,
        &command,
        &format!("can_transport = \"slcan\"\nready = {ready}"),
    )
}

fn fc_py() -> String {
    root()
        .join("examples/python-fc/fc.py")
        .display()
        .to_string()
}

fn dbc() -> String {
    root()
        .join("fixtures/icd/capsule.dbc")
        .display()
        .to_string()
}

fn expectations(v: &serde_json::Value) -> Vec<(String, bool)> {
    v["scenarios"][0]["result"]["expectations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["id"].as_str().unwrap_or("").to_string(),
                        e["passed"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_python_example_flies_the_nominal_scenario_through_an_slcan_pty() {
    if !have_python_peers() {
        return;
    }
    let d = test_dir("python-fc");
    let (f, v) = run_rogue(
        d.path(),
        &root().join("scenarios/nominal-entry.toml"),
        &root().join("fixtures/benches/python-fc-lockstep.toml"),
        Duration::from_secs(1800),
    );
    let got = expectations(&v);
    assert!(!got.is_empty(), "no result\n{}\n{}", f.stdout, f.stderr);
    // Every expectation of SCN-001, the guidance ones (peak deceleration under 4 g,
    // splashdown within 10 km of the target) among them: the scenario passes.
    let failed: Vec<&str> = got
        .iter()
        .filter(|(_, p)| !*p)
        .map(|(i, _)| i.as_str())
        .collect();
    assert!(
        failed.is_empty() && got.len() >= 14,
        "expectations not passed: {failed:?}\n{}\n{}\n{}",
        serde_json::to_string_pretty(&v["scenarios"][0]["result"]["expectations"])
            .unwrap_or_default(),
        f.stdout,
        f.stderr
    );
    for id in ["peak-g", "on-target", "mode-sequence", "beacon"] {
        assert!(got.iter().any(|(i, _)| i == id), "{id} was not judged");
    }
    assert_eq!(
        v["scenarios"][0]["result"]["verdict"], "Pass",
        "{}",
        f.stdout
    );
    // The whole run went over the emulated adapter: frames both ways on the `can` link.
    let can = &v["scenarios"][0]["result"]["links"]["links"];
    let can = can
        .as_array()
        .and_then(|a| a.iter().find(|l| l[0] == "can"))
        .map(|l| l[1].clone())
        .unwrap_or_default();
    assert!(
        can["rx_packets"].as_u64().unwrap_or(0) > 100_000
            && can["tx_packets"].as_u64().unwrap_or(0) > 100_000,
        "can link counters: {can}"
    );
    // Its own output says it ran in lockstep through python-can.
    let fc_err: String = walk(&d.path().join("runs"))
        .into_iter()
        .filter(|p| p.ends_with("fc.stderr.log"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(fc_err.contains("fc: up (lockstep)"), "{fc_err}");
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn in_real_time_the_scenario_starts_on_readiness_and_the_handover_is_taken() {
    if !have_python_peers() {
        return;
    }
    let d = test_dir("python-fc-rt");
    let scenario = short_scenario(d.path(), "short.toml", 6.0);
    let (py, dbc) = (fc_py(), dbc());
    let bench = slcan_bench(
        d.path(),
        "python-rt",
        "realtime",
        &[
            "python3",
            &py,
            "--dbc",
            &dbc,
            "--can",
            "{can_device}",
            "--imu",
            "{imu_device}",
            "--gnss",
            "{gnss_device}",
        ],
        r#"["FC_Ident"]"#,
    );
    let (f, v) = run_rogue(d.path(), &scenario, &bench, Duration::from_secs(120));
    let r = &v["scenarios"][0]["result"];
    assert!(
        r.is_object(),
        "no result: {}\n{}",
        first_error_line(&f.stdout),
        f.stderr
    );
    // The flight computer took the handover and reported ENTRY (FC_Event MODE_CHANGE,
    // which is what the mode-sequence check reads): its first mode, at once.
    let modes = expectations(&v)
        .into_iter()
        .find(|(i, _)| i == "mode-sequence")
        .expect("mode-sequence judged");
    let mode_text = r["expectations"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == "mode-sequence"))
        .map(|e| e["measured"].to_string())
        .unwrap_or_default();
    assert!(mode_text.contains("ENTRY"), "{mode_text} ({modes:?})");
    let heartbeat = expectations(&v)
        .into_iter()
        .find(|(i, _)| i == "heartbeat")
        .expect("heartbeat judged");
    assert!(heartbeat.1, "FC_Status at 10 Hz through the run: {r}");
    // What the flight computer said before it took the handover (altitude 0 while it
    // had none) is timed before its switch to ENTRY, never tied with it.
    let nav = expectations(&v)
        .into_iter()
        .find(|(i, _)| i == "nav-altitude-in-entry")
        .expect("nav judged");
    assert!(nav.1, "ENTRY altitudes within 2 km: {r}");
    assert!(r["t_end_s"].as_f64().unwrap_or(0.0) >= 5.9, "{r}");
}

#[test]
fn an_slcan_channel_opened_at_the_wrong_bit_rate_is_named() {
    if !have_python_peers() {
        return;
    }
    let d = test_dir("slcan-bitrate");
    let scenario = short_scenario(d.path(), "short.toml", 5.0);
    let script = "import can,sys,time\nb=can.Bus(interface='slcan',channel=sys.argv[1],bitrate=250000,sleep_after_open=0.05)\ntime.sleep(30)";
    let bench = slcan_bench(
        d.path(),
        "wrong-rate",
        "realtime",
        &["python3", "-c", script, "{can_device}"],
        "[]",
    );
    let (f, _) = run_rogue(d.path(), &scenario, &bench, Duration::from_secs(60));
    let line = first_error_line(&f.stdout);
    assert!(
        line.contains("250000 bit/s") && line.contains("500000 bit/s"),
        "{line}\n{}\n{}",
        f.stdout,
        f.stderr
    );
    assert_eq!(f.code, Some(2), "{}", f.stdout);
}

#[test]
fn a_flight_computer_that_never_opens_its_channel_or_never_says_it_is_ready_is_named() {
    if !have_python_peers() {
        return;
    }
    let d = test_dir("slcan-join");
    let scenario = short_scenario(d.path(), "short.toml", 5.0);
    // Opens the pty but never sends O.
    let never_open = slcan_bench(
        d.path(),
        "never-open",
        "realtime",
        &[
            "python3",
            "-c",
            "import serial,sys,time\ns=serial.Serial(sys.argv[1]);time.sleep(60)",
            "{can_device}",
        ],
        "[]",
    );
    let (f, _) = run_rogue(d.path(), &scenario, &never_open, Duration::from_secs(60));
    let line = first_error_line(&f.stdout);
    assert!(
        line.contains("never opened its SLCAN channel") && line.contains("5s"),
        "{line}\n{}",
        f.stderr
    );
    assert!(f.elapsed < Duration::from_secs(30), "{:?}", f.elapsed);
    // Opens the channel, sends nothing: no readiness signal.
    let d2 = test_dir("slcan-ready");
    let silent = slcan_bench(
        d2.path(),
        "silent",
        "realtime",
        &[
            "python3",
            "-c",
            "import can,sys,time\nb=can.Bus(interface='slcan',channel=sys.argv[1],bitrate=500000,sleep_after_open=0.05)\ntime.sleep(60)",
            "{can_device}",
        ],
        r#"["FC_Ident", "FC_Status"]"#,
    );
    let (f, _) = run_rogue(d2.path(), &scenario, &silent, Duration::from_secs(60));
    let line = first_error_line(&f.stdout);
    assert!(
        line.contains("not ready: no FC_Ident or FC_Status on link `can` within 5s"),
        "{line}\n{}",
        f.stderr
    );
    // Exits at once: named at once, with its status.
    let d3 = test_dir("slcan-exit");
    let exits = slcan_bench(
        d3.path(),
        "exits",
        "realtime",
        &["python3", "-c", "import sys; sys.exit(3)"],
        "[]",
    );
    let (f, _) = run_rogue(d3.path(), &scenario, &exits, Duration::from_secs(60));
    let line = first_error_line(&f.stdout);
    assert!(
        line.contains("exit status: 3") && line.contains("before it opened its SLCAN channel"),
        "{line}"
    );
    assert!(f.elapsed < Duration::from_secs(8), "{:?}", f.elapsed);
}

/// A flight computer deaf to the first handover (its software was not yet listening)
/// gets it again, and the sending stops once it reports the handed-over mode.
const DEAF_FC: &str = r#"
import can, cantools, serial, sys, threading, time
db = cantools.database.load_file(sys.argv[2])
def drain(path, baud):
    port = serial.Serial(path, baud, timeout=0.05)
    while True:
        port.read(4096)
for path, baud in ((sys.argv[3], 921600), (sys.argv[4], 115200)):
    threading.Thread(target=drain, args=(path, baud), daemon=True).start()
bus = can.Bus(interface="slcan", channel=sys.argv[1], bitrate=500000, sleep_after_open=0.05)
st, ev, hv, ident = (db.get_message_by_name(n) for n in ("FC_Status", "FC_Event", "HV_StateTime", "FC_Ident"))
def send(m, **k):
    bus.send(can.Message(arbitration_id=m.frame_id, is_extended_id=False, data=m.encode(k)))
inbox = can.BufferedReader()
can.Notifier(bus, [inbox], timeout=0.05)
send(ident, FC_SwMajor=9, FC_SwMinor=0, FC_SwPatch=0, FC_BuildHash=1)
mode, seen, t_next = 0, 0, time.monotonic()
while True:
    while (m := inbox.get_message(timeout=0)) is not None:
        if m.arbitration_id == hv.frame_id:
            v = hv.decode(m.data, decode_choices=False)
            seen += 1
            print("handover", int(v["HV_Seq"]), file=sys.stderr, flush=True)
            if seen == 2:
                send(ev, FC_EventCode=1, FC_EventModeFrom=0, FC_EventModeTo=int(v["HV_Mode"]), FC_EventDetail=0, FC_EventTime=0)
                mode = int(v["HV_Mode"])
    if time.monotonic() >= t_next:
        send(st, FC_Mode=mode, FC_SeqCounter=0, FC_FaultFlags=0, FC_EstAltitude=0, FC_EstVelocity=0,
             FC_NavValid=0, FC_GnssFix=0, FC_BaroValid=0, FC_ImuValid=0)
        t_next += 0.1
    time.sleep(0.005)
"#;

#[test]
fn the_handover_is_sent_again_until_the_flight_computer_reports_its_mode() {
    if !have_python_peers() {
        return;
    }
    let d = test_dir("handover-again");
    let scenario = short_scenario(d.path(), "short.toml", 4.0);
    let dbc = dbc();
    let bench = slcan_bench(
        d.path(),
        "deaf",
        "realtime",
        &[
            "python3",
            "-c",
            DEAF_FC,
            "{can_device}",
            &dbc,
            "{imu_device}",
            "{gnss_device}",
        ],
        r#"["FC_Ident"]"#,
    );
    let (f, v) = run_rogue(d.path(), &scenario, &bench, Duration::from_secs(60));
    let r = &v["scenarios"][0]["result"];
    assert!(r.is_object(), "{}\n{}", f.stdout, f.stderr);
    let err: String = walk(&d.path().join("runs"))
        .into_iter()
        .filter(|p| p.ends_with("fc.stderr.log"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    // Two sets, numbered 1 and 2; none after the flight computer reported ENTRY.
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("handover"))
            .collect::<Vec<_>>(),
        ["handover 1", "handover 2"],
        "{err}"
    );
    let modes = r["expectations"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == "mode-sequence"))
        .map(|e| e["measured"].to_string())
        .unwrap_or_default();
    assert!(modes.contains("ENTRY"), "{modes}");
}
