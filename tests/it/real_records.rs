//! Spec 1.1 section 3.6: the same patient recorded the way US EHRs export them gets the same
//! statuses as in the minimal shape, or a more cautious one with the fact listed as missing.

use pathway::core::{FactValue, Profile, Status};
use pathway::fhir::{ReadOptions, Reading, to_bundle};
use pathway::rules::PatientGenerator;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::fhir::reader;
use crate::support::{VIGNETTE_DATE, ruleset};

const SCT: &str = "http://snomed.info/sct";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const LOINC: &str = "http://loinc.org";

fn read(entries: Vec<Value>) -> Reading {
    let mut all = vec![
        json!({"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient",
        "id": "p", "gender": "male", "birthDate": "1976-03-02"}}),
    ];
    all.extend(entries.into_iter().map(|r| json!({"resource": r})));
    let b = json!({"resourceType": "Bundle", "type": "searchset", "entry": all});
    reader()
        .read_bundle(
            b.to_string().as_bytes(),
            &ReadOptions::lenient(VIGNETTE_DATE),
        )
        .unwrap()
}

fn cc(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

fn condition(id: &str, code: Value, extra: Value) -> Value {
    let mut c = json!({"resourceType": "Condition", "id": id,
        "clinicalStatus": {"coding": [{"code": "active"}]}, "code": code,
        "subject": {"reference": "urn:uuid:p"}});
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

/// MS and troublesome spasticity, first and second line both failed (tizanidine is due).
fn second_line_due() -> Vec<Value> {
    let fact = |id: &str, v: Value| {
        let mut o = json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "urn:pathway:fact", "code": id}]},
            "effectiveDateTime": "2026-11-01", "subject": {"reference": "urn:uuid:p"}});
        let key = if v.is_boolean() {
            "valueBoolean"
        } else {
            "valueInteger"
        };
        o[key] = v;
        o
    };
    let past = |id: &str, code: &str| {
        json!({"resourceType": "MedicationStatement", "id": id, "status": "stopped",
            "medicationCodeableConcept": cc(RXNORM, code, id), "subject": {"reference": "urn:uuid:p"}})
    };
    let outcome = |id: &str, focus: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "urn:pathway:fact", "code": "outcome"}]},
            "focus": [{"reference": focus}], "effectiveDateTime": "2026-10-01",
            "valueCodeableConcept": {"coding": [{"system": "urn:pathway:value", "code": "ineffective"}]}})
    };
    vec![
        condition("ms", cc(SCT, "24700007", "Multiple sclerosis"), json!({})),
        condition("sp", cc(SCT, "221360009", "Spasticity"), json!({})),
        fact("functional-impact", json!(true)),
        fact("spasticity-severity", json!(2)),
        fact("relies-on-tone", json!(false)),
        past("bac", "1292"),
        past("gab", "25480"),
        outcome("o1", "MedicationStatement/bac"),
        outcome("o2", "MedicationStatement/gab"),
    ]
}

fn status(r: &Reading, step: &str) -> Status {
    ruleset()
        .evaluate(&r.profile)
        .unwrap()
        .status(step)
        .unwrap()
}

fn with(mut base: Vec<Value>, more: Vec<Value>) -> Vec<Value> {
    base.extend(more);
    base
}

#[test]
fn e1_a_current_medication_request_is_a_current_drug_never_untried() {
    // Synthea and US Core: the current drug as an active MedicationRequest, by product code.
    let r = read(vec![
        json!({"resourceType": "MedicationRequest", "id": "m", "status": "active",
        "intent": "order", "medicationCodeableConcept": cc(RXNORM, "197391", "baclofen 10 MG Oral Tablet"),
        "subject": {"reference": "urn:uuid:p"}, "authoredOn": "2026-01-10"}),
    ]);
    assert!(r.profile.steps["baclofen"].current);
    // Proposals, cancelled orders and orders not to give are not records of the drug.
    for (status, intent, dnp) in [
        ("active", "proposal", false),
        ("cancelled", "order", false),
        ("active", "order", true),
    ] {
        let r = read(vec![
            json!({"resourceType": "MedicationRequest", "id": "m", "status": status,
            "intent": intent, "doNotPerform": dnp, "medicationCodeableConcept": cc(RXNORM, "1292", "baclofen"),
            "subject": {"reference": "urn:uuid:p"}}),
        ]);
        assert!(
            !r.profile.steps.contains_key("baclofen"),
            "{status} {intent} {dnp}"
        );
    }
    // MedicationAdministration in progress is current; not-done is declined.
    let r = read(vec![
        json!({"resourceType": "MedicationAdministration", "id": "a", "status": "not-done",
        "medicationCodeableConcept": cc(RXNORM, "57258", "tizanidine"), "subject": {"reference": "urn:uuid:p"}}),
    ]);
    assert_eq!(
        r.profile.steps["tizanidine"].outcome,
        Some(pathway::core::Outcome::Declined)
    );
}

