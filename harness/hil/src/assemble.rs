//! From files to a judged run: the one path every command uses.
//!
//! [`load`] reads a scenario and its vehicle (regular files only, size-limited, every
//! error located); [`prepare`] builds the twin and the device emulators and checks
//! what only they can (a `descent` start needs a drogue); [`check`] runs both, so
//! that `hil check` rejects exactly what `hil run` would; [`run_one`] wires a bench,
//! runs the closed loop and judges it.

use anyhow::{Context, Result, anyhow, bail};
use capsule_icd::Icd;
use capsule_runner::devices::Devices;
use capsule_runner::record::{LinkCounters, RunRecord, TimingBudget};
use capsule_runner::rt::RtOptions;
use capsule_runner::session::{Clock, FcCanTransport, Mission, RunConfig, Separation, run};
use capsule_runner::stop::Stop;
use capsule_runner::tap::Tap;
use capsule_scenario::bench::Bench;
use capsule_scenario::eval::{ScenarioResult, evaluate};
use capsule_scenario::spec::{Phase, Scenario};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use twin_core::config::Source;
use twin_core::twin::{ModelOptions, Twin};
use twin_core::vehicle::VehicleSpec;

/// The DBC `hil` is built with (also hashed and copied into every bundle).
pub const DBC: &str = capsule_icd::SHIPPED_DBC;
/// The ICD binding `hil` is built with.
pub const BINDING: &str = capsule_icd::SHIPPED_BINDING;

/// The ICD the harness speaks when none is given (built in).
pub fn icd() -> Result<Icd> {
    Ok(Icd::shipped()?)
}

/// Where a run's ICD comes from: its DBC and its binding file (`None`: the built-in
/// one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IcdPaths {
    /// The DBC.
    pub dbc: Option<PathBuf>,
    /// The binding.
    pub binding: Option<PathBuf>,
}

/// An ICD loaded from its files, with what the results say about it.
#[derive(Debug, Clone)]
pub struct LoadedIcd {
    /// The ICD.
    pub icd: Icd,
    /// `{dbc, sha256, binding, binding_sha256}` for the results.
    pub json: serde_json::Value,
}

/// The ICD of a run: the DBC and binding at `paths` (`hil run --icd/--binding`, a
/// bench's `[icd]`), or the built-in ones. Each file is read once; errors name the
/// file, line, column (and field, for the binding).
pub fn load_icd(paths: &IcdPaths) -> Result<LoadedIcd> {
    let read = |p: &Option<PathBuf>,
                what: &'static str,
                built_in: &str,
                name: &str|
     -> Result<(String, String)> {
        Ok(match p {
            Some(p) => (p.display().to_string(), capsule_files::read_text(p, what)?),
            None => (format!("{name} (built in)"), built_in.to_string()),
        })
    };
    let (dn, dt) = read(&paths.dbc, "DBC", DBC, "fixtures/icd/capsule.dbc")?;
    let (bn, bt) = read(
        &paths.binding,
        "binding",
        BINDING,
        "fixtures/icd/capsule.binding.toml",
    )?;
    let icd = Icd::load(&dn, &dt, &bn, &bt)?;
    let sha = |t: &str| capsule_evidence::integrity::sha256_bytes(t.as_bytes());
    let json = serde_json::json!({
        "dbc": dn,
        "sha256": sha(&dt),
        "binding": bn,
        "binding_sha256": sha(&bt),
    });
    Ok(LoadedIcd { icd, json })
}

/// Checks a bench's readiness messages against the ICD: each must be a message the
/// flight computer sends.
pub fn check_ready(bench_name: &str, ready: &[String], icd: &Icd) -> Result<()> {
    let fc = &icd.binding.fc.node;
    if let Some(bad) = ready
        .iter()
        .find(|n| icd.by_name(n).is_none_or(|m| m.transmitter != *fc))
    {
        bail!(
            "{bench_name}: flight_computer.ready: `{bad}` is not a message that {} says the flight computer ({fc}) sends",
            icd.source
        );
    }
    Ok(())
}

/// The messages a started flight computer's readiness is taken from: the bench's
/// `flight_computer.ready`, else the ICD's identification and heartbeat messages.
pub fn ready_messages(b: &Bench, icd: &Icd) -> Vec<String> {
    b.flight_computer.ready.clone().unwrap_or_else(|| {
        ["fc.ident", "fc.status"]
            .iter()
            .filter_map(|r| icd.binding.message_role(r).map(|m| m.name.clone()))
            .collect()
    })
}

/// Checks a bench file beyond its own format: its ICD (`[icd]`) loads, and its
/// readiness messages are the flight computer's in that ICD.
pub fn check_bench(b: &Bench, path: &Path) -> Result<()> {
    let icd = load_icd(&icd_paths(None, None, b, Some(path)))?.icd;
    check_ready(&path.display().to_string(), &ready_messages(b, &icd), &icd)
}

