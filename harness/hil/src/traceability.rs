//! `hil report`: the requirements traceability matrix over many run bundles
//! (requirement x scenario x verdict, each cell linking to the run's report), with
//! pass counts per requirement, as HTML, CSV and JSON.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `hil report` options.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// Run bundles, or directories of them (e.g. `runs/`).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where `traceability.html`, `.csv` and `.json` go (default: the first directory
    /// given).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

const TEMPLATE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Requirements traceability</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; font-size: 0.9em; }
th { background: #f0f0f0; }
.pass { background: #e3f5e6; } .fail { background: #fbe0e0; } .not_judged, .error { background: #fff0d0; }
a { color: inherit; }
</style></head><body>
<h1>Requirements traceability</h1>
<p>{{ runs | length }} runs; {{ requirements | length }} requirements. Each cell: the verdicts of the run's expectations that verify the requirement, linked to the run's report.</p>
<table><tr><th>Requirement</th><th>Runs passed</th>{% for r in runs %}<th><a href="{{ r.link }}">{{ r.scenario }}</a><br>{{ r.verdict }}</th>{% endfor %}</tr>
{% for q in requirements %}<tr><td>{{ q.id }}</td><td>{{ q.passed }} / {{ q.runs }}</td>{% for c in q.cells %}<td class="{{ c.class }}">{% if c.text %}<a href="{{ c.link }}">{{ c.text }}</a>{% endif %}</td>{% endfor %}</tr>
{% endfor %}</table>
<h2>Runs</h2>
<table><tr><th>Scenario</th><th>Verdict</th><th>Clock</th><th>Seed</th><th>Started</th><th>Bundle</th></tr>
{% for r in runs %}<tr><td>{{ r.scenario }}</td><td class="{{ r.class }}">{{ r.verdict }}</td><td>{{ r.clock }}</td><td>{{ r.seed }}</td><td>{{ r.started }}</td><td><a href="{{ r.link }}">{{ r.dir }}</a></td></tr>
{% endfor %}</table>
</body></html>
"#;

/// The bundles named by `dirs`: each directory holding a `manifest.json`, else its
/// sub-directories that do (sorted by name).
pub fn bundles(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in dirs {
        if d.join("manifest.json").is_file() {
            out.push(d.clone());
            continue;
        }
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .with_context(|| format!("cannot read directory {}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("manifest.json").is_file())
            .collect();
        v.sort();
        out.extend(v);
    }
    if out.is_empty() {
        bail!("no run bundles (directories with a manifest.json) in the directories given");
    }
    Ok(out)
}

fn read_json(p: &Path) -> Result<Value> {
    let t = capsule_files::read_text(p, "bundle file")?;
    serde_json::from_str(&t).with_context(|| format!("{}: not JSON", p.display()))
}

/// The matrix as JSON: runs, and per requirement its cells.
pub fn matrix(bundles: &[PathBuf], out: &Path) -> Result<Value> {
    let out_abs = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_path_buf());
    let mut runs = Vec::new();
    // requirement -> per run (verdict words)
    let mut reqs: BTreeMap<String, BTreeMap<usize, Vec<String>>> = BTreeMap::new();
    for (k, b) in bundles.iter().enumerate() {
        let m = read_json(&b.join("manifest.json"))?;
        let verdicts = read_json(&b.join("verdicts.json")).ok();
        let abs = std::fs::canonicalize(b).unwrap_or_else(|_| b.clone());
        let link = match abs.strip_prefix(&out_abs) {
            Ok(rel) => rel.join("report.html").display().to_string(),
            Err(_) => abs.join("report.html").display().to_string(),
        };
        let verdict = m["end"]["verdict"]
            .as_str()
            .unwrap_or("INCOMPLETE")
            .to_string();
        for r in m["scenario"]["requirements"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_str() {
                reqs.entry(r.to_string()).or_default().entry(k).or_default();
            }
        }
        for e in verdicts
            .as_ref()
            .and_then(|v| v["expectations"].as_array())
            .into_iter()
            .flatten()
        {
            let (Some(r), Some(w)) = (e["requirement"].as_str(), e["verdict"].as_str()) else {
                continue;
            };
            reqs.entry(r.to_string())
                .or_default()
                .entry(k)
                .or_default()
                .push(w.to_string());
        }
        runs.push(json!({
            "scenario": m["scenario"]["id"], "verdict": verdict,
            "class": verdict.to_ascii_lowercase(),
            "clock": m["clock"], "seed": m["seed"], "started": m["started_utc"],
            "dir": b.display().to_string(), "link": link,
        }));
    }
    let requirements: Vec<Value> = reqs
        .iter()
        .map(|(id, per_run)| {
            let mut passed = 0;
            let cells: Vec<Value> = (0..runs.len())
                .map(|k| match per_run.get(&k) {
                    None => json!({"class": "", "text": "", "link": ""}),
                    Some(words) => {
                        let class = if words.is_empty() {
                            // Named by the scenario, but no expectation verifies it.
                            "error"
                        } else if words.iter().any(|w| w == "fail") {
                            "fail"
                        } else if words.iter().any(|w| w == "not_judged") {
                            "not_judged"
                        } else {
                            passed += 1;
                            "pass"
                        };
                        let text = if words.is_empty() {
                            "no expectation".to_string()
                        } else {
                            format!("{class} ({})", words.len())
                        };
                        json!({"class": class, "text": text, "link": runs[k]["link"]})
                    }
                })
                .collect();
            json!({"id": id, "runs": per_run.len(), "passed": passed, "cells": cells})
        })
        .collect();
    Ok(json!({"format_version": 1, "runs": runs, "requirements": requirements}))
}

/// `hil report`.
pub fn run(a: &ReportArgs) -> Result<ExitCode> {
    let list = bundles(&a.dirs)?;
    let out = a.out.clone().unwrap_or_else(|| a.dirs[0].clone());
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let m = matrix(&list, &out)?;
    let mut env = minijinja::Environment::new();
    env.add_template("traceability.html", TEMPLATE)?;
    let html = env.get_template("traceability.html")?.render(&m)?;
    let mut csv = String::from("requirement,scenario,bundle,verdict\n");
    let runs = m["runs"].as_array().cloned().unwrap_or_default();
    for q in m["requirements"].as_array().into_iter().flatten() {
        for (k, c) in q["cells"].as_array().into_iter().flatten().enumerate() {
            if let Some(class) = c["class"].as_str().filter(|c| !c.is_empty()) {
                let field = |v: &Value| {
                    let s = v.as_str().unwrap_or_default().replace('"', "\"\"");
                    format!("\"{s}\"")
                };
                csv.push_str(&format!(
                    "{},{},{},{}\n",
                    field(&q["id"]),
                    field(&runs[k]["scenario"]),
                    field(&runs[k]["dir"]),
                    class
                ));
            }
        }
    }
    for (name, bytes) in [
        ("traceability.html", html.into_bytes()),
        ("traceability.csv", csv.into_bytes()),
        ("traceability.json", serde_json::to_vec_pretty(&m)?),
    ] {
        capsule_evidence::write_atomic(&out.join(name), &bytes)?;
        println!("wrote {}", out.join(name).display());
    }
    Ok(ExitCode::SUCCESS)
}
