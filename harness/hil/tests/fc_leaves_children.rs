//! A flight computer whose process starts a child and leaves it running: the harness
//! ends the whole process group, so nothing outlives the run.
mod common;
use std::time::{Duration, Instant};

fn child_gone_after(clock: &str) {
    let d = common::test_dir(&format!("children-{clock}"));
    let pidfile = d.path().join("child.pid");
    let scn = common::short_scenario(d.path(), "short.toml", 2.0);
    let bench = common::rogue_bench(
        d.path(),
        "children",
        clock,
        &["--pidfile", pidfile.to_str().expect("utf8")],
    );
    let (f, _) = common::run_rogue(d.path(), &scn, &bench, Duration::from_secs(40));
    assert!(f.code.is_some(), "{}", f.stderr);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("the child was started")
        .trim()
        .parse()
        .expect("pid");
    // The group was ended before hil exited; allow the kernel a moment to reap.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if st.is_empty() || st.contains(") Z ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the FC's child {pid} outlived the run: {st}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lockstep_ends_the_fc_process_group() {
    child_gone_after("lockstep");
}

#[test]
fn realtime_ends_the_fc_process_group() {
    child_gone_after("realtime");
}
