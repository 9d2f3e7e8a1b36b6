//! # pathway-rules
//!
//! The rule language, rule-set loading and validation, and evaluation of one patient
//! [`Profile`](pathway_core::Profile) against a [`RuleSet`].
//!
//! A rule set is a TOML file an informaticist can read and edit: the ladder (steps and typed
//! edges), a fact catalogue, derived facts, cited sources, and rules whose conditions are
//! written in a small language (`egfr < 60 or renal-impairment`). Loading reports every
//! problem at once with file, line and column. Evaluation is pure, three-valued (a missing
//! fact is unknown, never false) and explains every status.
//!
//! ```
//! use pathway_core::{Date, Profile, Sex, Status};
//! use pathway_rules::RuleSet;
//!
//! let rs = RuleSet::ms_spasticity()?;
//! let woman = Profile::new(Date::constant(2026, 11, 22), 30)
//!     .with_sex(Sex::Female)
//!     .with_fact("multiple-sclerosis", true)
//!     .with_fact("spasticity", true)
//!     .with_fact("spasticity-distribution", "generalized")
//!     .with_fact("spasticity-severity", 2)
//!     .with_fact("functional-impact", true)
//!     .with_fact("breastfeeding", false);
//! let rec = rs.evaluate(&woman)?;
//! // Pregnancy status is not recorded for a woman aged 30: never read as "not pregnant".
//! let baclofen = rec.step("baclofen").unwrap();
//! assert_eq!(baclofen.status, Status::Caution);
//! assert!(baclofen.missing.contains(&"pregnant".to_string()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

// Layers, lowest first; a module imports only from modules below it (src/layering.rs checks
// it): tri, error | language (expr, file) | model, results | compile (cond, names, graph,
// circuit, plan, lint, compiler) | ruleset | evaluate (prepared, run, profile, decide, mod) |
// generate. ARCHITECTURE.md says what each is for.
mod compile;
mod error;
mod evaluate;
mod generate;
mod language;
#[cfg(test)]
mod layering;
mod model;
mod results;
mod ruleset;
mod tri;

pub use error::{Diagnostic, ErrorKind, LoadError, Location, ProfileError, Severity};
pub use evaluate::{Evaluation, Prepared, ReasonView, StepView, Violation};
pub use generate::PatientGenerator;
pub use model::{
    Absent, Assertion, Derived, Effect, FactDef, FactKind, IfUnknown, Rule, Source, Stamp,
};
pub use results::{FactUse, Reason, Recommendation, Role, StepResult, Unrecognized};
pub use ruleset::{MS_SPASTICITY_TOML, RuleSet};
pub use tri::Tri;

/// JSON Schemas of what Pathway reads and writes (feature `schema`).
#[cfg(feature = "schema")]
pub mod schema {
    use serde_json::Value;

    fn value(s: schemars::Schema) -> Value {
        serde_json::to_value(s).unwrap_or_default()
    }

    /// The rule-set file (TOML, described as JSON).
    ///
    /// ```
    /// let s = pathway_rules::schema::ruleset();
    /// assert!(s["properties"]["rule"].is_object());
    /// ```
    pub fn ruleset() -> Value {
        value(schemars::schema_for!(crate::language::file::Document))
    }

    /// The patient profile (JSON).
    pub fn profile() -> Value {
        value(schemars::schema_for!(pathway_core::Profile))
    }

    /// The evaluation result (JSON).
    pub fn result() -> Value {
        value(schemars::schema_for!(crate::Recommendation))
    }
}
