//! Proptest strategies that draw patients from a rule set's own catalogue.
//!
//! [`profiles`] knows what [`PatientGenerator`](pathway_rules::PatientGenerator) knows (the
//! facts with their types, ranges and codes, what "not recorded" means for each, the medication
//! classes, the ladder's steps and outcomes) and draws with the same mix: most facts recorded,
//! some missing, some recorded as unknown, comorbidities mostly absent, a few medication
//! classes, hypersensitivities and step histories. On top of that it reads the rule set's
//! conditions: the facts its applicability rule needs are usually set so that the pathway
//! applies (otherwise every step would simply be `not-yet`), and numbers are drawn near the
//! thresholds rules compare them with as well as across their range, sometimes as an interval
//! (`<60`). Medication classes are sometimes only possibly current.
//!
//! Unlike a seeded generator it is a real proptest [`Strategy`]: a failing patient shrinks
//! towards a simpler one, first by dropping what is recorded (facts, step records, medication
//! classes, hypersensitivities, one at a time), then by simplifying what has to stay (a
//! number towards the low end of its range, a step record to a past one, an age towards 18).
//!
//! ```
//! use pathway_rules::RuleSet;
//! use pathway_testkit::strategy::profiles;
//! use proptest::prelude::*;
//!
//! let rs = RuleSet::ms_spasticity()?;
//! proptest!(ProptestConfig::with_cases(32), |(p in profiles(&rs))| {
//!     // Every drawn patient fits the rule set's catalogue.
//!     prop_assert!(rs.evaluate(&p).is_ok());
//! });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use pathway_core::{Date, FactValue, Interval, Outcome, Profile, Sex, StepKind, StepRecord};
use pathway_rules::{Absent, Evaluation, FactKind, RuleSet};
use proptest::prelude::*;
use proptest::strategy::{NewTree, ValueTree};
use proptest::test_runner::TestRunner;

use crate::sparse::Sparse;

/// Patients for `rs`, drawn from its own catalogue, dated 2026-11-22 (change it with
/// [`Profiles::date`]).
///
/// ```
/// use pathway_core::Date;
/// use pathway_rules::RuleSet;
/// use pathway_testkit::strategy::profiles;
/// use proptest::prelude::*;
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/rulesets/illustration-knee-pain.toml");
/// let rs = RuleSet::load(path)?;
/// let date = Date::constant(2027, 3, 1);
/// proptest!(ProptestConfig::with_cases(32), |(p in profiles(&rs).date(date))| {
///     prop_assert_eq!(p.date, date);
///     prop_assert!(p.facts.keys().all(|f| rs.fact(f).is_some()));
///     prop_assert!(rs.evaluate(&p).is_ok());
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn profiles(rs: &RuleSet) -> Profiles {
    Profiles::new(rs)
}

/// The strategy of [`profiles`]: patients for one rule set. It owns what it read from the rule
/// set, so it does not borrow it.
#[derive(Debug, Clone)]
pub struct Profiles {
    catalogue: Arc<Catalogue>,
    inner: BoxedStrategy<Profile>,
}

impl Profiles {
    /// Patients for `rs`, dated 2026-11-22 (as [`PatientGenerator`](pathway_rules::PatientGenerator)'s).
    pub fn new(rs: &RuleSet) -> Profiles {
        let date = Date::constant(2026, 11, 22);
        let catalogue = Arc::new(Catalogue::of(rs, date));
        Profiles {
            inner: build(&catalogue, date),
            catalogue,
        }
    }

    /// Sets the evaluation date of the profiles.
    #[must_use]
    pub fn date(self, date: Date) -> Profiles {
        Profiles {
            inner: build(&self.catalogue, date),
            catalogue: self.catalogue,
        }
    }
}

impl Strategy for Profiles {
    type Tree = Box<dyn ValueTree<Value = Profile>>;
    type Value = Profile;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        self.inner.new_tree(runner)
    }
}

