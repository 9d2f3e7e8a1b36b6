//! Profiles written as FHIR R4 Bundles, the way section 3 of the spec says a record carries
//! them: for round-trip tests, Bulk Data test exports and benchmarks.

use pathway_core::{FactValue, Profile, Sex, StepKind};
use pathway_rules::{Absent, FactKind};
use serde_json::{Value, json};

use crate::cds::set;
use crate::read::Reader;
use crate::valueset::{FACT_SYSTEM, STEP_SYSTEM, VALUE_SYSTEM};

const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const LOINC: &str = "http://loinc.org";

/// The parts of a profile that a FHIR record can carry, as the reader would read them back:
/// problem-list facts are only ever "present" (absent means false), so recorded `false` and
/// `unknown` for them drop out (except an injury, whose unknown onset is representable), and a
/// recorded `unknown` for a fact that is unknown when absent is just absent. Provenance is
/// dropped.
pub fn representable(reader: &Reader<'_>, profile: &Profile) -> Profile {
    let rs = reader.ruleset();
    let mut p = profile.clone();
    p.provenance.clear();
    // A birth year before 0001 is written as 0001 (FHIR dates), so the age reads back smaller.
    let year = i32::from(p.date.year());
    if year - i32::from(p.age) < 1 {
        p.age = u16::try_from(year - 1).unwrap_or(0);
    }
    // An allergy recorded against a step whose drug is another step's is that drug's (C2).
    p.hypersensitivities = p
        .hypersensitivities
        .iter()
        .map(|s| {
            reader
                .vs
                .allergens
                .get(STEP_SYSTEM, s.as_str())
                .cloned()
                .unwrap_or_else(|| s.clone())
        })
        .collect();
    p.facts.retain(|id, v| {
        let Some(def) = rs.fact(id) else { return false };
        match (&def.absent, v) {
            (Absent::False, FactValue::Bool(false)) => false,
            (Absent::False, FactValue::Unknown) => id == "recent-injury",
            (Absent::Unknown, FactValue::Unknown) => false,
            _ => true,
        }
    });
    p
}

fn coding(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

/// A code from the reader's value sets for a key, lowest first (deterministic).
fn first<'a>(keys: impl Iterator<Item = (&'a str, &'a str)>) -> Option<(&'a str, &'a str)> {
    keys.min()
}

