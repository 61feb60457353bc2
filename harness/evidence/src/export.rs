//! Exports from a bundle: the CAN log as Vector ASC (CANalyzer, CANoe, SavvyCAN) and
//! telemetry topics as CSV (spreadsheets).

use crate::stream::{CAN_LOG, TELEMETRY};
use crate::{EvidenceError, io_err};
use serde_json::Value;
use std::io::{BufRead, Write};
use std::path::Path;

/// Writes the bundle's CAN log as Vector ASC (absolute timestamps in hex base, the
/// layout python-can's `ASCWriter` writes): channel 1, `Tx` harness to avionics, `Rx`
/// avionics to harness, error frames as `ErrorFrame`. `date` is the header's date
/// (e.g. `Wed Dec 02 01:13:15.000 2026`). Returns the frames written.
pub fn asc(dir: &Path, date: &str, out: &mut dyn Write) -> Result<u64, EvidenceError> {
    let p = dir.join(CAN_LOG);
    let f = std::fs::File::open(&p).map_err(|e| io_err(&p, e))?;
    let r = std::io::BufReader::new(flate2::read::GzDecoder::new(f));
    let w = |out: &mut dyn Write, s: &str| {
        out.write_all(s.as_bytes())
            .map_err(|e| io_err(Path::new("ASC output"), e))
    };
    w(
        out,
        &format!(
            "date {date}\nbase hex  timestamps absolute\ninternal events logged\n// version 9.0.0\nBegin Triggerblock {date}\n   0.000000 Start of measurement\n"
        ),
    )?;
    let mut n = 0u64;
    for (k, line) in r.lines().enumerate() {
        let line = line.map_err(|e| io_err(&p, e))?;
        let bad = |what: &str| EvidenceError::Bundle {
            path: p.display().to_string(),
            cause: format!("line {}: {what}: `{line}`", k + 1),
        };
        let mut it = line.split_whitespace();
        let (Some(ts), Some(_iface), Some(frame)) = (it.next(), it.next(), it.next()) else {
            return Err(bad("not a candump -L line"));
        };
        let dir = match it.next() {
            Some("T") => "Tx",
            _ => "Rx",
        };
        let t: f64 = ts
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad timestamp"))?;
        let (id, data) = frame.split_once('#').ok_or_else(|| bad("no `#`"))?;
        let id_v = u32::from_str_radix(id, 16).map_err(|_| bad("bad identifier"))?;
        let body = if id_v & 0x2000_0000 != 0 {
            "1  ErrorFrame".to_string()
        } else {
            let arb = if id.len() > 3 {
                format!("{:X}x", id_v & 0x1FFF_FFFF)
            } else {
                format!("{id_v:X}")
            };
            if let Some(r) = data.strip_prefix('R') {
                let dlc: u8 = if r.is_empty() {
                    0
                } else {
                    r.parse().map_err(|_| bad("bad remote length"))?
                };
                format!("1  {arb:<15} {dir:<4} r {dlc:x} ")
            } else {
                let bytes =
                    capsule_icd::can::parse_hex_bytes(data).ok_or_else(|| bad("bad data"))?;
                let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
                format!(
                    "1  {arb:<15} {dir:<4} d {:x} {}",
                    bytes.len(),
                    hex.join(" ")
                )
            }
        };
        w(out, &format!("{t: >9.6} {body}\n"))?;
        n += 1;
    }
    w(out, "End TriggerBlock\n")?;
    Ok(n)
}

/// Flattens a JSON message into (column, value) pairs: nested objects with `.`,
/// arrays with `[i]`; strings and booleans as they are.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => out.push((prefix.to_string(), String::new())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// Writes one telemetry topic (default `/truth/state`) as CSV: a header from the
/// first message's fields (flattened), then one row per message with its log time in
/// seconds first. Returns the rows written.
pub fn csv(dir: &Path, topic: &str, out: &mut dyn Write) -> Result<u64, EvidenceError> {
    let p = dir.join(TELEMETRY);
    let buf = std::fs::read(&p).map_err(|e| io_err(&p, e))?;
    let stream = mcap::MessageStream::new(&buf).map_err(|e| io_err(&p, format!("MCAP: {e}")))?;
    let mut columns: Option<Vec<String>> = None;
    let mut rows = 0u64;
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    for m in stream {
        let m = m.map_err(|e| io_err(&p, format!("MCAP: {e}")))?;
        if m.channel.topic != topic {
            continue;
        }
        let v: Value =
            serde_json::from_slice(&m.data).map_err(|e| io_err(&p, format!("message: {e}")))?;
        let mut fields = Vec::new();
        flatten("", &v, &mut fields);
        let cols = columns.get_or_insert_with(|| {
            let c: Vec<String> = fields.iter().map(|f| f.0.clone()).collect();
            let mut head = vec!["log_time_s".to_string()];
            head.extend(c.iter().map(|x| quote(x)));
            let _ = writeln!(out, "{}", head.join(","));
            c
        });
        let mut row = vec![format!("{:.9}", m.log_time as f64 * 1e-9)];
        for c in cols.iter() {
            row.push(
                fields
                    .iter()
                    .find(|f| f.0 == *c)
                    .map_or(String::new(), |f| quote(&f.1)),
            );
        }
        writeln!(out, "{}", row.join(",")).map_err(|e| io_err(Path::new("CSV output"), e))?;
        rows += 1;
    }
    if columns.is_none() {
        return Err(EvidenceError::Bundle {
            path: p.display().to_string(),
            cause: format!("no messages on topic `{topic}`"),
        });
    }
    Ok(rows)
}
