//! Replays the hostile-input corpus through the SLCAN line splitter and frame parser.

use capsule_links::slcan::{Line, LineSplitter, MAX_LINE, parse_frame};

#[test]
fn slcan_parsing_survives_the_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/icd/corpus");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("corpus") {
        let p = e.expect("entry").path();
        if !p.extension().is_some_and(|x| x == "bin" || x == "txt") {
            continue;
        }
        let bytes = std::fs::read(&p).expect("read");
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.push(&bytes, &mut out);
        for l in &out {
            if let Line::Cr(l) = l {
                assert!(l.len() <= MAX_LINE + 2);
                let _ = parse_frame(l);
            }
        }
        if p.ends_with("slcan-garbage.txt") {
            assert!(
                out.iter().any(|l| matches!(l, Line::Overlong)),
                "over-long line not flagged"
            );
            // Every frame-looking line in the garbage is malformed: none may parse.
            let frames = out
                .iter()
                .filter(|l| matches!(l, Line::Cr(l) if parse_frame(l).is_some()))
                .count();
            assert_eq!(frames, 0, "garbage parsed as a frame");
        }
        n += 1;
    }
    assert!(n >= 8);
}
