//! `hil`: runs capsule scenarios in the loop.
//!
//! ```text
//! hil run <scenario.toml | dir>... [--bench FILE] [--clock lockstep|realtime]
//!         [--seed N] [--defect NAME] [--junit FILE] [--json FILE]
//! hil check <scenario.toml | dir>...      validate only (scenarios and benches)
//! hil list [dir]                          scenarios, requirements, benches
//! hil devices                             serial ports and CAN interfaces here
//! ```
//!
//! The default bench is the simulated one (`fixtures/benches/simulated.toml`, built
//! in): the reference flight computer in its own process, IMU and GNSS on
//! pseudo-terminals, CAN on the virtual bus, lockstep clock. Exit code: 0 all pass,
//! 1 a failure, 2 an error (including a file that does not validate, a dead link, a
//! crashed flight computer, or a run stopped by Ctrl-C, whose results are written and
//! marked incomplete).

use anyhow::{Context, Result, anyhow, bail};
use capsule_icd::can::CanDb;
use capsule_runner::devices::Devices;
use capsule_runner::session::{Clock, Mission, RunConfig, Separation, run};
use capsule_scenario::bench::Bench;
use capsule_scenario::eval::{ScenarioResult, Verdict, evaluate};
use capsule_scenario::spec::{Phase, Scenario};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use twin_core::config::Source;
use twin_core::twin::{ModelOptions, Twin};
use twin_core::vehicle::VehicleSpec;

const DBC: &str = include_str!("../../../fixtures/icd/capsule.dbc");

fn usage() -> &'static str {
    "usage: hil run <scenario.toml|dir>... [--bench FILE] [--clock lockstep|realtime] [--seed N] [--defect NAME] [--junit FILE] [--json FILE]\n       hil check <scenario.toml|bench.toml|dir>...\n       hil list [dir]\n       hil devices"
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // Hidden: the reference flight computer process the simulated bench spawns.
    if argv.first().map(String::as_str) == Some("__fc") {
        return capsule_fc::app::main_with_args(argv[1..].to_vec());
    }
    match dispatch(argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(argv: Vec<String>) -> Result<ExitCode> {
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!("{}", usage());
        return Ok(ExitCode::from(2));
    };
    match cmd.as_str() {
        "run" => cmd_run(rest),
        "check" => cmd_check(rest),
        "list" => cmd_list(rest),
        "devices" => cmd_devices(),
        "-h" | "--help" | "help" => {
            println!("{}", usage());
            Ok(ExitCode::SUCCESS)
        }
        other => Err(anyhow!("unknown command `{other}`\n{}", usage())),
    }
}

/// Scenario files named by the arguments (directories expand to their *.toml, sorted).
fn scenario_paths(args: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for a in args {
        let p = Path::new(a);
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read directory {a}"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.to_path_buf());
        }
    }
    if out.is_empty() {
        return Err(anyhow!("no scenario files given\n{}", usage()));
    }
    Ok(out)
}

struct Loaded {
    path: PathBuf,
    scenario: Scenario,
    vehicle: VehicleSpec,
}

/// The ICD the harness speaks (built in; scenarios' CAN names are checked against it).
fn icd() -> Result<CanDb> {
    Ok(CanDb::from_dbc("fixtures/icd/capsule.dbc (built in)", DBC)?)
}

fn load(path: &Path, db: &CanDb) -> Result<Loaded> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read scenario {name}"))?;
    let src = Source::new(&name, &text);
    let scenario = Scenario::from_toml(&src)?;
    scenario.check_icd(db, &src)?;
    let vpath = path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&scenario.initial.vehicle);
    let vname = vpath.display().to_string();
    let vtext = std::fs::read_to_string(&vpath)
        .with_context(|| format!("{name}: field `initial.vehicle`: cannot read {vname}"))?;
    let vehicle = VehicleSpec::from_toml(&Source::new(&vname, &vtext))?;
    Ok(Loaded {
        path: path.to_path_buf(),
        scenario,
        vehicle,
    })
}

