//! Helpers for the end-to-end tests of `hil` with misbehaving flight computers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh directory for one test, under target/ (kept small; removed on success).
pub fn test_dir(tag: &str) -> tempfile::TempDir {
    let base = root().join("target").join("hil-hardening");
    std::fs::create_dir_all(&base).expect("dir");
    tempfile::Builder::new()
        .prefix(&format!("{tag}-"))
        .tempdir_in(base)
        .expect("temp dir")
}

/// The one directory inside `d` (a run's bundle under its `--out`).
pub fn only_dir(d: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .expect("runs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

/// The nominal scenario, cut to `max_time_s`, written into `dir` (its vehicle path
/// made absolute).
pub fn short_scenario(dir: &Path, name: &str, max_time_s: f64) -> PathBuf {
    let vehicle = root().join("fixtures/vehicles/capsule-srcv.toml");
    let text = std::fs::read_to_string(root().join("scenarios/nominal-entry.toml"))
        .expect("nominal")
        .replace(
            "../fixtures/vehicles/capsule-srcv.toml",
            vehicle.to_str().expect("utf8"),
        )
        .replace("max_time_s = 2000.0", &format!("max_time_s = {max_time_s}"));
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write scenario");
    p
}

/// A bench running `rogue-fc MODE` on simulated links, with short timeouts.
pub fn rogue_bench(dir: &Path, mode: &str, clock: &str, extra_args: &[&str]) -> PathBuf {
    let exe = env!("CARGO_BIN_EXE_rogue-fc");
    let mut cmd = vec![
        exe.to_string(),
        mode.to_string(),
        "--can".into(),
        "{can}".into(),
        "--imu".into(),
        "{imu}".into(),
        "--gnss".into(),
        "{gnss}".into(),
        "--clock".into(),
        clock.into(),
    ];
    cmd.extend(extra_args.iter().map(|s| s.to_string()));
    // The test's directory in the command line: while the rogue lives,
    // `processes_with(dir)` finds it.
    cmd.extend(["--tag".to_string(), dir.display().to_string()]);
    command_bench(dir, &format!("rogue-{mode}"), clock, &cmd, "")
}

/// A bench that starts `command` on simulated links, with short timeouts (join 5 s,
/// acknowledgement 2 s) and a budget that only a stalled loop breaks (the machine's
/// speed is not judged); `extra` adds lines to `[flight_computer]`.
pub fn command_bench(
    dir: &Path,
    name: &str,
    clock: &str,
    command: &[String],
    extra: &str,
) -> PathBuf {
    let list: Vec<String> = command.iter().map(|s| format!("{s:?}")).collect();
    let text = format!(
        r#"[bench]
name = "{name}"
clock = "{clock}"

[links]
can = "simulated"
imu = "simulated"
gnss = "simulated"

[flight_computer]
kind = "command"
command = [{}]
lockstep = {}
join_timeout_s = 5.0
ack_timeout_s = 2.0
{extra}

[timing]
physics_rate_hz = 1000.0
silence_timeout_s = 2.0
max_lateness_p99_us = 1e6
max_lateness_us = 1e7
max_overruns = 1000000
max_command_latency_p99_us = 1e6
"#,
        list.join(", "),
        clock == "lockstep"
    );
    let p = dir.join(format!("bench-{name}-{clock}.toml"));
    std::fs::write(&p, text).expect("write bench");
    p
}

/// What a finished `hil` printed.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Largest resident set seen while it ran, kB (sampled every 20 ms).
    pub peak_rss_kb: u64,
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Starts `hil` with `args` in the repository root.
pub fn spawn_hil(args: &[&str]) -> Child {
    let mut args: Vec<&str> = args.to_vec();
    // Run bundles go under target/, not the repository's runs/.
    if args.first() == Some(&"run") && !args.contains(&"--out") {
        args.extend(["--out", "target/hil-test-runs"]);
    }
    Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(&args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hil starts")
}

/// Waits for `child` at most `limit`; kills it and panics if it does not end.
pub fn wait_at_most(mut child: Child, limit: Duration) -> Finished {
    let start = Instant::now();
    let mut peak_rss_kb = 0;
    loop {
        peak_rss_kb = peak_rss_kb.max(rss_kb(child.id()));
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "hil did not end within {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    let out = child.wait_with_output().expect("output");
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
        peak_rss_kb,
    }
}

/// Runs `hil run SCENARIO --bench BENCH --out DIR/runs --json DIR/r.json` and waits at
/// most `limit`.
pub fn run_rogue(
    dir: &Path,
    scenario: &Path,
    bench: &Path,
    limit: Duration,
) -> (Finished, serde_json::Value) {
    let json = dir.join("r.json");
    let out = dir.join("runs");
    let f = wait_at_most(
        spawn_hil(&[
            "run",
            scenario.to_str().expect("utf8"),
            "--bench",
            bench.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            "--json",
            json.to_str().expect("utf8"),
        ]),
        limit,
    );
    let v = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (f, v)
}

/// Process ids whose command line contains `needle` (from /proc).
pub fn processes_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) && pid != std::process::id() {
                // Zombies (already dead, not yet reaped) do not count.
                let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                if !st.contains(") Z ") {
                    out.push(pid);
                }
            }
        }
    }
    out
}

