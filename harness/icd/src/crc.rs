//! Checksums of the serial lines, pinned by their catalogue names (Greg Cook's CRC
//! RevEng catalogue, as the `crc` crate implements them), plus the two simple sums
//! receivers use: the NMEA 0183 XOR and the UBX 8-bit Fletcher.

use crc::{
    CRC_8_SMBUS, CRC_16_IBM_3740, CRC_16_KERMIT, CRC_16_MODBUS, CRC_16_XMODEM, CRC_32_ISCSI,
    CRC_32_ISO_HDLC, Crc,
};

const IBM_3740: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// CRC-16/IBM-3740 (also known as CRC-16/CCITT-FALSE): width 16, poly 0x1021,
/// init 0xFFFF, no input/output reflection, xorout 0x0000, check("123456789") = 0x29B1.
pub fn crc16_ibm_3740(data: &[u8]) -> u16 {
    IBM_3740.checksum(data)
}

/// NMEA 0183 checksum: XOR of every byte between `$` and `*`.
pub fn nmea_checksum(body: &[u8]) -> u8 {
    body.iter().fold(0u8, |a, b| a ^ b)
}

/// The UBX checksum (u-blox protocol specification, "UBX checksum"): the 8-bit
/// Fletcher algorithm (RFC 1145) over class, id, length and payload; `(CK_A, CK_B)`.
pub fn ubx_checksum(data: &[u8]) -> (u8, u8) {
    data.iter().fold((0u8, 0u8), |(a, b), &x| {
        let a = a.wrapping_add(x);
        (a, b.wrapping_add(a))
    })
}

/// A checksum a binary serial frame may carry, by catalogue name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChecksumKind {
    /// CRC-8/SMBUS.
    #[serde(rename = "crc8-smbus")]
    Crc8Smbus,
    /// CRC-16/IBM-3740 (CCITT-FALSE).
    #[serde(rename = "crc16-ibm-3740")]
    Crc16Ibm3740,
    /// CRC-16/XMODEM.
    #[serde(rename = "crc16-xmodem")]
    Crc16Xmodem,
    /// CRC-16/KERMIT.
    #[serde(rename = "crc16-kermit")]
    Crc16Kermit,
    /// CRC-16/MODBUS.
    #[serde(rename = "crc16-modbus")]
    Crc16Modbus,
    /// CRC-32/ISO-HDLC (the zlib and Ethernet CRC-32).
    #[serde(rename = "crc32-iso-hdlc")]
    Crc32IsoHdlc,
    /// CRC-32/ISCSI (CRC-32C, Castagnoli).
    #[serde(rename = "crc32-iscsi")]
    Crc32Iscsi,
    /// 8-bit Fletcher as UBX uses it: CK_A then CK_B (byte order does not apply).
    #[serde(rename = "fletcher8")]
    Fletcher8,
    /// XOR of the covered bytes.
    #[serde(rename = "xor8")]
    Xor8,
}

impl ChecksumKind {
    /// Every kind, for error messages and documents.
    pub const ALL: [ChecksumKind; 9] = [
        ChecksumKind::Crc8Smbus,
        ChecksumKind::Crc16Ibm3740,
        ChecksumKind::Crc16Xmodem,
        ChecksumKind::Crc16Kermit,
        ChecksumKind::Crc16Modbus,
        ChecksumKind::Crc32IsoHdlc,
        ChecksumKind::Crc32Iscsi,
        ChecksumKind::Fletcher8,
        ChecksumKind::Xor8,
    ];