/// Writes a profile as a FHIR R4 `collection` Bundle for the patient `id`.
///
/// ```
/// use pathway_core::{Date, Profile};
/// use pathway_fhir::{ReadOptions, Reader, ValueSets, representable, to_bundle};
/// use pathway_rules::{PatientGenerator, RuleSet};
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let reader = Reader::new(&rs, ValueSets::ms_spasticity(&rs).unwrap());
/// let p = PatientGenerator::new(&rs, 3).profile();
/// let bundle = to_bundle(&reader, &p, "p3");
/// let back = reader.read_bundle(bundle.to_string().as_bytes(), &ReadOptions::strict(p.date)).unwrap();
/// let mut read = back.profile;
/// read.provenance.clear();
/// assert_eq!(read, representable(&reader, &p));
/// ```
pub fn to_bundle(reader: &Reader<'_>, profile: &Profile, id: &str) -> Value {
    let rs = reader.ruleset();
    let vs = &reader.vs;
    let subject = json!({"reference": format!("Patient/{id}")});
    let date = profile.date.to_string();
    let mut entries = Vec::new();
    let mut n = 0usize;
    let mut push = |entries: &mut Vec<Value>, mut r: Value| {
        n += 1;
        let kind = r
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("Resource")
            .to_owned();
        let rid = format!("{id}-{n}");
        // FHIR writers put resourceType and id first.
        if let Some(o) = r.as_object_mut() {
            o.shift_insert(1, "id".into(), json!(rid));
        }
        entries.push(json!({"fullUrl": format!("{kind}/{rid}"), "resource": r}));
        format!("{kind}/{rid}")
    };
    // FHIR dates have four-digit years from 0001: an age reaching past that is written as
    // born in year 1 (and reads back as the age that gives).
    let birth_year = (i32::from(profile.date.year()) - i32::from(profile.age)).max(1);
    let gender = match profile.sex {
        Sex::Male => "male",
        Sex::Female => "female",
        Sex::Other => "other",
        Sex::Unknown => "unknown",
    };
    entries.push(json!({"fullUrl": format!("Patient/{id}"), "resource": {
        "resourceType": "Patient", "id": id, "gender": gender, "birthDate": format!("{birth_year:04}-01-01")}}));
    let active = coding(
        "http://terminology.hl7.org/CodeSystem/condition-clinical",
        "active",
    );
    for (fact, value) in &profile.facts {
        let Some(def) = rs.fact(fact) else { continue };
        let condition_code = first(
            vs.conditions
                .iter()
                .filter(|(_, maps)| {
                    maps.iter().all(|m| &m.fact == fact) && maps.iter().any(|m| !m.unless_observed)
                })
                .map(|(k, _)| k),
        );
        if let (Absent::False, Some((system, code))) = (&def.absent, condition_code) {
            let mut c = json!({"resourceType": "Condition", "clinicalStatus": active,
                "code": coding(system, code), "subject": subject});
            match value {
                FactValue::Bool(true) => {
                    if fact == "recent-injury" {
                        set(&mut c, "onsetDateTime", json!(date));
                    }
                }
                FactValue::Unknown if fact == "recent-injury" => {}
                _ => continue,
            }
            push(&mut entries, c);
            continue;
        }
        if def.absent == Absent::False && *value != FactValue::Bool(true) {
            // Absent already means false; an unknown cannot be written.
            continue;
        }
        let mut o = json!({"resourceType": "Observation", "status": "final",
            "code": coding(FACT_SYSTEM, fact), "subject": subject, "effectiveDateTime": date});
        let unknown_answer = |fact: &str| {
            vs.observations.get(FACT_SYSTEM, fact).and_then(|m| {
                first(
                    m.answers
                        .iter()
                        .filter(|(_, v)| **v == FactValue::Unknown)
                        .map(|(k, _)| k),
                )
            })
        };
        match (value, &def.kind) {
            (FactValue::Bool(b), _) => set(&mut o, "valueBoolean", json!(b)),
            (FactValue::Number(x), FactKind::Number { integer: true, .. }) => {
                set(&mut o, "valueInteger", json!(*x as i64));
            }
            (FactValue::Number(x), _) => {
                set(
                    &mut o,
                    "valueQuantity",
                    json!({"value": x, "system": "http://unitsofmeasure.org", "code": "mL/min/{1.73_m2}"}),
                );
                if fact == "egfr" {
                    set(&mut o, "code", coding(LOINC, "98979-8"));
                }
            }
            (FactValue::Code(c), _) => set(&mut o, "valueCodeableConcept", coding(VALUE_SYSTEM, c)),
            (FactValue::Interval(i), _) => {
                let (comparator, value) = match (i.low(), i.high()) {
                    (None, Some((h, true))) => ("<", h),
                    (None, Some((h, false))) => ("<=", h),
                    (Some((l, true)), None) => (">", l),
                    (Some((l, false)), None) => (">=", l),
                    // Two bounds: FHIR's valueRange; not written by this writer.
                    _ => continue,
                };
                set(
                    &mut o,
                    "valueQuantity",
                    json!({"value": value, "comparator": comparator, "system": "http://unitsofmeasure.org", "code": "mL/min/{1.73_m2}"}),
                );
                if fact == "egfr" {
                    set(&mut o, "code", coding(LOINC, "98979-8"));
                }
            }
            (FactValue::Unknown, _) => match unknown_answer(fact) {
                Some((system, code)) => set(&mut o, "valueCodeableConcept", coding(system, code)),
                None => continue,
            },
        }
        push(&mut entries, o);
    }
    let unknown = profile
        .unknown_medications
        .iter()
        .filter(|c| !profile.medications.contains(*c))
        .map(|c| (c, "unknown"));
    for (class, status) in profile
        .medications
        .iter()
        .map(|c| (c, "active"))
        .chain(unknown)
    {
        let Some((system, code)) = vs.class_code(class) else {
            continue;
        };
        push(
            &mut entries,
            json!({"resourceType": "MedicationStatement", "status": status,
            "medicationCodeableConcept": coding(system, code), "subject": subject}),
        );
    }
    for step in &profile.hypersensitivities {
        push(
            &mut entries,
            json!({"resourceType": "AllergyIntolerance",
            "code": coding(STEP_SYSTEM, step.as_str()), "patient": subject}),
        );
    }
    for (step, record) in &profile.steps {
        let Some(def) = rs.ladder().step(step.as_str()) else {
            continue;
        };
        let drug = matches!(def.kind, StepKind::Drug | StepKind::Injection);
        let code = def
            .codes
            .iter()
            .find(|c| c.system == RXNORM)
            .filter(|_| !vs.routes.iter().any(|r| &r.step == step))
            .map_or_else(
                || coding(STEP_SYSTEM, step.as_str()),
                |c| coding(&c.system, &c.code),
            );
        let declined_only =
            !record.current && record.outcome == Some(pathway_core::Outcome::Declined);
        let r = if drug {
            let status = match (record.current, declined_only) {
                (true, _) => "active",
                (false, true) => "not-taken",
                (false, false) => "stopped",
            };
            json!({"resourceType": "MedicationStatement", "status": status,
                "medicationCodeableConcept": code, "subject": subject})
        } else {
            let status = match (record.current, declined_only) {
                (true, _) => "in-progress",
                (false, true) => "not-done",
                (false, false) => "completed",
            };
            json!({"resourceType": "Procedure", "status": status, "code": code, "subject": subject})
        };
        let reference = push(&mut entries, r);
        if let Some(outcome) = record.outcome {
            push(
                &mut entries,
                json!({"resourceType": "Observation", "status": "final",
                "code": coding(FACT_SYSTEM, "outcome"), "subject": subject, "effectiveDateTime": date,
                "focus": [{"reference": reference}],
                "valueCodeableConcept": coding(VALUE_SYSTEM, outcome.as_str())}),
            );
        }
    }
    json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
}

