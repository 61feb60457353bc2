//! The reading end: a live stream from a socket, or a recorded one from a file.

use crate::{FORMAT, MAX_LINE_BYTES, Record, StreamError};
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Splits bytes into lines of at most [`MAX_LINE_BYTES`]; longer ones are skipped.
#[derive(Debug, Default)]
struct Lines {
    buf: Vec<u8>,
    skipping: bool,
    skipped: u64,
}

impl Lines {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<Vec<u8>>) {
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let complete = chunk.last() == Some(&b'\n');
            let body = if complete {
                &chunk[..chunk.len() - 1]
            } else {
                chunk
            };
            if !self.skipping {
                self.buf.extend_from_slice(body);
                if self.buf.len() > MAX_LINE_BYTES {
                    self.buf.clear();
                    self.skipping = true;
                    self.skipped += 1;
                }
            }
            if complete {
                if !self.skipping {
                    out.push(std::mem::take(&mut self.buf));
                }
                self.skipping = false;
            }
        }
    }
}

/// A viewer's connection to a live run.
#[derive(Debug)]
pub struct Subscriber {
    path: String,
    stream: UnixStream,
    lines: Lines,
    line_no: u64,
    bad: u64,
    closed: bool,
}

impl Subscriber {
    /// Connects to the publisher at `path`.
    pub fn connect(path: &Path) -> Result<Self, StreamError> {
        let io = |source| StreamError::Io {
            path: path.display().to_string(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(io)?;
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(io)?;
        Ok(Self {
            path: path.display().to_string(),
            stream,
            lines: Lines::default(),
            line_no: 0,
            bad: 0,
            closed: false,
        })
    }

    /// The records that arrived, waiting at most 100 ms for the first. An empty
    /// result with [`Subscriber::closed`] means the run's end (the publisher closed).
    /// The first record must be a header of this format.
    pub fn poll(&mut self) -> Result<Vec<Record>, StreamError> {
        let mut raw = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        if !self.closed {
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.lines.feed(&buf[..n], &mut raw),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    self.closed = true;
                    return Err(StreamError::Io {
                        path: self.path.clone(),
                        source: e,
                    });
                }
            }
        }
        let mut out = Vec::with_capacity(raw.len());
        for l in raw {
            self.line_no += 1;
            let text = String::from_utf8_lossy(&l);
            match Record::from_line(&text) {
                Ok(r) => {
                    if self.line_no == 1 {
                        check_header(&self.path, &r, &text)?;
                    }
                    out.push(r);
                }
                Err(e) if self.line_no == 1 => {
                    let _ = e;
                    return Err(StreamError::NotAStream {
                        path: self.path.clone(),
                        first: text.chars().take(80).collect(),
                    });
                }
                Err(e) => {
                    self.bad += 1;
                    tracing::warn!("{}:{}: skipped: {e}", self.path, self.line_no);
                }
            }
        }
        Ok(out)
    }

    /// The publisher closed the connection (the run ended, or let this viewer go).
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Lines skipped: too long, or not records.
    pub fn skipped(&self) -> u64 {
        self.bad + self.lines.skipped
    }
}

fn check_header(path: &str, r: &Record, text: &str) -> Result<(), StreamError> {
    match r {
        Record::Header(h) if h.format == FORMAT => Ok(()),
        _ => Err(StreamError::NotAStream {
            path: path.to_string(),
            first: text.chars().take(80).collect(),
        }),
    }
}

/// Reads a recorded stream. Every line must be a record (an error names the line);
/// the first must be a header of this format.
pub fn read_file(path: &Path) -> Result<Vec<Record>, StreamError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| StreamError::Io {
        path: name.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (k, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        if l.len() > MAX_LINE_BYTES {
            return Err(StreamError::BadLine {
                path: name,
                line: k as u64 + 1,
                message: format!("longer than {MAX_LINE_BYTES} bytes"),
            });
        }
        let r = Record::from_line(l).map_err(|e| {
            if k == 0 {
                StreamError::NotAStream {
                    path: name.clone(),
                    first: l.chars().take(80).collect(),
                }
            } else {
                StreamError::BadLine {
                    path: name.clone(),
                    line: k as u64 + 1,
                    message: format!("column {}: {e}", e.column()),
                }
            }
        })?;
        if k == 0 {
            check_header(&name, &r, l)?;
        }
        out.push(r);
    }
    if out.is_empty() {
        return Err(StreamError::NotAStream {
            path: name,
            first: String::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads_and_overlong_lines_are_skipped_and_counted() {
        let mut l = Lines::default();
        let mut out = Vec::new();
        l.feed(b"ab", &mut out);
        l.feed(b"c\nde", &mut out);
        l.feed(b"\n", &mut out);
        assert_eq!(out, vec![b"abc".to_vec(), b"de".to_vec()]);
        out.clear();
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        l.feed(&long, &mut out);
        l.feed(b"yyy\nok\n", &mut out);
        assert_eq!(out, vec![b"ok".to_vec()]);
        assert_eq!(l.skipped, 1);
        assert!(
            l.buf.capacity() <= MAX_LINE_BYTES * 2,
            "no unbounded growth"
        );
    }
}
