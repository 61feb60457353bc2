//! Reading user input files safely, and parsing them with located errors ([`config`]).
//!
//! A scenario, bench, vehicle or case file is read only if it is a regular file
//! (checked before opening, and again on the opened descriptor: opening a FIFO would
//! block, and `/dev/zero` would be read until memory ran out), opened without blocking,
//! and read up to [`MAX_BYTES`]; it must be UTF-8. Every error names the path.

pub mod config;

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Largest input file, bytes (4 MiB: the largest shipped file is a few kB).
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Why a file could not be read. Fatal for the load of that file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path does not exist or cannot be inspected.
    #[error("cannot read {what} {path}: {cause}")]
    Io {
        /// What the file is (`scenario`, `vehicle`...).
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The cause (in the message, so not chained again as a source).
        cause: std::io::Error,
    },
    /// Not a regular file (a directory, FIFO, socket or device).
    #[error("cannot read {what} {path}: not a regular file (it is {kind})")]
    NotRegular {
        /// What the file is.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// Larger than [`MAX_BYTES`].
    #[error("cannot read {what} {path}: larger than {limit} bytes")]
    TooLarge {
        /// What the file is.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Not UTF-8.
    #[error("cannot read {what} {path}: not UTF-8 text (byte {offset})")]
    NotUtf8 {
        /// What the file is.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Offset of the first bad byte.
        offset: usize,
    },
}

fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a file"
    }
}

/// Reads `path` as UTF-8 text under the rules above; `what` names the file in errors.
pub fn read_text(path: &Path, what: &'static str) -> Result<String, FileError> {
    let io = |cause| FileError::Io {
        what,
        path: path.to_path_buf(),
        cause,
    };
    let not_regular = |t: std::fs::FileType| FileError::NotRegular {
        what,
        path: path.to_path_buf(),
        kind: kind_of(t),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
    }
    // Non-blocking open: if the path was swapped for a FIFO since, the open does not
    // wait for a writer, and the check below refuses it.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_BYTES) as usize);
    f.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(FileError::TooLarge {
            what,
            path: path.to_path_buf(),
            limit: MAX_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| FileError::NotUtf8 {
        what,
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = tempfile::tempdir().expect("dir");
        let p = d.path().join("fifo.toml");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let e = read_text(&p, "scenario").expect_err("refused");
        assert!(
            e.to_string().contains("not a regular file (it is a FIFO)"),
            "{e}"
        );
        assert!(e.to_string().contains("fifo.toml"), "{e}");
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let e = read_text(Path::new("/dev/zero"), "vehicle").expect_err("refused");
        assert!(e.to_string().contains("a character device"), "{e}");
        let e = read_text(Path::new("/"), "bench").expect_err("refused");
        assert!(e.to_string().contains("a directory"), "{e}");
    }

    #[test]
    fn large_and_binary_files_are_refused_and_text_is_read() {
        let d = tempfile::tempdir().expect("dir");
        let big = d.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_BYTES as usize + 1]).expect("write");
        let e = read_text(&big, "scenario").expect_err("refused");
        assert!(matches!(e, FileError::TooLarge { .. }), "{e}");
        let bin = d.path().join("bin.toml");
        std::fs::write(&bin, b"a = 1\n\xff\xfe").expect("write");
        let e = read_text(&bin, "scenario").expect_err("refused");
        assert!(e.to_string().contains("not UTF-8 text (byte 6)"), "{e}");
        let ok = d.path().join("ok.toml");
        std::fs::write(&ok, "a = 1\n").expect("write");
        assert_eq!(read_text(&ok, "scenario").expect("read"), "a = 1\n");
        let e = read_text(&d.path().join("missing.toml"), "scenario").expect_err("missing");
        assert!(e.to_string().starts_with("cannot read scenario"), "{e}");
    }
}
