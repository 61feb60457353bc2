//! A flight computer that closes its IMU line mid-run: the harness sees the hang-up
//! (its descriptors are close-on-exec, so the FC holds no copy of the harness's ends)
//! and the run ends naming the line, in both clocks.
mod common;
use std::time::Duration;

#[test]
fn lockstep_names_the_closed_line() {
    common::misbehaving(
        "closes-line",
        "lockstep",
        &["ERROR", "imu", "closed the line"],
        Duration::from_secs(40),
    );
}

#[test]
fn realtime_names_the_closed_line() {
    common::misbehaving(
        "closes-line",
        "realtime",
        &["ERROR", "imu", "closed the line"],
        Duration::from_secs(40),
    );
}
