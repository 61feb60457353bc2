//! `hil`: runs capsule scenarios in the loop. See `hil --help` and `hil <command>
//! --help`.
//!
//! The default bench is the simulated one (`fixtures/benches/simulated.toml`, built
//! in): the reference flight computer in its own process, IMU and GNSS on
//! pseudo-terminals, CAN on the virtual bus, lockstep clock. Exit code: 0 all pass,
//! 1 a failure, 2 an error (including a file that does not validate, a dead link, a
//! crashed flight computer, or a run stopped by a signal, whose results are written and
//! marked incomplete).

use anyhow::{Context, Result, bail};
use capsule_runner::stop::Stop;
use clap::{Parser, Subcommand, ValueEnum};
use hil::assemble::{self, Loaded, RunSetup};
use hil::library::{self, Outcome, RunOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Measure the real-time closed loop (physics, devices, reference flight computer)
    /// for a set time: lateness histogram and percentiles, late steps, overruns,
    /// command latency; exit 0 when the targets hold, 1 when one is missed.
    BenchRt(hil::benchrt::BenchRtArgs),
    /// Monte Carlo campaigns: dispersed runs on every core, one run (`--run I`) or one
    /// shard (`--shard I/N`) of them; `campaign merge` combines shard results.
    Campaign(hil::campaign::CampaignArgs),
    /// The twin view: replay a run bundle (`hil view DIR`), attach to a running run
    /// (`--attach`), or render key frames headless (`--screenshot`).
    View(hil::viewcmd::ViewArgs),
    /// The ICD: `icd doc` prints the message tables (identifiers, signals, scaling,
    /// ranges, value lists) generated from a DBC, as in `fixtures/icd/README.md`;
    /// `icd check` checks a DBC and a binding file together before any run.
    #[command(subcommand)]
    Icd(IcdCommand),
}