#[test]
fn e2_strong_inhibitor_by_product_reference_or_contained_ingredient_excludes_tizanidine() {
    let minimal = read(with(
        second_line_due(),
        vec![json!({"resourceType": "MedicationStatement",
        "id": "f", "status": "active", "medicationCodeableConcept": cc(RXNORM, "42355", "fluvoxamine"),
        "subject": {"reference": "urn:uuid:p"}})],
    ));
    assert_eq!(status(&minimal, "tizanidine"), Status::Excluded);
    let shapes = [
        // A product code on a MedicationRequest.
        vec![
            json!({"resourceType": "MedicationRequest", "id": "f", "status": "active", "intent": "order",
            "medicationCodeableConcept": cc(RXNORM, "903887", "fluvoxamine maleate 25 MG Oral Tablet"),
            "subject": {"reference": "urn:uuid:p"}}),
        ],
        // A Medication entry of the Bundle, by reference.
        vec![
            json!({"resourceType": "Medication", "id": "med1", "code": cc(RXNORM, "309309", "ciprofloxacin 500 MG Oral Tablet")}),
            json!({"resourceType": "MedicationRequest", "id": "f", "status": "active", "intent": "order",
                "medicationReference": {"reference": "Medication/med1"}, "subject": {"reference": "urn:uuid:p"}}),
        ],
        // A contained Medication whose ingredient is the inhibitor, coded by a local code only.
        vec![
            json!({"resourceType": "MedicationRequest", "id": "f", "status": "active", "intent": "order",
            "contained": [{"resourceType": "Medication", "id": "c1",
                "code": {"coding": [{"system": "urn:local", "code": "X1"}], "text": "Local product"},
                "ingredient": [{"itemCodeableConcept": cc(RXNORM, "42355", "fluvoxamine")}]}],
            "medicationReference": {"reference": "#c1"}, "subject": {"reference": "urn:uuid:p"}}),
        ],
        // A brand name in free text only.
        vec![
            json!({"resourceType": "MedicationStatement", "id": "f", "status": "active",
            "medicationCodeableConcept": {"text": "Luvox 50mg tablets"}, "subject": {"reference": "urn:uuid:p"}}),
        ],
    ];
    for (i, shape) in shapes.into_iter().enumerate() {
        let r = read(with(second_line_due(), shape));
        assert_eq!(
            status(&r, "tizanidine"),
            Status::Excluded,
            "shape {i}: {:?}",
            r.warnings
        );
        assert!(r.unrecognized.is_empty(), "shape {i}");
    }
    // By name: the provenance says so.
    let r = read(vec![
        json!({"resourceType": "MedicationStatement", "id": "z", "status": "active",
        "medicationCodeableConcept": {"text": "ZANAFLEX 4MG TAB"}, "subject": {"reference": "urn:uuid:p"}}),
    ]);
    assert!(r.profile.steps["tizanidine"].current);
    assert_eq!(
        r.profile.provenance["step:tizanidine"],
        ["MedicationStatement/z (by name: \"zanaflex\")"]
    );
}