fn cmd_check(args: &[String]) -> Result<ExitCode> {
    let db = icd()?;
    let mut bad = 0;
    for p in scenario_paths(args)? {
        if let Some(b) = load_bench_if_bench(&p) {
            match b {
                Ok(b) => println!("ok     bench {}  {}", b.bench.name, p.display()),
                Err(e) => {
                    bad += 1;
                    eprintln!("error: {e:#}");
                }
            }
            continue;
        }
        match load(&p, &db) {
            Ok(l) => println!("ok     {}  {}", l.scenario.scenario.id, p.display()),
            Err(e) => {
                bad += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// A bench file (one with a `[bench]` table), loaded; `None` for other files.
fn load_bench_if_bench(p: &Path) -> Option<Result<Bench>> {
    let text = std::fs::read_to_string(p).ok()?;
    if !text.lines().any(|l| l.trim() == "[bench]") {
        return None;
    }
    let name = p.display().to_string();
    Some(Bench::from_toml(&Source::new(&name, &text)).map_err(Into::into))
}

fn cmd_list(args: &[String]) -> Result<ExitCode> {
    let dir = args.first().cloned().unwrap_or_else(|| "scenarios".into());
    println!("scenarios ({dir}):");
    let db = icd()?;
    for p in scenario_paths(&[dir])? {
        let l = load(&p, &db)?;
        println!(
            "  {:<10} {:<50} {}",
            l.scenario.scenario.id,
            l.scenario.scenario.title,
            l.scenario.scenario.requirements.join(" ")
        );
    }
    let benches = Path::new("fixtures/benches");
    println!("benches ({}):", benches.display());
    println!(
        "  {:<22} {:<9} {:<10} (built in, the default)",
        "simulated", "lockstep", "reference"
    );
    if benches.is_dir() {
        for p in scenario_paths(&[benches.display().to_string()])? {
            if let Some(b) = load_bench_if_bench(&p) {
                let b = b?;
                println!(
                    "  {:<22} {:<9} {:<10} {}  {}",
                    b.bench.name,
                    b.bench.clock,
                    b.flight_computer.kind,
                    p.display(),
                    b.bench.description
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How a run is set up, from the bench and the command line.
struct RunSetup {
    bench: Bench,
    bench_name: String,
    lockstep: bool,
    seed: Option<u64>,
    stop: Arc<AtomicBool>,
}

fn run_one(
    l: &Loaded,
    setup: &RunSetup,
    db: &CanDb,
    rt: &tokio::runtime::Runtime,
) -> Result<ScenarioResult> {
    let s = &l.scenario;
    let seed = setup.seed.unwrap_or(s.initial.seed);
    let opts = ModelOptions {
        rate_hz: setup.bench.timing.physics_rate_hz,
        ..ModelOptions::default()
    };
    let init = match (&s.initial.entry, &s.initial.orbit, &s.initial.descent) {
        (Some(e), _, _) | (None, None, Some(e)) => e
            .to_state(s.initial.bank_deg)
            .to_body_state(&opts.planet, &l.vehicle),
        (None, Some(o), _) => twin_core::initial::circular_orbit(
            &opts.planet,
            o.altitude_m,
            o.inclination_deg.to_radians(),
            o.raan_deg.to_radians(),
            o.arg_latitude_deg.to_radians(),
        ),
        (None, None, None) => bail!(
            "{}: no initial state (validated files have one)",
            s.scenario.id
        ),
    };
    let mut devices = Devices::new(db.clone(), &l.vehicle.sensors, seed);
    let mut twin = Twin::new(opts, l.vehicle.clone(), init, 0.0)?;
    if s.initial.phase == Phase::Descent {
        let before_s = s
            .initial
            .drogue_fired_s_before
            .unwrap_or(Phase::DROGUE_FIRED_S_BEFORE);
        if !devices.start_under_drogue(&mut twin, before_s) {
            bail!(
                "{}: phase `descent` needs a parachute named `drogue` in {}",
                s.scenario.id,
                s.initial.vehicle
            );
        }
    }
    let clock_name = if setup.lockstep {
        "lockstep"
    } else {
        "realtime"
    };
    let fc = &setup.bench.flight_computer;
    let fc_command = match fc.kind.as_str() {
        "reference" => {
            let me = std::env::current_exe()
                .context("cannot find the hil executable to start the flight computer")?;
            let mut c: Vec<String> = [
                me.display().to_string(),
                "__fc".into(),
                "--can".into(),
                "{can}".into(),
                "--imu".into(),
                "{imu}".into(),
                "--gnss".into(),
                "{gnss}".into(),
                "--clock".into(),
                clock_name.into(),
            ]
            .to_vec();
            if let Some(d) = &fc.defect {
                c.extend(["--defect".to_string(), d.clone()]);
            }
            Some(c)
        }
        "command" => Some(fc.command.clone()),
        _ => None,
    };
    let links = setup
        .bench
        .links()
        .map_err(|e| anyhow!("{}: {e}", setup.bench_name))?;
    let progress = progress_bar(&s.scenario.id, s.run.max_time_s, rt);
    let cfg = RunConfig {
        fc_command,
        links,
        clock: if setup.lockstep {
            Clock::Lockstep
        } else {
            Clock::Realtime(setup.bench.timing.budget())
        },
        cycle_steps: (setup.bench.timing.physics_rate_hz / 100.0).round() as u32,
        max_time_s: s.run.max_time_s,
        after_landing_s: s.run.after_landing_s,
        ack_timeout: if setup.lockstep {
            Duration::from_secs(10)
        } else {
            Duration::from_secs_f64(setup.bench.timing.silence_timeout_s)
        },
        workdir: std::env::temp_dir().join(format!("hil-{}-{}", std::process::id(), s.scenario.id)),
        handover_mode: s.initial.handover_mode(),
        mission: Mission {
            target_deg: s.initial.target.map(|t| (t.latitude_deg, t.longitude_deg)),
            deorbit: s.initial.deorbit.map(|d| (d.ignition_s, d.delta_v_m_s)),
        },
        separation: s.initial.separation.map(|p| Separation {
            at_s: p.at_s,
            delta_v_m_s: p.delta_v_m_s,
        }),
        snapshot_every_s: 1.0,
        injections: s.injections(),
        fault_seed: seed,
        stop: setup.stop.clone(),
        progress_ms: progress.as_ref().map(|p| p.0.clone()),
    };
    let record = rt.block_on(run(&cfg, db.clone(), twin, devices));
    if let Some((_, task)) = progress {
        task.abort();
        eprint!("\r\x1b[2K");
    }
    let _ = std::fs::remove_dir_all(&cfg.workdir);
    let record = record.with_context(|| format!("scenario {}", s.scenario.id))?;
    Ok(evaluate(s, &record, db))
}

/// A progress bar on stderr while a scenario runs (only when stderr is a terminal):
/// simulated time against the scenario's time limit.
fn progress_bar(
    id: &str,
    max_time_s: f64,
    rt: &tokio::runtime::Runtime,
) -> Option<(Arc<AtomicU64>, tokio::task::JoinHandle<()>)> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let t_ms = Arc::new(AtomicU64::new(0));
    let (t, id) = (t_ms.clone(), id.to_string());
    let task = rt.spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(250));
        loop {
            every.tick().await;
            let now_s = t.load(Ordering::Relaxed) as f64 * 1e-3;
            let frac = (now_s / max_time_s).clamp(0.0, 1.0);
            let n = (frac * 30.0).round() as usize;
            eprint!(
                "\r{id:<10} [{}{}] t = {now_s:7.1} s of at most {max_time_s:.0} s",
                "#".repeat(n),
                ".".repeat(30 - n)
            );
        }
    });
    Some((t_ms, task))
}

fn parse_value<'a>(
    it: &mut impl Iterator<Item = &'a String>,
    opt: &str,
    what: &str,
) -> Result<&'a String> {
    it.next().ok_or_else(|| anyhow!("{opt} needs {what}"))
}

fn cmd_run(args: &[String]) -> Result<ExitCode> {
    let mut files = Vec::new();
    let mut seed = None;
    let mut junit: Option<PathBuf> = None;
    let mut defect: Option<String> = None;
    let mut json: Option<PathBuf> = None;
    let mut bench_path: Option<String> = None;
    let mut clock: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = Some(parse_value(&mut it, a, "a file")?.into()),
            "--junit" => junit = Some(parse_value(&mut it, a, "a file")?.into()),
            "--bench" => bench_path = Some(parse_value(&mut it, a, "a bench file")?.clone()),
            "--defect" => {
                let d = parse_value(&mut it, a, "a name")?;
                if capsule_fc::defects::Defect::parse(d).is_none() {
                    let names: Vec<&str> = capsule_fc::defects::Defect::ALL
                        .iter()
                        .map(|d| d.name())
                        .collect();
                    return Err(anyhow!(
                        "unknown defect `{d}` (defects: {})",
                        names.join(", ")
                    ));
                }
                defect = Some(d.clone());
            }
            "--seed" => {
                seed = Some(
                    parse_value(&mut it, a, "a number")?
                        .parse()
                        .context("--seed needs a number")?,
                )
            }
            "--clock" => {
                let c = parse_value(&mut it, a, "lockstep or realtime")?;
                if !matches!(c.as_str(), "lockstep" | "realtime") {
                    return Err(anyhow!("--clock {c}: expected lockstep or realtime"));
                }
                clock = Some(c.clone());
            }
            other if other.starts_with("--") => {
                return Err(anyhow!("unknown option `{other}`\n{}", usage()));
            }
            other => files.push(other.to_string()),
        }
    }
    // Validate everything (bench, options, scenarios) before running anything.
    let (mut bench, bench_name) = match &bench_path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("cannot read bench {p}"))?;
            (Bench::from_toml(&Source::new(p, &text))?, p.clone())
        }
        None => (
            Bench::simulated()?,
            "simulated bench (built in)".to_string(),
        ),
    };
    if let Some(d) = defect {
        if bench.flight_computer.kind != "reference" {
            return Err(anyhow!(
                "--defect needs the reference flight computer; bench {bench_name} has kind `{}`",
                bench.flight_computer.kind
            ));
        }
        bench.flight_computer.defect = Some(d);
    }
    let lockstep = clock.as_deref().unwrap_or(&bench.bench.clock) == "lockstep";
    if lockstep && !bench.speaks_lockstep() {
        return Err(anyhow!(
            "--clock lockstep: the avionics of bench {bench_name} do not speak SIM_Tick / SIM_Ack (flight_computer.lockstep = false); use --clock realtime"
        ));
    }
    let db = icd()?;
    let mut loaded = Vec::new();
    for p in scenario_paths(&files)? {
        loaded.push(load(&p, &db)?);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: commanding actuators safe, writing results (incomplete)");
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let setup = RunSetup {
        bench,
        bench_name,
        lockstep,
        seed,
        stop: stop.clone(),
    };
    let mut results = Vec::new();
    let mut worst = 0u8;
    for l in &loaded {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let start = std::time::Instant::now();
        match run_one(l, &setup, &db, &rt) {
            Ok(r) => {
                println!(
                    "{:<10} {:<10} {}  ({:.1} s{})",
                    r.verdict.to_string(),
                    r.id,
                    l.scenario.scenario.title,
                    start.elapsed().as_secs_f64(),
                    if r.incomplete {
                        format!(", stopped at t = {:.1} s", r.t_end_s)
                    } else {
                        String::new()
                    }
                );
                for e in r.expectations.iter().filter(|e| !e.passed) {
                    println!(
                        "           x {} [{}]: expected {}; measured {}",
                        e.id, e.requirement, e.expected, e.measured
                    );
                }
                if let Some(t) = &r.timing {
                    println!("           {}", t.summary());
                }
                match r.verdict {
                    Verdict::Fail => worst = worst.max(1),
                    Verdict::Incomplete | Verdict::Error => worst = 2,
                    Verdict::Pass => {}
                }
                results.push((l.path.clone(), Ok(r)));
            }
            Err(e) => {
                println!(
                    "{:<10} {:<10} {}: {e:#}",
                    "ERROR", l.scenario.scenario.id, l.scenario.scenario.title
                );
                worst = 2;
                results.push((l.path.clone(), Err(format!("{e:#}"))));
            }
        }
    }
    let interrupted = stop.load(Ordering::Relaxed);
    if let Some(j) = json {
        let v: Vec<serde_json::Value> = results
            .iter()
            .map(|(p, r)| match r {
                Ok(r) => serde_json::json!({ "file": p.display().to_string(), "result": r }),
                Err(e) => serde_json::json!({ "file": p.display().to_string(), "error": e }),
            })
            .collect();
        let doc = serde_json::json!({
            "bench": setup.bench_name,
            "clock": if lockstep { "lockstep" } else { "realtime" },
            "complete": !interrupted,
            "scenarios": v,
        });
        std::fs::write(&j, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("cannot write {}", j.display()))?;
    }
    if let Some(j) = junit {
        std::fs::write(&j, junit_xml(&results))
            .with_context(|| format!("cannot write {}", j.display()))?;
    }
    if interrupted {
        println!(
            "INCOMPLETE: stopped by Ctrl-C after {} of {} scenarios",
            results.len(),
            loaded.len()
        );
        worst = 2;
    }
    Ok(ExitCode::from(worst))
}

