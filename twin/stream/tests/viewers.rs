//! The publisher against viewers that read, stop reading, come late and go away.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use twin_stream::{Header, Publisher, Record, Snapshot, Subscriber};

fn snap(t_s: f64) -> Record {
    Record::Snapshot(Box::new(Snapshot {
        t_s,
        altitude_m: 100_000.0 - t_s,
        ..Snapshot::default()
    }))
}

fn header() -> Record {
    Record::Header(Header::new("SCN-T", "test", "lockstep", "live"))
}

/// Waits (bounded) until `f` holds.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(20), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads every record until the publisher closes.
fn read_all(mut s: Subscriber) -> Vec<Record> {
    let mut out = Vec::new();
    let t0 = Instant::now();
    while !s.closed() {
        out.extend(s.poll().expect("reads"));
        assert!(t0.elapsed() < Duration::from_secs(30), "never closed");
    }
    out
}

#[test]
fn a_viewer_that_stops_reading_loses_its_oldest_lines_and_never_holds_up_the_others() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("run.sock");
    let p = Publisher::bind(&path, 64).expect("binds");
    p.publish(&header());
    // A viewer that connects and never reads.
    let stuck = UnixStream::connect(&path).expect("connects");
    let good = Subscriber::connect(&path).expect("connects");
    until("both attached", || p.stats().viewers == 2);
    let reader = std::thread::spawn(move || read_all(good));
    // Far more than the stuck viewer's queue and socket buffer hold.
    let n = 40_000;
    for k in 0..n {
        p.publish(&snap(k as f64 * 0.01));
        if k % 64 == 0 {
            // Let the reading viewer keep up (its queue is short too).
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    // The stuck one is let go after the write timeout; publishing went on meanwhile.
    until("stuck viewer let go", || p.stats().let_go == 1);
    let stats = p.close();
    let got = reader.join().expect("reader");
    drop(stuck);
    assert!(
        stats.dropped > 0,
        "the stuck viewer's lines were dropped: {stats:?}"
    );
    assert_eq!(stats.lines, n + 1);
    // What the reading viewer got is in order, starts with the header, and ends with
    // the last snapshot.
    assert!(matches!(got.first(), Some(Record::Header(_))));
    let times: Vec<f64> = got.iter().filter_map(Record::t_s).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(times.last().copied(), Some((n - 1) as f64 * 0.01));
}

#[test]
fn a_late_viewer_gets_the_header_the_history_and_then_the_live_lines() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("run.sock");
    let p = Publisher::bind(&path, 10_000).expect("binds");
    p.publish(&header());
    for k in 0..600 {
        p.publish(&snap(k as f64 * 0.1));
    }
    p.publish(&Record::Event {
        t_s: 59.95,
        name: "drogue_deploy".into(),
    });
    let late = Subscriber::connect(&path).expect("connects");
    until("attached", || p.connected() == 1);
    p.publish(&snap(60.0));
    let stats = p.close();
    let got = read_all(late);
    assert!(matches!(got.first(), Some(Record::Header(_))));
    // History: one snapshot per second of run time (0, 1, ..., 59), the event, then
    // the live snapshot.
    let snaps: Vec<f64> = got
        .iter()
        .filter_map(|r| match r {
            Record::Snapshot(s) => Some(s.t_s),
            _ => None,
        })
        .collect();
    assert_eq!(snaps.len(), 61, "{snaps:?}");
    assert!(
        (snaps[59] - 59.0).abs() < 0.11 && snaps[60] == 60.0,
        "{snaps:?}"
    );
    assert!(
        got.iter()
            .any(|r| matches!(r, Record::Event { name, .. } if name == "drogue_deploy"))
    );
    assert_eq!(stats.dropped, 0);
}

#[test]
fn a_viewer_that_goes_away_changes_nothing_for_the_publisher() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("run.sock");
    let p = Publisher::bind(&path, 64).expect("binds");
    p.publish(&header());
    {
        let s = UnixStream::connect(&path).expect("connects");
        until("attached", || p.connected() == 1);
        let mut r = BufReader::new(&s);
        let mut first = String::new();
        r.read_line(&mut first).expect("header");
        assert!(first.starts_with(r#"{"kind":"header""#), "{first}");
    } // closed: as if the viewer process were killed
    for k in 0..5_000 {
        p.publish(&snap(k as f64));
    }
    until("gone", || {
        p.publish(&snap(1e6));
        p.connected() == 0
    });
    let stats = p.close();
    assert_eq!(stats.viewers, 1);
    assert!(!path.exists(), "socket removed");
}

#[test]
fn a_stale_socket_is_replaced_and_any_other_file_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("run.sock");
    let first = Publisher::bind(&path, 8).expect("binds");
    std::mem::forget(first); // a crashed run leaves its socket behind
    let again = Publisher::bind(&path, 8).expect("replaces a stale socket");
    drop(again);
    let file = dir.path().join("results.json");
    std::fs::write(&file, "{}").expect("writes");
    let e = Publisher::bind(&file, 8).expect_err("not a socket");
    assert!(e.to_string().contains("not a socket"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), "{}");
}

#[test]
fn a_recorded_stream_is_read_back_and_errors_name_the_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("twin.jsonl");
    let recs = [header(), snap(0.0), snap(1.0)];
    let text: String = recs.iter().map(Record::to_line).collect();
    std::fs::write(&f, &text).expect("writes");
    assert_eq!(twin_stream::read_file(&f).expect("reads"), recs.to_vec());
    std::fs::write(
        &f,
        format!("{text}{{\"kind\":\"snapshot\",\"t_s\":\"x\"}}\n"),
    )
    .expect("writes");
    let e = twin_stream::read_file(&f).expect_err("bad line");
    assert!(e.to_string().contains("twin.jsonl:4:"), "{e}");
    std::fs::write(&f, "hello\n").expect("writes");
    let e = twin_stream::read_file(&f).expect_err("no header");
    assert!(
        e.to_string().contains("not a capsule-twin-stream/1 stream"),
        "{e}"
    );
}
