//! Files that are not what they seem are refused before anything runs, each with a
//! clear error: a FIFO (which once blocked `check` and `run` for ever), a device, an
//! output that is a device or one of the run's inputs, two scenarios with one id,
//! several invalid files (all reported, not just the first), and a second `--bench`.
mod common;
use std::time::Duration;

fn hil(args: &[&str]) -> common::Finished {
    common::wait_at_most(common::spawn_hil(args), Duration::from_secs(20))
}

#[test]
fn a_fifo_or_a_device_as_a_scenario_is_refused_without_blocking() {
    let d = common::test_dir("fifo");
    let fifo = d.path().join("scenario.toml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    for cmd in ["check", "run"] {
        let f = hil(&[cmd, fifo.to_str().expect("utf8")]);
        assert_eq!(f.code, Some(2), "{cmd}");
        assert!(
            f.stderr.contains("not a regular file (it is a FIFO)"),
            "{cmd}: {}",
            f.stderr
        );
        assert!(f.elapsed < Duration::from_secs(5), "{cmd}: {:?}", f.elapsed);
    }
    let f = hil(&["run", "/dev/zero"]);
    assert_eq!(f.code, Some(2));
    assert!(f.stderr.contains("a character device"), "{}", f.stderr);
}

#[test]
fn bad_outputs_are_refused_before_anything_runs() {
    let d = common::test_dir("outputs");
    let scn = common::short_scenario(d.path(), "s.toml", 1.0);
    let s = scn.to_str().expect("utf8");
    let out = d.path().join("runs");
    let o = out.to_str().expect("utf8");
    for (args, msg) in [
        (vec!["--json", "/dev/full"], "not a regular file"),
        (vec!["--json", s], "refusing to overwrite"),
        (
            vec!["--json", "/tmp/x.json", "--junit", "/tmp/x.json"],
            "the same file as --json",
        ),
        (vec!["--junit", "/no/such/dir/r.xml"], "does not exist"),
    ] {
        let mut a = vec!["run", s, "--out", o];
        a.extend(args.iter().copied());
        let f = hil(&a);
        assert_eq!(f.code, Some(2), "{args:?}: {}", f.stdout);
        assert!(f.stderr.contains(msg), "{args:?}: {}", f.stderr);
        assert!(f.stdout.is_empty(), "{args:?} ran something: {}", f.stdout);
        assert!(f.elapsed < Duration::from_secs(5));
    }
    // The scenario file is untouched.
    assert!(
        std::fs::read_to_string(&scn)
            .expect("scenario")
            .contains("[scenario]")
    );
}

#[test]
fn duplicate_ids_and_every_invalid_file_are_reported() {
    let d = common::test_dir("dups");
    let a = common::short_scenario(d.path(), "a.toml", 1.0);
    let b = common::short_scenario(d.path(), "b.toml", 1.0);
    let dir = d.path().to_str().expect("utf8");
    for cmd in ["check", "run"] {
        let f = hil(&[cmd, dir]);
        assert_eq!(f.code, Some(2), "{cmd}");
        assert!(
            f.stderr
                .contains("b.toml: field `scenario.id`: `SCN-001` is also the id of")
                && f.stderr.contains("a.toml"),
            "{cmd}: {}",
            f.stderr
        );
    }
    // Two broken files: both named, nothing run.
    std::fs::write(
        &a,
        std::fs::read_to_string(&a)
            .expect("a")
            .replace("max_time_s = 1", "max_time_s = -1"),
    )
    .expect("a");
    std::fs::write(
        &b,
        std::fs::read_to_string(&b)
            .expect("b")
            .replace("[scenario]", "[scenario]\nbogus = 1"),
    )
    .expect("b");
    let f = hil(&["run", dir]);
    assert_eq!(f.code, Some(2));
    assert!(
        f.stderr.contains("a.toml") && f.stderr.contains("run.max_time_s"),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains("b.toml") && f.stderr.contains("bogus"),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains("2 invalid file(s); nothing was run"),
        "{}",
        f.stderr
    );
    // `list` goes on past an invalid file.
    let f = hil(&["list", dir]);
    assert_eq!(f.code, Some(2));
    assert_eq!(f.stdout.matches("(invalid)").count(), 2, "{}", f.stdout);
}

#[test]
fn a_second_bench_is_an_error_not_a_silent_override() {
    let f = hil(&[
        "run",
        "scenarios/nominal-entry.toml",
        "--bench",
        "fixtures/benches/simulated.toml",
        "--bench",
        "fixtures/benches/lab-slcan.toml",
    ]);
    assert_eq!(f.code, Some(2));
    assert!(f.stderr.contains("--bench"), "{}", f.stderr);
    assert!(f.stdout.is_empty());
}

#[test]
fn every_subcommand_has_help() {
    for cmd in ["run", "check", "list", "devices"] {
        let f = hil(&[cmd, "--help"]);
        assert_eq!(f.code, Some(0), "{cmd}");
        assert!(f.stdout.contains("Usage: hil"), "{cmd}: {}", f.stdout);
    }
}
