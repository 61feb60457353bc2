//! The temporal operators of expectations, judged on a small hand-built run record
//! whose every value is known: `order` (`after` / `before` without a window), `never`
//! and `always` over a scope (`from` / `until` / `during`), CAN signals from the wire
//! (`can.<Message>.<Signal>`) and tolerances against another signal (`near`).
//!
//! The record: truth snapshots at t = 0, 1, 2, 3 s with the altitude 1000, 900, 800,
//! 700 m (so 980 m at 0.2 s, 880 m at 1.2 s, 780 m at 2.2 s by interpolation);
//! `FC_Status` frames at 0.2, 1.2, 2.2 s estimating 980, 850, 790 m (differences from
//! the truth 0, 30, 10 m); events DROGUE at 0.5 s, then at 1.5 s the main primary
//! initiator followed by MAIN in the same cycle, splashdown at 2.5 s.

use capsule_icd::can::CanDb;
use capsule_runner::record::{EndReason, FrameRecord, Peaks, RunRecord};
use capsule_scenario::eval::evaluate;
use capsule_scenario::spec::Scenario;
use twin_core::config::Source;
use twin_core::initial::EntryState;
use twin_core::twin::{ModelOptions, Twin};
use twin_core::vehicle::VehicleSpec;

/// The shipped ICD (dereferences to its DBC).
fn db() -> capsule_icd::Icd {
    capsule_icd::Icd::shipped().expect("shipped ICD")
}

/// An `FC_Status` frame with these signals given and every other at 0 (the encoder
/// wants every signal).
fn fc_status(db: &CanDb, given: &[(&str, f64)]) -> capsule_icd::can::CanFrame {
    db.encode_zero_filled("FC_Status", given).expect("encode")
}

fn record(db: &CanDb) -> RunRecord {
    let text = include_str!("../../../fixtures/vehicles/capsule-srcv.toml");
    let veh = VehicleSpec::from_toml(&Source::new("capsule-srcv.toml", text)).expect("vehicle");
    let opts = ModelOptions::default();
    let init = EntryState {
        altitude_m: 1_000.0,
        speed_m_s: 60.0,
        flight_path_angle_rad: -80f64.to_radians(),
        heading_rad: 0.0,
        latitude_rad: 0.0,
        longitude_rad: 0.0,
        relative_to_atmosphere: true,
        bank_rad: 0.0,
    }
    .to_body_state(&opts.planet, &veh);
    let twin = Twin::new(opts, veh, init, 0.0).expect("twin");
    let snapshots = (0..4)
        .map(|k| {
            let mut s = twin.snapshot();
            s.t_s = f64::from(k);
            s.altitude_m = 1_000.0 - 100.0 * f64::from(k);
            s
        })
        .collect();
    let frames = [(0.2, 980.0), (1.2, 850.0), (2.2, 790.0)]
        .into_iter()
        .map(|(t_s, alt)| FrameRecord {
            t_s,
            from_fc: true,
            frame: fc_status(db, &[("FC_EstAltitude", alt), ("FC_Mode", 4.0)]),
        })
        .collect();
    let named_events = [
        (0.5, "fc_mode:DROGUE"),
        (1.5, "pyro_fired:main_primary"),
        (1.5, "fc_mode:MAIN"),
        (2.5, "splashdown"),
    ]
    .into_iter()
    .map(|(t, n)| (t, n.to_string()))
    .collect();
    RunRecord {
        clock: "lockstep".into(),
        frames,
        events: Vec::new(),
        contact: None,
        snapshots,
        end: EndReason::Landed,
        t_end_s: 3.0,
        serial_bytes: (0, 0),
        peaks: Peaks::default(),
        named_events,
        injections: Vec::new(),
        faults_injected: Default::default(),
        timing: None,
        links: Default::default(),
    }
}

/// Judges one expectation (TOML body of an `[[expect]]` table) on the record:
/// (passed, measured).
fn judge(body: &str) -> (bool, String) {
    let text = format!(
        r#"[scenario]
id = "OP"
title = "operators"
requirements = ["R"]

[initial]
vehicle = "v.toml"
phase = "entry"
entry = {{ altitude_m = 120000.0, speed_m_s = 7400.0, flight_path_angle_deg = -1.6 }}

[[expect]]
id = "x"
requirement = "R"
{body}
"#
    );
    let src = Source::new("op.toml", &text);
    let s = Scenario::from_toml(&src).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let db = db();
    s.check_icd(&db, &src).expect("names in the DBC");
    let r = evaluate(&s, &record(&db), &db);
    let e = &r.expectations[0];
    (e.passed, e.measured.clone())
}

