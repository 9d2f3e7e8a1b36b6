//! The patient profile: what the engine knows about one person on one date.
//!
//! "Unknown" is a state of its own and is never confused with false:
//!
//! * a fact whose key is **absent** from [`Profile::facts`] was *not recorded*; what that means
//!   (unknown, or false under the problem-list convention) is decided by the rule set's fact
//!   catalogue;
//! * a fact recorded as [`FactValue::Unknown`] (JSON `null`) is unknown whatever the catalogue
//!   says (a recorded "pregnancy status: unknown").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ladder::StepId;
use crate::outcome::Outcome;

/// A calendar date (the evaluation date), `YYYY-MM-DD` in JSON.
pub type Date = jiff::civil::Date;

/// Administrative sex as FHIR `Patient.gender` carries it.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Sex {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Other.
    Other,
    /// Unknown or not recorded.
    #[default]
    Unknown,
}

impl Sex {
    /// The kebab-case name.
    ///
    /// ```
    /// assert_eq!(pathway_core::Sex::Female.as_str(), "female");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
}

/// The value of one recorded fact.
///
/// In JSON: `true`/`false`, a number, a code string, or `null` for a recorded "unknown".
///
/// ```
/// use pathway_core::FactValue;
/// let v: Vec<FactValue> = serde_json::from_str(r#"[true, 25.5, "focal", null]"#).unwrap();
/// assert_eq!(
///     v,
///     [
///         FactValue::Bool(true),
///         FactValue::Number(25.5),
///         FactValue::Code("focal".into()),
///         FactValue::Unknown
///     ]
/// );
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FactValue {
    /// A yes/no fact.
    Bool(bool),
    /// A number (eGFR, a severity score).
    Number(f64),
    /// A code from an enumerated set (`focal`, `positive`).
    Code(String),
    /// A number known only to lie in an interval (a laboratory value reported as `<60` or
    /// `>90`). A threshold test over it is true or false when the interval decides it, and
    /// unknown otherwise.
    Interval(Interval),
    /// Recorded as unknown.
    Unknown,
}

/// The interval a number is known to lie in: any of its four bounds may be set.
///
/// In JSON: `{"lt": 60}`, `{"ge": 90}`, `{"gt": 15, "le": 29}`.
///
/// ```
/// use pathway_core::{FactValue, Interval};
/// let v: FactValue = serde_json::from_str(r#"{"lt": 60}"#).unwrap();
/// let FactValue::Interval(i) = &v else { panic!() };
/// assert_eq!(i.decides_lt(60.0), Some(true));
/// assert_eq!(i.decides_lt(25.0), None);
/// assert_eq!(v.to_string(), "<60");
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Greater than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// Greater than or equal to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<f64>,
    /// Less than.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// Less than or equal to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<f64>,
}

impl Interval {
    /// The lower bound and whether it is excluded (`> x`), if any.
    pub fn low(&self) -> Option<(f64, bool)> {
        match (self.gt, self.ge) {
            (Some(g), Some(e)) if e > g => Some((e, false)),
            (Some(g), _) => Some((g, true)),
            (None, Some(e)) => Some((e, false)),
            (None, None) => None,
        }
    }

    /// The upper bound and whether it is excluded (`< x`), if any.
    pub fn high(&self) -> Option<(f64, bool)> {
        match (self.lt, self.le) {
            (Some(l), Some(e)) if e < l => Some((e, false)),
            (Some(l), _) => Some((l, true)),
            (None, Some(e)) => Some((e, false)),
            (None, None) => None,
        }
    }

    /// Whether every number of the interval is below `k` (`Some(true)`), none is
    /// (`Some(false)`), or some are and some are not (`None`).
    pub fn decides_lt(&self, k: f64) -> Option<bool> {
        if self
            .high()
            .is_some_and(|(h, open)| h < k || (open && h == k))
        {
            return Some(true);
        }
        if self.low().is_some_and(|(l, _)| l >= k) {
            return Some(false);
        }
        None
    }

    /// As [`Interval::decides_lt`], for `<= k`.
    pub fn decides_le(&self, k: f64) -> Option<bool> {
        if self.high().is_some_and(|(h, _)| h <= k) {
            return Some(true);
        }
        if self
            .low()
            .is_some_and(|(l, open)| l > k || (open && l == k))
        {
            return Some(false);
        }
        None
    }

    /// As [`Interval::decides_lt`], for `== k`.
    pub fn decides_eq(&self, k: f64) -> Option<bool> {
        let below = self.decides_lt(k) == Some(true);
        let above = self.decides_le(k) == Some(false);
        if below || above {
            return Some(false);
        }
        let point = self.low() == Some((k, false)) && self.high() == Some((k, false));
        point.then_some(true)
    }

