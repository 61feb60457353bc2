//! The DBC is loaded at run time: `hil run --icd FILE` (or a bench's `[icd] dbc`)
//! flies the nominal scenario on a deliberately different wire layout
//! (`fixtures/icd/variant/capsule-motorola.dbc`: every identifier moved, every signal
//! in Motorola byte order) and judges it exactly as on the shipped DBC; the results
//! and the bundle name the DBC and its hash, and the bundle replays on its own copy.
mod common;
use common::{root, test_dir, wait_at_most};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn run(dir: &Path, extra: &[&str]) -> (serde_json::Value, PathBuf) {
    let out = dir.join("runs");
    let json = dir.join("r.json");
    let mut args = vec![
        "run",
        "scenarios/nominal-entry.toml",
        "--out",
        out.to_str().expect("utf8"),
        "--json",
        json.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    let f = wait_at_most(common::spawn_hil(&args), Duration::from_secs(900));
    assert_eq!(f.code, Some(0), "{}\n{}", f.stdout, f.stderr);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    (v, common::only_dir(&out))
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

#[test]
fn another_wire_layout_gives_the_same_verdicts() {
    let variant = root().join("fixtures/icd/variant/capsule-motorola.dbc");
    let d1 = test_dir("icd-shipped");
    let d2 = test_dir("icd-variant");
    let (a, ba) = run(d1.path(), &[]);
    let (b, bb) = run(d2.path(), &["--icd", variant.to_str().expect("utf8")]);
    // Results name the DBC and its hash.
    assert_eq!(
        a["icd"]["dbc"], "fixtures/icd/capsule.dbc (built in)",
        "{}",
        a["icd"]
    );
    assert_eq!(
        a["icd"]["sha256"].as_str(),
        Some(sha256(&root().join("fixtures/icd/capsule.dbc")).as_str())
    );
    assert_eq!(b["icd"]["dbc"], variant.display().to_string());
    assert_eq!(b["icd"]["sha256"].as_str(), Some(sha256(&variant).as_str()));
    // Same verdicts and measured values, byte for byte.
    let verdicts = |p: &Path| std::fs::read(p.join("verdicts.json")).expect("verdicts");
    assert_eq!(
        verdicts(&ba),
        verdicts(&bb),
        "the variant ICD changed the verdicts"
    );
    assert_eq!(a["scenarios"][0]["result"]["verdict"], "Pass");
    // Other bytes on the wire: the shipped identifiers are gone from the variant's log.
    let (ia, ib) = (can_ids(&ba), can_ids(&bb));
    assert!(ia.contains(&0x300) && ia.contains(&0x7F0), "{ia:x?}");
    assert!(
        ib.contains(&0x308) && ib.contains(&0x7E0) && !ib.contains(&0x300),
        "{ib:x?}"
    );
    // The bundle's manifest lists the DBC it ran on, and replay uses its copy.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bb.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let dbc = m["inputs"]
        .as_array()
        .and_then(|i| i.iter().find(|e| e["role"] == "dbc"))
        .cloned()
        .expect("dbc input");
    assert_eq!(dbc["path"], variant.display().to_string());
    assert_eq!(dbc["sha256"].as_str(), Some(sha256(&variant).as_str()));
    let f = wait_at_most(
        common::spawn_hil(&["replay", bb.to_str().expect("utf8")]),
        Duration::from_secs(120),
    );
    assert_eq!(f.code, Some(0), "{}\n{}", f.stdout, f.stderr);
    assert!(f.stdout.contains("SAME"), "{}", f.stdout);
}

#[test]
fn a_bench_names_its_dbc_and_a_bad_one_is_located() {
    let d = test_dir("icd-bench");
    let bench = d.path().join("bench.toml");
    let variant = root().join("fixtures/icd/variant/capsule-motorola.dbc");
    std::fs::write(
        &bench,
        std::fs::read_to_string(root().join("fixtures/benches/simulated.toml"))
            .expect("bench")
            .replace(
                "[timing]",
                &format!(
                    "[icd]\ndbc = {:?}\n\n[timing]",
                    variant.display().to_string()
                ),
            ),
    )
    .expect("write");
    let scn = common::short_scenario(d.path(), "short.toml", 3.0);
    let json = d.path().join("r.json");
    let f = wait_at_most(
        common::spawn_hil(&[
            "run",
            scn.to_str().expect("utf8"),
            "--bench",
            bench.to_str().expect("utf8"),
            "--json",
            json.to_str().expect("utf8"),
        ]),
        Duration::from_secs(120),
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    assert_eq!(
        v["icd"]["dbc"],
        variant.display().to_string(),
        "{}",
        f.stderr
    );
    assert!(v["scenarios"][0]["result"].is_object(), "{}", f.stdout);
    // A DBC with a syntax error: file, line and column, nothing run.
    let bad = d.path().join("bad.dbc");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&variant)
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
}
