//! A private serde model of just the FHIR R4 fields Pathway reads.
//!
//! Unknown fields are tolerated (no `deny_unknown_fields`): real records carry far more than
//! we read. Only `modifierExtension`, which can change the meaning of what we read, is looked
//! at before a resource is used.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, Visitor};
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
    #[serde(borrow)]
    pub display: Option<Text<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CodeableConcept<'a> {
    /// Inline: almost every concept has one coding, and an allocation per concept was a
    /// large share of reading a Bundle.
    #[serde(default, borrow)]
    pub coding: SmallVec<[Coding<'a>; 1]>,
    #[serde(borrow)]
    pub text: Option<Text<'a>>,
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

    /// Its text and every coding's display: what a name match reads.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.text
            .as_deref()
            .into_iter()
            .chain(self.coding.iter().filter_map(|c| c.display.as_deref()))
    }

    /// The text, else the first display, else empty: how a person would name it.
    pub fn label(&self) -> &str {
        self.words().next().unwrap_or_default()
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
    pub comparator: Option<Text<'a>>,
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

/// A person's name, as far as a report shows it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HumanName<'a> {
    #[serde(borrow)]
    pub text: Option<Text<'a>>,
    #[serde(borrow)]
    pub family: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub given: Vec<Text<'a>>,
}

impl HumanName<'_> {
    /// The name as text: its `text`, else given names and family name.
    pub fn display(&self) -> Option<String> {
        if let Some(t) = &self.text {
            return Some(t.to_string());
        }
        let parts: Vec<&str> = self
            .given
            .iter()
            .map(|g| &**g)
            .chain(self.family.as_deref())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// One ingredient of a Medication.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MedicationIngredient<'a> {
    #[serde(borrow)]
    pub item_codeable_concept: Option<CodeableConcept<'a>>,
    #[serde(borrow)]
    pub item_reference: Option<Reference<'a>>,
}

