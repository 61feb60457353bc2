//! The human-readable ICD (`fixtures/icd/README.md`) is exactly what `hil icd doc`
//! generates from `capsule.dbc` and `capsule.binding.toml` (message tables with value
//! lists, serial byte tables, lockstep examples, conventions, binding tables); the
//! value lists the harness and the reference flight computer rely on are there; and a
//! second ICD's document is its own.

use capsule_icd::can::{ByteOrder, CanDb};

fn db() -> CanDb {
    CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("DBC loads")
}

#[test]
fn readme_is_the_generated_document() {
    let doc = include_str!("../../../fixtures/icd/README.md");
    let icd = capsule_icd::Icd::shipped().expect("shipped ICD");
    let generated = capsule_icd::doc::document(&icd, "capsule.dbc", "capsule.binding.toml", true)
        .expect("renders");
    if doc != generated {
        let first = doc
            .lines()
            .zip(generated.lines())
            .position(|(x, y)| x != y)
            .map_or(doc.lines().count().min(generated.lines().count()), |i| i);
        panic!(
            "fixtures/icd/README.md differs from `hil icd doc` at line {}:\n  file:      {:?}\n  generated: {:?}\nregenerate it: cargo run --bin hil -- icd doc > fixtures/icd/README.md",
            first + 1,
            doc.lines().nth(first),
            generated.lines().nth(first)
        );
    }
}

#[test]
fn the_second_icds_document_is_its_own() {
    let icd = capsule_icd::Icd::load(
        "capsule-b.dbc",
        include_str!("../../../fixtures/icd/variant/capsule-b.dbc"),
        "capsule-b.binding.toml",
        include_str!("../../../fixtures/icd/variant/capsule-b.binding.toml"),
    )
    .expect("ICD B");
    let doc = capsule_icd::doc::document(&icd, "capsule-b.dbc", "capsule-b.binding.toml", false)
        .expect("renders");
    // Its names, byte order, serial formats and identifiers; none of the shipped ICD's.
    for want in [
        "node `OBC`",
        "All signals are **big-endian (Motorola)**",
        "## 2. GNSS receiver: u-blox UBX NAV-PVT over serial",
        "| 35 | 4 | checksum | CRC-32/ISO-HDLC over bytes 0 to 34, big-endian |",
        "**0xCBF43926**",
        "`SNS_BARO_STATUS`: ok 1",
    ] {
        assert!(doc.contains(want), "ICD B's document lacks `{want}`");
    }
    // (The DBC's own comments say which shipped message each one was; the document's
    // text and tables name none.)
    for shipped_name in [
        "`FC_Status`",
        "| SIM_Tick |",
        "`FC_Mode`",
        "golden.toml",
        "A5 5A",
        "$GPGGA",
    ] {
        assert!(
            !doc.contains(shipped_name),
            "ICD B's document names `{shipped_name}`"
        );
    }
    // The lockstep examples are the DBC's encoding of those values (the DBC's own
    // codec, by message and signal name, not through the binding).
    let b = &icd.binding.lockstep;
    let tick = icd
        .db
        .encode(
            &b.tick_time.message().name,
            &[
                (b.tick_time.def().name.as_str(), 10_000.0),
                (b.tick_step.def().name.as_str(), 1.0),
            ],
        )
        .expect("tick encodes");
    let row = format!(
        "| {} | {:03X} | `{}` | t = 10000 us, step 1 |",
        b.tick_time.message().name,
        tick.id,
        tick.payload()
            .iter()
            .map(|x| format!("{x:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(doc.contains(&row), "ICD B's document lacks `{row}`");
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
