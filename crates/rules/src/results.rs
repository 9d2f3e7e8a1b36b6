//! The result of evaluating one patient: a status for every step, with reasons.

use std::sync::Arc;

use pathway_core::{Date, Status, StepId};
use serde::{Deserialize, Serialize};

use crate::model::{Effect, Stamp};
use crate::tri::Tri;

/// A fact a rule read, with its value and where it came from.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactUse {
    /// The fact: a catalogue fact id, `age`, `sex`, `step:<id>`, `medication:<class>` or
    /// `hypersensitivity:<step>`.
    pub fact: String,
    /// Its value as read (`true`, `25`, `focal`, `not recorded`, `current, partial`).
    pub value: String,
    /// The records it came from (`Condition/abc`), when the profile says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
}

/// One rule that applied to a step, and why.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The rule id.
    pub rule: Arc<str>,
    /// The rule's effect.
    pub effect: Effect,
    /// Whether this rule decided the status (others are listed for context).
    pub decisive: bool,
    /// How the rule's condition came out: `true`, `false` (a gate that is shut) or `unknown`
    /// (a fact is missing).
    pub condition: Tri,
    /// Plain-language text.
    pub text: Arc<str>,
    /// Source keys.
    pub sources: Vec<Arc<str>>,
    /// The facts that made the condition come out as it did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<FactUse>,
}

/// The part a reason plays, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It decided the status.
    Why,
    /// A prerequisite that is met.
    Met,
    /// A prerequisite that is not met (or not known to be).
    Needs,
    /// A possible contraindication that depends on a missing fact.
    Check,
    /// Context: it applies but did not decide the status.
    Also,
    /// Information.
    Note,
}

impl Role {
    /// A lower-case label (`why`, `met`, `needs`, `check`, `also`, `note`).
    pub fn label(self) -> &'static str {
        match self {
            Role::Why => "why",
            Role::Met => "met",
            Role::Needs => "needs",
            Role::Check => "check",
            Role::Also => "also",
            Role::Note => "note",
        }
    }
}

impl Reason {
    /// The part this reason plays.
    ///
    /// ```
    /// use pathway_core::{Date, Profile};
    /// use pathway_rules::{Role, RuleSet};
    /// let rs = RuleSet::ms_spasticity().unwrap();
    /// let p = Profile::new(Date::constant(2026, 11, 22), 45)
    ///     .with_fact("multiple-sclerosis", true)
    ///     .with_fact("spasticity", true);
    /// let rec = rs.evaluate(&p).unwrap();
    /// assert_eq!(rec.step("tizanidine").unwrap().reasons[0].role(), Role::Needs);
    /// ```
    pub fn role(&self) -> Role {
        match (self.effect, self.condition) {
            (Effect::Note, _) => Role::Note,
            (Effect::Gate, Tri::True) => Role::Met,
            (Effect::Gate, _) => Role::Needs,
            (_, Tri::Unknown) => Role::Check,
            _ if self.decisive => Role::Why,
            _ => Role::Also,
        }
    }
}

/// The answer for one step.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    /// The step id.
    pub step: StepId,
    /// Its display name.
    pub name: String,
    /// Its tier.
    pub tier: u8,
    /// The status.
    pub status: Status,
    /// The step is current for this patient (an active record).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub current: bool,
    /// The rules behind the status: decisive ones first, then context and notes.
    pub reasons: Vec<Reason>,
    /// The ids of the rules in `reasons`, in the same order.
    pub rules: Vec<Arc<str>>,
    /// Every source key cited by `reasons`, sorted.
    pub sources: Vec<Arc<str>>,
    /// Facts that are not known and could change the status, sorted.
    pub missing: Vec<String>,
}

impl StepResult {
    /// The decisive reasons.
    pub fn decisive(&self) -> impl Iterator<Item = &Reason> {
        self.reasons.iter().filter(|r| r.decisive)
    }
}

/// What the engine says for one patient: every step of the ladder, in ladder order.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The rule set that produced it.
    pub ruleset: Stamp,
    /// The evaluation date.
    pub date: Date,
    /// Whether the pathway applies to this patient (R1).
    pub applicable: bool,
    /// One result per step, in ladder order.
    pub steps: Vec<StepResult>,
    /// Every missing fact of any step, sorted.
    pub missing: Vec<String>,
    /// Warnings from whoever built the profile (a FHIR reader); the engine adds none.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Records of the patient's that matched nothing the rule set reads (current
    /// medications, active conditions, allergies): their interactions and contraindications
    /// were not checked. Filled by whoever built the profile; the engine adds none.
    #[serde(default)]
    pub unrecognized: Vec<Unrecognized>,
}

/// A record that matched nothing the rule set reads, listed so that nothing is dropped
/// silently (clinical spec 3.6 E7).
///
/// ```
/// use pathway_rules::Unrecognized;
/// let u = Unrecognized {
///     resource: "MedicationRequest/m1".into(),
///     kind: "medication".into(),
///     text: "Sertraline 50 MG Oral Tablet".into(),
///     codes: vec!["http://www.nlm.nih.gov/research/umls/rxnorm|312940".into()],
/// };
/// assert_eq!(u.to_string(), "medication MedicationRequest/m1: Sertraline 50 MG Oral Tablet (http://www.nlm.nih.gov/research/umls/rxnorm|312940)");
/// ```
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unrecognized {
    /// The record (`MedicationRequest/abc`).
    pub resource: String,
    /// What it records: `medication`, `condition` or `allergy`.
    pub kind: String,
    /// Its text or the first display found; empty when it has neither.
    pub text: String,
    /// Its codes, as `system|code`.
    #[serde(default)]
    pub codes: Vec<String>,
}

impl std::fmt::Display for Unrecognized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: ", self.kind, self.resource)?;
        f.write_str(if self.text.is_empty() {
            "(no text)"
        } else {
            &self.text
        })?;
        if !self.codes.is_empty() {
            write!(f, " ({})", self.codes.join(", "))?;
        }
        Ok(())
    }
}

impl Recommendation {
    /// The result for a step.
    ///
    /// ```
    /// use pathway_core::{Date, Profile, Status};
    /// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
    /// let rec = rs.evaluate(&Profile::new(Date::constant(2026, 11, 22), 40)).unwrap();
    /// // No MS recorded: R1 says every step is not-yet.
    /// assert!(!rec.applicable);
    /// assert_eq!(rec.step("baclofen").unwrap().status, Status::NotYet);
    /// ```
    pub fn step(&self, id: &str) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.step.as_str() == id)
    }

    /// Why the pathway does not apply (R1's text), or `None` when it does.
    ///
    /// ```
    /// use pathway_core::{Date, Profile};
    /// let rs = pathway_rules::RuleSet::ms_spasticity().unwrap();
    /// let rec = rs.evaluate(&Profile::new(Date::constant(2026, 11, 22), 40)).unwrap();
    /// assert!(rec.not_applicable_because().unwrap().starts_with("The pathway applies to"));
    /// ```
    pub fn not_applicable_because(&self) -> Option<&str> {
        if self.applicable {
            return None;
        }
        Some(
            self.steps
                .first()
                .and_then(|s| s.reasons.first())
                .map_or("", |r| &*r.text),
        )
    }

    /// The status of a step.
    pub fn status(&self, id: &str) -> Option<Status> {
        self.step(id).map(|s| s.status)
    }
}
