//! Replays the hostile-input corpus (`fixtures/icd/corpus/`) through the decoders.

use capsule_icd::imu::{DATAGRAM_LEN, ImuStreamDecoder};
use capsule_icd::nmea::NmeaStreamDecoder;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/icd/corpus");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin" || x == "txt"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).expect("read")))
        .collect();
    v.sort();
    assert!(v.len() >= 8, "corpus has {} files", v.len());
    v
}

#[test]
fn imu_decoder_survives_the_corpus() {
    for (name, bytes) in corpus() {
        for chunk in [1usize, 7, 40, 4096] {
            let mut dec = ImuStreamDecoder::new(256);
            let mut out = Vec::new();
            for c in bytes.chunks(chunk) {
                dec.push(c, &mut out);
                assert!(dec.buffered() <= 256, "{name}");
            }
            let s = dec.stats;
            // Everything is accounted for: decoded, discarded, or still buffered.
            assert_eq!(
                s.frames_ok * DATAGRAM_LEN as u64
                    + s.bytes_discarded
                    + dec.buffered() as u64
                    + s.overflow_bytes,
                bytes.len() as u64,
                "{name} chunk {chunk}: {s:?}"
            );
            if name.ends_with("datagrams-with-bitflips.bin") {
                assert!(
                    s.checksum_errors + s.framing_errors > 0,
                    "{name}: flips not counted"
                );
            }
        }
    }
}

#[test]
fn nmea_decoder_survives_the_corpus() {
    for (name, bytes) in corpus() {
        let mut dec = NmeaStreamDecoder::new();
        let mut out = Vec::new();
        dec.push(&bytes, &mut out);
        if name.ends_with("nmea-overlong.txt") {
            assert!(dec.stats.framing_errors >= 20, "{name}: {:?}", dec.stats);
            assert!(out.is_empty());
        }
    }
}
