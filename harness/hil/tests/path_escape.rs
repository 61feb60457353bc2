//! A scenario id can never reach a path: ids are restricted to a safe character set
//! (a located error otherwise, from `check` and `run` alike), the run's temporary
//! directory comes from `tempfile`, and a canary directory that an id like
//! `x/../../tmp/victim` once deleted stays untouched. A long `TMPDIR` does not break
//! the bus socket either.
mod common;
use std::time::Duration;

#[test]
fn an_id_that_climbs_out_is_rejected_and_the_canary_survives() {
    let d = common::test_dir("escape");
    let canary = d.path().join("victim");
    std::fs::create_dir_all(canary.join("inside")).expect("canary");
    std::fs::write(canary.join("inside/keep.txt"), "keep").expect("canary file");
    let scn = common::short_scenario(d.path(), "escape.toml", 2.0);
    let rel = format!("x/../../{}", canary.display());
    let text = std::fs::read_to_string(&scn)
        .expect("read")
        .replace("id = \"SCN-001\"", &format!("id = \"{rel}\""));
    std::fs::write(&scn, &text).expect("write");
    let line = text
        .lines()
        .position(|l| l.starts_with("id = "))
        .expect("id line")
        + 1;
    let at = format!("escape.toml:{line}:1: field `scenario.id`");
    for cmd in ["check", "run"] {
        let f = common::wait_at_most(
            common::spawn_hil(&[cmd, scn.to_str().expect("utf8")]),
            Duration::from_secs(30),
        );
        assert_eq!(f.code, Some(2), "{cmd}: {}{}", f.stdout, f.stderr);
        assert!(
            f.stderr.contains(&at) && f.stderr.contains("letters, digits"),
            "{cmd}: {}",
            f.stderr
        );
    }
    assert_eq!(
        std::fs::read_to_string(canary.join("inside/keep.txt")).expect("the canary is untouched"),
        "keep"
    );
}

#[test]
fn control_characters_and_long_ids_are_rejected() {
    let d = common::test_dir("ids");
    let scn = common::short_scenario(d.path(), "ids.toml", 2.0);
    let base = std::fs::read_to_string(&scn).expect("read");
    for bad in ["SCN\\u001b[31m", &"A".repeat(65), ".hidden", ""] {
        std::fs::write(
            &scn,
            base.replace("id = \"SCN-001\"", &format!("id = \"{bad}\"")),
        )
        .expect("write");
        let f = common::wait_at_most(
            common::spawn_hil(&["check", scn.to_str().expect("utf8")]),
            Duration::from_secs(30),
        );
        assert_eq!(f.code, Some(2), "{bad}: {}", f.stdout);
        assert!(
            f.stderr.contains("field `scenario.id`"),
            "{bad}: {}",
            f.stderr
        );
        assert!(
            !f.stderr.contains('\u{1b}'),
            "raw escape on the console: {:?}",
            f.stderr
        );
    }
}

#[test]
fn a_long_tmpdir_does_not_break_the_bus_socket() {
    let d = common::test_dir("tmpdir");
    let long = d.path().join("t".repeat(120));
    std::fs::create_dir_all(&long).expect("long dir");
    let scn = common::short_scenario(d.path(), "short.toml", 1.0);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hil"))
        .args([
            "run",
            scn.to_str().expect("utf8"),
            "--out",
            d.path().join("runs").to_str().expect("utf8"),
        ])
        .env("TMPDIR", &long)
        .current_dir(common::root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hil");
    let f = common::wait_at_most(child, Duration::from_secs(60));
    // A 1 s scenario fails its sequencing expectations, but it runs: exit 1, not an
    // ERROR about the socket path.
    assert_eq!(f.code, Some(1), "{}{}", f.stdout, f.stderr);
    assert!(f.stdout.starts_with("FAIL"), "{}", f.stdout);
}