/// Judges a rate check on a record whose FC_Status frames come at `hz` for 10 s
/// (frames on 10 ms cycle boundaries, as the FC sends them).
fn judge_rate(hz: f64, min_rate_hz: f64) -> (bool, String, String) {
    judge_rate_on(hz, min_rate_hz, |_| {})
}

/// [`judge_rate`] on the record as `edit` leaves it.
fn judge_rate_on(
    hz: f64,
    min_rate_hz: f64,
    edit: impl FnOnce(&mut RunRecord),
) -> (bool, String, String) {
    let db = db();
    let mut rec = record(&db);
    let n = (10.0 * hz) as usize;
    rec.frames = (0..n)
        .map(|k| FrameRecord {
            t_s: ((k as f64 / hz) * 100.0).round() / 100.0,
            from_fc: true,
            frame: fc_status(&db, &[]),
        })
        .collect();
    rec.t_end_s = 10.0;
    edit(&mut rec);
    let text = format!(
        "[scenario]\nid = \"OP\"\ntitle = \"rate\"\nrequirements = [\"R\"]\n\n[initial]\nvehicle = \"v.toml\"\nphase = \"entry\"\nentry = {{ altitude_m = 120000.0, speed_m_s = 7400.0, flight_path_angle_deg = -1.6 }}\n\n[[expect]]\nid = \"hb\"\nrequirement = \"R\"\nmessage = \"FC_Status\"\nmin_rate_hz = {min_rate_hz}\n"
    );
    let src = Source::new("rate.toml", &text);
    let s = Scenario::from_toml(&src).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let r = evaluate(&s, &rec, &db);
    let e = &r.expectations[0];
    (e.passed, e.expected.clone(), e.measured.clone())
}

#[test]
fn a_rate_check_states_its_tolerance_and_holds_the_mean_rate() {
    let (ok, expected, _) = judge_rate(10.0, 9.0);
    assert!(ok);
    assert!(
        expected.contains("mean rate >= 9 Hz") && expected.contains("+ 10 ms"),
        "{expected}"
    );
    // A 10 Hz sender's 100 ms gaps fit 1/11 s + 10 ms, but its mean rate is 10 Hz.
    let (ok, _, measured) = judge_rate(10.0, 11.0);
    assert!(!ok, "{measured}");
    assert!(measured.starts_with("mean rate 10.00 Hz"), "{measured}");
    assert!(judge_rate(10.0, 10.0).0);
}

/// A real-time record of 10 s at 1 kHz whose harness loop was `late_us` late between
/// 4.0 and 4.6 s and 5 us late otherwise; the avionics sent nothing from 4.0 to 4.6 s.
fn gap_at_4_s(late_us: u32) -> impl FnOnce(&mut RunRecord) {
    move |rec: &mut RunRecord| {
        use capsule_runner::record::{Percentiles, TimingBudget, TimingReport};
        rec.clock = "realtime".into();
        rec.frames.retain(|f| !(f.t_s > 4.0 && f.t_s < 4.6));
        let mut t = TimingReport::new(
            1000.0,
            Percentiles::default(),
            0,
            Percentiles::default(),
            TimingBudget::default(),
        );
        t.lateness_trace_us = (0..100)
            .map(|k| if (40..46).contains(&k) { late_us } else { 5 })
            .collect();
        rec.timing = Some(t);
    }
}

#[test]
fn a_failed_gap_in_real_time_says_whose_stall_it_was() {
    let (ok, _, measured) = judge_rate_on(10.0, 9.0, gap_at_4_s(12));
    assert!(!ok, "{measured}");
    assert!(
        measured.contains("longest gap 0.600 s")
            && measured.contains(
                "kept time during the gap (worst step lateness 12 us): the avionics' stall"
            ),
        "{measured}"
    );
    let (ok, _, measured) = judge_rate_on(10.0, 9.0, gap_at_4_s(250_000));
    assert!(!ok);
    assert!(
        measured.contains("the harness loop was itself 250000 us late during the gap"),
        "{measured}"
    );
    // In lockstep there is no harness lateness to speak of.
    let (_, _, measured) = judge_rate_on(10.0, 9.0, |r| {
        r.frames.retain(|f| !(f.t_s > 4.0 && f.t_s < 4.6))
    });
    assert!(!measured.contains("harness"), "{measured}");
}

