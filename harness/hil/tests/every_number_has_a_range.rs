//! Every number in every shipped file has a validated range: each numeric value of
//! the library's scenarios, the benches, the vehicles and the check cases, replaced in
//! turn by NaN, infinity, 1e300 and -1e300, is rejected by validation. Each file is
//! mutated twice: as written, and as its parsed form written back out, which spells
//! out every field a default filled in (the sensor models a vehicle inherits, the run
//! limits a scenario leaves out), so that fields no shipped file writes are covered
//! too.
mod common;
use std::path::{Path, PathBuf};

/// Dotted paths (`a.b[2].c`) of every numeric leaf.
fn numeric_leaves(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                numeric_leaves(x, &p, out);
            }
        }
        toml::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                numeric_leaves(x, &format!("{prefix}[{i}]"), out);
            }
        }
        toml::Value::Float(_) => out.push(prefix.to_string()),
        toml::Value::Integer(_) => out.push(prefix.to_string()),
        _ => {}
    }
}

/// `doc` with the leaf at `path` replaced by `x`.
fn replaced(doc: &toml::Value, path: &str, x: f64) -> toml::Value {
    let mut d = doc.clone();
    let mut cur = &mut d;
    for seg in path.split('.') {
        let (key, idx) = match seg.find('[') {
            Some(i) => (&seg[..i], Some(&seg[i..])),
            None => (seg, None),
        };
        cur = cur.get_mut(key).expect("key");
        if let Some(idx) = idx {
            for n in idx.split('[').filter(|s| !s.is_empty()) {
                let n: usize = n.trim_end_matches(']').parse().expect("index");
                cur = cur.get_mut(n).expect("index");
            }
        }
    }
    *cur = toml::Value::Float(x);
    d
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

/// Fields whose whole range of numbers is valid (an RNG seed).
fn exempt(path: &str) -> bool {
    path.ends_with("seed")
}

#[test]
fn every_numeric_field_rejects_nan_infinity_and_absurd_values() {
    let root = common::root();
    let db = hil::assemble::icd().expect("icd");
    let d = common::test_dir("ranges");
    let mut escaped: Vec<String> = Vec::new();
    let mut tried = 0;
    let kinds: [(&str, PathBuf); 4] = [
        ("scenario", root.join("scenarios")),
        ("bench", root.join("fixtures/benches")),
        ("vehicle", root.join("fixtures/vehicles")),
        ("case", root.join("fixtures/cases")),
    ];
    for (kind, dir) in &kinds {
        for file in toml_files(dir) {
            let text = std::fs::read_to_string(&file).expect("read");
            let name = format!("{}", file.display());
            let src = twin_core::config::Source::new(&name, &text);
            // The file as written, and with every default spelled out.
            let full: Option<String> = match *kind {
                "scenario" => capsule_scenario::spec::Scenario::from_toml(&src)
                    .ok()
                    .and_then(|s| toml::to_string(&s).ok()),
                "bench" => capsule_scenario::bench::Bench::from_toml(&src)
                    .ok()
                    .and_then(|s| toml::to_string(&s).ok()),
                "vehicle" => twin_core::vehicle::VehicleSpec::from_toml(&src)
                    .ok()
                    .and_then(|s| toml::to_string(&s).ok()),
                _ => twin_core::case::CaseSpec::from_toml(&src)
                    .ok()
                    .and_then(|s| toml::to_string(&s).ok()),
            };
            let mut docs: Vec<toml::Value> = vec![toml::from_str(&text).expect("parses")];
            if let Some(f) = full {
                docs.push(toml::from_str(&f).expect("written back out, it parses"));
            }
            for doc in &docs {
                let mut leaves = Vec::new();
                numeric_leaves(doc, "", &mut leaves);
                for leaf in leaves.iter().filter(|l| !exempt(l)) {
                    for x in [f64::NAN, f64::INFINITY, 1e300, -1e300] {
                        tried += 1;
                        let mutated = toml::to_string(&replaced(doc, leaf, x)).expect("serialise");
                        let rejected = match *kind {
                            "scenario" => {
                                // Beside the original so that the vehicle path resolves.
                                let p = d.path().join(file.file_name().expect("name"));
                                let abs = root
                                    .join("scenarios")
                                    .join(doc["initial"]["vehicle"].as_str().expect("vehicle"));
                                let m = replaced(doc, leaf, x);
                                let mut m = m;
                                m["initial"]["vehicle"] =
                                    toml::Value::String(abs.display().to_string());
                                std::fs::write(&p, toml::to_string(&m).expect("ser"))
                                    .expect("write");
                                hil::assemble::check(&p, &db, 1000.0).is_err()
                            }
                            "bench" => capsule_scenario::bench::Bench::from_toml(
                                &twin_core::config::Source::new(&name, &mutated),
                            )
                            .is_err(),
                            "vehicle" => twin_core::vehicle::VehicleSpec::from_toml(
                                &twin_core::config::Source::new(&name, &mutated),
                            )
                            .is_err(),
                            _ => twin_core::case::CaseSpec::from_toml(
                                &twin_core::config::Source::new(&name, &mutated),
                            )
                            .is_err(),
                        };
                        if !rejected {
                            escaped.push(format!("{}: {leaf} = {x}", file.display()));
                        }
                    }
                }
            }
        }
    }
    assert!(tried > 10_000, "only {tried} mutations");
    assert!(
        escaped.is_empty(),
        "{} of {tried} accepted:\n{}",
        escaped.len(),
        escaped.join("\n")
    );
}