/// How a fact is drawn.
#[derive(Debug, Clone, PartialEq)]
enum Role {
    /// Read by the applicability rule: usually this value, so that the pathway applies.
    Applies(bool),
    /// A problem-list fact (absent = false): usually absent, sometimes true.
    Comorbidity,
    /// Anything else: usually recorded, sometimes missing or recorded as unknown.
    Ordinary,
}

#[derive(Debug, Clone)]
struct Fact {
    id: String,
    kind: FactKind,
    role: Role,
    /// Numbers the rule set's conditions compare this fact with.
    thresholds: Vec<f64>,
}

/// What the strategy needs of a rule set, owned.
#[derive(Debug)]
struct Catalogue {
    facts: Vec<Fact>,
    medications: Vec<String>,
    /// Steps, and whether a hypersensitivity to them can be recorded (drugs and injections).
    steps: Vec<(String, bool)>,
}

/// The words of a condition: names and numbers.
fn words(condition: &str) -> impl Iterator<Item = &str> {
    condition
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        .filter(|w| !w.is_empty())
}

impl Catalogue {
    fn of(rs: &RuleSet, date: Date) -> Catalogue {
        let conditions: Vec<&str> = rs
            .rules()
            .map(|r| r.condition())
            .chain(rs.derived().iter().map(|d| d.condition.as_str()))
            .chain(rs.assertions().iter().map(|a| a.condition()))
            .chain([rs.applicability().condition()])
            .collect();
        let mut thresholds: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for c in &conditions {
            let names: BTreeSet<&str> = words(c).collect();
            let numbers: Vec<f64> = names.iter().filter_map(|w| w.parse().ok()).collect();
            for f in rs.facts() {
                if matches!(f.kind, FactKind::Number { .. }) && names.contains(f.id.as_str()) {
                    thresholds
                        .entry(f.id.as_str())
                        .or_default()
                        .extend(&numbers);
                }
            }
        }
        let applies = applicability(rs, date);
        let facts = rs
            .facts()
            .iter()
            .map(|f| {
                let comorbidity = f.kind == FactKind::Bool && f.absent == Absent::False;
                let role = match applies.get(f.id.as_str()) {
                    Some(false) if comorbidity => Role::Comorbidity,
                    Some(v) => Role::Applies(*v),
                    None if comorbidity => Role::Comorbidity,
                    None => Role::Ordinary,
                };
                let mut t = thresholds.remove(f.id.as_str()).unwrap_or_default();
                t.sort_by(f64::total_cmp);
                t.dedup();
                Fact {
                    id: f.id.clone(),
                    kind: f.kind.clone(),
                    role,
                    thresholds: t,
                }
            })
            .collect();
        Catalogue {
            facts,
            medications: rs.medications().keys().cloned().collect(),
            steps: rs
                .ladder()
                .steps()
                .map(|s| {
                    (
                        s.id.to_string(),
                        matches!(s.kind, StepKind::Drug | StepKind::Injection),
                    )
                })
                .collect(),
        }
    }
}

/// The yes/no facts the applicability rule reads (through derived facts too), with values
/// that make it hold for an otherwise empty adult profile: tried from the most facts true
/// down. Empty when there are none, too many to try, or no combination applies.
fn applicability(rs: &RuleSet, date: Date) -> BTreeMap<String, bool> {
    let mut read: BTreeSet<String> = BTreeSet::new();
    let mut todo = vec![rs.applicability().condition().to_owned()];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(c) = todo.pop() {
        for w in words(&c) {
            if let Some(d) = rs.derived().iter().find(|d| d.id == w) {
                if seen.insert(d.id.clone()) {
                    todo.push(d.condition.clone());
                }
            } else if rs.fact(w).is_some_and(|f| f.kind == FactKind::Bool) {
                read.insert(w.to_owned());
            }
        }
    }
    let read: Vec<String> = read.into_iter().collect();
    if read.is_empty() || read.len() > 10 {
        return BTreeMap::new();
    }
    let mut masks: Vec<u32> = (0..1u32 << read.len()).collect();
    masks.sort_by_key(|m| std::cmp::Reverse(m.count_ones()));
    let mut eval = Evaluation::default();
    for mask in masks {
        let p = read
            .iter()
            .enumerate()
            .fold(Profile::new(date, 50), |p, (i, f)| {
                p.with_fact(f, mask & (1 << i) != 0)
            });
        let Ok(prepared) = rs.prepare(&p) else {
            continue;
        };
        rs.evaluate_into(&prepared, &mut eval);
        if eval.applicable() {
            return read
                .iter()
                .enumerate()
                .map(|(i, f)| (f.clone(), mask & (1 << i) != 0))
                .collect();
        }
    }
    BTreeMap::new()
}

