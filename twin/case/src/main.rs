//! `twin-case`: runs one entry check case and prints its results as JSON.
//!
//! Usage: `twin-case CASE.toml` (see `fixtures/cases/README.md` for the format).

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::ExitCode;
use twin_core::case::{CaseSpec, run_case};
use twin_core::config::Source;
use twin_core::vehicle::VehicleSpec;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args.as_slice() {
        [p] if p != "-h" && p != "--help" => p.clone(),
        _ => bail!(
            "usage: twin-case CASE.toml\n  runs one entry check case and prints JSON results on stdout"
        ),
    };
    let text = capsule_files::read_text(Path::new(&path), "case file")?;
    let src = Source::new(&path, &text);
    let spec = CaseSpec::from_toml(&src)?;
    let file_vehicle = match &spec.vehicle.file {
        None => None,
        Some(f) => {
            let vpath = Path::new(&path).parent().unwrap_or(Path::new(".")).join(f);
            let vname = vpath.display().to_string();
            let vtext = capsule_files::read_text(&vpath, "vehicle file")
                .with_context(|| format!("{path}: field `vehicle.file`"))?;
            Some(VehicleSpec::from_toml(&Source::new(&vname, &vtext))?)
        }
    };
    let vehicle = spec.vehicle(&src, file_vehicle)?;
    let result = run_case(&spec, vehicle)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
