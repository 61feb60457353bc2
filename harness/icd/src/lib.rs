//! The capsule interface control document (ICD) as code.
//!
//! - [`can`]: CAN messages and signals loaded at run time from a DBC file
//!   (`fixtures/icd/capsule.dbc` by default; a user's own DBC replaces it), with
//!   bit-exact encode and decode;
//! - [`nmea`]: the GNSS receiver's NMEA 0183 sentences (GGA, RMC, VTG, GSA) and a
//!   resynchronising line decoder;
//! - [`imu`]: the binary IMU datagram, its layout as data (the shipped one: 40 bytes,
//!   CRC-16/IBM-3740) and a resynchronising stream decoder;
//! - [`ubx`]: u-blox UBX `NAV-PVT` and a resynchronising frame decoder;
//! - [`gnss`]: the GNSS line (NMEA or UBX, as the binding says) and one decoder for both;
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
mod doc_serial;
pub mod gnss;
pub mod imu;
pub mod nmea;
pub mod ubx;
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

/// An ICD as a run uses it: the CAN database and the binding resolved against it.
/// Dereferences to the [`can::CanDb`].
#[derive(Debug, Clone)]
pub struct Icd {
    /// The DBC.
    pub db: can::CanDb,
    /// The binding.
    pub binding: std::sync::Arc<binding::Binding>,
}

impl std::ops::Deref for Icd {
    type Target = can::CanDb;
    fn deref(&self) -> &can::CanDb {
        &self.db
    }
}

/// The shipped DBC (`fixtures/icd/capsule.dbc`), built in.
pub const SHIPPED_DBC: &str = include_str!("../../../fixtures/icd/capsule.dbc");
/// The shipped binding (`fixtures/icd/capsule.binding.toml`), built in.
pub const SHIPPED_BINDING: &str = include_str!("../../../fixtures/icd/capsule.binding.toml");

impl Icd {
    /// Resolves a DBC and a binding (`dbc_name`, `binding_name` name them in errors).
    pub fn load(
        dbc_name: &str,
        dbc: &str,
        binding_name: &str,
        binding: &str,
    ) -> Result<Self, IcdError> {
        let db = can::CanDb::from_dbc(dbc_name, dbc)?;
        let binding = binding::Binding::from_toml(
            &capsule_files::config::Source::new(binding_name, binding),
            &db,
        )?;
        Ok(Self {
            db,
            binding: std::sync::Arc::new(binding),
        })
    }

    /// The shipped ICD.
    pub fn shipped() -> Result<Self, IcdError> {
        Self::load(
            "fixtures/icd/capsule.dbc (built in)",
            SHIPPED_DBC,
            "fixtures/icd/capsule.binding.toml (built in)",
            SHIPPED_BINDING,
        )
    }
}

/// Why an ICD could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IcdError {
    /// The DBC.
    #[error(transparent)]
    Dbc(#[from] can::DbcError),
    /// The binding.
    #[error(transparent)]
    Binding(#[from] capsule_files::config::ConfigError),
}