#[derive(Subcommand)]
enum IcdCommand {
    /// Print the human-readable ICD document (Markdown) of a DBC and a binding: the CAN
    /// message tables with their value lists, the serial lines' byte tables, the
    /// transports, start-up and lockstep protocol with byte-level examples, the
    /// conventions and the binding's tables (`fixtures/icd/README.md` is this output
    /// for the shipped ICD).
    Doc {
        /// The DBC (default: the built-in `fixtures/icd/capsule.dbc`).
        #[arg(long)]
        dbc: Option<PathBuf>,
        /// The binding (default, or `builtin`: the built-in
        /// `fixtures/icd/capsule.binding.toml`).
        #[arg(long)]
        binding: Option<PathBuf>,
        /// Only the CAN message tables.
        #[arg(long)]
        messages_only: bool,
    },
    /// Check a DBC against an ICD binding: every bound signal exists once, is sent by
    /// the right node, carries a unit of its quantity's dimension, has the bits and
    /// range its role needs, and every other signal of a message the twin or the
    /// flight computer encodes has a start value. Errors name file, line, column and
    /// field. Exit status 0 when they fit, 2 when not.
    Check {
        /// The DBC (default: the built-in `fixtures/icd/capsule.dbc`).
        #[arg(long)]
        dbc: Option<PathBuf>,
        /// The binding (default: the built-in `fixtures/icd/capsule.binding.toml`).
        #[arg(long)]
        binding: Option<PathBuf>,
    },
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
    /// The avionics' DBC (default: the bench's `[icd] dbc`, else the built-in
    /// `fixtures/icd/capsule.dbc`); its path and SHA-256 go into the results and the
    /// bundles.
    #[arg(long)]
    icd: Option<PathBuf>,
    /// The ICD binding: how the twin meets the DBC (default: the bench's
    /// `[icd] binding`, else the built-in `fixtures/icd/capsule.binding.toml`); its path
    /// and SHA-256 go into the results and the bundles.
    #[arg(long)]
    binding: Option<PathBuf>,
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
    /// Run this many scenarios at once, each with its own flight computer and links
    /// (default: the number of cores). Output and results keep the list's order; in
    /// lockstep they do not depend on this number.
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,
    #[command(flatten)]
    rt: hil::rtargs::RtArgs,
    #[command(flatten)]
    view: hil::viewcmd::RunViewArgs,
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
        Command::BenchRt(a) => hil::benchrt::run(&a),
        Command::Campaign(a) => hil::campaign::run(&a),
        Command::View(a) => hil::viewcmd::run(&a),
        Command::Icd(IcdCommand::Doc {
            dbc,
            binding,
            messages_only,
        }) => cmd_icd_doc(dbc.as_deref(), binding.as_deref(), messages_only),
        Command::Icd(IcdCommand::Check { dbc, binding }) => cmd_icd_check(&dbc, &binding),
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
            match assemble::load_bench(&p).and_then(|b| assemble::check_bench(&b, &p).map(|()| b)) {
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
    let icd = assemble::icd_paths(
        a.icd.as_deref(),
        a.binding.as_deref(),
        &bench,
        a.bench.as_deref(),
    );
    // Which ICD the run used, for its results (the bundles hash and copy it too).
    let assemble::LoadedIcd {
        icd: db,
        json: icd_json,
    } = assemble::load_icd(&icd)?;
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
    inputs.extend(icd.dbc.clone());
    inputs.extend(icd.binding.clone());
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
    let stop = Stop::new();
    hil::signals::install(stop.clone()).context("cannot install the signal handlers")?;
    let setup = RunSetup {
        bench,
        bench_name,
        lockstep,
        seed: a.seed,
        stop: stop.clone(),
        fc_output_dir: None,
        rt: a.rt.options(),
        icd: icd.clone(),
    };
    // A live view shows one run at a time.
    let jobs = if a.view.view {
        1
    } else {
        a.jobs.map_or_else(library::default_jobs, usize::from)
    };
    let opts = RunOptions {
        out: a.out.clone(),
        no_bundle: a.no_bundle,
        sign_key: key,
        bench_file: a.bench.clone(),
        progress: jobs == 1,
        figures_target: None,
        view: a.view.options(lockstep),
        key_frames: a.view.key_frames,
    };
    let numbers: Vec<usize> = (1..=loaded.len()).collect();
    let runs = library::run_all(&loaded, &numbers, &setup, &db, &opts, jobs, |r| {
        print!("{}", r.text);
    })?;
    let mut worst = runs.iter().map(|r| r.severity).max().unwrap_or(0);
    let interrupted = stop.is_requested();

    let mut write_errors = 0;
    for o in outputs.drain(..) {
        let bytes = if o.what == "json" {
            let doc = serde_json::json!({
                "format_version": JSON_FORMAT_VERSION,
                "harness_version": env!("CARGO_PKG_VERSION"),
                "bench": setup.bench_name,
                "clock": if lockstep { "lockstep" } else { "realtime" },
                "icd": icd_json,
                "complete": !interrupted,
                "scenarios": runs.iter().map(|r| library::scenario_json(&r.path, &r.outcome, interrupted)).collect::<Vec<_>>(),
            });
            library::to_pretty(&doc).into_bytes()
        } else {
            library::junit_xml(&runs)?.into_bytes()
        };
        if let Err(e) = o.write(&bytes) {
            eprintln!("error: {e:#}");
            write_errors += 1;
        }
    }
    if interrupted {
        let run = runs
            .iter()
            .filter(|r| !matches!(r.outcome, Outcome::Skipped))
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

fn cmd_icd_check(dbc: &Option<PathBuf>, binding: &Option<PathBuf>) -> Result<ExitCode> {
    let paths = assemble::IcdPaths {
        dbc: dbc.clone(),
        binding: binding.clone(),
    };
    let icd = assemble::load_icd(&paths)?.icd;
    let b = &icd.binding;
    println!(
        "ok     {} binds {} ({} messages): {} bound signals, FC node {}",
        b.source,
        icd.source,
        icd.messages().count(),
        b.roles().len(),
        b.fc.node
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_icd_doc(
    dbc: Option<&Path>,
    binding: Option<&Path>,
    messages_only: bool,
) -> Result<ExitCode> {
    let binding = binding.filter(|b| *b != Path::new("builtin"));
    let paths = assemble::IcdPaths {
        dbc: dbc.map(Path::to_path_buf),
        binding: binding.map(Path::to_path_buf),
    };
    let icd = assemble::load_icd(&paths)?.icd;
    if messages_only {
        print!("{}", capsule_icd::doc::can_messages_markdown(&icd.db));
        return Ok(ExitCode::SUCCESS);
    }
    // The document names the files by their file names; the shipped pair (built in, or
    // files with the same text) gets the shipped ICD's notes.
    let name = |p: Option<&Path>, builtin: &str| {
        p.and_then(Path::file_name)
            .map_or(builtin.to_string(), |n| n.to_string_lossy().into_owned())
    };
    fn same(p: Option<&Path>, shipped: &str, what: &'static str) -> Result<bool> {
        Ok(match p {
            None => true,
            Some(p) => capsule_files::read_text(p, what)? == shipped,
        })
    }
    let shipped = same(dbc, capsule_icd::SHIPPED_DBC, "DBC")?
        && same(binding, capsule_icd::SHIPPED_BINDING, "binding")?;
    print!(
        "{}",
        capsule_icd::doc::document(
            &icd,
            &name(dbc, "capsule.dbc"),
            &name(binding, "capsule.binding.toml"),
            shipped
        )?
    );
    Ok(ExitCode::SUCCESS)
}
