//! `hil`: runs capsule scenarios in the loop. See `hil --help` and `hil <command>
//! --help`.
//!
//! The default bench is the simulated one (`fixtures/benches/simulated.toml`, built
//! in): the reference flight computer in its own process, IMU and GNSS on
//! pseudo-terminals, CAN on the virtual bus, lockstep clock. Exit code: 0 all pass,
//! 1 a failure, 2 an error (including a file that does not validate, a dead link, a
//! crashed flight computer, or a run stopped by a signal, whose results are written and
//! marked incomplete).

use anyhow::{Context, Result, anyhow, bail};
use capsule_runner::stop::Stop;
use capsule_scenario::eval::{ScenarioResult, Verdict};
use clap::{Parser, Subcommand, ValueEnum};
use hil::assemble::{self, Loaded, RunErrorReport, RunSetup};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Format version of the `--json` results.
const JSON_FORMAT_VERSION: u32 = 3;

#[derive(Parser)]
#[command(
    name = "hil",
    version,
    about = "Hardware-in-the-loop harness for a cargo-return capsule: runs scenarios against the avionics on a simulated or hardware bench"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against the avionics and judge them (exit 0 pass, 1 fail, 2 error
    /// or incomplete).
    Run(RunArgs),
    /// Validate scenario and bench files without running (everything a run would
    /// reject, reported for every file).
    Check {
        /// Scenario or bench files, or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the scenarios of a directory and the benches.
    List {
        /// The scenario directory.
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
    },
    /// List serial ports and CAN interfaces on this machine.
    Devices,
    /// Check a run bundle: every file's hash, files added or removed, and with
    /// `--pubkey` the signature (exit 0 clean, 1 tampered, 2 unreadable).
    Verify {
        /// Bundle directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The signer's public key (OpenSSH format, `KEY.pub` from `hil keygen`).
        #[arg(long)]
        pubkey: Option<PathBuf>,
    },
    /// Make an Ed25519 key pair for signing bundles: KEY (private) and KEY.pub.
    Keygen {
        /// Where the private key goes (the public key gets `.pub` added).
        key: PathBuf,
        /// Comment stored in the key (who signs).
        #[arg(long, default_value = "hil evidence")]
        comment: String,
    },
    /// Re-judge recorded runs from their bundles alone (no avionics, no hardware) and
    /// compare with the recorded verdicts; `--reinject` also re-flies the twin on the
    /// recorded avionics commands (exit 0 identical, 1 different, 2 unreadable).
    Replay(hil::replay::ReplayArgs),
    /// Traceability over many bundles: requirement x scenario x verdict, as HTML,
    /// CSV and JSON.
    Report(hil::traceability::ReportArgs),
    /// Export from a bundle: the CAN log as Vector ASC, or a telemetry topic as CSV.
    Export(hil::evidence::ExportArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ClockArg {
    Lockstep,
    Realtime,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenario files, or directories of them (run in file-name order).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The bench file (default: the built-in simulated bench).
    #[arg(long)]
    bench: Option<PathBuf>,
    /// The clock (default: the bench's).
    #[arg(long, value_enum)]
    clock: Option<ClockArg>,
    /// Seed for every scenario (default: each scenario's own).
    #[arg(long)]
    seed: Option<u64>,
    /// A seeded defect of the reference flight computer.
    #[arg(long)]
    defect: Option<String>,
    /// Write JUnit XML results here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write JSON results here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Directory for the runs' evidence bundles (one sub-directory per scenario run:
    /// manifest, wire logs, telemetry, verdicts, report, the flight computer's output).
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Sign every bundle's manifest with this Ed25519 key (OpenSSH format, from
    /// `hil keygen`).
    #[arg(long, value_name = "KEY")]
    sign_key: Option<PathBuf>,
    /// Write only the flight computer's output and result.json per run, no evidence
    /// bundle (to measure what bundles cost).
    #[arg(long)]
    no_bundle: bool,
}

fn main() -> ExitCode {
    // Hidden: the reference flight computer process the simulated bench spawns.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("__fc") {
        return capsule_fc::app::main_with_args(argv[2..].to_vec());
    }
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Run(a) => cmd_run(a),
        Command::Check { files } => cmd_check(&files),
        Command::List { dir } => cmd_list(&dir),
        Command::Devices => cmd_devices(),
        Command::Verify { dirs, pubkey } => hil::evidence::verify(&dirs, pubkey.as_deref()),
        Command::Keygen { key, comment } => hil::evidence::keygen(&key, &comment),
        Command::Replay(a) => hil::replay::run(&a),
        Command::Report(a) => hil::traceability::run(&a),
        Command::Export(a) => hil::evidence::export(&a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn cmd_check(files: &[PathBuf]) -> Result<ExitCode> {
    let db = assemble::icd()?;
    let rate = capsule_scenario::bench::Bench::simulated()?
        .timing
        .physics_rate_hz;
    let mut bad = 0;
    let mut ids: Vec<(String, PathBuf)> = Vec::new();
    for p in assemble::scenario_paths(files)? {
        if assemble::is_bench(&p) {
            match assemble::load_bench(&p) {
                Ok(b) => println!("ok     bench {}  {}", b.bench.name, p.display()),
                Err(e) => {
                    bad += 1;
                    eprintln!("error: {e:#}");
                }
            }
            continue;
        }
        match assemble::check(&p, &db, rate) {
            Ok(l) => {
                let id = l.scenario.scenario.id.clone();
                if let Some((_, first)) = ids.iter().find(|(i, _)| *i == id) {
                    bad += 1;
                    eprintln!(
                        "error: {}: field `scenario.id`: `{id}` is also the id of {}",
                        p.display(),
                        first.display()
                    );
                } else {
                    println!("ok     {id}  {}", p.display());
                    ids.push((id, p));
                }
            }
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

fn cmd_list(dir: &Path) -> Result<ExitCode> {
    println!("scenarios ({}):", dir.display());
    let db = assemble::icd()?;
    let mut bad = 0;
    for p in assemble::scenario_paths(&[dir.to_path_buf()])? {
        match assemble::load(&p, &db) {
            Ok(l) => println!(
                "  {:<10} {:<50} {}",
                l.scenario.scenario.id,
                l.scenario.scenario.title,
                l.scenario.scenario.requirements.join(" ")
            ),
            Err(e) => {
                bad += 1;
                println!("  (invalid)  {}", p.display());
                eprintln!("error: {e:#}");
            }
        }
    }
    let benches = Path::new("fixtures/benches");
    println!("benches ({}):", benches.display());
    println!(
        "  {:<22} {:<9} {:<10} (built in, the default)",
        "simulated", "lockstep", "reference"
    );
    if benches.is_dir() {
        for p in assemble::scenario_paths(&[benches.to_path_buf()])? {
            if !assemble::is_bench(&p) {
                continue;
            }
            match assemble::load_bench(&p) {
                Ok(b) => println!(
                    "  {:<22} {:<9} {:<10} {}  {}",
                    b.bench.name,
                    b.bench.clock,
                    b.flight_computer.kind,
                    p.display(),
                    b.bench.description
                ),
                Err(e) => {
                    bad += 1;
                    eprintln!("error: {e:#}");
                }
            }
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
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

/// What became of one scenario.
pub(crate) enum Outcome {
    Judged(Box<ScenarioResult>),
    Error(RunErrorReport),
    /// Not run: the command was stopped first.
    Skipped,
}

/// A directory for one scenario run under `out`: `<UTC start>-<n>-<id>-<random>` (the
/// id is validated to letters, digits, `.`, `_` and `-`, so it is one plain path
/// component; the random suffix keeps runs started in the same second apart, as two
/// `hil run` commands on one `runs/` directory do).
fn run_dir(out: &Path, n: usize, id: &str) -> Result<PathBuf> {
    let stamp: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let prefix = format!("{stamp}-{n:03}-{id}-");
    let mut comps = Path::new(&prefix).components();
    if !matches!(
        (comps.next(), comps.next()),
        (Some(std::path::Component::Normal(_)), None)
    ) {
        bail!("scenario id `{id}` does not make a plain directory name");
    }
    let d = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(4)
        .tempdir_in(out)
        .with_context(|| format!("cannot create a run directory in {}", out.display()))?;
    Ok(d.keep())
}

fn cmd_run(a: RunArgs) -> Result<ExitCode> {
    // Validate everything (bench, options, scenarios, outputs) before running anything.
    let (mut bench, bench_name) = match &a.bench {
        Some(p) => (assemble::load_bench(p)?, p.display().to_string()),
        None => (
            capsule_scenario::bench::Bench::simulated()?,
            "simulated bench (built in)".to_string(),
        ),
    };
    if let Some(d) = &a.defect {
        if capsule_fc::defects::Defect::parse(d).is_none() {
            let names: Vec<&str> = capsule_fc::defects::Defect::ALL
                .iter()
                .map(|d| d.name())
                .collect();
            bail!("unknown defect `{d}` (defects: {})", names.join(", "));
        }
        if bench.flight_computer.kind != "reference" {
            bail!(
                "--defect needs the reference flight computer; bench {bench_name} has kind `{}`",
                bench.flight_computer.kind
            );
        }
        bench.flight_computer.defect = Some(d.clone());
    }
    let lockstep = match a.clock {
        Some(ClockArg::Lockstep) => true,
        Some(ClockArg::Realtime) => false,
        None => bench.bench.clock == "lockstep",
    };
    if lockstep && !bench.speaks_lockstep() {
        bail!(
            "--clock lockstep: the avionics of bench {bench_name} do not speak SIM_Tick / SIM_Ack (flight_computer.lockstep = false); use --clock realtime"
        );
    }
    let db = assemble::icd()?;
    let mut loaded: Vec<Loaded> = Vec::new();
    let mut invalid = Vec::new();
    for p in assemble::scenario_paths(&a.files)? {
        match assemble::check(&p, &db, bench.timing.physics_rate_hz) {
            Ok(l) => {
                if let Some(first) = loaded
                    .iter()
                    .find(|o| o.scenario.scenario.id == l.scenario.scenario.id)
                {
                    invalid.push(format!(
                        "{}: field `scenario.id`: `{}` is also the id of {}",
                        p.display(),
                        l.scenario.scenario.id,
                        first.path.display()
                    ));
                } else {
                    loaded.push(l);
                }
            }
            Err(e) => invalid.push(format!("{e:#}")),
        }
    }
    if !invalid.is_empty() {
        for e in &invalid {
            eprintln!("error: {e}");
        }
        bail!("{} invalid file(s); nothing was run", invalid.len());
    }
    let mut inputs: Vec<PathBuf> = loaded
        .iter()
        .flat_map(|l| [l.path.clone(), l.vehicle_path.clone()])
        .collect();
    inputs.extend(a.bench.clone());
    let requested: Vec<(&str, &Path)> =
        [("json", a.json.as_deref()), ("junit", a.junit.as_deref())]
            .into_iter()
            .filter_map(|(n, p)| p.map(|p| (n, p)))
            .collect();
    let key = match &a.sign_key {
        Some(k) => Some(capsule_evidence::integrity::read_private_key(k)?),
        None => None,
    };
    let mut outputs = hil::outputs::prepare(&requested, &inputs)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("--out {}: cannot create the directory", a.out.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = Stop::new();
    hil::signals::install(stop.clone()).context("cannot install the signal handlers")?;
    let mut setup = RunSetup {
        bench,
        bench_name,
        lockstep,
        seed: a.seed,
        stop: stop.clone(),
        fc_output_dir: None,
    };
    let mut results: Vec<(PathBuf, Outcome)> = Vec::new();
    let mut durations: Vec<Duration> = Vec::new();
    let mut worst = 0u8;
    for (n, l) in loaded.iter().enumerate() {
        if stop.is_requested() {
            durations.push(Duration::ZERO);
            results.push((l.path.clone(), Outcome::Skipped));
            continue;
        }
        let dir = run_dir(&a.out, n + 1, &l.scenario.scenario.id)?;
        setup.fc_output_dir = Some(dir.clone());
        let bundle = if a.no_bundle {
            None
        } else {
            let spec = hil::evidence::spec(l, &setup, a.bench.as_deref());
            Some(capsule_evidence::bundle::Bundle::create(
                &dir,
                spec,
                db.clone(),
            )?)
        };
        let start = std::time::Instant::now();
        let progress = progress_bar(&l.scenario.scenario.id, l.scenario.run.max_time_s, &rt);
        let r = assemble::run_one(
            l,
            &setup,
            &db,
            &rt,
            progress.as_ref().map(|p| p.0.clone()),
            bundle.as_ref().map(capsule_evidence::bundle::Bundle::tap),
        );
        let mut record = None;
        let r = r.map(|j| {
            record = Some(j.record);
            j.result
        });
        if let Some((_, task)) = progress {
            task.abort();
            eprint!("\r\x1b[2K");
        }
        let outcome = match r {
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
                for e in r.expectations.iter().filter(|e| !e.passed || !e.judged) {
                    let mark = if e.judged { "x" } else { "?" };
                    println!(
                        "           {mark} {} [{}]: expected {}; measured {}",
                        e.id, e.requirement, e.expected, e.measured
                    );
                }
                if let Some(t) = &r.timing {
                    println!("           {}", t.summary());
                }
                println!("           {}", r.links.summary());
                match r.verdict {
                    Verdict::Fail => worst = worst.max(1),
                    Verdict::Incomplete | Verdict::Error => worst = 2,
                    Verdict::Pass => {}
                }
                Outcome::Judged(Box::new(r))
            }
            Err(e) => {
                println!(
                    "{:<10} {:<10} {}: {}",
                    if stop.is_requested() {
                        "INCOMPLETE"
                    } else {
                        "ERROR"
                    },
                    l.scenario.scenario.id,
                    l.scenario.scenario.title,
                    e.message
                );
                if let Some(c) = &e.links {
                    println!("           {}", c.summary());
                }
                worst = 2;
                Outcome::Error(e)
            }
        };
        let doc = scenario_json(&l.path, &outcome, stop.is_requested());
        if let Err(e) = std::fs::write(dir.join("result.json"), to_pretty(&doc)) {
            eprintln!(
                "warning: cannot write {}: {e}",
                dir.join("result.json").display()
            );
        }
        if let Some(b) = bundle {
            use capsule_evidence::bundle::Outcome as B;
            let o = match (&outcome, &record) {
                (Outcome::Judged(result), Some(record)) => B::Judged { record, result },
                (Outcome::Error(e), _) => B::Error {
                    message: &e.message,
                    links: e.links.as_ref(),
                    interrupted: stop.is_requested(),
                },
                _ => B::Error {
                    message: "no record",
                    links: None,
                    interrupted: stop.is_requested(),
                },
            };
            match b.finish(o, key.as_ref()) {
                Ok(m) => println!(
                    "           bundle {} ({}{})",
                    dir.display(),
                    m.status,
                    if key.is_some() { ", signed" } else { "" }
                ),
                Err(e) => {
                    eprintln!("error: bundle {}: {e}", dir.display());
                    worst = 2;
                }
            }
        }
        drop(record);
        durations.push(start.elapsed());
        results.push((l.path.clone(), outcome));
    }
    let interrupted = stop.is_requested();
    let mut write_errors = 0;
    for o in outputs.drain(..) {
        let bytes = if o.what == "json" {
            let doc = serde_json::json!({
                "format_version": JSON_FORMAT_VERSION,
                "harness_version": env!("CARGO_PKG_VERSION"),
                "bench": setup.bench_name,
                "clock": if lockstep { "lockstep" } else { "realtime" },
                "complete": !interrupted,
                "scenarios": results.iter().map(|(p, o)| scenario_json(p, o, interrupted)).collect::<Vec<_>>(),
            });
            to_pretty(&doc).into_bytes()
        } else {
            junit_xml(&results, &durations)?.into_bytes()
        };
        if let Err(e) = o.write(&bytes) {
            eprintln!("error: {e:#}");
            write_errors += 1;
        }
    }
    if interrupted {
        let run = results
            .iter()
            .filter(|(_, o)| !matches!(o, Outcome::Skipped))
            .count();
        println!(
            "INCOMPLETE: stopped by a signal after {run} of {} scenarios",
            loaded.len()
        );
        worst = 2;
    }
    if write_errors > 0 {
        worst = 2;
    }
    Ok(ExitCode::from(worst))
}

fn to_pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn scenario_json(p: &Path, o: &Outcome, interrupted: bool) -> serde_json::Value {
    let file = p.display().to_string();
    match o {
        Outcome::Judged(r) => serde_json::json!({ "file": file, "result": r }),
        Outcome::Error(e) => serde_json::json!({
            "file": file,
            "error": e.message,
            "incomplete": interrupted,
            "links": e.links,
        }),
        Outcome::Skipped => {
            serde_json::json!({ "file": file, "skipped": "not run: the command was stopped first" })
        }
    }
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

/// JUnit XML (quick-junit) valid against the Jenkins xUnit plugin's JUnit schema
/// (`fixtures/junit/junit-10.xsd`): one suite per scenario with its run's duration,
/// one test case per expectation (its requirement in the name, in the `group`
/// attribute and as a suite property `requirement.<expectation>`; that schema allows
/// no properties inside a test case), a run that ended in error or was stopped as an
/// `error` test case, unjudged expectations and scenarios not run as skipped.
fn junit_xml(results: &[(PathBuf, Outcome)], durations: &[Duration]) -> Result<String> {
    use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("hil");
    for (k, (path, o)) in results.iter().enumerate() {
        let file = path.display().to_string();
        let took = durations.get(k).copied().unwrap_or_default();
        match o {
            Outcome::Judged(r) => {
                let mut suite = TestSuite::new(r.id.as_str());
                suite.set_time(took);
                suite.add_property(Property::new("file", file.as_str()));
                suite.add_property(Property::new("clock", r.clock.as_str()));
                for e in &r.expectations {
                    suite.add_property(Property::new(
                        format!("requirement.{}", e.id),
                        e.requirement.as_str(),
                    ));
                }
                if r.incomplete {
                    let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
                    st.set_message(format!("incomplete: stopped at t = {:.1} s", r.t_end_s));
                    let mut c = TestCase::new("run", st);
                    c.set_classname(r.id.as_str());
                    suite.add_test_case(c);
                }
                for e in &r.expectations {
                    let st = if !e.judged {
                        let mut st = TestCaseStatus::skipped();
                        st.set_message(format!(
                            "not judged: the run stopped at t = {:.1} s",
                            r.t_end_s
                        ));
                        st
                    } else if e.passed {
                        TestCaseStatus::success()
                    } else {
                        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        st.set_message(format!("expected {}; measured {}", e.expected, e.measured));
                        st.set_description(format!(
                            "expected {}\nmeasured {}",
                            e.expected, e.measured
                        ));
                        st
                    };
                    let mut c = TestCase::new(format!("{} [{}]", e.id, e.requirement), st);
                    c.set_classname(r.id.as_str());
                    c.extra
                        .insert("group".into(), e.requirement.as_str().into());
                    suite.add_test_case(c);
                }
                report.add_test_suite(suite);
            }
            Outcome::Error(e) => {
                let mut suite = TestSuite::new(file.as_str());
                suite.set_time(took);
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
                st.set_message(e.message.as_str());
                let mut c = TestCase::new("run", st);
                c.set_classname(file.as_str());
                suite.add_test_case(c);
                report.add_test_suite(suite);
            }
            Outcome::Skipped => {
                let mut suite = TestSuite::new(file.as_str());
                let mut st = TestCaseStatus::skipped();
                st.set_message("not run: the command was stopped first");
                let mut c = TestCase::new("run", st);
                c.set_classname(file.as_str());
                suite.add_test_case(c);
                report.add_test_suite(suite);
            }
        }
    }
    let xml = report.to_string().map_err(|e| anyhow!("JUnit: {e}"))?;
    // quick-junit always writes a `disabled` count, which the schema does not allow.
    let re = regex_lite::Regex::new(r#" disabled="[0-9]+""#).map_err(|e| anyhow!("{e}"))?;
    Ok(re.replace_all(&xml, "").into_owned())
}
