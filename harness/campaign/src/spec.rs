//! The campaign file: which scenario (or physics case) to fly, how many times, from
//! which seed, and the dispersions.
//!
//! ```toml
//! [campaign]
//! id = "MC-001"
//! title = "Nominal entry, dispersed"
//! mode = "closed_loop"              # or "physics": the twin alone on a case file
//! scenario = "../../scenarios/nominal-entry.toml"   # closed_loop (relative to this file)
//! # case = "../cases/nominal-entry.toml"           # physics
//! runs = 100
//! seed = 42
//!
//! [[disperse]]
//! parameter = "scenario.initial.entry.flight_path_angle_deg"
//! apply = "add"                     # add (default), scale (multiply) or set
//! normal = { mean = 0.0, sigma = 0.03 }
//!
//! [[disperse]]
//! parameter = "vehicle.mass.dry_mass_kg"
//! apply = "scale"
//! uniform = { min = 0.98, max = 1.02 }
//! ```
//!
//! A parameter is a dotted path into one of the files as written (`scenario.`,
//! `case.` or `vehicle.`, then the file's own keys; `[i]` indexes arrays, and
//! `inject.<id>` names a scenario injection by its id); it must name a number in the
//! nominal files. Distributions: `uniform = { min, max }`, `normal = { mean, sigma }`,
//! `truncated_normal = { mean, sigma, min, max }`, `choice = { values = [...],
//! weights = [...] }` (weights optional).

use serde::{Deserialize, Serialize};
use twin_core::config::{Checks, ConfigError, Source};

/// A campaign file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// Identity, what to fly and how often.
    pub campaign: CampaignId,
    /// The dispersions, applied in this order.
    #[serde(default)]
    pub disperse: Vec<Dispersion>,
}

/// `[campaign]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignId {
    /// Short id (letters, digits, `.`, `_`, `-`; at most 64).
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// `closed_loop` or `physics`.
    pub mode: Mode,
    /// The scenario file (closed loop), relative to the campaign file.
    #[serde(default)]
    pub scenario: Option<String>,
    /// The physics case file (physics), relative to the campaign file.
    #[serde(default)]
    pub case: Option<String>,
    /// Number of runs (1 to 1,000,000).
    pub runs: u64,
    /// The campaign's seed: run `i`'s sample depends on (seed, i) alone.
    pub seed: u64,
}

/// How the campaign flies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The scenario in the closed loop with the bench's flight computer (lockstep).
    ClosedLoop,
    /// The twin alone on a physics case (scripted parachute triggers, no avionics).
    Physics,
}

/// How a sampled value changes the nominal one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Apply {
    /// nominal + sample.
    #[default]
    Add,
    /// nominal x sample.
    Scale,
    /// sample.
    Set,
}

/// One `[[disperse]]`: a parameter and its distribution (exactly one of the four).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dispersion {
    /// Dotted path of the parameter (`scenario.`, `case.` or `vehicle.` first).
    pub parameter: String,
    /// How the sample changes the nominal value.
    #[serde(default)]
    pub apply: Apply,
    /// Uniform on [min, max].
    #[serde(default)]
    pub uniform: Option<Uniform>,
    /// Normal.
    #[serde(default)]
    pub normal: Option<Normal>,
    /// Normal truncated to [min, max] (redrawn until inside).
    #[serde(default)]
    pub truncated_normal: Option<TruncatedNormal>,
    /// One of a list of values.
    #[serde(default)]
    pub choice: Option<Choice>,
}

/// Uniform distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uniform {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
}

/// Normal distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normal {
    /// Mean.
    pub mean: f64,
    /// Standard deviation (> 0).
    pub sigma: f64,
}

/// Truncated normal distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TruncatedNormal {
    /// Mean of the underlying normal.
    pub mean: f64,
    /// Its standard deviation (> 0).
    pub sigma: f64,
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
}

/// Discrete choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// The values (1 to 1000).
    pub values: Vec<f64>,
    /// Their weights (same length, >= 0, not all 0); equal when absent.
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
}

/// The largest magnitude a number in a campaign file may have.
const BIG: f64 = 1e12;

impl CampaignSpec {
    /// Parses and validates a campaign file; every error names the file, line,
    /// column and field.
    pub fn from_toml(src: &Source<'_>) -> Result<Self, ConfigError> {
        let s: CampaignSpec = src.parse()?;
        let mut c = Checks::default();
        s.validate(&mut c);
        c.finish(src)?;
        Ok(s)
    }