/// The same Bundle with what an EHR's export carries around the fields Pathway reads, for
/// benchmarks and tolerance tests.
///
/// `to_bundle` writes minimal resources (about 300 bytes each). Resources from an EHR, such
/// as those that follow US Core, also carry `meta`, a generated narrative, identifiers,
/// categories, display texts, encounters, performers and dates Pathway does not read, and a
/// Patient carries names, addresses, telecoms and race and ethnicity extensions. This adds
/// those, in the order FHIR writers put them, and nothing that changes what is read: no
/// `modifierExtension`, no dosage route, no status or subject changed. Reading the result
/// gives the same `Reading` as reading `bundle`, but for the Patient's name.
///
/// ```
/// use pathway_fhir::{ReadOptions, Reader, ValueSets, ehr_shaped, to_bundle};
/// use pathway_rules::{PatientGenerator, RuleSet};
/// let rs = RuleSet::ms_spasticity().unwrap();
/// let reader = Reader::new(&rs, ValueSets::ms_spasticity(&rs).unwrap());
/// let p = PatientGenerator::new(&rs, 3).profile();
/// let minimal = to_bundle(&reader, &p, "p3");
/// let ehr = ehr_shaped(&minimal);
/// assert!(ehr.to_string().len() > 2 * minimal.to_string().len());
/// let opts = ReadOptions::strict(p.date);
/// let mut read = reader.read_bundle(ehr.to_string().as_bytes(), &opts).unwrap();
/// assert_eq!(read.patient_name.take().as_deref(), Some("Alex Jordan Example"));
/// assert_eq!(read, reader.read_bundle(minimal.to_string().as_bytes(), &opts).unwrap());
/// ```
pub fn ehr_shaped(bundle: &Value) -> Value {
    let mut out = bundle.clone();
    if let Some(o) = out.as_object_mut() {
        o.shift_insert(
            1,
            "id".into(),
            json!("b6a1c0de-0e7e-4c2b-9d55-2f1f8a3c7e10"),
        );
        o.shift_insert(
            2,
            "meta".into(),
            json!({"lastUpdated": "2026-11-22T08:30:12.000Z"}),
        );
    }
    if let Some(entries) = out.get_mut("entry").and_then(Value::as_array_mut) {
        for e in entries {
            if let Some(r) = e.get_mut("resource") {
                shape_resource(r);
            }
        }
    }
    out
}

/// A display text for a code, about as long as a real one.
fn display(code: &str) -> String {
    let words = code.replace(['-', '_', ':'], " ");
    let mut chars = words.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    format!("{}{} (finding)", first.unwrap_or_default(), chars.as_str())
}

