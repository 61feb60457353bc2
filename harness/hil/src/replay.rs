//! `hil replay`: re-judges recorded runs from their bundles alone, and with
//! `--reinject` re-flies the twin on the recorded avionics commands.
//!
//! Everything comes from the bundle: the scenario, vehicle and bench copies
//! (`input-*.toml`), the recorded run (`record.json.gz`) and the recorded verdicts
//! (`verdicts.json`). The bundle's hashes are checked first.

use crate::assemble::{self, RunSetup};
use anyhow::{Context, Result, bail};
use capsule_evidence::bundle::{self, input_name};
use capsule_runner::record::{EndReason, RunRecord};
use capsule_runner::stop::Stop;
use capsule_scenario::eval::evaluate;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `hil replay` options.
#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Run bundles (directories written by `hil run`), or directories of them.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Also feed the recorded flight-computer frames, at their recorded bus times, to a
    /// fresh twin with no flight computer, and compare its trajectory with the
    /// recording (bit for bit on a lockstep run).
    #[arg(long)]
    pub reinject: bool,
}

/// What replaying one bundle found.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Differences from the recording, in words (empty: identical).
    pub differences: Vec<String>,
    /// Expectations re-judged.
    pub expectations: usize,
    /// With `--reinject`: (snapshots, frames) compared.
    pub reinjected: Option<(usize, usize)>,
}

/// `hil replay`: exit 0 when every bundle replays identically, 1 on a difference, 2
/// when one cannot be read.
pub fn run(a: &ReplayArgs) -> Result<ExitCode> {
    let mut worst = 0u8;
    for d in &crate::traceability::bundles(&a.dirs)? {
        match replay(d, a.reinject) {
            Err(e) => {
                println!("UNREADABLE {}: {e:#}", d.display());
                worst = 2;
            }
            Ok(r) if r.differences.is_empty() => println!(
                "SAME       {}: {} verdicts and measured values reproduced{}",
                d.display(),
                r.expectations,
                r.reinjected.map_or(String::new(), |(s, f)| format!(
                    "; re-injected: trajectory identical ({s} snapshots, {f} frames)"
                ))
            ),
            Ok(r) => {
                println!("DIFFERENT  {}", d.display());
                for x in &r.differences {
                    println!("           {x}");
                }
                worst = worst.max(1);
            }
        }
    }
    Ok(ExitCode::from(worst))
}

fn json_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("<{e}>"))
}

/// Replays one bundle.
pub fn replay(dir: &Path, reinject: bool) -> Result<Replayed> {
    let v = capsule_evidence::integrity::verify(dir, None)?;
    let mut out = Replayed::default();
    if !v.clean() {
        out.differences.push(format!(
            "the bundle was altered (changed {:?}, missing {:?}, added {:?}); replaying what is there",
            v.changed, v.missing, v.added
        ));
    }
    let file = |role: &str| -> Result<PathBuf> {
        let n = input_name(role).context("no such input")?;
        Ok(dir.join(n))
    };
    // The run's own ICD, as copied into the bundle.
    let db = bundle_icd(dir)?;
    let l = assemble::load_with(&file("scenario")?, Some(&file("vehicle")?), &db)?;
    let record = bundle::read_record(dir)?;
    let result = evaluate(&l.scenario, &record, &db);
    let now = capsule_evidence::verdicts::document(&result);
    let text = capsule_files::read_text(&dir.join(bundle::VERDICTS), "verdicts")?;
    let was: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", dir.join(bundle::VERDICTS).display()))?;
    out.expectations = result.expectations.len();
    if was != now {
        let (a, b) = (&was["expectations"], &now["expectations"]);
        let n = a
            .as_array()
            .map_or(0, Vec::len)
            .max(b.as_array().map_or(0, Vec::len));
        for k in 0..n {
            if a[k] != b[k] {
                out.differences.push(format!(
                    "expectation {}: recorded {} / replayed {}",
                    b[k]["id"].as_str().or(a[k]["id"].as_str()).unwrap_or("?"),
                    a[k],
                    b[k]
                ));
            }
        }
        if was["verdict"] != now["verdict"] {
            out.differences.push(format!(
                "verdict: recorded {} / replayed {}",
                was["verdict"], now["verdict"]
            ));
        }
        if out.differences.is_empty() {
            out.differences
                .push("verdicts.json differs outside the expectations".into());
        }
    }
    if reinject {
        let again = reinject_record(dir, &l, &record)?;
        out.reinjected = Some((again.snapshots.len(), again.frames.len()));
        compare(&record, &again, &mut out.differences);
        let re = evaluate(&l.scenario, &again, &db);
        if capsule_evidence::verdicts::document(&re) != now {
            out.differences
                .push("re-injected run: verdicts differ from the recording".into());
        }
    }
    Ok(out)
}

