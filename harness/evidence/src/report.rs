//! `report.html`: the run for people, self-contained (inline SVG plots and styles, no
//! script, no network, no font), rendered from a template ([`minijinja`], HTML
//! escaping on) with plots drawn by [`plotters`]' SVG backend.

use crate::EvidenceError;
use crate::bundle::Outcome;
use crate::manifest::Manifest;
use capsule_runner::record::RunRecord;
use capsule_scenario::eval::ScenarioResult;
use plotters::prelude::*;
use serde_json::json;

const TEMPLATE: &str = include_str!("report.html.j2");

/// A plotted quantity: title, unit, the scenario signal it shows, the scale from the
/// signal's unit to the plot's, and how to read it from a snapshot.
type Quantity = (
    &'static str,
    &'static str,
    &'static str,
    f64,
    fn(&twin_core::twin::Snapshot) -> f64,
);

const PLOTS: [Quantity; 8] = [
    ("Altitude", "km", "truth.altitude_m", 1e-3, |s| {
        s.altitude_m * 1e-3
    }),
    ("Airspeed", "m/s", "truth.airspeed_m_s", 1.0, |s| {
        s.airspeed_m_s
    }),
    ("Mach", "", "truth.mach", 1.0, |s| s.mach),
    ("Deceleration", "g", "truth.load_factor_g", 1.0, |s| {
        s.load_factor_g
    }),
    (
        "Stagnation heat flux",
        "kW/m^2",
        "truth.heat_flux_w_m2",
        1e-3,
        |s| s.heat_flux_w_m2 * 1e-3,
    ),
    (
        "Dynamic pressure",
        "kPa",
        "truth.dynamic_pressure_pa",
        1e-3,
        |s| s.dynamic_pressure_pa * 1e-3,
    ),
    ("Bank angle", "deg", "truth.bank_deg", 1.0, |s| s.bank_deg),
    ("Bondline temperature", "K", "truth.bondline_k", 1.0, |s| {
        s.bondline_k
    }),
];

/// A judged value on a plot: (time, value, lower bound, upper bound, passed), in the
/// plot's unit.
pub type Judgement = (f64, f64, Option<f64>, Option<f64>, bool);

/// Event marks on plots: (time, name), injections and mode changes only (the rest
/// are in the table).
fn marks(r: &RunRecord) -> Vec<(f64, String)> {
    r.named_events
        .iter()
        .filter(|(_, n)| n.starts_with("inject:") || n.starts_with("fc_mode:") || n == "splashdown")
        .cloned()
        .collect()
}

fn plot_err(e: impl std::fmt::Display) -> EvidenceError {
    EvidenceError::Bundle {
        path: "report.html".into(),
        cause: format!("plot: {e}"),
    }
}

/// A key frame of the run rendered by the twin viewer, in the bundle.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyFrame {
    /// What it shows (`entry interface`, `peak heating`, `drogue`, `main`,
    /// `splashdown`).
    pub label: String,
    /// Run time, s.
    pub t_s: f64,
    /// Its file in the bundle.
    pub file: String,
}

