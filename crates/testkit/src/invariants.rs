//! The generic safety invariants of a rule set, as functions of one patient.
//!
//! Each invariant takes a rule set and a profile and returns `Ok(())` when it holds for that
//! patient, or a [`Counterexample`] naming the invariant, the step, the rules involved and what
//! was observed. None is specific to one pathway: they read the rule set's own catalogue,
//! ladder and declared assertions. [`check_all`] runs them all; [`Property`] lists them with
//! their names and descriptions (what `pathway verify` prints); [`shrink`] makes a failing
//! profile smaller without the strategy of [`crate::strategy`] (for patients drawn from a
//! seed, as `pathway verify` does).
//!
//! A profile the rule set rejects (a fact outside its catalogue, a value of the wrong type) is
//! reported as a counterexample of every invariant, never passed silently.
//!
//! ```
//! use pathway_core::{Date, Profile};
//! use pathway_rules::RuleSet;
//! use pathway_testkit::invariants::{self, Property};
//!
//! let rs = RuleSet::ms_spasticity()?;
//! let p = Profile::new(Date::constant(2026, 11, 22), 50)
//!     .with_fact("multiple-sclerosis", true)
//!     .with_fact("spasticity", true);
//! invariants::check_all(&rs, &p)?;
//! for property in Property::ALL {
//!     assert!(property.check(&rs, &p).is_ok(), "{}", property.description());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use pathway_core::{FactValue, Interval, Outcome, Profile, Status, StepKind, StepRecord};
use pathway_rules::{Evaluation, FactKind, Prepared, ProfileError, RuleSet, StepView};

/// One generic safety invariant.
///
/// ```
/// use pathway_testkit::invariants::Property;
/// assert_eq!(Property::ALL.len(), 5);
/// assert_eq!(Property::Deterministic.name(), "deterministic");
/// assert_eq!(Property::from_name("deterministic"), Some(Property::Deterministic));
/// assert_eq!(Property::DeclinedIsNeverOffered.to_string(), "declined-or-not-tolerated-is-never-offered");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Property {
    /// Every `[[assert]]` of the rule set holds ([`declared_assertions_hold`]).
    DeclaredAssertionsHold,
    /// Unknown is never more permissive than any of its values
    /// ([`unknown_is_never_more_permissive`]).
    UnknownIsNeverMorePermissive,
    /// Every offered or continued step has a reason ([`offered_steps_say_why`]).
    OfferedStepsSayWhy,
    /// Declined or not-tolerated steps are never offered ([`declined_is_never_offered`]).
    DeclinedIsNeverOffered,
    /// The same profile gives the same result ([`deterministic`]).
    Deterministic,
}

