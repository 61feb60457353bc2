//! What links exist on this machine: serial ports and CAN interfaces, with the address
//! to write in a bench file.

/// A link candidate found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Bench address prefix (`serial:/dev/ttyUSB0`, `socketcan:can0`).
    pub address: String,
    /// What it is (USB vendor/product, interface state).
    pub detail: String,
}

/// Serial ports (through the serial port library) and kernel CAN interfaces (network
/// interfaces of type `ARPHRD_CAN` = 280 in `/sys/class/net`), sorted by address.
pub fn discover() -> Vec<Found> {
    let mut out = Vec::new();
    if let Ok(ports) = tokio_serial::available_ports() {
        for p in ports {
            let detail = match p.port_type {
                tokio_serial::SerialPortType::UsbPort(u) => format!(
                    "USB {:04x}:{:04x} {} {}",
                    u.vid,
                    u.pid,
                    u.manufacturer.unwrap_or_default(),
                    u.product.unwrap_or_default()
                )
                .trim_end()
                .to_string(),
                tokio_serial::SerialPortType::PciPort => "PCI serial".into(),
                tokio_serial::SerialPortType::BluetoothPort => "Bluetooth serial".into(),
                tokio_serial::SerialPortType::Unknown => "serial".into(),
            };
            out.push(Found {
                address: format!("serial:{}@BAUD", p.port_name),
                detail,
            });
        }
    }
    out.extend(can_interfaces(std::path::Path::new("/sys/class/net")));
    out.sort_by(|a, b| a.address.cmp(&b.address));
    out
}

/// CAN interfaces under a `/sys/class/net`-like directory.
fn can_interfaces(sys_net: &std::path::Path) -> Vec<Found> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(sys_net) else {
        return out;
    };
    for e in dir.flatten() {
        let p = e.path();
        let ty = std::fs::read_to_string(p.join("type")).unwrap_or_default();
        if ty.trim() != "280" {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let state = std::fs::read_to_string(p.join("operstate"))
            .unwrap_or_default()
            .trim()
            .to_string();
        out.push(Found {
            address: format!("socketcan:{name}"),
            detail: format!("kernel CAN interface, {state}"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn can_interfaces_are_found_by_their_arphrd_type() {
        let d = std::env::temp_dir().join(format!("discover-{}", std::process::id()));
        for (n, ty, st) in [
            ("can0", "280\n", "up\n"),
            ("eth0", "1\n", "up\n"),
            ("vcan1", "280\n", "unknown\n"),
        ] {
            std::fs::create_dir_all(d.join(n)).expect("dir");
            std::fs::write(d.join(n).join("type"), ty).expect("type");
            std::fs::write(d.join(n).join("operstate"), st).expect("state");
        }
        let mut f = can_interfaces(&d);
        f.sort_by(|a, b| a.address.cmp(&b.address));
        let _ = std::fs::remove_dir_all(&d);
        assert_eq!(
            f,
            vec![
                Found {
                    address: "socketcan:can0".into(),
                    detail: "kernel CAN interface, up".into()
                },
                Found {
                    address: "socketcan:vcan1".into(),
                    detail: "kernel CAN interface, unknown".into()
                },
            ]
        );
    }
}
