//! Scenarios: what to fly, what the avionics must do, and the verdict.
//!
//! A scenario file (TOML, `scenarios/*.toml`) names the requirements it verifies, the
//! initial conditions (vehicle, state, phase, seed), the run limits, and expectations.
//! [`spec::Scenario::from_toml`] validates everything before anything runs and reports
//! errors with file, line, column and field. [`eval::evaluate`] judges a run record.

pub mod bench;
pub mod eval;
pub mod spec;
