//! Serial links over pseudo-terminal pairs: lossless transfer, peer loss reported as
//! a typed error naming the link, clear errors on open.

use capsule_icd::imu::{ImuDatagram, ImuStreamDecoder};
use capsule_links::address::{Address, SerialSettings};
use capsule_links::{DecodeTally, LinkError, Packet, serial};
use std::time::Duration;

const S8N1: SerialSettings = SerialSettings {
    baud: 921_600,
    data_bits: 8,
    parity: 'N',
    stop_bits: 1,
};

/// The k-th datagram of a test stream (counter and time from k).
fn datagram(k: u16) -> ImuDatagram {
    ImuDatagram {
        counter: k,
        status: 0,
        time_us: u32::from(k) * 1000,
        rate_rad_s: [0.01, 0.02, 0.03],
        specific_force_m_s2: [0.0, 0.0, 9.8],
        temperature_c: 25.0,
    }
}

#[tokio::test]
async fn imu_datagrams_cross_a_pty_without_loss() {
    let (mut a, slave) = serial::pty_pair("imu").expect("pty");
    let b = serial::open("imu-dev", &slave, S8N1).expect("open slave");
    let n = 2000u16;
    let sender = tokio::spawn(async move {
        for k in 0..n {
            b.send(Packet::Bytes(datagram(k).encode().to_vec()))
                .await
                .expect("send");
        }
        b
    });
    let mut dec = ImuStreamDecoder::default();
    let mut out = Vec::new();
    while out.len() < usize::from(n) {
        let r = match tokio::time::timeout(Duration::from_secs(5), a.recv()).await {
            Ok(r) => r.expect("link up"),
            Err(_) => panic!(
                "stalled: {} datagrams, stats {:?}, link {:?}",
                out.len(),
                dec.stats,
                a.stats()
            ),
        };
        if let Packet::Bytes(b) = r.packet {
            dec.push(&b, &mut out);
        }
    }
    assert_eq!(out.len(), usize::from(n));
    assert!(
        out.iter()
            .enumerate()
            .all(|(k, d)| usize::from(d.counter) == k),
        "in order, none lost"
    );
    assert_eq!(
        dec.stats.checksum_errors + dec.stats.framing_errors + dec.stats.bytes_discarded,
        0
    );
    let b = sender.await.expect("sender");
    assert_eq!(b.stats().tx_bytes, u64::from(n) * 40);
    assert_eq!(a.stats().rx_bytes, u64::from(n) * 40);
}

/// CRC and framing errors found by the decoder reading a serial link land in that
/// link's counters: every 10th datagram has a payload byte flipped (CRC mismatch), every
/// 25th is preceded by a header with a wrong message id (framing error).
#[tokio::test]
async fn decoder_errors_are_counted_on_the_serial_link() {
    let (mut a, slave) = serial::pty_pair("imu").expect("pty");
    let b = serial::open("imu-dev", &slave, S8N1).expect("open slave");
    let n = 300u16;
    let (mut corrupted, mut fake_headers) = (0u64, 0u64);
    let mut stream = Vec::new();
    for k in 0..n {
        let mut bytes = datagram(k).encode().to_vec();
        if k % 25 == 0 {
            stream.extend_from_slice(&[bytes[0], bytes[1], bytes[2] ^ 0xff, bytes[3]]);
            fake_headers += 1;
        }
        if k % 10 == 5 {
            bytes[12] ^= 0x01;
            corrupted += 1;
        }
        stream.extend_from_slice(&bytes);
    }
    let total = stream.len();
    for chunk in stream.chunks(512) {
        b.send(Packet::Bytes(chunk.to_vec())).await.expect("send");
    }
    let mut dec = ImuStreamDecoder::default();
    let mut tally = DecodeTally::default();
    let mut out = Vec::new();
    let mut got = 0usize;
    while got < total {
        let r = tokio::time::timeout(Duration::from_secs(5), a.recv())
            .await
            .expect("bytes arrive")
            .expect("link up");
        if let Packet::Bytes(bytes) = r.packet {
            got += bytes.len();
            dec.push(&bytes, &mut out);
            tally.report(&a, &dec.stats);
        }
    }
    assert_eq!(
        out.len() as u64,
        u64::from(n) - corrupted,
        "every intact datagram"
    );
    assert_eq!(dec.stats.checksum_errors, corrupted);
    assert!(dec.stats.framing_errors >= fake_headers, "{:?}", dec.stats);
    let link = a.stats();
    assert_eq!(link.crc_errors, dec.stats.checksum_errors, "{link:?}");
    assert_eq!(link.framing_errors, dec.stats.framing_errors, "{link:?}");
    assert_eq!(link.rx_bytes, total as u64);
}

#[tokio::test]
async fn peer_closing_the_pty_closes_the_link_with_its_name() {
    let (mut a, slave) = serial::pty_pair("gnss").expect("pty");
    let b = serial::open("gnss-dev", &slave, S8N1).expect("open slave");
    b.send(Packet::Bytes(b"$GPGGA\r\n".to_vec()))
        .await
        .expect("send");
    let first = tokio::time::timeout(Duration::from_secs(5), a.recv())
        .await
        .expect("first bytes")
        .expect("up");
    assert!(matches!(first.packet, Packet::Bytes(_)));
    drop(b);
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match a.recv().await {
                Ok(_) => continue,
                Err(e) => return e,
            }
        }
    })
    .await
    .expect("closure reported within 5 s, not a hang");
    match r {
        LinkError::Closed { link, .. } => assert_eq!(link, "gnss"),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(matches!(
        a.try_send(Packet::Bytes(vec![1])),
        Err(LinkError::Closed { .. })
    ));
}

#[tokio::test]
async fn opening_a_missing_port_names_the_link_and_hints() {
    let e = serial::open("imu", "/dev/does-not-exist-ttyUSB9", S8N1).expect_err("no such port");
    let msg = e.to_string();
    assert!(
        msg.contains("link `imu`") && msg.contains("/dev/does-not-exist-ttyUSB9"),
        "{msg}"
    );
}

#[test]
fn addresses_parse_and_bad_ones_explain() {
    assert_eq!(
        Address::parse("serial:/dev/ttyUSB0@115200,7E2").expect("parses"),
        Address::Serial {
            path: "/dev/ttyUSB0".into(),
            settings: SerialSettings {
                baud: 115_200,
                data_bits: 7,
                parity: 'E',
                stop_bits: 2
            }
        }
    );
    assert!(matches!(
        Address::parse("slcan:/dev/ttyACM0@1000000").expect("parses"),
        Address::Slcan {
            can_bitrate: 500_000,
            ..
        }
    ));
    assert!(matches!(
        Address::parse("socketcan:can0").expect("parses"),
        Address::SocketCan { .. }
    ));
    for (bad, why) in [
        ("serial:/dev/ttyUSB0", "PATH@BAUD"),
        ("serial:/dev/ttyUSB0@fast", "not a number"),
        ("serial:/dev/ttyUSB0@9600,9X1", "line format"),
        ("slcan:/dev/ttyACM0@115200,123456", "not an SLCAN rate"),
        ("usb:thing", "unknown scheme"),
        ("socketcan:", "interface name"),
    ] {
        let e = Address::parse(bad).expect_err(bad).to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}