#[test]
fn order_after_and_before() {
    assert!(judge("event = \"pyro_fired:main_primary\"\nafter = \"fc_mode:DROGUE\"").0);
    let (ok, m) = judge("event = \"fc_mode:DROGUE\"\nafter = \"pyro_fired:main_primary\"");
    assert!(!ok, "{m}");
    assert_eq!(
        m,
        "fc_mode:DROGUE at 0.50 s, pyro_fired:main_primary at 1.50 s"
    );
    assert!(judge("event = \"fc_mode:MAIN\"\nbefore = \"splashdown\"").0);
    // Same cycle: the order things happened in decides.
    assert!(judge("event = \"pyro_fired:main_primary\"\nbefore = \"fc_mode:MAIN\"").0);
    assert!(!judge("event = \"fc_mode:MAIN\"\nbefore = \"pyro_fired:main_primary\"").0);
    // Between two events.
    assert!(
        judge("event = \"fc_mode:MAIN\"\nafter = \"fc_mode:DROGUE\"\nbefore = \"splashdown\"").0
    );
    // The event must happen; the `before` event need not.
    let (ok, m) = judge("event = \"beacon_on\"\nbefore = \"splashdown\"");
    assert!(!ok);
    assert_eq!(m, "beacon_on never happened");
    assert!(judge("event = \"splashdown\"\nbefore = \"beacon_on\"").0);
}

#[test]
fn never_over_a_scope() {
    assert!(!judge("never = \"pyro_fired:*\"").0);
    assert!(judge("never = \"splashdown\"\nduring = \"DROGUE\"").0);
    // The scope ends at the next mode change, inclusive: the fire command that ends
    // DROGUE is inside it.
    let (ok, m) = judge("never = \"pyro_fired:*\"\nduring = \"DROGUE\"");
    assert!(!ok);
    assert_eq!(m, "pyro_fired:main_primary at 1.50 s");
    assert!(judge("never = \"fc_mode:DROGUE\"\nfrom = \"fc_mode:MAIN\"").0);
    assert!(judge("never = \"splashdown\"\nuntil = \"fc_mode:MAIN\"").0);
    // A scope that never opens fails (the requirement was never exercised).
    let (ok, m) = judge("never = \"splashdown\"\nduring = \"ENTRY\"");
    assert!(!ok);
    assert_eq!(m, "the FC never entered ENTRY");
}

#[test]
fn count_over_a_scope() {
    // One initiator fired in the record (the main primary, at 1.5 s).
    let (ok, m) = judge("count = \"pyro_fired:*\"\nmin = 1\nmax = 1");
    assert!(ok, "{m}");
    assert_eq!(m, "pyro_fired:* happened 1 times");
    let (ok, m) = judge("count = \"pyro_fired:*\"\nmax = 0");
    assert!(!ok);
    assert_eq!(m, "pyro_fired:* happened 1 times");
    // Scoped: from MAIN (the same cycle) it counts; until DROGUE (0.5 s) it does not.
    assert!(judge("count = \"pyro_fired:*\"\nfrom = \"fc_mode:MAIN\"\nmin = 1").0);
    let (ok, m) = judge("count = \"pyro_fired:*\"\nuntil = \"fc_mode:DROGUE\"\nmin = 1");
    assert!(!ok);
    assert_eq!(m, "pyro_fired:* happened 0 times");
    // An event that never happens counts zero: a `min` fails, a `max` passes.
    assert!(!judge("count = \"beacon_on\"\nmin = 1").0);
    assert!(judge("count = \"beacon_on\"\nmax = 0").0);
}

#[test]
fn always_over_a_scope_with_bounds() {
    // All snapshots: 1000 .. 700 m.
    let (ok, m) = judge("always = [{ signal = \"truth.altitude_m\", min = 650.0 }]");
    assert!(ok, "{m}");
    assert_eq!(m, "truth.altitude_m: 4 samples in [700.000, 1000.000]");
    // During DROGUE (0.5 to 1.5 s): only the 1 s snapshot, 900 m.
    assert!(
        judge("always = [{ signal = \"truth.altitude_m\", min = 850.0 }]\nduring = \"DROGUE\"").0
    );
    let (ok, m) =
        judge("always = [{ signal = \"truth.altitude_m\", min = 950.0 }]\nduring = \"DROGUE\"");
    assert!(!ok);
    assert_eq!(
        m,
        "truth.altitude_m = 900.000 at t = 1.00 s (expected >= 950)"
    );
    // CAN signals at each frame.
    let (ok, m) = judge(
        "always = [{ signal = \"can.FC_Status.FC_EstAltitude\", max = 990.0 }]\nfrom = \"fc_mode:DROGUE\"",
    );
    assert!(ok, "{m}");
    assert_eq!(
        m,
        "can.FC_Status.FC_EstAltitude: 2 samples in [790.000, 850.000]"
    );
}

