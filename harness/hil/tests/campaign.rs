//! `hil campaign`: samples from (seed, index) alone, runs on several cores, shards that
//! merge into the unsharded result byte for byte, any run re-run exactly from its
//! index, and campaign files whose errors are located.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn hil(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(args)
        .current_dir(common::root())
        .output()
        .expect("hil runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// The nominal entry case cut to 60 s, its vehicle by absolute path.
fn short_case(dir: &Path) -> PathBuf {
    let root = common::root();
    let text = std::fs::read_to_string(root.join("fixtures/cases/nominal-entry.toml"))
        .expect("case")
        .replace(
            "file = \"../vehicles/capsule-srcv.toml\"",
            &format!(
                "file = \"{}\"",
                root.join("fixtures/vehicles/capsule-srcv.toml").display()
            ),
        )
        .replace("max_time_s = 3000.0", "max_time_s = 60.0");
    let p = dir.join("case.toml");
    std::fs::write(&p, text).expect("write");
    p
}

const PHYSICS: &str = r#"[campaign]
id = "T-PHYS"
mode = "physics"
case = "case.toml"
runs = 7
seed = 11

[[disperse]]
parameter = "case.entry.flight_path_angle_deg"
normal = { mean = 0.0, sigma = 0.05 }

[[disperse]]
parameter = "case.models.density_scale"
apply = "set"
truncated_normal = { mean = 1.0, sigma = 0.05, min = 0.9, max = 1.1 }

[[disperse]]
parameter = "vehicle.mass.dry_mass_kg"
apply = "scale"
uniform = { min = 0.95, max = 1.05 }

[[disperse]]
parameter = "vehicle.aero.ca"
apply = "scale"
choice = { values = [0.97, 1.0, 1.03] }
"#;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn physics_shards_merge_into_the_unsharded_result_and_any_run_reruns_exactly() {
    let d = common::test_dir("campaign-physics");
    short_case(d.path());
    let file = d.path().join("mc.toml");
    std::fs::write(&file, PHYSICS).expect("write");
    let out = d.path().join("out");
    let (code, o, e) = hil(&["campaign", s(&file), "--jobs", "2", "--out", s(&out)]);
    assert_eq!(code, 0, "{o}\n{e}");
    let all = read(&out.join("T-PHYS/campaign.json"));
    let v: serde_json::Value = serde_json::from_str(&all).expect("json");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 7);
    assert_eq!(v["complete"], true);
    // Each run flew its own sample: the value is the nominal changed as the file says.
    for r in runs {
        let smp = r["sample"].as_array().expect("sample");
        let f = |k: usize, key: &str| smp[k][key].as_f64().expect(key);
        assert!((f(0, "value") - (f(0, "nominal") + f(0, "drawn"))).abs() < 1e-12);
        assert_eq!(f(1, "value"), f(1, "drawn"));
        assert!((0.9..=1.1).contains(&f(1, "value")));
        assert!((f(2, "value") - f(2, "nominal") * f(2, "drawn")).abs() < 1e-9);
        assert!([0.97, 1.0, 1.03].contains(&f(3, "drawn")));
        assert!(r["figures"]["peak_decel_g"].as_f64().expect("figure") > 0.0);
    }
    assert_ne!(runs[0]["sample"], runs[1]["sample"]);
    // Three shards, one job each, merged: the same bytes.
    let mut dirs = Vec::new();
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let (code, o, e) = hil(&[
            "campaign",
            s(&file),
            "--shard",
            &shard,
            "--jobs",
            "1",
            "--out",
            s(&out),
        ]);
        assert_eq!(code, 0, "{o}\n{e}");
        dirs.push(out.join(format!("T-PHYS.shard-{i}-of-3")));
    }
    let merged = d.path().join("merged");
    let mut args = vec!["campaign", "merge"];
    args.extend(dirs.iter().map(|p| s(p)));
    args.extend(["--out", s(&merged)]);
    let (code, o, e) = hil(&args);
    assert_eq!(code, 0, "{o}\n{e}");
    assert_eq!(
        read(&merged.join("campaign.json")),
        all,
        "merged shards = unsharded"
    );
    // One run again, from its index alone.
    let (code, o, e) = hil(&["campaign", s(&file), "--run", "5", "--out", s(&out)]);
    assert_eq!(code, 0, "{o}\n{e}");
    let one: serde_json::Value =
        serde_json::from_str(&read(&out.join("T-PHYS.run-5/campaign.json"))).expect("json");
    assert_eq!(one["runs"][0], runs[5]);
    // Incomplete or overlapping sets do not merge, and say why.
    let (code, _, e) = hil(&[
        "campaign",
        "merge",
        s(&dirs[0]),
        s(&dirs[1]),
        "--out",
        s(&d.path().join("m2")),
    ]);
    assert_eq!(code, 2);
    assert!(e.contains("2 of 7 runs missing (runs 2, 5)"), "{e}");
    let (code, _, e) = hil(&[
        "campaign",
        "merge",
        s(&out.join("T-PHYS")),
        s(&dirs[0]),
        "--out",
        s(&d.path().join("m3")),
    ]);
    assert_eq!(code, 2);
    assert!(e.contains("run 0 is in more than one result"), "{e}");
    // Results are never overwritten.
    let (code, _, e) = hil(&["campaign", s(&file), "--out", s(&out)]);
    assert_eq!(code, 2);
    assert!(e.contains("already holds a campaign result"), "{e}");
    let html = read(&out.join("T-PHYS/report.html"));
    assert!(
        html.contains("<svg") && html.contains("hil campaign"),
        "report"
    );
}