    /// Whether no bound is set, a bound is not finite, or the bounds leave no number.
    pub fn is_empty_or_unbounded(&self) -> bool {
        let bounds = [self.gt, self.ge, self.lt, self.le];
        if bounds.iter().flatten().any(|b| !b.is_finite()) || bounds.iter().all(Option::is_none) {
            return true;
        }
        match (self.low(), self.high()) {
            (Some((l, lo)), Some((h, ho))) => l > h || (l == h && (lo || ho)),
            _ => false,
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let low = self
            .low()
            .map(|(l, open)| format!("{}{l}", if open { ">" } else { ">=" }));
        let high = self
            .high()
            .map(|(h, open)| format!("{}{h}", if open { "<" } else { "<=" }));
        match (low, high) {
            (Some(l), Some(h)) => write!(f, "{l} and {h}"),
            (Some(x), None) | (None, Some(x)) => f.write_str(&x),
            (None, None) => f.write_str("any"),
        }
    }
}

impl fmt::Display for FactValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactValue::Bool(b) => write!(f, "{b}"),
            FactValue::Number(n) => write!(f, "{n}"),
            FactValue::Code(c) => f.write_str(c),
            FactValue::Interval(i) => write!(f, "{i}"),
            FactValue::Unknown => f.write_str("unknown"),
        }
    }
}

impl From<bool> for FactValue {
    fn from(b: bool) -> Self {
        FactValue::Bool(b)
    }
}

impl From<f64> for FactValue {
    fn from(n: f64) -> Self {
        FactValue::Number(n)
    }
}

impl From<i32> for FactValue {
    fn from(n: i32) -> Self {
        FactValue::Number(f64::from(n))
    }
}

impl From<&str> for FactValue {
    fn from(s: &str) -> Self {
        FactValue::Code(s.to_owned())
    }
}

/// What is recorded about one step for this person.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    /// The step is current (an active MedicationStatement or in-progress Procedure).
    #[serde(default)]
    pub current: bool,
    /// The latest recorded outcome, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

impl StepRecord {
    /// A current step with an outcome (or none yet).
    pub fn current(outcome: Option<Outcome>) -> StepRecord {
        StepRecord {
            current: true,
            outcome,
        }
    }

    /// A past step with its outcome.
    pub fn past(outcome: Outcome) -> StepRecord {
        StepRecord {
            current: false,
            outcome: Some(outcome),
        }
    }

    /// The outcome the rules read (clinical spec C5): a current step with no outcome yet
    /// counts as `partial` (under assessment).
    ///
    /// ```
    /// use pathway_core::{Outcome, StepRecord};
    /// assert_eq!(StepRecord::current(None).effective_outcome(), Some(Outcome::Partial));
    /// assert_eq!(StepRecord::default().effective_outcome(), None);
    /// ```
    pub fn effective_outcome(&self) -> Option<Outcome> {
        match (self.current, self.outcome) {
            (true, None) => Some(Outcome::Partial),
            (_, o) => o,
        }
    }
}

/// Everything the engine needs to know about one person, on one evaluation date.
///
/// ```
/// use pathway_core::{Date, Outcome, Profile, Sex, StepRecord};
/// let p = Profile::new(Date::constant(2026, 11, 22), 45)
///     .with_sex(Sex::Male)
///     .with_fact("spasticity-severity", 2)
///     .with_fact("egfr", 25.0)
///     .with_medication("opioid")
///     .with_step("baclofen", StepRecord::current(Some(Outcome::Partial)));
/// let json = serde_json::to_string(&p).unwrap();
/// let back: Profile = serde_json::from_str(&json).unwrap();
/// assert_eq!(p, back);
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The evaluation date. Evaluation never reads a clock.
    pub date: Date,
    /// Age in whole years on the evaluation date.
    pub age: u16,
    /// Administrative sex; absent means unknown.
    #[serde(default)]
    pub sex: Sex,
    /// Recorded facts by fact id. Absent = not recorded; `null` = recorded as unknown.
    #[serde(default)]
    pub facts: BTreeMap<String, FactValue>,
    /// Current medication classes (`opioid`, `cns-depressant`, ...).
    #[serde(default)]
    pub medications: BTreeSet<String>,
    /// Medication classes that may be current but cannot be told for certain (a medication
    /// record whose status is `unknown`): unknown, never absent. A class in both lists is
    /// current.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unknown_medications: BTreeSet<String>,
    /// Steps whose drug the person is hypersensitive to.
    #[serde(default)]
    pub hypersensitivities: BTreeSet<StepId>,
    /// What is recorded about each step; absent = never tried.
    #[serde(default)]
    pub steps: BTreeMap<StepId, StepRecord>,
    /// Where each fact, medication class (`medication:opioid`), hypersensitivity
    /// (`hypersensitivity:baclofen`) or step record (`step:baclofen`) came from, such as
    /// `Condition/abc`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provenance: BTreeMap<String, Vec<String>>,
}

