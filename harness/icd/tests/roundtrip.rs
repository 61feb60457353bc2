//! Round trips for every message type, and hostile input for every decoder.

use capsule_icd::can::{CanDb, CanFrame, DbcError};
use capsule_icd::imu::{DATAGRAM_LEN, ImuDatagram, ImuStreamDecoder};
use capsule_icd::nmea::{self, GnssEpoch, NmeaStreamDecoder, Sentence};
use proptest::prelude::*;

fn db() -> CanDb {
    CanDb::from_dbc(
        "capsule.dbc",
        include_str!("../../../fixtures/icd/capsule.dbc"),
    )
    .expect("DBC loads")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Every message: random raw values within each signal's range survive encode and
    /// decode exactly.
    #[test]
    fn every_can_message_round_trips(msg_idx in 0usize..64, seeds in proptest::collection::vec(0.0f64..1.0, 16)) {
        let db = db();
        let msgs: Vec<_> = db.messages().collect();
        let m = msgs[msg_idx % msgs.len()];
        let vals: Vec<(&str, f64)> = m.signals.iter().zip(seeds.iter()).map(|(s, u)| {
            // A value on the raw grid inside [min, max].
            let lo = ((s.min - s.offset) / s.factor).ceil();
            let hi = ((s.max - s.offset) / s.factor).floor();
            let raw = (lo + (hi - lo) * u).round();
            (s.name.as_str(), raw * s.factor + s.offset)
        }).collect();
        let f = m.encode(&vals).expect("in range encodes");
        let back = m.decode(&f).expect("decodes");
        for ((n, want), (n2, got)) in vals.iter().zip(back.iter()) {
            prop_assert_eq!(n, n2);
            prop_assert!((want - got).abs() <= 1e-9 * want.abs().max(1.0), "{}.{}: {} vs {}", m.name, n, want, got);
        }
    }

    /// Any 8 data bytes decode without panicking for every known identifier.
    #[test]
    fn any_payload_decodes(id_idx in 0usize..64, data in proptest::array::uniform8(any::<u8>())) {
        let db = db();
        let ids: Vec<u32> = db.messages().map(|m| m.id).collect();
        let f = CanFrame::new(ids[id_idx % ids.len()], &data);
        let (_, vals) = db.decode(&f).expect("decodes");
        prop_assert!(vals.iter().all(|(_, v)| v.is_finite()));
    }

    /// IMU datagrams round trip within one LSB.
    #[test]
    fn imu_round_trips(counter in any::<u16>(), status in any::<u16>(), time_us in any::<u32>(),
                       rate in proptest::array::uniform3(-2000.0f64..2000.0),
                       acc in proptest::array::uniform3(-20000.0f64..20000.0),
                       temp in -300.0f64..300.0) {
        let d = ImuDatagram { counter, status, time_us, rate_rad_s: rate, specific_force_m_s2: acc, temperature_c: temp };
        let back = ImuDatagram::decode(&d.encode()).expect("decodes");
        prop_assert_eq!(back.counter, counter);
        prop_assert_eq!(back.time_us, time_us);
        for k in 0..3 {
            prop_assert!((back.rate_rad_s[k] - rate[k]).abs() <= 0.5e-6 + 1e-12);
            prop_assert!((back.specific_force_m_s2[k] - acc[k]).abs() <= 0.5e-5 + 1e-9);
        }
        prop_assert!((back.temperature_c - temp).abs() <= 0.005 + 1e-9);
    }

    /// Every datagram is recovered through garbage (without sync bytes) and arbitrary
    /// chunking; the garbage is counted; the buffer stays bounded.
    #[test]
    fn imu_stream_resyncs_through_garbage(n in 1usize..20, garbage in proptest::collection::vec(proptest::collection::vec(0u8..0xA0, 0..60), 20), chunk in 1usize..97) {
        let mut wire = Vec::new();
        let mut total_garbage = 0;
        for (k, g) in garbage.iter().enumerate().take(n) {
            wire.extend_from_slice(g);
            total_garbage += g.len();
            let d = ImuDatagram { counter: k as u16, status: 0, time_us: 0, rate_rad_s: [0.1; 3], specific_force_m_s2: [1.0; 3], temperature_c: 20.0 };
            wire.extend_from_slice(&d.encode());
        }
        let mut dec = ImuStreamDecoder::new(256);
        let mut out = Vec::new();
        for c in wire.chunks(chunk) {
            dec.push(c, &mut out);
            prop_assert!(dec.buffered() <= 256);
        }
        prop_assert_eq!(out.len(), n);
        prop_assert!(out.iter().enumerate().all(|(k, d)| d.counter == k as u16));
        prop_assert_eq!(dec.stats.bytes_discarded, total_garbage as u64);
    }

    /// Large pushes (bigger than the buffer) lose nothing.
    #[test]
    fn imu_large_pushes_lose_nothing(n in 1usize..300) {
        let mut wire = Vec::new();
        for k in 0..n {
            let d = ImuDatagram { counter: k as u16, status: 0, time_us: 0, rate_rad_s: [0.0; 3], specific_force_m_s2: [0.0; 3], temperature_c: 0.0 };
            wire.extend_from_slice(&d.encode());
        }
        let mut dec = ImuStreamDecoder::new(100);
        let mut out = Vec::new();
        dec.push(&wire[..wire.len() / 3], &mut out);
        dec.push(&wire[wire.len() / 3..], &mut out);
        prop_assert_eq!(out.len(), n);
        prop_assert_eq!(dec.stats.overflow_bytes, 0);
    }

    /// Random bytes never panic the IMU decoder and never grow its buffer.
    #[test]
    fn imu_decoder_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut dec = ImuStreamDecoder::new(512);
        let mut out = Vec::new();
        dec.push(&bytes, &mut out);
        prop_assert!(dec.buffered() <= 512);
    }

    /// Any single bit flip in a datagram is detected (CRC-16 detects all 1-bit errors)
    /// or breaks the framing; either way it is counted and not delivered.
    #[test]
    fn imu_bit_flip_is_rejected(bit in 16usize..(DATAGRAM_LEN * 8)) {
        let d = ImuDatagram { counter: 7, status: 0, time_us: 99, rate_rad_s: [0.1, 0.2, 0.3], specific_force_m_s2: [1.0, 2.0, 3.0], temperature_c: 25.0 };
        let mut b = d.encode();
        b[bit / 8] ^= 1 << (bit % 8);
        let mut dec = ImuStreamDecoder::default();
        let mut out = Vec::new();
        dec.push(&b, &mut out);
        prop_assert!(out.is_empty());
        prop_assert!(dec.stats.checksum_errors + dec.stats.framing_errors >= 1 || dec.buffered() > 0);
    }

    /// NMEA epochs round trip through text.
    #[test]
    fn nmea_round_trips(t in 0.0f64..86399.0, lat in -89.9f64..89.9, lon in -179.9f64..179.9, alt in -100.0f64..20000.0, v in 0.0f64..300.0, c in 0.0f64..359.9) {
        let e = GnssEpoch { utc_time_s: t, date: (1, 2, 2026), fix: true, latitude_deg: lat, longitude_deg: lon, altitude_msl_m: alt, geoid_separation_m: 20.0, speed_m_s: v, course_deg: c, satellites: 8, dop: (1.5, 0.8, 1.2), prns: vec![1, 2, 3], ..GnssEpoch::default() };
        match nmea::parse(&e.gga()).expect("GGA parses") {
            Sentence::Gga { latitude_deg: Some(la), longitude_deg: Some(lo), altitude_msl_m: Some(h), utc_time_s: Some(tt), .. } => {
                prop_assert!((la - lat).abs() < 1e-7 && (lo - lon).abs() < 1e-7);
                prop_assert!((h - alt).abs() <= 0.05 + 1e-9);
                prop_assert!((tt - t).abs() <= 0.005 + 1e-9 || (tt - t).abs() > 86_399.0);
            }
            other => prop_assert!(false, "GGA decoded as {:?}", other),
        }
        match nmea::parse(&e.vtg()).expect("VTG parses") {
            Sentence::Vtg { speed_m_s: Some(s), .. } => prop_assert!((s - v).abs() < 0.01 / 3.6 + 1e-9),
            other => prop_assert!(false, "VTG decoded as {:?}", other),
        }
        prop_assert!(e.burst().lines().all(|l| l.len() + 2 <= nmea::MAX_SENTENCE_LEN));
    }

    /// Random bytes never panic the NMEA decoder; sentences after garbage still decode.
    #[test]
    fn nmea_decoder_survives_and_resyncs(garbage in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let e = GnssEpoch { utc_time_s: 100.0, date: (1, 1, 2026), fix: true, latitude_deg: 1.0, longitude_deg: 2.0, altitude_msl_m: 3.0, geoid_separation_m: 0.0, speed_m_s: 1.0, course_deg: 10.0, satellites: 5, dop: (1.0, 1.0, 1.0), prns: vec![1], ..GnssEpoch::default() };
        let mut dec = NmeaStreamDecoder::new();
        let mut out = Vec::new();
        dec.push(&garbage, &mut out);
        dec.push(b"\r\n", &mut out);
        let before = out.len();
        dec.push(e.burst().as_bytes(), &mut out);
        prop_assert_eq!(out.len() - before, 4);
    }
}