#[test]
fn e2_a_combination_product_counts_for_every_ingredient_and_unknown_status_is_unknown() {
    let opioid = |status: &str| {
        vec![
            json!({"resourceType": "MedicationStatement", "id": "o", "status": status,
            "medicationCodeableConcept": cc(RXNORM, "1049221", "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet"),
            "subject": {"reference": "urn:uuid:p"}}),
        ]
    };
    let r = read(opioid("active"));
    assert!(r.profile.medications.contains("opioid"));
    let r = read(opioid("unknown"));
    assert!(r.profile.unknown_medications.contains("opioid"));
    assert!(!r.profile.medications.contains("opioid"));
    // Unknown, never false: the benzodiazepines' boxed-warning caution cannot be ruled out.
    let mut base = second_line_due();
    base.extend(opioid("unknown"));
    let rec = ruleset().evaluate(&read(base).profile).unwrap();
    // Listed where it could change the status now (second line is due; gabapentin, excluded
    // as ineffective, is not one of those).
    let opioid_missing = |step: &str| {
        rec.step(step)
            .unwrap()
            .missing
            .contains(&"medication:opioid".to_owned())
    };
    let tizanidine = rec.step("tizanidine").unwrap();
    assert_eq!(
        tizanidine.status,
        pathway::Status::Caution,
        "{tizanidine:?}"
    );
    assert!(opioid_missing("tizanidine"), "{tizanidine:?}");
    assert!(!opioid_missing("gabapentin"));
}

#[test]
fn e3_condition_shapes_real_exports_use() {
    let hep = |code: Value, extra: Value| {
        read(vec![condition("c", code, extra)])
            .profile
            .facts
            .get("hepatic-impairment")
            .cloned()
    };
    let cirrhosis = cc(SCT, "19943007", "Cirrhosis of liver");
    let alcoholic = cc(SCT, "420054005", "Alcoholic cirrhosis");
    assert_eq!(
        hep(alcoholic.clone(), json!({})),
        Some(FactValue::Bool(true)),
        "a listed descendant"
    );
    assert_eq!(
        hep(
            cirrhosis.clone(),
            json!({"clinicalStatus": {"coding": [{"code": "recurrence"}]}})
        ),
        Some(true.into())
    );
    // An encounter diagnosis without clinicalStatus counts, unless abated.
    assert_eq!(
        hep(cirrhosis.clone(), json!({"clinicalStatus": null})),
        Some(true.into())
    );
    assert_eq!(
        hep(
            cirrhosis.clone(),
            json!({"clinicalStatus": null, "abatementDateTime": "2025-01-01"})
        ),
        None
    );
    assert_eq!(
        hep(
            cirrhosis.clone(),
            json!({"abatementDateTime": "2026-11-01"})
        ),
        None
    );
    assert_eq!(
        hep(
            cirrhosis.clone(),
            json!({"abatementDateTime": "2027-01-01"})
        ),
        Some(true.into())
    );
    // Provisional: possible, so unknown.
    assert_eq!(
        hep(
            cirrhosis.clone(),
            json!({"verificationStatus": {"coding": [{"code": "provisional"}]}})
        ),
        Some(FactValue::Unknown)
    );
    // ICD-10-CM by prefix.
    assert_eq!(
        hep(
            cc(
                "http://hl7.org/fhir/sid/icd-10-cm",
                "K70.30",
                "Alcoholic cirrhosis of liver"
            ),
            json!({})
        ),
        Some(true.into())
    );
    // A code the value sets do not list, named with a keyword: unknown, and the reason names it.
    let r = read(vec![condition(
        "c",
        cc(SCT, "999999", "Cryptogenic cirrhosis"),
        json!({}),
    )]);
    assert_eq!(r.profile.facts["hepatic-impairment"], FactValue::Unknown);
    assert!(
        r.warnings.iter().any(|w| w
            .message
            .contains("'Cryptogenic cirrhosis' (SNOMED 999999) may be hepatic-impairment")),
        "{:?}",
        r.warnings
    );
    // A name never makes an indication true.
    let r = read(vec![condition(
        "c",
        cc(SCT, "999998", "Multiple sclerosis, relapsing"),
        json!({}),
    )]);
    assert!(!r.profile.facts.contains_key("multiple-sclerosis"));
    assert_eq!(r.unrecognized.len(), 1);
}

