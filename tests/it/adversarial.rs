//! Rule files written to take the tool down: each must load (or be refused with a located
//! diagnostic), lint and evaluate without exhausting the stack, memory or time. These were
//! found by fuzzing and by hand; before the fixes the first two aborted `pathway check` and the
//! next two took 15 GB and 40 s. Sizes are measured in `benches/pathway.rs` (`adversarial`),
//! never timed here.

use pathway::core::{Date, Profile, Status};
use pathway::rules::{ErrorKind, LoadError, RuleSet};

use crate::support::only;

/// The illustration rule set, a small ladder written only through the public format.
const BASE: &str = include_str!("../../fixtures/rulesets/illustration-knee-pain.toml");

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}\n")
}

fn load(text: &str) -> Result<RuleSet, LoadError> {
    RuleSet::from_toml("adversarial.toml", text)
}

/// A rule on `exercise` with this condition.
fn exclude_exercise_when(condition: &str) -> String {
    format!(
        "[[rule]]\nid = \"X1.exercise\"\nsteps = [\"exercise\"]\neffect = \"exclude\"\nwhen = \"{condition}\"\ntext = \"Adversarial.\"\nsource = [\"ILL\"]\n"
    )
}

/// Someone with knee pain, pregnancy and kidney function not recorded.
fn patient() -> Profile {
    Profile::new(Date::constant(2026, 11, 30), 40).with_fact("knee-pain", true)
}

/// The one error, which must be located in the file.
fn located_error(err: &LoadError, needle: &str) -> (usize, usize) {
    let d = only(err);
    assert!(d.message().contains(needle), "{d}");
    let loc = d.location().expect("located");
    (loc.line, loc.column)
}

#[test]
fn a_condition_nested_5000_parentheses_deep_is_refused_at_the_level_too_deep() {
    let text = with(&exclude_exercise_when(&format!(
        "{}pregnant{}",
        "(".repeat(5_000),
        ")".repeat(5_000)
    )));
    let err = load(&text).expect_err("too deep");
    let (line, column) = located_error(&err, "nests more than 64 levels");
    let line_text = text.lines().nth(line - 1).unwrap();
    assert!(line_text.starts_with("when = \"((("), "{line_text}");
    // `when = "` is 8 characters; the 65th parenthesis is the first too deep.
    assert_eq!(column, 8 + 64 + 1);
    // Just within the limit loads.
    let ok = with(&exclude_exercise_when(&format!(
        "{}pregnant{}",
        "(".repeat(64),
        ")".repeat(64)
    )));
    load(&ok).expect("64 levels load");
}

#[test]
fn sixteen_thousand_nots_are_refused_not_a_stack_overflow() {
    let text = with(&exclude_exercise_when(&format!(
        "{}pregnant",
        "not ".repeat(16_000)
    )));
    let err = load(&text).expect_err("too deep");
    let (_, column) = located_error(&err, "nests more than 64 levels");
    assert_eq!(column, 8 + 4 * 64 + 1);
}

/// Derived facts `d0 .. d{n}`, each `d(i-1) or d(i-1) or ...` (`k` times) over pregnancy and
/// kidney function at the bottom: a small file whose shared sub-conditions, walked as a tree,
/// are k^n paths.
fn shared_chain(n: usize, k: usize) -> String {
    let mut t = String::from(
        "[derived.d0]\nwhen = \"pregnant and kidney-function < 30\"\ntext = \"d0\"\nsource = [\"ILL\"]\n",
    );
    for i in 1..=n {
        let when = vec![format!("d{}", i - 1); k].join(" or ");
        t.push_str(&format!(
            "[derived.d{i}]\nwhen = \"{when}\"\ntext = \"d{i}\"\nsource = [\"ILL\"]\n"
        ));
    }
    t.push_str(&exclude_exercise_when(&format!("d{n} and knee-pain")));
    t
}

