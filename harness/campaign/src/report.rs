//! The campaign report: pass rate per requirement with its 95 % Wilson interval,
//! histograms and empirical CDFs (SVG) of the figures, and the worst runs with the
//! command that re-runs each and a link to its evidence bundle.

use crate::result::{CampaignResult, RunResult};
use plotters::prelude::*;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
#[error("campaign report: {0}")]
pub struct ReportError(String);

fn err(e: impl std::fmt::Display) -> ReportError {
    ReportError(e.to_string())
}

/// Histogram (left) and empirical CDF (right) of `v`, as one SVG.
fn distribution_svg(title: &str, unit: &str, v: &[f64]) -> Result<String, ReportError> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (880, 240)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (left, right) = root.split_horizontally(440);
        let (lo, hi) = match (v.first(), v.last()) {
            (Some(a), Some(b)) if b > a => (*a, *b),
            (Some(a), _) => (*a - 0.5, *a + 0.5),
            _ => (0.0, 1.0),
        };
        let bins = ((v.len() as f64).sqrt().ceil() as usize).clamp(5, 40);
        let w = (hi - lo) / bins as f64;
        let mut counts = vec![0u64; bins];
        for x in &v {
            let k = (((x - lo) / w) as usize).min(bins - 1);
            counts[k] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let label = if unit.is_empty() {
            title.to_string()
        } else {
            format!("{title} ({unit})")
        };
        let mut h = ChartBuilder::on(&left)
            .caption(format!("{label}: histogram"), ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(26)
            .y_label_area_size(44)
            .build_cartesian_2d(lo..hi, 0.0..top * 1.05)
            .map_err(err)?;
        h.configure_mesh()
            .y_desc("runs")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        h.draw_series(counts.iter().enumerate().map(|(k, c)| {
            let x0 = lo + w * k as f64;
            Rectangle::new(
                [(x0, 0.0), (x0 + w, *c as f64)],
                RGBColor(70, 110, 180).filled(),
            )
        }))
        .map_err(err)?;
        let mut c = ChartBuilder::on(&right)
            .caption(format!("{label}: CDF"), ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(26)
            .y_label_area_size(44)
            .build_cartesian_2d(lo..hi, 0.0..1.0)
            .map_err(err)?;
        c.configure_mesh()
            .y_desc("fraction of runs")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        let n = v.len().max(1) as f64;
        let steps = v
            .iter()
            .enumerate()
            .flat_map(|(k, x)| [(*x, k as f64 / n), (*x, (k + 1) as f64 / n)]);
        c.draw_series(LineSeries::new(
            steps,
            RGBColor(180, 60, 40).stroke_width(2),
        ))
        .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Four significant digits.
fn g4(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if (-3..6).contains(&mag) {
        format!("{:.*}", (3 - mag).max(0) as usize, x)
    } else {
        format!("{x:.3e}")
    }
}

/// How bad a run is, for ordering the worst first: errors, then failures (more failed
/// checks first), then the largest peak deceleration.
fn badness(r: &RunResult) -> (u8, usize, i64) {
    let class = match r.verdict.as_str() {
        "ERROR" => 2,
        "FAIL" => 1,
        _ => 0,
    };
    let failed = r.checks.iter().filter(|c| !c.passed).count();
    let g = r.figures.peak_decel_g.unwrap_or(0.0);
    (class, failed, (g * 1e6) as i64)
}

/// The report's HTML. `rerun` is the command line that re-runs one run, with `{i}`
/// for its index; `bundles` maps run indices to their evidence bundles (paths relative
/// to the report).
pub fn html(
    r: &CampaignResult,
    title: &str,
    rerun: &str,
    bundles: &std::collections::BTreeMap<u64, String>,
) -> Result<String, ReportError> {
    let mut plots = Vec::new();
    for f in &r.summary.figures {
        let k = crate::result::Figures::default()
            .named()
            .iter()
            .position(|(n, _, _)| *n == f.name)
            .unwrap_or(0);
        let v: Vec<f64> = r
            .runs
            .iter()
            .filter_map(|x| x.figures.named()[k].2)
            .collect();
        let cells: Vec<String> = [f.min, f.mean, f.std, f.p50, f.p99, f.max]
            .iter()
            .map(|x| g4(*x))
            .collect();
        plots.push(minijinja::context! {
            name => f.name, unit => f.unit, count => f.count, cells => cells,
            svg => distribution_svg(&f.name, &f.unit, &v)?,
        });
    }
    let mut worst: Vec<&RunResult> = r.runs.iter().collect();
    worst.sort_by(|a, b| badness(b).cmp(&badness(a)).then(a.index.cmp(&b.index)));
    let worst: Vec<_> = worst
        .into_iter()
        .take(10)
        .map(|x| {
            minijinja::context! {
                index => x.index, verdict => x.verdict, error => x.error,
                failed => x.checks.iter().filter(|c| !c.passed).map(|c| format!("{} [{}]: {}", c.id, c.requirement, c.measured)).collect::<Vec<_>>(),
                peak_decel_g => x.figures.peak_decel_g.map(|g| format!("{g:.2}")),
                sample => x.sample.iter().map(|d| format!("{} = {}", d.parameter, g4(d.value))).collect::<Vec<_>>(),
                bundle => bundles.get(&x.index),
                command => rerun.replace("{i}", &x.index.to_string()),
            }
        })
        .collect();
    let requirements: Vec<_> = r
        .summary
        .requirements
        .iter()
        .map(|q| {
            minijinja::context! {
                requirement => q.requirement, runs => q.runs, passed => q.passed,
                bad => q.passed < q.runs,
                rate => format!("{:.4}", q.rate),
                low => format!("{:.4}", q.wilson95_low),
                high => format!("{:.4}", q.wilson95_high),
            }
        })
        .collect();
    let mut env = minijinja::Environment::new();
    env.add_template("campaign", include_str!("campaign.html.j2"))
        .map_err(err)?;
    env.get_template("campaign")
        .and_then(|t| {
            t.render(minijinja::context! {
                title => title, r => r, plots => plots, worst => worst,
                requirements => requirements,
            })
        })
        .map_err(err)
}
