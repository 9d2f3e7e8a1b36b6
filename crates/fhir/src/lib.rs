//! # pathway-fhir
//!
//! FHIR R4 in, CDS Hooks and FHIR out. Reads a Bundle (or a Bulk Data export) into a
//! [`Profile`](pathway_core::Profile) exactly as section 3 of the clinical spec says, with the
//! records behind every fact; writes a [`Recommendation`](pathway_rules::Recommendation) as a
//! CDS Hooks 2.0 response or a FHIR R4 `RequestGroup`.
//!
//! The code lists are data ([`ValueSets`], `fixtures/valuesets/`), which a site extends with its
//! local codes. The FHIR model is private and holds only the fields Pathway reads.
//!
//! Architecture invariant: this crate maps; it does not decide. Every clinical decision is the
//! rule set's.
#![forbid(unsafe_code)]

mod bulk;
mod cds;
mod model;
mod read;
mod synth;
mod valueset;

pub use bulk::{BulkError, BulkExport, BundleLines};
pub use cds::{
    Annotation, Card, CardSource, CdsResponse, CodeableConcept, Coding, Indicator, Link, Reference,
    RelatedArtifact, RequestAction, RequestGroup, SUMMARY_MAX, Suggestion, SuggestionAction,
    card_source, cds_hooks, order_for, reading_detail, request_group, step_detail, summary,
};
pub use read::{FhirError, Orders, ReadOptions, Reader, Reading, Warning};
pub use synth::{ehr_shaped, representable, to_bundle};
pub use valueset::{MS_SPASTICITY_VALUESETS, ValueSetError, ValueSets};
