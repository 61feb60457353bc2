//! The FC's own transports: the simulated bench's virtual CAN bus (records from
//! `capsule_icd::vbus_wire` over a Unix socket) and serial lines (tokio-serial).

use capsule_icd::can::CanFrame;
use capsule_icd::vbus_wire::{self, BUS_RECORD_LEN, BusItem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// Driver errors (fatal for the FC process: it exits with a message).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The address is not one the FC supports.
    #[error("unsupported address `{0}` (the FC supports vbus:PATH for CAN and serial:PATH@BAUD)")]
    Address(String),
    /// Opening failed.
    #[error("cannot open {address}: {cause}")]
    Open {
        /// Address.
        address: String,
        /// Cause.
        cause: String,
    },
    /// The bus or line went away.
    #[error("{0} closed: {1}")]
    Closed(&'static str, String),
}

/// CAN port on the virtual bus.
#[derive(Debug)]
pub struct CanPort {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: Vec<u8>,
}

impl CanPort {
    /// Opens `vbus:PATH`.
    pub async fn open(address: &str) -> Result<Self, DriverError> {
        let path = address
            .strip_prefix("vbus:")
            .ok_or_else(|| DriverError::Address(address.into()))?;
        let s = UnixStream::connect(path)
            .await
            .map_err(|e| DriverError::Open {
                address: address.into(),
                cause: e.to_string(),
            })?;
        let (rd, wr) = s.into_split();
        Ok(Self {
            rd,
            wr,
            buf: Vec::with_capacity(4096),
        })
    }

    /// A port on an already connected bus socket.
    pub fn from_stream(s: UnixStream) -> Self {
        let (rd, wr) = s.into_split();
        Self {
            rd,
            wr,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Sends a frame.
    pub async fn send(&mut self, f: &CanFrame) -> Result<(), DriverError> {
        self.wr
            .write_all(&vbus_wire::encode(&BusItem::Frame(*f)))
            .await
            .map_err(|e| DriverError::Closed("CAN bus", e.to_string()))
    }

    /// Receives the next data frame (error frames are skipped). Cancel-safe: bytes of
    /// a partly received record stay buffered, so it can sit in a `select!`.
    pub async fn recv(&mut self) -> Result<CanFrame, DriverError> {
        loop {
            while self.buf.len() >= BUS_RECORD_LEN {
                let mut rec = [0u8; BUS_RECORD_LEN];
                rec.copy_from_slice(&self.buf[..BUS_RECORD_LEN]);
                self.buf.drain(..BUS_RECORD_LEN);
                if let Some((_, BusItem::Frame(f))) = vbus_wire::decode_delivery(&rec) {
                    return Ok(f);
                }
            }
            let mut chunk = [0u8; 1024];
            let n = self
                .rd
                .read(&mut chunk)
                .await
                .map_err(|e| DriverError::Closed("CAN bus", e.to_string()))?;
            if n == 0 {
                return Err(DriverError::Closed("CAN bus", "end of file".into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Opens `serial:PATH@BAUD` as a raw serial stream.
pub fn open_serial(address: &str) -> Result<tokio_serial::SerialStream, DriverError> {
    let rest = address
        .strip_prefix("serial:")
        .ok_or_else(|| DriverError::Address(address.into()))?;
    let (path, baud) = rest
        .rsplit_once('@')
        .ok_or_else(|| DriverError::Address(address.into()))?;
    let baud: u32 = baud
        .split(',')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| DriverError::Address(address.into()))?;
    tokio_serial::SerialStream::open(&tokio_serial::new(path, baud)).map_err(|e| {
        DriverError::Open {
            address: address.into(),
            cause: e.to_string(),
        }
    })
}
