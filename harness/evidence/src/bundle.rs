//! A run's bundle: created before the run, fed while it runs, finished after the
//! verdict.

use crate::integrity::{self, MANIFEST, SIGNATURE, SUMS};
use crate::manifest::{End, FileEntry, Harness, Host, Manifest, ScenarioInfo, StreamInfo};
use crate::stream::{self, StreamSummary};
use crate::{EvidenceError, io_err, write_atomic};
use capsule_icd::Icd;
use capsule_runner::record::{EndReason, LinkCounters, RunRecord};
use capsule_runner::tap::Tap;
use capsule_scenario::eval::ScenarioResult;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// The recorded run, input of `hil replay`: the complete [`RunRecord`] as JSON
/// (floats round-trip exactly), gzip-compressed.
pub const RECORD: &str = "record.json.gz";
/// Per-expectation verdicts with numbers.
pub const VERDICTS: &str = "verdicts.json";
/// The real-time loop's timing.
pub const TIMING: &str = "timing.json";
/// The report.
pub const REPORT: &str = "report.html";

/// Records the run may have in flight to the writer thread.
pub const QUEUE_DEPTH: usize = 65_536;

/// What is known of a run before it starts.
#[derive(Debug, Clone)]
pub struct BundleSpec {
    /// The harness.
    pub harness: Harness,
    /// The command line.
    pub command_line: Vec<String>,
    /// The scenario.
    pub scenario: ScenarioInfo,
    /// Input files: (role, path).
    pub inputs: Vec<(String, PathBuf)>,
    /// Built-in inputs: (role, name, content), e.g. the DBC compiled into `hil`.
    pub builtin_inputs: Vec<(String, String, Vec<u8>)>,
    /// Seed.
    pub seed: u64,
    /// Seeded defect.
    pub defect: Option<String>,
    /// Clock name.
    pub clock: String,
    /// Bench name.
    pub bench: String,
}

/// How the run ended, for [`Bundle::finish`].
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// The run completed (or was stopped) and was judged.
    Judged {
        /// What it recorded.
        record: &'a RunRecord,
        /// Its verdict.
        result: &'a ScenarioResult,
    },
    /// The run ended in an error.
    Error {
        /// The cause.
        message: &'a str,
        /// The links' counters, if they opened.
        links: Option<&'a LinkCounters>,
        /// A signal stopped the command.
        interrupted: bool,
    },
}

/// A bundle being written.
pub struct Bundle {
    dir: PathBuf,
    manifest: Manifest,
    tap: Tap,
    done: Arc<AtomicBool>,
    writer: Option<JoinHandle<Result<StreamSummary, EvidenceError>>>,
}

fn now_utc() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

impl Bundle {
    /// Starts a bundle in the (existing, empty) directory `dir`: hashes the inputs,
    /// writes the manifest with status `running`, and starts the writer thread.
    pub fn create(dir: &Path, spec: BundleSpec, db: Icd) -> Result<Self, EvidenceError> {
        // Every input is hashed and copied in (`input-<role>.<ext>`), so the bundle
        // alone is enough to replay the run.
        let mut inputs = Vec::new();
        let mut all: Vec<(String, String, Vec<u8>)> = Vec::new();
        for (role, p) in &spec.inputs {
            let b = std::fs::read(p).map_err(|e| io_err(p, e))?;
            all.push((role.clone(), p.display().to_string(), b));
        }
        all.extend(spec.builtin_inputs.iter().cloned());
        for (role, name, bytes) in &all {
            let copy = input_name(role).ok_or_else(|| EvidenceError::Bundle {
                path: dir.display().to_string(),
                cause: format!("no bundle name for an input of role `{role}`"),
            })?;
            write_atomic(&dir.join(copy), bytes)?;
            inputs.push(FileEntry {
                role: role.clone(),
                path: name.clone(),
                sha256: integrity::sha256_bytes(bytes),
                size: bytes.len() as u64,
            });
        }
        let manifest = Manifest {
            format_version: crate::manifest::FORMAT_VERSION,
            status: "running".into(),
            incomplete_reasons: vec!["the run had not ended when this manifest was written".into()],
            harness: spec.harness,
            command_line: spec.command_line,
            scenario: spec.scenario,
            inputs,
            seed: spec.seed,
            defect: spec.defect,
            clock: spec.clock,
            bench: spec.bench,
            host: Host::this(),
            started_utc: now_utc(),
            ended_utc: None,
            avionics: None,
            end: None,
            links: None,
            stream: None,
            files: Vec::new(),
        };
        write_manifest(dir, &manifest)?;
        let (tap, rx) = Tap::bounded(QUEUE_DEPTH);
        let done = Arc::new(AtomicBool::new(false));
        let (d, flag, t) = (dir.to_path_buf(), done.clone(), tap.clone());
        let flush_every_s = if manifest.clock == "lockstep" {
            10.0
        } else {
            1.0
        };
        let writer = std::thread::Builder::new()
            .name("bundle-writer".into())
            .spawn(move || {
                // The writer runs only on a core the loop and the avionics leave idle
                // (SCHED_IDLE; no privilege needed): it never delays a step. In
                // lockstep a full queue holds the loop, so nothing is lost.
                let _ = thread_priority::set_thread_priority_and_policy(
                    thread_priority::thread_native_id(),
                    thread_priority::ThreadPriority::Min,
                    thread_priority::ThreadSchedulePolicy::Normal(
                        thread_priority::NormalThreadSchedulePolicy::Idle,
                    ),
                );
                stream::run(rx, &t, &d, db, &flag, flush_every_s)
            })
            .map_err(|e| io_err(dir, format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            tap,
            done,
            writer: Some(writer),
        })
    }

