//! The `hil` library: the one path from files to a judged run, shared by every command
//! (`run` today; replay, campaigns, parallel jobs and the viewer next), so that the
//! binary stays a thin command-line layer.
//!
//! - [`assemble`]: loading scenarios, vehicles and benches, checking everything a run
//!   would reject, and turning a scenario and a bench into a running loop;
//! - [`outputs`]: result files (`--json`, `--junit`), checked and opened before any run
//!   and written atomically;
//! - [`signals`]: SIGINT, SIGTERM and SIGHUP as stop requests.

pub mod assemble;
pub mod evidence;
pub mod outputs;
pub mod replay;
pub mod signals;
pub mod traceability;
