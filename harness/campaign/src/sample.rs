//! Drawing run `i`'s sample and applying it to the nominal files.
//!
//! Run `i` draws from ChaCha8 seeded with the campaign seed, on stream `i`: its sample
//! depends on (seed, i) alone, never on which runs came before, how many run at once
//! or which shard it is in. The dispersions are drawn in the file's order.

use crate::spec::{Apply, CampaignSpec, Dispersion};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One dispersed parameter of one run (for a list of numbers, such as a coefficient
/// table scaled as a whole, `nominal` and `value` are its first entry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drawn {
    /// The parameter's path.
    pub parameter: String,
    /// The number drawn from the distribution.
    pub drawn: f64,
    /// The parameter's nominal value.
    pub nominal: f64,
    /// The value the run flew with.
    pub value: f64,
}

/// A uniform number in [0, 1) from the top 53 bits of the generator.
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal number (Box-Muller on two uniforms; the second of the pair is
/// not kept, so each draw uses exactly two numbers of the stream).
fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - unit(rng); // (0, 1]
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn draw_one(d: &Dispersion, rng: &mut ChaCha8Rng) -> f64 {
    if let Some(u) = &d.uniform {
        return u.min + (u.max - u.min) * unit(rng);
    }
    if let Some(n) = &d.normal {
        return n.mean + n.sigma * std_normal(rng);
    }
    if let Some(t) = &d.truncated_normal {
        // Validated: at least ~1e-4 of the mass is inside, so this ends; the cap keeps
        // it bounded whatever happens (the last draw is clamped).
        let mut x = t.mean + t.sigma * std_normal(rng);
        for _ in 0..1_000_000 {
            if (t.min..=t.max).contains(&x) {
                return x;
            }
            x = t.mean + t.sigma * std_normal(rng);
        }
        return x.clamp(t.min, t.max);
    }
    if let Some(c) = &d.choice {
        let u = unit(rng);
        let w: Vec<f64> = c
            .weights
            .clone()
            .unwrap_or_else(|| vec![1.0; c.values.len()]);
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        for (v, wi) in c.values.iter().zip(&w) {
            acc += wi / total;
            if u < acc {
                return *v;
            }
        }
        return c.values.last().copied().unwrap_or(0.0);
    }
    0.0
}

/// The numbers run `index` draws, one per dispersion, in the file's order.
pub fn draw(spec: &CampaignSpec, index: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.campaign.seed);
    rng.set_stream(index);
    spec.disperse
        .iter()
        .map(|d| draw_one(d, &mut rng))
        .collect()
}

/// The seed run `index` gives its scenario (sensor noise, bus faults): from (campaign
/// seed, index) alone, on a generator of its own so that it does not shift the draws.
pub fn run_seed(spec: &CampaignSpec, index: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.campaign.seed ^ 0x5eed_5eed_5eed_5eed);
    rng.set_stream(index);
    rng.next_u64() >> 1
}

/// One step of a parameter path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Splits `a.b[2].c` into its file (`a`) and steps.
fn parse_path(p: &str) -> Result<(String, Vec<Seg>), String> {
    let mut segs = Vec::new();
    for part in p.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() {
            return Err(format!("`{p}`: empty name in the path"));
        }
        segs.push(Seg::Key(key.to_string()));
        let mut rest = rest;
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return Err(format!("`{p}`: `[` without `]`"));
            };
            let i: usize = r[..end]
                .parse()
                .map_err(|_| format!("`{p}`: `[{}]` is not an index", &r[..end]))?;
            segs.push(Seg::Index(i));
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("`{p}`: unexpected `{rest}`"));
        }
    }
    match segs.first() {
        Some(Seg::Key(f)) => {
            let f = f.clone();
            Ok((f, segs.split_off(1)))
        }
        _ => Err(format!("`{p}`: empty path")),
    }
}

