//! Hashes, `SHA256SUMS`, signatures and verification.
//!
//! `SHA256SUMS` has `sha256sum`'s format (`<hex>  <name>`), so `sha256sum -c
//! SHA256SUMS` in the bundle checks it with no tool of ours. The signature
//! (`manifest.json.sig`) is an OpenSSH `SSHSIG` (Ed25519) over `manifest.json`, which
//! lists every other file's hash: `ssh-keygen -Y verify -f allowed_signers -I
//! <identity> -n capsule-hil-evidence -s manifest.json.sig < manifest.json` checks it.

use crate::{EvidenceError, io_err};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The checksum file.
pub const SUMS: &str = "SHA256SUMS";
/// The signature file.
pub const SIGNATURE: &str = "manifest.json.sig";
/// The manifest.
pub const MANIFEST: &str = "manifest.json";
/// The `SSHSIG` namespace of bundle signatures.
pub const NAMESPACE: &str = "capsule-hil-evidence";

/// SHA-256 (lower-case hex) and size of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64), EvidenceError> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| io_err(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex(&h.finalize()), n))
}

/// SHA-256 of bytes, lower-case hex.
pub fn sha256_bytes(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// True for a name a bundle may hold: one plain file name under the project's id
/// rule ([`capsule_scenario::spec::safe_id`]: letters, digits, `.`, `_`, `-`, not
/// starting with `.` or `-`), so a name read from a file is never a path.
pub fn is_bundle_name(n: &str) -> bool {
    capsule_scenario::spec::safe_id(n)
}

/// The regular files of a bundle directory by name (sub-directories and other kinds
/// are reported as names too, so that verification sees them as additions).
pub fn list(dir: &Path) -> Result<Vec<String>, EvidenceError> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

/// `sha256sum` lines for `entries` (name, hex).
pub fn sums_text(entries: &[(String, String)]) -> String {
    entries.iter().map(|(n, h)| format!("{h}  {n}\n")).collect()
}

/// Parses `sha256sum` output: name to hash. Errors name the line.
pub fn parse_sums(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for (i, l) in text.lines().enumerate() {
        let bad = || format!("{SUMS}:{}: not `<sha256>  <name>`: `{l}`", i + 1);
        let (h, n) = l.split_once("  ").ok_or_else(bad)?;
        let n = n.strip_prefix('*').unwrap_or(n);
        if h.len() != 64 || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        if !is_bundle_name(n) {
            return Err(format!(
                "{SUMS}:{}: `{n}` is not a plain file name of a bundle",
                i + 1
            ));
        }
        if m.insert(n.to_string(), h.to_ascii_lowercase()).is_some() {
            return Err(format!("{SUMS}:{}: `{n}` is listed twice", i + 1));
        }
    }
    Ok(m)
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// Files whose content differs from their recorded hash.
    pub changed: Vec<String>,
    /// Files listed but absent.
    pub missing: Vec<String>,
    /// Files present but not listed.
    pub added: Vec<String>,
    /// Disagreements between `manifest.json` and `SHA256SUMS`.
    pub inconsistent: Vec<String>,
    /// The signature: `None` not checked, `Some(Ok(()))` good, `Some(Err(why))` bad.
    pub signature: Option<Result<(), String>>,
    /// Files checked.
    pub checked: usize,
}

impl Verification {
    /// True when nothing changed, appeared or disappeared and a checked signature
    /// holds.
    pub fn clean(&self) -> bool {
        self.changed.is_empty()
            && self.missing.is_empty()
            && self.added.is_empty()
            && self.inconsistent.is_empty()
            && !matches!(self.signature, Some(Err(_)))
    }
}

/// Verifies a bundle: every hash of `SHA256SUMS`, the file list against the
/// directory, `SHA256SUMS` against the manifest's own list, and, given a public key
/// (OpenSSH format), the signature. `Err` when the bundle cannot be read at all (no
/// `SHA256SUMS`: a bundle cut short, or not a bundle).
pub fn verify(dir: &Path, pubkey: Option<&Path>) -> Result<Verification, EvidenceError> {
    let sums_path = dir.join(SUMS);
    let text = capsule_files_read(&sums_path)?;
    let sums = parse_sums(&text).map_err(|cause| EvidenceError::Bundle {
        path: dir.display().to_string(),
        cause,
    })?;
    let mut v = Verification::default();
    for (name, want) in &sums {
        let p = dir.join(name);
        if !p.is_file() {
            v.missing.push(name.clone());
            continue;
        }
        let (got, _) = sha256_file(&p)?;
        v.checked += 1;
        if got != *want {
            v.changed.push(name.clone());
        }
    }
    for n in list(dir)? {
        if n != SUMS && n != SIGNATURE && !sums.contains_key(&n) {
            v.added.push(n);
        }
    }
    // The manifest lists every file but itself; both lists must agree.
    if let Ok(mtext) = capsule_files_read(&dir.join(MANIFEST))
        && let Ok(m) = serde_json::from_str::<crate::manifest::Manifest>(&mtext)
    {
        for f in &m.files {
            match sums.get(&f.path) {
                Some(h) if *h == f.sha256 => {}
                Some(_) => v.inconsistent.push(format!(
                    "{}: manifest and {SUMS} give different hashes",
                    f.path
                )),
                None => v
                    .inconsistent
                    .push(format!("{}: in the manifest, not in {SUMS}", f.path)),
            }
        }
        for n in sums.keys() {
            if n != MANIFEST && !m.files.iter().any(|f| f.path == *n) {
                v.inconsistent
                    .push(format!("{n}: in {SUMS}, not in the manifest"));
            }
        }
    } else if sums.contains_key(MANIFEST) && !v.missing.iter().any(|m| m == MANIFEST) {
        v.inconsistent
            .push(format!("{MANIFEST}: not a manifest this version reads"));
    }
    if let Some(k) = pubkey {
        v.signature = Some(check_signature(dir, k));
    }
    Ok(v)
}

fn capsule_files_read(p: &Path) -> Result<String, EvidenceError> {
    capsule_files::read_text(p, "bundle file").map_err(|e| EvidenceError::Bundle {
        path: p.display().to_string(),
        cause: e.to_string(),
    })
}

/// Makes an Ed25519 key pair in OpenSSH's formats: `path` (private, mode 0600) and
/// `path.pub`. Refuses to overwrite either.
pub fn keygen(path: &Path, comment: &str) -> Result<(), EvidenceError> {
    let pubp = pub_path(path);
    for p in [path, pubp.as_path()] {
        if p.exists() {
            return Err(EvidenceError::Key(format!(
                "{}: exists; not overwritten",
                p.display()
            )));
        }
    }
    let mut key =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .map_err(|e| EvidenceError::Key(format!("cannot make a key: {e}")))?;
    key.set_comment(comment);
    key.write_openssh_file(path, ssh_key::LineEnding::LF)
        .map_err(|e| io_err(path, e))?;
    key.public_key()
        .write_openssh_file(&pubp)
        .map_err(|e| io_err(&pubp, e))?;
    Ok(())
}

fn pub_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    s.into()
}

