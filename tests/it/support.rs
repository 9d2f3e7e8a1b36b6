//! Shared helpers: the shipped rule set, the spec's vignettes, and a reader of the vignettes'
//! plain `patient` summaries.

use std::path::PathBuf;
use std::sync::OnceLock;

use pathway::core::{Date, FactValue, Outcome, Profile, Sex, StepRecord};
use pathway::rules::{Diagnostic, ErrorKind, LoadError, RuleSet};
use serde_json::Value;

/// The evaluation date of every vignette.
pub const VIGNETTE_DATE: Date = Date::constant(2026, 11, 22);

pub fn ruleset() -> &'static RuleSet {
    static RS: OnceLock<RuleSet> = OnceLock::new();
    RS.get_or_init(|| RuleSet::ms_spasticity().unwrap_or_else(|e| panic!("{e}")))
}

pub fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/spec")
}

pub fn read_json(name: &str) -> Value {
    let path = spec_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn vignettes() -> &'static Vec<Value> {
    static V: OnceLock<Vec<Value>> = OnceLock::new();
    V.get_or_init(|| {
        let v = read_json("vignettes.json");
        let list = v.as_array().expect("vignettes.json is a list").clone();
        assert!(
            list.len() >= 20,
            "expected the 20 vignettes, found {}",
            list.len()
        );
        list
    })
}

/// The strings of a JSON array (empty for anything else).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Builds a profile from a vignette's plain `patient` summary.
pub fn profile_from_summary(p: &Value) -> Profile {
    let rs = ruleset();
    let age = p["age"].as_u64().expect("age") as u16;
    let sex = match p["sex"].as_str() {
        Some("male") => Sex::Male,
        Some("female") => Sex::Female,
        Some("other") => Sex::Other,
        _ => Sex::Unknown,
    };
    let mut profile = Profile::new(VIGNETTE_DATE, age).with_sex(sex);
    for c in strings(&p["conditions"]) {
        let fact = if let Some((_, right)) = c.split_once("->") {
            right
                .trim()
                .split([' ', '('])
                .next()
                .unwrap_or("")
                .to_owned()
        } else {
            match c.to_lowercase().as_str() {
                "multiple sclerosis" => "multiple-sclerosis".to_owned(),
                "spasticity" | "spastic paraparesis" => "spasticity".to_owned(),
                other => panic!("condition summary not understood: {other}"),
            }
        };
        assert!(
            rs.fact(&fact).is_some(),
            "condition maps to unknown fact {fact}"
        );
        profile = profile.with_fact(&fact, true);
    }
    if let Some(facts) = p["facts"].as_object() {
        for (k, v) in facts {
            let value = match v {
                Value::Bool(b) => FactValue::Bool(*b),
                Value::Number(n) => FactValue::Number(n.as_f64().unwrap()),
                Value::Null => FactValue::Unknown,
                Value::String(s) if s == "not recorded" => continue,
                Value::String(s) if s == "unknown" => FactValue::Unknown,
                Value::String(s) => FactValue::Code(s.clone()),
                other => panic!("fact {k}: {other}"),
            };
            profile = profile.with_fact(k, value);
        }
    }
    for a in strings(&p["allergies"]) {
        let lower = a.to_lowercase();
        let step = rs
            .ladder()
            .steps()
            .find(|s| lower.contains(s.id.as_str()))
            .unwrap_or_else(|| panic!("allergy not understood: {a}"));
        profile = profile.with_hypersensitivity(step.id.as_str());
    }
    let outcomes = p["prior_outcomes"].as_object().cloned().unwrap_or_default();
    let mut current = Vec::new();
    for m in strings(&p["current_medications"]) {
        let (name, class) = match m.split_once('(') {
            Some((n, c)) => (
                n.trim().to_owned(),
                Some(c.trim_end_matches(')').trim().to_owned()),
            ),
            None => (m.trim().to_owned(), None),
        };
        match class {
            Some(c) if rs.medications().contains_key(&c) => profile = profile.with_medication(&c),
            _ => {
                assert!(
                    rs.ladder().step(&name).is_some(),
                    "medication not understood: {m}"
                );
                current.push(name);
            }
        }
    }
    current.extend(strings(&p["current_non_drug_steps"]));
    for step in rs.ladder().steps() {
        let id = step.id.as_str();
        let outcome = outcomes
            .get(id)
            .and_then(Value::as_str)
            .map(|o| Outcome::parse(o).unwrap_or_else(|| panic!("outcome {o}")));
        let is_current = current.iter().any(|c| c == id);
        match (is_current, outcome) {
            (true, o) => profile = profile.with_step(id, StepRecord::current(o)),
            (false, Some(o)) => profile = profile.with_step(id, StepRecord::past(o)),
            (false, None) => {}
        }
    }
    profile
}

/// The one error (not a lint warning) a rule set was refused for.
pub fn only(err: &LoadError) -> &Diagnostic {
    let errors: Vec<_> = err
        .diagnostics()
        .iter()
        .filter(|d| d.kind() != ErrorKind::Lint)
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    errors[0]
}
