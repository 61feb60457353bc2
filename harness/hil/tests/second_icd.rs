//! The ICD is data: `hil run --icd FILE --binding FILE` (or a bench's `[icd]`) flies
//! the library on a deliberately different ICD (`fixtures/icd/variant/capsule-b.*`:
//! other node, message and signal names, identifiers, Motorola byte order, units,
//! scales, status values, pyro and valve bits and status rates), with the device
//! emulators and the reference flight computer both driven by its binding, and every
//! scenario gets the verdicts it gets on the shipped ICD (the library snapshot of
//! `cli.rs`). The results and the bundle name the DBC and binding with their hashes,
//! and the bundle replays on its own copies.
mod common;
use common::{root, test_dir, wait_at_most};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn variant(ext: &str) -> PathBuf {
    root().join(format!("fixtures/icd/variant/capsule-b.{ext}"))
}

fn sha256(p: &Path) -> String {
    capsule_evidence::integrity::sha256_bytes(&std::fs::read(p).expect("read"))
}

/// Identifiers of the CAN log (candump -L lines: `(t) can ID#DATA dir`).
fn can_ids(bundle: &Path) -> std::collections::BTreeSet<u32> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(bundle.join("can.log.gz")).expect("log"))
        .read_to_string(&mut text)
        .expect("gzip");
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter_map(|f| f.split('#').next())
        .filter_map(|id| u32::from_str_radix(id, 16).ok())
        .collect()
}

/// (scenario id, verdict, ["ok|FAIL <expectation id>"...]) per scenario.
type Verdicts = Vec<(String, String, Vec<String>)>;

/// The shipped ICD's verdicts, from the library snapshot `cli.rs` keeps true.
fn shipped_verdicts() -> Verdicts {
    let snap = std::fs::read_to_string(root().join(
        "harness/hil/tests/snapshots/cli__the_library_passes_and_its_verdicts_match_the_snapshot.snap",
    ))
    .expect("library snapshot");
    let body = snap.splitn(3, "---\n").nth(2).expect("snapshot body");
    let v: serde_json::Value = serde_json::from_str(body).expect("snapshot JSON");
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| {
            let exps = s["expectations"]
                .as_array()
                .expect("list")
                .iter()
                .map(|e| {
                    let t = e.as_str().expect("text");
                    // "ok <id> <measured>" or "FAIL <id> <measured>"
                    t.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" ")
                })
                .collect();
            (
                s["id"].as_str().expect("id").to_string(),
                s["verdict"].as_str().expect("verdict").to_string(),
                exps,
            )
        })
        .collect()
}

fn verdicts_of(results: &serde_json::Value) -> Verdicts {
    results["scenarios"]
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            let res = &r["result"];
            let exps = res["expectations"]
                .as_array()
                .unwrap_or_else(|| panic!("{r}"))
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        if e["passed"].as_bool() == Some(true) {
                            "ok"
                        } else {
                            "FAIL"
                        },
                        e["id"].as_str().unwrap_or("")
                    )
                })
                .collect();
            (
                res["id"].as_str().unwrap_or("").to_string(),
                res["verdict"].as_str().unwrap_or("").to_string(),
                exps,
            )
        })
        .collect()
}

/// Runs `hil` with `--json` and returns the results; the run must end with a verdict
/// (exit 0, or 1 for a FAIL: the cut scenarios end before splashdown).
fn run_json(dir: &Path, args: &[&str], limit_s: u64) -> serde_json::Value {
    let json = dir.join("r.json");
    let mut all = args.to_vec();
    all.extend(["--json", json.to_str().expect("utf8")]);
    let f = wait_at_most(common::spawn_hil(&all), Duration::from_secs(limit_s));
    assert!(matches!(f.code, Some(0 | 1)), "{}\n{}", f.stdout, f.stderr);
    serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON")
}

#[test]
fn the_library_on_another_icd_gets_the_shipped_icds_verdicts() {
    let d = test_dir("icd-b-library");
    let out = d.path().join("runs");
    let (dbc, binding) = (variant("dbc"), variant("binding.toml"));
    let v = run_json(
        d.path(),
        &[
            "run",
            "scenarios",
            "--no-bundle",
            "--out",
            out.to_str().expect("utf8"),
            "--icd",
            dbc.to_str().expect("utf8"),
            "--binding",
            binding.to_str().expect("utf8"),
        ],
        3600,
    );
    // The results name both files and their hashes.
    assert_eq!(v["icd"]["dbc"], dbc.display().to_string());
    assert_eq!(v["icd"]["sha256"].as_str(), Some(sha256(&dbc).as_str()));
    assert_eq!(v["icd"]["binding"], binding.display().to_string());
    assert_eq!(
        v["icd"]["binding_sha256"].as_str(),
        Some(sha256(&binding).as_str())
    );
    let (got, want) = (verdicts_of(&v), shipped_verdicts());
    assert_eq!(got.len(), want.len(), "scenario count");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "scenario {} judged differently on ICD B", w.0);
    }
}