    /// The catalogue name as written in a binding.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumKind::Crc8Smbus => "crc8-smbus",
            ChecksumKind::Crc16Ibm3740 => "crc16-ibm-3740",
            ChecksumKind::Crc16Xmodem => "crc16-xmodem",
            ChecksumKind::Crc16Kermit => "crc16-kermit",
            ChecksumKind::Crc16Modbus => "crc16-modbus",
            ChecksumKind::Crc32IsoHdlc => "crc32-iso-hdlc",
            ChecksumKind::Crc32Iscsi => "crc32-iscsi",
            ChecksumKind::Fletcher8 => "fletcher8",
            ChecksumKind::Xor8 => "xor8",
        }
    }

    /// The name people know it by (the catalogue's, for the CRCs).
    pub fn catalogue_name(self) -> &'static str {
        match self {
            ChecksumKind::Crc8Smbus => "CRC-8/SMBUS",
            ChecksumKind::Crc16Ibm3740 => "CRC-16/IBM-3740",
            ChecksumKind::Crc16Xmodem => "CRC-16/XMODEM",
            ChecksumKind::Crc16Kermit => "CRC-16/KERMIT",
            ChecksumKind::Crc16Modbus => "CRC-16/MODBUS",
            ChecksumKind::Crc32IsoHdlc => "CRC-32/ISO-HDLC",
            ChecksumKind::Crc32Iscsi => "CRC-32/ISCSI",
            ChecksumKind::Fletcher8 => "8-bit Fletcher (CK_A, CK_B)",
            ChecksumKind::Xor8 => "XOR of the bytes",
        }
    }

    /// Bytes the checksum takes in the frame.
    pub fn size(self) -> usize {
        match self {
            ChecksumKind::Crc8Smbus | ChecksumKind::Xor8 => 1,
            ChecksumKind::Crc16Ibm3740
            | ChecksumKind::Crc16Xmodem
            | ChecksumKind::Crc16Kermit
            | ChecksumKind::Crc16Modbus
            | ChecksumKind::Fletcher8 => 2,
            ChecksumKind::Crc32IsoHdlc | ChecksumKind::Crc32Iscsi => 4,
        }
    }

    /// The checksum of `data` as a number (Fletcher: `CK_A << 8 | CK_B`, so that
    /// big-endian order puts CK_A first).
    pub fn compute(self, data: &[u8]) -> u32 {
        match self {
            ChecksumKind::Crc8Smbus => u32::from(Crc::<u8>::new(&CRC_8_SMBUS).checksum(data)),
            ChecksumKind::Crc16Ibm3740 => u32::from(IBM_3740.checksum(data)),
            ChecksumKind::Crc16Xmodem => u32::from(Crc::<u16>::new(&CRC_16_XMODEM).checksum(data)),
            ChecksumKind::Crc16Kermit => u32::from(Crc::<u16>::new(&CRC_16_KERMIT).checksum(data)),
            ChecksumKind::Crc16Modbus => u32::from(Crc::<u16>::new(&CRC_16_MODBUS).checksum(data)),
            ChecksumKind::Crc32IsoHdlc => Crc::<u32>::new(&CRC_32_ISO_HDLC).checksum(data),
            ChecksumKind::Crc32Iscsi => Crc::<u32>::new(&CRC_32_ISCSI).checksum(data),
            ChecksumKind::Fletcher8 => {
                let (a, b) = ubx_checksum(data);
                u32::from(a) << 8 | u32::from(b)
            }
            ChecksumKind::Xor8 => u32::from(nmea_checksum(data)),
        }
    }

    /// The CRC's catalogue parameters (width, polynomial, initial value, input and
    /// output reflection, final XOR); `None` for the Fletcher and XOR sums.
    pub fn crc_parameters(self) -> Option<(u8, u64, u64, bool, bool, u64)> {
        fn p<W: crc::Width + Into<u64> + Copy>(
            a: &crc::Algorithm<W>,
        ) -> (u8, u64, u64, bool, bool, u64) {
            (
                a.width,
                a.poly.into(),
                a.init.into(),
                a.refin,
                a.refout,
                a.xorout.into(),
            )
        }
        match self {
            ChecksumKind::Crc8Smbus => Some(p(&CRC_8_SMBUS)),
            ChecksumKind::Crc16Ibm3740 => Some(p(&CRC_16_IBM_3740)),
            ChecksumKind::Crc16Xmodem => Some(p(&CRC_16_XMODEM)),
            ChecksumKind::Crc16Kermit => Some(p(&CRC_16_KERMIT)),
            ChecksumKind::Crc16Modbus => Some(p(&CRC_16_MODBUS)),
            ChecksumKind::Crc32IsoHdlc => Some(p(&CRC_32_ISO_HDLC)),
            ChecksumKind::Crc32Iscsi => Some(p(&CRC_32_ISCSI)),
            ChecksumKind::Fletcher8 | ChecksumKind::Xor8 => None,
        }
    }

    /// Whether the checksum has a byte order (Fletcher's CK_A, CK_B order is fixed).
    pub fn has_byte_order(self) -> bool {
        self.size() > 1 && self != ChecksumKind::Fletcher8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values_of_the_catalogue() {
        // The catalogue's check values: the checksum of the ASCII string "123456789".
        let c = b"123456789";
        assert_eq!(ChecksumKind::Crc8Smbus.compute(c), 0xF4);
        assert_eq!(ChecksumKind::Crc16Ibm3740.compute(c), 0x29B1);
        assert_eq!(ChecksumKind::Crc16Xmodem.compute(c), 0x31C3);
        assert_eq!(ChecksumKind::Crc16Kermit.compute(c), 0x2189);
        assert_eq!(ChecksumKind::Crc16Modbus.compute(c), 0x4B37);
        assert_eq!(ChecksumKind::Crc32IsoHdlc.compute(c), 0xCBF4_3926);
        assert_eq!(ChecksumKind::Crc32Iscsi.compute(c), 0xE306_9283);
        assert_eq!(ChecksumKind::Xor8.compute(c), 0x31);
        // UBX-ACK-ACK of a CFG-MSG, as u-blox receivers send it: B5 62 05 01 02 00 06 01
        // 0F 38 (CK_A 0x0F, CK_B 0x38 over class, id, length and payload).
        assert_eq!(
            ubx_checksum(&[0x05, 0x01, 0x02, 0x00, 0x06, 0x01]),
            (0x0F, 0x38)
        );
    }
}
