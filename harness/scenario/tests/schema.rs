//! The JSON Schema for editors (`scenarios/scenario.schema.json`) stays true: every
//! library scenario validates against it, it rejects what the parser rejects (unknown
//! fields, unknown fault kinds, bad enums), and its enumerations are the parser's lists.
//! The validator below implements the draft-07 subset the schema uses (including
//! `allOf`, `anyOf`, `not`, `if`/`then`/`else` and `pattern`).

use capsule_scenario::spec::{MODES, NODES, SIGNALS, THRUSTERS};
use serde_json::Value;

fn schema() -> Value {
    serde_json::from_str(include_str!("../../../scenarios/scenario.schema.json"))
        .expect("schema is JSON")
}

/// Errors of `v` against schema `s`, with JSON-pointer-like paths.
fn validate(s: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    let passes = |sub: &Value| {
        let mut e = Vec::new();
        validate(sub, v, path, &mut e);
        e.is_empty()
    };
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        validate(sub, v, path, errs);
    }
    if let Some(alts) = s.get("anyOf").and_then(Value::as_array)
        && !alts.iter().any(passes)
    {
        errs.push(format!("{path}: matches none of the anyOf alternatives"));
    }
    if let Some(n) = s.get("not")
        && passes(n)
    {
        errs.push(format!("{path}: matches the `not` schema {n}"));
    }
    if let Some(cond) = s.get("if") {
        let branch = if passes(cond) { "then" } else { "else" };
        if let Some(b) = s.get(branch) {
            validate(b, v, path, errs);
        }
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        let ok = alts
            .iter()
            .filter(|a| {
                let mut e = Vec::new();
                validate(a, v, path, &mut e);
                e.is_empty()
            })
            .count();
        if ok != 1 {
            errs.push(format!("{path}: matches {ok} of the oneOf alternatives"));
        }
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errs.push(format!("{path}: expected {c}, found {v}"));
    }
    if let (Some(p), Some(x)) = (s.get("pattern").and_then(Value::as_str), v.as_str())
        && !regex_lite::Regex::new(p)
            .expect("schema pattern")
            .is_match(x)
    {
        errs.push(format!("{path}: {v} does not match {p}"));
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errs.push(format!("{path}: {v} is not one of {e:?}"));
    }
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            _ => false,
        };
        if !ok {
            errs.push(format!("{path}: expected {t}, found {v}"));
            return;
        }
    }
    if let Some(x) = v.as_f64() {
        if let Some(m) = s.get("minimum").and_then(Value::as_f64)
            && x < m
        {
            errs.push(format!("{path}: {x} < {m}"));
        }
        if let Some(m) = s.get("maximum").and_then(Value::as_f64)
            && x > m
        {
            errs.push(format!("{path}: {x} > {m}"));
        }
    }
    if let Some(o) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_str()
                && !o.contains_key(r)
            {
                errs.push(format!("{path}: missing `{r}`"));
            }
        }
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(ps, x, &format!("{path}/{k}"), errs),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errs.push(format!("{path}: unknown field `{k}`"));
                }
                None => {}
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(n) = s.get("minItems").and_then(Value::as_u64)
            && (a.len() as u64) < n
        {
            errs.push(format!("{path}: fewer than {n} items"));
        }
        if let Some(n) = s.get("maxItems").and_then(Value::as_u64)
            && (a.len() as u64) > n
        {
            errs.push(format!("{path}: more than {n} items"));
        }
        if let Some(it) = s.get("items") {
            for (k, x) in a.iter().enumerate() {
                validate(it, x, &format!("{path}/{k}"), errs);
            }
        }
    }
}

fn errors_of(toml_text: &str) -> Vec<String> {
    let v: toml::Value = toml::from_str(toml_text).expect("TOML");
    let j = serde_json::to_value(v).expect("to JSON");
    let mut errs = Vec::new();
    validate(&schema(), &j, "", &mut errs);
    errs
}

fn library() -> Vec<(std::path::PathBuf, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let t = std::fs::read_to_string(&p).expect("read");
            (p, t)
        })
        .collect()
}

