//! Evidence bundles: one directory per scenario run with everything a reviewer needs,
//! hashed (`SHA256SUMS`, checked by `sha256sum -c`), optionally signed (OpenSSH
//! `SSHSIG` over the manifest, checked by `ssh-keygen -Y verify`), and verified by
//! [`integrity::verify`].
//!
//! A [`bundle::Bundle`] is created before the run (its manifest says `running` until the
//! run ends, so a bundle cut short by a crash or `kill -9` reads as incomplete), takes
//! the run's record stream on a writer thread ([`stream`]: CAN log, serial logs, NMEA,
//! [`telemetry`] MCAP), and is finished after the verdict: the record for replay,
//! `verdicts.json`, `timing.json`, `report.html`, the manifest with every file's hash,
//! `SHA256SUMS` and the signature.

pub mod bundle;
pub mod export;
pub mod integrity;
pub mod manifest;
pub mod report;
pub mod stream;
pub mod telemetry;
pub mod verdicts;

/// The signature library, for callers that keep a signing key.
pub use ssh_key;

/// Evidence errors: each names the file.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// Reading or writing a file failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        cause: String,
    },
    /// A JSON document could not be made or read.
    #[error("JSON: {0}")]
    Json(String),
    /// A key or signature could not be read, made or checked.
    #[error("{0}")]
    Key(String),
    /// A bundle is not what this version writes.
    #[error("{path}: {cause}")]
    Bundle {
        /// The bundle or file.
        path: String,
        /// What is wrong.
        cause: String,
    },
}

pub(crate) fn io_err(path: &std::path::Path, e: impl std::fmt::Display) -> EvidenceError {
    EvidenceError::Io {
        path: path.display().to_string(),
        cause: e.to_string(),
    }
}

/// Writes `bytes` to `path` atomically (a temporary file in the same directory, then
/// renamed), so a reader never sees half a file.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), EvidenceError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut t = tempfile::NamedTempFile::new_in(dir).map_err(|e| io_err(path, e))?;
    t.write_all(bytes).map_err(|e| io_err(path, e))?;
    t.as_file().sync_data().map_err(|e| io_err(path, e))?;
    t.persist(path).map_err(|e| io_err(path, e.error))?;
    Ok(())
}