/// Declares the struct of one resource type: the fields given, after the two every resource
/// has, its `id` and the `modifierExtension`s that forbid reading it as if they were absent.
/// (Repeated in each struct: a shared `#[serde(flatten)]` part would buffer every resource.)
macro_rules! resource {
    ($(#[$doc:meta])* $name:ident { $($(#[$a:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub(crate) struct $name<'a> {
            #[serde(borrow)]
            pub id: Option<Text<'a>>,
            #[serde(default)]
            pub modifier_extension: Vec<IgnoredAny>,
            $($(#[$a])* pub $field: $ty,)*
        }
    };
}

resource!(
    /// What Pathway reads from a Patient.
    Patient {
        #[serde(borrow)]
        gender: Option<Text<'a>>,
        #[serde(borrow)]
        birth_date: Option<Text<'a>>,
        deceased_boolean: Option<bool>,
        #[serde(default, borrow)]
        name: Vec<HumanName<'a>>,
        #[serde(borrow)]
        deceased_date_time: Option<Text<'a>>,
    }
);

resource!(
    /// What Pathway reads from a Condition.
    Condition {
        #[serde(borrow)]
        clinical_status: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        verification_status: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        code: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        subject: Option<Reference<'a>>,
        #[serde(borrow)]
        onset_date_time: Option<Text<'a>>,
        #[serde(borrow)]
        onset_period: Option<Period<'a>>,
        #[serde(borrow)]
        recorded_date: Option<Text<'a>>,
        #[serde(borrow)]
        abatement_date_time: Option<Text<'a>>,
        #[serde(borrow)]
        abatement_period: Option<Period<'a>>,
        abatement_age: Option<IgnoredAny>,
        abatement_range: Option<IgnoredAny>,
        abatement_string: Option<IgnoredAny>,
    }
);

resource!(
    /// What Pathway reads from an AllergyIntolerance.
    AllergyIntolerance {
        #[serde(borrow)]
        clinical_status: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        verification_status: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        code: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        patient: Option<Reference<'a>>,
        #[serde(borrow)]
        recorded_date: Option<Text<'a>>,
    }
);

resource!(
    /// What Pathway reads from an Observation.
    Observation {
        #[serde(borrow)]
        status: Option<Text<'a>>,
        #[serde(borrow)]
        code: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        subject: Option<Reference<'a>>,
        #[serde(borrow)]
        effective_date_time: Option<Text<'a>>,
        #[serde(borrow)]
        effective_instant: Option<Text<'a>>,
        #[serde(borrow)]
        effective_period: Option<Period<'a>>,
        #[serde(default, borrow)]
        focus: Vec<Reference<'a>>,
        value_boolean: Option<bool>,
        value_integer: Option<i64>,
        #[serde(borrow)]
        value_quantity: Option<Quantity<'a>>,
        #[serde(borrow)]
        value_codeable_concept: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        value_string: Option<Text<'a>>,
        data_absent_reason: Option<IgnoredAny>,
    }
);

resource!(
    /// What Pathway reads from a MedicationStatement.
    MedicationStatement {
        #[serde(borrow)]
        status: Option<Text<'a>>,
        #[serde(borrow)]
        subject: Option<Reference<'a>>,
        #[serde(borrow)]
        medication_codeable_concept: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        medication_reference: Option<Reference<'a>>,
        #[serde(default, borrow)]
        dosage: Vec<Dosage<'a>>,
        #[serde(borrow)]
        effective_date_time: Option<Text<'a>>,
        #[serde(borrow)]
        effective_period: Option<Period<'a>>,
        #[serde(borrow)]
        date_asserted: Option<Text<'a>>,
        #[serde(default, borrow)]
        contained: Vec<&'a RawValue>,
    }
);

resource!(
    /// What Pathway reads from a MedicationRequest.
    MedicationRequest {
        #[serde(borrow)]
        status: Option<Text<'a>>,
        #[serde(borrow)]
        intent: Option<Text<'a>>,
        do_not_perform: Option<bool>,
        #[serde(borrow)]
        subject: Option<Reference<'a>>,
        #[serde(borrow)]
        medication_codeable_concept: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        medication_reference: Option<Reference<'a>>,
        #[serde(default, borrow)]
        dosage_instruction: Vec<Dosage<'a>>,
        #[serde(borrow)]
        authored_on: Option<Text<'a>>,
        #[serde(default, borrow)]
        contained: Vec<&'a RawValue>,
    }
);

resource!(
    /// What Pathway reads from a MedicationAdministration.
    MedicationAdministration {
        #[serde(borrow)]
        status: Option<Text<'a>>,
        #[serde(borrow)]
        subject: Option<Reference<'a>>,
        #[serde(borrow)]
        medication_codeable_concept: Option<CodeableConcept<'a>>,
        #[serde(borrow)]
        medication_reference: Option<Reference<'a>>,
        #[serde(borrow)]
        dosage: Option<Dosage<'a>>,
        #[serde(borrow)]
        effective_date_time: Option<Text<'a>>,
        #[serde(borrow)]
        effective_period: Option<Period<'a>>,
        #[serde(default, borrow)]
        contained: Vec<&'a RawValue>,
    }
);

resource!(
    /// What Pathway reads from a Procedure.
    Procedure {
        #[serde(borrow)]
        status: Option<Text<'a>>,
        #[serde(borrow)]
        subject: Option<Reference<'a>>,
        #[serde(borrow)]
        code: Option<CodeableConcept<'a>>,
        #[serde(default, borrow)]
        used_code: Vec<CodeableConcept<'a>>,
        #[serde(borrow)]
        performed_date_time: Option<Text<'a>>,
        #[serde(borrow)]
        performed_period: Option<Period<'a>>,
    }
);

resource!(
    /// What Pathway reads from a Medication (the target of a `medicationReference`).
    Medication {
        #[serde(borrow)]
        code: Option<CodeableConcept<'a>>,
        #[serde(default, borrow)]
        ingredient: Vec<MedicationIngredient<'a>>,
    }
);

/// A `contained` resource, read only when it is a Medication a record references.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainedMedication<'a> {
    #[serde(borrow)]
    pub resource_type: Option<Text<'a>>,
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub code: Option<CodeableConcept<'a>>,
    #[serde(default, borrow)]
    pub ingredient: Vec<MedicationIngredient<'a>>,
}

resource!(
    /// A resource of a type Pathway does not read: only named and counted.
    Unread {}
);

/// One resource, parsed as its type: each type has only the fields Pathway reads from it, so
/// a field of the wrong type is an error only where it is read. Boxed: the variants differ
/// in size, and moving a box costs less than moving the largest.
#[derive(Debug)]
pub(crate) enum Resource<'a> {
    Patient(Box<Patient<'a>>),
    Condition(Box<Condition<'a>>),
    AllergyIntolerance(Box<AllergyIntolerance<'a>>),
    Observation(Box<Observation<'a>>),
    MedicationStatement(Box<MedicationStatement<'a>>),
    MedicationRequest(Box<MedicationRequest<'a>>),
    MedicationAdministration(Box<MedicationAdministration<'a>>),
    Procedure(Box<Procedure<'a>>),
    Medication(Box<Medication<'a>>),
    /// Any other type, with its name.
    Unread(Text<'a>, Box<Unread<'a>>),
}

/// Applies `$f` to the resource whatever its type (each has `id` and `modifier_extension`).
macro_rules! each {
    ($r:expr, $x:ident => $f:expr) => {
        match $r {
            Resource::Patient($x) => $f,
            Resource::Condition($x) => $f,
            Resource::AllergyIntolerance($x) => $f,
            Resource::Observation($x) => $f,
            Resource::MedicationStatement($x) => $f,
            Resource::MedicationRequest($x) => $f,
            Resource::MedicationAdministration($x) => $f,
            Resource::Procedure($x) => $f,
            Resource::Medication($x) => $f,
            Resource::Unread(_, $x) => $f,
        }
    };
}

impl<'a> Resource<'a> {
    /// The resource type.
    pub fn kind(&self) -> &str {
        match self {
            Resource::Patient(_) => "Patient",
            Resource::Condition(_) => "Condition",
            Resource::AllergyIntolerance(_) => "AllergyIntolerance",
            Resource::Observation(_) => "Observation",
            Resource::MedicationStatement(_) => "MedicationStatement",
            Resource::MedicationRequest(_) => "MedicationRequest",
            Resource::MedicationAdministration(_) => "MedicationAdministration",
            Resource::Procedure(_) => "Procedure",
            Resource::Medication(_) => "Medication",
            Resource::Unread(kind, _) => kind,
        }
    }

    /// The resource id.
    pub fn id(&self) -> Option<&str> {
        each!(self, r => r.id.as_deref())
    }

    /// Whether it carries a `modifierExtension`.
    pub fn has_modifier_extension(&self) -> bool {
        each!(self, r => !r.modifier_extension.is_empty())
    }

    /// A resource of a type Pathway does not read, or one that could not be read, named by
    /// its type and id.
    pub fn unread(kind: String, id: Option<String>) -> Resource<'a> {
        Resource::Unread(
            Text(Cow::Owned(kind)),
            Box::new(Unread {
                id: id.map(|i| Text(Cow::Owned(i))),
                ..Unread::default()
            }),
        )
    }

    /// Deserializes the rest of a resource whose type is `kind`.
    fn typed<'de: 'a, D: Deserializer<'de>>(kind: Text<'a>, d: D) -> Result<Self, D::Error> {
        Ok(match &*kind {
            "Patient" => Resource::Patient(Deserialize::deserialize(d)?),
            "Condition" => Resource::Condition(Deserialize::deserialize(d)?),
            "AllergyIntolerance" => Resource::AllergyIntolerance(Deserialize::deserialize(d)?),
            "Observation" => Resource::Observation(Deserialize::deserialize(d)?),
            "MedicationStatement" => Resource::MedicationStatement(Deserialize::deserialize(d)?),
            "MedicationRequest" => Resource::MedicationRequest(Deserialize::deserialize(d)?),
            "MedicationAdministration" => {
                Resource::MedicationAdministration(Deserialize::deserialize(d)?)
            }
            "Procedure" => Resource::Procedure(Deserialize::deserialize(d)?),
            "Medication" => Resource::Medication(Deserialize::deserialize(d)?),
            _ => Resource::Unread(kind, Deserialize::deserialize(d)?),
        })
    }
}

/// Parses one resource on its own as the type already found in it (the careful path), one
/// of [`READ_TYPES`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct As(pub &'static str);

impl<'de> DeserializeSeed<'de> for As {
    type Value = Resource<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Resource<'de>, D::Error> {
        Resource::typed(Text(Cow::Borrowed(self.0)), d)
    }
}

/// In the one-pass read, a resource whose `resourceType` comes first (as FHIR's JSON writers
/// put it) is parsed straight into its type. Any other order is an error here, which sends
/// the whole Bundle the careful way, where the type is found first.
impl<'de: 'a, 'a> Deserialize<'de> for Resource<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<Resource<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Resource<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a resource starting with its resourceType")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                match map.next_key::<Text<'de>>()? {
                    Some(key) if &*key == "resourceType" => {}
                    _ => return Err(de::Error::custom("resourceType is not the first field")),
                }
                let kind: Text<'de> = map.next_value()?;
                Resource::typed(kind, de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
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
    #[serde(borrow)]
    pub resource: Option<Resource<'a>>,
}

/// The resource types Pathway reads.
pub(crate) const READ_TYPES: [&str; 9] = [
    "Patient",
    "Condition",
    "Observation",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationAdministration",
    "Procedure",
    "AllergyIntolerance",
    "Medication",
];