/// The bounds numbers of this kind are drawn within.
fn range(min: Option<f64>, max: Option<f64>) -> (f64, f64) {
    let lo = min.unwrap_or(0.0);
    (lo, max.unwrap_or(lo + 150.0).max(lo))
}

/// A known value of the fact: any code, either answer, a number across the range or near a
/// threshold, or an interval at a threshold.
fn known(fact: &Fact) -> BoxedStrategy<FactValue> {
    match &fact.kind {
        FactKind::Bool => any::<bool>().prop_map(FactValue::Bool).boxed(),
        FactKind::Code { values, .. } if values.is_empty() => Just(FactValue::Unknown).boxed(),
        FactKind::Code { values, .. } => prop::sample::select(values.clone())
            .prop_map(FactValue::Code)
            .boxed(),
        FactKind::Number {
            min, max, integer, ..
        } => {
            let (lo, hi) = range(*min, *max);
            // Whole numbers, or tenths: values shrink towards the low end of the range.
            let scale = if *integer { 1.0 } else { 10.0 };
            let (a, b) = ((lo * scale).ceil() as i64, (hi * scale).floor() as i64);
            let across = if a <= b {
                (a..=b)
                    .prop_map(move |x| FactValue::Number(x as f64 / scale))
                    .boxed()
            } else {
                Just(FactValue::Number(lo)).boxed()
            };
            let step = 1.0 / scale;
            let near: Vec<FactValue> = fact
                .thresholds
                .iter()
                .flat_map(|t| [t - step, *t, t + step])
                .map(|x| (x * scale).round() / scale)
                .filter(|x| (lo..=hi).contains(x))
                .map(FactValue::Number)
                .collect();
            let intervals: Vec<FactValue> = fact
                .thresholds
                .iter()
                .flat_map(|t| {
                    let below = (*t > lo).then(|| Interval {
                        lt: Some(*t),
                        ..Interval::default()
                    });
                    let above = (*t <= hi).then(|| Interval {
                        ge: Some(*t),
                        ..Interval::default()
                    });
                    below.into_iter().chain(above)
                })
                .map(FactValue::Interval)
                .collect();
            if near.is_empty() || intervals.is_empty() {
                across
            } else {
                prop_oneof![
                    6 => across,
                    3 => prop::sample::select(near),
                    1 => prop::sample::select(intervals),
                ]
                .boxed()
            }
        }
    }
}

/// A fact as drawn: present with its chance, then its value.
fn fact(f: &Fact) -> (f64, BoxedStrategy<(String, FactValue)>) {
    let id = f.id.clone();
    let (chance, value) = match f.role {
        Role::Applies(v) => (
            1.0,
            prop_oneof![
                95 => Just(FactValue::Bool(v)),
                5 => Just(FactValue::Bool(!v)),
            ]
            .boxed(),
        ),
        Role::Comorbidity => (0.08, Just(FactValue::Bool(true)).boxed()),
        Role::Ordinary => (
            0.88,
            prop_oneof![
                96 => known(f),
                4 => Just(FactValue::Unknown),
            ]
            .boxed(),
        ),
    };
    (chance, value.prop_map(move |v| (id.clone(), v)).boxed())
}