/// Reads an unencrypted OpenSSH Ed25519 private key.
pub fn read_private_key(path: &Path) -> Result<ssh_key::PrivateKey, EvidenceError> {
    let k = ssh_key::PrivateKey::read_openssh_file(path).map_err(|e| {
        EvidenceError::Key(format!(
            "{}: not an OpenSSH private key: {e}",
            path.display()
        ))
    })?;
    if k.is_encrypted() {
        return Err(EvidenceError::Key(format!(
            "{}: the key is encrypted; use an unencrypted key (ssh-keygen -p -N '')",
            path.display()
        )));
    }
    if k.algorithm() != ssh_key::Algorithm::Ed25519 {
        return Err(EvidenceError::Key(format!(
            "{}: an {} key; bundles are signed with Ed25519",
            path.display(),
            k.algorithm()
        )));
    }
    Ok(k)
}

/// Signs the bundle's manifest: writes `manifest.json.sig`.
pub fn sign(dir: &Path, key: &ssh_key::PrivateKey) -> Result<(), EvidenceError> {
    let mp = dir.join(MANIFEST);
    let msg = std::fs::read(&mp).map_err(|e| io_err(&mp, e))?;
    let sig = key
        .sign(NAMESPACE, ssh_key::HashAlg::Sha512, &msg)
        .map_err(|e| EvidenceError::Key(format!("cannot sign: {e}")))?;
    let pem = sig
        .to_pem(ssh_key::LineEnding::LF)
        .map_err(|e| EvidenceError::Key(format!("cannot encode the signature: {e}")))?;
    crate::write_atomic(&dir.join(SIGNATURE), pem.as_bytes())
}

fn check_signature(dir: &Path, pubkey: &Path) -> Result<(), String> {
    let k = ssh_key::PublicKey::read_openssh_file(pubkey)
        .map_err(|e| format!("{}: not an OpenSSH public key: {e}", pubkey.display()))?;
    let sp = dir.join(SIGNATURE);
    let pem = std::fs::read_to_string(&sp)
        .map_err(|e| format!("{}: no signature ({e})", sp.display()))?;
    let sig = ssh_key::SshSig::from_pem(pem.as_bytes())
        .map_err(|e| format!("{}: not an SSHSIG signature: {e}", sp.display()))?;
    let msg = std::fs::read(dir.join(MANIFEST)).map_err(|e| format!("{MANIFEST}: {e}"))?;
    k.verify(NAMESPACE, &msg, &sig).map_err(|_| {
        format!(
            "the signature does not match {MANIFEST} with key {}",
            pubkey.display()
        )
    })
}
