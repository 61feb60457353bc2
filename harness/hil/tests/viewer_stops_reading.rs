//! Viewers cannot change a run: a run watched by a viewer that reads everything, one
//! that stops reading and one that is killed gives the same verdicts as the same run
//! with no viewer (lockstep: byte-identical results), the reading viewer gets the
//! whole stream in order with the final verdict, and the stuck one is let go. And a
//! recorded run replays from its bundle alone.
mod common;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use twin_stream::{Record, Subscriber};

fn results(p: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).expect("results")).expect("json");
    v["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| s["result"].clone())
        .collect()
}

#[test]
fn viewers_that_read_stop_reading_or_die_leave_the_verdicts_unchanged() {
    let d = common::test_dir("viewer");
    let scenario = common::short_scenario(d.path(), "short.toml", 8.0);
    let s = scenario.to_str().expect("utf8");
    let (a_json, b_json) = (d.path().join("a.json"), d.path().join("b.json"));
    let (a_out, b_out) = (d.path().join("runs-a"), d.path().join("runs-b"));
    // Without a viewer.
    let a = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["run", s, "--json", a_json.to_str().expect("utf8")])
        .args(["--out", a_out.to_str().expect("utf8")])
        .current_dir(common::root())
        .output()
        .expect("hil runs");
    assert!(a.status.code().is_some(), "{a:?}");
    // With three.
    let xdg = d.path().join("xdg");
    std::fs::create_dir_all(&xdg).expect("dir");
    let b = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["run", s, "--json", b_json.to_str().expect("utf8")])
        .args([
            "--out",
            b_out.to_str().expect("utf8"),
            "--publish",
            "--pace",
            "1",
        ])
        .env("XDG_RUNTIME_DIR", &xdg)
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hil starts");
    let socks = xdg.join("capsule-hil");
    let t0 = Instant::now();
    let sock = loop {
        if let Some(p) = std::fs::read_dir(&socks).ok().and_then(|r| {
            r.filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "sock"))
        }) {
            break p;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no socket in {}",
            socks.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let good = Subscriber::connect(&sock).expect("connects");
    let reader = std::thread::spawn(move || {
        let mut good = good;
        let mut got = Vec::new();
        let t0 = Instant::now();
        while !good.closed() && t0.elapsed() < Duration::from_secs(120) {
            got.extend(good.poll().expect("reads"));
        }
        got
    });
    let stuck = UnixStream::connect(&sock).expect("connects");
    {
        let killed = UnixStream::connect(&sock).expect("connects");
        let mut first = String::new();
        BufReader::new(&killed)
            .read_line(&mut first)
            .expect("header");
        assert!(first.contains(r#""kind":"header""#), "{first}");
    }
    let b = b.wait_with_output().expect("hil ends");
    drop(stuck);
    let got = reader.join().expect("reader");
    let out = String::from_utf8_lossy(&b.stdout);
    assert_eq!(b.status.code(), a.status.code(), "{out}");
    // The verdicts, measured values and counters are those of the run without viewers.
    assert_eq!(results(&a_json), results(&b_json));
    assert!(out.contains("twin view: 3 viewer(s)"), "{out}");
    assert!(
        out.contains(", 1 let go;"),
        "the stuck viewer is let go: {out}"
    );
    assert!(
        out.contains("0 record(s) the loop could not queue"),
        "{out}"
    );
    // The reading viewer: header, then snapshots at 60 Hz in order, the verdict last.
    assert!(matches!(got.first(), Some(Record::Header(h)) if h.scenario_id == "SCN-001"));
    let times: Vec<f64> = got
        .iter()
        .filter_map(|r| match r {
            Record::Snapshot(s) => Some(s.t_s),
            _ => None,
        })
        .collect();
    assert!(times.len() >= 8 * 60 - 2, "{} snapshots", times.len());
    assert!(times.windows(2).all(|w| w[1] > w[0]), "in order");
    let verdict = results(&b_json)[0]["verdict"]
        .as_str()
        .expect("verdict")
        .to_uppercase();
    match got.last() {
        Some(Record::End(e)) => assert_eq!(e.verdict, verdict),
        other => panic!("the stream ends with the verdict, not {other:?}"),
    }
    // The avionics' view arrived (FC_Status decoded).
    let Some(Record::Snapshot(last)) = got.iter().rev().find(|r| matches!(r, Record::Snapshot(_)))
    else {
        panic!("no snapshot");
    };
    assert_eq!(
        last.avionics.mode.as_deref(),
        Some("ENTRY"),
        "{:?}",
        last.avionics
    );
    assert!(
        last.links.iter().any(|l| l.name == "can" && l.rx > 0),
        "{:?}",
        last.links
    );

    // The run without viewers replays from its bundle alone.
    let bundle = common::only_dir(&a_out);
    let stream = d.path().join("replay.jsonl");
    let r = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["view", bundle.to_str().expect("utf8")])
        .args(["--save-stream", stream.to_str().expect("utf8")])
        .current_dir(common::root())
        .output()
        .expect("hil view runs");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let recs = twin_stream::read_file(&stream).expect("a stream");
    let snaps: Vec<&twin_stream::Snapshot> = recs
        .iter()
        .filter_map(|r| match r {
            Record::Snapshot(s) => Some(s.as_ref()),
            _ => None,
        })
        .collect();
    // 50 Hz telemetry over 8 s.
    assert!(snaps.len() >= 8 * 50, "{} snapshots", snaps.len());
    assert_eq!(
        snaps.last().and_then(|s| s.avionics.mode.as_deref()),
        Some("ENTRY")
    );
    // The same truth as the live stream at the same time (within a physics step or
    // two; f32 in the telemetry).
    let t = snaps[200].t_s;
    let live = got
        .iter()
        .filter_map(|r| match r {
            Record::Snapshot(s) => Some(s.as_ref()),
            _ => None,
        })
        .min_by(|x, y| (x.t_s - t).abs().total_cmp(&(y.t_s - t).abs()))
        .expect("live snapshots");
    assert!((live.t_s - t).abs() <= 0.002, "{} vs {t}", live.t_s);
    assert!(
        (live.altitude_m - snaps[200].altitude_m).abs() < 1.0,
        "{} vs {}",
        live.altitude_m,
        snaps[200].altitude_m
    );
    match recs.last() {
        Some(Record::End(e)) => assert_eq!(e.verdict, verdict),
        other => panic!("ends with the verdict, not {other:?}"),
    }
}
