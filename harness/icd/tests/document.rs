//! The human-readable ICD (`fixtures/icd/README.md`) matches the DBC: every message
//! heading and every signal row agrees with what the codec loads.

use capsule_icd::can::{ByteOrder, CanDb};

#[test]
fn readme_tables_match_the_dbc() {
    let doc = include_str!("../../../fixtures/icd/README.md");
    let db = CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("DBC loads");
    let mut rows = 0;
    for m in db.messages() {
        let heading = format!("#### 0x{:03X} {}", m.id, m.name);
        assert!(doc.contains(&heading), "README lacks `{heading}`");
        for s in &m.signals {
            assert_eq!(
                s.byte_order,
                ByteOrder::LittleEndian,
                "the README says all signals are Intel"
            );
            let line = doc
                .lines()
                .find(|l| l.starts_with(&format!("| {} |", s.name)))
                .unwrap_or_else(|| panic!("README lacks a row for {}", s.name));
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let num = |i: usize| {
                cells[i]
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("{}: cell {i} `{}`", s.name, cells[i]))
            };
            assert_eq!(num(1) as u32, s.start_bit, "{} start bit", s.name);
            assert_eq!(num(2) as u32, s.size, "{} size", s.name);
            assert_eq!(cells[3] == "signed", s.signed, "{} sign", s.name);
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
            assert!(close(num(4), s.factor), "{} factor", s.name);
            assert!(close(num(5), s.offset), "{} offset", s.name);
            assert!(close(num(6), s.min), "{} min", s.name);
            assert!(close(num(7), s.max), "{} max", s.name);
            assert_eq!(cells[8], s.unit, "{} unit", s.name);
            rows += 1;
        }
    }
    assert!(rows >= 50, "{rows} signal rows checked");
}