#[test]
fn every_library_scenario_validates_and_points_editors_at_the_schema() {
    let lib = library();
    assert!(lib.len() >= 20, "{} scenarios", lib.len());
    for (p, text) in &lib {
        let errs = errors_of(text);
        assert!(errs.is_empty(), "{}: {errs:?}", p.display());
        assert!(
            text.starts_with("#:schema ./scenario.schema.json\n"),
            "{} lacks the editor schema line",
            p.display()
        );
    }
}

#[test]
fn the_schema_rejects_what_the_parser_rejects() {
    let (_, nominal) = library()
        .into_iter()
        .find(|(p, _)| p.ends_with("nominal-entry.toml"))
        .expect("SCN-001");
    assert!(errors_of(&nominal).is_empty());
    for (bad, why) in [
        (
            nominal.replace("seed = 1\n", "seed = 1\nsede = 2\n"),
            "unknown field `sede`",
        ),
        (
            nominal.replace("phase = \"entry\"", "phase = \"landing\""),
            "is not one of",
        ),
        (
            nominal.replace("phase = \"entry\"", "phase = \"descent\""),
            "missing `descent`",
        ),
        (
            nominal.replace("seed = 1\n", "seed = 1\ndrogue_fired_s_before = 3.0\n"),
            "matches the `not` schema",
        ),
        (
            nominal.replace("signal = \"truth.mach\"", "signal = \"truth.machh\""),
            "matches none of the anyOf alternatives",
        ),
        (
            nominal.replace("signal = \"truth.mach\"", "signal = \"can.FC_Status\""),
            "matches none of the anyOf alternatives",
        ),
        (
            format!(
                "{nominal}\n[[inject]]\nid = \"x\"\nat_s = 1.0\nfault = {{ kind = \"melt\" }}\n"
            ),
            "oneOf",
        ),
        (
            format!(
                "{nominal}\n[[inject]]\nid = \"x\"\nat_s = 1.0\nfault = {{ kind = \"thruster\", thruster = \"roll_pos_a\" }}\n"
            ),
            "oneOf",
        ),
        (
            nominal.replace(
                "never = \"pyro_no_fire:*\"",
                "never = \"pyro_no_fire:*\"\nduring = \"LANDED\"",
            ),
            "is not one of",
        ),
        (
            nominal.replace("window_s = [0.0, 0.5]", "window_s = [0.0]"),
            "fewer than 2 items",
        ),
    ] {
        let errs = errors_of(&bad);
        assert!(
            errs.iter().any(|e| e.contains(why)),
            "expected `{why}` in {errs:?}"
        );
    }
}

#[test]
fn the_schema_enumerations_are_the_parsers_lists() {
    let s = schema();
    let list = |ptr: &str| -> Vec<String> {
        s.pointer(ptr)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{ptr}"))
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let own = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        list("/properties/expect/items/properties/check/items/properties/signal/anyOf/0/enum"),
        own(SIGNALS)
    );
    assert_eq!(
        list("/properties/expect/items/properties/always/items/properties/signal/anyOf/0/enum"),
        own(SIGNALS)
    );
    assert_eq!(
        list("/properties/expect/items/properties/during/enum"),
        own(MODES)
    );
    assert_eq!(
        list("/properties/expect/items/properties/modes/items/enum"),
        own(MODES)
    );
    let faults = s
        .pointer("/properties/inject/items/properties/fault/oneOf")
        .and_then(Value::as_array)
        .expect("fault kinds");
    let by_kind = |k: &str| {
        faults
            .iter()
            .find(|f| f.pointer("/properties/kind/const") == Some(&Value::from(k)))
            .unwrap_or_else(|| panic!("kind {k}"))
    };
    let enum_of = |f: &Value, field: &str| -> Vec<String> {
        f.pointer(&format!("/properties/{field}/enum"))
            .and_then(Value::as_array)
            .expect("enum")
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(enum_of(by_kind("node_silent"), "node"), own(NODES));
    assert_eq!(enum_of(by_kind("thruster"), "thruster"), own(&THRUSTERS));
}