/// The first ERROR or INCOMPLETE line of a run's output.
pub fn first_error_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("ERROR") || l.starts_with("INCOMPLETE"))
        .unwrap_or("")
        .to_string()
}

/// Runs the short scenario against `rogue-fc MODE` on `clock` and checks that the run
/// ends with exit 2 within `limit`, its ERROR line containing every `needles`, the JSON
/// results written, and `hil` under 200 MB of memory throughout. Returns the output.
pub fn misbehaving(mode: &str, clock: &str, needles: &[&str], limit: Duration) -> Finished {
    let d = test_dir(&format!("{mode}-{clock}"));
    let scn = short_scenario(d.path(), "short.toml", 60.0);
    let bench = rogue_bench(d.path(), mode, clock, &[]);
    let (f, v) = run_rogue(d.path(), &scn, &bench, limit);
    assert_eq!(
        f.code,
        Some(2),
        "stdout: {}\nstderr: {}",
        f.stdout,
        f.stderr
    );
    let line = first_error_line(&f.stdout);
    for n in needles {
        assert!(
            line.contains(n),
            "`{n}` not in: {line}\nstdout: {}\nstderr: {}",
            f.stdout,
            f.stderr
        );
    }
    assert!(
        f.stdout.contains("links: can: rx"),
        "no link counters: {}",
        f.stdout
    );
    assert!(
        v["scenarios"][0]["error"].as_str().is_some_and(|e| needles
            .iter()
            .filter(|n| **n != "ERROR")
            .all(|n| e.contains(n))),
        "{v}"
    );
    assert!(f.peak_rss_kb < 200_000, "hil used {} kB", f.peak_rss_kb);
    // The run kept its own files: the FC's output and the scenario's result.
    let runs: Vec<_> = std::fs::read_dir(d.path().join("runs"))
        .expect("runs dir")
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1, "one run directory");
    let run = runs[0].path();
    assert!(
        run.join("result.json").is_file() && run.join("fc.stdout.log").is_file(),
        "{}",
        run.display()
    );
    if mode == "exits" {
        let err = std::fs::read_to_string(run.join("fc.stderr.log")).expect("stderr captured");
        assert!(err.contains("exiting at once"), "{err}");
    }
    assert!(
        processes_with(d.path().to_str().expect("utf8")).is_empty(),
        "a process was left behind"
    );
    f
}

/// Children of `pid` (from /proc).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let st = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        let ppid = st.lines().find(|l| l.starts_with("PPid:")).and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u32>().ok())
        });
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

pub fn alive(pid: u32) -> bool {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !st.is_empty() && !st.contains(") Z ")
}
