//! Checksums, pinned by their catalogue names (Greg Cook's CRC RevEng catalogue).

/// CRC-16/IBM-3740 (also known as CRC-16/CCITT-FALSE): width 16, poly 0x1021,
/// init 0xFFFF, no input/output reflection, xorout 0x0000, check("123456789") = 0x29B1.
pub fn crc16_ibm_3740(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// NMEA 0183 checksum: XOR of every byte between `$` and `*`.
pub fn nmea_checksum(body: &[u8]) -> u8 {
    body.iter().fold(0u8, |a, b| a ^ b)
}
