//! A flight computer that acknowledges every tick with time 0 and step 0: caught at
//! the first tick whose time is not 0, naming both values.
mod common;
use std::time::Duration;

#[test]
fn a_stale_acknowledgement_is_named() {
    common::misbehaving(
        "wrong-ack",
        "lockstep",
        &["ERROR", "acknowledged the wrong tick", "SIM_AckTimeUs 0"],
        Duration::from_secs(20),
    );
}