impl Property {
    /// Every invariant, in the order `pathway verify` checks and prints them.
    pub const ALL: [Property; 5] = [
        Property::DeclaredAssertionsHold,
        Property::UnknownIsNeverMorePermissive,
        Property::OfferedStepsSayWhy,
        Property::DeclinedIsNeverOffered,
        Property::Deterministic,
    ];

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Property::DeclaredAssertionsHold => "declared-assertions-hold",
            Property::UnknownIsNeverMorePermissive => "unknown-is-never-more-permissive",
            Property::OfferedStepsSayWhy => "offered-steps-say-why",
            Property::DeclinedIsNeverOffered => "declined-or-not-tolerated-is-never-offered",
            Property::Deterministic => "deterministic",
        }
    }

    /// The invariant by its [`name`](Property::name).
    pub fn from_name(name: &str) -> Option<Property> {
        Property::ALL.into_iter().find(|p| p.name() == name)
    }

    /// What it states, in one sentence.
    ///
    /// ```
    /// use pathway_testkit::invariants::Property;
    /// assert!(Property::OfferedStepsSayWhy.description().contains("a rule that decided it"));
    /// ```
    pub fn description(self) -> &'static str {
        match self {
            Property::DeclaredAssertionsHold => {
                "every `[[assert]]` of the rule set holds: where its condition holds, its steps are never in the statuses it rules out (where it may hold, never offered)"
            }
            Property::UnknownIsNeverMorePermissive => {
                "replacing a known fact with unknown never gives a step a more permissive status than any value of the fact would, and where some value would change what the status says now (excluded and not-yet both say \"not now\"), the fact is listed as missing"
            }
            Property::OfferedStepsSayWhy => {
                "every step that is offered, offered with caution or continued has a rule that decided it"
            }
            Property::DeclinedIsNeverOffered => {
                "a step declined or not tolerated is never offered again (assessment steps excepted)"
            }
            Property::Deterministic => {
                "the same profile gives the same result, also after a JSON round trip"
            }
        }
    }

    /// Checks this invariant for one patient.
    ///
    /// ```
    /// use pathway_core::{Date, Profile};
    /// use pathway_rules::RuleSet;
    /// use pathway_testkit::invariants::Property;
    /// let rs = RuleSet::ms_spasticity().unwrap();
    /// // A fact outside the catalogue: the rule set rejects the profile, reported, not passed.
    /// let p = Profile::new(Date::constant(2026, 11, 22), 50).with_fact("no-such-fact", true);
    /// let e = Property::Deterministic.check(&rs, &p).unwrap_err();
    /// assert!(e.to_string().starts_with("deterministic: the rule set rejects the profile"));
    /// ```
    pub fn check(self, rs: &RuleSet, profile: &Profile) -> Result<(), Counterexample> {
        match self {
            Property::DeclaredAssertionsHold => declared_assertions_hold(rs, profile),
            Property::UnknownIsNeverMorePermissive => unknown_is_never_more_permissive(rs, profile),
            Property::OfferedStepsSayWhy => offered_steps_say_why(rs, profile),
            Property::DeclinedIsNeverOffered => declined_is_never_offered(rs, profile),
            Property::Deterministic => deterministic(rs, profile),
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An invariant that does not hold for a patient: which, at which step, the rules involved and
/// what was observed.
///
/// Its `Display` is one line: `NAME: OBSERVED (rules involved: A, B)`. It converts into a
/// proptest `TestCaseError`, so `?` works inside `proptest!`.
///
/// ```
/// use pathway_testkit::invariants::{Counterexample, Property};
/// let c = Counterexample {
///     property: Property::OfferedStepsSayWhy,
///     step: Some("baclofen".into()),
///     rules: vec!["R3.first-line".into()],
///     observed: "step baclofen is offer with no rule that decided it".into(),
/// };
/// assert_eq!(
///     c.to_string(),
///     "offered-steps-say-why: step baclofen is offer with no rule that decided it \
///      (rules involved: R3.first-line)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{property}: {observed}{}", involved(.rules))]
pub struct Counterexample {
    /// The invariant that does not hold.
    pub property: Property,
    /// The step it fails at, when it is about one step.
    pub step: Option<String>,
    /// The ids of the rules involved (the step's reasons, or the decisive ones).
    pub rules: Vec<String>,
    /// What was observed, in one sentence.
    pub observed: String,
}

fn involved(rules: &[String]) -> String {
    if rules.is_empty() {
        String::new()
    } else {
        format!(" (rules involved: {})", rules.join(", "))
    }
}

impl Counterexample {
    fn new(property: Property, step: Option<&str>, rules: Vec<String>, observed: String) -> Self {
        Counterexample {
            property,
            step: step.map(str::to_owned),
            rules,
            observed,
        }
    }

    fn rejected(property: Property, e: &ProfileError) -> Self {
        Counterexample::new(
            property,
            None,
            Vec::new(),
            format!("the rule set rejects the profile: {e}"),
        )
    }
}

/// Every invariant of [`Property::ALL`], in order; the first that fails.
///
/// ```
/// use pathway_rules::{PatientGenerator, RuleSet};
/// use pathway_testkit::invariants::check_all;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// for p in PatientGenerator::new(&rs, 7).take(3) {
///     check_all(&rs, &p).unwrap();
/// }
/// ```
pub fn check_all(rs: &RuleSet, profile: &Profile) -> Result<(), Counterexample> {
    Property::ALL
        .into_iter()
        .try_for_each(|property| property.check(rs, profile))
}

/// Buffers reused across the many evaluations of one check.
#[derive(Default)]
struct Scratch {
    prepared: Prepared,
    eval: Evaluation,
}

impl Scratch {
    fn run(&mut self, rs: &RuleSet, p: &Profile) -> Result<&Evaluation, ProfileError> {
        rs.prepare_into(p, &mut self.prepared)?;
        rs.evaluate_into(&self.prepared, &mut self.eval);
        Ok(&self.eval)
    }
}

fn rule_ids(view: &StepView<'_>) -> Vec<String> {
    view.reasons().map(|r| r.rule_id().to_owned()).collect()
}

/// The values a fact can take, for trying each: every code, both answers, and a spread of
/// numbers across the fact's range.
fn completions(kind: &FactKind) -> Vec<FactValue> {
    match kind {
        FactKind::Bool => vec![true.into(), false.into()],
        FactKind::Code {
            values,
            unknown_values,
        } => values
            .iter()
            .filter(|v| !unknown_values.contains(v))
            .map(|v| FactValue::Code(v.clone()))
            .collect(),
        FactKind::Number {
            min, max, integer, ..
        } => {
            let lo = min.unwrap_or(0.0);
            let hi = max.unwrap_or(lo + 200.0);
            let mut v: Vec<f64> = (0..=40)
                .map(|i| lo + (hi - lo) * f64::from(i) / 40.0)
                .map(|x| if *integer { x.round() } else { x })
                .collect();
            v.dedup();
            v.into_iter().map(FactValue::Number).collect()
        }
    }
}

fn contains(i: &Interval, x: f64) -> bool {
    let above = i
        .low()
        .is_none_or(|(l, open)| if open { x > l } else { x >= l });
    let below = i
        .high()
        .is_none_or(|(h, open)| if open { x < h } else { x <= h });
    above && below
}

/// Per step: the most permissive status, and whether some status differs from `against`.
struct Spread {
    best: Vec<Option<u8>>,
    differs: Vec<bool>,
}

impl Spread {
    fn of(scratch: &mut Scratch, rs: &RuleSet, against: &[Status], known: &[Profile]) -> Spread {
        let mut spread = Spread {
            best: vec![None; against.len()],
            differs: vec![false; against.len()],
        };
        for q in known {
            // A value the rule set rejects is not a value of the fact: skipped.
            let Ok(eval) = scratch.run(rs, q) else {
                continue;
            };
            for (i, status) in eval.statuses().enumerate() {
                if let Some(b) = spread.best.get_mut(i) {
                    *b = Some(b.unwrap_or(0).max(status.permissiveness()));
                }
                if let (Some(d), Some(u)) = (spread.differs.get_mut(i), against.get(i)) {
                    *d |= status.now() != u.now();
                }
            }
        }
        spread
    }
}

/// How the partly known value is described in a counterexample.
enum Partial<'a> {
    /// A fact replaced with unknown.
    Unknown(&'a str),
    /// A fact known only as an interval.
    Interval(&'a str, &'a Interval),
    /// A medication class that may be current.
    Medication(&'a str),
}

/// Compares the evaluation of `partial` with those of `known` (its completions): the first step
/// where it is more permissive than every completion, or where a completion changes the status
/// but `missing` is not listed as missing.
fn compare(
    scratch: &mut Scratch,
    rs: &RuleSet,
    partial: &Profile,
    known: &[Profile],
    what: &Partial<'_>,
) -> Result<(), Counterexample> {
    const P: Property = Property::UnknownIsNeverMorePermissive;
    let against: Vec<Status> = match scratch.run(rs, partial) {
        Ok(eval) => eval.statuses().collect(),
        Err(e) => return Err(Counterexample::rejected(P, &e)),
    };
    let spread = Spread::of(scratch, rs, &against, known);
    let Ok(eval) = scratch.run(rs, partial) else {
        return Ok(());
    };
    let missing_name = match what {
        Partial::Unknown(f) | Partial::Interval(f, _) => (*f).to_owned(),
        Partial::Medication(m) => format!("medication:{m}"),
    };
    for (view, (best, differs)) in eval.steps(rs).zip(spread.best.iter().zip(&spread.differs)) {
        // No completion could be evaluated: nothing to compare with.
        let Some(best) = *best else { continue };
        let step = view.step.id.as_str();
        let status = view.status;
        if status.permissiveness() > best {
            let observed = match what {
                Partial::Unknown(f) => format!(
                    "step {step}: with `{f}` unknown it is {status}, more permissive than any value gives"
                ),
                Partial::Interval(f, i) => format!(
                    "step {step}: with `{f}` known only as {i} it is {status}, more permissive than any value in that interval gives"
                ),
                Partial::Medication(m) => format!(
                    "step {step}: with medication class `{m}` possibly current it is {status}, more permissive than with it current or not"
                ),
            };
            return Err(Counterexample::new(
                P,
                Some(step),
                rule_ids(&view),
                observed,
            ));
        }
        if *differs && !view.missing().any(|m| m == missing_name) {
            let observed = match what {
                Partial::Unknown(f) => format!(
                    "step {step}: some value of `{f}` changes its status ({status}), but `{f}` is not listed as missing"
                ),
                Partial::Interval(f, i) => format!(
                    "step {step}: some value of `{f}` in {i} changes its status ({status}), but `{f}` is not listed as missing"
                ),
                Partial::Medication(m) => format!(
                    "step {step}: medication class `{m}` current or not changes its status ({status}), but `medication:{m}` is not listed as missing"
                ),
            };
            return Err(Counterexample::new(
                P,
                Some(step),
                rule_ids(&view),
                observed,
            ));
        }
    }
    Ok(())
}

/// Unknown is never more permissive than any of its values, and is listed as missing where it
/// matters.
///
/// For every fact the profile knows, the fact is replaced with unknown and compared with every
/// value it can take (every code, both answers, a spread of numbers across its range): no step
/// may get a more permissive status (`offer`/`continue` > `caution` > `not-yet` > `excluded`)
/// than the most permissive of those, and where some value would change what the status says
/// now ([`Status::now`](pathway_core::Status::now): `excluded` and `not-yet` both say "not
/// now"), the fact must be among the step's missing facts. The same holds for what the profile knows only
/// in part: a number known as an interval (against the values in it) and a medication class
/// that may be current (against it current and not).
///
/// ```
/// use pathway_core::{Date, Profile};
/// use pathway_rules::RuleSet;
/// use pathway_testkit::invariants::unknown_is_never_more_permissive;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 50)
///     .with_fact("multiple-sclerosis", true)
///     .with_fact("spasticity", true)
///     .with_fact("hepatic-impairment", false)
///     .with_fact("egfr", serde_json::from_str::<pathway_core::FactValue>(r#"{"lt": 60}"#).unwrap())
///     .with_unknown_medication("opioid");
/// assert!(unknown_is_never_more_permissive(&rs, &p).is_ok());
/// ```
pub fn unknown_is_never_more_permissive(
    rs: &RuleSet,
    profile: &Profile,
) -> Result<(), Counterexample> {
    const P: Property = Property::UnknownIsNeverMorePermissive;
    let mut scratch = Scratch::default();
    if let Err(e) = scratch.run(rs, profile) {
        return Err(Counterexample::rejected(P, &e));
    }
    for (fact, value) in &profile.facts {
        if *value == FactValue::Unknown {
            continue;
        }
        let Some(def) = rs.fact(fact) else { continue };
        let all = completions(&def.kind);
        let with = |v: FactValue| profile.clone().with_fact(fact, v);
        let known: Vec<Profile> = all.iter().cloned().map(with).collect();
        compare(
            &mut scratch,
            rs,
            &with(FactValue::Unknown),
            &known,
            &Partial::Unknown(fact),
        )?;
        if let FactValue::Interval(i) = value {
            let inside: Vec<Profile> = all
                .into_iter()
                .filter(|v| matches!(v, FactValue::Number(x) if contains(i, *x)))
                .map(with)
                .collect();
            compare(
                &mut scratch,
                rs,
                profile,
                &inside,
                &Partial::Interval(fact, i),
            )?;
        }
    }
    for class in profile
        .unknown_medications
        .iter()
        .filter(|c| !profile.medications.contains(*c))
    {
        let mut none = profile.clone();
        none.unknown_medications.remove(class);
        let current = none.clone().with_medication(class);
        compare(
            &mut scratch,
            rs,
            profile,
            &[current, none],
            &Partial::Medication(class),
        )?;
    }
    Ok(())
}

/// Every `[[assert]]` the rule set declares holds ([`Evaluation::violations`]): where its
/// condition holds, its steps are never in the statuses it rules out; where it may hold, they
/// are never offered. The rules involved are the decisive reasons of the step.
///
/// ```
/// use pathway_core::{Date, Profile};
/// use pathway_rules::RuleSet;
/// use pathway_testkit::invariants::declared_assertions_hold;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 50)
///     .with_fact("multiple-sclerosis", true)
///     .with_fact("spasticity", true)
///     .with_medication("cyp1a2-strong-inhibitor");
/// assert!(declared_assertions_hold(&rs, &p).is_ok());
/// ```
pub fn declared_assertions_hold(rs: &RuleSet, profile: &Profile) -> Result<(), Counterexample> {
    const P: Property = Property::DeclaredAssertionsHold;
    let mut scratch = Scratch::default();
    let eval = scratch
        .run(rs, profile)
        .map_err(|e| Counterexample::rejected(P, &e))?;
    let Some(v) = eval.violations(rs).into_iter().next() else {
        return Ok(());
    };
    let rules = eval
        .steps(rs)
        .find(|s| s.step.id.as_str() == v.step)
        .map(|s| {
            s.reasons()
                .filter(|r| r.decisive())
                .map(|r| r.rule_id().to_owned())
                .collect()
        })
        .unwrap_or_default();
    Err(Counterexample::new(
        P,
        Some(v.step),
        rules,
        format!(
            "assertion {} ({}): its condition `{}` is {:?} for step {}, whose status is {}",
            v.assertion.id(),
            v.assertion.text(),
            v.assertion.condition(),
            v.condition,
            v.step,
            v.status
        ),
    ))
}

/// Every step that is offered, offered with caution or continued has a rule that decided it.
///
/// ```
/// use pathway_core::{Date, Profile};
/// use pathway_rules::RuleSet;
/// use pathway_testkit::invariants::offered_steps_say_why;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 50)
///     .with_fact("multiple-sclerosis", true)
///     .with_fact("spasticity", true);
/// assert!(offered_steps_say_why(&rs, &p).is_ok());
/// ```
pub fn offered_steps_say_why(rs: &RuleSet, profile: &Profile) -> Result<(), Counterexample> {
    const P: Property = Property::OfferedStepsSayWhy;
    let mut scratch = Scratch::default();
    let eval = scratch
        .run(rs, profile)
        .map_err(|e| Counterexample::rejected(P, &e))?;
    match eval
        .steps(rs)
        .find(|s| s.status.is_offered() && !s.reasons().any(|r| r.decisive()))
    {
        None => Ok(()),
        Some(s) => Err(Counterexample::new(
            P,
            Some(s.step.id.as_str()),
            rule_ids(&s),
            format!(
                "step {} is {} with no rule that decided it",
                s.step.id, s.status
            ),
        )),
    }
}

/// A step declined or not tolerated (past or current) is never offered again: for every step
/// of the ladder but assessments, the profile with that record added gives the step
/// `not-yet` or `excluded`.
///
/// ```
/// use pathway_core::{Date, Profile};
/// use pathway_rules::RuleSet;
/// use pathway_testkit::invariants::declined_is_never_offered;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 50)
///     .with_fact("multiple-sclerosis", true)
///     .with_fact("spasticity", true);
/// assert!(declined_is_never_offered(&rs, &p).is_ok());
/// ```
pub fn declined_is_never_offered(rs: &RuleSet, profile: &Profile) -> Result<(), Counterexample> {
    const P: Property = Property::DeclinedIsNeverOffered;
    let mut scratch = Scratch::default();
    if let Err(e) = scratch.run(rs, profile) {
        return Err(Counterexample::rejected(P, &e));
    }
    for (index, step) in rs.ladder().steps().enumerate() {
        if step.kind == StepKind::Assessment {
            continue;
        }
        for outcome in [Outcome::Declined, Outcome::NotTolerated] {
            for current in [false, true] {
                let q = profile.clone().with_step(
                    step.id.as_str(),
                    StepRecord {
                        current,
                        outcome: Some(outcome),
                    },
                );
                let eval = scratch
                    .run(rs, &q)
                    .map_err(|e| Counterexample::rejected(P, &e))?;
                let Some(view) = eval.steps(rs).nth(index) else {
                    continue;
                };
                if view.status.is_offered() {
                    return Err(Counterexample::new(
                        P,
                        Some(step.id.as_str()),
                        rule_ids(&view),
                        format!(
                            "step {} {} ({}) is {}",
                            step.id,
                            outcome,
                            if current { "current" } else { "past" },
                            view.status
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The same profile gives the same result, byte for byte as JSON, evaluated twice and after a
/// JSON round trip of the profile.
///
/// ```
/// use pathway_core::{Date, Profile};
/// use pathway_rules::RuleSet;
/// use pathway_testkit::invariants::deterministic;
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 50).with_fact("egfr", 42.5);
/// assert!(deterministic(&rs, &p).is_ok());
/// ```
pub fn deterministic(rs: &RuleSet, profile: &Profile) -> Result<(), Counterexample> {
    const P: Property = Property::Deterministic;
    let fail = |observed: String| Counterexample::new(P, None, Vec::new(), observed);
    let json = |p: &Profile| -> Result<String, Counterexample> {
        let rec = rs
            .evaluate(p)
            .map_err(|e| Counterexample::rejected(P, &e))?;
        serde_json::to_string(&rec).map_err(|e| fail(format!("the result does not serialise: {e}")))
    };
    let a = json(profile)?;
    let b = json(profile)?;
    let text = serde_json::to_string(profile)
        .map_err(|e| fail(format!("the profile does not serialise: {e}")))?;
    let back: Profile = serde_json::from_str(&text)
        .map_err(|e| fail(format!("the profile does not read back from its JSON: {e}")))?;
    let c = json(&back)?;
    if a != b || a != c {
        return Err(fail("two evaluations of the same profile differ".into()));
    }
    Ok(())
}

/// The smallest profile, by removing facts, medication classes, hypersensitivities and step
/// records one at a time, for which `property` still fails. `pathway verify` uses it for the
/// patients it draws from a seed; the [`profiles`](crate::strategy::profiles) strategy shrinks
/// through proptest instead.
///
/// ```
/// use pathway_core::{Date, Outcome, Profile, StepRecord};
/// use pathway_rules::RuleSet;
/// use pathway_testkit::invariants::{shrink, Property};
/// // A rule set whose declined rule is gone: a declined step can be offered again.
/// let text = pathway_rules::MS_SPASTICITY_TOML.replacen(
///     "when = \"outcome = declined\"", "when = \"false\"", 1);
/// let rs = RuleSet::from_toml("broken.toml", &text).unwrap();
/// let p = Profile::new(Date::constant(2026, 11, 22), 50)
///     .with_fact("multiple-sclerosis", true)
///     .with_fact("spasticity", true)
///     .with_fact("egfr", 90)
///     .with_medication("opioid")
///     .with_step("massage", StepRecord::past(Outcome::Effective));
/// assert!(Property::DeclinedIsNeverOffered.check(&rs, &p).is_err());
/// let small = shrink(&rs, p, Property::DeclinedIsNeverOffered);
/// assert!(Property::DeclinedIsNeverOffered.check(&rs, &small).is_err());
/// assert!(small.medications.is_empty() && small.steps.is_empty());
/// assert!(!small.facts.contains_key("egfr"));
/// ```
pub fn shrink(rs: &RuleSet, profile: Profile, property: Property) -> Profile {
    let mut best = profile;
    loop {
        let candidates = best
            .facts
            .keys()
            .map(|k| {
                let mut q = best.clone();
                q.facts.remove(k);
                q
            })
            .chain(best.medications.iter().map(|m| {
                let mut q = best.clone();
                q.medications.remove(m);
                q
            }))
            .chain(best.hypersensitivities.iter().map(|h| {
                let mut q = best.clone();
                q.hypersensitivities.remove(h);
                q
            }))
            .chain(best.steps.keys().map(|s| {
                let mut q = best.clone();
                q.steps.remove(s);
                q
            }))
            .chain(best.unknown_medications.iter().map(|m| {
                let mut q = best.clone();
                q.unknown_medications.remove(m);
                q
            }));
        let mut smaller = None;
        for q in candidates {
            if property.check(rs, &q).is_err() {
                smaller = Some(q);
                break;
            }
        }
        match smaller {
            Some(q) => best = q,
            None => return best,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use pathway_core::Date;
    use pathway_rules::PatientGenerator;

    use super::*;

    fn date() -> Date {
        Date::constant(2026, 11, 22)
    }

    #[test]
    fn names_are_unique_and_read_back() {
        for p in Property::ALL {
            assert_eq!(Property::from_name(p.name()), Some(p));
            assert!(!p.description().is_empty());
        }
        let mut names: Vec<_> = Property::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Property::ALL.len());
        assert_eq!(Property::from_name("nope"), None);
    }

    #[test]
    fn the_shipped_rule_set_holds_for_generated_patients() {
        let rs = RuleSet::ms_spasticity().unwrap();
        for p in PatientGenerator::new(&rs, 3).take(8) {
            check_all(&rs, &p).unwrap();
        }
    }

    #[test]
    fn a_rejected_profile_fails_every_invariant() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let p = Profile::new(date(), 40).with_fact("egfr", "high");
        for property in Property::ALL {
            let e = property.check(&rs, &p).unwrap_err();
            assert_eq!(e.property, property);
            assert!(
                e.observed.starts_with("the rule set rejects the profile"),
                "{e}"
            );
        }
    }

    #[test]
    fn completions_cover_the_fact_kinds() {
        assert_eq!(completions(&FactKind::Bool).len(), 2);
        let code = FactKind::Code {
            values: vec!["a".into(), "b".into(), "not-done".into()],
            unknown_values: vec!["not-done".into()],
        };
        assert_eq!(
            completions(&code),
            [FactValue::Code("a".into()), FactValue::Code("b".into())]
        );
        let score = FactKind::Number {
            min: Some(0.0),
            max: Some(4.0),
            integer: true,
            unit: None,
        };
        let v = completions(&score);
        assert_eq!(v.first(), Some(&FactValue::Number(0.0)));
        assert_eq!(v.last(), Some(&FactValue::Number(4.0)));
        assert_eq!(v.len(), 5);
    }

    #[test]
    fn interval_membership_reads_open_and_closed_bounds() {
        let lt = Interval {
            lt: Some(60.0),
            ..Interval::default()
        };
        assert!(contains(&lt, 59.9) && !contains(&lt, 60.0));
        let ge = Interval {
            ge: Some(60.0),
            ..Interval::default()
        };
        assert!(contains(&ge, 60.0) && !contains(&ge, 59.0));
    }

    #[test]
    fn a_counterexample_names_the_invariant_step_rules_and_observation() {
        let text = pathway_rules::MS_SPASTICITY_TOML.replacen(
            "when = \"outcome = declined\"",
            "when = \"false\"",
            1,
        );
        let rs = RuleSet::from_toml("broken.toml", &text).unwrap();
        let p = Profile::new(date(), 50)
            .with_fact("multiple-sclerosis", true)
            .with_fact("spasticity", true);
        let e = declined_is_never_offered(&rs, &p).unwrap_err();
        assert_eq!(e.property, Property::DeclinedIsNeverOffered);
        let step = e.step.clone().unwrap();
        assert!(
            e.observed.starts_with(&format!("step {step} declined")),
            "{e}"
        );
        assert!(!e.rules.is_empty());
        let shown = e.to_string();
        assert!(shown.starts_with("declined-or-not-tolerated-is-never-offered: step "));
        assert!(shown.contains("(rules involved: "), "{shown}");
        assert_eq!(check_all(&rs, &p), Err(e));
    }
}