#[test]
fn derived_facts_sharing_sub_conditions_load_lint_and_explain_in_linear_time() {
    // k = 16 over 9 levels: 16^9 paths. Walked as a tree this took more than 15 GB.
    let text = with(&shared_chain(9, 16));
    assert!(text.len() < BASE.len() + 3_000, "a small file");
    let rs = load(&text).expect("loads");
    // Lint decides the exclusion can fire (each derived fact is expanded once).
    assert!(
        rs.warnings()
            .iter()
            .all(|w| w.rule_id() != Some("X1.exercise")),
        "{:?}",
        rs.warnings()
    );
    let rec = rs.evaluate(&patient()).expect("evaluates");
    let exercise = rec.step("exercise").expect("step");
    // Unknown pregnancy and kidney function may exclude exercise: caution, both listed.
    assert_eq!(exercise.status, Status::Caution);
    for fact in ["pregnant", "kidney-function"] {
        assert!(
            exercise.missing.iter().any(|m| m == fact),
            "{fact}: {:?}",
            exercise.missing
        );
    }
    let x1 = exercise
        .reasons
        .iter()
        .find(|r| &*r.rule == "X1.exercise")
        .expect("the exclusion is a reason");
    let facts: Vec<&str> = x1.facts.iter().map(|f| f.fact.as_str()).collect();
    assert!(facts.contains(&"pregnant"), "{facts:?}");
    assert!(facts.contains(&"kidney-function"), "{facts:?}");
    // Recorded, the exclusion holds and is explained by the same facts.
    let known = patient()
        .with_fact("pregnant", true)
        .with_fact("kidney-function", 20);
    let rec = rs.evaluate(&known).expect("evaluates");
    assert_eq!(rec.step("exercise").unwrap().status, Status::Excluded);
}

#[test]
fn an_or_of_200000_comparisons_loads_lints_and_evaluates() {
    // Distinct leaves: linting used to compare each with all before it (31 s).
    let condition = (0..200_000)
        .map(|i| format!("kidney-function > {}.{i:06}", 100 + i % 40))
        .collect::<Vec<_>>()
        .join(" or ");
    let text = with(&exclude_exercise_when(&condition));
    let rs = load(&text).expect("loads");
    assert!(
        rs.warnings()
            .iter()
            .all(|w| w.rule_id() != Some("X1.exercise"))
    );
    let rec = rs.evaluate(&patient()).expect("evaluates");
    let exercise = rec.step("exercise").unwrap();
    assert_eq!(exercise.status, Status::Caution);
    assert_eq!(exercise.missing, vec!["kidney-function".to_owned()]);
    let low = rs
        .evaluate(&patient().with_fact("kidney-function", 90))
        .expect("evaluates");
    assert_eq!(low.step("exercise").unwrap().status, Status::Offer);
    let high = rs
        .evaluate(&patient().with_fact("kidney-function", 145))
        .expect("evaluates");
    assert_eq!(high.step("exercise").unwrap().status, Status::Excluded);
}

/// `n` derived facts, each reading the one before, and an exclusion on the last.
fn chain(n: usize) -> String {
    let mut t = String::from("[derived.d0]\nwhen = \"pregnant\"\ntext = \"d0\"\n");
    for i in 1..n {
        t.push_str(&format!(
            "[derived.d{i}]\nwhen = \"d{} and knee-pain\"\ntext = \"d{i}\"\n",
            i - 1
        ));
    }
    t + &exclude_exercise_when(&format!("d{}", n - 1))
}

#[test]
fn a_chain_of_derived_facts_deeper_than_the_limit_is_refused_once_where_it_passes_it() {
    // 2,000 derived facts each reading the one before: compiling it would recurse 2,000 deep.
    let err = load(&with(&chain(2_000))).expect_err("too deep");
    // Only the first fact past 16 levels is reported, at its condition.
    let d = only(&err);
    assert_eq!(d.rule_id(), Some("d16"));
    assert!(d.message().contains("more than 16 deep"), "{d}");
    assert!(d.location().is_some());
    // Sixteen levels load.
    let rs = load(&with(&chain(16))).expect("16 levels load");
    let rec = rs.evaluate(&patient()).unwrap();
    assert_eq!(rec.step("exercise").unwrap().status, Status::Caution);
}

#[test]
fn a_long_cycle_of_derived_facts_is_reported_without_a_quadratic_search() {
    let n = 5_000;
    let mut t = String::new();
    for i in 0..n {
        t.push_str(&format!(
            "[derived.d{i}]\nwhen = \"d{} or pregnant\"\ntext = \"d{i}\"\n",
            (i + 1) % n
        ));
    }
    let err = load(&with(&t)).expect_err("circular");
    assert!(
        err.diagnostics()
            .iter()
            .filter(|d| d.kind() == ErrorKind::Circular)
            .count()
            == n,
        "every fact on the cycle is named"
    );
}
