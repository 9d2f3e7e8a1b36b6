#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

/// The ladder graph, patient profile, outcomes and statuses ([`pathway_core`]).
pub use pathway_core as core;
/// FHIR R4 in, CDS Hooks and FHIR out ([`pathway_fhir`]).
pub use pathway_fhir as fhir;
/// Human-readable reports ([`pathway_report`]).
pub use pathway_report as report;
/// The rule language, rule-set loading and evaluation ([`pathway_rules`]).
pub use pathway_rules as rules;

pub use pathway_core::{Date, Outcome, Profile, Sex, Status, StepRecord};
pub use pathway_rules::{LoadError, ProfileError, Recommendation, RuleSet};
