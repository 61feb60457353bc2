//! Link addresses as written in bench files.
//!
//! | address | meaning |
//! |---|---|
//! | `serial:/dev/ttyUSB0@921600` | serial port, 8N1 |
//! | `serial:/dev/ttyS1@115200,7E2` | with data bits, parity (N/E/O) and stop bits |
//! | `socketcan:can0` | Linux kernel CAN interface (hardware or vcan) |
//! | `slcan:/dev/ttyACM0@1000000` | SLCAN (Lawicel) adapter on a serial port, 500 kbit/s CAN |
//! | `slcan:/dev/ttyACM0@1000000,250000` | ... with a CAN bit rate |
//! | `vbus:/tmp/capsule.bus` | the virtual CAN bus socket |

use crate::LinkError;

/// Serial line settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialSettings {
    /// Baud rate.
    pub baud: u32,
    /// Data bits (5 to 8).
    pub data_bits: u8,
    /// Parity: 'N', 'E' or 'O'.
    pub parity: char,
    /// Stop bits (1 or 2).
    pub stop_bits: u8,
}

/// A parsed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// Serial port.
    Serial {
        /// Device path.
        path: String,
        /// Line settings.
        settings: SerialSettings,
    },
    /// Kernel CAN interface.
    SocketCan {
        /// Interface name.
        interface: String,
    },
    /// SLCAN adapter.
    Slcan {
        /// Device path.
        path: String,
        /// Serial line settings.
        settings: SerialSettings,
        /// CAN bit rate.
        can_bitrate: u32,
    },
    /// Virtual bus.
    VirtualBus {
        /// Socket path.
        path: String,
    },
}

fn bad(address: &str, reason: impl Into<String>) -> LinkError {
    LinkError::BadAddress {
        address: address.to_string(),
        reason: reason.into(),
    }
}

fn serial_part(
    address: &str,
    rest: &str,
) -> Result<(String, SerialSettings, Option<String>), LinkError> {
    let (path, opts) = rest.rsplit_once('@').ok_or_else(|| {
        bad(
            address,
            "expected PATH@BAUD, e.g. serial:/dev/ttyUSB0@921600",
        )
    })?;
    if path.is_empty() {
        return Err(bad(address, "empty device path"));
    }
    let mut parts = opts.split(',');
    let baud: u32 = parts
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| bad(address, format!("baud rate `{opts}` is not a number")))?;
    if !(50..=20_000_000).contains(&baud) {
        return Err(bad(address, format!("baud rate {baud} out of range")));
    }
    let mut settings = SerialSettings {
        baud,
        data_bits: 8,
        parity: 'N',
        stop_bits: 1,
    };
    let mut extra = None;
    for p in parts {
        let b = p.as_bytes();
        if b.len() == 3 && b[0].is_ascii_digit() && b[2].is_ascii_digit() {
            settings.data_bits = b[0] - b'0';
            settings.parity = char::from(b[1]).to_ascii_uppercase();
            settings.stop_bits = b[2] - b'0';
            if !(5..=8).contains(&settings.data_bits)
                || !matches!(settings.parity, 'N' | 'E' | 'O')
                || !matches!(settings.stop_bits, 1 | 2)
            {
                return Err(bad(
                    address,
                    format!("line format `{p}`: expected e.g. 8N1, 7E2"),
                ));
            }
        } else {
            extra = Some(p.to_string());
        }
    }
    Ok((path.to_string(), settings, extra))
}

impl Address {
    /// Parses an address.
    pub fn parse(address: &str) -> Result<Self, LinkError> {
        let (scheme, rest) = address.split_once(':').ok_or_else(|| {
            bad(
                address,
                "expected SCHEME:..., one of serial:, socketcan:, slcan:, vbus:",
            )
        })?;
        match scheme {
            "serial" => {
                let (path, settings, extra) = serial_part(address, rest)?;
                if let Some(x) = extra {
                    return Err(bad(address, format!("unknown option `{x}`")));
                }
                Ok(Address::Serial { path, settings })
            }
            "slcan" => {
                let (path, settings, extra) = serial_part(address, rest)?;
                let can_bitrate = match extra {
                    None => 500_000,
                    Some(x) => x
                        .parse()
                        .map_err(|_| bad(address, format!("CAN bit rate `{x}` is not a number")))?,
                };
                if !matches!(
                    can_bitrate,
                    10_000
                        | 20_000
                        | 50_000
                        | 100_000
                        | 125_000
                        | 250_000
                        | 500_000
                        | 800_000
                        | 1_000_000
                ) {
                    return Err(bad(
                        address,
                        format!(
                            "CAN bit rate {can_bitrate} is not an SLCAN rate (S0..S8: 10k to 1M)"
                        ),
                    ));
                }
                Ok(Address::Slcan {
                    path,
                    settings,
                    can_bitrate,
                })
            }
            "socketcan" => {
                if rest.is_empty() || rest.len() > 15 || rest.contains('/') {
                    return Err(bad(
                        address,
                        "expected an interface name such as can0 or vcan0",
                    ));
                }
                Ok(Address::SocketCan {
                    interface: rest.to_string(),
                })
            }
            "vbus" => {
                if rest.is_empty() {
                    return Err(bad(
                        address,
                        "expected a socket path, e.g. vbus:/tmp/capsule.bus",
                    ));
                }
                Ok(Address::VirtualBus {
                    path: rest.to_string(),
                })
            }
            other => Err(bad(
                address,
                format!("unknown scheme `{other}` (serial, socketcan, slcan, vbus)"),
            )),
        }
    }
}

impl std::fmt::Display for Address {
    /// The address as written in a bench file (parses back to the same value).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = |s: &SerialSettings| {
            if (s.data_bits, s.parity, s.stop_bits) == (8, 'N', 1) {
                String::new()
            } else {
                format!(",{}{}{}", s.data_bits, s.parity, s.stop_bits)
            }
        };
        match self {
            Address::Serial { path, settings } => {
                write!(f, "serial:{path}@{}{}", settings.baud, line(settings))
            }
            Address::SocketCan { interface } => write!(f, "socketcan:{interface}"),
            Address::Slcan {
                path,
                settings,
                can_bitrate,
            } => write!(
                f,
                "slcan:{path}@{}{},{can_bitrate}",
                settings.baud,
                line(settings)
            ),
            Address::VirtualBus { path } => write!(f, "vbus:{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Address;

    #[test]
    fn addresses_print_as_they_parse() {
        for a in [
            "serial:/dev/ttyUSB0@921600",
            "serial:/dev/ttyS1@115200,7E2",
            "socketcan:can0",
            "slcan:/dev/ttyACM0@1000000,250000",
            "vbus:/tmp/capsule.bus",
        ] {
            let p = Address::parse(a).expect(a);
            assert_eq!(Address::parse(&p.to_string()).expect(a), p, "{a}");
        }
        assert_eq!(
            Address::parse("slcan:/dev/ttyACM0@1000000")
                .expect("parses")
                .to_string(),
            "slcan:/dev/ttyACM0@1000000,500000"
        );
    }
}
