//! `hil campaign`: Monte Carlo campaigns on every core, one run or one shard of them,
//! and merging shard results.
//!
//! Closed loop: every run is the campaign's scenario with its sample applied, written
//! as a scenario and a vehicle file (`samples/run-NNNNNN.*.toml`: exactly what flew,
//! read back through the same validation as any file) and run on the bench (lockstep
//! by default) through [`crate::library`], with an evidence bundle each. Physics: the
//! case file with its sample, flown by the twin alone.
//!
//! The output directory holds `campaign.json` (the result: runs by index and their
//! summary, nothing that depends on when or where it ran), `report.html`,
//! `bundles.json` (run index to bundle directory) and the runs' directories.

use crate::assemble::{self, Loaded, RunSetup};
use crate::library::{self, Outcome, RunOptions};
use anyhow::{Context, Result, anyhow, bail};
use capsule_campaign::result::{self, CampaignResult, Check, RunResult};
use capsule_campaign::sample::{self, Files};
use capsule_campaign::spec::{CampaignSpec, Mode};
use capsule_runner::stop::Stop;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use twin_core::config::Source;

/// `hil campaign` options.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CampaignArgs {
    /// `merge`: combine shard results.
    #[command(subcommand)]
    pub command: Option<CampaignCommand>,
    /// The campaign file.
    pub file: Option<PathBuf>,
    /// Runs at once (default: the number of cores).
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Run only the I-th of N deterministic partitions (every N-th run from I - 1),
    /// e.g. `--shard 3/8`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Run only this run (0-based index), exactly as the campaign runs it.
    #[arg(long, value_name = "I")]
    pub run: Option<u64>,
    /// Where the campaign's directory goes.
    #[arg(long, default_value = "campaigns")]
    pub out: PathBuf,
    /// The bench for closed-loop runs (default: the built-in simulated bench).
    #[arg(long)]
    pub bench: Option<PathBuf>,
    /// Closed loop: no evidence bundle per run (only its result).
    #[arg(long)]
    pub no_bundle: bool,
}

/// `hil campaign` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CampaignCommand {
    /// Merge shard results (their directories) into one campaign result, identical
    /// to the unsharded campaign's.
    Merge {
        /// Shard output directories (each with its `campaign.json`).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the merged campaign.json and report.html go.
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected I/N, e.g. 2/8"))?;
    let i: u64 = i
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: I is not a number"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: N is not a number"))?;
    if n == 0 || n > 100_000 || i == 0 || i > n {
        return Err(format!("`{s}`: expected 1 <= I <= N <= 100000"));
    }
    Ok((i, n))
}

/// A campaign file read with everything it names.
struct Nominal {
    spec: CampaignSpec,
    path: PathBuf,
    sha256: String,
    /// The nominal files as JSON (`scenario` or `case`, and `vehicle`).
    files: Files,
    /// Closed loop: the nominal scenario, loaded.
    loaded: Option<Loaded>,
    /// Physics: the nominal case, read once.
    case: Option<NominalCase>,
}

/// A physics campaign's case file, read once.
struct NominalCase {
    /// Its path, for messages.
    name: String,
    /// Its text (errors about its vehicle are located in it).
    text: String,
    /// The case.
    case: twin_core::case::CaseSpec,
    /// Its vehicle file, if it names one.
    vehicle: Option<twin_core::vehicle::VehicleSpec>,
}

fn read(path: &Path, db: &capsule_icd::Icd) -> Result<Nominal> {
    let name = path.display().to_string();
    let text = capsule_files::read_text(path, "campaign")?;
    let src = Source::new(&name, &text);
    let spec = CampaignSpec::from_toml(&src)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let (files, loaded, case) = match spec.campaign.mode {
        Mode::ClosedLoop => {
            let f = spec.campaign.scenario.clone().unwrap_or_default();
            let p = dir.join(&f);
            let l = assemble::load(&p, db)
                .map_err(|e| src.error_at_field("campaign.scenario", format!("{e:#}")))?;
            let files = vec![
                ("scenario".to_string(), json(&l.scenario)?),
                ("vehicle".to_string(), json(&l.vehicle)?),
            ];
            (files, Some(l), None)
        }
        Mode::Physics => {
            let f = spec.campaign.case.clone().unwrap_or_default();
            let p = dir.join(&f);
            let nc =
                read_case(&p).map_err(|e| src.error_at_field("campaign.case", format!("{e:#}")))?;
            let mut files = vec![("case".to_string(), json(&nc.case)?)];
            if let Some(v) = &nc.vehicle {
                files.push(("vehicle".to_string(), json(v)?));
            }
            (files, None, Some(nc))
        }
    };
    if let Some((k, e)) = sample::check_paths(&spec, &files).into_iter().next() {
        return Err(src
            .error_at_field(&format!("disperse[{k}].parameter"), e)
            .into());
    }
    Ok(Nominal {
        sha256: capsule_evidence::integrity::sha256_bytes(text.as_bytes()),
        spec,
        path: path.to_path_buf(),
        files,
        loaded,
        case,
    })
}

