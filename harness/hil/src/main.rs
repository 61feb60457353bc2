//! `hil`: runs capsule scenarios in the loop.
//!
//! ```text
//! hil run <scenario.toml | dir>... [--seed N] [--junit FILE]   run, print verdicts
//! hil check <scenario.toml | dir>...                          validate only
//! hil list [dir]                                              scenarios and requirements
//! ```
//!
//! The default bench is the simulated one: the reference flight computer in its own
//! process, IMU and GNSS on pseudo-terminals, CAN on the virtual bus, lockstep clock.
//! Exit code: 0 all pass, 1 a failure, 2 an error (including a file that does not
//! validate).

use anyhow::{Context, Result, anyhow};
use capsule_icd::can::CanDb;
use capsule_runner::devices::Devices;
use capsule_runner::lockstep::{LockstepConfig, run};
use capsule_scenario::eval::{ScenarioResult, Verdict, evaluate};
use capsule_scenario::spec::Scenario;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use twin_core::config::Source;
use twin_core::twin::{ModelOptions, Twin};
use twin_core::vehicle::VehicleSpec;

const DBC: &str = include_str!("../../../fixtures/icd/capsule.dbc");

fn usage() -> &'static str {
    "usage: hil run <scenario.toml|dir>... [--seed N] [--defect NAME] [--junit FILE] [--json FILE]\n       hil check <scenario.toml|dir>...\n       hil list [dir]"
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

fn load(path: &Path) -> Result<Loaded> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read scenario {name}"))?;
    let scenario = Scenario::from_toml(&Source::new(&name, &text))?;
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
    let mut bad = 0;
    for p in scenario_paths(args)? {
        match load(&p) {
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

fn cmd_list(args: &[String]) -> Result<ExitCode> {
    let dir = args.first().cloned().unwrap_or_else(|| "scenarios".into());
    for p in scenario_paths(&[dir])? {
        let l = load(&p)?;
        println!(
            "{:<10} {:<50} {}",
            l.scenario.scenario.id,
            l.scenario.scenario.title,
            l.scenario.scenario.requirements.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_one(
    l: &Loaded,
    seed_override: Option<u64>,
    defect: Option<&str>,
    db: &CanDb,
) -> Result<ScenarioResult> {
    let s = &l.scenario;
    let seed = seed_override.unwrap_or(s.initial.seed);
    let opts = ModelOptions::default();
    let entry = s.initial.entry.to_state(s.initial.bank_deg);
    let init = entry.to_body_state(&opts.planet, &l.vehicle);
    let devices = Devices::new(db.clone(), &l.vehicle.sensors, seed);
    let twin = Twin::new(opts, l.vehicle.clone(), init, 0.0)?;
    let me = std::env::current_exe()
        .context("cannot find the hil executable to start the flight computer")?;
    let mut fc_command: Vec<String> = [
        me.display().to_string(),
        "__fc".into(),
        "--can".into(),
        "{can}".into(),
        "--imu".into(),
        "{imu}".into(),
        "--gnss".into(),
        "{gnss}".into(),
        "--clock".into(),
        "lockstep".into(),
    ]
    .to_vec();
    if let Some(d) = defect {
        fc_command.extend(["--defect".to_string(), d.to_string()]);
    }
    let cfg = LockstepConfig {
        fc_command,
        cycle_steps: 10,
        max_time_s: s.run.max_time_s,
        after_landing_s: s.run.after_landing_s,
        ack_timeout: Duration::from_secs(10),
        workdir: std::env::temp_dir().join(format!("hil-{}-{}", std::process::id(), s.scenario.id)),
        handover_mode: s.initial.phase.fc_mode(),
        snapshot_every_s: 1.0,
        injections: s.injections(),
        fault_seed: seed,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let record = rt.block_on(run(&cfg, db.clone(), twin, devices));
    let _ = std::fs::remove_dir_all(&cfg.workdir);
    let record = record.with_context(|| format!("scenario {}", s.scenario.id))?;
    Ok(evaluate(s, &record, db))
}

fn cmd_run(args: &[String]) -> Result<ExitCode> {
    let mut files = Vec::new();
    let mut seed = None;
    let mut junit: Option<PathBuf> = None;
    let mut defect: Option<String> = None;
    let mut json: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => {
                json = Some(
                    it.next()
                        .ok_or_else(|| anyhow!("--json needs a file"))?
                        .into(),
                )
            }
            "--defect" => {
                let d = it.next().ok_or_else(|| anyhow!("--defect needs a name"))?;
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
                    it.next()
                        .ok_or_else(|| anyhow!("--seed needs a number"))?
                        .parse()
                        .context("--seed needs a number")?,
                )
            }
            "--junit" => {
                junit = Some(
                    it.next()
                        .ok_or_else(|| anyhow!("--junit needs a file"))?
                        .into(),
                )
            }
            "--clock" => {
                let c = it
                    .next()
                    .ok_or_else(|| anyhow!("--clock needs lockstep or realtime"))?;
                if c != "lockstep" {
                    return Err(anyhow!(
                        "--clock {c}: only lockstep is implemented so far (the simulated bench)"
                    ));
                }
            }
            other if other.starts_with("--") => {
                return Err(anyhow!("unknown option `{other}`\n{}", usage()));
            }
            other => files.push(other.to_string()),
        }
    }
    // Validate everything before running anything.
    let mut loaded = Vec::new();
    for p in scenario_paths(&files)? {
        loaded.push(load(&p)?);
    }
    let db = CanDb::from_dbc("fixtures/icd/capsule.dbc (built in)", DBC)?;
    let mut results = Vec::new();
    let mut worst = 0u8;
    for l in &loaded {
        let start = std::time::Instant::now();
        match run_one(l, seed, defect.as_deref(), &db) {
            Ok(r) => {
                println!(
                    "{:<6} {:<10} {}  ({:.1} s)",
                    r.verdict.to_string(),
                    r.id,
                    l.scenario.scenario.title,
                    start.elapsed().as_secs_f64()
                );
                for e in r.expectations.iter().filter(|e| !e.passed) {
                    println!(
                        "         x {} [{}]: expected {}; measured {}",
                        e.id, e.requirement, e.expected, e.measured
                    );
                }
                if r.verdict == Verdict::Fail {
                    worst = worst.max(1);
                }
                results.push((l.path.clone(), Ok(r)));
            }
            Err(e) => {
                println!(
                    "ERROR  {:<10} {}: {e:#}",
                    l.scenario.scenario.id, l.scenario.scenario.title
                );
                worst = 2;
                results.push((l.path.clone(), Err(format!("{e:#}"))));
            }
        }
    }
    if let Some(j) = json {
        let v: Vec<serde_json::Value> = results
            .iter()
            .map(|(p, r)| match r {
                Ok(r) => serde_json::json!({ "file": p.display().to_string(), "result": r }),
                Err(e) => serde_json::json!({ "file": p.display().to_string(), "error": e }),
            })
            .collect();
        std::fs::write(&j, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("cannot write {}", j.display()))?;
    }
    if let Some(j) = junit {
        std::fs::write(&j, junit_xml(&results))
            .with_context(|| format!("cannot write {}", j.display()))?;
    }
    Ok(ExitCode::from(worst))
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
