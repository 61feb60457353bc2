//! `hil bench-rt`: the real-time closed loop measured.
//!
//! Runs a scenario (default: the nominal entry) on the simulated bench in real time
//! for a set time: the physics, the device emulation and the reference flight computer
//! in its own process over pseudo-terminals and the virtual CAN bus, exactly the loop
//! of `hil run --clock realtime`. Prints what the operating system granted, the step
//! lateness histogram and percentiles, late steps and overruns, and the command
//! latency through the CAN link (the flight computer's command at the link to the
//! physics step that acts on it), and judges them against the project's targets.

use crate::assemble::{self, RunSetup};
use crate::rtargs::RtArgs;
use anyhow::{Context, Result, bail};
use capsule_runner::record::{Percentiles, TimingReport};
use capsule_runner::stop::Stop;
use std::path::PathBuf;
use std::process::ExitCode;

/// `hil bench-rt` options.
#[derive(Debug, clap::Args)]
pub struct BenchRtArgs {
    /// Physics steps per second (a multiple of 100).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(100..=10_000))]
    pub rate_hz: u32,
    /// How long to run, s (of wall time; the run also ends at splashdown).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub seconds: u32,
    /// The scenario to fly.
    #[arg(long, default_value = "scenarios/nominal-entry.toml")]
    pub scenario: PathBuf,
    /// Also write the timing report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// What the loop asks of the operating system.
    #[command(flatten)]
    pub rt: RtArgs,
}

/// One target: what is measured, the limit, and whether it holds.
struct Target {
    what: String,
    measured: f64,
    limit: f64,
    unit: &'static str,
    /// The limit itself is allowed ("at most"), else the value must stay under it.
    at_most: bool,
}

impl Target {
    fn met(&self) -> bool {
        self.measured < self.limit || (self.at_most && self.measured <= self.limit)
    }
}

/// The targets of the issue that asked for this loop: at 1 kHz, p99 at most 50 us, max
/// under 1 ms, under 0.1 % of steps late by more than a tenth of the step; at other
/// rates (2 kHz), better than Elodin's published 2 kHz figures (p95 55 us, max 188
/// us, 12.7 % of cycles late).
fn targets(rate_hz: u32, t: &TimingReport) -> Vec<Target> {
    let late_pct = 100.0 * t.late_steps as f64 / t.lateness.count.max(1) as f64;
    if rate_hz <= 1000 {
        vec![
            Target {
                what: "p99 step lateness".into(),
                measured: t.lateness.p99_us,
                limit: 50.0,
                unit: "us",
                at_most: true,
            },
            Target {
                what: "max step lateness".into(),
                measured: t.lateness.max_us,
                limit: 1000.0,
                unit: "us",
                at_most: false,
            },
            Target {
                what: "steps late by > 10 % of the step".into(),
                measured: late_pct,
                limit: 0.1,
                unit: "%",
                at_most: false,
            },
        ]
    } else {
        vec![
            Target {
                what: "p95 step lateness (Elodin 2 kHz: 55 us)".into(),
                measured: t.lateness.p95_us,
                limit: 55.0,
                unit: "us",
                at_most: false,
            },
            Target {
                what: "max step lateness (Elodin 2 kHz: 188 us)".into(),
                measured: t.lateness.max_us,
                limit: 188.0,
                unit: "us",
                at_most: false,
            },
            Target {
                what: "steps late (Elodin 2 kHz: 12.7 % of cycles)".into(),
                measured: late_pct,
                limit: 12.7,
                unit: "%",
                at_most: false,
            },
        ]
    }
}

fn percentiles(p: &Percentiles) -> String {
    format!(
        "p50 {:.1} / p95 {:.1} / p99 {:.1} / p99.9 {:.1} / max {:.1} us over {}",
        p.p50_us, p.p95_us, p.p99_us, p.p999_us, p.max_us, p.count
    )
}