/// The number at `segs` in `root`. A name applied to a list picks the element whose
/// `id` or `name` it is (`inject.baro-frozen`, `parachutes.drogue`).
fn number_at<'a>(root: &'a mut Value, segs: &[Seg], path: &str) -> Result<&'a mut Value, String> {
    let mut v = root;
    for (k, s) in segs.iter().enumerate() {
        let here = || {
            segs[..=k]
                .iter()
                .map(|s| match s {
                    Seg::Key(n) => n.clone(),
                    Seg::Index(i) => format!("[{i}]"),
                })
                .collect::<Vec<_>>()
                .join(".")
        };
        v = match (s, v) {
            (Seg::Key(n), Value::Object(m)) => m
                .get_mut(n)
                .ok_or_else(|| format!("`{path}`: the file has no `{}`", here()))?,
            (Seg::Key(n), Value::Array(a)) => a
                .iter_mut()
                .find(|e| {
                    e.get("id").and_then(Value::as_str) == Some(n)
                        || e.get("name").and_then(Value::as_str) == Some(n)
                })
                .ok_or_else(|| format!("`{path}`: no element with id or name `{n}`"))?,
            (Seg::Index(i), Value::Array(a)) => {
                let len = a.len();
                a.get_mut(*i)
                    .ok_or_else(|| format!("`{path}`: index {i} of a list of {len}"))?
            }
            _ => return Err(format!("`{path}`: `{}` is not a table or list", here())),
        };
    }
    if all_numbers(v) {
        Ok(v)
    } else {
        Err(format!(
            "`{path}`: not a number in the nominal file (it is {})",
            match v {
                Value::Null => "absent",
                Value::Bool(_) => "a boolean",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "a table",
                Value::Number(_) => "a number",
            }
        ))
    }
}

/// A number, or a (nested) non-empty list of numbers only.
fn all_numbers(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::Array(a) => !a.is_empty() && a.iter().all(all_numbers),
        _ => false,
    }
}

/// The first number in a number or list of numbers.
fn first_number(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::Array(a) => a.first().map_or(0.0, first_number),
        _ => 0.0,
    }
}

/// Applies `op` with `x` to every number in `v` (one number, or every entry of a
/// table column such as an aerodynamic coefficient table).
fn apply_to(v: &mut Value, op: Apply, x: f64, path: &str) -> Result<(), String> {
    match v {
        Value::Array(a) => a.iter_mut().try_for_each(|e| apply_to(e, op, x, path)),
        Value::Number(n) => {
            let nominal = n.as_f64().unwrap_or(0.0);
            let value = match op {
                Apply::Add => nominal + x,
                Apply::Scale => nominal * x,
                Apply::Set => x,
            };
            let is_int = n.is_u64() || n.is_i64();
            *v = if is_int && value.fract() == 0.0 && value.abs() < 9e15 {
                Value::from(value as i64)
            } else {
                serde_json::Number::from_f64(value)
                    .map(Value::Number)
                    .ok_or_else(|| format!("`{path}`: the sample gives {value}"))?
            };
            Ok(())
        }
        _ => Err(format!("`{path}`: not a number")),
    }
}

/// The nominal files as JSON, by the name paths use (`scenario`, `case`, `vehicle`).
pub type Files = Vec<(String, Value)>;

/// Checks that every dispersion names a number in the nominal files; returns, per
/// dispersion, its index and the error, for the ones that do not.
pub fn check_paths(spec: &CampaignSpec, files: &Files) -> Vec<(usize, String)> {
    let mut bad = Vec::new();
    for (k, d) in spec.disperse.iter().enumerate() {
        let mut files = files.clone();
        if let Err(e) = locate(&mut files, &d.parameter).map(|_| ()) {
            bad.push((k, e));
        }
    }
    bad
}

fn locate<'a>(files: &'a mut Files, path: &str) -> Result<&'a mut Value, String> {
    let (file, segs) = parse_path(path)?;
    let root = files
        .iter_mut()
        .find(|(n, _)| *n == file)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("`{path}`: no file `{file}` in this campaign"))?;
    number_at(root, &segs, path)
}

/// Applies run `index`'s sample to (a copy of) the nominal files.
pub fn apply(
    spec: &CampaignSpec,
    files: &Files,
    index: u64,
) -> Result<(Files, Vec<Drawn>), String> {
    let mut files = files.clone();
    let mut out = Vec::new();
    for (d, x) in spec.disperse.iter().zip(draw(spec, index)) {
        let v = locate(&mut files, &d.parameter)?;
        let nominal = first_number(v);
        apply_to(v, d.apply, x, &d.parameter)?;
        let value = first_number(v);
        out.push(Drawn {
            parameter: d.parameter.clone(),
            drawn: x,
            nominal,
            value,
        });
    }
    Ok((files, out))
}

