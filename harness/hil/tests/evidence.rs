//! Evidence bundles end to end: what `hil run` writes, read back with standard tools
//! and independent readers (sha256sum, python-can's candump reader, the mcap crate's
//! reader, OpenSSH's ssh-keygen), tampered with, replayed, re-injected, repeated for
//! determinism, and cut short by `kill -9`.
//!
//! The independent peers are required when `HIL_REQUIRE_PEERS=1` (CI sets it); else a
//! missing one is skipped with a visible note.

mod common;

use common::{root, short_scenario, test_dir};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run hil")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn peer(name: &str, available: bool) -> bool {
    if !available {
        assert!(
            std::env::var("HIL_REQUIRE_PEERS").as_deref() != Ok("1"),
            "{name} is required (HIL_REQUIRE_PEERS=1) but not available"
        );
        eprintln!("SKIP: {name} is not available on this machine");
    }
    available
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")
}

/// The single bundle under `out`.
fn bundle_in(out: &Path) -> PathBuf {
    let v: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(v.len(), 1, "one bundle in {}", out.display());
    v[0].clone()
}

fn gunzip(p: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    // A file cut short (kill -9) ends in an error after the flushed data.
    let _ = flate2::read::GzDecoder::new(std::fs::File::open(p).expect("open")).read_to_end(&mut v);
    v
}

/// Serial log records: (dir, bytes) per record, checked against the documented format.
fn serial_records(p: &Path) -> Vec<(u8, usize)> {
    let b = gunzip(p);
    assert_eq!(&b[..8], capsule_evidence::stream::SERIAL_MAGIC);
    let mut k = 8;
    let mut out = Vec::new();
    while k + 13 <= b.len() {
        let dir = b[k + 8];
        let n = u32::from_le_bytes(b[k + 9..k + 13].try_into().expect("4")) as usize;
        assert!(dir <= 1, "direction byte");
        k += 13 + n;
        out.push((dir, n));
    }
    assert_eq!(
        k,
        b.len(),
        "records end exactly at the end of {}",
        p.display()
    );
    out
}

/// (messages per topic, schema name per topic) of an MCAP file, read with the mcap
/// crate's reader; a file cut short is read up to its last complete chunk.
fn mcap_topics(
    p: &Path,
    whole: bool,
) -> (
    std::collections::BTreeMap<String, usize>,
    std::collections::BTreeMap<String, String>,
) {
    let buf = std::fs::read(p).expect("mcap");
    let opts = if whole {
        enumset::EnumSet::empty()
    } else {
        enumset::EnumSet::only(mcap::read::Options::IgnoreEndMagic)
    };
    let mut counts = std::collections::BTreeMap::new();
    let mut schemas = std::collections::BTreeMap::new();
    for m in mcap::MessageStream::new_with_options(&buf, opts).expect("mcap header") {
        let m = match m {
            Ok(m) => m,
            Err(e) if !whole => {
                eprintln!("mcap cut short: {e}");
                break;
            }
            Err(e) => panic!("mcap: {e}"),
        };
        *counts.entry(m.channel.topic.clone()).or_insert(0) += 1;
        if let Some(s) = &m.channel.schema {
            schemas.insert(m.channel.topic.clone(), s.name.clone());
            // Every field of every message is declared in its channel's JSON Schema
            // (the schemas are written beside the message types: this keeps them
            // from drifting apart).
            let schema: Value = serde_json::from_slice(&s.data).expect("schema json");
            let props = schema["properties"].as_object().expect("properties");
            let msg: Value = serde_json::from_slice(&m.data).expect("message json");
            for k in msg.as_object().expect("object").keys() {
                assert!(
                    props.contains_key(k),
                    "{}: `{k}` not in schema {}",
                    m.channel.topic,
                    s.name
                );
            }
        }
        if m.channel.topic == "/truth/state" {
            let v: Value = serde_json::from_slice(&m.data).expect("state json");
            assert!(v["altitude_m"].is_number(), "{v}");
        }
    }
    (counts, schemas)
}

