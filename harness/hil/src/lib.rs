//! The `hil` library: the one path from files to a judged run, shared by every command
//! (run, replay, parallel jobs, campaigns; the viewer next), so that the binary stays a
//! thin command-line layer.
//!
//! - [`assemble`]: loading scenarios, vehicles and benches, checking everything a run
//!   would reject, and turning a scenario and a bench into a running loop;
//! - [`library`]: one scenario run with its bundle and result file, and many of them
//!   on several cores at once, results in the list's order;
//! - [`outputs`]: result files (`--json`, `--junit`), checked and opened before any run
//!   and written atomically;
//! - [`signals`]: SIGINT, SIGTERM and SIGHUP as stop requests;
//! - [`benchrt`] and [`rtargs`]: `hil bench-rt` and the real-time loop's OS requests;
//! - [`campaign`]: Monte Carlo campaigns, their shards and merging;
//! - [`evidence`], [`replay`], [`traceability`]: bundles, `hil replay`, `hil report`;
//! - [`view`] and [`viewcmd`]: the twin view's feed (the snapshot stream a viewer
//!   reads), `hil run --view` and `hil view`.

pub mod assemble;
pub mod benchrt;
pub mod campaign;
pub mod evidence;
pub mod library;
pub mod outputs;
pub mod replay;
pub mod rtargs;
pub mod signals;
pub mod traceability;
pub mod view;
pub mod viewcmd;
