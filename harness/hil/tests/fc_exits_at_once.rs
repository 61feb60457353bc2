//! A flight computer that exits at once: noticed at once (not after the join timeout),
//! with its exit status and the end of its standard error in the cause.
mod common;
use std::time::Duration;

#[test]
fn lockstep_early_exit_is_named_at_once() {
    let f = common::misbehaving(
        "exits",
        "lockstep",
        &["ERROR", "exited", "exit status: 3", "exiting at once"],
        Duration::from_secs(20),
    );
    assert!(f.elapsed < Duration::from_secs(4), "{:?}", f.elapsed);
}

#[test]
fn realtime_early_exit_is_named_at_once() {
    let f = common::misbehaving(
        "exits",
        "realtime",
        &["ERROR", "exited", "exit status: 3"],
        Duration::from_secs(20),
    );
    assert!(f.elapsed < Duration::from_secs(4), "{:?}", f.elapsed);
}