/// The ICD files a run uses: `--icd`/`--binding` first, else the bench's `[icd] dbc`
/// and `binding` (relative to the bench file's directory), else the built-in ones.
pub fn icd_paths(
    cli_dbc: Option<&Path>,
    cli_binding: Option<&Path>,
    bench: &Bench,
    bench_file: Option<&Path>,
) -> IcdPaths {
    let rel = |p: &str| {
        bench_file
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from(p), |d| d.join(p))
    };
    IcdPaths {
        dbc: cli_dbc
            .map(Path::to_path_buf)
            .or_else(|| bench.icd.as_ref().map(|i| rel(&i.dbc))),
        binding: cli_binding.map(Path::to_path_buf).or_else(|| {
            bench
                .icd
                .as_ref()
                .and_then(|i| i.binding.as_deref())
                .map(rel)
        }),
    }
}

/// Scenario files named by the arguments: directories expand to their `*.toml`
/// regular files, sorted.
pub fn scenario_paths(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in args {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        bail!("no scenario files given");
    }
    Ok(out)
}

/// A scenario with its vehicle.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The scenario file.
    pub path: PathBuf,
    /// The scenario.
    pub scenario: Scenario,
    /// The vehicle file.
    pub vehicle_path: PathBuf,
    /// The vehicle.
    pub vehicle: VehicleSpec,
}

/// Reads and validates a scenario and its vehicle.
pub fn load(path: &Path, db: &Icd) -> Result<Loaded> {
    load_with(path, None, db)
}

/// Reads and validates a scenario, and its vehicle from `vehicle` when given (a run
/// bundle's copy) instead of the scenario's `initial.vehicle`.
pub fn load_with(path: &Path, vehicle: Option<&Path>, db: &Icd) -> Result<Loaded> {
    let name = path.display().to_string();
    let text = capsule_files::read_text(path, "scenario")?;
    let src = Source::new(&name, &text);
    let scenario = Scenario::from_toml(&src)?;
    scenario.check_icd(db, &src)?;
    let vpath = match vehicle {
        Some(v) => v.to_path_buf(),
        None => path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&scenario.initial.vehicle),
    };
    let vname = vpath.display().to_string();
    let vtext = capsule_files::read_text(&vpath, "vehicle")
        .map_err(|e| src.error_at_field("initial.vehicle", e.to_string()))?;
    let vehicle = VehicleSpec::from_toml(&Source::new(&vname, &vtext))?;
    scenario.check_vehicle(&vehicle, &src)?;
    Ok(Loaded {
        path: path.to_path_buf(),
        scenario,
        vehicle_path: vpath,
        vehicle,
    })
}

/// Reads and validates a bench file.
pub fn load_bench(path: &Path) -> Result<Bench> {
    let text = capsule_files::read_text(path, "bench")?;
    Ok(Bench::from_toml(&Source::new(
        &path.display().to_string(),
        &text,
    ))?)
}

/// True when `path` is a bench file (it has a `[bench]` table).
pub fn is_bench(path: &Path) -> bool {
    capsule_files::read_text(path, "file").is_ok_and(|t| t.lines().any(|l| l.trim() == "[bench]"))
}

/// The twin and the device emulators of a scenario, ready to run.
pub struct Prepared {
    /// The twin at its initial state.
    pub twin: Twin,
    /// The devices.
    pub devices: Devices,
}