#[test]
fn nmea_checksum_error_is_counted() {
    let mut dec = NmeaStreamDecoder::new();
    let mut out = Vec::new();
    dec.push(
        b"$GPVTG,,T,,M,,N,,K,N*00\r\n$GPVTG,,T,,M,,N,,K,N*",
        &mut out,
    );
    let good = nmea::frame("GPVTG,,T,,M,,N,,K,N");
    dec.push(&good.as_bytes()[good.len() - 4..], &mut out);
    assert_eq!(dec.stats.checksum_errors, 1);
    assert_eq!(out.len(), 1, "the second sentence completes across pushes");
}

#[test]
fn motorola_signal_matches_hand_computed_bytes() {
    // A big-endian 12-bit signal starting (MSB) at bit 7 of byte 0: raw 0xABC occupies
    // byte0 = 0xAB and the high nibble of byte1 = 0xC0 (DBC sawtooth numbering).
    let text = "VERSION \"\"\n\nNS_ :\n\nBS_:\n\nBU_: A\n\nBO_ 291 M: 8 A\n SG_ S : 7|12@0+ (1,0) [0|4095] \"\" A\n\n";
    let db = CanDb::from_dbc("m.dbc", text).expect("loads");
    let f = db.encode("M", &[("S", f64::from(0xABC))]).expect("encodes");
    assert_eq!(&f.data[..2], &[0xAB, 0xC0]);
    let (_, v) = db.decode(&f).expect("decodes");
    assert_eq!(v[0].1, f64::from(0xABC));
}

