//! A flight computer that floods the CAN bus, acknowledging ticks or not: the run ends
//! as a flood naming the link (not a hang, not a timeout restarted by every frame), with
//! bounded memory, in both clocks.
mod common;
use std::time::Duration;

#[test]
fn lockstep_flood_with_acks_is_named() {
    common::misbehaving(
        "floods",
        "lockstep",
        &["ERROR", "floods link `can`"],
        Duration::from_secs(40),
    );
}

#[test]
fn lockstep_flood_without_acks_is_named() {
    common::misbehaving(
        "floods-silent",
        "lockstep",
        &["ERROR", "floods link `can`"],
        Duration::from_secs(40),
    );
}

#[test]
fn realtime_flood_is_named() {
    common::misbehaving(
        "floods",
        "realtime",
        &["ERROR", "floods link `can`"],
        Duration::from_secs(40),
    );
}
