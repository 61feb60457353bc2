//! The evidence commands: what a bundle records about its run, `hil verify` and
//! `hil keygen`.

use crate::assemble::{Loaded, RunSetup};
use anyhow::Result;
use capsule_evidence::bundle::BundleSpec;
use capsule_evidence::manifest::{Harness, ScenarioInfo};
use std::path::Path;
use std::process::ExitCode;

/// This harness: version and the git commit it was built from.
pub fn harness() -> Harness {
    Harness {
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: env!("HIL_GIT_COMMIT").to_string(),
    }
}

/// What a bundle of scenario `l` run under `setup` records before the run.
pub fn spec(l: &Loaded, setup: &RunSetup, bench_file: Option<&Path>) -> BundleSpec {
    let s = &l.scenario.scenario;
    let mut inputs = vec![
        ("scenario".to_string(), l.path.clone()),
        ("vehicle".to_string(), l.vehicle_path.clone()),
    ];
    let mut builtin = Vec::new();
    for (role, path, name, text) in [
        (
            "dbc",
            &setup.icd.dbc,
            "fixtures/icd/capsule.dbc (built in)",
            crate::assemble::DBC,
        ),
        (
            "binding",
            &setup.icd.binding,
            "fixtures/icd/capsule.binding.toml (built in)",
            crate::assemble::BINDING,
        ),
    ] {
        match path {
            Some(p) => inputs.push((role.into(), p.clone())),
            None => builtin.push((role.to_string(), name.to_string(), text.as_bytes().to_vec())),
        }
    }
    match bench_file {
        Some(b) => inputs.push(("bench".into(), b.to_path_buf())),
        None => builtin.push((
            "bench".into(),
            "fixtures/benches/simulated.toml (built in)".into(),
            capsule_scenario::bench::SIMULATED.as_bytes().to_vec(),
        )),
    }
    BundleSpec {
        harness: harness(),
        command_line: std::env::args().collect(),
        scenario: ScenarioInfo {
            id: s.id.clone(),
            title: s.title.clone(),
            requirements: s.requirements.clone(),
        },
        inputs,
        builtin_inputs: builtin,
        seed: setup.seed.unwrap_or(l.scenario.initial.seed),
        defect: setup.bench.flight_computer.defect.clone(),
        clock: if setup.lockstep {
            "lockstep"
        } else {
            "realtime"
        }
        .into(),
        bench: setup.bench_name.clone(),
    }
}

/// `hil verify`: exit 0 when every bundle is intact, 1 when one was tampered with, 2
/// when one cannot be read.
pub fn verify(dirs: &[std::path::PathBuf], pubkey: Option<&Path>) -> Result<ExitCode> {
    let mut worst = 0u8;
    for d in dirs {
        match capsule_evidence::integrity::verify(d, pubkey) {
            Err(e) => {
                println!("UNREADABLE {}: {e}", d.display());
                worst = 2;
            }
            Ok(v) => {
                let status = capsule_files::read_text(&d.join("manifest.json"), "manifest")
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|m| m["status"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "unknown".into());
                if v.clean() {
                    println!(
                        "OK         {}: {} files intact{}, bundle {status}",
                        d.display(),
                        v.checked,
                        match v.signature {
                            Some(Ok(())) => ", signature good",
                            _ => "",
                        }
                    );
                } else {
                    println!("TAMPERED   {}", d.display());
                    worst = worst.max(1);
                }
                for f in &v.changed {
                    println!("           changed: {f}");
                }
                for f in &v.missing {
                    println!("           missing: {f}");
                }
                for f in &v.added {
                    println!("           added: {f}");
                }
                for f in &v.inconsistent {
                    println!("           inconsistent: {f}");
                }
                if let Some(Err(e)) = &v.signature {
                    println!("           signature: {e}");
                }
            }
        }
    }
    Ok(ExitCode::from(worst))
}

/// `hil keygen`.
pub fn keygen(key: &Path, comment: &str) -> Result<ExitCode> {
    capsule_evidence::integrity::keygen(key, comment)?;
    println!(
        "wrote {} (private: keep it) and {}.pub (public: give it to reviewers)",
        key.display(),
        key.display()
    );
    println!(
        "verify a bundle: hil verify --pubkey {}.pub DIR, or with OpenSSH: echo \"hil $(cat {}.pub)\" > allowed_signers; ssh-keygen -Y verify -f allowed_signers -I hil -n {} -s DIR/manifest.json.sig < DIR/manifest.json",
        key.display(),
        key.display(),
        capsule_evidence::integrity::NAMESPACE
    );
    Ok(ExitCode::SUCCESS)
}

/// What `hil export` writes.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// The CAN log as Vector ASC (CANalyzer, CANoe, SavvyCAN).
    Asc,
    /// A telemetry topic as CSV (spreadsheets).
    Csv,
}

/// `hil export` options.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// What to write.
    #[arg(value_enum)]
    pub format: ExportFormat,
    /// The run bundle.
    pub dir: std::path::PathBuf,
    /// CSV: the telemetry topic.
    #[arg(long, default_value = "/truth/state")]
    pub topic: String,
    /// Write here instead of standard output (atomically; never a file of the bundle).
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
}

/// `hil export`.
pub fn export(a: &ExportArgs) -> Result<ExitCode> {
    let mut buf: Vec<u8> = Vec::new();
    let n = match a.format {
        ExportFormat::Asc => {
            let t = capsule_files::read_text(&a.dir.join("manifest.json"), "manifest")?;
            let m: capsule_evidence::manifest::Manifest = serde_json::from_str(&t)
                .map_err(|e| anyhow::anyhow!("{}: not a manifest: {e}", a.dir.display()))?;
            capsule_evidence::export::asc(&a.dir, &asc_date(&m.started_utc), &mut buf)?
        }
        ExportFormat::Csv => capsule_evidence::export::csv(&a.dir, &a.topic, &mut buf)?,
    };
    match &a.output {
        Some(p) => {
            if p.parent().is_some_and(|d| {
                std::fs::canonicalize(d).ok() == std::fs::canonicalize(&a.dir).ok()
            }) {
                anyhow::bail!(
                    "--output {}: not inside the bundle (it would change it)",
                    p.display()
                );
            }
            capsule_evidence::write_atomic(p, &buf)?;
            eprintln!("wrote {} ({n} records)", p.display());
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&buf)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// ASC's header date (`Wed Dec 02 01:13:15.250 2026`) from an RFC 3339 time.
fn asc_date(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%a %b %d %H:%M:%S%.3f %Y").to_string())
        .unwrap_or_else(|_| "Thu Jan 01 00:00:00.000 1970".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn asc_dates_are_civil_dates() {
        assert_eq!(
            super::asc_date("2026-12-02T01:13:15.250Z"),
            "Wed Dec 02 01:13:15.250 2026"
        );
        assert_eq!(
            super::asc_date("2000-02-29T00:00:00Z"),
            "Tue Feb 29 00:00:00.000 2000"
        );
    }
}
