//! Safety invariants of the shipped rule set, for every generated patient.

use pathway::core::{FactValue, Outcome, Profile, Status, StepRecord};
use pathway::rules::{Effect, FactKind, PatientGenerator, Recommendation, RuleSet, Tri};
use proptest::prelude::*;

use crate::support::ruleset;

fn patient(seed: u64) -> Profile {
    PatientGenerator::new(ruleset(), seed).profile()
}

fn eval(p: &Profile) -> Recommendation {
    ruleset().evaluate(p).expect("generated profiles are valid")
}

/// The absolute rows of section 2, written out independently of the rule file: (step, how to
/// make the row true). If the rule file lost one, the property below fails.
/// Makes one absolute row true for a profile.
type MakeTrue = Box<dyn Fn(Profile) -> Profile>;

fn absolute_rows() -> Vec<(&'static str, MakeTrue)> {
    let fact = |f: &'static str| -> MakeTrue { Box::new(move |p: Profile| p.with_fact(f, true)) };
    let allergy =
        |s: &'static str| -> MakeTrue { Box::new(move |p: Profile| p.with_hypersensitivity(s)) };
    vec![
        ("massage", fact("fever")),
        ("massage", fact("thrombosis")),
        ("massage", fact("jaundice")),
        ("massage", fact("active-infection")),
        ("massage", fact("recent-injury")),
        ("baclofen", allergy("baclofen")),
        ("gabapentin", allergy("gabapentin")),
        ("tizanidine", allergy("tizanidine")),
        (
            "tizanidine",
            Box::new(|p: Profile| p.with_medication("cyp1a2-strong-inhibitor")),
        ),
        ("tizanidine", fact("hepatic-impairment")),
        ("dantrolene", fact("hepatic-impairment")),
        ("dantrolene", fact("jaundice")),
        ("dantrolene", fact("relies-on-tone")),
        ("dantrolene", allergy("dantrolene")),
        ("diazepam", fact("neuromuscular-junction-disorder")),
        ("clonazepam", fact("neuromuscular-junction-disorder")),
        ("diazepam", fact("respiratory-insufficiency")),
        ("clonazepam", fact("respiratory-insufficiency")),
        ("diazepam", fact("sleep-apnea")),
        ("clonazepam", fact("sleep-apnea")),
        ("diazepam", fact("narrow-angle-glaucoma")),
        ("clonazepam", fact("narrow-angle-glaucoma")),
        ("clonazepam", fact("hepatic-impairment")),
        ("diazepam", allergy("diazepam")),
        ("clonazepam", allergy("clonazepam")),
        ("nabiximols", fact("psychosis")),
        ("nabiximols", fact("breastfeeding")),
        ("nabiximols", allergy("nabiximols")),
        (
            "nabiximols",
            Box::new(|mut p: Profile| {
                p.age = p.age.min(17);
                p
            }),
        ),
        ("botulinum-toxin", fact("neuromuscular-junction-disorder")),
        ("botulinum-toxin", fact("injection-site-infection")),
        ("botulinum-toxin", allergy("botulinum-toxin")),
        ("intrathecal-baclofen", fact("active-infection")),
        ("intrathecal-baclofen", fact("injection-site-infection")),
        (
            "intrathecal-baclofen",
            Box::new(|p: Profile| p.with_fact("itb-test-dose", "negative")),
        ),
        ("intrathecal-baclofen", allergy("baclofen")),
        ("intrathecal-baclofen", allergy("intrathecal-baclofen")),
        ("rhizotomy", fact("active-infection")),
        ("tenotomy", fact("active-infection")),
    ]
}