/// The report's words: no plots, no manifest, no tags; times, host and commit
/// redacted.
fn report_text(html: &str) -> String {
    let cut = |s: &str, re: &str, with: &str| {
        regex_lite::Regex::new(re)
            .expect("regex")
            .replace_all(s, with)
            .into_owned()
    };
    let s = cut(html, r"(?s)<svg.*?</svg>", "[plot]");
    let s = cut(&s, r"(?s)<pre>.*?</pre>", "[manifest]");
    let s = cut(&s, r"(?s)<style>.*?</style>", "");
    let s = cut(&s, r"<[^>]+>", " ");
    let s = cut(
        &s,
        r"(?s)Run \S+ to \S+ on .*? kernel [^)]*\)\.",
        "Run [times] on [host].",
    );
    let s = cut(&s, r"Harness \S+ \([^)]*\)", "Harness [version] ([commit])");
    let s = cut(&s, r"[ \t]+", " ");
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A way of tampering with a bundle copy.
type Tamper = Box<dyn Fn(&Path)>;

fn link(m: &Value, name: &str) -> Value {
    m["links"]["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l[0] == name)
        .map(|l| l[1].clone())
        .expect("link")
}

#[test]
fn a_run_bundle_reads_back_with_standard_tools_verifies_replays_and_repeats() {
    let d = test_dir("bundle");
    let scn = short_scenario(d.path(), "short.toml", 120.0);
    let (out1, out2) = (d.path().join("a"), d.path().join("b"));
    let key = d.path().join("key");
    assert!(
        hil(&["keygen", key.to_str().expect("utf8")])
            .status
            .success()
    );
    let (junit, results) = (d.path().join("junit.xml"), d.path().join("results.json"));
    let r1 = hil(&[
        "run",
        scn.to_str().expect("utf8"),
        "--out",
        out1.to_str().expect("utf8"),
        "--seed",
        "7",
        "--junit",
        junit.to_str().expect("utf8"),
        "--json",
        results.to_str().expect("utf8"),
    ]);
    assert!(r1.status.code().is_some_and(|c| c <= 1), "{}", text(&r1));
    let b = bundle_in(&out1);
    // The JUnit file validates against the Jenkins xUnit plugin's JUnit schema.
    let has_xmllint = Command::new("xmllint").arg("--version").output().is_ok();
    if peer("xmllint", has_xmllint) {
        let o = Command::new("xmllint")
            .args(["--noout", "--schema"])
            .arg(root().join("fixtures/junit/junit-10.xsd"))
            .arg(&junit)
            .output()
            .expect("xmllint");
        assert!(o.status.success(), "{}", text(&o));
        let xml = std::fs::read_to_string(&junit).expect("junit");
        assert!(
            xml.contains("group=\"REQ-") && xml.contains(" time=\""),
            "{xml}"
        );
    }

    // Manifest: complete, inputs hashed, identification from the bus, counters.
    let m = json(&b.join("manifest.json"));
    assert_eq!(m["format_version"], 1);
    assert_eq!(m["status"], "complete", "{m}");
    assert_eq!(m["seed"], 7);
    let scn_hash = capsule_evidence::integrity::sha256_file(&scn)
        .expect("hash")
        .0;
    let inputs = m["inputs"].as_array().expect("inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["role"] == "scenario" && i["sha256"] == scn_hash.as_str())
    );
    for role in ["vehicle", "bench", "dbc"] {
        assert!(
            inputs.iter().any(|i| i["role"] == role),
            "{role} in {inputs:?}"
        );
    }
    assert_eq!(m["avionics"]["software"][0], capsule_fc::VERSION.0, "{m}");
    assert!(
        !m["harness"]["git_commit"]
            .as_str()
            .expect("commit")
            .is_empty()
    );
    assert!(b.join("report.html").is_file() && b.join("verdicts.json").is_file());

    // The manifest and the --json results validate against their published schemas.
    let has_jsonschema = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if peer("python jsonschema", has_jsonschema) {
        for (doc, schema) in [
            (
                b.join("manifest.json"),
                root().join("harness/evidence/manifest.schema.json"),
            ),
            (
                results.clone(),
                root().join("harness/hil/results.schema.json"),
            ),
        ] {
            let o = Command::new("python3")
                .args(["-c", "import json,sys,jsonschema\njsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))"])
                .arg(&doc)
                .arg(&schema)
                .output()
                .expect("python");
            assert!(o.status.success(), "{}: {}", doc.display(), text(&o));
        }
    }

    // sha256sum -c: no tool of ours.
    let s = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&b)
        .output()
        .expect("sha256sum");
    assert!(s.status.success(), "{}", text(&s));
    let v = hil(&["verify", b.to_str().expect("utf8")]);
    assert!(
        v.status.success() && text(&v).contains("OK"),
        "{}",
        text(&v)
    );

    // The CAN log, read by python-can's candump reader: every frame, per direction.
    let can = link(&m, "can");
    let py = "import can,sys,json\nn={'tx':0,'rx':0,'err':0}\nfor msg in can.LogReader(sys.argv[1]):\n    n['rx' if msg.is_rx else 'tx']+=1\n    n['err']+=msg.is_error_frame\nprint(json.dumps(n))";
    let has_can = Command::new("python3")
        .args(["-c", "import can"])
        .output()
        .is_ok_and(|o| o.status.success());
    if peer("python-can", has_can) {
        let o = Command::new("python3")
            .args(["-c", py, b.join("can.log.gz").to_str().expect("utf8")])
            .output()
            .expect("python");
        assert!(o.status.success(), "{}", text(&o));
        let n: Value = serde_json::from_slice(&o.stdout).expect("counts");
        assert_eq!(
            n["tx"], can["tx_packets"],
            "frames sent: log {n} vs link {can}"
        );
        assert_eq!(
            n["rx"], can["rx_packets"],
            "frames received: log {n} vs link {can}"
        );
        assert!(n["tx"].as_u64().expect("n") > 10_000);
    }
    let stream = &m["stream"]["counts"];
    assert_eq!(stream["can_tx"], can["tx_packets"]);
    assert_eq!(stream["can_rx"], can["rx_packets"]);
    assert_eq!(m["stream"]["dropped"], 0);

    // Serial logs: every byte sent on each line; the NMEA file is the GNSS stream.
    for (name, file) in [("imu", "imu.serial.gz"), ("gnss", "gnss.serial.gz")] {
        let rec = serial_records(&b.join(file));
        let sent: usize = rec.iter().filter(|r| r.0 == 0).map(|r| r.1).sum();
        assert_eq!(
            sent as u64,
            link(&m, name)["tx_bytes"].as_u64().expect("bytes"),
            "{name}"
        );
    }
    let nmea = std::fs::read_to_string(b.join("gnss.nmea")).expect("nmea");
    assert_eq!(
        nmea.len() as u64,
        link(&m, "gnss")["tx_bytes"].as_u64().expect("bytes")
    );
    let parsed = nmea
        .lines()
        .filter(|l| capsule_icd::nmea::parse(l.trim_end()).is_ok())
        .count();
    assert!(
        parsed > 100 && parsed == nmea.lines().count(),
        "{parsed} of {}",
        nmea.lines().count()
    );

    // Telemetry, read with the mcap crate's reader: 50 Hz truth, Foxglove schemas.
    let (counts, schemas) = mcap_topics(&b.join("telemetry.mcap"), true);
    let t_end = json(&b.join("verdicts.json"))["t_end_s"]
        .as_f64()
        .expect("t_end");
    assert!(
        counts["/truth/state"] as f64 >= 50.0 * t_end - 1.0,
        "{counts:?}"
    );
    assert_eq!(schemas["/truth/location"], "foxglove.LocationFix");
    assert_eq!(schemas["/truth/pose"], "foxglove.FrameTransform");
    assert_eq!(schemas["/events"], "foxglove.Log");
    assert!(
        counts.get("/can/FC_Status").is_some_and(|n| *n > 100),
        "{counts:?}"
    );
    assert!(
        counts
            .get("/serial/imu")
            .is_some_and(|n| *n as f64 >= 49.0 * t_end),
        "{counts:?}"
    );

    // The report's text and the verdicts' data, as snapshots (volatile parts redacted:
    // times, host, commit, plots, the manifest).
    insta::assert_json_snapshot!("verdicts", json(&b.join("verdicts.json")));
    insta::assert_snapshot!(
        "report_text",
        report_text(&std::fs::read_to_string(b.join("report.html")).expect("report"))
    );

    // Exports: Vector ASC read back by python-can's ASC reader (every frame), and the
    // truth telemetry as CSV (one row per message).
    let asc = d.path().join("can.asc");
    let e = hil(&[
        "export",
        "asc",
        b.to_str().expect("utf8"),
        "-o",
        asc.to_str().expect("utf8"),
    ]);
    assert!(e.status.success(), "{}", text(&e));
    if peer("python-can", has_can) {
        let o = Command::new("python3")
            .args(["-c", py, asc.to_str().expect("utf8")])
            .output()
            .expect("python");
        assert!(o.status.success(), "{}", text(&o));
        let n: Value = serde_json::from_slice(&o.stdout).expect("counts");
        assert_eq!(n["tx"], can["tx_packets"], "ASC frames sent: {n}");
        assert_eq!(n["rx"], can["rx_packets"], "ASC frames received: {n}");
    }
    let csv = d.path().join("truth.csv");
    let e = hil(&[
        "export",
        "csv",
        b.to_str().expect("utf8"),
        "-o",
        csv.to_str().expect("utf8"),
    ]);
    assert!(e.status.success(), "{}", text(&e));
    let csv = std::fs::read_to_string(&csv).expect("csv");
    let header = csv.lines().next().expect("header");
    assert!(
        header.starts_with("log_time_s,") && header.contains("altitude_m"),
        "{header}"
    );
    assert_eq!(csv.lines().count() - 1, counts["/truth/state"]);

    // Foxglove's own Python reader agrees, topic by topic.
    let has_mcap = Command::new("python3")
        .args(["-c", "import mcap.reader"])
        .output()
        .is_ok_and(|o| o.status.success());
    if peer("python mcap", has_mcap) {
        let py = "import sys,json,collections\nfrom mcap.reader import make_reader\nn=collections.Counter()\nfor s,c,m in make_reader(open(sys.argv[1],'rb')).iter_messages():\n    n[c.topic]+=1\nprint(json.dumps(n))";
        let o = Command::new("python3")
            .args(["-c", py])
            .arg(b.join("telemetry.mcap"))
            .output()
            .expect("python");
        assert!(o.status.success(), "{}", text(&o));
        let n: std::collections::BTreeMap<String, usize> =
            serde_json::from_slice(&o.stdout).expect("counts");
        assert_eq!(n, counts, "python mcap vs the mcap crate");
    }

    // Replay reproduces the verdicts; re-injection reproduces the trajectory.
    let rp = hil(&["replay", "--reinject", b.to_str().expect("utf8")]);
    assert!(rp.status.success(), "{}", text(&rp));
    assert!(text(&rp).contains("trajectory identical"), "{}", text(&rp));

    // The same run again, signed: the data files are byte for byte the same.
    let r2 = hil(&[
        "run",
        scn.to_str().expect("utf8"),
        "--out",
        out2.to_str().expect("utf8"),
        "--seed",
        "7",
        "--sign-key",
        key.to_str().expect("utf8"),
    ]);
    assert_eq!(r1.status.code(), r2.status.code(), "{}", text(&r2));
    let b2 = bundle_in(&out2);
    for f in [
        "can.log.gz",
        "imu.serial.gz",
        "gnss.serial.gz",
        "gnss.nmea",
        "telemetry.mcap",
        "record.json.gz",
        "verdicts.json",
    ] {
        assert!(
            std::fs::read(b.join(f)).expect("a") == std::fs::read(b2.join(f)).expect("b"),
            "{f} differs between two runs with the same seed"
        );
    }
    let pubkey = format!("{}.pub", key.display());
    let good = hil(&["verify", "--pubkey", &pubkey, b2.to_str().expect("utf8")]);
    assert!(
        good.status.success() && text(&good).contains("signature good"),
        "{}",
        text(&good)
    );
    let other = d.path().join("other");
    assert!(
        hil(&["keygen", other.to_str().expect("utf8")])
            .status
            .success()
    );
    let wrong = hil(&[
        "verify",
        "--pubkey",
        &format!("{}.pub", other.display()),
        b2.to_str().expect("utf8"),
    ]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(text(&wrong).contains("signature"), "{}", text(&wrong));
    let has_ssh = Command::new("ssh-keygen").arg("-?").output().is_ok();
    if peer("ssh-keygen", has_ssh) {
        let allowed = d.path().join("allowed_signers");
        std::fs::write(
            &allowed,
            format!("hil {}", std::fs::read_to_string(&pubkey).expect("pub")),
        )
        .expect("allowed");
        let o = Command::new("ssh-keygen")
            .args([
                "-Y",
                "verify",
                "-f",
                allowed.to_str().expect("utf8"),
                "-I",
                "hil",
                "-n",
                capsule_evidence::integrity::NAMESPACE,
                "-s",
            ])
            .arg(b2.join("manifest.json.sig"))
            .stdin(std::fs::File::open(b2.join("manifest.json")).expect("manifest"))
            .output()
            .expect("ssh-keygen");
        assert!(o.status.success(), "{}", text(&o));
    }

    // Tampering of each kind is caught and named.
    let copy = |tag: &str| {
        let c = d.path().join(tag);
        std::fs::create_dir(&c).expect("copy dir");
        for e in std::fs::read_dir(&b2).expect("bundle") {
            let p = e.expect("entry").path();
            std::fs::copy(&p, c.join(p.file_name().expect("name"))).expect("copy");
        }
        c
    };
    let flip = |p: &Path, at: usize| {
        let mut v = std::fs::read(p).expect("read");
        let k = at.min(v.len() - 1);
        v[k] ^= 0x01;
        std::fs::write(p, v).expect("write");
    };
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "t-can",
            Box::new(move |c: &Path| flip(&c.join("can.log.gz"), 5000)),
            "changed: can.log.gz",
        ),
        (
            "t-verdict",
            Box::new(move |c: &Path| flip(&c.join("verdicts.json"), 40)),
            "changed: verdicts.json",
        ),
        (
            "t-manifest",
            Box::new(move |c: &Path| flip(&c.join("manifest.json"), 30)),
            "changed: manifest.json",
        ),
        (
            "t-deleted",
            Box::new(|c: &Path| std::fs::remove_file(c.join("gnss.nmea")).expect("rm")),
            "missing: gnss.nmea",
        ),
        (
            "t-added",
            Box::new(|c: &Path| std::fs::write(c.join("extra.txt"), "x").expect("add")),
            "added: extra.txt",
        ),
    ];
    for (tag, tamper, needle) in cases {
        let c = copy(tag);
        tamper(&c);
        let o = hil(&["verify", "--pubkey", &pubkey, c.to_str().expect("utf8")]);
        assert_eq!(o.status.code(), Some(1), "{tag}: {}", text(&o));
        assert!(text(&o).contains(needle), "{tag}: {}", text(&o));
        if tag == "t-manifest" {
            assert!(
                text(&o).contains("signature"),
                "a changed manifest breaks the signature: {}",
                text(&o)
            );
        }
    }
    // A traceability report over both runs links each run's report.
    let rep = hil(&[
        "report",
        d.path().join("a").to_str().expect("utf8"),
        d.path().join("b").to_str().expect("utf8"),
        "--out",
        d.path().to_str().expect("utf8"),
    ]);
    assert!(rep.status.success(), "{}", text(&rep));
    let t = json(&d.path().join("traceability.json"));
    assert_eq!(t["runs"].as_array().expect("runs").len(), 2);
    let html = std::fs::read_to_string(d.path().join("traceability.html")).expect("html");
    assert!(html.contains("report.html") && html.contains("SCN-001"));
}

