//! The human-readable ICD (`fixtures/icd/README.md`) matches the DBC: its "Messages"
//! section is exactly what `hil icd doc` generates from `capsule.dbc` (identifiers,
//! signals, scaling, ranges, comments and value lists), and the value lists the
//! harness and the reference flight computer rely on are there.

use capsule_icd::can::{ByteOrder, CanDb};
use capsule_icd::doc::can_messages_markdown;

fn db() -> CanDb {
    CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("DBC loads")
}

#[test]
fn readme_message_section_is_the_generated_one() {
    let doc = include_str!("../../../fixtures/icd/README.md");
    let a = doc.find("### Messages\n").expect("Messages section") + "### Messages\n".len();
    let b = doc.find("\n## 2. GNSS").expect("GNSS section follows");
    let generated = can_messages_markdown(&db());
    let in_doc = doc[a..b].trim_end();
    if in_doc != generated.trim_end() {
        let first = in_doc
            .lines()
            .zip(generated.trim_end().lines())
            .position(|(x, y)| x != y);
        panic!(
            "fixtures/icd/README.md differs from `hil icd doc` (first differing line {first:?}): regenerate it with\n  cargo run --bin hil -- icd doc > /tmp/m.md and paste it under \"### Messages\""
        );
    }
}

#[test]
fn the_value_lists_are_in_the_document() {
    let doc = include_str!("../../../fixtures/icd/README.md");
    for line in [
        "- `FC_Mode` values: 0 PRE_SEPARATION, 1 COAST, 2 DEORBIT_BURN, 3 ENTRY, 4 DROGUE, 5 MAIN, 6 SPLASHDOWN, 7 RECOVERY, 8 SAFE.",
        "- `FC_EventCode` values: 1 MODE_CHANGE, 2 FAULT_DETECTED, 3 FAULT_CLEARED, 4 PYRO_FIRED, 5 BACKUP_PYRO, 6 RESET_RECOVERY, 7 BURN_START, 8 BURN_END, 9 BEACON_ON.",
        "- `Baro_Status` values: 0 OK, 1 STALE, 2 OUT_OF_RANGE, 3 SENSOR_FAULT.",
    ] {
        assert!(doc.contains(line), "README lacks `{line}`");
    }
    // The reference flight computer's mode numbering is the DBC's.
    let m = db();
    let modes = &m
        .by_name("FC_Status")
        .and_then(|s| s.signal("FC_Mode"))
        .expect("FC_Mode")
        .values;
    assert_eq!(modes.len(), 9);
    assert_eq!(modes[3], (3, "ENTRY".to_string()));
}

#[test]
fn every_signal_is_intel_as_the_document_says() {
    for m in db().messages() {
        for s in &m.signals {
            assert_eq!(s.byte_order, ByteOrder::LittleEndian, "{}", s.name);
        }
    }
}

#[test]
fn readme_binding_tables_are_the_generated_ones() {
    let doc = include_str!("../../../fixtures/icd/README.md");
    let a = doc
        .find("### Binding tables\n")
        .expect("Binding tables section")
        + "### Binding tables\n".len();
    let icd = capsule_icd::Icd::shipped().expect("shipped ICD");
    let generated = capsule_icd::doc::binding_markdown(&icd.binding).replace(
        "fixtures/icd/capsule.binding.toml (built in)",
        "capsule.binding.toml",
    );
    assert_eq!(
        doc[a..].trim(),
        generated.trim(),
        "fixtures/icd/README.md's binding tables differ from `hil icd doc --binding builtin`: regenerate them"
    );
}
