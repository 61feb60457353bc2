//! The `hil` command end to end on the simulated bench.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hil(args: &[&str]) -> (i32, String, String) {
    let mut args: Vec<&str> = args.to_vec();
    // Run bundles go under target/, not the repository's runs/.
    if args.first() == Some(&"run") && !args.contains(&"--out") {
        args.extend(["--out", "target/hil-test-runs"]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(&args)
        .current_dir(root())
        .output()
        .expect("hil runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_scenario(name: &str, text: &str) -> PathBuf {
    // Inside scenarios/ so that the relative vehicle path resolves.
    let dir = root()
        .join("target")
        .join(format!("hil-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn nominal_text() -> String {
    std::fs::read_to_string(root().join("scenarios/nominal-entry.toml"))
        .expect("nominal scenario")
        .replace(
            "../fixtures/vehicles/capsule-srcv.toml",
            "../../fixtures/vehicles/capsule-srcv.toml",
        )
}

/// With the reference flight computer, every scenario of the library passes; the
/// verdict summaries (with the measured values) are snapshots that guard against
/// regressions in the physics, the devices, the flight software or the checks.
#[test]
fn the_library_passes_and_its_verdicts_match_the_snapshot() {
    let dir = root()
        .join("target")
        .join(format!("hil-lib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (junit, json) = (dir.join("junit.xml"), dir.join("results.json"));
    let runs = dir.join("runs");
    let (code, out, err) = hil(&[
        "run",
        "scenarios",
        "--junit",
        junit.to_str().expect("utf8"),
        "--json",
        json.to_str().expect("utf8"),
        "--out",
        runs.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let n = out.lines().filter(|l| l.starts_with("PASS ")).count();
    assert!(n >= 7, "{out}");
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("failures=\"0\" errors=\"0\""), "{xml}");
    assert!(
        xml.contains("name=\"landing-speed [REQ-LND-001]\""),
        "{xml}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(v["complete"], true);
    assert_eq!(v["clock"], "lockstep");
    let summary: Vec<serde_json::Value> = v["scenarios"]
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            let res = &r["result"];
            let exps: Vec<String> = res["expectations"]
                .as_array()
                .expect("list")
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {}",
                        if e["passed"].as_bool() == Some(true) {
                            "ok"
                        } else {
                            "FAIL"
                        },
                        e["id"].as_str().unwrap_or(""),
                        e["measured"].as_str().unwrap_or("")
                    )
                })
                .collect();
            serde_json::json!({ "id": res["id"], "verdict": res["verdict"], "expectations": exps })
        })
        .collect();
    insta::assert_json_snapshot!(summary);
    // Every bundle re-judges to the same verdicts and numbers from its data alone.
    let scenarios = v["scenarios"].as_array().expect("array").len();
    let (code, out, err) = hil(&["replay", runs.to_str().expect("utf8")]);
    assert_eq!(code, 0, "replay: {out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("SAME ")).count(),
        scenarios,
        "{out}"
    );
    // The nominal run re-flown on its recorded avionics commands: bit for bit.
    let scn001 = std::fs::read_dir(&runs)
        .expect("runs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("-SCN-001-"))
        })
        .expect("SCN-001 bundle");
    let (code, out, err) = hil(&["replay", "--reinject", scn001.to_str().expect("utf8")]);
    assert_eq!(code, 0, "reinject: {out}{err}");
    assert!(out.contains("trajectory identical"), "{out}");
    // The traceability matrix of the library run: every requirement passed in every
    // run that verifies it.
    let (code, out, err) = hil(&["report", runs.to_str().expect("utf8")]);
    assert_eq!(code, 0, "report: {out}{err}");
    let t: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(runs.join("traceability.json")).expect("traceability"),
    )
    .expect("json");
    assert_eq!(t["runs"].as_array().expect("runs").len(), scenarios);
    let reqs = t["requirements"].as_array().expect("requirements");
    assert!(reqs.len() >= 10, "{t}");
    for q in reqs {
        assert_eq!(q["passed"], q["runs"], "{q}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--jobs N` runs scenarios at once, each with its own flight computer and links,
/// and changes nothing in the results: the same JSON, the same lines in the same
/// order, as one at a time.
#[test]
fn parallel_jobs_give_the_results_of_one_at_a_time_in_the_same_order() {
    let dir = root()
        .join("target")
        .join(format!("hil-jobs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // Four short scenarios with different ids, seeds and lengths (the longest first,
    // so that later ones finish before it when run at once).
    let mut files = Vec::new();
    for (k, (seed, max_s)) in [(3, 40.0), (4, 15.0), (5, 25.0), (6, 10.0)]
        .iter()
        .enumerate()
    {
        let text = nominal_text()
            .replacen("id = \"SCN-001\"", &format!("id = \"PAR-{k}\""), 1)
            .replace("seed = 1\n", &format!("seed = {seed}\n"))
            .replace("max_time_s = 2000.0", &format!("max_time_s = {max_s}"));
        let p = temp_scenario(&format!("par-{k}.toml"), &text);
        files.push(p.to_str().expect("utf8").to_string());
    }
    let run = |jobs: &str| {
        let json = dir.join(format!("jobs-{jobs}.json"));
        let mut args = vec!["run", "--no-bundle", "--jobs", jobs, "--json"];
        let j = json.to_str().expect("utf8").to_string();
        args.push(&j);
        args.extend(files.iter().map(String::as_str));
        let (code, out, err) = hil(&args);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
                .expect("json");
        let verdicts: Vec<String> = out
            .lines()
            .filter(|l| !l.starts_with(' '))
            .map(|l| l.split("  (").next().unwrap_or(l).to_string())
            .collect();
        (code, v["scenarios"].clone(), verdicts, err)
    };
    let (c1, r1, v1, e1) = run("1");
    let (c3, r3, v3, e3) = run("3");
    assert_eq!(c1, 1, "cut short, the entry's expectations fail: {e1}");
    assert_eq!(c1, c3, "{e1}\n{e3}");
    assert_eq!(v1.len(), 4, "{v1:?}\n{e1}");
    assert!(v1[0].contains("PAR-0") && v1[3].contains("PAR-3"), "{v1:?}");
    assert_eq!(v1, v3, "the same verdict lines in the same order");
    assert_eq!(r1, r3, "the same results");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_expectation_is_named_with_its_measurement_and_exit_1() {
    let text = nominal_text().replace(
        "outcome = \"landing_speed_m_s\"\nmax = 9.0",
        "outcome = \"landing_speed_m_s\"\nmax = 5.0",
    );
    let p = temp_scenario("tight.toml", &text);
    let (code, out, _) = hil(&["run", p.to_str().expect("utf8")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL       SCN-001"), "{out}");
    assert!(out.contains("x landing-speed [REQ-LND-001]: expected landing_speed_m_s <= 5; measured landing_speed_m_s = 7.4"), "{out}");
}

#[test]
fn malformed_scenarios_are_rejected_before_anything_runs() {
    // (scenario text, text on the offending line, field, message)
    for (bad, marker, field, msg) in [
        (
            nominal_text().replace("signal = \"truth.mach\"", "signal = \"truth.machh\""),
            "truth.machh",
            "expect[1].check[0].signal",
            "unknown signal `truth.machh`",
        ),
        (
            nominal_text().replace("window_s = [0.0, 10.0]", "window_s = [10.0, 0.0]"),
            "window_s = [10.0, 0.0]",
            "expect[5].window_s",
            "impossible window [10, 0] s",
        ),
        (
            nominal_text().replace(
                "requirement = \"REQ-LND-001\"",
                "requirement = \"REQ-LND-009\"",
            ),
            "REQ-LND-009",
            "expect[4].requirement",
            "`REQ-LND-009` is not among scenario.requirements",
        ),
        (
            nominal_text().replace(
                "at = \"pyro_fired:drogue_primary\"",
                "at = \"pyro_fired:drogue\"",
            ),
            "pyro_fired:drogue\"",
            "expect[1].at",
            "`pyro_fired` needs a channel",
        ),
        (
            nominal_text().replace("max_time_s = 2000.0", "max_time_s = \"long\""),
            "max_time_s = \"long\"",
            "run.max_time_s",
            "expected f64",
        ),
        (
            nominal_text().replace("phase = \"entry\"", "phase = \"descent\""),
            "entry = {",
            "initial.entry",
            "phase `descent` does not take `entry`",
        ),
        (
            nominal_text().replace("seed = 1\n", "seed = 1\ndrogue_fired_s_before = 3.0\n"),
            "drogue_fired_s_before",
            "initial.drogue_fired_s_before",
            "phase `entry` does not take `drogue_fired_s_before`",
        ),
        (
            nominal_text().replace("[run]", "[run]\nclock = \"fast\""),
            "clock = \"fast\"",
            "run.clock",
            "unknown field `clock`",
        ),
    ] {
        let line = bad
            .lines()
            .position(|l| l.contains(marker))
            .expect("marker line")
            + 1;
        let p = temp_scenario("bad.toml", &bad);
        let start = std::time::Instant::now();
        let (code, out, err) = hil(&["run", p.to_str().expect("utf8")]);
        assert_eq!(code, 2, "{field}: stdout {out} stderr {err}");
        assert!(out.is_empty(), "nothing ran: {out}");
        assert!(err.contains(&format!("bad.toml:{line}:")), "{field}: {err}");
        assert!(err.contains(&format!("field `{field}`")), "{field}: {err}");
        assert!(err.contains(msg), "{field}: {err}");
        assert!(start.elapsed().as_secs() < 10, "validation is immediate");
    }
}

#[test]
fn malformed_injections_are_rejected_before_anything_runs() {
    let base = std::fs::read_to_string(root().join("scenarios/drogue-primary-open.toml"))
        .expect("scenario")
        .replace(
            "../fixtures/vehicles/capsule-srcv.toml",
            "../../fixtures/vehicles/capsule-srcv.toml",
        );
    for (bad, marker, field, msg) in [
        (
            base.replace(
                "channel = \"drogue_primary\"",
                "channel = \"drogue_primery\"",
            ),
            "drogue_primery",
            "inject[0].fault.channel",
            "unknown pyro channel `drogue_primery`",
        ),
        (
            base.replace("at_s = 0.0", "at_s = 0.0\nwhen = \"splashdown\""),
            "[[inject]]",
            "inject[0]",
            "expected exactly one start",
        ),
        (
            base.replace("kind = \"pyro_open_circuit\"", "kind = \"pyro_melts\""),
            "pyro_melts",
            "inject[0].fault.kind",
            "unknown variant `pyro_melts`",
        ),
    ] {
        let line = bad
            .lines()
            .position(|l| l.contains(marker))
            .expect("marker line")
            + 1;
        let p = temp_scenario("badinject.toml", &bad);
        let (code, out, err) = hil(&["run", p.to_str().expect("utf8")]);
        assert_eq!(code, 2, "{field}: {out} {err}");
        assert!(out.is_empty());
        assert!(
            err.contains(&format!("badinject.toml:{line}:")),
            "{field}: {err}"
        );
        assert!(err.contains(&format!("field `{field}`")), "{field}: {err}");
        assert!(err.contains(msg), "{field}: {err}");
    }
}

#[test]
fn check_and_list_read_the_library() {
    let (code, out, err) = hil(&["check", "scenarios"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok     SCN-001"), "{out}");
    let (code, out, _) = hil(&["list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("SCN-001") && out.contains("REQ-SEQ-010"),
        "{out}"
    );
}

/// The scenario file whose `[scenario] id` is `id`.
fn scenario_file(id: &str) -> String {
    let dir = root().join("scenarios");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&dir).expect("scenarios/") {
        let p = e.expect("entry").path();
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        if text.contains(&format!("id = \"{id}\"")) {
            found.push(format!(
                "scenarios/{}",
                p.file_name().expect("name").to_string_lossy()
            ));
        }
    }
    assert_eq!(found.len(), 1, "one file of {id}: {found:?}");
    found.remove(0)
}

/// Every seeded defect of the reference flight computer is caught by the expectation
/// that guards the requirement the defect violates, in the scenario named for it (the
/// whole defect x scenario matrix of the README is `hil run scenarios --defect NAME`
/// per defect; too long for every CI run). Two runs at a time.
#[test]
fn every_seeded_defect_is_caught_by_the_named_expectation() {
    let cases = [
        ("late-drogue", "SCN-001", "drogue-subsonic"),
        ("main-before-drogue", "SCN-001", "main-after-drogue"),
        ("beacon-never-activated", "SCN-001", "beacon"),
        ("heartbeat-stops-after-mode-change", "SCN-001", "heartbeat"),
        ("no-backup-pyro", "SCN-002", "drogue-via-backup"),
        ("ignores-imu-fault", "SCN-015", "beacon"),
        ("wrong-bank-sign", "SCN-001", "on-target"),
        ("gnss-jump-accepted", "SCN-023", "jump-reported"),
        ("deorbit-burn-too-long", "SCN-021", "burn-delta-v"),
    ];
    let listed = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["__fc", "--list-defects"])
        .output()
        .expect("runs");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        cases.iter().map(|c| c.0).collect::<Vec<_>>(),
        "every defect has a case here"
    );
    let outputs: Vec<(i32, String, String)> = std::thread::scope(|s| {
        let halves: Vec<_> = [0usize, 1]
            .iter()
            .map(|&half| {
                s.spawn(move || {
                    cases
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| k % 2 == half)
                        .map(|(k, (defect, scenario, _))| {
                            let file = scenario_file(scenario);
                            (k, hil(&["run", &file, "--no-bundle", "--defect", defect]))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = halves
            .into_iter()
            .flat_map(|h| h.join().expect("runs"))
            .collect();
        all.sort_by_key(|(k, _)| *k);
        all.into_iter().map(|(_, o)| o).collect()
    });
    for (k, (code, out, err)) in outputs.into_iter().enumerate() {
        let (defect, scenario, expectation) = cases[k];
        assert_eq!(code, 1, "{defect} not caught: {out} {err}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("FAIL") && l.contains(scenario)),
            "{defect}: {scenario} does not fail:\n{out}"
        );
        // The named expectation fails in the named scenario.
        let block: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.contains(scenario))
            .skip(1)
            .take_while(|l| l.trim_start().starts_with("x "))
            .collect();
        assert!(
            block
                .iter()
                .any(|l| l.contains(&format!("x {expectation} ["))),
            "{defect}: expected `{expectation}` to fail in {scenario}:\n{out}"
        );
    }
}

const REALTIME_SCENARIO: &str = r#"[scenario]
id = "RT-001"
title = "Real-time smoke: three seconds from the entry interface"
requirements = ["REQ-TLM-001"]

[initial]
vehicle = "../../fixtures/vehicles/capsule-srcv.toml"
phase = "entry"
seed = 1
bank_deg = 60.0
entry = { altitude_m = 120000.0, speed_m_s = 7400.0, flight_path_angle_deg = -1.6, heading_deg = 45.0, latitude_deg = 20.0, longitude_deg = -160.0 }

[run]
max_time_s = 3.0

[[expect]]
id = "heartbeat"
requirement = "REQ-TLM-001"
message = "FC_Status"
min_rate_hz = 2.0
"#;

fn realtime_bench(budget: &str) -> String {
    format!(
        r#"[bench]
name = "rt-test"
clock = "realtime"

[links]
can = "simulated"
imu = "simulated"
gnss = "simulated"

[flight_computer]
kind = "reference"

[timing]
physics_rate_hz = 1000.0
silence_timeout_s = 5.0
{budget}
"#
    )
}

/// `--clock realtime` against the reference flight computer: the run is paced by the
/// wall clock and reports its timing figures (lateness percentiles, overruns, command
/// latency) on the console and in the JSON result; a budget that cannot be kept marks
/// the verdict FAIL with the broken limit named. No assertion depends on the machine's
/// speed: one budget no loop can break, one no loop can keep.
#[test]
fn a_realtime_run_reports_its_timing_and_is_held_to_the_bench_budget() {
    let scn = temp_scenario("realtime.toml", REALTIME_SCENARIO);
    let dir = scn.parent().expect("dir").to_path_buf();
    let lenient = dir.join("lenient.toml");
    std::fs::write(
        &lenient,
        realtime_bench(
            "max_lateness_p99_us = 1e6\nmax_lateness_us = 1e7\nmax_overruns = 1000000\nmax_command_latency_p99_us = 1e6",
        ),
    )
    .expect("bench");
    let json = dir.join("rt.json");
    let (code, out, err) = hil(&[
        "run",
        scn.to_str().expect("utf8"),
        "--bench",
        lenient.to_str().expect("utf8"),
        "--json",
        json.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("PASS"), "{out}");
    assert!(
        out.contains("timing: step 1000 us, lateness p50 ") && out.contains("overruns"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    assert_eq!(v["clock"], "realtime");
    let r = &v["scenarios"][0]["result"];
    assert_eq!(r["clock"], "realtime");
    // One lateness sample per physics step, 1 kHz over the run.
    let t_end_s = r["t_end_s"].as_f64().expect("t_end_s");
    assert!((3.0..3.01).contains(&t_end_s), "{r}");
    assert_eq!(
        r["timing"]["lateness"]["count"].as_f64(),
        Some((t_end_s * 1000.0).round()),
        "{r}"
    );
    let p50 = r["timing"]["lateness"]["p50_us"].as_f64().expect("p50");
    let p99 = r["timing"]["lateness"]["p99_us"].as_f64().expect("p99");
    assert!(p50 <= p99, "{r}");
    let tb = r["expectations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["id"] == "timing-budget")
        .expect("the timing budget is part of the verdict");
    assert_eq!(tb["passed"], true);
    assert_eq!(tb["requirement"], "BENCH-TIMING");

    let strict = dir.join("strict.toml");
    std::fs::write(&strict, realtime_bench("max_lateness_us = 0.0")).expect("bench");
    let (code, out, err) = hil(&[
        "run",
        scn.to_str().expect("utf8"),
        "--bench",
        strict.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("FAIL"), "{out}");
    assert!(
        out.contains("x timing-budget [BENCH-TIMING]") && out.contains("step lateness max"),
        "{out}"
    );
}

/// Bench files are validated before anything runs: a bad address is named with its
/// file, line, column and field, and exits 2; so are options the bench cannot honour.
#[test]
fn bad_benches_are_rejected_before_anything_runs() {
    let scn = temp_scenario("bench-check.toml", REALTIME_SCENARIO);
    let dir = scn.parent().expect("dir").to_path_buf();
    let bad = dir.join("bad-bench.toml");
    std::fs::write(
        &bad,
        realtime_bench("").replace("imu = \"simulated\"", "imu = \"serial:/dev/ttyUSB0\""),
    )
    .expect("bench");
    let (code, out, err) = hil(&[
        "run",
        scn.to_str().expect("utf8"),
        "--bench",
        bad.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(out.is_empty(), "nothing ran: {out}");
    assert!(
        err.contains("bad-bench.toml:7:") && err.contains("links.imu") && err.contains("PATH@BAUD"),
        "{err}"
    );
    let (code, _, err) = hil(&[
        "run",
        scn.to_str().expect("utf8"),
        "--bench",
        "fixtures/benches/lab-socketcan.toml",
        "--clock",
        "lockstep",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("do not speak SIM_Tick"), "{err}");
    let (code, _, err) = hil(&[
        "run",
        scn.to_str().expect("utf8"),
        "--bench",
        "fixtures/benches/lab-socketcan.toml",
        "--defect",
        "late-drogue",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--defect needs the reference flight computer"),
        "{err}"
    );
    let (code, out, _) = hil(&["check", "fixtures/benches"]);
    assert_eq!(code, 0, "{out}");
    let shipped = std::fs::read_dir(root().join("fixtures/benches"))
        .expect("benches")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert!(shipped >= 6, "{shipped} benches shipped");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("ok     bench"))
            .count(),
        shipped,
        "{out}"
    );
    let (code, out, _) = hil(&["devices"]);
    assert_eq!(code, 0);
    assert!(out.contains("simulated: always available"), "{out}");
}

/// Ctrl-C during a run: the run stops safely (actuators commanded safe), the results
/// are written and marked incomplete, and the exit code is 2. Never a hang. One at a
/// time the second scenario is not started; with two jobs both stop.
#[test]
fn ctrl_c_leaves_a_readable_result_marked_incomplete() {
    for jobs in ["1", "2"] {
        ctrl_c_with_jobs(jobs);
    }
}

fn ctrl_c_with_jobs(jobs: &str) {
    let dir = root()
        .join("target")
        .join(format!("hil-int-{}-{jobs}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let json = dir.join("int.json");
    let junit = dir.join("int.xml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args([
            "run",
            "scenarios/nominal-entry.toml",
            "scenarios/gnss-loss.toml",
            "--json",
            json.to_str().expect("utf8"),
            "--junit",
            junit.to_str().expect("utf8"),
            "--jobs",
            jobs,
            "--out",
            "target/hil-test-runs",
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hil starts");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("hil did not stop within 60 s of Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(status.code(), Some(2), "{stdout}");
    assert!(stdout.starts_with("INCOMPLETE SCN-001"), "{stdout}");
    let started = if jobs == "1" { 1 } else { 2 };
    assert!(
        stdout.contains(&format!(
            "INCOMPLETE: stopped by a signal after {started} of 2 scenarios"
        )),
        "{stdout}"
    );
    if jobs == "2" {
        assert!(stdout.contains("\nINCOMPLETE SCN-005"), "{stdout}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(v["complete"], false);
    let r = &v["scenarios"][0]["result"];
    assert_eq!(r["verdict"], "Incomplete");
    assert_eq!(r["incomplete"], true);
    let t_end = r["t_end_s"].as_f64().expect("t_end_s");
    assert!(t_end > 0.0 && t_end < 900.0, "{r}");
    assert!(
        std::fs::read_to_string(&junit)
            .expect("junit")
            .contains("<testsuite")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `hil bench-rt` runs the real-time closed loop with the reference flight computer
/// and prints, and writes as JSON, figures that agree with each other: percentiles in
/// order, a histogram that counts every step, late steps and overruns within it,
/// commands that reached the physics. (The figures themselves depend on the machine.)
#[test]
fn bench_rt_measures_the_closed_loop() {
    let dir = root()
        .join("target")
        .join(format!("hil-benchrt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let json = dir.join("bench.json");
    let (code, out, err) = hil(&[
        "bench-rt",
        "--seconds",
        "3",
        "--rate-hz",
        "2000",
        "--json",
        json.to_str().expect("utf8"),
    ]);
    assert!(code == 0 || code == 1, "{out}\n{err}");
    assert!(out.contains("real-time loop: timer slack 1 ns"), "{out}");
    assert!(out.contains("targets at 2000 Hz:"), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_start().starts_with("met ") || l.trim_start().starts_with("MISSED "))
            .count(),
        3,
        "{out}"
    );
    assert_eq!(code == 0, !out.contains("MISSED"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    let t = &v["timing"];
    assert_eq!(t["period_us"], 500.0);
    let steps = t["lateness"]["count"].as_u64().expect("count");
    // 3 s at 2 kHz, from the first step to the last (the run ends on simulated time).
    assert!((5_990..=6_010).contains(&steps), "{steps}");
    let binned: u64 = t["lateness_bins"]
        .as_array()
        .expect("bins")
        .iter()
        .map(|b| b[1].as_u64().expect("count"))
        .sum();
    assert_eq!(binned, steps, "every step in the histogram");
    let l = &t["lateness"];
    let p = |k: &str| l[k].as_f64().expect(k);
    assert!(p("p50_us") <= p("p95_us") && p("p95_us") <= p("p99_us"));
    assert!(p("p99_us") <= p("p999_us") && p("p999_us") <= p("max_us") * 1.001);
    assert!(t["late_steps"].as_u64().expect("late") <= steps);
    assert!(t["overruns"].as_u64().expect("overruns") <= t["late_steps"].as_u64().expect("late"));
    assert!(
        t["command_latency"]["count"].as_u64().expect("commands") > 0,
        "{t}"
    );
    // The lateness trace covers the run in 100 ms slots.
    let trace = t["lateness_trace_us"].as_array().expect("trace").len();
    assert!((30..=32).contains(&trace), "{trace}");
    let _ = std::fs::remove_dir_all(&dir);
}
