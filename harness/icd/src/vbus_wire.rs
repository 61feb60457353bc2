//! Records of the simulated bench's virtual CAN bus (a Unix socket; the bus itself is
//! `capsule_links::vbus`). Part of the ICD because a device under test on the
//! simulated bench speaks it directly, as it would speak SocketCAN on hardware.
//!
//! Node -> bus: 14 bytes `[id u32 LE][flags u8][dlc u8][data 8]`, flags bit0 extended
//! identifier, bit1 remote frame, bit2 error frame. Bus -> node: 22 bytes, the bus time
//! at the end of the frame (`u64` LE, ns) followed by the same 14 bytes.

use crate::can::CanFrame;

/// Node-to-bus record length.
pub const NODE_RECORD_LEN: usize = 14;
/// Bus-to-node record length.
pub const BUS_RECORD_LEN: usize = 22;
/// Flag: 29-bit identifier.
pub const FLAG_EXTENDED: u8 = 1;
/// Flag: remote frame.
pub const FLAG_RTR: u8 = 2;
/// Flag: error frame (id, dlc and data are zero).
pub const FLAG_ERROR: u8 = 4;

/// A record's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusItem {
    /// A data or remote frame.
    Frame(CanFrame),
    /// An error frame.
    ErrorFrame,
}

/// Encodes a node-to-bus record.
pub fn encode(item: &BusItem) -> [u8; NODE_RECORD_LEN] {
    let mut b = [0u8; NODE_RECORD_LEN];
    match item {
        BusItem::Frame(f) => {
            b[0..4].copy_from_slice(&f.id.to_le_bytes());
            b[4] =
                (if f.extended { FLAG_EXTENDED } else { 0 }) | (if f.rtr { FLAG_RTR } else { 0 });
            b[5] = f.dlc.min(8);
            b[6..14].copy_from_slice(&f.data);
        }
        BusItem::ErrorFrame => b[4] = FLAG_ERROR,
    }
    b
}

/// Decodes a 14-byte record; `None` for an invalid identifier or length.
pub fn decode(b: &[u8; NODE_RECORD_LEN]) -> Option<BusItem> {
    if b[4] & FLAG_ERROR != 0 {
        return Some(BusItem::ErrorFrame);
    }
    let id = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let extended = b[4] & FLAG_EXTENDED != 0;
    let dlc = b[5];
    if dlc > 8 || (!extended && id > 0x7FF) || id > 0x1FFF_FFFF {
        return None;
    }
    let mut data = [0u8; 8];
    data.copy_from_slice(&b[6..14]);
    Some(BusItem::Frame(CanFrame {
        id,
        extended,
        rtr: b[4] & FLAG_RTR != 0,
        dlc,
        data,
    }))
}

/// Encodes a bus-to-node record.
pub fn encode_delivery(bus_t_ns: u64, item: &BusItem) -> [u8; BUS_RECORD_LEN] {
    let mut r = [0u8; BUS_RECORD_LEN];
    r[0..8].copy_from_slice(&bus_t_ns.to_le_bytes());
    r[8..].copy_from_slice(&encode(item));
    r
}

/// Decodes a bus-to-node record into (bus time, item).
pub fn decode_delivery(r: &[u8; BUS_RECORD_LEN]) -> Option<(u64, BusItem)> {
    let mut t = [0u8; 8];
    t.copy_from_slice(&r[0..8]);
    let mut rec = [0u8; NODE_RECORD_LEN];
    rec.copy_from_slice(&r[8..]);
    decode(&rec).map(|i| (u64::from_le_bytes(t), i))
}