#[test]
fn e3_an_acute_cystitis_or_a_possible_infection_is_never_offered_massage() {
    let mut base = second_line_due();
    base.push(condition(
        "u",
        cc(SCT, "307426000", "Acute infective cystitis"),
        json!({"clinicalStatus": null}),
    ));
    assert_eq!(status(&read(base), "massage"), Status::Excluded);
    let mut base = second_line_due();
    base.push(condition(
        "u",
        json!({"text": "Urinary tract infection, site not specified"}),
        json!({}),
    ));
    let rec = ruleset().evaluate(&read(base).profile).unwrap();
    let m = rec.step("massage").unwrap();
    assert_eq!(m.status, Status::Caution);
    assert!(m.missing.contains(&"active-infection".to_owned()));
}

fn egfr(code: &str, quantity: Value) -> Value {
    json!({"resourceType": "Observation", "id": format!("e{code}"), "status": "final",
        "code": cc(LOINC, code, "eGFR"), "effectiveDateTime": "2026-11-01",
        "subject": {"reference": "urn:uuid:p"}, "valueQuantity": quantity})
}

#[test]
fn e4_egfr_codes_units_and_ranges() {
    let value = |o: Value| read(vec![o]).profile.facts.get("egfr").cloned();
    assert_eq!(
        value(egfr(
            "62238-1",
            json!({"value": 45, "unit": "mL/min/1.73 m2"})
        )),
        Some(45.0.into())
    );
    assert_eq!(
        value(egfr(
            "33914-3",
            json!({"value": 45, "unit": "ml/min/1.73m^2"})
        )),
        Some(45.0.into())
    );
    let r = read(vec![egfr(
        "33914-3",
        json!({"value": 45, "unit": "mL/min"}),
    )]);
    assert_eq!(r.profile.facts["egfr"], 45.0.into());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("creatinine clearance"))
    );
    assert_eq!(
        value(egfr("33914-3", json!({"value": 45, "unit": "mg/dL"}))),
        None
    );
    // A bound past the fact's range: "<270" is any eGFR; ">300" cannot be right (unknown).
    let any = value(egfr(
        "33914-3",
        json!({"value": 270, "comparator": "<", "unit": "mL/min/{1.73_m2}"}),
    ))
    .unwrap();
    assert!(matches!(any, FactValue::Interval(_)));
    let mut p = Profile::new(VIGNETTE_DATE, 40);
    p.facts.insert("egfr".into(), any);
    assert!(ruleset().evaluate(&p).is_ok());
    assert_eq!(
        value(egfr(
            "33914-3",
            json!({"value": 300, "comparator": ">", "unit": "mL/min/{1.73_m2}"})
        )),
        Some(FactValue::Unknown)
    );
    // "<60" as a string: baclofen caution (< 60 is true), tizanidine caution with eGFR
    // missing (< 25 is unknown); ">90": no renal caution.
    let mut lt60 = second_line_due();
    let mut o = egfr("98979-8", json!(null));
    o.as_object_mut().unwrap().remove("valueQuantity");
    o["valueString"] = json!("<60");
    lt60.push(o);
    let rec = ruleset().evaluate(&read(lt60).profile).unwrap();
    let tiz = rec.step("tizanidine").unwrap();
    assert_eq!(tiz.status, Status::Caution, "{tiz:?}");
    assert!(tiz.missing.contains(&"egfr".to_owned()));
    assert!(
        tiz.rules
            .iter()
            .any(|r| &**r == "R20.tizanidine.renal-range")
    );
    let mut gt90 = second_line_due();
    gt90.push(egfr(
        "98979-8",
        json!({"value": 90, "comparator": ">", "unit": "mL/min/{1.73_m2}"}),
    ));
    let rec = ruleset().evaluate(&read(gt90).profile).unwrap();
    assert_eq!(rec.status("tizanidine"), Some(Status::Offer));
    // The latest value unreadable: unknown, never an older value.
    let mut older = egfr("98979-8", json!({"value": 90, "unit": "mL/min/{1.73_m2}"}));
    older["effectiveDateTime"] = json!("2026-01-01");
    older["id"] = json!("old");
    let newer = json!({"resourceType": "Observation", "id": "new", "status": "final",
        "code": cc(LOINC, "98979-8", "eGFR"), "effectiveDateTime": "2026-11-01",
        "dataAbsentReason": {"coding": [{"code": "error"}]}});
    assert_eq!(
        read(vec![older, newer]).profile.facts["egfr"],
        FactValue::Unknown
    );
}

