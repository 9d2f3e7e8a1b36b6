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

/// What every resource is first read as.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Head {
    pub resource_type: Option<String>,
    pub id: Option<String>,
    #[serde(default)]
    pub modifier_extension: Vec<IgnoredAny>,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Patient {
    pub gender: Option<String>,
    pub birth_date: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Condition {
    pub clinical_status: Option<CodeableConcept>,
    pub verification_status: Option<CodeableConcept>,
    pub code: Option<CodeableConcept>,
    pub subject: Option<Reference>,
    pub onset_date_time: Option<String>,
    pub onset_period: Option<Period>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Observation {
    pub status: Option<String>,
    pub code: Option<CodeableConcept>,
    pub subject: Option<Reference>,
    pub effective_date_time: Option<String>,
    pub effective_instant: Option<String>,
    pub effective_period: Option<Period>,
    #[serde(default)]
    pub focus: Vec<Reference>,
    pub value_boolean: Option<bool>,
    pub value_integer: Option<i64>,
    pub value_quantity: Option<Quantity>,
    pub value_codeable_concept: Option<CodeableConcept>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Dosage {
    pub route: Option<CodeableConcept>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MedicationStatement {
    pub status: Option<String>,
    pub medication_codeable_concept: Option<CodeableConcept>,
    pub medication_reference: Option<Reference>,
    pub subject: Option<Reference>,
    #[serde(default)]
    pub dosage: Vec<Dosage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Procedure {
    pub status: Option<String>,
    pub code: Option<CodeableConcept>,
    #[serde(default)]
    pub used_code: Vec<CodeableConcept>,
    pub subject: Option<Reference>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AllergyIntolerance {
    pub clinical_status: Option<CodeableConcept>,
    pub verification_status: Option<CodeableConcept>,
    pub code: Option<CodeableConcept>,
    pub patient: Option<Reference>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Medication {
    pub code: Option<CodeableConcept>,
}