/// A file's contents as JSON.
fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(v)?)
}

/// A case file and its vehicle file (if it names one).
fn read_case(p: &Path) -> Result<NominalCase> {
    let name = p.display().to_string();
    let text = capsule_files::read_text(p, "case")?;
    let case = twin_core::case::CaseSpec::from_toml(&Source::new(&name, &text))?;
    let vehicle = match &case.vehicle.file {
        None => None,
        Some(f) => {
            let vp = p.parent().unwrap_or(Path::new(".")).join(f);
            let vname = vp.display().to_string();
            let vtext = capsule_files::read_text(&vp, "vehicle")?;
            Some(twin_core::vehicle::VehicleSpec::from_toml(&Source::new(
                &vname, &vtext,
            ))?)
        }
    };
    Ok(NominalCase {
        name,
        text,
        case,
        vehicle,
    })
}

/// Where a campaign's output goes: `OUT/<id>`, `OUT/<id>.shard-I-of-N` or
/// `OUT/<id>.run-I` (the id is validated to one plain path component); refused if
/// it already holds a result.
fn out_dir(out: &Path, id: &str, shard: Option<(u64, u64)>, run: Option<u64>) -> Result<PathBuf> {
    let name = match (shard, run) {
        (_, Some(i)) => format!("{id}.run-{i}"),
        (Some((i, n)), None) => format!("{id}.shard-{i}-of-{n}"),
        (None, None) => id.to_string(),
    };
    let d = out.join(name);
    if d.join("campaign.json").exists() {
        bail!(
            "{} already holds a campaign result; choose another --out (nothing is overwritten)",
            d.display()
        );
    }
    std::fs::create_dir_all(d.join("samples"))
        .with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}

/// Runs `hil campaign`.
pub fn run(a: &CampaignArgs) -> Result<ExitCode> {
    if let Some(CampaignCommand::Merge { dirs, out }) = &a.command {
        return merge(dirs, out);
    }
    let Some(file) = &a.file else {
        bail!("give a campaign file (or `hil campaign merge DIR... --out DIR`)");
    };
    let db = assemble::icd()?;
    let n = read(file, &db)?;
    let total = n.spec.campaign.runs;
    let indices: Vec<u64> = match (a.run, a.shard) {
        (Some(i), _) if i >= total => bail!("--run {i}: the campaign has runs 0 to {}", total - 1),
        (Some(i), _) => vec![i],
        (None, Some((i, k))) => result::shard_indices(total, i, k).collect(),
        (None, None) => (0..total).collect(),
    };
    let dir = out_dir(&a.out, &n.spec.campaign.id, a.shard, a.run)?;
    let stop = Stop::new();
    crate::signals::install(stop.clone()).context("cannot install the signal handlers")?;
    let jobs = a.jobs.map_or_else(library::default_jobs, usize::from);
    let started = std::time::Instant::now();
    let (runs, bundles) = match n.spec.campaign.mode {
        Mode::ClosedLoop => closed_loop(a, &n, &indices, &dir, &db, &stop, jobs)?,
        Mode::Physics => (physics(&n, &indices, &stop, jobs)?, BTreeMap::new()),
    };
    let complete = runs.len() == indices.len() && !stop.is_requested();
    let summary = result::summarise(&runs);
    let r = CampaignResult {
        format_version: result::FORMAT_VERSION,
        campaign: n.spec.campaign.id.clone(),
        campaign_sha256: n.sha256.clone(),
        mode: match n.spec.campaign.mode {
            Mode::ClosedLoop => "closed_loop",
            Mode::Physics => "physics",
        }
        .into(),
        seed: n.spec.campaign.seed,
        total_runs: total,
        shard: if a.run.is_some() { None } else { a.shard },
        complete,
        runs,
        summary,
    };
    write_result(&dir, &r, &n.spec.campaign.title, &rerun(file), &bundles)?;
    let s = &r.summary;
    println!(
        "campaign {}: {} runs in {:.1} s ({} passed, {} failed, {} errors){}",
        r.campaign,
        s.runs,
        started.elapsed().as_secs_f64(),
        s.passed,
        s.failed,
        s.errors,
        if complete {
            ""
        } else {
            "; INCOMPLETE: stopped by a signal"
        }
    );
    for q in &s.requirements {
        println!(
            "  {:<14} {}/{} passed, rate {:.4} (95 % Wilson {:.4} to {:.4})",
            q.requirement, q.passed, q.runs, q.rate, q.wilson95_low, q.wilson95_high
        );
    }
    for f in &s.figures {
        println!(
            "  {:<28} mean {:.4} std {:.4} min {:.4} max {:.4} {}",
            f.name, f.mean, f.std, f.min, f.max, f.unit
        );
    }
    println!("  result {}", dir.join("campaign.json").display());
    println!("  report {}", dir.join("report.html").display());
    Ok(ExitCode::from(if !complete || s.errors > 0 {
        2
    } else if s.failed > 0 {
        1
    } else {
        0
    }))
}