/// Values to try for a fact: every code, both booleans, numbers around the thresholds rules use.
fn completions(kind: &FactKind) -> Vec<FactValue> {
    match kind {
        FactKind::Bool => vec![true.into(), false.into()],
        FactKind::Code { values, .. } => {
            values.iter().map(|v| FactValue::Code(v.clone())).collect()
        }
        FactKind::Number {
            min, max, integer, ..
        } => {
            let lo = min.unwrap_or(f64::MIN);
            let hi = max.unwrap_or(f64::MAX);
            [
                0.0, 1.0, 2.0, 3.0, 4.0, 15.0, 24.9, 25.0, 29.9, 30.0, 59.9, 60.0, 90.0, 120.0,
            ]
            .into_iter()
            .filter(|x| *x >= lo && *x <= hi && (!integer || x.fract() == 0.0))
            .map(FactValue::Number)
            .collect()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A step with a true absolute contraindication is never continue, offer or caution.
    #[test]
    fn absolute_contraindication_is_never_offered(seed: u64, row in 0usize..39) {
        let rows = absolute_rows();
        let (step, make_true) = &rows[row % rows.len()];
        let p = make_true(patient(seed));
        let rec = eval(&p);
        let s = rec.step(step).unwrap();
        prop_assert!(
            !s.status.is_offered() || !rec.applicable && s.status == Status::NotYet,
            "{step} is {} with an absolute contraindication", s.status
        );
        if rec.applicable {
            prop_assert_eq!(s.status, Status::Excluded, "{}", step);
        }
    }

    /// Internal consistency: any exclusion that came out true excludes the step.
    #[test]
    fn a_true_exclusion_always_excludes(seed: u64) {
        let rec = eval(&patient(seed));
        for s in &rec.steps {
            if s.reasons.iter().any(|r| r.effect == Effect::Exclude && r.condition == Tri::True) {
                prop_assert_eq!(s.status, Status::Excluded, "{}", s.step);
            }
        }
    }

    /// A declined or not-tolerated step is never offered again (trigger review excepted: R2
    /// keeps it offered whatever happened).
    #[test]
    fn declined_or_not_tolerated_is_never_offered(seed: u64, step in 1usize..15, current: bool, declined: bool) {
        let rs = ruleset();
        let id = rs.ladder().step_at(step).unwrap().id.to_string();
        let outcome = if declined { Outcome::Declined } else { Outcome::NotTolerated };
        let p = patient(seed).with_step(&id, StepRecord { current, outcome: Some(outcome) });
        let status = eval(&p).status(&id).unwrap();
        prop_assert!(matches!(status, Status::Excluded | Status::NotYet), "{id} {outcome} is {status}");
    }

    /// R21: replacing a known fact with "unknown" never makes a step more permissive than the
    /// fact's most permissive value would; wherever some value of the fact would change what a
    /// step's status says now (`not-yet` and `excluded` both say "not now"), the fact is listed
    /// as missing for that step.
    #[test]
    fn unknown_is_monotone_and_reported(seed: u64, pick: usize) {
        let rs = ruleset();
        let base = patient(seed);
        let def = &rs.facts()[pick % rs.facts().len()];
        let unknown = base.clone().with_fact(&def.id, FactValue::Unknown);
        let with_unknown = eval(&unknown);
        let known: Vec<Recommendation> = completions(&def.kind)
            .into_iter()
            .map(|v| eval(&base.clone().with_fact(&def.id, v)))
            .collect();
        for (i, s) in with_unknown.steps.iter().enumerate() {
            let best = known.iter().map(|r| r.steps[i].status.permissiveness()).max().unwrap();
            prop_assert!(
                s.status.permissiveness() <= best,
                "{}: unknown {} gives {}, more permissive than any value", s.step, def.id, s.status
            );
            let changes = known.iter().any(|r| r.steps[i].status.now() != s.status.now());
            if changes {
                prop_assert!(
                    s.missing.contains(&def.id),
                    "{}: {} could change the status ({}) but is not listed as missing: {:?}",
                    s.step, def.id, s.status, s.missing
                );
            }

        }
    }

    /// The same input gives the same output, byte for byte, whatever the order of the keys in
    /// the profile's JSON.
    #[test]
    fn deterministic_and_independent_of_fact_order(seed: u64, shuffle_seed: u64) {
        let p = patient(seed);
        let a = serde_json::to_string(&eval(&p)).unwrap();
        let b = serde_json::to_string(&eval(&p)).unwrap();
        prop_assert_eq!(&a, &b);
        // Rebuild the JSON with the facts in a shuffled order.
        let mut v: serde_json::Value = serde_json::to_value(&p).unwrap();
        let facts = v["facts"].as_object().unwrap().clone();
        let mut entries: Vec<_> = facts.into_iter().collect();
        fastrand::Rng::with_seed(shuffle_seed).shuffle(&mut entries);
        let text = format!(
            "{{\"facts\":{{{}}},\"date\":{},\"age\":{},\"sex\":{},\"medications\":{},\"steps\":{},\"hypersensitivities\":{}}}",
            entries.iter().map(|(k, v)| format!("{k:?}:{v}")).collect::<Vec<_>>().join(","),
            v["date"], v["age"], v["sex"], v["medications"], v["steps"], v["hypersensitivities"]
        );
        v = serde_json::from_str(&text).unwrap();
        let shuffled: Profile = serde_json::from_value(v).unwrap();
        prop_assert_eq!(serde_json::to_string(&eval(&shuffled)).unwrap(), a);
    }

    /// Profiles and results survive a JSON round trip.
    #[test]
    fn serde_round_trips(seed: u64) {
        let p = patient(seed);
        let back: Profile = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        prop_assert_eq!(&back, &p);
        let rec = eval(&p);
        let rec_back: Recommendation = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
        prop_assert_eq!(rec_back, rec);
    }

    /// Every status is explained: at least one decisive reason, each with text and a source
    /// (the built-in "no indication" reason aside).
    #[test]
    fn every_status_is_explained(seed: u64) {
        for s in &eval(&patient(seed)).steps {
            prop_assert!(s.reasons.iter().any(|r| r.decisive), "{} has no decisive reason", s.step);
            for r in &s.reasons {
                prop_assert!(!r.text.is_empty());
                prop_assert!(!r.sources.is_empty() || &*r.rule == "pathway.no-indication", "{}", r.rule);
            }
        }
    }
}

/// Splits the rule file into its preamble and its `[[rule]]` blocks.
fn rule_blocks(text: &str) -> (String, Vec<String>) {
    let mut parts = text.split("\n[[rule]]\n");
    let head = parts.next().unwrap().to_owned();
    (head, parts.map(|b| format!("\n[[rule]]\n{b}")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Shuffling the rules in the file changes neither the hash nor any result.
    #[test]
    fn independent_of_rule_order(shuffle_seed: u64, seed: u64) {
        let (head, mut blocks) = rule_blocks(pathway::rules::MS_SPASTICITY_TOML);
        fastrand::Rng::with_seed(shuffle_seed).shuffle(&mut blocks);
        let text = format!("{head}\n{}", blocks.concat());
        let shuffled = RuleSet::from_toml("shuffled.toml", &text).unwrap();
        prop_assert_eq!(shuffled.stamp(), ruleset().stamp());
        let p = patient(seed);
        prop_assert_eq!(
            serde_json::to_string(&shuffled.evaluate(&p).unwrap()).unwrap(),
            serde_json::to_string(&eval(&p)).unwrap()
        );
    }
}

#[test]
fn rule_set_round_trips_through_toml() {
    let rs = ruleset();
    let again = RuleSet::from_toml("again.toml", &rs.to_toml()).unwrap();
    assert_eq!(again.stamp(), rs.stamp());
    assert_eq!(again.rules().count(), rs.rules().count());
    let mut g = PatientGenerator::new(rs, 7);
    for _ in 0..200 {
        let p = g.profile();
        assert_eq!(again.evaluate(&p).unwrap(), rs.evaluate(&p).unwrap());
    }
}

#[test]
fn generated_patients_cover_every_status() {
    let rs = ruleset();
    let mut seen = std::collections::BTreeSet::new();
    for p in PatientGenerator::new(rs, 1).take(2000) {
        for s in rs.evaluate(&p).unwrap().steps {
            seen.insert(s.status.as_str());
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}

/// Issue 19: `itb-test-dose` is missing for intrathecal baclofen only where its value could
/// change what the step says now (R12), not for a mild patient whose gate is shut anyway.
#[test]
fn the_test_dose_is_missing_only_where_it_could_change_intrathecal_baclofen() {
    let rs = ruleset();
    let base = |severity: i32| {
        Profile::new(pathway::Date::constant(2026, 11, 22), 50)
            .with_sex(pathway::Sex::Male)
            .with_fact("multiple-sclerosis", true)
            .with_fact("spasticity", true)
            .with_fact("spasticity-distribution", "generalized")
            .with_fact("spasticity-severity", severity)
            .with_fact("functional-impact", true)
            .with_fact("relies-on-tone", false)
    };
    let itb = |p: &Profile| {
        let rec = rs.evaluate(p).unwrap();
        let s = rec.step("intrathecal-baclofen").unwrap().clone();
        (s.status, s.missing.contains(&"itb-test-dose".to_owned()))
    };
    // New and mild: the gate is shut by severity and history; a test dose changes nothing now.
    assert_eq!(itb(&base(1)), (Status::NotYet, false));
    // R12: all but the test dose hold; a positive test would open the step.
    let due = base(3).with_step("baclofen", StepRecord::past(Outcome::Ineffective));
    assert_eq!(itb(&due), (Status::NotYet, true));
    assert_eq!(
        itb(&due.clone().with_fact("itb-test-dose", "negative")).0,
        Status::Excluded
    );
}

/// Issue 19, R24: a fact listed as a step's only missing fact has some value that changes what
/// the status says now. (Over a fixed population: with several missing facts, a fact is listed
/// where some values of the others let it change the status, which one fact alone cannot show.)
#[test]
fn a_steps_only_missing_fact_could_change_its_status() {
    let rs = ruleset();
    let mut checked = 0;
    for p in PatientGenerator::new(rs, 11).take(3_000) {
        let rec = rs.evaluate(&p).unwrap();
        for (i, s) in rec.steps.iter().enumerate() {
            let [f] = s.missing.as_slice() else { continue };
            let Some(def) = rs.fact(f) else { continue };
            checked += 1;
            let changes = completions(&def.kind).into_iter().any(|v| {
                rs.evaluate(&p.clone().with_fact(f, v))
                    .is_ok_and(|r| r.steps[i].status.now() != s.status.now())
            });
            assert!(
                changes,
                "{}: `{f}` is its only missing fact but no value changes {} ({})",
                s.step,
                s.status,
                serde_json::to_string(&p).unwrap()
            );
        }
    }
    assert!(checked > 1_000, "{checked} steps checked");
}