#[test]
fn e4_fever_from_a_recent_temperature_and_stale_pregnancy_status() {
    let temp = |v: f64, unit: &str, when: &str| {
        json!({"resourceType": "Observation", "id": "t", "status": "final",
            "code": cc(LOINC, "8310-5", "Body temperature"), "effectiveDateTime": when,
            "valueQuantity": {"value": v, "unit": unit, "code": unit}})
    };
    let fever = |o| read(vec![o]).profile.facts.get("fever").cloned();
    assert_eq!(
        fever(temp(38.4, "Cel", "2026-11-21T20:00:00Z")),
        Some(true.into())
    );
    assert_eq!(
        fever(temp(101.0, "[degF]", "2026-11-22T08:00:00Z")),
        Some(true.into())
    );
    assert_eq!(fever(temp(37.2, "Cel", "2026-11-22T08:00:00Z")), None);
    assert_eq!(fever(temp(39.0, "Cel", "2026-11-10T08:00:00Z")), None);
    let preg = |when: &str| {
        let b = json!({"resourceType": "Bundle", "entry": [
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1990"}},
            {"resource": {"resourceType": "Observation", "id": "o", "status": "final",
              "code": cc(LOINC, "82810-3", "Pregnancy status"), "effectiveDateTime": when,
              "valueCodeableConcept": cc(LOINC, "LA26683-5", "Not pregnant")}}]});
        reader()
            .read_bundle(
                b.to_string().as_bytes(),
                &ReadOptions::lenient(VIGNETTE_DATE),
            )
            .unwrap()
            .profile
    };
    assert_eq!(preg("2026-10-01").facts["pregnant"], false.into());
    assert!(
        !preg("2025-12-01").facts.contains_key("pregnant"),
        "older than 280 days"
    );
}

#[test]
fn e5_allergies_by_product_substance_or_name_and_c21() {
    let allergy = |code: Value| {
        json!({"resourceType": "AllergyIntolerance", "id": "a", "code": code,
            "verificationStatus": {"coding": [{"code": "unconfirmed"}]}, "patient": {"reference": "urn:uuid:p"}})
    };
    let hyp = |code: Value| read(vec![allergy(code)]).profile.hypersensitivities;
    assert!(
        hyp(json!({"text": "Baclofen"}))
            .iter()
            .any(|s| s.as_str() == "baclofen")
    );
    assert!(
        hyp(cc(RXNORM, "197391", "baclofen 10 MG Oral Tablet"))
            .iter()
            .any(|s| s.as_str() == "baclofen")
    );
    assert!(
        hyp(cc(SCT, "6102009", "Baclofen"))
            .iter()
            .any(|s| s.as_str() == "baclofen")
    );
    let none = read(vec![allergy(cc(SCT, "716186003", "No known allergy"))]);
    assert!(none.profile.hypersensitivities.is_empty() && none.unrecognized.is_empty());
    // C21: an allergy to diazepam excludes diazepam and makes clonazepam a caution.
    let mut p = Profile::new(VIGNETTE_DATE, 50).with_hypersensitivity("diazepam");
    p.facts.insert("multiple-sclerosis".into(), true.into());
    p.facts.insert("spasticity".into(), true.into());
    let rec = ruleset().evaluate(&p).unwrap();
    let clz = rec.step("clonazepam").unwrap();
    assert!(
        clz.rules
            .iter()
            .any(|r| &**r == "R20.clonazepam.cross-sensitivity"),
        "{clz:?}"
    );
}