#[test]
fn a_bundle_on_another_icd_records_and_replays_it() {
    let d = test_dir("icd-b-bundle");
    let out = d.path().join("runs");
    let (dbc, binding) = (variant("dbc"), variant("binding.toml"));
    let scn = common::short_scenario(d.path(), "short.toml", 20.0);
    let v = run_json(
        d.path(),
        &[
            "run",
            scn.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            "--icd",
            dbc.to_str().expect("utf8"),
            "--binding",
            binding.to_str().expect("utf8"),
        ],
        300,
    );
    assert!(v["scenarios"][0]["result"].is_object(), "{v}");
    let b = common::only_dir(&out);
    // Other bytes on the wire: every logged identifier is one of ICD B's (its
    // barometer at 0x400, its lockstep tick at 0x7C0), none is the shipped lockstep
    // tick 0x7F0 or beacon status 0x330.
    let ids = can_ids(&b);
    let db_b = capsule_icd::can::CanDb::from_dbc(
        "capsule-b.dbc",
        &std::fs::read_to_string(&dbc).expect("dbc"),
    )
    .expect("ICD B");
    assert!(ids.iter().all(|id| db_b.by_id(*id).is_some()), "{ids:x?}");
    assert!(ids.contains(&0x400) && ids.contains(&0x7C0), "{ids:x?}");
    assert!(!ids.contains(&0x7F0) && !ids.contains(&0x330), "{ids:x?}");
    // The manifest lists the DBC and the binding it ran on.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    for (role, p) in [("dbc", &dbc), ("binding", &binding)] {
        let e = m["inputs"]
            .as_array()
            .and_then(|i| i.iter().find(|e| e["role"] == role))
            .cloned()
            .unwrap_or_else(|| panic!("{role} input in {}", m["inputs"]));
        assert_eq!(e["path"], p.display().to_string());
        assert_eq!(e["sha256"].as_str(), Some(sha256(p).as_str()));
    }
    // The avionics' identification was decoded through the binding.
    assert_eq!(m["avionics"]["software"][0], capsule_fc::VERSION.0, "{m}");
    assert_eq!(m["avionics"]["build_hash"], 0x0C0F_FEE0, "{m}");
    // Replay judges on the bundle's own copies.
    let f = wait_at_most(
        common::spawn_hil(&["replay", b.to_str().expect("utf8")]),
        Duration::from_secs(120),
    );
    assert_eq!(f.code, Some(0), "{}\n{}", f.stdout, f.stderr);
    assert!(f.stdout.contains("SAME"), "{}", f.stdout);
}

#[test]
fn a_bench_names_its_icd_and_bad_files_are_located() {
    let d = test_dir("icd-bench");
    let bench = d.path().join("bench.toml");
    let (dbc, binding) = (variant("dbc"), variant("binding.toml"));
    std::fs::write(
        &bench,
        std::fs::read_to_string(root().join("fixtures/benches/simulated.toml"))
            .expect("bench")
            .replace(
                "[timing]",
                &format!(
                    "[icd]\ndbc = {:?}\nbinding = {:?}\n\n[timing]",
                    dbc.display().to_string(),
                    binding.display().to_string()
                ),
            ),
    )
    .expect("write");
    let scn = common::short_scenario(d.path(), "short.toml", 3.0);
    let v = run_json(
        d.path(),
        &[
            "run",
            scn.to_str().expect("utf8"),
            "--bench",
            bench.to_str().expect("utf8"),
            "--no-bundle",
        ],
        120,
    );
    assert_eq!(v["icd"]["dbc"], dbc.display().to_string());
    assert_eq!(v["icd"]["binding"], binding.display().to_string());
    assert!(v["scenarios"][0]["result"].is_object(), "{v}");
    // `hil check` checks the bench's ICD too.
    let f = wait_at_most(
        common::spawn_hil(&["check", bench.to_str().expect("utf8")]),
        Duration::from_secs(60),
    );
    assert_eq!(f.code, Some(0), "{}\n{}", f.stdout, f.stderr);
    // A DBC with a syntax error: file, line and column, nothing run.
    let bad = d.path().join("bad.dbc");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&dbc)
            .expect("dbc")
            .replacen("BO_ ", "BO_ x", 1),
    )
    .expect("write");
    let f = wait_at_most(
        common::spawn_hil(&[
            "run",
            scn.to_str().expect("utf8"),
            "--icd",
            bad.to_str().expect("utf8"),
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(f.code, Some(2), "{}", f.stdout);
    assert!(
        f.stderr.contains(&format!("{}:", bad.display())) && f.stderr.contains("syntax"),
        "{}",
        f.stderr
    );
    // The variant DBC with the shipped binding: the binding's first mismatch (its FC
    // node, FC, sends nothing in ICD B, whose FC is OBC), located in the (built-in)
    // binding; nothing run.
    let f = wait_at_most(
        common::spawn_hil(&[
            "run",
            scn.to_str().expect("utf8"),
            "--icd",
            dbc.to_str().expect("utf8"),
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(f.code, Some(2), "{}", f.stdout);
    assert!(
        f.stderr.contains("capsule.binding.toml (built in):")
            && f.stderr.contains("field `fc.node`")
            && f.stderr.contains("no message of the DBC is sent by `FC`"),
        "{}",
        f.stderr
    );
    // `hil icd check` says the same before any run, and passes the matching pair.
    let f = wait_at_most(
        common::spawn_hil(&["icd", "check", "--dbc", dbc.to_str().expect("utf8")]),
        Duration::from_secs(60),
    );
    assert_eq!(f.code, Some(2), "{}", f.stdout);
    assert!(f.stderr.contains("field `fc.node`"), "{}", f.stderr);
    let f = wait_at_most(
        common::spawn_hil(&[
            "icd",
            "check",
            "--dbc",
            dbc.to_str().expect("utf8"),
            "--binding",
            binding.to_str().expect("utf8"),
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(f.code, Some(0), "{}\n{}", f.stdout, f.stderr);
    assert!(f.stdout.contains("FC node OBC"), "{}", f.stdout);
}
