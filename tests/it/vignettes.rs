//! Every vignette of the spec, from its plain summary, meets its `expect`; and the full
//! per-step statuses agree with the golden reading except where the rules of section 4 decide
//! otherwise (each such case is listed and explained here).

use pathway::core::Status;
use serde_json::Value;

use crate::support::{profile_from_summary, read_json, ruleset, strings, vignettes};

/// Checks a recommendation against a vignette's `expect`; returns the failures.
pub fn check_expect(id: &str, rec: &pathway::rules::Recommendation, expect: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    let status = |s: &str| rec.status(s).unwrap_or_else(|| panic!("{id}: no step {s}"));
    for s in strings(&expect["offer"]) {
        if !status(&s).is_offered() {
            failures.push(format!("{id}: {s} should be offered, is {}", status(&s)));
        }
    }
    for s in strings(&expect["exclude"]) {
        if !matches!(status(&s), Status::NotYet | Status::Excluded) {
            failures.push(format!(
                "{id}: {s} should be not-yet or excluded, is {}",
                status(&s)
            ));
        }
    }
    for s in strings(&expect["caution"]) {
        if status(&s) != Status::Caution {
            failures.push(format!("{id}: {s} should be caution, is {}", status(&s)));
        }
    }
    failures
}

#[test]
fn every_vignette_meets_its_expectation_from_the_summary() {
    let rs = ruleset();
    let mut failures = Vec::new();
    for v in vignettes() {
        let id = v["id"].as_str().unwrap();
        let rec = rs.evaluate(&profile_from_summary(&v["patient"])).unwrap();
        assert!(rec.applicable, "{id}: the pathway should apply");
        failures.extend(check_expect(id, &rec, &v["expect"]));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn golden_statuses_agree_step_by_step() {
    let golden = read_json("vignettes-golden.json");
    let rs = ruleset();
    let mut differences = Vec::new();
    for v in vignettes() {
        let id = v["id"].as_str().unwrap();
        let rec = rs.evaluate(&profile_from_summary(&v["patient"])).unwrap();
        let Some(steps) = golden[id].as_object() else {
            continue;
        };
        for (step, g) in steps {
            let want = g["status"].as_str().unwrap();
            let got = rec.status(step).unwrap().as_str();
            if want != got {
                differences.push(format!("{id} {step}: golden {want}, engine {got}"));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn every_offered_step_says_why() {
    let rs = ruleset();
    for v in vignettes() {
        let rec = rs.evaluate(&profile_from_summary(&v["patient"])).unwrap();
        for s in &rec.steps {
            assert!(
                s.reasons.iter().any(|r| r.decisive),
                "{} {}: {} with no decisive reason",
                v["id"],
                s.step,
                s.status
            );
            for r in &s.reasons {
                assert!(!r.text.is_empty() && !r.rule.is_empty());
            }
        }
    }
}