#[test]
fn kill_9_leaves_a_readable_bundle_marked_incomplete() {
    let d = test_dir("kill9");
    let out = d.path().join("runs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args([
            "run",
            "scenarios/nominal-entry.toml",
            "--out",
            out.to_str().expect("utf8"),
        ])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Wait until data has been flushed (simulated time past a few flush points).
    let t0 = std::time::Instant::now();
    let bundle = loop {
        assert!(t0.elapsed().as_secs() < 60, "no bundle data after 60 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
        let Ok(mut e) = std::fs::read_dir(&out) else {
            continue;
        };
        let Some(Ok(b)) = e.next() else { continue };
        let can = b.path().join("can.log.gz");
        if std::fs::metadata(&can).is_ok_and(|m| m.len() > 200_000) {
            break b.path();
        }
    };
    let fcs = common::children_of(child.id());
    assert!(!fcs.is_empty(), "the flight computer runs");
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    // The flight computer sees its links close and exits: nothing is left behind.
    let t1 = std::time::Instant::now();
    while fcs.iter().any(|p| common::alive(*p)) {
        assert!(
            t1.elapsed().as_secs() < 15,
            "flight computer {fcs:?} outlived hil"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let m = json(&bundle.join("manifest.json"));
    assert_eq!(m["status"], "running", "a bundle cut short says so: {m}");
    assert!(
        m["incomplete_reasons"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    let v = hil(&["verify", bundle.to_str().expect("utf8")]);
    assert_eq!(v.status.code(), Some(2), "{}", text(&v));
    // What was flushed reads back: complete candump lines, MCAP messages.
    let log = String::from_utf8_lossy(&gunzip(&bundle.join("can.log.gz"))).into_owned();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.ends_with(" T") || l.ends_with(" R"))
        .collect();
    assert!(lines.len() > 1000, "{} lines", lines.len());
    let (counts, _) = mcap_topics(&bundle.join("telemetry.mcap"), false);
    assert!(
        counts.get("/truth/state").is_some_and(|n| *n > 100),
        "{counts:?}"
    );
}

#[test]
fn a_failing_runs_report_shows_the_plots_the_timeline_and_the_failed_bound() {
    let d = test_dir("report");
    let out = d.path().join("runs");
    let r = hil(&[
        "run",
        "scenarios/nominal-entry.toml",
        "--defect",
        "late-drogue",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", text(&r));
    let b = bundle_in(&out);
    let html = std::fs::read_to_string(b.join("report.html")).expect("report");
    // Self-contained: no script, no external resource.
    for bad in ["<script", "src=", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(bad), "report refers outside itself: {bad}");
    }
    assert!(html.matches("<svg").count() >= 9, "plots and the timeline");
    assert!(html.contains("Timed expectations: window and measured time"));
    // The failed expectation with its measured value and its bound, and the verdict.
    let row = html
        .lines()
        .find(|l| l.contains("<tr class=\"fail\"><td>drogue-subsonic</td>"))
        .expect("the failed expectation's row");
    assert!(
        row.contains("REQ-SEQ-010")
            && row.contains(">fail</td>")
            && row.contains("<td>13000.0000</td>"),
        "{row}"
    );
    assert!(html.contains("<span class=\"FAIL\">FAIL</span>"));
    // The failed value is drawn red on its plot (plotters writes the fill colour).
    assert!(html.contains("#D21E1E"), "a red dot for the failed value");
    let v = json(&b.join("verdicts.json"));
    let e = v["expectations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["id"] == "drogue-subsonic")
        .expect("drogue-subsonic")
        .clone();
    assert_eq!(e["verdict"], "fail");
    // The number is the check that failed: outside its bounds.
    let m = &e["measurement"];
    let value = m["value"].as_f64().expect("value");
    let below = m["min"].as_f64().is_some_and(|lo| value < lo);
    let above = m["max"].as_f64().is_some_and(|hi| value > hi);
    assert!(below || above, "{e}");
    assert!(
        m["quantity"] == "truth.mach" || m["quantity"] == "truth.altitude_m",
        "{e}"
    );
}

#[test]
fn a_real_time_run_leaves_its_timing_in_the_bundle() {
    let d = test_dir("rt");
    let scn = short_scenario(d.path(), "rt.toml", 3.0);
    let out = d.path().join("runs");
    let r = hil(&[
        "run",
        scn.to_str().expect("utf8"),
        "--clock",
        "realtime",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    // The verdict may fail on this machine's timing; the bundle must be whole.
    assert!(r.status.code().is_some_and(|c| c <= 1), "{}", text(&r));
    let b = bundle_in(&out);
    let m = json(&b.join("manifest.json"));
    assert_eq!(m["status"], "complete", "{m}");
    assert_eq!(m["clock"], "realtime");
    assert_eq!(m["stream"]["dropped"], 0, "{m}");
    let t = json(&b.join("timing.json"));
    let bins = t["lateness_bins"].as_array().expect("bins");
    let counted: u64 = bins.iter().map(|b| b[1].as_u64().expect("count")).sum();
    assert_eq!(
        counted,
        t["lateness"]["count"].as_u64().expect("steps"),
        "{t}"
    );
    assert!(counted >= 2_900, "about 3000 steps at 1 kHz: {counted}");
    assert!(
        t["overrun_times_s"].as_array().expect("list").len() as u64
            <= t["overruns"].as_u64().expect("n")
    );
    let v = hil(&["verify", b.to_str().expect("utf8")]);
    assert!(v.status.success(), "{}", text(&v));
}
