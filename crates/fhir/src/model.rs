//! A private serde model of just the FHIR R4 fields Pathway reads.
//!
//! Unknown fields are tolerated (no `deny_unknown_fields`): real records carry far more than
//! we read. Only `modifierExtension`, which can change the meaning of what we read, is looked
//! at before a resource is used.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use smallvec::SmallVec;

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

/// A JSON string, borrowed from the input unless it had escapes to undo.
///
/// (serde borrows `Cow<str>` only as a bare field, never inside `Option`; this does.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Coding<'a> {
    #[serde(borrow)]
    pub system: Option<Text<'a>>,
    #[serde(borrow)]
    pub code: Option<Text<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CodeableConcept<'a> {
    /// Inline: almost every concept has one coding, and an allocation per concept was a
    /// large share of reading a Bundle.
    #[serde(default, borrow)]
    pub coding: SmallVec<[Coding<'a>; 1]>,
}

impl CodeableConcept<'_> {
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
pub(crate) struct Reference<'a> {
    #[serde(borrow)]
    pub reference: Option<Text<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Quantity<'a> {
    pub value: Option<f64>,
    #[serde(borrow)]
    pub unit: Option<Text<'a>>,
    #[serde(borrow)]
    pub code: Option<Text<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Period<'a> {
    #[serde(borrow)]
    pub start: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Dosage<'a> {
    #[serde(borrow)]
    pub route: Option<CodeableConcept<'a>>,
}

/// Every field Pathway reads from a Patient, Condition, Observation, MedicationStatement,
/// Procedure, AllergyIntolerance or Medication, in one struct: their types agree, so a whole
/// Bundle parses in one pass. Strings borrow from the input.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnyResource<'a> {
    #[serde(borrow)]
    pub resource_type: Option<Text<'a>>,
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(default)]
    pub modifier_extension: Vec<IgnoredAny>,
    // Patient
    #[serde(borrow)]
    pub gender: Option<Text<'a>>,
    #[serde(borrow)]
    pub birth_date: Option<Text<'a>>,
    // Condition, AllergyIntolerance
    #[serde(borrow)]
    pub clinical_status: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub verification_status: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub onset_date_time: Option<Text<'a>>,
    #[serde(borrow)]
    pub onset_period: Option<Period<'a>>,
    #[serde(borrow)]
    pub patient: Option<Reference<'a>>,
    // shared
    #[serde(borrow)]
    pub code: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub subject: Option<Reference<'a>>,
    #[serde(borrow)]
    pub status: Option<Text<'a>>,
    // Observation
    #[serde(borrow)]
    pub effective_date_time: Option<Text<'a>>,
    #[serde(borrow)]
    pub effective_instant: Option<Text<'a>>,
    #[serde(borrow)]
    pub effective_period: Option<Period<'a>>,
    #[serde(default, borrow)]
    pub focus: Vec<Reference<'a>>,
    pub value_boolean: Option<bool>,
    pub value_integer: Option<i64>,
    #[serde(borrow)]
    pub value_quantity: Option<Quantity<'a>>,
    #[serde(borrow)]
    pub value_codeable_concept: Option<CodeableConcept<'a>>,
    // MedicationStatement
    #[serde(borrow)]
    pub medication_codeable_concept: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub medication_reference: Option<Reference<'a>>,
    #[serde(default, borrow)]
    pub dosage: Vec<Dosage<'a>>,
    // Procedure
    #[serde(default, borrow)]
    pub used_code: Vec<CodeableConcept<'a>>,
}

/// A Bundle parsed in one pass.
#[derive(Debug, Deserialize)]
pub(crate) struct FastBundle<'a> {
    #[serde(rename = "resourceType", borrow)]
    pub resource_type: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "entries")]
    pub entry: Vec<FastEntry<'a>>,
}

/// A Bundle's entries, into a vector sized for a typical record at the outset (JSON gives no
/// length): regrown from empty, it was reallocated four or five times per Bundle, each time
/// copied, which cost about 2% of reading one.
fn entries<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Vec<FastEntry<'a>>, D::Error> {
    struct V<'a>(std::marker::PhantomData<FastEntry<'a>>);
    impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
        type Value = Vec<FastEntry<'a>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of entries")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(64).min(4096));
            while let Some(e) = seq.next_element()? {
                out.push(e);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V(std::marker::PhantomData))
}

#[derive(Debug, Deserialize)]
pub(crate) struct FastEntry<'a> {
    #[serde(rename = "fullUrl", borrow)]
    pub full_url: Option<Text<'a>>,
    /// Boxed: the struct is large, and moving it costs more than allocating it.
    #[serde(borrow)]
    pub resource: Option<Box<AnyResource<'a>>>,
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
