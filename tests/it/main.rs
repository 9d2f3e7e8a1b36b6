//! The one integration-test binary (one link, not one per file).
//!
//! Test code: helpers may panic on malformed fixtures; that is a test failure, not a defect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod adversarial;
mod cds;
mod fhir;
mod fhir_schema;
mod picture;
mod properties;
mod real_records;
mod ruleset_errors;
mod support;
mod vignettes;