/// Adds `display` to every coding and `text` to every CodeableConcept, recursively.
fn add_displays(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let mut text = None;
            if let Some(codings) = o.get_mut("coding").and_then(Value::as_array_mut) {
                for c in codings.iter_mut() {
                    let code = c.get("code").and_then(Value::as_str).map(display);
                    if let (Some(d), Some(co)) = (code, c.as_object_mut()) {
                        text.get_or_insert_with(|| d.clone());
                        co.insert("display".into(), json!(d));
                    }
                }
            }
            if let Some(t) = text {
                o.insert("text".into(), json!(t));
            }
            for (_, x) in o.iter_mut() {
                add_displays(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(add_displays),
        _ => {}
    }
}

fn category(system: &str, code: &str, text: &str) -> Value {
    json!([{"coding": [{"system": system, "code": code, "display": text}], "text": text}])
}

fn shape_resource(r: &mut Value) {
    add_displays(r);
    let kind = r
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let id = r
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(o) = r.as_object_mut() else { return };
    let profile = format!(
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-{}",
        kind.to_lowercase()
    );
    // After resourceType and id, as FHIR writers put them.
    let at = 2.min(o.len());
    o.shift_insert(
        at,
        "meta".into(),
        json!({"versionId": "3", "lastUpdated": "2026-11-20T09:14:31.000Z", "profile": [profile]}),
    );
    o.shift_insert(
        at + 1,
        "text".into(),
        json!({"status": "generated", "div": format!(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p><b>Generated Narrative: {kind}</b><a name=\"{id}\"> </a></p><p>Recorded in the outpatient record.</p></div>"
        )}),
    );
    o.insert(
        "identifier".into(),
        json!([{"use": "usual", "system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.768282", "value": format!("E-{id}")}]),
    );
    let encounter = json!({"reference": "Encounter/enc-20261120", "display": "Office Visit"});
    let clinician = json!({"reference": "Practitioner/pr-1", "display": "Dr Morgan Lee"});
    let verified = |system: &str| json!({"coding": [{"system": system, "code": "confirmed", "display": "Confirmed"}]});
    let extra = match kind.as_str() {
        "Patient" => json!({
            "active": true,
            "name": [{"use": "official", "family": "Example", "given": ["Alex", "Jordan"]}],
            "telecom": [{"system": "phone", "value": "555-0100", "use": "home"},
                {"system": "email", "value": "alex.example@example.org"}],
            "address": [{"use": "home", "line": ["1 Main Street"], "city": "Springfield",
                "state": "MA", "postalCode": "01101", "country": "US"}],
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47",
                "code": "en", "display": "English"}], "text": "English"}, "preferred": true}],
            "extension": [
                {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": [
                    {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238",
                        "code": "2106-3", "display": "White"}},
                    {"url": "text", "valueString": "White"}]},
                {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity", "extension": [
                    {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238",
                        "code": "2186-5", "display": "Not Hispanic or Latino"}},
                    {"url": "text", "valueString": "Not Hispanic or Latino"}]}],
        }),
        "Condition" => json!({
            "verificationStatus": verified("http://terminology.hl7.org/CodeSystem/condition-ver-status"),
            "category": category("http://terminology.hl7.org/CodeSystem/condition-category",
                "problem-list-item", "Problem List Item"),
            "encounter": encounter,
            "recordedDate": "2026-11-20",
            "recorder": clinician,
        }),
        "Observation" => json!({
            "category": category("http://terminology.hl7.org/CodeSystem/observation-category",
                "exam", "Exam"),
            "encounter": encounter,
            "issued": "2026-11-22T10:02:17.000Z",
            "performer": [clinician],
        }),
        "MedicationStatement" => json!({
            "category": category(
                "http://terminology.hl7.org/CodeSystem/medication-statement-category",
                "outpatient", "Outpatient"),
            "dateAsserted": "2026-11-20",
            "informationSource": clinician,
            "dosage": [{"text": "As directed by the prescriber", "sequence": 1}],
        }),
        "Procedure" => json!({
            "category": category("http://snomed.info/sct", "387713003", "Surgical procedure"),
            "encounter": encounter,
            "performer": [{"actor": clinician}],
        }),
        "AllergyIntolerance" => json!({
            "verificationStatus": verified(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"),
            "type": "allergy",
            "category": ["medication"],
            "criticality": "low",
            "recordedDate": "2026-11-20",
            "recorder": clinician,
        }),
        _ => return,
    };
    if let Value::Object(extra) = extra {
        o.extend(extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValueSets;
    use pathway_core::Date;
    use pathway_rules::RuleSet;

    #[test]
    fn an_age_past_year_one_is_never_written_as_a_negative_year() {
        let rs = RuleSet::ms_spasticity().unwrap();
        let reader = Reader::new(&rs, ValueSets::ms_spasticity(&rs).unwrap());
        let p = Profile::new(Date::constant(20, 6, 1), 21);
        let b = to_bundle(&reader, &p, "x");
        let birth = b["entry"][0]["resource"]["birthDate"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(birth, "0001-01-01");
        let opts = crate::ReadOptions::strict(p.date);
        let back = reader.read_bundle(b.to_string().as_bytes(), &opts).unwrap();
        assert_eq!(back.profile.age, representable(&reader, &p).age);
    }
}