#[test]
fn dbc_errors_name_file_and_line() {
    let bad_syntax = "VERSION \"\"\n\nNS_ :\n\nBS_:\n\nBU_: A\n\nBO_ 291 M: 8 A\n SG_ S : 7|12@0+ (1,0 [0|4095] \"\" A\n";
    match CanDb::from_dbc("bad.dbc", bad_syntax) {
        Err(DbcError::Syntax { file, line, .. }) => {
            assert_eq!(file, "bad.dbc");
            assert_eq!(line, 10);
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let outside = "VERSION \"\"\n\nNS_ :\n\nBS_:\n\nBU_: A\n\nBO_ 291 M: 2 A\n SG_ S : 8|16@1+ (1,0) [0|65535] \"\" A\n\n";
    let e = CanDb::from_dbc("o.dbc", outside).expect_err("does not fit");
    assert!(
        matches!(e, DbcError::SignalOutOfFrame { line: 10, .. }),
        "{e}"
    );
    let overlap = "VERSION \"\"\n\nNS_ :\n\nBS_:\n\nBU_: A\n\nBO_ 291 M: 8 A\n SG_ S : 0|8@1+ (1,0) [0|255] \"\" A\n SG_ T : 4|8@1+ (1,0) [0|255] \"\" A\n\n";
    let e = CanDb::from_dbc("v.dbc", overlap).expect_err("overlap");
    assert!(e.to_string().contains("signals `S` and `T` overlap"), "{e}");
}

#[test]
fn out_of_range_value_is_refused() {
    let db = db();
    let e = db
        .encode("Baro_Data", &[("Baro_Pressure", 130_000.0)])
        .expect_err("out of range");
    assert!(e.to_string().contains("Baro_Pressure"), "{e}");
    assert!(db.encode("Baro_Data", &[("Nope", 1.0)]).is_err());
}

#[test]
fn shipped_dbc_says_500_kbit_and_marks_simulation_messages() {
    let db = db();
    assert_eq!(db.bitrate_bps, 500_000);
    let sim: Vec<_> = db
        .messages()
        .filter(|m| m.simulation_only)
        .map(|m| m.name.clone())
        .collect();
    assert_eq!(
        sim,
        vec![
            "SIM_Tick".to_string(),
            "SIM_Ack".to_string(),
            "SIM_Sync".to_string(),
            "SIM_Reset".to_string()
        ]
    );
    assert_eq!(
        db.by_name("FC_Status").and_then(|m| m.cycle_time_ms),
        Some(100)
    );
    assert!(
        db.messages().all(|m| m.id <= 0x7FF),
        "classic 11-bit identifiers"
    );
}

proptest! {
    /// Virtual-bus records round trip; invalid identifiers and lengths are refused.
    #[test]
    fn vbus_records_round_trip(id in 0u32..0x2000_0000, ext in any::<bool>(), rtr in any::<bool>(), data in proptest::array::uniform8(any::<u8>()), dlc in 0u8..=8, t in any::<u64>()) {
        use capsule_icd::vbus_wire::{BusItem, decode, decode_delivery, encode, encode_delivery};
        let f = CanFrame { id: if ext { id } else { id & 0x7FF }, extended: ext, rtr, dlc, data };
        prop_assert_eq!(decode(&encode(&BusItem::Frame(f))), Some(BusItem::Frame(f)));
        prop_assert_eq!(decode_delivery(&encode_delivery(t, &BusItem::ErrorFrame)), Some((t, BusItem::ErrorFrame)));
        let mut bad = encode(&BusItem::Frame(f));
        bad[5] = 9;
        prop_assert_eq!(decode(&bad), None);
    }
}

/// The encoder refuses a frame with a signal it was not given (as cantools does),
/// unless the DBC gives that signal a start value (`GenSigStartValue`, raw), which is
/// then sent. Found with cantools: `FC_BaroValid` was 0 in every `FC_Status` because
/// the encoder silently filled it.
#[test]
fn a_missing_signal_is_refused_unless_the_dbc_gives_a_start_value() {
    let db = db();
    let e = db
        .encode("Baro_Data", &[("Baro_Pressure", 1000.0)])
        .expect_err("missing signals");
    assert!(
        e.to_string()
            .contains("no value given for signal `Baro_Temperature`"),
        "{e}"
    );
    let text = r#"VERSION ""

NS_ :

BS_:

BU_: A B

BO_ 256 M: 2 A
 SG_ Given : 0|8@1+ (1,0) [0|255] "" B
 SG_ Started : 8|8@1+ (0.5,0) [0|127.5] "" B

BA_DEF_ SG_  "GenSigStartValue" INT 0 255;
BA_DEF_DEF_  "GenSigStartValue" 0;
BA_ "GenSigStartValue" SG_ 256 Started 9;
"#;
    let db2 = CanDb::from_dbc("start.dbc", text).expect("dbc");
    let f = db2
        .encode("M", &[("Given", 3.0)])
        .expect("start value fills");
    assert_eq!(f.payload(), &[3, 9]);
    let v = db2.decode(&f).expect("decodes").1;
    assert_eq!(v, vec![("Given", 3.0), ("Started", 4.5)]);
}