#[test]
fn tolerance_against_another_signal() {
    // Differences 0, 30, 10 m against the interpolated truth.
    let near = "signal = \"can.FC_Status.FC_EstAltitude\", near = \"truth.altitude_m\"";
    let (ok, m) = judge(&format!("always = [{{ {near}, tolerance = 35.0 }}]"));
    assert!(ok, "{m}");
    assert_eq!(
        m,
        "can.FC_Status.FC_EstAltitude: 3 samples, largest difference from truth.altitude_m 30.000"
    );
    let (ok, m) = judge(&format!("always = [{{ {near}, tolerance = 20.0 }}]"));
    assert!(!ok);
    assert_eq!(
        m,
        "can.FC_Status.FC_EstAltitude = 850.000 at t = 1.20 s, truth.altitude_m = 880.000: differs by 30.000 (> 20)"
    );
    // At an event: the last frame before it (850 m at 1.2 s) against the truth at
    // 1.5 s (850 m).
    let (ok, m) = judge(&format!(
        "at = \"pyro_fired:main_primary\"\ncheck = [{{ {near}, tolerance = 1.0 }}]"
    ));
    assert!(ok, "{m}");
    assert_eq!(
        m,
        "t = 1.50 s, can.FC_Status.FC_EstAltitude = 850.000, truth.altitude_m = 850.000"
    );
}

#[test]
fn malformed_operators_are_located() {
    let bad = |body: &str| {
        let text = format!(
            "[scenario]\nid = \"OP\"\ntitle = \"t\"\nrequirements = [\"R\"]\n\n[initial]\nvehicle = \"v.toml\"\nphase = \"entry\"\nentry = {{ altitude_m = 120000.0, speed_m_s = 7400.0, flight_path_angle_deg = -1.6 }}\n\n[[expect]]\nid = \"x\"\nrequirement = \"R\"\n{body}\n"
        );
        let src = Source::new("op.toml", &text);
        match Scenario::from_toml(&src) {
            Err(e) => e.to_string(),
            Ok(s) => s
                .check_icd(&db(), &src)
                .expect_err("rejected against the DBC")
                .to_string(),
        }
    };
    for (body, want) in [
        (
            "never = \"splashdown\"\nduring = \"LANDED\"",
            "op.toml:15:1: field `expect[0].during`: unknown mode `LANDED`",
        ),
        (
            "at = \"splashdown\"\ncheck = [{ signal = \"truth.altitude_m\", max = 1.0 }]\nfrom = \"fc_mode:MAIN\"",
            "`from`, `until` and `during` scope the `never`, `always` and `count` forms only",
        ),
        (
            "always = [{ signal = \"can.FC_Status.FC_Altitude\", max = 1.0 }]",
            "field `expect[0].always[0].signal`: `can.FC_Status.FC_Altitude`: message `FC_Status` has no signal `FC_Altitude`",
        ),
        (
            "always = [{ signal = \"can.FC_Stat.FC_EstAltitude\", max = 1.0 }]",
            "no message `FC_Stat` in the DBC",
        ),
        (
            "always = [{ signal = \"truth.altitude_m\", near = \"truth.mach\" }]",
            "field `expect[0].always[0].near`: `near` needs a `tolerance`",
        ),
        (
            "count = \"pyro_fired:*\"\nmax = 1.5",
            "field `expect[0].max`: a count bound is a whole number >= 0, got 1.5",
        ),
        ("count = \"pyro_fired:*\"", "expected `min` and/or `max`"),
        (
            "count = \"pyro_fired\"\nmax = 1",
            "`pyro_fired` needs a channel",
        ),
        (
            "event = \"splashdown\"\nbefore = \"beacon_on\"\nwindow_s = [0.0, 1.0]",
            "`window_s` goes with `after` alone",
        ),
        (
            "event = \"splashdown\"\nbefore = \"fc_mode:MAIN\"\nafter = \"fc_mode:MAIN\"",
            "cannot come both before and after the event",
        ),
    ] {
        let e = bad(body);
        assert!(e.contains(want), "{body}:\n{e}\nexpected: {want}");
    }
}