#[test]
fn closed_loop_runs_are_bundled_sampled_files_and_merge_identically() {
    let d = common::test_dir("campaign-closed");
    let root = common::root();
    let scn = read(&root.join("fixtures/campaigns/entry-dispersed.toml"))
        .replace(
            "vehicle = \"../vehicles/capsule-srcv.toml\"",
            &format!(
                "vehicle = \"{}\"",
                root.join("fixtures/vehicles/capsule-srcv.toml").display()
            ),
        )
        .replace("max_time_s = 2000.0", "max_time_s = 20.0");
    std::fs::write(d.path().join("scn.toml"), scn).expect("write");
    let file = d.path().join("mc.toml");
    std::fs::write(
        &file,
        r#"[campaign]
id = "T-CL"
mode = "closed_loop"
scenario = "scn.toml"
runs = 3
seed = 5

[[disperse]]
parameter = "scenario.initial.entry.speed_m_s"
normal = { mean = 0.0, sigma = 3.0 }

[[disperse]]
parameter = "scenario.inject.atmosphere.fault.scale"
apply = "set"
uniform = { min = 0.9, max = 1.1 }

[[disperse]]
parameter = "vehicle.aero.cn"
apply = "scale"
uniform = { min = 0.9, max = 1.1 }
"#,
    )
    .expect("write");
    let out = d.path().join("out");
    let (code, o, e) = hil(&["campaign", s(&file), "--out", s(&out)]);
    // Cut at 20 s the entry's expectations fail: a result, exit 1.
    assert_eq!(code, 1, "{o}\n{e}");
    let dir = out.join("T-CL");
    let all = read(&dir.join("campaign.json"));
    let v: serde_json::Value = serde_json::from_str(&all).expect("json");
    assert_eq!(v["runs"].as_array().expect("runs").len(), 3);
    let reqs = v["summary"]["requirements"].as_array().expect("rates");
    assert!(!reqs.is_empty());
    for q in reqs {
        let (lo, hi, rate) = (
            q["wilson95_low"].as_f64().expect("low"),
            q["wilson95_high"].as_f64().expect("high"),
            q["rate"].as_f64().expect("rate"),
        );
        assert!(lo <= rate && rate <= hi, "{q}");
    }
    // What flew is on disk: the sampled scenario carries the drawn density scale, and
    // each run has its own seed.
    let r1 = &v["runs"][1];
    let scale = r1["sample"][1]["value"].as_f64().expect("scale");
    let sampled = read(&dir.join("samples/run-000001.scenario.toml"));
    assert!(sampled.contains(&format!("scale = {scale}")), "{sampled}");
    let seed0 = read(&dir.join("samples/run-000000.scenario.toml"));
    let seed_line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("seed = "))
            .map(str::to_string)
    };
    assert_ne!(seed_line(&seed0), seed_line(&sampled));
    // Every run has an evidence bundle that verifies.
    let bundles: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&read(&dir.join("bundles.json"))).expect("bundles");
    assert_eq!(bundles.len(), 3);
    for b in bundles.values() {
        let (code, o, e) = hil(&["verify", s(&dir.join(b))]);
        assert_eq!(code, 0, "{o}\n{e}");
    }
    // Two shards merge into the same bytes.
    for i in 1..=2 {
        let (code, o, e) = hil(&[
            "campaign",
            s(&file),
            "--shard",
            &format!("{i}/2"),
            "--no-bundle",
            "--out",
            s(&out),
        ]);
        assert_eq!(code, 1, "{o}\n{e}");
    }
    let merged = d.path().join("merged");
    let (code, o, e) = hil(&[
        "campaign",
        "merge",
        s(&out.join("T-CL.shard-1-of-2")),
        s(&out.join("T-CL.shard-2-of-2")),
        "--out",
        s(&merged),
    ]);
    assert_eq!(code, 0, "{o}\n{e}");
    assert_eq!(read(&merged.join("campaign.json")), all);
}