fn cmd_devices() -> Result<ExitCode> {
    let found = capsule_links::discover::discover();
    if found.is_empty() {
        println!("no serial ports or CAN interfaces found");
    }
    for f in &found {
        println!("{:<40} {}", f.address, f.detail);
    }
    let socketcan = std::path::Path::new("/proc/net/can").exists();
    println!(
        "socketcan: {}",
        if socketcan {
            "available in this kernel"
        } else {
            "not available in this kernel (use slcan: adapters or the virtual bus)"
        }
    );
    println!("simulated: always available (pty pairs, virtual CAN bus): the default bench");
    Ok(ExitCode::SUCCESS)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn junit_xml(results: &[(PathBuf, Result<ScenarioResult, String>)]) -> String {
    let mut cases = String::new();
    let (mut failures, mut errors, mut tests) = (0, 0, 0);
    for (path, r) in results {
        match r {
            Ok(r) => {
                if r.incomplete {
                    tests += 1;
                    errors += 1;
                    cases.push_str(&format!(
                        "  <testcase classname=\"{}\" name=\"run\"><error message=\"incomplete: stopped by Ctrl-C at t = {:.1} s\"/></testcase>\n",
                        xml_escape(&r.id),
                        r.t_end_s
                    ));
                }
                for e in &r.expectations {
                    tests += 1;
                    cases.push_str(&format!(
                        "  <testcase classname=\"{}\" name=\"{} [{}]\" file=\"{}\">",
                        xml_escape(&r.id),
                        xml_escape(&e.id),
                        xml_escape(&e.requirement),
                        xml_escape(&path.display().to_string())
                    ));
                    if !e.passed {
                        failures += 1;
                        cases.push_str(&format!(
                            "<failure message=\"expected {}; measured {}\"/>",
                            xml_escape(&e.expected),
                            xml_escape(&e.measured)
                        ));
                    }
                    cases.push_str("</testcase>\n");
                }
            }
            Err(msg) => {
                tests += 1;
                errors += 1;
                cases.push_str(&format!("  <testcase classname=\"{}\" name=\"run\"><error message=\"{}\"/></testcase>\n", xml_escape(&path.display().to_string()), xml_escape(msg)));
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"hil\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n{cases}</testsuite>\n"
    )
}