    /// The record stream to give the run.
    pub fn tap(&self) -> Tap {
        self.tap.clone()
    }

    /// The bundle's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Ends the stream, writes the record, verdicts, timing and report, then the
    /// manifest with every file's hash, `SHA256SUMS` and (given a key) the signature.
    /// Returns the final manifest.
    pub fn finish(
        self,
        outcome: Outcome<'_>,
        key: Option<&ssh_key::PrivateKey>,
    ) -> Result<Manifest, EvidenceError> {
        self.finish_with_frames(outcome, key, &|_| Vec::new())
    }

    /// [`Bundle::finish`], with key frames made by `frames` once the stream files are
    /// complete (it writes them into the bundle's directory and returns them; they are
    /// hashed and shown in the report like any other file).
    pub fn finish_with_frames(
        mut self,
        outcome: Outcome<'_>,
        key: Option<&ssh_key::PrivateKey>,
        frames: &dyn Fn(&Path) -> Vec<crate::report::KeyFrame>,
    ) -> Result<Manifest, EvidenceError> {
        self.done.store(true, Ordering::Release);
        let dropped = self.tap.dropped();
        let mut reasons = Vec::new();
        let summary = match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Ok(s))) => Some(s),
            Some(Ok(Err(e))) => {
                reasons.push(format!("the stream writer failed: {e}"));
                None
            }
            _ => {
                reasons.push("the stream writer thread panicked".into());
                None
            }
        };
        if dropped > 0 {
            reasons.push(format!(
                "{dropped} records of the run could not be queued for the bundle (the writer fell behind)"
            ));
        }
        let m = &mut self.manifest;
        m.ended_utc = Some(now_utc());
        if let Some(s) = &summary {
            m.avionics = s.avionics;
        }
        m.stream = Some(StreamInfo {
            counts: summary.map(|s| s.counts).unwrap_or_default(),
            dropped,
        });
        match outcome {
            Outcome::Judged { record, result } => {
                let json =
                    serde_json::to_vec(record).map_err(|e| EvidenceError::Json(e.to_string()))?;
                write_gz(&self.dir.join(RECORD), &json)?;
                write_json(&self.dir.join(VERDICTS), &crate::verdicts::document(result))?;
                if let Some(t) = &record.timing {
                    write_json(
                        &self.dir.join(TIMING),
                        &serde_json::to_value(t).map_err(|e| EvidenceError::Json(e.to_string()))?,
                    )?;
                }
                if record.end == EndReason::Interrupted {
                    reasons.push(format!(
                        "the run was stopped at t = {:.3} s before its end",
                        record.t_end_s
                    ));
                }
                m.end = Some(End {
                    verdict: result.verdict.to_string(),
                    reason: match record.end {
                        EndReason::Landed => "landed",
                        EndReason::MaxTime => "max_time",
                        EndReason::Interrupted => "interrupted",
                    }
                    .into(),
                    error: None,
                    t_end_s: Some(record.t_end_s),
                });
                m.links = Some(record.links.clone());
            }
            Outcome::Error {
                message,
                links,
                interrupted,
            } => {
                if interrupted {
                    reasons.push("the command was stopped by a signal".into());
                }
                m.end = Some(End {
                    verdict: if interrupted { "INCOMPLETE" } else { "ERROR" }.into(),
                    reason: "error".into(),
                    error: Some(message.to_string()),
                    t_end_s: None,
                });
                m.links = links.cloned();
            }
        }
        m.status = if reasons.is_empty() {
            "complete"
        } else {
            "incomplete"
        }
        .into();
        m.incomplete_reasons = reasons;
        let key_frames = match outcome {
            Outcome::Judged { .. } => frames(&self.dir),
            Outcome::Error { .. } => Vec::new(),
        };
        let html = crate::report::render(m, outcome, &key_frames)?;
        write_atomic(&self.dir.join(REPORT), html.as_bytes())?;
        // Every file but the manifest, the sums and the signature, by name.
        let mut files = Vec::new();
        for n in integrity::list(&self.dir)? {
            if [MANIFEST, SUMS, SIGNATURE].contains(&n.as_str()) {
                continue;
            }
            let p = self.dir.join(&n);
            if !p.is_file() || !integrity::is_bundle_name(&n) {
                continue;
            }
            let (sha256, size) = integrity::sha256_file(&p)?;
            files.push(FileEntry {
                role: n.clone(),
                path: n,
                sha256,
                size,
            });
        }
        m.files = files;
        write_manifest(&self.dir, m)?;
        let (mh, _) = integrity::sha256_file(&self.dir.join(MANIFEST))?;
        let mut sums: Vec<(String, String)> = m
            .files
            .iter()
            .map(|f| (f.path.clone(), f.sha256.clone()))
            .collect();
        sums.push((MANIFEST.into(), mh));
        sums.sort();
        write_atomic(&self.dir.join(SUMS), integrity::sums_text(&sums).as_bytes())?;
        if let Some(k) = key {
            integrity::sign(&self.dir, k)?;
        }
        Ok(self.manifest)
    }
}

