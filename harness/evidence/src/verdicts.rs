//! `verdicts.json`: per expectation its id, requirement, verdict, the measured value
//! as a number with its unit and time, and the bound it was judged against (the prose
//! stays too, for people).

use capsule_scenario::eval::{ExpectationResult, ScenarioResult};
use serde_json::{Value, json};

/// Format version of `verdicts.json`.
pub const FORMAT_VERSION: u32 = 1;

/// An expectation's verdict word: `pass`, `fail`, or `not_judged` (the run stopped
/// before its end).
pub fn word(e: &ExpectationResult) -> &'static str {
    match (e.judged, e.passed) {
        (false, _) => "not_judged",
        (true, true) => "pass",
        (true, false) => "fail",
    }
}

/// The document.
pub fn document(r: &ScenarioResult) -> Value {
    json!({
        "format_version": FORMAT_VERSION,
        "scenario": r.id,
        "verdict": r.verdict.to_string(),
        "clock": r.clock,
        "incomplete": r.incomplete,
        "t_end_s": r.t_end_s,
        "expectations": r.expectations.iter().map(|e| json!({
            "id": e.id,
            "requirement": e.requirement,
            "verdict": word(e),
            "expected": e.expected,
            "measured": e.measured,
            "measurement": e.measurement,
        })).collect::<Vec<_>>(),
    })
}