    fn validate(&self, c: &mut Checks) {
        let id = &self.campaign.id;
        c.require(
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
                && !id.starts_with('.'),
            "campaign.id",
            format!(
                "`{id}`: expected 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.`"
            ),
        );
        c.require(
            (1..=1_000_000).contains(&self.campaign.runs),
            "campaign.runs",
            format!("{} runs: expected 1 to 1000000", self.campaign.runs),
        );
        match self.campaign.mode {
            Mode::ClosedLoop => {
                c.require(
                    self.campaign.scenario.is_some(),
                    "campaign.scenario",
                    "mode `closed_loop` needs `scenario = \"FILE\"`",
                );
                c.require(
                    self.campaign.case.is_none(),
                    "campaign.case",
                    "`case` goes with mode `physics`",
                );
            }
            Mode::Physics => {
                c.require(
                    self.campaign.case.is_some(),
                    "campaign.case",
                    "mode `physics` needs `case = \"FILE\"`",
                );
                c.require(
                    self.campaign.scenario.is_none(),
                    "campaign.scenario",
                    "`scenario` goes with mode `closed_loop`",
                );
            }
        }
        let roots: &[&str] = match self.campaign.mode {
            Mode::ClosedLoop => &["scenario.", "vehicle."],
            Mode::Physics => &["case.", "vehicle."],
        };
        for (k, d) in self.disperse.iter().enumerate() {
            let f = format!("disperse[{k}]");
            c.require(
                roots.iter().any(|r| d.parameter.starts_with(r)) && d.parameter.len() <= 200,
                format!("{f}.parameter"),
                format!(
                    "`{}`: expected a path starting with {}",
                    d.parameter,
                    roots.join(" or ")
                ),
            );
            let given = [
                d.uniform.is_some(),
                d.normal.is_some(),
                d.truncated_normal.is_some(),
                d.choice.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            c.require(
                given == 1,
                f.clone(),
                "give exactly one distribution: `uniform`, `normal`, `truncated_normal` or `choice`",
            );
            if let Some(u) = &d.uniform {
                c.in_range(&format!("{f}.uniform.min"), u.min, -BIG, BIG, "");
                c.in_range(&format!("{f}.uniform.max"), u.max, -BIG, BIG, "");
                c.require(
                    u.min <= u.max,
                    format!("{f}.uniform"),
                    format!("min {} > max {}", u.min, u.max),
                );
            }
            if let Some(n) = &d.normal {
                c.in_range(&format!("{f}.normal.mean"), n.mean, -BIG, BIG, "");
                c.in_range(&format!("{f}.normal.sigma"), n.sigma, 1e-300, BIG, "");
            }
            if let Some(n) = &d.truncated_normal {
                let g = format!("{f}.truncated_normal");
                c.in_range(&format!("{g}.mean"), n.mean, -BIG, BIG, "");
                c.in_range(&format!("{g}.sigma"), n.sigma, 1e-300, BIG, "");
                c.in_range(&format!("{g}.min"), n.min, -BIG, BIG, "");
                c.in_range(&format!("{g}.max"), n.max, -BIG, BIG, "");
                c.require(
                    n.min < n.max,
                    g.clone(),
                    format!("min {} >= max {}", n.min, n.max),
                );
                // Redrawing must end: at least 1e-4 of the mass inside the bounds.
                let z = |x: f64| (x - n.mean) / n.sigma;
                c.require(
                    n.min >= n.max || n.min.is_nan() || n.max.is_nan() || (z(n.max) > -3.7 && z(n.min) < 3.7),
                    g,
                    "the bounds hold almost none of the distribution (more than 3.7 sigma from the mean)",
                );
            }
            if let Some(ch) = &d.choice {
                let g = format!("{f}.choice");
                c.require(
                    (1..=1000).contains(&ch.values.len()),
                    format!("{g}.values"),
                    "expected 1 to 1000 values",
                );
                c.all_in_range(&format!("{g}.values"), &ch.values, -BIG, BIG, "");
                if let Some(w) = &ch.weights {
                    c.require(
                        w.len() == ch.values.len(),
                        format!("{g}.weights"),
                        format!("{} weights for {} values", w.len(), ch.values.len()),
                    );
                    c.all_in_range(&format!("{g}.weights"), w, 0.0, BIG, "");
                    c.require(
                        w.iter().sum::<f64>() > 0.0,
                        format!("{g}.weights"),
                        "the weights are all 0",
                    );
                }
            }
        }
    }
}
