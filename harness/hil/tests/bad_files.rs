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
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
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

/// The nominal short scenario with `extra` TOML appended.
fn with(d: &std::path::Path, name: &str, extra: &str) -> std::path::PathBuf {
    let p = common::short_scenario(d, name, 5.0);
    let text = std::fs::read_to_string(&p).expect("read") + extra;
    std::fs::write(&p, text).expect("write");
    p
}

/// Numbers that once hung or aborted a run are refused by `check`, located to the
/// field with its unit.
#[test]
fn absurd_fault_parameters_are_refused_with_their_field() {
    let d = common::test_dir("absurd");
    let bus = |fault: &str| {
        format!(
            "\n[[inject]]\nid = \"f\"\nat_s = 1.0\nfault = {{ kind = \"bus\", link = \"imu\", fault = {fault} }}\n"
        )
    };
    for (extra, field) in [
        (
            bus("{ kind = \"corrupt\", bits = 4000000000 }"),
            "inject[0].fault.fault.bits",
        ),
        (
            bus("{ kind = \"insert_bytes\", count = 1000000000 }"),
            "inject[0].fault.fault.count",
        ),
        (
            bus("{ kind = \"delay\", delay_s = inf }"),
            "inject[0].fault.fault.delay_s",
        ),
        (
            bus("{ kind = \"delay\", delay_s = -5.0 }"),
            "inject[0].fault.fault.delay_s",
        ),
        (
            bus("{ kind = \"delay\", delay_s = 0.1, jitter_s = nan }"),
            "inject[0].fault.fault.jitter_s",
        ),
    ] {
        let p = with(d.path(), "absurd.toml", &extra);
        let f = hil(&["check", p.to_str().expect("utf8")]);
        assert_eq!(f.code, Some(2), "{extra}");
        assert!(
            f.stderr.contains(&format!("field `{field}`")),
            "{extra}: {}",
            f.stderr
        );
        assert!(
            f.stderr.contains("expected a number in"),
            "{extra}: {}",
            f.stderr
        );
    }
    let p = common::short_scenario(d.path(), "long.toml", 5.0);
    let text = std::fs::read_to_string(&p)
        .expect("read")
        .replace("max_time_s = 5", "max_time_s = 1e300");
    std::fs::write(&p, text).expect("write");
    let f = hil(&["check", p.to_str().expect("utf8")]);
    assert!(
        f.stderr
            .contains("field `run.max_time_s`: expected a number in [0.001, 86400] (s)"),
        "{}",
        f.stderr
    );
    let bench = d.path().join("bench.toml");
    std::fs::write(
        &bench,
        std::fs::read_to_string(common::root().join("fixtures/benches/simulated.toml"))
            .expect("bench")
            .replace("silence_timeout_s = 2.0", "silence_timeout_s = 1e300"),
    )
    .expect("write");
    let f = hil(&["check", bench.to_str().expect("utf8")]);
    assert_eq!(f.code, Some(2));
    assert!(
        f.stderr
            .contains("field `timing.silence_timeout_s`: expected a number in [0.05, 600] (s)"),
        "{}",
        f.stderr
    );
}

/// References that can never match are refused by `check`, as a run would find them
/// useless: an injection id that does not exist, an FC fault detail the ICD does not
/// define, a fault kind that does not exist, a `descent` start without a drogue, a
/// thruster the vehicle lacks.
#[test]
fn references_that_can_never_match_are_refused() {
    let d = common::test_dir("refs");
    let inj = "\n[[inject]]\nid = \"gnss-out\"\nat_s = 1.0\nfault = { kind = \"gnss_loss\" }\nduration_s = 1.0\n";
    for (extra, field) in [
        (format!("{inj}\n[[inject]]\nid = \"later\"\nwhen = \"inject:no-such-injection\"\nfault = {{ kind = \"gnss_loss\" }}\n"), "inject[1].when"),
        (format!("{inj}\n[[expect]]\nid = \"x\"\nrequirement = \"REQ-SEQ-001\"\nevent = \"fc_mode:ENTRY\"\nafter = \"inject:typo\"\n"), "after"),
        ("\n[[expect]]\nid = \"x\"\nrequirement = \"REQ-SEQ-001\"\nnever = \"fc_fault:0xdead\"\n".to_string(), "never"),
        ("\n[[expect]]\nid = \"x\"\nrequirement = \"REQ-SEQ-001\"\noutcome = \"injected:imu.noise_brust\"\nmax = 1\n".to_string(), "outcome"),
    ] {
        let p = with(d.path(), "refs.toml", &extra);
        let f = hil(&["check", p.to_str().expect("utf8")]);
        assert_eq!(f.code, Some(2), "{extra}: {}", f.stdout);
        assert!(f.stderr.contains("refs.toml:") && f.stderr.contains(field), "{extra}: {}", f.stderr);
    }
}

/// A vehicle without the deorbit motor and the drogue: a thruster injection naming the
/// motor, and a start under the drogue, are refused by `check` (they used to pass it
/// and fail only at run time).
#[test]
fn what_the_vehicle_lacks_is_refused_by_check() {
    let d = common::test_dir("vehicle-refs");
    let mut v: toml::Value = toml::from_str(
        &std::fs::read_to_string(common::root().join("fixtures/vehicles/capsule-srcv.toml"))
            .expect("vehicle"),
    )
    .expect("toml");
    let drop_named = |v: &mut toml::Value, table: &str, name: &str| {
        if let Some(a) = v.get_mut(table).and_then(|t| t.as_array_mut()) {
            a.retain(|x| x.get("name").and_then(|n| n.as_str()) != Some(name));
        }
    };
    drop_named(&mut v, "thrusters", "deorbit_motor");
    drop_named(&mut v, "parachutes", "drogue");
    let vp = d.path().join("no-motor-no-drogue.toml");
    std::fs::write(&vp, toml::to_string(&v).expect("toml")).expect("write");
    let vname = vp.to_str().expect("utf8");
    let inj = "\n[[inject]]\nid = \"t\"\nat_s = 1.0\nfault = { kind = \"thruster\", thruster = \"deorbit_motor\", failure = \"stuck_closed\" }\n";
    let p = with(d.path(), "motor.toml", inj);
    let text = std::fs::read_to_string(&p).expect("read");
    let abs = common::root().join("fixtures/vehicles/capsule-srcv.toml");
    std::fs::write(&p, text.replace(abs.to_str().expect("utf8"), vname)).expect("write");
    let f = hil(&["check", p.to_str().expect("utf8")]);
    assert_eq!(f.code, Some(2), "{}", f.stdout);
    assert!(
        f.stderr.contains("field `inject[0].fault.thruster`")
            && f.stderr.contains("has no thruster `deorbit_motor`"),
        "{}",
        f.stderr
    );
    let descent =
        std::fs::read_to_string(common::root().join("scenarios/fc-reset-under-drogue.toml"))
            .expect("descent scenario")
            .replace("../fixtures/vehicles/capsule-srcv.toml", vname);
    let p = d.path().join("descent.toml");
    std::fs::write(&p, descent).expect("write");
    let f = hil(&["check", p.to_str().expect("utf8")]);
    assert_eq!(f.code, Some(2), "{}", f.stdout);
    assert!(
        f.stderr.contains("field `initial.phase`") && f.stderr.contains("parachute named `drogue`"),
        "{}",
        f.stderr
    );
}