/// The ICD a bundle's run used: its copies of the DBC and the binding (bundles from
/// before bindings have no binding copy: the built-in one bound their DBC).
pub(crate) fn bundle_icd(dir: &Path) -> Result<capsule_icd::Icd> {
    let at = |role: &str| input_name(role).map(|n| dir.join(n));
    let binding = at("binding").filter(|p| p.is_file());
    Ok(assemble::load_icd(&assemble::IcdPaths {
        dbc: at("dbc"),
        binding,
    })?
    .icd)
}

/// The recorded flight computer's frames flown again on a fresh twin.
fn reinject_record(dir: &Path, l: &assemble::Loaded, record: &RunRecord) -> Result<RunRecord> {
    let db = bundle_icd(dir)?;
    let bench = assemble::load_bench(&dir.join(input_name("bench").context("bench")?))?;
    let mtext = capsule_files::read_text(&dir.join("manifest.json"), "manifest")?;
    let m: capsule_evidence::manifest::Manifest =
        serde_json::from_str(&mtext).context("manifest.json: not a manifest")?;
    let lockstep = record.clock == "lockstep";
    if !lockstep && m.clock != "realtime" {
        bail!(
            "the record's clock `{}` is not the manifest's `{}`",
            record.clock,
            m.clock
        );
    }
    let setup = RunSetup {
        bench,
        bench_name: m.bench.clone(),
        lockstep,
        seed: Some(m.seed),
        stop: Stop::new(),
        fc_output_dir: None,
        rt: Default::default(),
        icd: assemble::IcdPaths::default(),
    };
    let cfg = assemble::run_config(l, &setup, &db, None)?;
    let p = assemble::prepare(l, &db, setup.bench.timing.physics_rate_hz, m.seed)?;
    let fc: Vec<_> = record
        .frames
        .iter()
        .filter(|f| f.from_fc)
        .cloned()
        .collect();
    let until = (record.end == EndReason::Interrupted).then_some(record.t_end_s);
    Ok(capsule_runner::reinject::reinject(
        &cfg, db.db, p.twin, p.devices, &fc, until,
    )?)
}

/// Bit-for-bit comparison of two records' trajectories, frames and events.
fn compare(a: &RunRecord, b: &RunRecord, diffs: &mut Vec<String>) {
    let first = |x: &[twin_core::twin::Snapshot], y: &[twin_core::twin::Snapshot]| {
        x.iter().zip(y).position(|(p, q)| json_of(p) != json_of(q))
    };
    if let Some(k) = first(&a.snapshots, &b.snapshots) {
        diffs.push(format!(
            "re-injected trajectory departs at t = {:.3} s (snapshot {k})",
            a.snapshots[k].t_s
        ));
    } else if a.snapshots.len() != b.snapshots.len() {
        diffs.push(format!(
            "re-injected run has {} snapshots, the recording {}",
            b.snapshots.len(),
            a.snapshots.len()
        ));
    }
    if json_of(&a.frames) != json_of(&b.frames) {
        diffs.push("re-injected bus traffic differs from the recording".into());
    }
    if a.named_events != b.named_events {
        diffs.push("re-injected events differ from the recording".into());
    }
    if json_of(&a.contact) != json_of(&b.contact) || json_of(&a.peaks) != json_of(&b.peaks) {
        diffs.push("re-injected splashdown or peaks differ from the recording".into());
    }
}