/// The command that re-runs run `{i}`.
fn rerun(file: &Path) -> String {
    format!("hil campaign {} --run {{i}}", file.display())
}

fn write_result(
    dir: &Path,
    r: &CampaignResult,
    title: &str,
    rerun: &str,
    bundles: &BTreeMap<u64, String>,
) -> Result<()> {
    let json = serde_json::to_string_pretty(r)?;
    capsule_evidence::write_atomic(&dir.join("campaign.json"), json.as_bytes())?;
    capsule_evidence::write_atomic(
        &dir.join("bundles.json"),
        serde_json::to_string_pretty(bundles)?.as_bytes(),
    )?;
    let html = capsule_campaign::report::html(r, title, rerun, bundles)?;
    capsule_evidence::write_atomic(&dir.join("report.html"), html.as_bytes())?;
    Ok(())
}

/// The sampled scenario and vehicle of run `i`, written under `dir/samples` and read
/// back through the scenario and vehicle validation.
fn sampled_scenario(
    n: &Nominal,
    i: u64,
    dir: &Path,
    db: &capsule_icd::Icd,
) -> Result<(Loaded, Vec<sample::Drawn>)> {
    let (mut files, drawn) =
        sample::apply(&n.spec, &n.files, i).map_err(|e| anyhow!("run {i}: {e}"))?;
    // Each run its own sensor-noise and bus-fault seed, from (campaign seed, i).
    let seed = sample::run_seed(&n.spec, i);
    if let Some(init) = files
        .iter_mut()
        .find(|(f, _)| f == "scenario")
        .and_then(|(_, v)| v.get_mut("initial"))
    {
        init["seed"] = serde_json::Value::from(seed);
    }
    let get = |name: &str| {
        files
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v)
            .ok_or_else(|| anyhow!("no {name}"))
    };
    let scn = dir
        .join("samples")
        .join(format!("run-{i:06}.scenario.toml"));
    let veh = dir.join("samples").join(format!("run-{i:06}.vehicle.toml"));
    let mut header = format!(
        "# Campaign {} run {i} (campaign seed {}, run seed {seed}): {}\n",
        n.spec.campaign.id,
        n.spec.campaign.seed,
        n.path.display()
    );
    for d in &drawn {
        header.push_str(&format!(
            "# {} = {} (nominal {}, drawn {})\n",
            d.parameter, d.value, d.nominal, d.drawn
        ));
    }
    let scn_text = sample::to_toml(get("scenario")?).map_err(|e| anyhow!("run {i}: {e}"))?;
    let veh_text = sample::to_toml(get("vehicle")?).map_err(|e| anyhow!("run {i}: {e}"))?;
    std::fs::write(&scn, format!("{header}{scn_text}"))
        .with_context(|| format!("cannot write {}", scn.display()))?;
    std::fs::write(&veh, format!("{header}{veh_text}"))
        .with_context(|| format!("cannot write {}", veh.display()))?;
    let l = assemble::load_with(&scn, Some(&veh), db)
        .with_context(|| format!("run {i}: the sample does not make a valid scenario"))?;
    Ok((l, drawn))
}

