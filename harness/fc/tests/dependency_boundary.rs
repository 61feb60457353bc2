//! The FC is a black box: its normal dependencies include the ICD and no harness crate
//! and no physics.

use std::process::Command;

#[test]
fn fc_depends_on_the_icd_and_no_harness_internals() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "capsule-fc",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.lines().any(|l| l.starts_with("capsule-icd ")),
        "{tree}"
    );
    for forbidden in ["capsule-links ", "twin-core ", "bevy"] {
        assert!(
            !tree.lines().any(|l| l.starts_with(forbidden)),
            "capsule-fc depends on {forbidden}:\n{tree}"
        );
    }
}