/// A JSON value as TOML text (absent optional fields dropped), so that a sampled file
/// is read back through the same validation as a file on disk.
pub fn to_toml(v: &Value) -> Result<String, String> {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, x)| !x.is_null())
                    .map(|(k, x)| (k.clone(), strip(x)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            x => x.clone(),
        }
    }
    toml::to_string(&strip(v)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use twin_core::config::Source;

    fn spec(body: &str) -> CampaignSpec {
        let text = format!(
            "[campaign]\nid = \"T\"\nmode = \"physics\"\ncase = \"c.toml\"\nruns = 10\nseed = 9\n{body}"
        );
        CampaignSpec::from_toml(&Source::new("t.toml", &text)).expect("valid")
    }

    #[test]
    fn a_run_draws_the_same_numbers_whatever_ran_before() {
        let s = spec(
            "[[disperse]]\nparameter = \"case.entry.speed_m_s\"\nnormal = { mean = 0.0, sigma = 5.0 }\n\n[[disperse]]\nparameter = \"vehicle.mass.dry_mass_kg\"\napply = \"scale\"\nuniform = { min = 0.9, max = 1.1 }\n",
        );
        let a = draw(&s, 7);
        let _ = draw(&s, 3);
        assert_eq!(a, draw(&s, 7));
        assert_ne!(a, draw(&s, 8));
        assert!((0.9..1.1).contains(&a[1]));
    }

    #[test]
    fn distributions_have_their_moments() {
        // 20000 runs: mean and sigma of the normal within 3 standard errors, the
        // uniform's mean, the truncated normal inside its bounds, the choice's weights.
        let s = spec(
            "[[disperse]]\nparameter = \"case.a\"\nnormal = { mean = 2.0, sigma = 3.0 }\n[[disperse]]\nparameter = \"case.b\"\nuniform = { min = -1.0, max = 3.0 }\n[[disperse]]\nparameter = \"case.c\"\ntruncated_normal = { mean = 0.0, sigma = 1.0, min = -0.5, max = 1.5 }\n[[disperse]]\nparameter = \"case.d\"\nchoice = { values = [1.0, 2.0], weights = [1.0, 3.0] }\n",
        );
        let n = 20_000;
        let xs: Vec<Vec<f64>> = (0..n).map(|i| draw(&s, i)).collect();
        let col = |k: usize| xs.iter().map(|x| x[k]).collect::<Vec<_>>();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let sd = |v: &[f64]| {
            let m = mean(v);
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        };
        let a = col(0);
        assert!(
            (mean(&a) - 2.0).abs() < 3.0 * 3.0 / (n as f64).sqrt(),
            "{}",
            mean(&a)
        );
        assert!((sd(&a) - 3.0).abs() < 0.06, "{}", sd(&a));
        let b = col(1);
        assert!((mean(&b) - 1.0).abs() < 3.0 * (16.0f64 / 12.0).sqrt() / (n as f64).sqrt());
        assert!(b.iter().all(|x| (-1.0..3.0).contains(x)));
        assert!(col(2).iter().all(|x| (-0.5..=1.5).contains(x)));
        let twos = col(3).iter().filter(|x| **x == 2.0).count() as f64 / n as f64;
        assert!((twos - 0.75).abs() < 0.015, "{twos}");
    }

    #[test]
    fn paths_find_numbers_and_name_what_is_missing() {
        let files: Files = vec![(
            "scenario".into(),
            serde_json::json!({"initial": {"entry": {"speed_m_s": 7400.0}},
                "inject": [{"id": "late", "at_s": 10.0}], "m": [[1.0, 2.0]]}),
        )];
        let s = spec("");
        let mut s = s;
        for (p, apply) in [
            ("scenario.initial.entry.speed_m_s", Apply::Add),
            ("scenario.inject.late.at_s", Apply::Scale),
            ("scenario.m[0][1]", Apply::Set),
        ] {
            s.disperse.push(Dispersion {
                parameter: p.into(),
                apply,
                uniform: Some(crate::spec::Uniform { min: 2.0, max: 2.0 }),
                normal: None,
                truncated_normal: None,
                choice: None,
            });
        }
        let (out, drawn) = apply(&s, &files, 0).expect("applies");
        assert_eq!(out[0].1["initial"]["entry"]["speed_m_s"], 7402.0);
        assert_eq!(out[0].1["inject"][0]["at_s"], 20.0);
        assert_eq!(out[0].1["m"][0][1], 2.0);
        assert_eq!(drawn[1].nominal, 10.0);
        let mut f = files.clone();
        assert!(
            locate(&mut f, "scenario.initial.entry.nope")
                .expect_err("an error")
                .contains("no `initial.entry.nope`")
        );
        assert!(
            locate(&mut f, "scenario.inject.early.at_s")
                .expect_err("an error")
                .contains("no element with id or name `early`")
        );
        assert!(
            locate(&mut f, "scenario.m[3]")
                .expect_err("an error")
                .contains("index 3 of a list of 1")
        );
        assert!(
            locate(&mut f, "scenario.initial")
                .expect_err("an error")
                .contains("not a number")
        );
        // A table of numbers is one parameter: every entry changes.
        assert!(locate(&mut f, "scenario.m").is_ok());
        assert!(
            locate(&mut f, "vehicle.mass")
                .expect_err("an error")
                .contains("no file `vehicle`")
        );
    }
}
