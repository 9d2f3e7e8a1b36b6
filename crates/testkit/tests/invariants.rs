//! The invariants hold on both shipped rule sets for patients drawn by the strategy, and find
//! rule sets broken on purpose (the way `pathway verify`'s tests break them), with a shrunk
//! counterexample.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use pathway_core::{FactValue, Profile};
use pathway_rules::{MS_SPASTICITY_TOML, PatientGenerator, RuleSet};
use pathway_testkit::invariants::{self, Counterexample, Property};
use pathway_testkit::profiles;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRng, TestRunner};

const KNEE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/rulesets/illustration-knee-pain.toml"
);

fn knee_text() -> String {
    std::fs::read_to_string(KNEE).unwrap()
}

fn edited(text: &str, from: &str, to: &str) -> RuleSet {
    let changed = text.replacen(from, to, 1);
    assert_ne!(changed, text, "the fixture changed: `{from}` not found");
    RuleSet::from_toml("broken.toml", &changed).unwrap()
}

/// Runs `check` over drawn patients (reproducibly); the shrunk failing patient and what
/// failed, if any.
fn search(
    rs: &RuleSet,
    cases: u32,
    check: impl Fn(&RuleSet, &Profile) -> Result<(), Counterexample>,
) -> Option<(Profile, Counterexample)> {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    let mut runner = TestRunner::new_with_rng(config, rng);
    match runner.run(&profiles(rs), |p| {
        check(rs, &p)?;
        Ok(())
    }) {
        Ok(()) => None,
        Err(TestError::Fail(_, p)) => {
            let e = check(rs, &p).unwrap_err();
            Some((p, e))
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn every_invariant_holds_on_the_shipped_rule_set() {
    let rs = RuleSet::ms_spasticity().unwrap();
    proptest!(ProptestConfig::with_cases(96), |(p in profiles(&rs))| {
        invariants::check_all(&rs, &p)?;
    });
    // And on the seeded generator's patients, as `pathway verify` draws them.
    for p in PatientGenerator::new(&rs, 11).take(40) {
        invariants::check_all(&rs, &p).unwrap();
    }
}

#[test]
fn every_invariant_holds_on_the_illustration_rule_set() {
    let rs = RuleSet::load(KNEE).unwrap();
    proptest!(ProptestConfig::with_cases(256), |(p in profiles(&rs))| {
        invariants::check_all(&rs, &p)?;
    });
}

#[test]
fn a_removed_declined_rule_is_found_and_shrunk() {
    let rs = edited(
        MS_SPASTICITY_TOML,
        "[[rule]]\nid = \"R16.declined\"\ntiers = [1, 2, 3, 4]\neffect = \"exclude\"\nwhen = \"outcome = declined\"\ntext = \"The person declined this step.\"\nsource = [\"PRODUCT\", \"NG220\"]\n",
        "",
    );
    let (p, e) = search(&rs, 64, invariants::check_all).expect("found");
    assert_eq!(e.property, Property::DeclinedIsNeverOffered, "{e}");
    let step = e.step.clone().unwrap();
    assert!(
        e.observed.starts_with(&format!("step {step} declined")),
        "{e}"
    );
    assert!(!e.rules.is_empty(), "{e}");
    // Shrunk: nothing recorded beyond what puts the patient under the pathway.
    assert!(p.steps.is_empty(), "{p:?}");
    assert!(
        p.medications.is_empty() && p.unknown_medications.is_empty(),
        "{p:?}"
    );
    assert!(p.facts.len() <= 2, "{p:?}");
}

#[test]
fn a_removed_declined_rule_is_found_in_the_illustration() {
    let text = knee_text();
    let i = text.find("[[rule]]\nid = \"I5.declined\"").unwrap();
    let j = i + text[i..].find("source = [\"ILL\"]\n").unwrap() + "source = [\"ILL\"]\n".len();
    let rs = RuleSet::from_toml("broken.toml", &format!("{}{}", &text[..i], &text[j..])).unwrap();
    let (p, e) = search(&rs, 64, invariants::declined_is_never_offered).expect("found");
    assert_eq!(e.property, Property::DeclinedIsNeverOffered);
    assert!(e.to_string().starts_with(
        "declined-or-not-tolerated-is-never-offered: step exercise declined (past) is offer"
    ));
    assert_eq!(p.facts.len(), 1, "{p:?}");
    assert!(p.steps.is_empty() && p.medications.is_empty(), "{p:?}");
}

#[test]
fn an_exclusion_turned_into_a_caution_breaks_its_assertion() {
    let rs = edited(
        MS_SPASTICITY_TOML,
        "id = \"R20.tizanidine.cyp1a2-inhibitor\"\nsteps = [\"tizanidine\"]\neffect = \"exclude\"",
        "id = \"R20.tizanidine.cyp1a2-inhibitor\"\nsteps = [\"tizanidine\"]\neffect = \"caution\"",
    );
    let (p, e) = search(&rs, 256, invariants::declared_assertions_hold).expect("found");
    assert!(
        e.observed
            .starts_with("assertion A.tizanidine.strong-cyp1a2-inhibitor"),
        "{e}"
    );
    assert_eq!(e.step.as_deref(), Some("tizanidine"));
    // The patient needs the inhibitor, and shrinking removed every other class.
    assert_eq!(
        p.medications.iter().collect::<Vec<_>>(),
        ["cyp1a2-strong-inhibitor"],
        "{p:?}"
    );
    assert!(p.unknown_medications.is_empty(), "{p:?}");
}

#[test]
fn a_relaxed_if_unknown_breaks_the_pregnancy_assertion() {
    let rs = edited(
        MS_SPASTICITY_TOML,
        "effect = \"caution\"\nwhen = \"pregnant\"\ntext = \"Pregnancy (or",
        "effect = \"caution\"\nwhen = \"pregnant\"\nif-unknown = \"ignore\"\ntext = \"Pregnancy (or",
    );
    let (p, e) = search(&rs, 256, invariants::check_all).expect("found");
    assert_eq!(e.property, Property::DeclaredAssertionsHold, "{e}");
    assert!(e.observed.starts_with("assertion A.pregnancy"), "{e}");
    assert!(e.observed.contains("is Unknown"), "{e}");
    // Pregnancy status not known: not recorded, or recorded as unknown.
    assert!(
        p.facts
            .get("pregnant")
            .is_none_or(|v| *v == FactValue::Unknown),
        "{p:?}"
    );
}

/// A caution on both answers of a fact, each relaxed when the fact is unknown: unknown is then
/// more permissive than either answer, which only the unknown invariant sees.
#[test]
fn unknown_more_permissive_than_every_value_is_found() {
    let text = knee_text().replacen(
        "when = \"pregnant\"\ntext",
        "when = \"pregnant\"\nif-unknown = \"ignore\"\ntext",
        1,
    ) + "\n[[rule]]\nid = \"I10.medicines.not-pregnant\"\nsteps = [\"medicine-a\", \"medicine-b\"]\n\
         effect = \"caution\"\nwhen = \"not pregnant\"\nif-unknown = \"ignore\"\n\
         text = \"Illustration: a caution on the other answer.\"\nsource = [\"ILL\"]\n";
    let rs = RuleSet::from_toml("broken.toml", &text).unwrap();
    let (p, e) = search(&rs, 256, invariants::check_all).expect("found");
    assert_eq!(e.property, Property::UnknownIsNeverMorePermissive, "{e}");
    assert!(
        e.observed
            .contains("with `pregnant` unknown it is offer, more permissive"),
        "{e}"
    );
    assert!(
        matches!(e.step.as_deref(), Some("medicine-a" | "medicine-b")),
        "{e}"
    );
    // The rules behind the unknown answer's status.
    assert!(!e.rules.is_empty(), "{e}");
    assert!(p.facts.contains_key("pregnant"), "{p:?}");
    // Medicines need exercise tried without full relief: that record stays.
    assert_eq!(p.steps.len(), 1, "{p:?}");
}
