//! The physics core stays pure: no Bevy, no async runtime, no serial/CAN I/O crates in
//! its dependency tree, and no wall clock, file or network access in its source.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

const FORBIDDEN_CRATES: &[&str] = &[
    "bevy",
    "tokio",
    "async-std",
    "smol",
    "mio",
    "tokio-serial",
    "serialport",
    "socketcan",
    "wgpu",
    "winit",
];
const FORBIDDEN_SOURCE: &[&str] = &[
    "std::time::Instant",
    "SystemTime",
    "std::fs",
    "std::net",
    "std::thread::sleep",
    "std::io::stdin",
    "println!",
    "tokio",
    "bevy",
];

#[test]
fn core_dependency_tree_has_no_io_async_or_bevy_crates() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let packages: HashMap<String, String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_string(),
                p["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let nodes = meta["resolve"]["nodes"].as_array().expect("resolve");
    let root = packages
        .iter()
        .find(|(_, n)| n.as_str() == "twin-core")
        .map(|(id, _)| id.clone())
        .expect("twin-core");
    // Walk normal (non-dev, non-build) dependencies only.
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(node) = nodes.iter().find(|n| n["id"] == id.as_str()) else {
            continue;
        };
        for d in node["deps"].as_array().into_iter().flatten() {
            let normal = d["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            if normal {
                stack.push(d["pkg"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    let names: BTreeSet<&str> = seen
        .iter()
        .filter_map(|id| packages.get(id).map(String::as_str))
        .collect();
    for f in FORBIDDEN_CRATES {
        assert!(
            !names.iter().any(|n| n == f
                || n.starts_with(&format!("{f}_"))
                || n.starts_with(&format!("{f}-"))),
            "twin-core depends on {f}: {names:?}"
        );
    }
    assert!(
        names.contains("glam"),
        "sanity: the walk found the real dependencies: {names:?}"
    );
}

#[test]
fn core_source_has_no_wall_clock_or_io() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![dir];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("src dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files += 1;
                let text = std::fs::read_to_string(&p).expect("read");
                for f in FORBIDDEN_SOURCE {
                    assert!(!text.contains(f), "{} uses `{f}`", p.display());
                }
            }
        }
    }
    assert!(files > 10);
}