impl Profile {
    /// A profile with nothing recorded but the date and age.
    pub fn new(date: Date, age: u16) -> Profile {
        Profile {
            date,
            age,
            sex: Sex::Unknown,
            facts: BTreeMap::new(),
            medications: BTreeSet::new(),
            unknown_medications: BTreeSet::new(),
            hypersensitivities: BTreeSet::new(),
            steps: BTreeMap::new(),
            provenance: BTreeMap::new(),
        }
    }

    /// Sets the sex.
    #[must_use]
    pub fn with_sex(mut self, sex: Sex) -> Profile {
        self.sex = sex;
        self
    }

    /// Records a fact.
    #[must_use]
    pub fn with_fact(mut self, id: &str, value: impl Into<FactValue>) -> Profile {
        self.facts.insert(id.to_owned(), value.into());
        self
    }

    /// Records a current medication class.
    #[must_use]
    pub fn with_medication(mut self, class: &str) -> Profile {
        self.medications.insert(class.to_owned());
        self
    }

    /// Records a medication class that may be current (unknown).
    ///
    /// ```
    /// use pathway_core::{Date, Profile};
    /// let p = Profile::new(Date::constant(2026, 11, 22), 45).with_unknown_medication("opioid");
    /// assert!(p.unknown_medications.contains("opioid"));
    /// ```
    #[must_use]
    pub fn with_unknown_medication(mut self, class: &str) -> Profile {
        self.unknown_medications.insert(class.to_owned());
        self
    }

    /// Records a hypersensitivity to a step's drug.
    #[must_use]
    pub fn with_hypersensitivity(mut self, step: &str) -> Profile {
        self.hypersensitivities.insert(StepId::from(step));
        self
    }

    /// Records a step.
    #[must_use]
    pub fn with_step(mut self, step: &str, record: StepRecord) -> Profile {
        self.steps.insert(StepId::from(step), record);
        self
    }

    /// The record of a step, if any.
    pub fn step(&self, id: &str) -> Option<&StepRecord> {
        self.steps.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_null_are_different() {
        let p: Profile = serde_json::from_str(
            r#"{"date":"2026-11-22","age":30,"sex":"female","facts":{"pregnant":null}}"#,
        )
        .unwrap();
        assert_eq!(p.facts.get("pregnant"), Some(&FactValue::Unknown));
        assert_eq!(p.facts.get("breastfeeding"), None);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<Profile>(r#"{"date":"2026-11-22","age":30,"sx":"f"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `sx`"), "{err}");
    }

    #[test]
    fn bad_date_is_rejected() {
        assert!(serde_json::from_str::<Profile>(r#"{"date":"2026-13-01","age":30}"#).is_err());
    }

    #[test]
    fn intervals_decide_thresholds_only_when_they_can() {
        let lt60 = Interval {
            lt: Some(60.0),
            ..Interval::default()
        };
        assert_eq!(lt60.decides_lt(60.0), Some(true));
        assert_eq!(lt60.decides_lt(61.0), Some(true));
        assert_eq!(lt60.decides_lt(25.0), None);
        assert_eq!(lt60.decides_le(59.0), None);
        assert_eq!(lt60.decides_le(60.0), Some(true));
        let gt90 = Interval {
            gt: Some(90.0),
            ..Interval::default()
        };
        assert_eq!(gt90.decides_lt(60.0), Some(false));
        assert_eq!(gt90.decides_lt(90.0), Some(false));
        assert_eq!(gt90.decides_lt(91.0), None);
        assert_eq!(gt90.decides_le(90.0), Some(false));
        let ge60 = Interval {
            ge: Some(60.0),
            ..Interval::default()
        };
        assert_eq!(ge60.decides_lt(60.0), Some(false));
        assert_eq!(ge60.decides_le(60.0), None);
        assert_eq!(ge60.decides_eq(59.0), Some(false));
        assert_eq!(ge60.decides_eq(60.0), None);
        assert!(Interval::default().is_empty_or_unbounded());
        assert!(
            Interval {
                gt: Some(5.0),
                lt: Some(5.0),
                ..Interval::default()
            }
            .is_empty_or_unbounded()
        );
        assert!(!lt60.is_empty_or_unbounded());
        let v: FactValue = serde_json::from_str(r#"{"ge":90}"#).unwrap();
        assert_eq!(
            v,
            FactValue::Interval(Interval {
                ge: Some(90.0),
                ..Interval::default()
            })
        );
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"ge":90.0}"#);
    }

    #[test]
    fn sex_defaults_to_unknown() {
        let p: Profile = serde_json::from_str(r#"{"date":"2026-11-22","age":30}"#).unwrap();
        assert_eq!(p.sex, Sex::Unknown);
    }
}