fn names(names: impl Iterator<Item = String>, chance: f64) -> Sparse<String> {
    Sparse::new(names.map(|n| (chance, Just(n).boxed())).collect())
}

fn build(c: &Catalogue, date: Date) -> BoxedStrategy<Profile> {
    let facts = Sparse::new(c.facts.iter().map(fact).collect());
    let record = (
        prop::bool::weighted(0.4),
        prop::option::weighted(0.9, prop::sample::select(Outcome::ALL.to_vec())),
    )
        .prop_map(|(current, outcome)| StepRecord { current, outcome });
    let steps = Sparse::new(
        c.steps
            .iter()
            .map(|(s, _)| {
                let s = s.clone();
                (
                    0.22,
                    record.clone().prop_map(move |r| (s.clone(), r)).boxed(),
                )
            })
            .collect(),
    );
    let medications = names(c.medications.iter().cloned(), 0.1);
    let possible = names(c.medications.iter().cloned(), 0.03);
    let hypersensitivities = names(
        c.steps
            .iter()
            .filter(|(_, drug)| *drug)
            .map(|(s, _)| s.clone()),
        0.02,
    );
    let sex = prop_oneof![
        9 => Just(Sex::Male),
        9 => Just(Sex::Female),
        1 => Just(Sex::Other),
        1 => Just(Sex::Unknown),
    ];
    let age = prop_oneof![19 => 18u16..90, 1 => 8u16..18];
    (
        facts,
        steps,
        medications,
        possible,
        hypersensitivities,
        sex,
        age,
    )
        .prop_map(
            move |(facts, steps, medications, possible, hypersensitivities, sex, age)| {
                let mut p = Profile::new(date, age).with_sex(sex);
                p.facts = facts.into_iter().collect();
                p.steps = steps
                    .into_iter()
                    .map(|(s, r)| (s.as_str().into(), r))
                    .collect();
                p.medications = medications.into_iter().collect();
                p.unknown_medications = possible
                    .into_iter()
                    .filter(|m| !p.medications.contains(m))
                    .collect();
                p.hypersensitivities = hypersensitivities
                    .into_iter()
                    .map(|s| s.as_str().into())
                    .collect();
                p
            },
        )
        .boxed()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use pathway_core::Status;
    use proptest::test_runner::{Config, TestError};

    use super::*;

    fn ms() -> RuleSet {
        RuleSet::ms_spasticity().unwrap()
    }

    fn knee() -> RuleSet {
        RuleSet::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/rulesets/illustration-knee-pain.toml"
        ))
        .unwrap()
    }

    fn draw(rs: &RuleSet, n: usize) -> Vec<Profile> {
        let s = profiles(rs);
        let mut runner = TestRunner::deterministic();
        (0..n)
            .map(|_| s.new_tree(&mut runner).unwrap().current())
            .collect()
    }

    #[test]
    fn words_split_conditions_into_names_and_numbers() {
        let w: Vec<&str> =
            words("not imprecise(egfr) and egfr<60 or spasticity-severity >= 1.5").collect();
        assert_eq!(
            w,
            [
                "not",
                "imprecise",
                "egfr",
                "and",
                "egfr",
                "60",
                "or",
                "spasticity-severity",
                "1.5"
            ]
        );
    }

    #[test]
    fn the_applicability_rule_is_read_from_the_rule_set() {
        let rs = ms();
        let a = applicability(&rs, Date::constant(2026, 11, 22));
        assert_eq!(a.get("multiple-sclerosis"), Some(&true));
        assert_eq!(a.get("deceased"), Some(&false));
        let c = Catalogue::of(&rs, Date::constant(2026, 11, 22));
        let role = |id: &str| c.facts.iter().find(|f| f.id == id).unwrap().role.clone();
        assert_eq!(role("multiple-sclerosis"), Role::Applies(true));
        assert_eq!(role("deceased"), Role::Comorbidity);
        let egfr = c.facts.iter().find(|f| f.id == "egfr").unwrap();
        assert!(egfr.thresholds.contains(&60.0), "{:?}", egfr.thresholds);
        // The illustration's applicability fact is a problem-list fact: still usually set.
        let k = Catalogue::of(&knee(), Date::constant(2026, 11, 22));
        let knee_pain = k.facts.iter().find(|f| f.id == "knee-pain").unwrap();
        assert_eq!(knee_pain.role, Role::Applies(true));
    }

    #[test]
    fn drawn_patients_fit_the_catalogue_and_mostly_fall_under_the_pathway() {
        for rs in [ms(), knee()] {
            let drawn = draw(&rs, 200);
            let mut applicable = 0;
            for p in &drawn {
                let rec = rs.evaluate(p).unwrap();
                applicable += usize::from(rec.applicable);
            }
            assert!(applicable > 120, "{}: {applicable} of 200", rs.stamp().id);
        }
    }

    #[test]
    fn drawn_patients_are_varied() {
        let rs = ms();
        let drawn = draw(&rs, 300);
        let mut statuses = std::collections::HashSet::new();
        for p in &drawn {
            statuses.extend(rs.evaluate(p).unwrap().steps.iter().map(|s| s.status));
        }
        assert_eq!(statuses.len(), Status::ALL.len(), "{statuses:?}");
        let any = |f: &dyn Fn(&Profile) -> bool| drawn.iter().any(f);
        assert!(any(&|p| p.facts.values().any(|v| *v == FactValue::Unknown)));
        assert!(any(&|p| p
            .facts
            .values()
            .any(|v| matches!(v, FactValue::Interval(_)))));
        assert!(any(&|p| !p.unknown_medications.is_empty()));
        assert!(any(&|p| !p.hypersensitivities.is_empty()));
        assert!(any(&|p| p.steps.values().any(|r| r.current)));
        assert!(any(&|p| p.age < 18));
        assert!(any(&|p| p.facts.get("egfr")
            == Some(&FactValue::Number(59.9))
            || p.facts.get("egfr") == Some(&FactValue::Number(60.0))));
        assert!(
            drawn
                .iter()
                .all(|p| p.unknown_medications.is_disjoint(&p.medications))
        );
    }

    /// A failing property shrinks to the patient that shows it and nothing else.
    #[test]
    fn counterexamples_shrink_to_what_matters() {
        let rs = ms();
        let mut runner = TestRunner::new(Config {
            failure_persistence: None,
            cases: 500,
            ..Config::default()
        });
        // "No patient is on a current opioid and has a recorded eGFR below 30."
        let result = runner.run(&profiles(&rs), |p| {
            let low = matches!(p.facts.get("egfr"), Some(FactValue::Number(x)) if *x < 30.0);
            prop_assert!(!(low && p.medications.contains("opioid")));
            Ok(())
        });
        let Err(TestError::Fail(_, p)) = result else {
            unreachable!("the property fails: {result:?}")
        };
        assert_eq!(p.facts.len(), 1, "{p:?}");
        // The lowest value of its range, or the lowest drawn near a threshold.
        let Some(FactValue::Number(egfr)) = p.facts.get("egfr") else {
            unreachable!("{p:?}")
        };
        assert!(*egfr == 0.0 || *egfr == 24.9, "{p:?}");
        assert_eq!(p.medications.iter().collect::<Vec<_>>(), ["opioid"]);
        assert!(p.steps.is_empty() && p.hypersensitivities.is_empty());
        assert!(p.unknown_medications.is_empty());
        assert_eq!(p.age, 18);
    }

    #[test]
    fn the_date_is_the_one_asked_for() {
        let d = Date::constant(2030, 1, 2);
        let s = profiles(&ms()).date(d);
        let mut runner = TestRunner::deterministic();
        assert_eq!(s.new_tree(&mut runner).unwrap().current().date, d);
    }
}
