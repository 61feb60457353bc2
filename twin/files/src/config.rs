//! Loading TOML data files (vehicles, check cases) with errors that name the file, the
//! line, the column and the field.
//!
//! The physics core does no I/O: callers read the file and hand over its name and text.

use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::ops::Range;

/// A data-file error: where it is and what was expected. Always fatal for the load.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}:{column}: field `{field}`: {message}")]
pub struct ConfigError {
    /// The file name as given by the caller.
    pub file: String,
    /// 1-based line of the offending key or value.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Dotted field path, e.g. `vehicle.mass_kg` or `parachutes[1].cd`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq)]
pub enum PathSeg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A field path (`a.b[2].c`), used to point validation errors at the source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldPath(pub Vec<PathSeg>);

impl FieldPath {
    /// Parses `a.b[2].c`.
    pub fn parse(s: &str) -> Self {
        let mut segs = Vec::new();
        for part in s.split('.') {
            if part.is_empty() {
                continue;
            }
            let (key, rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !key.is_empty() {
                segs.push(PathSeg::Key(key.to_string()));
            }
            for idx in rest.split('[').filter(|x| !x.is_empty()) {
                if let Ok(i) = idx.trim_end_matches(']').parse() {
                    segs.push(PathSeg::Index(i));
                }
            }
        }
        FieldPath(segs)
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for s in &self.0 {
            match s {
                PathSeg::Key(k) => {
                    if !first {
                        write!(f, ".")?;
                    }
                    write!(f, "{k}")?;
                }
                PathSeg::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        if first {
            write!(f, "(top level)")?;
        }
        Ok(())
    }
}

/// A source text with its name, for locating errors.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// File name shown in errors.
    pub name: &'a str,
    /// Full text.
    pub text: &'a str,
}

impl<'a> Source<'a> {
    /// Wraps a name and text.
    pub fn new(name: &'a str, text: &'a str) -> Self {
        Self { name, text }
    }

    /// 1-based (line, column) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// Builds an error at a byte span.
    pub fn error_at(
        &self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = span.map_or((1, 1), |s| self.line_col(s.start));
        ConfigError {
            file: self.name.to_string(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }

    /// Builds an error for a field path, located at the field's value if the field
    /// exists, else at the closest enclosing table that does.
    pub fn error_at_field(&self, path: &str, message: impl Into<String>) -> ConfigError {
        let span = locate(self.text, &FieldPath::parse(path));
        self.error_at(span, path, message)
    }

    /// Deserialises the whole text into `T`, mapping every syntax or type error to a
    /// located [`ConfigError`].
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let de = toml::Deserializer::parse(self.text)
            .map_err(|e| self.error_at(e.span(), "(syntax)", clean(e.message())))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." {
                "(top level)".to_string()
            } else {
                path
            };
            let inner = e.into_inner();
            let span = inner
                .span()
                .or_else(|| locate(self.text, &FieldPath::parse(&path)));
            self.error_at(span, path, clean(inner.message()))
        })
    }
}

fn clean(msg: &str) -> String {
    msg.trim().replace('\n', " ")
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte span of the value at `path`, or of the deepest existing parent.
pub fn locate(text: &str, path: &FieldPath) -> Option<Range<usize>> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut best = Some(root.span());
    let mut cur: CurRef<'_, '_> = CurRef::Table(root.get_ref());
    for seg in &path.0 {
        let next = match (cur, seg) {
            (CurRef::Table(t), PathSeg::Key(k)) => t
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                .map(|(key, v)| {
                    // Point at the key for scalars (that is where a person looks) and at
                    // the value for tables and arrays.
                    let span = match v.get_ref() {
                        toml::de::DeValue::Table(_) | toml::de::DeValue::Array(_) => v.span(),
                        _ => key.span(),
                    };
                    (span, v.get_ref())
                }),
            (CurRef::Array(a), PathSeg::Index(i)) => a.get(*i).map(|v| (v.span(), v.get_ref())),
            _ => None,
        };
        let Some((span, value)) = next else { break };
        best = Some(span);
        cur = match value {
            toml::de::DeValue::Table(t) => CurRef::Table(t),
            toml::de::DeValue::Array(a) => CurRef::Array(a),
            _ => CurRef::Leaf,
        };
    }
    best
}

#[derive(Clone, Copy)]
enum CurRef<'a, 'i> {
    Table(&'a toml::de::DeTable<'i>),
    Array(&'a toml::de::DeArray<'i>),
    Leaf,
}

#[allow(dead_code)]
fn _assert_cow(_: Cow<'_, str>) {}

/// Collects validation failures for one file, each tied to a field path.
#[derive(Debug, Default)]
pub struct Checks {
    failures: Vec<(String, String)>,
}

impl Checks {
    /// Records a failure unless `ok`.
    pub fn require(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.failures.push((field.into(), message.into()));
        }
    }

    /// `value` must be finite and > 0.
    pub fn positive(&mut self, field: &str, value: f64, unit: &str) {
        self.require(
            value.is_finite() && value > 0.0,
            field,
            format!("expected a positive number ({unit}), found {value}"),
        );
    }

    /// `value` must be finite and >= 0.
    pub fn non_negative(&mut self, field: &str, value: f64, unit: &str) {
        self.require(
            value.is_finite() && value >= 0.0,
            field,
            format!("expected a number >= 0 ({unit}), found {value}"),
        );
    }

    /// `value` must lie in `[lo, hi]`.
    pub fn in_range(&mut self, field: &str, value: f64, lo: f64, hi: f64, unit: &str) {
        self.require(
            value.is_finite() && value >= lo && value <= hi,
            field,
            format!("expected a number in [{lo}, {hi}] ({unit}), found {value}"),
        );
    }

    /// Every value of `values` must lie in `[lo, hi]`.
    pub fn all_in_range(&mut self, field: &str, values: &[f64], lo: f64, hi: f64, unit: &str) {
        if let Some(v) = values
            .iter()
            .find(|v| !(v.is_finite() && **v >= lo && **v <= hi))
        {
            self.fail(
                field,
                format!("expected numbers in [{lo}, {hi}] ({unit}), found {v}"),
            );
        }
    }

    /// Adds a failure unconditionally.
    pub fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.failures.push((field.into(), message.into()));
    }

    /// The first failure, located in `src`.
    pub fn finish(self, src: &Source<'_>) -> Result<(), ConfigError> {
        match self.failures.into_iter().next() {
            None => Ok(()),
            Some((field, msg)) => Err(src.error_at_field(&field, msg)),
        }
    }

    /// The first failure as (field, message), if any.
    pub fn first(&self) -> Option<(&str, &str)> {
        self.failures.first().map(|(f, m)| (f.as_str(), m.as_str()))
    }

    /// True when nothing failed.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}