#[test]
fn e6_e7_e8_deceased_unrecognised_and_later_records() {
    let mut base = second_line_due();
    base.push(json!({"resourceType": "MedicationRequest", "id": "s", "status": "active", "intent": "order",
        "medicationCodeableConcept": cc(RXNORM, "312940", "sertraline 50 MG Oral Tablet"), "subject": {"reference": "urn:uuid:p"}}));
    base.push(json!({"resourceType": "MedicationStatement", "id": "late", "status": "active",
        "effectiveDateTime": "2026-12-01", "medicationCodeableConcept": cc(RXNORM, "42355", "fluvoxamine"),
        "subject": {"reference": "urn:uuid:p"}}));
    base.push(json!({"resourceType": "Encounter", "id": "e"}));
    let r = read(base.clone());
    assert!(
        !r.profile.medications.contains("cyp1a2-strong-inhibitor"),
        "dated after the evaluation date"
    );
    assert_eq!(r.unrecognized.len(), 1);
    assert_eq!(r.unrecognized[0].kind, "medication");
    let mut rec = ruleset().evaluate(&r.profile).unwrap();
    r.annotate(&mut rec);
    let text = pathway::report::TextReport::new(ruleset()).render(&rec);
    assert!(text.contains("not recognised (1;"), "{text}");
    let cards = pathway::fhir::cds_hooks(&rec, ruleset(), "Patient/p");
    assert!(
        cards.cards[0]
            .detail
            .contains("sertraline 50 MG Oral Tablet")
    );
    let rg = pathway::fhir::request_group(&rec, ruleset(), "Patient/p");
    assert!(rg.note.iter().any(|n| n.text.contains("not recognised")));
    // Deceased: not applicable, and the reason's facts say why.
    let b = json!({"resourceType": "Bundle", "entry": std::iter::once(json!({"fullUrl": "urn:uuid:p",
        "resource": {"resourceType": "Patient", "id": "p", "birthDate": "1976", "deceasedDateTime": "2026-10-01"}}))
        .chain(base.into_iter().map(|r| json!({"resource": r}))).collect::<Vec<_>>()});
    let r = reader()
        .read_bundle(
            b.to_string().as_bytes(),
            &ReadOptions::lenient(VIGNETTE_DATE),
        )
        .unwrap();
    let rec = ruleset().evaluate(&r.profile).unwrap();
    assert!(!rec.applicable);
    assert!(rec.not_applicable_because().unwrap().contains("died"));
}