#[allow(clippy::too_many_arguments)]
fn closed_loop(
    a: &CampaignArgs,
    n: &Nominal,
    indices: &[u64],
    dir: &Path,
    db: &capsule_icd::Icd,
    stop: &Stop,
    jobs: usize,
) -> Result<(Vec<RunResult>, BTreeMap<u64, String>)> {
    let (bench, bench_name) = match &a.bench {
        Some(p) => (assemble::load_bench(p)?, p.display().to_string()),
        None => (
            capsule_scenario::bench::Bench::simulated()?,
            "simulated bench (built in)".to_string(),
        ),
    };
    let lockstep = bench.bench.clock == "lockstep";
    let mut loaded = Vec::with_capacity(indices.len());
    let mut drawn = Vec::with_capacity(indices.len());
    for &i in indices {
        let (l, d) = sampled_scenario(n, i, dir, db)?;
        assemble::prepare(
            &l,
            db,
            bench.timing.physics_rate_hz,
            l.scenario.initial.seed,
        )
        .with_context(|| format!("run {i}"))?;
        loaded.push(l);
        drawn.push(d);
    }
    let target = n
        .loaded
        .as_ref()
        .and_then(|l| l.scenario.initial.target)
        .map(|t| (t.latitude_deg, t.longitude_deg));
    let setup = RunSetup {
        bench,
        bench_name,
        lockstep,
        seed: None,
        stop: stop.clone(),
        fc_output_dir: None,
        rt: Default::default(),
        icd: assemble::IcdPaths::default(),
    };
    let runs_dir = dir.join("runs");
    std::fs::create_dir_all(&runs_dir)?;
    let opts = RunOptions {
        out: runs_dir,
        no_bundle: a.no_bundle,
        sign_key: None,
        bench_file: a.bench.clone(),
        progress: false,
        figures_target: Some(target),
        view: None,
        key_frames: false,
    };
    let numbers: Vec<usize> = indices.iter().map(|i| *i as usize + 1).collect();
    let done = AtomicUsize::new(0);
    let total = indices.len();
    let out = library::run_all(&loaded, &numbers, &setup, db, &opts, jobs, |r| {
        let k = done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(line) = r.text.lines().next() {
            println!("[{k}/{total}] {line}");
        }
    })?;
    let mut runs = Vec::new();
    let mut bundles = BTreeMap::new();
    for ((run, &i), d) in out.into_iter().zip(indices).zip(drawn) {
        let (verdict, error, checks) = match &run.outcome {
            Outcome::Skipped => continue,
            Outcome::Judged(r) if r.incomplete => continue,
            Outcome::Judged(r) => (
                match r.verdict {
                    capsule_scenario::eval::Verdict::Pass => "PASS",
                    capsule_scenario::eval::Verdict::Fail => "FAIL",
                    _ => "ERROR",
                },
                None,
                r.expectations
                    .iter()
                    .map(|e| Check {
                        id: e.id.clone(),
                        requirement: e.requirement.clone(),
                        passed: e.passed,
                        measured: e.measured.clone(),
                    })
                    .collect(),
            ),
            Outcome::Error(_) if stop.is_requested() => continue,
            Outcome::Error(e) => ("ERROR", Some(e.message.clone()), Vec::new()),
        };
        if let Some(rel) = run.dir.as_ref().and_then(|b| b.strip_prefix(dir).ok()) {
            bundles.insert(i, rel.display().to_string());
        }
        runs.push(RunResult {
            index: i,
            sample: d,
            verdict: verdict.into(),
            error,
            checks,
            figures: run.figures.clone().unwrap_or_default(),
        });
    }
    Ok((runs, bundles))
}