/// Builds the twin and the devices of `l` at the bench's physics rate.
pub fn prepare(l: &Loaded, db: &Icd, physics_rate_hz: f64, seed: u64) -> Result<Prepared> {
    let s = &l.scenario;
    let opts = ModelOptions {
        rate_hz: physics_rate_hz,
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
    let mut devices = Devices::new(db.binding.clone(), &l.vehicle.sensors, seed);
    if let Err(e) = devices.check_serial_capacity() {
        bail!(
            "{}: {e} (the vehicle {} sets the sensor rates)",
            db.binding.source,
            l.vehicle_path.display()
        );
    }
    let mut twin = Twin::new(opts, l.vehicle.clone(), init, 0.0)
        .with_context(|| format!("{}: the twin rejects the initial state", l.path.display()))?;
    if s.initial.phase == Phase::Descent {
        let before_s = s
            .initial
            .drogue_fired_s_before
            .unwrap_or(Phase::DROGUE_FIRED_S_BEFORE);
        if !devices.start_under_drogue(&mut twin, before_s) {
            bail!(
                "{}: field `initial.phase`: phase `descent` needs a parachute named `drogue` in {}",
                l.path.display(),
                l.vehicle_path.display()
            );
        }
    }
    Ok(Prepared { twin, devices })
}

/// Everything `hil run` checks before running `path`: the scenario, its vehicle, and
/// the twin and devices built from them.
pub fn check(path: &Path, db: &Icd, physics_rate_hz: f64) -> Result<Loaded> {
    let l = load(path, db)?;
    prepare(&l, db, physics_rate_hz, l.scenario.initial.seed)?;
    Ok(l)
}

/// How runs are set up, from the bench and the command line.
#[derive(Debug, Clone)]
pub struct RunSetup {
    /// The bench.
    pub bench: Bench,
    /// The bench's name for messages (its file, or the built-in simulated bench).
    pub bench_name: String,
    /// Lockstep (else real time).
    pub lockstep: bool,
    /// Seed overriding the scenarios' own.
    pub seed: Option<u64>,
    /// The stop flag (signals).
    pub stop: Stop,
    /// Where a started flight computer's output goes (a directory per run), if kept.
    pub fc_output_dir: Option<PathBuf>,
    /// What the real-time loop asks of the operating system.
    pub rt: RtOptions,
    /// The ICD files of the run (the built-in ones where `None`); the reference
    /// flight computer is given them too.
    pub icd: IcdPaths,
}

/// A run that ended in error: its cause (with the scenario) and the link counters.
#[derive(Debug)]
pub struct RunErrorReport {
    /// The cause, for people.
    pub message: String,
    /// The links' counters when it ended (absent if the links never opened).
    pub links: Option<LinkCounters>,
}

/// A judged run: its verdict and what it recorded.
#[derive(Debug)]
pub struct Judged {
    /// The verdict.
    pub result: ScenarioResult,
    /// The record it was judged on.
    pub record: RunRecord,
}

/// A run's twin view: the view stream's sending end, and in lockstep the pace
/// (at most this many times real time).
#[derive(Debug, Clone)]
pub struct ViewHook {
    /// The view stream.
    pub tap: Tap,
    /// Lockstep pace, x real time (`None`: as fast as the avionics go).
    pub pace: Option<f64>,
}

/// Runs one scenario on the bench and judges it; `tap` receives the record stream
/// (an evidence bundle's writer), `view` the twin view's.
pub fn run_one(
    l: &Loaded,
    setup: &RunSetup,
    db: &Icd,
    rt: &tokio::runtime::Runtime,
    progress_ms: Option<Arc<AtomicU64>>,
    tap: Option<Tap>,
    view: Option<ViewHook>,
) -> Result<Judged, RunErrorReport> {
    let cfg = run_config(l, setup, db, progress_ms).map_err(|e| RunErrorReport {
        message: format!("{e:#}"),
        links: None,
    })?;
    check_ready(&setup.bench_name, &cfg.ready_messages, db).map_err(|e| RunErrorReport {
        message: format!("{e:#}"),
        links: None,
    })?;
    let (view, pace) = view.map_or((None, None), |v| (Some(v.tap), v.pace));
    let cfg = RunConfig {
        tap,
        view,
        pace,
        ..cfg
    };
    let seed = setup.seed.unwrap_or(l.scenario.initial.seed);
    let p =
        prepare(l, db, setup.bench.timing.physics_rate_hz, seed).map_err(|e| RunErrorReport {
            message: format!("{e:#}"),
            links: None,
        })?;
    let r = rt.block_on(run(&cfg, db.db.clone(), p.twin, p.devices));
    // The record stream ends with the run: no sender may outlive it.
    drop(cfg);
    match r {
        Ok(record) => Ok(Judged {
            result: evaluate(&l.scenario, &record, db),
            record,
        }),
        Err(f) => Err(RunErrorReport {
            message: format!("scenario {}: {}", l.scenario.scenario.id, f.error),
            links: Some(f.links),
        }),
    }
}

/// The runner's configuration of scenario `l` on the bench of `setup` (no record
/// stream).
pub fn run_config(
    l: &Loaded,
    setup: &RunSetup,
    icd: &Icd,
    progress_ms: Option<Arc<AtomicU64>>,
) -> Result<RunConfig> {
    let s = &l.scenario;
    let seed = setup.seed.unwrap_or(s.initial.seed);
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
            for (flag, p) in [("--dbc", &setup.icd.dbc), ("--binding", &setup.icd.binding)] {
                if let Some(p) = p {
                    let abs = std::path::absolute(p).with_context(|| {
                        format!("{}: cannot make the path absolute", p.display())
                    })?;
                    c.extend([flag.to_string(), abs.display().to_string()]);
                }
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
    let timing = &setup.bench.timing;
    Ok(RunConfig {
        fc_command,
        fc_can: if fc.can_transport == "slcan" {
            FcCanTransport::Slcan
        } else {
            FcCanTransport::VirtualBus
        },
        ready_messages: ready_messages(&setup.bench, icd),
        links,
        clock: if setup.lockstep {
            Clock::Lockstep
        } else {
            Clock::Realtime(timing.budget())
        },
        cycle_steps: (timing.physics_rate_hz / 100.0).round() as u32,
        max_time_s: s.run.max_time_s,
        after_landing_s: s.run.after_landing_s,
        // Validated ranges (bench.rs) keep these conversions in bounds.
        ack_timeout: Duration::from_secs_f64(if setup.lockstep {
            fc.ack_timeout_s
        } else {
            timing.silence_timeout_s
        }),
        join_timeout: Duration::from_secs_f64(fc.join_timeout_s),
        fc_output_dir: setup.fc_output_dir.clone(),
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
        progress_ms,
        tap: None,
        view: None,
        pace: None,
        rt: setup.rt.clone(),
        budget_source: if timing.budget() == TimingBudget::default() {
            format!("the defaults ({} sets no limit)", setup.bench_name)
        } else {
            format!("{} [timing]", setup.bench_name)
        },
    })
}