/// One line plot as SVG, with event marks.
pub fn line_svg(
    title: &str,
    unit: &str,
    series: &[(String, Vec<(f64, f64)>)],
    marks: &[(f64, String)],
    judged: &[Judgement],
) -> Result<String, EvidenceError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let pts = series.iter().flat_map(|(_, v)| v.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        let bounds = judged.iter().flat_map(|j| [Some(j.1), j.2, j.3]).flatten();
        for (x, y) in bounds
            .map(|b| (f64::NAN, b))
            .chain(pts.copied())
            .filter(|(_, y)| y.is_finite())
        {
            if x.is_finite() {
                x0 = x0.min(x);
                x1 = x1.max(x);
            }
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let pad = ((y1 - y0).abs() * 0.05).max(1e-6);
        let caption = if unit.is_empty() {
            title.to_string()
        } else {
            format!("{title} ({unit})")
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("t (s)")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        for (t, _) in marks {
            chart
                .draw_series(LineSeries::new(
                    [(*t, y0 - pad), (*t, y1 + pad)],
                    RGBColor(230, 140, 40).stroke_width(1),
                ))
                .map_err(plot_err)?;
        }
        let colours = [
            RGBColor(31, 90, 180),
            RGBColor(200, 40, 40),
            RGBColor(40, 150, 60),
            RGBColor(120, 60, 160),
        ];
        for (i, (name, v)) in series.iter().enumerate() {
            let c = colours[i % colours.len()];
            let s = chart
                .draw_series(LineSeries::new(v.iter().copied(), c.stroke_width(2)))
                .map_err(plot_err)?;
            if series.len() > 1 {
                s.label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c));
            }
        }
        // Each judged value: its bounds as short bars around its time, the value as a
        // dot (red when the check failed).
        let span = (x1 - x0) * 0.03;
        for &(t, v, lo, hi, ok) in judged {
            for b in [lo, hi].into_iter().flatten() {
                chart
                    .draw_series(LineSeries::new(
                        [(t - span, b), (t + span, b)],
                        RGBColor(90, 90, 90).stroke_width(2),
                    ))
                    .map_err(plot_err)?;
            }
            let c = if ok {
                RGBColor(40, 150, 60)
            } else {
                RGBColor(210, 30, 30)
            };
            chart
                .draw_series([Circle::new((t, v), 5, c.filled())])
                .map_err(plot_err)?;
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// The timeline: each timed expectation's window (bar) and the measured time (dot,
/// red when it failed), on the run's time axis.
fn timeline_svg(result: &ScenarioResult, t_end_s: f64) -> Result<Option<String>, EvidenceError> {
    let rows: Vec<(String, f64, f64, Option<f64>, bool)> = result
        .expectations
        .iter()
        .filter_map(|e| {
            let m = e.measurement.as_ref()?;
            if !m.quantity.starts_with("delay of ") {
                return None;
            }
            let (lo, hi) = (m.min?, m.max?);
            // The window in run time: the reference event's time plus the bounds.
            let t_ref = match (m.t_s, m.value) {
                (Some(t), Some(v)) => t - v,
                _ => return Some((e.id.clone(), f64::NAN, f64::NAN, None, e.passed)),
            };
            Some((e.id.clone(), t_ref + lo, t_ref + hi, m.t_s, e.passed))
        })
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let mut svg = String::new();
    {
        let h = 60 + 28 * rows.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (760, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Timed expectations: window and measured time",
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(150)
            .build_cartesian_2d(0.0..t_end_s.max(1.0), 0.0..rows.len() as f64)
            .map_err(plot_err)?;
        let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        chart
            .configure_mesh()
            .x_desc("t (s)")
            .y_labels(rows.len() + 1)
            .y_label_formatter(&|y| {
                let k = y.floor() as usize;
                labels.get(k).cloned().unwrap_or_default()
            })
            .disable_y_mesh()
            .draw()
            .map_err(plot_err)?;
        for (k, (_, a, b, t, ok)) in rows.iter().enumerate() {
            let y = k as f64 + 0.5;
            if a.is_finite() && b.is_finite() {
                chart
                    .draw_series([Rectangle::new(
                        [(*a, y - 0.3), ((*b).max(*a + t_end_s * 0.002), y + 0.3)],
                        RGBColor(150, 190, 240).filled(),
                    )])
                    .map_err(plot_err)?;
            }
            if let Some(t) = t {
                let c = if *ok {
                    RGBColor(40, 150, 60)
                } else {
                    RGBColor(210, 30, 30)
                };
                chart
                    .draw_series([Circle::new((*t, y), 5, c.filled())])
                    .map_err(plot_err)?;
            }
        }
        root.present().map_err(plot_err)?;
    }
    Ok(Some(svg))
}

/// Renders the report of a bundle.
pub fn render(
    manifest: &Manifest,
    outcome: Outcome<'_>,
    frames: &[KeyFrame],
) -> Result<String, EvidenceError> {
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| plot_err(format!("template: {e}")))?;
    let mut plots = Vec::new();
    let mut events = Vec::new();
    let mut expectations = Vec::new();
    let mut timeline = None;
    let mut timing = None;
    let (verdict, error) = match outcome {
        Outcome::Judged { record, result } => {
            let mk = marks(record);
            for (title, unit, signal, scale, f) in PLOTS {
                let v: Vec<(f64, f64)> = record.snapshots.iter().map(|s| (s.t_s, f(s))).collect();
                // The expectations judged on this signal at one moment.
                let judged: Vec<Judgement> = result
                    .expectations
                    .iter()
                    .filter_map(|e| {
                        let m = e.measurement.as_ref()?;
                        (m.quantity == signal).then_some(())?;
                        Some((
                            m.t_s?,
                            m.value? * scale,
                            m.min.map(|x| x * scale),
                            m.max.map(|x| x * scale),
                            e.passed,
                        ))
                    })
                    .collect();
                plots.push(line_svg(
                    title,
                    unit,
                    &[(title.to_string(), v)],
                    &mk,
                    &judged,
                )?);
            }
            // Parachute drag areas, one line per canopy.
            let names: Vec<String> = record
                .snapshots
                .first()
                .map(|s| s.parachutes.iter().map(|p| p.0.clone()).collect())
                .unwrap_or_default();
            if !names.is_empty() {
                let series: Vec<(String, Vec<(f64, f64)>)> = names
                    .iter()
                    .enumerate()
                    .map(|(k, n)| {
                        let v = record
                            .snapshots
                            .iter()
                            .filter_map(|s| s.parachutes.get(k).map(|p| (s.t_s, p.2)))
                            .collect();
                        (n.clone(), v)
                    })
                    .collect();
                plots.push(line_svg("Parachute drag area", "m^2", &series, &mk, &[])?);
            }
            events = record
                .named_events
                .iter()
                .map(|(t, n)| json!({"t_s": format!("{t:.3}"), "name": n, "injection": n.starts_with("inject:")}))
                .collect();
            expectations = result
                .expectations
                .iter()
                .map(|e| {
                    let m = e.measurement.as_ref();
                    let num = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.4}"));
                    json!({
                        "id": e.id, "requirement": e.requirement,
                        "verdict": crate::verdicts::word(e),
                        "expected": e.expected, "measured": e.measured,
                        "value": num(m.and_then(|m| m.value)),
                        "unit": m.map_or(String::new(), |m| m.unit.clone()),
                        "at": num(m.and_then(|m| m.t_s)),
                        "min": num(m.and_then(|m| m.min)),
                        "max": num(m.and_then(|m| m.max)),
                    })
                })
                .collect();
            timeline = timeline_svg(result, record.t_end_s)?;
            timing = record.timing.as_ref().map(|t| {
                json!({
                    "summary": t.summary(),
                    "met": t.met(),
                    "violations": t.violations,
                })
            });
            (result.verdict.to_string(), None)
        }
        Outcome::Error {
            message,
            interrupted,
            ..
        } => (
            if interrupted { "INCOMPLETE" } else { "ERROR" }.to_string(),
            Some(message.to_string()),
        ),
    };
    let links: Vec<serde_json::Value> = manifest
        .links
        .iter()
        .flat_map(|l| l.links.iter())
        .map(|(n, c)| json!({"name": n, "c": c}))
        .collect();
    let manifest_json =
        serde_json::to_string_pretty(manifest).map_err(|e| EvidenceError::Json(e.to_string()))?;
    let ctx = json!({
        "m": manifest,
        "verdict": verdict,
        "error": error,
        "expectations": expectations,
        "events": events,
        "plots": plots,
        "timeline": timeline,
        "timing": timing,
        "links": links,
        "manifest_json": manifest_json,
        "frames": frames,
    });
    env.get_template("report.html")
        .and_then(|t| t.render(ctx))
        .map_err(|e| plot_err(format!("template: {e}")))
}
