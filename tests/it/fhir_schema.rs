//! What Pathway writes as FHIR, validated against HL7's FHIR R4 JSON Schema
//! (`fixtures/fhir/schema/fhir.schema.json`, see the README there): the RequestGroup with the
//! draft orders it contains, the draft orders in CDS Hooks suggestions, and the Bundles that
//! `to_bundle` writes (and `ehr_shaped` dresses) for the reader's tests.
//!
//! The schema checks structure: element names (`additionalProperties: false`), JSON types of
//! primitives and arrays, primitive formats (ids, codes, dates, no empty strings), required
//! complex elements (a draft order's `subject`) and the value sets it lists inline. It does not
//! check required primitive elements (`status`, `intent`), the codes of most bindings
//! (`status: "active"` passes), empty arrays, or that a complex element is an object (its
//! definitions have no `"type": "object"`). `fhir_json_problems` checks the FHIR JSON rules it
//! leaves out; tests/it/cds.rs checks the required elements and codes.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use pathway::fhir::{cds_hooks, ehr_shaped, request_group, to_bundle};
use pathway::rules::PatientGenerator;
use serde_json::{Value, json};

use crate::fhir::{read, reader};
use crate::support::{VIGNETTE_DATE, ruleset, vignettes};

/// HL7's schema document, read once.
fn schema_document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/fhir/schema/fhir.schema.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

/// HL7's schema compiled once. Its root is a `oneOf` over every resource type, which on a
/// failure reports only that no type matched, after collecting the errors of all 146 branches
/// (for a resource that contains others, each branch again for every contained one: a minute
/// per failing vignette). The root compiled here keeps HL7's definitions unchanged and chooses
/// the definition by `resourceType` instead (`if`/`then`, JSON Schema draft-07, which reads
/// every keyword of these draft-06 definitions alike), so a resource is checked against its own
/// type and its errors are reported as they are. Nested resources (`contained`, Bundle entries)
/// still meet HL7's `oneOf`, which `explain` looks through.
fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        let doc = schema_document();
        let types: Vec<&String> = doc["discriminator"]["mapping"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let dispatch: Vec<Value> = types
            .iter()
            .map(|t| {
                json!({
                    "if": {"properties": {"resourceType": {"const": t}}},
                    "then": {"$ref": format!("#/definitions/{t}")}
                })
            })
            .collect();
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "required": ["resourceType"],
            "properties": {"resourceType": {"enum": types}},
            "allOf": dispatch,
            "definitions": doc["definitions"],
        });
        jsonschema::draft7::options()
            .build(&schema)
            .unwrap_or_else(|e| panic!("the FHIR R4 schema does not compile: {e}"))
    })
}

/// Where and why a resource breaks the schema, one line per error with the instance path and
/// the failing keyword; empty when it is valid.
pub fn schema_problems(resource: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for e in validator().iter_errors(resource) {
        explain(&e, &mut problems);
    }
    problems
}

/// One line for a schema error. A resource is checked against a `oneOf` of every resource type
/// (at the root, in `contained`, in a Bundle's entries), whose error says only that none
/// matched: the errors of the branch for the resource's own type say where and why.
fn explain(e: &ValidationError<'_>, out: &mut Vec<String>) {
    if let ValidationErrorKind::OneOfNotValid { context } = e.kind() {
        let resource_type = format!("{}/resourceType", e.instance_path().as_str());
        let own: Vec<&Vec<ValidationError<'static>>> = context
            .iter()
            .filter(|branch| {
                !branch
                    .iter()
                    .any(|x| x.instance_path().as_str() == resource_type)
            })
            .collect();
        if let [branch] = own.as_slice() {
            for x in *branch {
                explain(x, out);
            }
            return;
        }
    }
    let at = e.instance_path().as_str();
    let at = if at.is_empty() { "/" } else { at };
    out.push(format!("{at} [{}]: {e}", e.kind().keyword()));
}

