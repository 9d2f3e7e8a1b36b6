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
    /// Recorded as unknown.
    Unknown,
}

impl fmt::Display for FactValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactValue::Bool(b) => write!(f, "{b}"),
            FactValue::Number(n) => write!(f, "{n}"),
            FactValue::Code(c) => f.write_str(c),
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
    fn sex_defaults_to_unknown() {
        let p: Profile = serde_json::from_str(r#"{"date":"2026-11-22","age":30}"#).unwrap();
        assert_eq!(p.sex, Sex::Unknown);
    }
}
