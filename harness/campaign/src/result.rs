//! What each run of a campaign gave, the campaign's summary, and merging shards.
//!
//! A campaign result lists its runs by index and a summary computed from them alone
//! (no wall time, no host, no order of completion), so that the runs of N shards,
//! merged, give a result identical, byte for byte, to the unsharded campaign's.

use crate::sample::Drawn;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Format version of campaign result files.
pub const FORMAT_VERSION: u32 = 1;

/// The figures a run is summarised by (absent when the run did not reach them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Peak deceleration (non-gravitational acceleration), g.
    pub peak_decel_g: Option<f64>,
    /// Peak stagnation heat flux, W/m^2.
    pub peak_heat_flux_w_m2: Option<f64>,
    /// Integrated stagnation heat load, J/m^2.
    pub heat_load_j_m2: Option<f64>,
    /// Peak dynamic pressure, Pa.
    pub peak_dynamic_pressure_pa: Option<f64>,
    /// Distance from the landing point to the target (closed loop: the scenario's
    /// target; physics: the nominal case's landing point), m.
    pub landing_miss_m: Option<f64>,
    /// Speed at splashdown, m/s.
    pub landing_speed_m_s: Option<f64>,
    /// Mach number when the drogue deployed.
    pub drogue_mach: Option<f64>,
    /// Altitude when the drogue deployed, m.
    pub drogue_altitude_m: Option<f64>,
    /// Dynamic pressure when the drogue deployed, Pa.
    pub drogue_dynamic_pressure_pa: Option<f64>,
}

impl Figures {
    /// (name, unit, value) of every figure, in a fixed order.
    pub fn named(&self) -> [(&'static str, &'static str, Option<f64>); 9] {
        [
            ("peak_decel_g", "g", self.peak_decel_g),
            ("peak_heat_flux_w_m2", "W/m^2", self.peak_heat_flux_w_m2),
            ("heat_load_j_m2", "J/m^2", self.heat_load_j_m2),
            (
                "peak_dynamic_pressure_pa",
                "Pa",
                self.peak_dynamic_pressure_pa,
            ),
            ("landing_miss_m", "m", self.landing_miss_m),
            ("landing_speed_m_s", "m/s", self.landing_speed_m_s),
            ("drogue_mach", "", self.drogue_mach),
            ("drogue_altitude_m", "m", self.drogue_altitude_m),
            (
                "drogue_dynamic_pressure_pa",
                "Pa",
                self.drogue_dynamic_pressure_pa,
            ),
        ]
    }
}

/// One expectation's verdict in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Expectation id.
    pub id: String,
    /// The requirement it verifies.
    pub requirement: String,
    /// Passed.
    pub passed: bool,
    /// What was measured, in words.
    pub measured: String,
}

/// One run of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Its index (0-based): with the campaign seed, all it takes to re-run it.
    pub index: u64,
    /// Its sample.
    pub sample: Vec<Drawn>,
    /// `PASS`, `FAIL` or `ERROR` (closed loop); `DONE` or `ERROR` (physics).
    pub verdict: String,
    /// The error, if the run ended in one.
    #[serde(default)]
    pub error: Option<String>,
    /// The expectations' verdicts (closed loop).
    #[serde(default)]
    pub checks: Vec<Check>,
    /// The run's figures.
    pub figures: Figures,
}

/// Pass rate of one requirement over the campaign, with its confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequirementRate {
    /// The requirement.
    pub requirement: String,
    /// Runs that judged it.
    pub runs: u64,
    /// Runs in which every expectation on it passed.
    pub passed: u64,
    /// passed / runs.
    pub rate: f64,
    /// Wilson score interval at 95 %, lower bound.
    pub wilson95_low: f64,
    /// Wilson score interval at 95 %, upper bound.
    pub wilson95_high: f64,
}

/// Statistics of one figure over the runs that have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureStats {
    /// The figure's name.
    pub name: String,
    /// Its unit.
    pub unit: String,
    /// Runs that have it.
    pub count: u64,
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The campaign's summary, computed from its runs alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Runs in the result.
    pub runs: u64,
    /// Runs that passed (closed loop) or completed (physics).
    pub passed: u64,
    /// Runs that failed an expectation.
    pub failed: u64,
    /// Runs that ended in an error.
    pub errors: u64,
    /// Pass rate per requirement.
    pub requirements: Vec<RequirementRate>,
    /// Figure statistics.
    pub figures: Vec<FigureStats>,
}

/// A campaign result: one shard's or the whole campaign's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignResult {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The campaign's id.
    pub campaign: String,
    /// The campaign file's SHA-256 (shards of different files do not merge).
    pub campaign_sha256: String,
    /// `closed_loop` or `physics`.
    pub mode: String,
    /// The campaign seed.
    pub seed: u64,
    /// Runs in the whole campaign.
    pub total_runs: u64,
    /// The shard this result is (`I/N`, 1-based), or `None` for all runs.
    pub shard: Option<(u64, u64)>,
    /// Every run it was to make was made (false: stopped by a signal).
    pub complete: bool,
    /// Its runs, by index.
    pub runs: Vec<RunResult>,
    /// Their summary.
    pub summary: Summary,
}

/// The Wilson score interval for `k` successes in `n` trials at the normal quantile
/// `z` (1.959964 for 95 %): (low, high). `n = 0` gives (0, 1).
pub fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The 97.5 % quantile of the standard normal (two-sided 95 %).
pub const Z95: f64 = 1.959_963_984_540_054;

