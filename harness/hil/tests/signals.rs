//! SIGINT (to `hil` alone and to its process group), a second SIGINT, SIGTERM and
//! SIGHUP each end a library run within a few seconds, with the JSON and JUnit results
//! written and marked incomplete, the scenarios not run listed as skipped, and no
//! flight computer left behind.
mod common;
use std::time::{Duration, Instant};

use common::{alive, children_of};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Where a signal goes.
#[derive(Debug, Clone, Copy)]
enum To {
    /// `hil` alone.
    Hil(Signal),
    /// `hil`'s process group (as a terminal sends Ctrl-C).
    Group(Signal),
}

/// Starts a library run, waits until its first flight computer is up, sends the
/// signals, and checks what is left.
fn stop_with(signals: &[To], own_group: bool) {
    let d = common::test_dir("signals");
    let (json, junit, out) = (
        d.path().join("r.json"),
        d.path().join("r.xml"),
        d.path().join("runs"),
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hil"));
    cmd.args([
        "run",
        "scenarios",
        "--json",
        json.to_str().expect("utf8"),
        "--junit",
        junit.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        // One run at a time: the rest of the library is not started (two at a time,
        // both stop: tests/cli.rs).
        "--jobs",
        "1",
    ])
    .current_dir(common::root())
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    if own_group {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let child = cmd.spawn().expect("hil starts");
    let pid = child.id();
    // Readiness: the first scenario's flight computer is running (and a moment for it
    // to join the bus and fly).
    let deadline = Instant::now() + Duration::from_secs(30);
    let fcs = loop {
        let c = children_of(pid);
        if !c.is_empty() {
            break c;
        }
        assert!(Instant::now() < deadline, "no flight computer started");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    let p = Pid::from_raw(i32::try_from(pid).expect("pid"));
    for s in signals {
        match *s {
            To::Hil(sig) => kill(p, sig).expect("kill"),
            To::Group(sig) => killpg(p, sig).expect("killpg"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let f = common::wait_at_most(child, Duration::from_secs(30));
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} to stop after {signals:?}"
    );
    assert_eq!(
        f.code,
        Some(2),
        "{signals:?}\nstdout: {}\nstderr: {}",
        f.stdout,
        f.stderr
    );
    assert!(
        f.stdout
            .contains("INCOMPLETE: stopped by a signal after 1 of 28 scenarios"),
        "{}",
        f.stdout
    );
    assert!(
        !f.stdout.contains("flight computer exited"),
        "the FC was killed behind the harness's back: {}",
        f.stdout
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(v["complete"], false);
    let scns = v["scenarios"].as_array().expect("list");
    assert_eq!(scns.len(), 28, "every scenario is listed");
    let first = &scns[0];
    assert!(
        first["result"]["verdict"] == "Incomplete" || first["incomplete"] == true,
        "{first}"
    );
    assert!(scns[1..].iter().all(|s| s["skipped"].is_string()), "{v}");
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains("<testsuites") && xml.contains("<skipped"),
        "{xml}"
    );
    // The stopped run's evidence bundle is finished, intact, and says incomplete.
    let bundles: Vec<_> = std::fs::read_dir(&out)
        .expect("runs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(bundles[0].join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(m["status"], "incomplete", "{m}");
    let v = std::process::Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["verify", bundles[0].to_str().expect("utf8")])
        .output()
        .expect("verify");
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    for p in fcs {
        assert!(
            !alive(p),
            "flight computer {p} outlived hil after {signals:?}"
        );
    }
}

#[test]
fn sigint_to_hil_alone() {
    stop_with(&[To::Hil(Signal::SIGINT)], false);
}

#[test]
fn sigint_to_the_process_group_as_a_terminal_sends_it() {
    stop_with(&[To::Group(Signal::SIGINT)], true);
}

#[test]
fn a_second_sigint_forces_the_stop() {
    stop_with(&[To::Hil(Signal::SIGINT), To::Hil(Signal::SIGINT)], false);
}

#[test]
fn sigterm_as_a_ci_runner_sends_on_timeout() {
    stop_with(&[To::Hil(Signal::SIGTERM)], false);
}

#[test]
fn sighup_as_a_closed_terminal_sends() {
    stop_with(&[To::Hil(Signal::SIGHUP)], false);
}
