//! Result files: checked and opened before anything runs, written atomically.
//!
//! Each output (`--json`, `--junit`) is checked when the command starts: its directory
//! must exist and be writable (a temporary file is made there now, so a full or
//! read-only file system fails before hours of runs, not after), an existing file at
//! the path must be a regular file (never a device such as `/dev/full`), two outputs
//! may not share a path, and no output may be one of the run's input files. At the end
//! each output is written to its temporary file and renamed over the path, on its own:
//! a failure of one does not lose the other.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An output file, checked and ready.
#[derive(Debug)]
pub struct Output {
    /// Which output it is (the option's name: `json`, `junit`).
    pub what: String,
    /// The path as given.
    pub path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

/// The absolute form of a path whose file may not exist yet: its directory resolved.
fn resolved(p: &Path) -> Result<PathBuf> {
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = p
        .file_name()
        .with_context(|| format!("{}: not a file name", p.display()))?;
    let dir = dir.canonicalize().with_context(|| {
        format!(
            "output {}: directory {} does not exist",
            p.display(),
            dir.display()
        )
    })?;
    Ok(match dir.join(name).canonicalize() {
        Ok(full) => full,
        Err(_) => dir.join(name),
    })
}

/// Checks `outputs` (name, path) against each other and the `inputs`, and opens a
/// temporary file beside each.
pub fn prepare(outputs: &[(&str, &Path)], inputs: &[PathBuf]) -> Result<Vec<Output>> {
    let mut inputs_resolved = Vec::new();
    for i in inputs {
        if let Ok(r) = i.canonicalize() {
            inputs_resolved.push((i.clone(), r));
        }
    }
    let mut seen: Vec<(&str, PathBuf)> = Vec::new();
    let mut out = Vec::new();
    for (what, p) in outputs {
        let r = resolved(p)?;
        if let Some((other, _)) = seen.iter().find(|(_, q)| *q == r) {
            bail!("--{what} {}: the same file as --{other}", p.display());
        }
        if let Some((input, _)) = inputs_resolved.iter().find(|(_, q)| *q == r) {
            bail!(
                "--{what} {}: that is an input of the run ({}); refusing to overwrite it",
                p.display(),
                input.display()
            );
        }
        if let Ok(m) = std::fs::metadata(&r)
            && !m.is_file()
        {
            bail!("--{what} {}: exists and is not a regular file", p.display());
        }
        let dir = r.parent().unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".hil-out-")
            .tempfile_in(dir)
            .with_context(|| {
                format!(
                    "--{what} {}: cannot write in {}",
                    p.display(),
                    dir.display()
                )
            })?;
        seen.push((what, r));
        out.push(Output {
            what: (*what).to_string(),
            path: p.to_path_buf(),
            tmp,
        });
    }
    Ok(out)
}

impl Output {
    /// Writes `bytes` and renames the file into place.
    pub fn write(mut self, bytes: &[u8]) -> Result<()> {
        let p = self.path.clone();
        let ctx = || format!("cannot write {}", p.display());
        self.tmp.write_all(bytes).with_context(ctx)?;
        self.tmp.as_file().sync_all().with_context(ctx)?;
        self.tmp
            .persist(&p)
            .map_err(|e| e.error)
            .with_context(ctx)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clashes_and_devices_are_refused_before_anything_runs() {
        let d = tempfile::tempdir().expect("dir");
        let input = d.path().join("s.toml");
        std::fs::write(&input, "x").expect("write");
        let a = d.path().join("a.json");
        let e = prepare(&[("json", &a), ("junit", &a)], &[]).expect_err("same file");
        assert!(e.to_string().contains("the same file as --json"), "{e}");
        let e = prepare(&[("json", &input)], std::slice::from_ref(&input)).expect_err("input");
        assert!(e.to_string().contains("refusing to overwrite"), "{e}");
        let e = prepare(&[("json", Path::new("/dev/full"))], &[]).expect_err("device");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = prepare(&[("json", &d.path().join("no/such/dir/x.json"))], &[]).expect_err("dir");
        assert!(e.to_string().contains("does not exist"), "{e}");
        let outs = prepare(&[("json", &a)], std::slice::from_ref(&input)).expect("ok");
        for o in outs {
            o.write(b"{}").expect("written");
        }
        assert_eq!(std::fs::read_to_string(&a).expect("read"), "{}");
    }
}