fn physics(n: &Nominal, indices: &[u64], stop: &Stop, jobs: usize) -> Result<Vec<RunResult>> {
    let nc = n
        .case
        .as_ref()
        .ok_or_else(|| anyhow!("a physics campaign without its case"))?;
    // The miss distance's reference: the nominal case's landing point.
    let nominal = fly_case(&nc.case, nc.vehicle.clone(), nc)?;
    let reference = nominal
        .landing_latitude_deg
        .zip(nominal.landing_longitude_deg);
    let next = AtomicUsize::new(0);
    let jobs = jobs.clamp(1, indices.len().max(1));
    let mut out: Vec<Option<RunResult>> = vec![None; indices.len()];
    let results = std::sync::Mutex::new(&mut out);
    let done = AtomicUsize::new(0);
    let err: std::sync::Mutex<Option<anyhow::Error>> = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    if stop.is_requested() {
                        break;
                    }
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = indices.get(k) else { break };
                    let r = physics_run(n, i, nc, reference);
                    match r {
                        Ok(r) => {
                            if let Ok(mut g) = results.lock() {
                                g[k] = Some(r);
                            }
                            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                            if d.is_multiple_of(50) || d == indices.len() {
                                eprintln!("[{d}/{}] physics runs done", indices.len());
                            }
                        }
                        Err(e) => {
                            if let Ok(mut g) = err.lock() {
                                g.get_or_insert(e);
                            }
                            next.store(indices.len(), Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = err.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Flies `case` (the nominal or a sampled one) with `vehicle`, errors about the vehicle
/// located in the nominal case file.
fn fly_case(
    case: &twin_core::case::CaseSpec,
    vehicle: Option<twin_core::vehicle::VehicleSpec>,
    nominal: &NominalCase,
) -> Result<twin_core::case::CaseResult> {
    let v = case.vehicle(&Source::new(&nominal.name, &nominal.text), vehicle)?;
    Ok(twin_core::case::run_case(case, v)?)
}

fn physics_run(
    n: &Nominal,
    i: u64,
    nominal: &NominalCase,
    reference: Option<(f64, f64)>,
) -> Result<RunResult> {
    let (files, drawn) =
        sample::apply(&n.spec, &n.files, i).map_err(|e| anyhow!("run {i}: {e}"))?;
    let name = format!("{} run {i} (sampled case)", n.spec.campaign.id);
    let get = |f: &str| files.iter().find(|(x, _)| x == f).map(|(_, v)| v);
    let case_text = sample::to_toml(get("case").ok_or_else(|| anyhow!("no case"))?)
        .map_err(|e| anyhow!("run {i}: {e}"))?;
    let case = twin_core::case::CaseSpec::from_toml(&Source::new(&name, &case_text))
        .with_context(|| format!("run {i}: the sample does not make a valid case"))?;
    let vehicle = match get("vehicle") {
        None => None,
        Some(v) => {
            let vname = format!("{} run {i} (sampled vehicle)", n.spec.campaign.id);
            let vtext = sample::to_toml(v).map_err(|e| anyhow!("run {i}: {e}"))?;
            Some(
                twin_core::vehicle::VehicleSpec::from_toml(&Source::new(&vname, &vtext))
                    .with_context(|| {
                        format!("run {i}: the sample does not make a valid vehicle")
                    })?,
            )
        }
    };
    let (verdict, error, figures) = match fly_case(&case, vehicle, nominal) {
        Ok(r) => (
            "DONE",
            None,
            capsule_campaign::figures::of_case(&r, reference),
        ),
        Err(e) => ("ERROR", Some(format!("{e:#}")), Default::default()),
    };
    Ok(RunResult {
        index: i,
        sample: drawn,
        verdict: verdict.into(),
        error,
        checks: Vec::new(),
        figures,
    })
}

fn merge(dirs: &[PathBuf], out: &Path) -> Result<ExitCode> {
    let mut parts = Vec::new();
    let mut bundles = BTreeMap::new();
    let mut title = String::new();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if out.join("campaign.json").exists() {
        bail!(
            "{} already holds a campaign result; choose another --out",
            out.display()
        );
    }
    for d in dirs {
        let p = d.join("campaign.json");
        let text = capsule_files::read_text(&p, "campaign result")?;
        let r: CampaignResult = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a campaign result", p.display()))?;
        if r.format_version != result::FORMAT_VERSION {
            bail!(
                "{}: format version {} (this hil reads {})",
                p.display(),
                r.format_version,
                result::FORMAT_VERSION
            );
        }
        if let Ok(t) = capsule_files::read_text(&d.join("bundles.json"), "bundles") {
            let b: BTreeMap<u64, String> = serde_json::from_str(&t).unwrap_or_else(|e| {
                eprintln!(
                    "warning: {}: not a bundle index ({e}); the merged report links no bundles of it",
                    d.join("bundles.json").display()
                );
                BTreeMap::new()
            });
            for (i, rel) in b {
                // Links relative to the merged report when both are below one root.
                let abs = d.join(rel);
                bundles.insert(i, abs.display().to_string());
            }
        }
        title = r.campaign.clone();
        parts.push(r);
    }
    let n = parts.len();
    let merged = result::merge(parts)?;
    write_result(
        out,
        &merged,
        &title,
        "hil campaign FILE --run {i}",
        &bundles,
    )?;
    println!(
        "merged {n} results: campaign {}, {} runs ({} passed, {} failed, {} errors) -> {}",
        merged.campaign,
        merged.summary.runs,
        merged.summary.passed,
        merged.summary.failed,
        merged.summary.errors,
        out.join("campaign.json").display()
    );
    Ok(ExitCode::SUCCESS)
}
