//! The rule-set file as written by an informaticist (TOML), before validation.
//!
//! Private: the public face of a loaded rule set is [`crate::RuleSet`]. Unknown fields are
//! errors here (a misspelt `efect` must not silently drop a contraindication).

use std::collections::BTreeMap;

use pathway_core::{Code, EdgeKind, Outcome, StepKind};
use serde::{Deserialize, Serialize};
use toml::Spanned;

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Document {
    pub ruleset: Header,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceDoc>,
    #[serde(default)]
    pub medications: BTreeMap<String, String>,
    pub applicability: ApplicabilityDoc,
    #[serde(default, rename = "step")]
    pub steps: Vec<StepDoc>,
    #[serde(default, rename = "edge")]
    pub edges: Vec<EdgeDoc>,
    #[serde(default)]
    pub facts: BTreeMap<String, FactDoc>,
    #[serde(default)]
    pub derived: BTreeMap<String, DerivedDoc>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleDoc>,
    #[serde(default, rename = "assert", skip_serializing_if = "Vec::is_empty")]
    pub asserts: Vec<AssertDoc>,
}

/// A declared property of the rule set: on these steps, whenever `when` holds, the status is
/// never one of `never` (checked by `pathway verify`, not used in evaluation).
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct AssertDoc {
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub id: Spanned<String>,
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub steps: Vec<Spanned<String>>,
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub when: Spanned<String>,
    pub never: Vec<pathway_core::Status>,
    pub text: String,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub source: Vec<Spanned<String>>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Header {
    pub id: String,
    pub version: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Display names of the tiers, tier 0 first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tier_names: Vec<String>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SourceDoc {
    pub citation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consulted: Option<String>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ApplicabilityDoc {
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub id: Spanned<String>,
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub when: Spanned<String>,
    pub text: String,
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub source: Vec<Spanned<String>>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct StepDoc {
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub id: Spanned<String>,
    pub tier: u8,
    pub kind: StepKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub entry: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<Code>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct EdgeDoc {
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub from: Vec<Spanned<String>>,
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub to: Vec<Spanned<String>>,
    pub kind: EdgeKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<Outcome>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub or_excluded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FactType {
    Bool,
    Number,
    Code,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FactDoc {
    #[serde(rename = "type")]
    #[cfg_attr(feature = "schema", schemars(with = "FactType"))]
    pub ty: Spanned<FactType>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub integer: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_values: Vec<String>,
    /// `"unknown"` (the default) or `"false"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub absent: Option<Spanned<String>>,
    /// When not recorded: unknown if this condition holds, false otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub absent_unknown_when: Option<Spanned<String>>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct DerivedDoc {
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub when: Spanned<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub source: Vec<Spanned<String>>,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EffectDoc {
    Exclude,
    Continue,
    Gate,
    Caution,
    Offer,
    Note,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum UnknownDoc {
    Caution,
    Note,
    Ignore,
}

#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RuleDoc {
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub id: Spanned<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub steps: Vec<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<u8>,
    #[cfg_attr(feature = "schema", schemars(with = "EffectDoc"))]
    pub effect: Spanned<EffectDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub when: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub requires: Option<Spanned<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<UnknownDoc>"))]
    pub if_unknown: Option<Spanned<UnknownDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_text: Option<String>,
    pub text: String,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub source: Vec<Spanned<String>>,
}