/// The printed report.
fn report(a: &BenchRtArgs, id: &str, t: &TimingReport, t_end_s: f64) -> (String, bool) {
    let mut s = String::new();
    let late_pct = 100.0 * t.late_steps as f64 / t.lateness.count.max(1) as f64;
    s.push_str(&format!(
        "bench-rt: {id} in the closed loop (physics, device emulation, reference flight computer over pty serial lines and the virtual CAN bus), {} Hz for {:.1} s\n",
        a.rate_hz, t_end_s
    ));
    s.push_str(&format!("{}\n", t.grants));
    s.push_str(&format!("step lateness: {}\n", percentiles(&t.lateness)));
    s.push_str(&format!(
        "late by > 10 % of the step ({:.0} us): {} steps ({late_pct:.4} %); overruns (> one step): {}\n",
        t.period_us / 10.0,
        t.late_steps,
        t.overruns
    ));
    s.push_str("lateness histogram (upper edge: steps):\n");
    let peak = t
        .lateness_bins
        .iter()
        .map(|b| b.1)
        .max()
        .unwrap_or(1)
        .max(1);
    for (edge_us, n) in &t.lateness_bins {
        let bar = ((*n as f64).log10().max(0.0) / (peak as f64).log10().max(1.0) * 40.0).round();
        s.push_str(&format!(
            "  <= {edge_us:>9.0} us {:>9}  {}\n",
            n,
            if *n > 0 {
                "#".repeat((bar as usize).max(1))
            } else {
                String::new()
            }
        ));
    }
    s.push_str(&format!(
        "command latency (CAN link receive to the physics step acting on it): {}\n",
        percentiles(&t.command_latency)
    ));
    for (m, p) in &t.command_latency_by_message {
        s.push_str(&format!("  {m:<18} {}\n", percentiles(p)));
    }
    s.push_str(&format!(
        "the bench's timing budget (from {}): {}\n",
        if t.budget_source.is_empty() {
            "the defaults"
        } else {
            &t.budget_source
        },
        if t.met() {
            "held".to_string()
        } else {
            format!("broken: {}", t.violations.join("; "))
        }
    ));
    let mut all = true;
    s.push_str(&format!("targets at {} Hz:\n", a.rate_hz));
    for x in targets(a.rate_hz, t) {
        let met = x.met();
        all &= met;
        s.push_str(&format!(
            "  {:<6} {}: {:.3} {} (limit {} {})\n",
            if met { "met" } else { "MISSED" },
            x.what,
            x.measured,
            x.unit,
            x.limit,
            x.unit
        ));
    }
    (s, all)
}

/// Runs `hil bench-rt` (exit 0 targets met, 1 a target missed, 2 the run failed).
pub fn run(a: &BenchRtArgs) -> Result<ExitCode> {
    if !a.rate_hz.is_multiple_of(100) {
        bail!(
            "--rate-hz {}: must be a multiple of 100 (the flight computer's cycle is 10 ms)",
            a.rate_hz
        );
    }
    let db = assemble::icd()?;
    let mut bench = capsule_scenario::bench::Bench::simulated()?;
    bench.timing.physics_rate_hz = f64::from(a.rate_hz);
    let mut l = assemble::check(&a.scenario, &db, bench.timing.physics_rate_hz)?;
    l.scenario.run.max_time_s = f64::from(a.seconds).min(l.scenario.run.max_time_s);
    let stop = Stop::new();
    crate::signals::install(stop.clone()).context("cannot install the signal handlers")?;
    let setup = RunSetup {
        bench,
        bench_name: "simulated bench (built in), real time".into(),
        lockstep: false,
        seed: None,
        stop,
        fc_output_dir: None,
        rt: a.rt.options(),
        icd: assemble::IcdPaths::default(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let judged = match assemble::run_one(&l, &setup, &db, &rt, None, None, None) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {}", e.message);
            return Ok(ExitCode::from(2));
        }
    };
    let Some(t) = judged.result.timing.as_ref() else {
        bail!("the run has no timing report (not a real-time run)");
    };
    let (text, met) = report(a, &l.scenario.scenario.id, t, judged.record.t_end_s);
    print!("{text}");
    if let Some(p) = &a.json {
        let doc = serde_json::json!({
            "rate_hz": a.rate_hz,
            "seconds": judged.record.t_end_s,
            "scenario": l.scenario.scenario.id,
            "timing": t,
        });
        capsule_evidence::write_atomic(p, crate::library::to_pretty(&doc).as_bytes())?;
    }
    Ok(ExitCode::from(if met { 0 } else { 1 }))
}
