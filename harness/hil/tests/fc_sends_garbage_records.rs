//! A flight computer that writes garbage on its own virtual bus connection (one record
//! with dlc = 12, then 20 records of 0xFF bytes, whose flags read as error frames) and
//! then behaves on the same connection: the malformed record is counted and skipped,
//! the error frames are carried and counted as framing errors at the harness, the node
//! stays connected (it acknowledges every tick after), and the run goes on to its
//! verdict with the counts in the console's link summary and the JSON, instead of
//! "never joined" or "silent" (one such record used to disconnect the node).
mod common;
use std::time::Duration;

#[test]
fn malformed_records_are_counted_and_skipped() {
    let d = common::test_dir("garbage");
    let scn = common::short_scenario(d.path(), "short.toml", 2.0);
    let bench = common::rogue_bench(d.path(), "garbage", "lockstep", &[]);
    let (f, v) = common::run_rogue(d.path(), &scn, &bench, Duration::from_secs(60));
    // The rogue FC does not fly, so the sequencing fails: FAIL (1), not ERROR (2).
    assert_eq!(f.code, Some(1), "{}{}", f.stdout, f.stderr);
    assert!(f.stdout.contains("malformed records"), "{}", f.stdout);
    let links = &v["scenarios"][0]["result"]["links"];
    assert_eq!(links["bus"]["bad_records"].as_u64(), Some(1), "{v}");
    assert_eq!(links["links"][0][0], "can");
    assert_eq!(
        links["links"][0][1]["framing_errors"].as_u64(),
        Some(20),
        "{v}"
    );
}
