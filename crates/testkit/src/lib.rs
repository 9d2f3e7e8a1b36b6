#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod invariants;
mod sparse;
pub mod strategy;

pub use invariants::{Counterexample, Property, check_all};
pub use pathway_rules::PatientGenerator;
/// The proptest this crate's strategies implement, re-exported so that a test suite uses the
/// same version.
pub use proptest;
pub use strategy::{Profiles, profiles};