/// Re-expresses a minimal Bundle in real shapes: drugs as MedicationRequests (or through a
/// contained Medication), conditions as encounter diagnoses without clinicalStatus, eGFR under
/// another code and unit spelling.
fn real_shape(mut b: Value, pick: &[u8]) -> Value {
    let mut renamed: Vec<String> = Vec::new();
    let mut k = 0usize;
    let mut next = || {
        k += 1;
        pick.get(k % pick.len().max(1)).copied().unwrap_or(0)
    };
    for e in b["entry"].as_array_mut().unwrap() {
        let r = &mut e["resource"];
        match r["resourceType"].as_str().unwrap_or("") {
            "MedicationStatement" if r["status"] == "active" || r["status"] == "stopped" => {
                let choice = next() % 3;
                if choice >= 1 {
                    renamed.push(format!(
                        "MedicationStatement/{}",
                        r["id"].as_str().unwrap_or("")
                    ));
                    r["resourceType"] = json!("MedicationRequest");
                    r["intent"] = json!("order");
                    if let Some(d) = r.as_object_mut().unwrap().remove("dosage") {
                        r["dosageInstruction"] = d;
                    }
                }
                if choice == 2 {
                    let code = r
                        .as_object_mut()
                        .unwrap()
                        .remove("medicationCodeableConcept")
                        .unwrap();
                    r["contained"] =
                        json!([{"resourceType": "Medication", "id": "m", "code": code}]);
                    r["medicationReference"] = json!({"reference": "#m"});
                }
            }
            "Condition" if next() % 2 == 0 => {
                r.as_object_mut().unwrap().remove("clinicalStatus");
            }
            "Observation" if r["code"]["coding"][0]["code"] == "98979-8" => {
                r["code"]["coding"][0]["code"] = json!("62238-1");
                r["valueQuantity"]["code"] = json!("mL/min/1.73 m2");
            }
            _ => {}
        }
    }
    // Outcomes focus the MedicationRequest the statement became.
    for e in b["entry"].as_array_mut().unwrap() {
        if let Some(focus) = e["resource"].get_mut("focus").and_then(Value::as_array_mut) {
            for f in focus {
                let target = f["reference"].as_str().unwrap_or("").to_owned();
                if renamed.contains(&target) {
                    f["reference"] =
                        json!(target.replace("MedicationStatement/", "MedicationRequest/"));
                }
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn real_shapes_are_never_more_permissive_and_current_drugs_never_untried(
        seed in any::<u64>(), pick in proptest::collection::vec(any::<u8>(), 1..16)
    ) {
        let rs = ruleset();
        let reader = reader();
        for p in PatientGenerator::new(rs, seed).take(8) {
            let minimal = to_bundle(&reader, &p, "p");
            let real = real_shape(minimal.clone(), &pick);
            let opts = ReadOptions::strict(p.date);
            let a = reader.read_bundle(minimal.to_string().as_bytes(), &opts).unwrap();
            let b = reader.read_bundle(real.to_string().as_bytes(), &opts).unwrap();
            for (step, rec) in &a.profile.steps {
                if rec.current {
                    prop_assert!(b.profile.steps.get(step).is_some_and(|r| r.current), "{step} read as untried");
                }
            }
            let ra = rs.evaluate(&a.profile).unwrap();
            let rb = rs.evaluate(&b.profile).unwrap();
            for (sa, sb) in ra.steps.iter().zip(&rb.steps) {
                let more = sb.status.permissiveness() > sa.status.permissiveness();
                prop_assert!(!more || !sb.missing.is_empty(), "{}: {} -> {}", sa.step, sa.status, sb.status);
            }
            // These shapes lose nothing: the same profile, so the same statuses.
            let (mut pa, mut pb) = (a.profile.clone(), b.profile.clone());
            pa.provenance.clear();
            pb.provenance.clear();
            prop_assert_eq!(pa, pb);
        }
    }
}

#[test]
fn a_bulk_export_written_the_us_core_way_reads_as_the_minimal_record() {
    use std::collections::BTreeMap;
    use std::io::Write;
    let rs = ruleset();
    let r = reader();
    let dir = tempfile::tempdir().unwrap();
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut medications: BTreeMap<String, Value> = BTreeMap::new();
    let mut expected = BTreeMap::new();
    for (i, p) in PatientGenerator::new(rs, 7).take(300).enumerate() {
        let id = format!("p{i:04}");
        let entries = to_bundle(&r, &p, &id)["entry"].as_array().unwrap().clone();
        let converted: Vec<String> = entries
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == "MedicationStatement" && r["status"] != "not-taken")
            .map(|r| format!("MedicationStatement/{}", r["id"].as_str().unwrap()))
            .collect();
        for e in &entries {
            let mut res = e["resource"].clone();
            // Outcomes focus the MedicationRequest the statement became.
            if let Some(focus) = res.get_mut("focus").and_then(Value::as_array_mut) {
                for f in focus {
                    let target = f["reference"].as_str().unwrap_or("").to_owned();
                    if converted.contains(&target) {
                        f["reference"] =
                            json!(target.replace("MedicationStatement/", "MedicationRequest/"));
                    }
                }
            }
            match res["resourceType"].as_str().unwrap() {
                // US Core: current and past drugs as MedicationRequests naming a shared
                // Medication resource.
                "MedicationStatement" if res["status"] != "not-taken" => {
                    let code = res
                        .as_object_mut()
                        .unwrap()
                        .remove("medicationCodeableConcept")
                        .unwrap();
                    let key = code["coding"][0]["code"]
                        .as_str()
                        .unwrap()
                        .replace(['.', ':'], "-");
                    medications.entry(key.clone()).or_insert_with(|| {
                        json!({"resourceType": "Medication", "id": format!("med-{key}"), "code": code})
                    });
                    res["resourceType"] = json!("MedicationRequest");
                    res["intent"] = json!("order");
                    res["medicationReference"] =
                        json!({"reference": format!("Medication/med-{key}")});
                    if let Some(d) = res.as_object_mut().unwrap().remove("dosage") {
                        res["dosageInstruction"] = d;
                    }
                }
                // Encounter diagnoses carry no clinicalStatus.
                "Condition" => {
                    res.as_object_mut().unwrap().remove("clinicalStatus");
                }
                _ => {}
            }
            let kind = res["resourceType"].as_str().unwrap().to_owned();
            files.entry(kind).or_default().push(res.to_string());
        }
        expected.insert(
            format!("Patient/{id}"),
            pathway::fhir::representable(&r, &p),
        );
    }
    files.insert(
        "Medication".into(),
        medications.values().map(ToString::to_string).collect(),
    );
    files.insert(
        "Organization".into(),
        vec![json!({"resourceType": "Organization", "id": "o"}).to_string()],
    );
    for (kind, lines) in files {
        let mut f = std::fs::File::create(dir.path().join(format!("{kind}.ndjson"))).unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }
    let bulk = pathway::fhir::BulkExport::open(
        &r,
        dir.path(),
        ReadOptions::strict(VIGNETTE_DATE),
        1 << 20,
    )
    .unwrap();
    assert!(bulk.skipped().is_empty(), "{:?}", bulk.skipped());
    let mut seen = 0;
    for reading in bulk {
        let reading = reading.unwrap();
        let mut got = reading.profile.clone();
        got.provenance.clear();
        assert_eq!(
            &got, &expected[&reading.patient],
            "{}: {:?}",
            reading.patient, reading.warnings
        );
        assert!(
            reading.unrecognized.is_empty() && reading.warnings.is_empty(),
            "{:?}",
            reading.warnings
        );
        seen += 1;
    }
    assert_eq!(seen, 300);
}

/// Shapes that lose certainty: a provisional diagnosis, an eGFR reported only as a bound.
fn uncertain_shape(mut b: Value, pick: &[u8]) -> Value {
    for (k, e) in b["entry"].as_array_mut().unwrap().iter_mut().enumerate() {
        let choice = pick.get(k % pick.len().max(1)).copied().unwrap_or(0) % 3;
        let r = &mut e["resource"];
        if r["resourceType"] == "Condition" && choice == 0 {
            r["verificationStatus"] = json!({"coding": [{"code": "provisional"}]});
        }
        if r["resourceType"] == "Observation"
            && r["code"]["coding"][0]["code"] == "98979-8"
            && choice != 2
        {
            let v = r["valueQuantity"]["value"].as_f64().unwrap_or(0.0);
            let o = r.as_object_mut().unwrap();
            o.remove("valueQuantity");
            // A coarse bound, as a lab reports it: the interval straddles the thresholds.
            o.insert(
                "valueString".into(),
                json!(format!("<{}", ((v / 30.0).floor() + 1.0) * 30.0)),
            );
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn uncertain_shapes_are_never_more_permissive_unless_a_fact_is_missing(
        seed in any::<u64>(), pick in proptest::collection::vec(any::<u8>(), 1..16)
    ) {
        let rs = ruleset();
        let reader = reader();
        for p in PatientGenerator::new(rs, seed).take(8) {
            let minimal = to_bundle(&reader, &p, "p");
            let real = uncertain_shape(minimal.clone(), &pick);
            let opts = ReadOptions::strict(p.date);
            let a = reader.read_bundle(minimal.to_string().as_bytes(), &opts).unwrap();
            let b = reader.read_bundle(real.to_string().as_bytes(), &opts).unwrap();
            let ra = rs.evaluate(&a.profile).unwrap();
            let rb = rs.evaluate(&b.profile).unwrap();
            for (sa, sb) in ra.steps.iter().zip(&rb.steps) {
                // Excluded and not-yet both say "not now": moving between them changes nothing
                // anyone could act on, so no fact need be listed for it.
                let more = sb.status.now().permissiveness() > sa.status.now().permissiveness();
                prop_assert!(!more || !sb.missing.is_empty(), "{}: {} -> {} ({:?})", sa.step, sa.status, sb.status, sb.missing);
            }
        }
    }
}

#[test]
fn c20_a_current_trigger_review_continues() {
    let p = Profile::new(VIGNETTE_DATE, 50)
        .with_fact("multiple-sclerosis", true)
        .with_fact("spasticity", true)
        .with_step("trigger-review", pathway::core::StepRecord::current(None));
    let rec = ruleset().evaluate(&p).unwrap();
    assert_eq!(rec.status("trigger-review"), Some(Status::Continue));
}
