//! The vocabulary of a loaded rule set, shared by every layer above the language: what a rule
//! does ([`Effect`], [`IfUnknown`]), the fact catalogue ([`FactDef`], [`FactKind`], [`Absent`]),
//! derived facts, sources, rules, declared assertions and the [`Stamp`] that names a rule set.
//! Plain data with accessors: no parsing, compiling or evaluating here.

use std::sync::Arc;

use pathway_core::StepId;
use serde::{Deserialize, Serialize};

/// What a rule does to the status of its steps when its condition holds.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Absolute contraindication, or an outcome that rules the step out: `excluded`.
    Exclude,
    /// A current therapy that works: `continue`.
    Continue,
    /// A prerequisite: the step is `not-yet` until the rule's `requires` holds.
    Gate,
    /// Relative contraindication or interaction: `caution`.
    Caution,
    /// An indication: the step may be offered (it still needs every gate open).
    Offer,
    /// Information only; never changes the status.
    Note,
}

impl Effect {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Exclude => "exclude",
            Effect::Continue => "continue",
            Effect::Gate => "gate",
            Effect::Caution => "caution",
            Effect::Offer => "offer",
            Effect::Note => "note",
        }
    }
}

/// What a rule does when its condition is unknown because a fact is missing (R21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IfUnknown {
    /// The step is at most `caution` and the missing facts are listed (the default for
    /// exclusions and cautions).
    Caution,
    /// No caution; the rule's `unknown-text` is shown as a note and the facts are listed
    /// as missing (R21d: "check renal function").
    Note,
    /// No caution; the facts are still listed as missing (R21e).
    Ignore,
    /// The step is `not-yet` and the missing facts are listed (gates, R21b).
    NotYet,
    /// The rule simply does not apply (indications, continuations and notes).
    NoEffect,
}

/// The type of a catalogue fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FactKind {
    /// Yes or no.
    Bool,
    /// A number, optionally bounded and whole.
    Number {
        /// Lowest allowed value.
        min: Option<f64>,
        /// Highest allowed value.
        max: Option<f64>,
        /// Only whole numbers.
        integer: bool,
        /// Unit, for display.
        unit: Option<String>,
    },
    /// One of a list of codes.
    Code {
        /// The allowed codes.
        values: Vec<String>,
        /// Codes that mean "not known" (`not-done` for a test that has not been done).
        unknown_values: Vec<String>,
    },
}

impl FactKind {
    /// A word for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            FactKind::Bool => "yes/no (true or false)",
            FactKind::Number { .. } => "a number",
            FactKind::Code { .. } => "a code",
        }
    }
}

/// What a fact that is not recorded means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Absent {
    /// Unknown: never read as false (R21).
    Unknown,
    /// False: the problem-list convention for comorbidities (R21c).
    False,
    /// Unknown when the condition holds (a woman aged 12-55 for pregnancy), false otherwise.
    UnknownWhen(String),
}

/// A fact of the rule set's catalogue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactDef {
    /// The fact id.
    pub id: String,
    /// Its type.
    pub kind: FactKind,
    /// What it means.
    pub text: String,
    /// What "not recorded" means.
    pub absent: Absent,
}

/// A named condition shared by rules (D1-D9 of the clinical spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Derived {
    /// The name used in conditions.
    pub id: String,
    /// The condition, as written.
    pub condition: String,
    /// What it means.
    pub text: String,
}

/// A cited source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The key rules cite.
    pub key: String,
    /// The full citation.
    pub citation: String,
}

/// One rule of a rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub(crate) id: Arc<str>,
    pub(crate) effect: Effect,
    pub(crate) steps: Vec<StepId>,
    pub(crate) condition: String,
    pub(crate) if_unknown: IfUnknown,
    pub(crate) unknown_text: Option<Arc<str>>,
    pub(crate) text: Arc<str>,
    pub(crate) sources: Vec<Arc<str>>,
}

/// A declared property of a rule set (`[[assert]]`): on its steps, whenever its condition
/// holds, the status is never one of `never`; and whenever the condition may hold (unknown),
/// never `offer` if `never` names it (a current step may continue, C4). `pathway verify` checks them; they take
/// no part in evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub(crate) id: String,
    pub(crate) steps: Vec<StepId>,
    pub(crate) condition: String,
    pub(crate) never: Vec<pathway_core::Status>,
    pub(crate) text: String,
}

impl Assertion {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The steps it is about.
    pub fn steps(&self) -> &[StepId] {
        &self.steps
    }
    /// Its condition, as written.
    pub fn condition(&self) -> &str {
        &self.condition
    }
    /// The statuses it rules out.
    pub fn never(&self) -> &[pathway_core::Status] {
        &self.never
    }
    /// What it says, in plain words.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Rule {
    /// The rule id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The effect.
    pub fn effect(&self) -> Effect {
        self.effect
    }
    /// The steps the rule applies to, in ladder order.
    pub fn steps(&self) -> &[StepId] {
        &self.steps
    }
    /// The condition as written (`when`, or `requires` for a gate).
    pub fn condition(&self) -> &str {
        &self.condition
    }
    /// What the rule does when its condition is unknown.
    pub fn if_unknown(&self) -> IfUnknown {
        self.if_unknown
    }
    /// The plain-language text.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// The cited source keys.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(|s| &**s)
    }
}

/// Identifies the rule set behind a result: id, version and a hash of its content.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stamp {
    /// Rule set id.
    pub id: String,
    /// Rule set version.
    pub version: String,
    /// `blake3:` and the hex BLAKE3 hash of the canonical content (rules sorted by id), so the
    /// same content gives the same hash whatever the order of rules in the file.
    pub hash: String,
}
