//! The capsule interface control document (ICD) as code.
//!
//! - [`can`]: CAN messages and signals loaded at run time from a DBC file
//!   (`fixtures/icd/capsule.dbc` by default; a user's own DBC replaces it), with
//!   bit-exact encode and decode;
//! - [`nmea`]: the GNSS receiver's NMEA 0183 sentences (GGA, RMC, VTG, GSA) and a
//!   resynchronising line decoder;
//! - [`imu`]: the binary IMU datagram (CRC-16/IBM-3740) and a resynchronising stream
//!   decoder;
//! - [`crc`]: the checksum algorithms, pinned by name and check value;
//! - [`doc`]: the human-readable message tables generated from a DBC;
//! - [`binding`]: how the twin meets a DBC (which signal carries which quantity, in
//!   which unit, at which period), as data checked against the DBC.
//!
//! The human-readable ICD is `fixtures/icd/README.md`. This crate has no I/O: callers
//! pass text and bytes in.

pub mod binding;
pub mod can;
pub mod crc;
pub mod doc;
pub mod imu;
pub mod nmea;
pub mod vbus_wire;

/// Decoder statistics common to the stream decoders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecodeStats {
    /// Frames decoded successfully.
    pub frames_ok: u64,
    /// Frames whose checksum / CRC did not match.
    pub checksum_errors: u64,
    /// Frames rejected for their structure (bad length, bad field, unknown type).
    pub framing_errors: u64,
    /// Bytes thrown away while looking for the next frame start.
    pub bytes_discarded: u64,
    /// Bytes dropped because the input buffer limit was reached.
    pub overflow_bytes: u64,
}
