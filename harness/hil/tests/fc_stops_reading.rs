//! A flight computer that acknowledges ticks (or sends its heartbeat) but never reads
//! its IMU line: the line's buffer fills, and the run ends naming the line, in both
//! clocks, within the timeouts (2 s on the test bench) plus a few seconds.
mod common;
use std::time::Duration;

#[test]
fn lockstep_names_the_line_the_fc_stopped_reading() {
    let f = common::misbehaving(
        "stops-reading",
        "lockstep",
        &["ERROR", "imu", "stopped reading"],
        Duration::from_secs(40),
    );
    assert!(f.elapsed < Duration::from_secs(30), "{:?}", f.elapsed);
}

#[test]
fn realtime_names_the_line_the_fc_stopped_reading() {
    let f = common::misbehaving(
        "stops-reading",
        "realtime",
        &["ERROR", "imu", "stopped reading"],
        Duration::from_secs(40),
    );
    assert!(f.elapsed < Duration::from_secs(30), "{:?}", f.elapsed);
}
