//! A private serde model of just the FHIR R4 fields Pathway reads.
//!
//! Unknown fields are tolerated (no `deny_unknown_fields`): real records carry far more than
//! we read. Only `modifierExtension`, which can change the meaning of what we read, is looked
//! at before a resource is used.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

#[derive(Debug, Deserialize)]
pub(crate) struct Bundle<'a> {
    #[serde(rename = "resourceType")]
    pub resource_type: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default, borrow)]
    pub entry: Vec<Entry<'a>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Entry<'a> {
    #[serde(rename = "fullUrl")]
    pub full_url: Option<String>,
    #[serde(borrow)]
    pub resource: Option<&'a RawValue>,
}

/// Just the type of a resource.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Head {
    pub resource_type: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CodeableConcept {
    #[serde(default)]
    pub coding: Vec<Coding>,
}

impl CodeableConcept {
    /// `(system, code)` pairs with both present.
    pub fn codes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.coding
            .iter()
            .filter_map(|c| Some((c.system.as_deref()?, c.code.as_deref()?)))
    }

    /// Whether any coding has this code (any system).
    pub fn has_code(&self, code: &str) -> bool {
        self.coding.iter().any(|c| c.code.as_deref() == Some(code))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Reference {
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Quantity {
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Period {
    pub start: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Dosage {
    pub route: Option<CodeableConcept>,
}

/// Every field Pathway reads from a Patient, Condition, Observation, MedicationStatement,
/// Procedure, AllergyIntolerance or Medication, in one struct: their types agree, so a whole
/// Bundle parses in one pass.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnyResource {
    pub resource_type: Option<String>,
    pub id: Option<String>,
    #[serde(default)]
    pub modifier_extension: Vec<IgnoredAny>,
    // Patient
    pub gender: Option<String>,
    pub birth_date: Option<String>,
    // Condition, AllergyIntolerance
    pub clinical_status: Option<CodeableConcept>,
    pub verification_status: Option<CodeableConcept>,
    pub onset_date_time: Option<String>,
    pub onset_period: Option<Period>,
    pub patient: Option<Reference>,
    // shared
    pub code: Option<CodeableConcept>,
    pub subject: Option<Reference>,
    pub status: Option<String>,
    // Observation
    pub effective_date_time: Option<String>,
    pub effective_instant: Option<String>,
    pub effective_period: Option<Period>,
    #[serde(default)]
    pub focus: Vec<Reference>,
    pub value_boolean: Option<bool>,
    pub value_integer: Option<i64>,
    pub value_quantity: Option<Quantity>,
    pub value_codeable_concept: Option<CodeableConcept>,
    // MedicationStatement
    pub medication_codeable_concept: Option<CodeableConcept>,
    pub medication_reference: Option<Reference>,
    #[serde(default)]
    pub dosage: Vec<Dosage>,
    // Procedure
    #[serde(default)]
    pub used_code: Vec<CodeableConcept>,
}

/// A Bundle parsed in one pass.
#[derive(Debug, Deserialize)]
pub(crate) struct FastBundle {
    #[serde(rename = "resourceType")]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub entry: Vec<FastEntry>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FastEntry {
    #[serde(rename = "fullUrl")]
    pub full_url: Option<String>,
    pub resource: Option<Box<AnyResource>>,
}

/// The resource types Pathway reads.
pub(crate) const READ_TYPES: [&str; 7] = [
    "Patient",
    "Condition",
    "Observation",
    "MedicationStatement",
    "Procedure",
    "AllergyIntolerance",
    "Medication",
];