/// FHIR JSON rules (R4 json.html) the JSON Schema does not express: no empty arrays, no empty
/// objects, no nulls, no empty strings.
pub fn fhir_json_problems(v: &Value) -> Vec<String> {
    fn walk(v: &Value, path: &mut String, out: &mut Vec<String>) {
        let len = path.len();
        match v {
            Value::Null => out.push(format!("{path}: null")),
            Value::String(s) if s.is_empty() => out.push(format!("{path}: empty string")),
            Value::Array(a) if a.is_empty() => out.push(format!("{path}: empty array")),
            Value::Object(o) if o.is_empty() => out.push(format!("{path}: empty object")),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    path.push_str(&format!("/{i}"));
                    walk(x, path, out);
                    path.truncate(len);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    path.push_str(&format!("/{k}"));
                    walk(x, path, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut String::new(), &mut out);
    out
}

/// Every problem of a resource: the schema's and the FHIR JSON rules'.
fn problems(resource: &Value) -> Vec<String> {
    let mut p = schema_problems(resource);
    p.extend(fhir_json_problems(resource));
    p
}

/// The draft orders of a CDS Hooks response body: every `create` action's resource.
fn suggested_resources(body: &Value) -> Vec<&Value> {
    body["cards"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["suggestions"].as_array().into_iter().flatten())
        .flat_map(|s| s["actions"].as_array().into_iter().flatten())
        .filter(|a| a["type"] == "create")
        .map(|a| &a["resource"])
        .collect()
}

/// The RequestGroup (with the draft orders it contains) and the CDS Hooks draft orders for a
/// recommendation, checked; returns the problems (labelled with `who`) and counts in `seen` the
/// resources of each type checked.
fn check_outputs(
    who: &str,
    rec: &pathway::Recommendation,
    patient: &str,
    seen: &mut BTreeMap<String, usize>,
) -> Vec<String> {
    let rs = ruleset();
    let mut count = |label: &str, r: &Value| {
        let kind = r["resourceType"].as_str().unwrap_or("?");
        *seen.entry(format!("{label}{kind}")).or_default() += 1;
    };
    let rg = serde_json::to_value(request_group(rec, rs, patient)).unwrap();
    count("", &rg);
    let mut out: Vec<String> = problems(&rg)
        .into_iter()
        .map(|p| format!("{who} RequestGroup: {p}"))
        .collect();
    // The contained drafts are validated with the RequestGroup (`contained` is a oneOf of
    // every resource type, explained down to the draft's own type).
    for c in rg["contained"].as_array().into_iter().flatten() {
        count("contained ", c);
    }
    let body = serde_json::to_value(cds_hooks(rec, rs, patient)).unwrap();
    for r in suggested_resources(&body) {
        count("", r);
        out.extend(
            problems(r)
                .into_iter()
                .map(|p| format!("{who} CDS Hooks suggestion: {p}")),
        );
    }
    out
}

#[test]
fn the_schema_is_hl7s_fhir_r4_schema() {
    let doc = schema_document();
    assert_eq!(doc["id"], "http://hl7.org/fhir/json-schema/4.0");
    assert_eq!(doc["discriminator"]["propertyName"], "resourceType");
    assert_eq!(
        doc["oneOf"].as_array().unwrap().len(),
        146,
        "R4 has 146 resource types"
    );
    for kind in [
        "RequestGroup",
        "MedicationRequest",
        "ServiceRequest",
        "Bundle",
    ] {
        assert!(doc["definitions"][kind].is_object(), "{kind}");
    }
    // The dispatch by resourceType covers exactly the types of HL7's root oneOf.
    let one_of: Vec<&str> = doc["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["$ref"].as_str().unwrap())
        .collect();
    let mut mapping: Vec<&str> = doc["discriminator"]["mapping"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, r)| {
            assert_eq!(r.as_str().unwrap(), format!("#/definitions/{t}"));
            r.as_str().unwrap()
        })
        .collect();
    mapping.sort_unstable();
    let mut sorted = one_of.clone();
    sorted.sort_unstable();
    assert_eq!(mapping, sorted);
}

#[test]
fn request_groups_and_cds_hooks_drafts_of_every_vignette_are_valid_fhir_r4() {
    let rs = ruleset();
    let mut failures = Vec::new();
    let mut seen = BTreeMap::new();
    for v in vignettes() {
        let reading = read(&v["bundle"]);
        let rec = rs.evaluate(&reading.profile).unwrap();
        let id = v["id"].as_str().unwrap();
        failures.extend(check_outputs(id, &rec, &reading.patient, &mut seen));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The vignettes propose drugs and non-drug steps alike.
    for kind in [
        "RequestGroup",
        "MedicationRequest",
        "ServiceRequest",
        "contained MedicationRequest",
        "contained ServiceRequest",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {seen:?}"
        );
    }
}

#[test]
fn a_request_group_for_a_patient_outside_the_pathway_is_valid_fhir_r4() {
    let rs = ruleset();
    let rec = rs
        .evaluate(&pathway::Profile::new(VIGNETTE_DATE, 40))
        .unwrap();
    assert!(!rec.applicable);
    let rg = serde_json::to_value(request_group(&rec, rs, "Patient/p")).unwrap();
    let p = problems(&rg);
    assert!(p.is_empty(), "{}\n{rg:#}", p.join("\n"));
}

#[test]
fn bundles_written_for_generated_patients_and_what_pathway_says_of_them_are_valid_fhir_r4() {
    let rs = ruleset();
    let r = reader();
    let mut failures = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, p) in PatientGenerator::new(rs, 2024).take(300).enumerate() {
        let id = format!("g{i}");
        let bundle = to_bundle(&r, &p, &id);
        for (label, b) in [("to_bundle", &bundle), ("ehr_shaped", &ehr_shaped(&bundle))] {
            failures.extend(
                problems(b)
                    .into_iter()
                    .map(|e| format!("{id} {label}: {e}")),
            );
        }
        for e in bundle["entry"].as_array().unwrap() {
            *seen
                .entry(e["resource"]["resourceType"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        let rec = rs.evaluate(&p).unwrap();
        failures.extend(check_outputs(
            &id,
            &rec,
            &format!("Patient/{id}"),
            &mut seen,
        ));
        if failures.len() > 20 {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The generated records carry every kind of resource the reader reads.
    for kind in [
        "Patient",
        "Condition",
        "Observation",
        "MedicationStatement",
        "AllergyIntolerance",
        "Procedure",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {seen:?}"
        );
    }
}

/// The validation bites: each of these breaks a valid draft order or RequestGroup the way a
/// writer could, and the schema (or the FHIR JSON rules beside it) says where and which keyword.
#[test]
fn the_validation_rejects_broken_resources() {
    let rs = ruleset();
    let v = &vignettes()[0];
    let reading = read(&v["bundle"]);
    let rec = rs.evaluate(&reading.profile).unwrap();
    let rg = serde_json::to_value(request_group(&rec, rs, &reading.patient)).unwrap();
    assert!(problems(&rg).is_empty());
    let draft = rg["contained"][0].clone();
    assert!(problems(&draft).is_empty());

    // HL7's schema compiled as published (its root a oneOf), to show that the dispatch by
    // resourceType judges these resources as it does.
    let hl7 = jsonschema::draft6::options()
        .build(schema_document())
        .unwrap();
    assert!(hl7.is_valid(&rg) && hl7.is_valid(&draft));
    let broken = |f: &dyn Fn(&mut Value), base: &Value| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    let cases: Vec<(Value, &str)> = vec![
        // A required element missing (the patient an order is for).
        (
            broken(
                &|r| {
                    r.as_object_mut().unwrap().remove("subject");
                },
                &draft,
            ),
            "[required]",
        ),
        // An element FHIR does not have (medication[x] misspelt).
        (
            broken(
                &|r| {
                    let o = r.as_object_mut().unwrap();
                    let m = o
                        .remove("medicationCodeableConcept")
                        .or_else(|| o.remove("code"))
                        .unwrap();
                    o.insert("medication".into(), m);
                },
                &draft,
            ),
            "[additionalProperties]",
        ),
        // A status that is not a code (a code has no leading or doubled spaces).
        (
            broken(&|r| r["status"] = json!(" draft"), &rg),
            "/status [pattern]",
        ),
        // The wrong JSON type.
        (
            broken(&|r| r["intent"] = json!(["proposal"]), &rg),
            "/intent [type]",
        ),
        // A date that is not a FHIR dateTime.
        (
            broken(&|r| r["authoredOn"] = json!("22/11/2026"), &rg),
            "/authoredOn [pattern]",
        ),
        // An id FHIR does not allow.
        (
            broken(&|r| r["id"] = json!("step tizanidine"), &draft),
            "/id [pattern]",
        ),
        // A broken resource inside the RequestGroup.
        (
            broken(
                &|r| {
                    r["contained"][0].as_object_mut().unwrap().remove("subject");
                },
                &rg,
            ),
            "/contained/0 [required]",
        ),
        // An empty array (invalid FHIR JSON, beyond the schema).
        (
            broken(&|r| r["action"] = json!([]), &rg),
            "/action: empty array",
        ),
        // An unknown resource type.
        (
            broken(&|r| r["resourceType"] = json!("MedicationProposal"), &draft),
            "/resourceType [enum]",
        ),
    ];
    for (resource, expected) in cases {
        let problems = problems(&resource);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected a problem with {expected:?}, got {problems:?}"
        );
        // The schema as published agrees, but for the empty array, which it allows.
        assert_eq!(
            hl7.is_valid(&resource),
            expected.ends_with("empty array"),
            "{expected}"
        );
    }
    // A Bundle entry that breaks its type's definition is reported at the entry.
    let r = reader();
    let p = PatientGenerator::new(rs, 1).profile();
    let mut bundle = to_bundle(&r, &p, "p");
    bundle["entry"][0]["resource"]["gender"] = json!("M");
    let p = schema_problems(&bundle);
    assert!(
        p.iter()
            .any(|e| e.starts_with("/entry/0/resource/gender [enum]")),
        "{p:?}"
    );
}
