//! `manifest.json`: what produced a bundle and what is in it (schema:
//! `harness/evidence/manifest.schema.json`).

use crate::stream::{AvionicsIdent, StreamCounts};
use capsule_runner::record::LinkCounters;
use serde::{Deserialize, Serialize};

/// Format version of `manifest.json`.
pub const FORMAT_VERSION: u32 = 1;

/// The manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// `running` (written first; a bundle left so was cut short), `complete`, or
    /// `incomplete` (stopped, or records lost: see `incomplete_reasons`).
    pub status: String,
    /// Why the bundle is incomplete (empty when complete).
    pub incomplete_reasons: Vec<String>,
    /// The harness that wrote it.
    pub harness: Harness,
    /// The command line, as given.
    pub command_line: Vec<String>,
    /// The scenario run.
    pub scenario: ScenarioInfo,
    /// The files the run was made from, with their hashes.
    pub inputs: Vec<FileEntry>,
    /// The seed of every random process of the run.
    pub seed: u64,
    /// The seeded defect of the reference flight computer, if any.
    pub defect: Option<String>,
    /// `lockstep` or `realtime`.
    pub clock: String,
    /// The bench's name.
    pub bench: String,
    /// The machine.
    pub host: Host,
    /// UTC start, RFC 3339.
    pub started_utc: String,
    /// UTC end, RFC 3339 (absent while running).
    pub ended_utc: Option<String>,
    /// The avionics' identification as they reported it on the bus (`FC_Ident`).
    pub avionics: Option<AvionicsIdent>,
    /// How the run ended.
    pub end: Option<End>,
    /// The links' counters at the end.
    pub links: Option<LinkCounters>,
    /// What the record stream carried, and how many records were lost on the way.
    pub stream: Option<StreamInfo>,
    /// Every other file of the bundle (not this one, `SHA256SUMS` or the signature).
    pub files: Vec<FileEntry>,
}

/// The harness's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Harness {
    /// Crate version.
    pub version: String,
    /// Git commit it was built from (`unknown` outside a git checkout).
    pub git_commit: String,
}

/// The scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Requirements it verifies.
    pub requirements: Vec<String>,
}

/// A file and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// What it is (`scenario`, `vehicle`, `bench`, `dbc`; for bundle files, the name).
    pub role: String,
    /// Its path as given (inputs) or its name in the bundle.
    pub path: String,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// Size, bytes.
    pub size: u64,
}

/// The machine a run ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// Operating system (`/etc/os-release`'s PRETTY_NAME, else the family).
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model.
    pub cpu_model: String,
    /// Cores available to the process.
    pub cores: usize,
}

impl Host {
    /// This machine.
    pub fn this() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Self {
            os,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct End {
    /// `PASS`, `FAIL`, `ERROR` or `INCOMPLETE`.
    pub verdict: String,
    /// `landed`, `max_time`, `interrupted` or `error`.
    pub reason: String,
    /// The error, for a run that ended in one.
    pub error: Option<String>,
    /// Simulated time reached, s (absent when the run never started).
    pub t_end_s: Option<f64>,
}

/// The record stream's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// What was written.
    pub counts: StreamCounts,
    /// Records the run could not queue (real time: the writer fell behind).
    pub dropped: u64,
}
