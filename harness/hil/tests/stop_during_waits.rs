//! Ctrl-C while the harness waits for a flight computer to join the bus, or for it to
//! acknowledge a tick, takes effect at once (not when the 20 s or 10 s wait ends), and
//! the scenario is reported INCOMPLETE (not ERROR), with no process left.
mod common;
use std::time::{Duration, Instant};

fn interrupt_while(mode: &str, join_s: f64, ack_s: f64) {
    let d = common::test_dir(&format!("wait-{mode}"));
    let scn = common::short_scenario(d.path(), "short.toml", 60.0);
    let bench = common::rogue_bench(d.path(), mode, "lockstep", &[]);
    let text = std::fs::read_to_string(&bench)
        .expect("bench")
        .replace(
            "join_timeout_s = 5.0",
            &format!("join_timeout_s = {join_s}"),
        )
        .replace("ack_timeout_s = 2.0", &format!("ack_timeout_s = {ack_s}"));
    std::fs::write(&bench, text).expect("bench");
    let json = d.path().join("r.json");
    let child = common::spawn_hil(&[
        "run",
        scn.to_str().expect("utf8"),
        "--bench",
        bench.to_str().expect("utf8"),
        "--json",
        json.to_str().expect("utf8"),
        "--out",
        d.path().join("runs").to_str().expect("utf8"),
    ]);
    let pid = child.id();
    // Readiness: the flight computer (a child of hil) is running.
    let deadline = Instant::now() + Duration::from_secs(20);
    let needle = format!("rogue-fc {mode}");
    while common::processes_with(&needle).is_empty() {
        assert!(Instant::now() < deadline, "the rogue FC never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("kill");
    let f = common::wait_at_most(child, Duration::from_secs(30));
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(f.code, Some(2), "{}{}", f.stdout, f.stderr);
    assert!(f.stdout.starts_with("INCOMPLETE SCN-001"), "{}", f.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    assert_eq!(v["complete"], false, "{v}");
    // An interrupted run's expectations are not judged (neither passed nor failed).
    let exps = v["scenarios"][0]["result"]["expectations"]
        .as_array()
        .expect("expectations");
    assert!(
        !exps.is_empty() && exps.iter().all(|e| e["judged"] == false),
        "{v}"
    );
    assert!(common::processes_with(d.path().to_str().expect("utf8")).is_empty());
}

#[test]
fn ctrl_c_during_the_join_wait_is_incomplete_at_once() {
    interrupt_while("never-joins", 60.0, 10.0);
}

#[test]
fn ctrl_c_during_the_ack_wait_is_incomplete_at_once() {
    interrupt_while("ignores-ticks", 20.0, 60.0);
}
