//! The human-readable ICD, generated from a DBC and a binding ([`document`]): the CAN
//! message tables (one heading per message: identifier, name, transmitter, length,
//! rate, comment; a signal table: start bit, bits, byte order, sign, scaling, range,
//! unit; the signals' comments and value lists), the serial lines' byte tables, the
//! lockstep protocol with byte-level examples, the conventions and the binding's tables.
//! The prose is the template `harness/icd/doc/icd.md.j2`; every name, identifier, rate
//! and byte in it comes from the ICD. `hil icd doc` prints it; `fixtures/icd/README.md`
//! is this output for the shipped ICD, kept equal by a test.

use crate::Icd;
use crate::binding::Sig;
use crate::can::{ByteOrder, CanDb, CanFrame};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The document's template.
const TEMPLATE: &str = include_str!("../doc/icd.md.j2");

/// The document could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("the ICD document template: {0}")]
pub struct DocError(String);

fn frame_hex(f: &CanFrame) -> String {
    f.data[..usize::from(f.dlc)]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn frame_id(f: &CanFrame) -> String {
    if f.extended {
        format!("{:08X}", f.id)
    } else {
        format!("{:03X}", f.id)
    }
}

/// The frame as an SLCAN (Lawicel) transmit command, CR shown as `\r`.
fn slcan(f: &CanFrame) -> String {
    let data: String = f.data[..usize::from(f.dlc)]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    format!(
        "`{}{}{}{data}\\r`",
        if f.extended { 'T' } else { 't' },
        frame_id(f),
        f.dlc
    )
}

fn id_range(ids: &[u32]) -> String {
    match (ids.iter().min(), ids.iter().max()) {
        (Some(a), Some(b)) if a != b => format!("0x{a:03X}-0x{b:03X}"),
        (Some(a), _) => format!("0x{a:03X}"),
        _ => "none".into(),
    }
}

fn names_of(db: &CanDb, ids: &[u32]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let names: Vec<String> = ids
        .iter()
        .filter_map(|i| db.by_id(*i))
        .map(|m| format!("`{}`", m.name))
        .collect();
    format!("{}, {}", names.join(", "), id_range(&ids))
}

/// A worked encoding of the barometer's message: each signal's twin value, its wire
/// value, raw value and bits, then the frame.
fn worked_example(icd: &Icd) -> Result<(String, String), DocError> {
    let bd = &icd.binding.baro;
    let values: [(&Sig, f64); 4] = [
        (&bd.pressure, 101_325.0),
        (&bd.temperature, 288.40),
        (&bd.status.sig, bd.status.ok),
        (&bd.counter, 7.0),
    ];
    let f = crate::binding::encode_one(&values).map_err(|e| DocError(e.to_string()))?;
    let m = bd.pressure.message();
    let mut s = String::new();
    for (sig, v) in values {
        let d = sig.def();
        let wire = sig.to_wire(v);
        let raw = ((wire - d.offset) / d.factor).round();
        let twin = sig.dimension.twin_unit();
        let value = if twin.is_empty() {
            fmt_g12(v)
        } else if sig.unit == twin {
            format!("{} {twin}", fmt_g12(v))
        } else {
            format!("{} {twin} = {} {}", fmt_g12(v), fmt_g12(wire), sig.unit)
        };
        let scaling = if d.factor == 1.0 && d.offset == 0.0 {
            String::new()
        } else {
            format!(
                " -> raw ({} - {}) / {} = {}",
                fmt_g12(wire),
                fmt_g12(d.offset),
                fmt_g12(d.factor),
                fmt_g12(raw)
            )
        };
        let _ = writeln!(
            s,
            "- `{}`: {value}{scaling} = 0x{:X}, start bit {}, {} bits, {}.",
            d.name,
            raw as i64 as u64 & (u64::MAX >> (64 - d.size.clamp(1, 64))),
            d.start_bit,
            d.size,
            match d.byte_order {
                ByteOrder::LittleEndian => "Intel",
                ByteOrder::BigEndian => "Motorola",
            }
        );
    }
    let _ = writeln!(s, "- Frame 0x{}: `{}`.", frame_id(&f), frame_hex(&f));
    let title = format!(
        "{}, 101325 Pa, 288.4 K (15.25 degC), status ok, counter 7",
        m.name
    );
    Ok((title, s))
}

/// The whole ICD document of `icd`. `dbc` and `binding` are the file names the
/// document gives; `shipped` adds the shipped ICD's notes (golden vectors).
pub fn document(icd: &Icd, dbc: &str, binding: &str, shipped: bool) -> Result<String, DocError> {
    use minijinja::Value;
    let b = &icd.binding;
    let db = &icd.db;
    let mut s = BTreeMap::new();
    let mut m = BTreeMap::new();
    for (role, sig) in b.roles() {
        s.insert(role.clone(), sig.def().name.clone());
        m.insert(role, sig.message().name.clone());
    }
    let dlc_text = if db.messages().all(|m| m.dlc == 8) {
        "8-byte frames".to_string()
    } else {
        "frames of up to 8 bytes (each message's length is in its heading)".to_string()
    };
    let orders: Vec<ByteOrder> = db
        .messages()
        .flat_map(|m| m.signals.iter().map(|s| s.byte_order))
        .collect();
    let byte_order = if orders.iter().all(|o| *o == ByteOrder::LittleEndian) {
        "All signals are **little-endian (Intel)**; bit numbering: bit `k` is bit `k % 8` of byte `k / 8`."
    } else if orders.iter().all(|o| *o == ByteOrder::BigEndian) {
        "All signals are **big-endian (Motorola)**: a signal's start bit is its most significant bit, numbered as in the DBC (bit `k` is bit `k % 8` of byte `k / 8`), and it continues into the next byte."
    } else {
        "Byte order is given per signal in the tables (Intel: little-endian; Motorola: big-endian, start bit = most significant bit)."
    };
    let fc_ids: Vec<u32> = db
        .messages()
        .filter(|m| m.transmitter == b.fc.node && !m.simulation_only)
        .map(|m| m.id)
        .collect();
    let dev_ids: Vec<u32> = b.device_messages().iter().map(|(i, _)| *i).collect();
    let h = &b.handover;
    let hv_ids: Vec<u32> = h
        .position
        .iter()
        .chain(&h.velocity)
        .chain(&h.attitude)
        .chain([&h.time, &h.mode, &h.sequence])
        .map(Sig::id)
        .collect();
    let ms = &b.mission;
    let msn_ids: Vec<u32> = [
        &ms.target_lat,
        &ms.target_lon,
        &ms.ignition_time,
        &ms.delta_v,
        &ms.burn_attitude,
    ]
    .iter()
    .map(|x| x.id())
    .collect();
    let sim_ids: Vec<u32> = db
        .messages()
        .filter(|m| m.simulation_only)
        .map(|m| m.id)
        .collect();
    let id_ranges = format!(
        "Lower identifiers win arbitration. The flight computer (node `{}`) sends {}; the host vehicle's handover and mission data are {} and {}; the device nodes send {}; simulation only: {}.",
        b.fc.node,
        id_range(&fc_ids),
        id_range(&hv_ids),
        id_range(&msn_ids),
        id_range(&dev_ids),
        id_range(&sim_ids)
    );
    let sim_names = sim_ids
        .iter()
        .filter_map(|i| db.by_id(*i))
        .map(|m| format!("`{}`", m.name))
        .collect::<Vec<_>>()
        .join(", ");
    let rcs_rate = match b.rcs.valves.message().cycle_time_ms {
        Some(c) => format!("every {c} ms"),
        None => "every cycle".into(),
    };
    let ls = &b.lockstep;
    let enc =
        |v: &[(&Sig, f64)]| crate::binding::encode_one(v).map_err(|e| DocError(e.to_string()));
    let sync = enc(&[(&ls.sync_imu_bytes, 400.0), (&ls.sync_gnss_bytes, 286.0)])?;
    let tick = enc(&[(&ls.tick_time, 0.01), (&ls.tick_step, 1.0)])?;
    let ack = enc(&[(&ls.ack_time, 0.01), (&ls.ack_step, 1.0)])?;
    let reset = enc(&[(&ls.reset_duration, 1.5)])?;
    let mut lockstep_table = String::from(
        "| frame | id | data | meaning |
|---|---|---|---|
",
    );
    for (f, meaning) in [
        (&sync, "400 IMU bytes and 286 GNSS bytes written so far"),
        (&tick, "t = 10000 us, step 1"),
        (&ack, "the answer to that tick"),
        (&reset, "reset, boot for 1500 ms"),
    ] {
        let name = db.by_id(f.id).map_or("?", |m| m.name.as_str());
        let _ = writeln!(
            lockstep_table,
            "| {name} | {} | `{}` | {meaning} |",
            frame_id(f),
            frame_hex(f)
        );
    }
    let slcan_example = format!(
        "{}, {} from the harness; your {}, answered `z\\r`.",
        slcan(&sync),
        slcan(&tick),
        slcan(&ack)
    );
    let mut ch: Vec<_> = b.pyro.channels.iter().collect();
    ch.sort_by_key(|(_, bit)| **bit);
    let pyro_bits = ch
        .iter()
        .map(|(n, bit)| format!("{bit} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rcs_bits = b
        .rcs
        .thrusters
        .iter()
        .enumerate()
        .map(|(k, t)| format!("{k} {t}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (example_title, worked) = worked_example(icd)?;
    let binding_tables = binding_markdown(b).replace(&b.source, binding);
    let ctx = minijinja::context! {
        title => if shipped { "Capsule ICD (interface control document)".to_string() } else { format!("ICD {dbc} (interface control document)") },
        dbc => dbc,
        binding => binding,
        shipped => shipped,
        s => Value::from_serialize(&s),
        m => Value::from_serialize(&m),
        bitrate_kbps => fmt_g12(f64::from(db.bitrate_bps) / 1000.0),
        bitrate_bps => db.bitrate_bps,
        dlc_text => dlc_text,
        byte_order => byte_order,
        id_ranges => id_ranges,
        baro_ok => fmt_g12(b.baro.status.ok),
        baro_oor => fmt_g12(b.baro.status.out_of_range),
        baro_fault => fmt_g12(b.baro.status.fault),
        sim_names => sim_names,
        handover_names => names_of(db, &hv_ids),
        mission_names => names_of(db, &msn_ids),
        rcs_rate => rcs_rate,
        rcs_timeout_ms => fmt_g12(b.rcs.command_timeout_s * 1000.0),
        motor_safe => fmt_g12(b.deorbit.state_safe),
        motor_burning => fmt_g12(b.deorbit.state_burning),
        motor_done => fmt_g12(b.deorbit.state_done),
        example_title => example_title,
        worked_example => worked,
        messages => can_messages_markdown(db),
        gnss_section => crate::doc_serial::gnss_markdown(&b.gnss),
        imu_section => crate::doc_serial::imu_markdown(&b.imu),
        imu_baud => b.imu.baud,
        gnss_baud => b.gnss.baud,
        lockstep_table => lockstep_table,
        slcan_example => slcan_example,
        arm_key => format!("0x{:02X}", b.pyro.arm_key_value as u64),
        pyro_bits => pyro_bits,
        rcs_bits => rcs_bits,
        binding_tables => binding_tables,
    };
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("icd.md", TEMPLATE)
        .map_err(|e| DocError(e.to_string()))?;
    let t = env
        .get_template("icd.md")
        .map_err(|e| DocError(e.to_string()))?;
    t.render(ctx).map_err(|e| DocError(e.to_string()))
}

/// A number as C's `%.12g` prints it (Python's too): 12 significant digits, trailing
/// zeros dropped, exponent form below 1e-4 and from 1e12.
pub fn fmt_g12(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    let exp = x.abs().log10().floor() as i32;
    // Rounding to 12 digits may carry into the next power of ten.
    let e = format!("{x:.11e}");
    let (mant, ex) = e.split_once('e').unwrap_or((&e, "0"));
    let exp = ex.parse::<i32>().unwrap_or(exp);
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..12).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), exp.abs())
    } else {
        let decimals = (11 - exp).max(0) as usize;
        trim(&format!("{x:.decimals$}"))
    }
}

/// The message tables of `db` in Markdown.
pub fn can_messages_markdown(db: &CanDb) -> String {
    let mut out = String::new();
    for m in db.messages() {
        let rate = m
            .cycle_time_ms
            .map_or("on event".to_string(), |c| format!("{c} ms"));
        let sim = if m.simulation_only {
            " (simulation only)"
        } else {
            ""
        };
        let _ = write!(
            out,
            "\n#### 0x{:03X} {}{sim}\n\nFrom {}, {} bytes, {rate}.",
            m.id,
            m.name,
            if m.transmitter.is_empty() {
                "any node"
            } else {
                &m.transmitter
            },
            m.dlc
        );
        if let Some(c) = &m.comment {
            let _ = write!(out, " {c}");
        }
        out.push_str(
            "\n\n| signal | start bit | bits | type | factor | offset | min | max | unit |\n",
        );
        out.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for s in &m.signals {
            let kind = match (s.signed, s.byte_order) {
                (true, ByteOrder::LittleEndian) => "signed",
                (false, ByteOrder::LittleEndian) => "unsigned",
                (true, ByteOrder::BigEndian) => "signed, Motorola",
                (false, ByteOrder::BigEndian) => "unsigned, Motorola",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {kind} | {} | {} | {} | {} | {} |",
                s.name,
                s.start_bit,
                s.size,
                fmt_g12(s.factor),
                fmt_g12(s.offset),
                fmt_g12(s.min),
                fmt_g12(s.max),
                s.unit
            );
        }
        let mut notes = Vec::new();
        for s in &m.signals {
            if let Some(c) = &s.comment {
                notes.push(format!("- `{}`: {c}", s.name));
            }
            if !s.values.is_empty() {
                let list: Vec<String> = s.values.iter().map(|(v, n)| format!("{v} {n}")).collect();
                notes.push(format!("- `{}` values: {}.", s.name, list.join(", ")));
            }
        }
        if !notes.is_empty() {
            out.push('\n');
            out.push_str(&notes.join("\n"));
            out.push('\n');
        }
    }
    out
}

/// The binding's tables in Markdown: for every role, the DBC signal that carries it,
/// its unit on the wire and the twin's unit; the status periods, status and state
/// values, pyro channel bits and RCS valve bits. `hil icd doc --binding` prints it
/// after the message tables; the "Binding" section of `fixtures/icd/README.md` is
/// this output for the shipped binding.
pub fn binding_markdown(b: &crate::binding::Binding) -> String {
    let mut s = String::new();
    let period = |p: f64| format!("{} ms", fmt_g12(p * 1000.0));
    let _ = writeln!(
        s,
        "Binding `{}`. The flight computer is node `{}`. Status periods: power {}, pyro {}, RCS {}, deorbit motor {}, beacon {} (the barometer and the thermocouples at their sensor rates). RCS valves close {} after the last command.\n",
        b.source,
        b.fc.node,
        period(b.power.period_s),
        period(b.pyro.status_period_s),
        period(b.rcs.status_period_s),
        period(b.deorbit.status_period_s),
        period(b.beacon.status_period_s),
        period(b.rcs.command_timeout_s),
    );
    let _ = writeln!(s, "| role | signal | wire unit | twin unit |");
    let _ = writeln!(s, "|---|---|---|---|");
    for (role, sig) in b.roles() {
        let twin = sig.dimension.twin_unit();
        let _ = writeln!(
            s,
            "| `{role}` | `{}` | {} | {} |",
            sig.path(),
            if sig.unit.is_empty() { "-" } else { &sig.unit },
            if twin.is_empty() { "-" } else { twin },
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "- Barometer status values: ok {}, out of range {}, sensor fault {}. Thermocouple and power status ok: {}, {}.",
        fmt_g12(b.baro.status.ok),
        fmt_g12(b.baro.status.out_of_range),
        fmt_g12(b.baro.status.fault),
        fmt_g12(b.thermo.status.ok),
        fmt_g12(b.power.status.ok),
    );
    let _ = writeln!(
        s,
        "- Deorbit motor states: safe {}, burning {}, done {}.",
        fmt_g12(b.deorbit.state_safe),
        fmt_g12(b.deorbit.state_burning),
        fmt_g12(b.deorbit.state_done),
    );
    let mut ch: Vec<_> = b.pyro.channels.iter().collect();
    ch.sort_by_key(|(_, bit)| **bit);
    let _ = writeln!(
        s,
        "- Pyro channels (bits of the fire, continuity and fired masks): {}. Arm key {} (0x{:02X}).",
        ch.iter()
            .map(|(n, bit)| format!("bit {bit} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        fmt_g12(b.pyro.arm_key_value),
        b.pyro.arm_key_value as u64,
    );
    let _ = writeln!(
        s,
        "- RCS valves (bits of the valve, isolation, state and fault masks): {}. Deorbit motor: thruster `{}`.",
        b.rcs
            .thrusters
            .iter()
            .enumerate()
            .map(|(k, t)| format!("bit {k} {t}"))
            .collect::<Vec<_>>()
            .join(", "),
        b.deorbit.thruster,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::fmt_g12;

    #[test]
    fn numbers_print_as_percent_g12() {
        // Expected strings from Python's '%.12g' % x.
        for (x, want) in [
            (3.0518509476e-05, "3.0518509476e-05"),
            (2.81474976711e+14, "2.81474976711e+14"),
            (0.0001, "0.0001"),
            (-21474836.48, "-21474836.48"),
            (1e-07, "1e-07"),
            (4294967.295, "4294967.295"),
            (65535.0, "65535"),
            (0.1, "0.1"),
            (261143.75, "261143.75"),
            (1e6, "1000000"),
            (123456789012345.0, "1.23456789012e+14"),
            (-1000.0, "-1000"),
            (0.0, "0"),
            (999999999999.9, "1e+12"),
        ] {
            assert_eq!(fmt_g12(x), want, "{x}");
        }
    }
}