#[test]
fn bad_campaign_files_are_rejected_with_file_line_and_field() {
    let d = common::test_dir("campaign-bad");
    short_case(d.path());
    for (body, field, says) in [
        (
            PHYSICS.replace("case.models.density_scale", "case.models.density_scal"),
            "disperse[1].parameter",
            "no `models.density_scal`",
        ),
        (
            PHYSICS.replace("case.entry.flight_path_angle_deg", "scenario.initial.seed"),
            "disperse[0].parameter",
            "expected a path starting with case. or vehicle.",
        ),
        (
            PHYSICS.replace(
                "sigma = 0.05 }\n\n[[disperse]]\nparameter = \"case.models",
                "sigma = -1.0 }\n\n[[disperse]]\nparameter = \"case.models",
            ),
            "disperse[0].normal.sigma",
            "",
        ),
        (
            PHYSICS.replace("runs = 7", "runs = 0"),
            "campaign.runs",
            "expected 1 to 1000000",
        ),
        (
            PHYSICS.replace("choice = { values = [0.97, 1.0, 1.03] }", ""),
            "disperse[3]",
            "give exactly one distribution",
        ),
        (
            PHYSICS.replace("min = 0.9, max = 1.1", "min = 3.0, max = 4.0"),
            "disperse[1].truncated_normal",
            "more than 3.7 sigma",
        ),
        (
            PHYSICS.replace("mode = \"physics\"", "mode = \"closed_loop\""),
            "campaign.scenario",
            "needs `scenario",
        ),
    ] {
        let f = d.path().join("bad.toml");
        std::fs::write(&f, &body).expect("write");
        let (code, o, e) = hil(&["campaign", s(&f), "--out", s(&d.path().join("o"))]);
        assert_eq!(code, 2, "{o}");
        assert!(
            e.contains(&format!("{}:", f.display())) && e.contains(field) && e.contains(says),
            "expected `{field}` / `{says}`:\n{e}"
        );
        // file:line:col
        let loc = e.split(&format!("{}:", f.display())).nth(1).unwrap_or("");
        let mut parts = loc.split(':');
        assert!(
            parts.next().is_some_and(|l| l.parse::<u32>().is_ok())
                && parts
                    .next()
                    .is_some_and(|c| c.trim().parse::<u32>().is_ok()),
            "no line:column in {e}"
        );
    }
}

/// The shipped campaign files are valid and their run 0 flies (physics: the whole
/// entry; closed loop: the whole mission with the reference flight computer).
#[test]
fn the_shipped_campaigns_run() {
    let d = common::test_dir("campaign-shipped");
    for (file, id) in [
        ("fixtures/campaigns/entry-physics.toml", "MC-PHYS-1000"),
        ("fixtures/campaigns/entry-closed-loop.toml", "MC-CL-100"),
    ] {
        let (code, o, e) = hil(&[
            "campaign",
            file,
            "--run",
            "0",
            "--no-bundle",
            "--out",
            s(d.path()),
        ]);
        assert!(code == 0 || code == 1, "{file}: {o}\n{e}");
        let v: serde_json::Value =
            serde_json::from_str(&read(&d.path().join(format!("{id}.run-0/campaign.json"))))
                .expect("json");
        let r = &v["runs"][0];
        assert_ne!(r["verdict"], "ERROR", "{r}");
        assert!(
            r["figures"]["landing_speed_m_s"]
                .as_f64()
                .is_some_and(|x| x > 0.0 && x < 20.0),
            "{file}: {r}"
        );
    }
}