/// The bundle's copy of the input of `role` (`scenario`, `vehicle`, `bench`, `dbc`,
/// `binding`).
pub fn input_name(role: &str) -> Option<&'static str> {
    Some(match role {
        "scenario" => "input-scenario.toml",
        "vehicle" => "input-vehicle.toml",
        "bench" => "input-bench.toml",
        "dbc" => "input-icd.dbc",
        "binding" => "input-icd.binding.toml",
        _ => return None,
    })
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<(), EvidenceError> {
    write_json(
        &dir.join(MANIFEST),
        &serde_json::to_value(m).map_err(|e| EvidenceError::Json(e.to_string()))?,
    )
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), EvidenceError> {
    let mut s = serde_json::to_string_pretty(v).map_err(|e| EvidenceError::Json(e.to_string()))?;
    s.push('\n');
    write_atomic(path, s.as_bytes())
}

fn write_gz(path: &Path, b: &[u8]) -> Result<(), EvidenceError> {
    use std::io::Write;
    let mut g = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::fast());
    g.write_all(b).map_err(|e| io_err(path, e))?;
    let out = g.finish().map_err(|e| io_err(path, e))?;
    write_atomic(path, &out)
}

/// Reads a bundle's recorded run.
pub fn read_record(dir: &Path) -> Result<RunRecord, EvidenceError> {
    use std::io::Read;
    let p = dir.join(RECORD);
    let f = std::fs::File::open(&p).map_err(|e| io_err(&p, e))?;
    let mut s = String::new();
    // A record is tens of MB; a file that inflates past 2 GiB is not one.
    flate2::read::GzDecoder::new(f)
        .take(2 << 30)
        .read_to_string(&mut s)
        .map_err(|e| io_err(&p, e))?;
    serde_json::from_str(&s).map_err(|e| io_err(&p, format!("not a run record: {e}")))
}
