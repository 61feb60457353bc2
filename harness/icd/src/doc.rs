//! The human-readable ICD's CAN message tables, generated from a DBC: one heading per
//! message (identifier, name, transmitter, length, rate, comment), a signal table
//! (start bit, bits, byte order, sign, scaling, range, unit), the signals' comments
//! and their value lists (`VAL_`). `hil icd doc` prints it; the "Messages" section of
//! `fixtures/icd/README.md` is this output, kept equal by a test.

use crate::can::{ByteOrder, CanDb};
use std::fmt::Write;

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