/// The summary of `runs`.
pub fn summarise(runs: &[RunResult]) -> Summary {
    let mut req: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in runs {
        let mut per: BTreeMap<&str, bool> = BTreeMap::new();
        for c in &r.checks {
            let e = per.entry(c.requirement.as_str()).or_insert(true);
            *e &= c.passed;
        }
        for (q, ok) in per {
            let e = req.entry(q).or_insert((0, 0));
            e.0 += 1;
            e.1 += u64::from(ok);
        }
    }
    let requirements = req
        .into_iter()
        .map(|(q, (n, k))| {
            let (lo, hi) = wilson(k, n, Z95);
            RequirementRate {
                requirement: q.to_string(),
                runs: n,
                passed: k,
                rate: k as f64 / n as f64,
                wilson95_low: lo,
                wilson95_high: hi,
            }
        })
        .collect();
    let names = Figures::default().named();
    let figures = names
        .iter()
        .enumerate()
        .filter_map(|(k, (name, unit, _))| {
            let mut v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.figures.named()[k].2)
                .filter(|x| x.is_finite())
                .collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let std = if v.len() > 1 {
                (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            } else {
                0.0
            };
            let rank = |p: f64| v[((p * n).ceil() as usize).clamp(1, v.len()) - 1];
            Some(FigureStats {
                name: name.to_string(),
                unit: unit.to_string(),
                count: v.len() as u64,
                min: v[0],
                mean,
                std,
                p50: rank(0.5),
                p99: rank(0.99),
                max: v[v.len() - 1],
            })
        })
        .collect();
    Summary {
        runs: runs.len() as u64,
        passed: runs
            .iter()
            .filter(|r| r.verdict == "PASS" || r.verdict == "DONE")
            .count() as u64,
        failed: runs.iter().filter(|r| r.verdict == "FAIL").count() as u64,
        errors: runs.iter().filter(|r| r.verdict == "ERROR").count() as u64,
        requirements,
        figures,
    }
}

/// Why shard results do not merge.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no campaign results to merge")]
    Empty,
    /// Results of different campaigns.
    #[error("{0}")]
    Mismatch(String),
    /// A run appears twice, or one is missing.
    #[error("{0}")]
    Runs(String),
}

/// Merges shard results into the campaign's: every run exactly once, by index, and
/// the summary computed again. Incomplete sets are refused (naming the missing runs).
pub fn merge(parts: Vec<CampaignResult>) -> Result<CampaignResult, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    let key = |r: &CampaignResult| {
        (
            r.campaign.clone(),
            r.campaign_sha256.clone(),
            r.mode.clone(),
            r.seed,
            r.total_runs,
        )
    };
    let k0 = key(first);
    for p in &parts {
        if key(p) != k0 {
            return Err(MergeError::Mismatch(format!(
                "results of different campaigns: {} (file {}, seed {}, {} runs) and {} (file {}, seed {}, {} runs)",
                k0.0, k0.1, k0.3, k0.4, p.campaign, p.campaign_sha256, p.seed, p.total_runs
            )));
        }
    }
    if let Some(p) = parts.iter().find(|p| !p.complete) {
        return Err(MergeError::Runs(format!(
            "the result of shard {} is incomplete (stopped by a signal): run it again",
            p.shard
                .map_or("(all)".to_string(), |(i, n)| format!("{i}/{n}"))
        )));
    }
    let (campaign, sha, mode, seed, total) = k0;
    let mut runs: Vec<RunResult> = parts.into_iter().flat_map(|p| p.runs).collect();
    runs.sort_by_key(|r| r.index);
    for w in runs.windows(2) {
        if w[0].index == w[1].index {
            return Err(MergeError::Runs(format!(
                "run {} is in more than one result",
                w[0].index
            )));
        }
    }
    let have: std::collections::BTreeSet<u64> = runs.iter().map(|r| r.index).collect();
    let missing: Vec<u64> = (0..total).filter(|i| !have.contains(i)).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(u64::to_string).collect();
        return Err(MergeError::Runs(format!(
            "{} of {total} runs missing (runs {}{}): is a shard's result not given?",
            missing.len(),
            shown.join(", "),
            if missing.len() > 10 { ", ..." } else { "" }
        )));
    }
    if let Some(r) = runs.iter().find(|r| r.index >= total) {
        return Err(MergeError::Runs(format!(
            "run {} is beyond the campaign's {total} runs",
            r.index
        )));
    }
    let summary = summarise(&runs);
    Ok(CampaignResult {
        format_version: FORMAT_VERSION,
        campaign,
        campaign_sha256: sha,
        mode,
        seed,
        total_runs: total,
        shard: None,
        complete: true,
        runs,
        summary,
    })
}

/// The run indices of shard `i` of `n` (1-based): every n-th run from i - 1, so that
/// shards take runs evenly whatever each costs.
pub fn shard_indices(total: u64, i: u64, n: u64) -> impl Iterator<Item = u64> {
    (i.saturating_sub(1)..total).step_by(n.max(1) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), Statistics in Medicine 17, 857-872, Table I, method 3
        // (Wilson score without continuity correction): 81/263 -> 0.2553 to 0.3662;
        // 15/148 -> 0.0624 to 0.1605; 0/20 -> 0 to 0.1611; 1/29 -> 0.0061 to 0.1718.
        for (k, n, lo, hi) in [
            (81, 263, 0.2553, 0.3662),
            (15, 148, 0.0624, 0.1605),
            (0, 20, 0.0, 0.1611),
            (1, 29, 0.0061, 0.1718),
        ] {
            let (a, b) = wilson(k, n, Z95);
            assert!(
                (a - lo).abs() < 6e-5 && (b - hi).abs() < 6e-5,
                "{k}/{n}: {a} {b}"
            );
        }
    }

    #[test]
    fn shards_cover_every_run_once() {
        let mut all: Vec<u64> = (1..=3).flat_map(|i| shard_indices(10, i, 3)).collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(shard_indices(2, 3, 3).count(), 0);
    }
}
