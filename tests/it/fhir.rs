//! The FHIR reader on the spec's vignette bundles and on messy records.

use pathway::core::{Date, FactValue, Profile};
use pathway::fhir::{FhirError, ReadOptions, Reader, ValueSets};
use serde_json::{Value, json};

use crate::support::{VIGNETTE_DATE, profile_from_summary, ruleset, vignettes};
use crate::vignettes::check_expect;

pub fn reader() -> Reader<'static> {
    let rs = ruleset();
    Reader::new(rs, ValueSets::ms_spasticity(rs).unwrap())
}

/// Reads a Bundle strictly at the vignettes' date.
pub fn read(bundle: &Value) -> pathway::fhir::Reading {
    reader()
        .read_bundle(
            bundle.to_string().as_bytes(),
            &ReadOptions::strict(VIGNETTE_DATE),
        )
        .unwrap()
}

fn without_provenance(mut p: Profile) -> Profile {
    p.provenance.clear();
    p
}

#[test]
fn every_vignette_bundle_gives_the_summary_profile() {
    let mut failures = Vec::new();
    for v in vignettes() {
        let id = v["id"].as_str().unwrap();
        let reading = read(&v["bundle"]);
        assert!(reading.warnings.is_empty(), "{id}: {:?}", reading.warnings);
        let from_bundle = without_provenance(reading.profile);
        let from_summary = profile_from_summary(&v["patient"]);
        if from_bundle != from_summary {
            failures.push(format!(
                "{id}:\n bundle  {}\n summary {}",
                serde_json::to_string(&from_bundle).unwrap(),
                serde_json::to_string(&from_summary).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_vignette_meets_its_expectation_end_to_end_from_fhir() {
    let rs = ruleset();
    let mut failures = Vec::new();
    for v in vignettes() {
        let id = v["id"].as_str().unwrap();
        let rec = rs.evaluate(&read(&v["bundle"]).profile).unwrap();
        failures.extend(check_expect(id, &rec, &v["expect"]));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fact_remembers_its_records() {
    for v in vignettes() {
        let p = read(&v["bundle"]).profile;
        for fact in p.facts.keys() {
            let from = p
                .provenance
                .get(fact)
                .unwrap_or_else(|| panic!("{}: {fact} has no provenance", v["id"]));
            assert!(from.iter().all(|r| r.contains('/')), "{from:?}");
        }
        for step in p.steps.keys() {
            assert!(p.provenance.contains_key(&format!("step:{step}")));
        }
    }
}

#[test]
fn explanations_show_the_records_behind_a_status() {
    let v = vignettes().iter().find(|v| v["id"] == "V22").unwrap();
    let rec = ruleset().evaluate(&read(&v["bundle"]).profile).unwrap();
    let tiz = rec.step("tizanidine").unwrap();
    let used = &tiz.reasons[0].facts[0];
    assert_eq!(used.fact, "medication:cyp1a2-strong-inhibitor");
    assert!(used.from[0].starts_with("MedicationStatement/"), "{used:?}");
}

// --- messy records ---------------------------------------------------------------------------

fn patient() -> Value {
    json!({"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1990"}})
}

fn bundle(entries: Vec<Value>) -> Vec<u8> {
    json!({"resourceType": "Bundle", "type": "searchset", "entry": entries})
        .to_string()
        .into_bytes()
}

fn obs(id: &str, system: &str, code: &str, when: &str, value: Value) -> Value {
    let mut r = json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "urn:uuid:p"}, "effectiveDateTime": when});
    for (k, v) in value.as_object().unwrap() {
        r[k] = v.clone();
    }
    json!({"fullUrl": format!("urn:uuid:{id}"), "resource": r})
}

fn lenient() -> ReadOptions {
    ReadOptions::lenient(VIGNETTE_DATE)
}

#[test]
fn latest_observation_wins_and_same_time_conflicts_are_unknown() {
    let loinc = "http://loinc.org";
    let preg = |id, when, code| {
        obs(
            id,
            loinc,
            "82810-3",
            when,
            json!({"valueCodeableConcept": {"coding": [{"system": loinc, "code": code}]}}),
        )
    };
    let r = reader()
        .read_bundle(
            &bundle(vec![
                patient(),
                preg("a", "2026-01-01", "LA15173-0"),
                preg("b", "2026-06-01", "LA26683-5"),
            ]),
            &lenient(),
        )
        .unwrap();
    assert_eq!(r.profile.facts["pregnant"], FactValue::Bool(false));
    assert_eq!(r.profile.provenance["pregnant"], ["Observation/b"]);
    let r = reader()
        .read_bundle(
            &bundle(vec![
                patient(),
                preg("a", "2026-06-01", "LA15173-0"),
                preg("b", "2026-06-01", "LA26683-5"),
            ]),
            &lenient(),
        )
        .unwrap();
    assert_eq!(r.profile.facts["pregnant"], FactValue::Unknown);
    assert!(
        r.warnings.iter().any(|w| w.message.contains("disagree")),
        "{:?}",
        r.warnings
    );
    // A recorded "unknown" answer is unknown.
    let r = reader()
        .read_bundle(
            &bundle(vec![patient(), preg("a", "2026-06-01", "LA4489-6")]),
            &lenient(),
        )
        .unwrap();
    assert_eq!(r.profile.facts["pregnant"], FactValue::Unknown);
}

#[test]
fn unknown_codes_are_ignored_and_counted() {
    let cond = json!({"resource": {"resourceType": "Condition", "id": "c",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes mellitus type 2"}]}}});
    let enc = json!({"resource": {"resourceType": "Encounter", "id": "e"}});
    let r = reader()
        .read_bundle(&bundle(vec![patient(), cond, enc]), &lenient())
        .unwrap();
    assert_eq!(r.ignored, 2);
    assert!(r.profile.facts.is_empty());
    // E7: the active condition that matched nothing is listed; the Encounter is only counted.
    assert_eq!(r.unrecognized.len(), 1);
    assert_eq!(r.unrecognized[0].resource, "Condition/c");
    assert_eq!(r.unrecognized[0].text, "Diabetes mellitus type 2");
    assert_eq!(r.unrecognized[0].codes, ["http://snomed.info/sct|44054006"]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn modifier_extensions_are_not_silently_read() {
    let cond = json!({"resource": {"resourceType": "Condition", "id": "c",
        "modifierExtension": [{"url": "http://example.org/negated", "valueBoolean": true}],
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "84757009"}]}}});
    let b = bundle(vec![patient(), cond]);
    let r = reader().read_bundle(&b, &lenient()).unwrap();
    assert!(!r.profile.facts.contains_key("epilepsy"));
    assert!(r.warnings[0].message.contains("modifierExtension"));
    let err = reader()
        .read_bundle(&b, &ReadOptions::strict(VIGNETTE_DATE))
        .unwrap_err();
    assert_eq!(
        err,
        FhirError::ModifierExtension {
            entry: 1,
            resource: "Condition/c".into()
        }
    );
}

#[test]
fn malformed_resources_name_the_entry_resource_and_field() {
    let bad = obs(
        "e",
        "http://loinc.org",
        "98979-8",
        "2026-11-20",
        json!({"valueQuantity": {"value": "ninety"}}),
    );
    let b = bundle(vec![patient(), bad]);
    let err = reader()
        .read_bundle(&b, &ReadOptions::strict(VIGNETTE_DATE))
        .unwrap_err();
    match &err {
        FhirError::Malformed {
            entry,
            resource,
            field,
            ..
        } => {
            assert_eq!(
                (*entry, resource.as_str(), field.as_str()),
                (1, "Observation/e", "valueQuantity.value")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("entry 1 (Observation/e): field `valueQuantity.value`"),
        "{err}"
    );
    let r = reader().read_bundle(&b, &lenient()).unwrap();
    assert!(!r.profile.facts.contains_key("egfr"));
    assert_eq!(r.warnings.len(), 1);
}

#[test]
fn patient_problems_are_clear_errors() {
    let none = bundle(vec![]);
    assert_eq!(
        reader().read_bundle(&none, &lenient()).unwrap_err(),
        FhirError::NoPatient
    );
    let no_birth = bundle(vec![
        json!({"resource": {"resourceType": "Patient", "id": "x"}}),
    ]);
    assert_eq!(
        reader()
            .read_bundle(&no_birth, &lenient())
            .unwrap_err()
            .to_string(),
        "Patient/x has no birthDate, so the age cannot be computed"
    );
    let two = bundle(vec![patient(), patient()]);
    assert_eq!(
        reader().read_bundle(&two, &lenient()).unwrap_err(),
        FhirError::ManyPatients { count: 2 }
    );
    let future = bundle(vec![
        json!({"resource": {"resourceType": "Patient", "id": "x", "birthDate": "2030-01-01"}}),
    ]);
    assert!(
        reader()
            .read_bundle(&future, &lenient())
            .unwrap_err()
            .to_string()
            .contains("after the evaluation date")
    );
    assert!(matches!(
        reader().read_bundle(b"{", &lenient()),
        Err(FhirError::Json { .. })
    ));
    assert!(matches!(
        reader().read_bundle(br#"{"resourceType":"Patient"}"#, &lenient()),
        Err(FhirError::NotABundle { .. })
    ));
}

#[test]
fn injuries_without_onset_make_recent_injury_unknown() {
    let injury = |onset: Option<&str>| {
        let mut r = json!({"resourceType": "Condition", "id": "i", "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "417746004"}]}});
        if let Some(o) = onset {
            r["onsetDateTime"] = json!(o);
        }
        json!({"resource": r})
    };
    let fact = |onset| {
        reader()
            .read_bundle(&bundle(vec![patient(), injury(onset)]), &lenient())
            .unwrap()
            .profile
            .facts
            .get("recent-injury")
            .cloned()
    };
    assert_eq!(
        fact(Some("2026-10-11")),
        Some(FactValue::Bool(true)),
        "42 days, inclusive"
    );
    assert_eq!(fact(Some("2026-10-10")), None, "43 days: not recent");
    assert_eq!(fact(None), Some(FactValue::Unknown));
}

#[test]
fn intrathecal_route_and_allergies_and_other_patients() {
    let rx = "http://www.nlm.nih.gov/research/umls/rxnorm";
    let itb = json!({"fullUrl": "urn:uuid:m", "resource": {"resourceType": "MedicationStatement", "id": "m", "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": rx, "code": "1292"}]},
        "dosage": [{"route": {"coding": [{"system": "http://snomed.info/sct", "code": "72607000"}]}}]}});
    let allergy = json!({"resource": {"resourceType": "AllergyIntolerance", "id": "a",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "6102009"}]}, "patient": {"reference": "urn:uuid:p"}}});
    let foreign = json!({"resource": {"resourceType": "Condition", "id": "f", "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "84757009"}]}, "subject": {"reference": "Patient/other"}}});
    let r = reader()
        .read_bundle(&bundle(vec![patient(), itb, allergy, foreign]), &lenient())
        .unwrap();
    let p = r.profile;
    assert!(p.steps["intrathecal-baclofen"].current);
    assert!(!p.steps.contains_key("baclofen"));
    assert!(
        p.hypersensitivities
            .iter()
            .any(|s| s.as_str() == "baclofen")
    );
    assert!(!p.facts.contains_key("epilepsy"));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message == "1 Condition record of another patient; skipped")
    );
}

#[test]
fn a_restarted_drug_does_not_inherit_an_old_outcome() {
    // C7: the old record's outcome does not carry over to the current record.
    let rx = "http://www.nlm.nih.gov/research/umls/rxnorm";
    let ms = |id: &str, status: &str| {
        json!({"fullUrl": format!("urn:uuid:{id}"), "resource": {"resourceType": "MedicationStatement", "id": id,
        "status": status, "medicationCodeableConcept": {"coding": [{"system": rx, "code": "1292"}]}}})
    };
    let outcome = |id: &str, focus: &str, value: &str| {
        let mut o = obs(
            id,
            "urn:pathway:fact",
            "outcome",
            "2026-01-01",
            json!({"valueCodeableConcept": {"coding": [{"system": "urn:pathway:value", "code": value}]}}),
        );
        o["resource"]["focus"] = json!([{"reference": format!("urn:uuid:{focus}")}]);
        o
    };
    let r = reader()
        .read_bundle(
            &bundle(vec![
                patient(),
                ms("old", "stopped"),
                outcome("o1", "old", "effective"),
                ms("new", "active"),
            ]),
            &lenient(),
        )
        .unwrap();
    let rec = r.profile.steps["baclofen"];
    assert!(rec.current);
    assert_eq!(
        rec.outcome, None,
        "C7: no outcome focuses on the current record"
    );
    // Not taken with no outcome is declined (C6).
    let r = reader()
        .read_bundle(&bundle(vec![patient(), ms("d", "not-taken")]), &lenient())
        .unwrap();
    assert_eq!(
        r.profile.steps["baclofen"].outcome,
        Some(pathway::core::Outcome::Declined)
    );
    let _ = Date::constant(2026, 1, 1);
}

// --- R4 example resources and fuzzing --------------------------------------------------------

fn example(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fhir/r4-examples")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn r4_example_resources_of_each_type_read_strictly() {
    let entries: Vec<Value> = ["patient", "condition", "observation", "medicationstatement", "procedure", "allergyintolerance"]
        .iter()
        .map(|n| json!({"fullUrl": format!("http://example.org/fhir/{n}"), "resource": example(&format!("{n}.json"))}))
        .collect();
    let r = reader()
        .read_bundle(&bundle(entries), &ReadOptions::strict(VIGNETTE_DATE))
        .unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let p = &r.profile;
    assert_eq!(p.age, 52);
    assert_eq!(p.facts["multiple-sclerosis"], FactValue::Bool(true));
    assert_eq!(p.facts["egfr"], FactValue::Number(58.0));
    assert!(p.steps["baclofen"].current);
    assert!(p.steps["stretching-program"].current);
    assert!(
        p.hypersensitivities
            .iter()
            .any(|s| s.as_str() == "tizanidine")
    );
    assert_eq!(r.patient, "Patient/example");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// A JSON value of bounded size.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-zA-Z0-9:/#.-]{0,12}".prop_map(Value::String),
            prop::sample::select(vec![
                "active",
                "final",
                "Patient",
                "Observation",
                "Condition",
                "urn:pathway:fact",
                "outcome",
                "2026-11-01",
                "1292"
            ])
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "resourceType",
                        "id",
                        "code",
                        "coding",
                        "system",
                        "status",
                        "subject",
                        "reference",
                        "valueQuantity",
                        "value",
                        "focus",
                        "birthDate",
                        "clinicalStatus",
                        "modifierExtension",
                        "effectiveDateTime",
                        "valueCodeableConcept",
                        "dosage",
                        "route"
                    ])
                    .prop_map(str::to_owned),
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random resources in a bundle: a reading or an error, never a panic.
        #[test]
        fn random_bundles_never_panic(resources in prop::collection::vec(any_json(), 0..6), strict: bool) {
            let mut entries = vec![patient()];
            entries.extend(resources.into_iter().map(|r| json!({"resource": r})));
            let opts = if strict { ReadOptions::strict(VIGNETTE_DATE) } else { lenient() };
            let _ = reader().read_bundle(&bundle(entries), &opts);
        }

        /// Vignette bundles with one value replaced anywhere: never a panic, and in lenient
        /// mode a profile the engine accepts whenever the Patient survives.
        #[test]
        fn mutated_vignettes_never_panic(pick: usize, path_seed: u64, replacement in any_json()) {
            let v = &vignettes()[pick % vignettes().len()];
            let mut b = v["bundle"].clone();
            let mut rng = fastrand::Rng::with_seed(path_seed);
            // Walk to a random node, building a JSON pointer, then replace it.
            let mut pointer = String::new();
            let mut node = &b;
            for _ in 0..rng.usize(1..6) {
                let step = match node {
                    Value::Object(m) if !m.is_empty() => m.keys().nth(rng.usize(..m.len())).cloned(),
                    Value::Array(a) if !a.is_empty() => Some(rng.usize(..a.len()).to_string()),
                    _ => None,
                };
                let Some(step) = step else { break };
                node = match node {
                    Value::Object(m) => &m[&step],
                    Value::Array(a) => &a[step.parse::<usize>().unwrap()],
                    _ => unreachable!(),
                };
                pointer.push('/');
                pointer.push_str(&step.replace('~', "~0").replace('/', "~1"));
            }
            if let Some(target) = b.pointer_mut(&pointer) {
                *target = replacement;
            }
            let bytes = b.to_string().into_bytes();
            let _ = reader().read_bundle(&bytes, &ReadOptions::strict(VIGNETTE_DATE));
            if let Ok(r) = reader().read_bundle(&bytes, &lenient()) {
                prop_assert!(ruleset().evaluate(&r.profile).is_ok(), "the reader produced a profile the engine rejects");
            }
        }

        /// Arbitrary bytes: an error, never a panic.
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = reader().read_bundle(&bytes, &lenient());
        }
    }
}

mod round_trip {
    use super::*;
    use pathway::fhir::{ehr_shaped, representable, to_bundle};
    use pathway::rules::PatientGenerator;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any generated patient, written as a Bundle and read back, is the same profile (as far
        /// as FHIR can carry it), and so gets the same recommendation.
        #[test]
        fn profile_to_bundle_and_back(seed: u64) {
            let rs = ruleset();
            let r = reader();
            let p = PatientGenerator::new(rs, seed).profile();
            let bundle = to_bundle(&r, &p, "p");
            let reading = r.read_bundle(bundle.to_string().as_bytes(), &ReadOptions::strict(p.date)).unwrap();
            prop_assert!(reading.warnings.is_empty(), "{:?}", reading.warnings);
            prop_assert_eq!(reading.ignored, 0);
            let expected = representable(&r, &p);
            prop_assert_eq!(without_provenance(reading.profile.clone()), expected.clone());
            prop_assert_eq!(
                rs.evaluate(&reading.profile).unwrap().steps.iter().map(|s| s.status).collect::<Vec<_>>(),
                rs.evaluate(&expected).unwrap().steps.iter().map(|s| s.status).collect::<Vec<_>>()
            );
        }

        /// What an EHR's export carries beyond the fields Pathway reads (meta, narrative,
        /// identifiers, categories, displays, encounters, a Patient's name and extensions)
        /// changes nothing in the reading but the Patient's name, provenance and warnings
        /// included, in either mode.
        #[test]
        fn ehr_shaped_bundles_read_as_the_minimal_ones(seed: u64) {
            let r = reader();
            let p = PatientGenerator::new(ruleset(), seed).profile();
            let minimal = to_bundle(&r, &p, "p");
            let ehr = ehr_shaped(&minimal);
            for opts in [ReadOptions::strict(p.date), ReadOptions::lenient(p.date)] {
                let a = r.read_bundle(minimal.to_string().as_bytes(), &opts).unwrap();
                let mut b = r.read_bundle(ehr.to_string().as_bytes(), &opts).unwrap();
                // Only the name, for reports, is read from what the EHR adds.
                prop_assert!(b.patient_name.take().is_some());
                prop_assert_eq!(&a, &b);
                prop_assert!(!a.profile.provenance.is_empty());
            }
        }
    }
}

mod bulk {
    use super::*;
    use pathway::fhir::{BulkExport, BundleLines, representable, to_bundle};
    use pathway::rules::PatientGenerator;
    use std::collections::BTreeMap;
    use std::io::Write;

    /// Writes generated patients as a Bulk Data export: one NDJSON file per resource type,
    /// lines shuffled so that no file is grouped by patient. Returns the expected profiles.
    fn export(dir: &std::path::Path, n: usize) -> BTreeMap<String, Profile> {
        let rs = ruleset();
        let r = reader();
        let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut expected = BTreeMap::new();
        for (i, p) in PatientGenerator::new(rs, 99).take(n).enumerate() {
            let id = format!("p{i:05}");
            for e in to_bundle(&r, &p, &id)["entry"].as_array().unwrap() {
                let kind = e["resource"]["resourceType"].as_str().unwrap().to_owned();
                files
                    .entry(kind)
                    .or_default()
                    .push(e["resource"].to_string());
            }
            expected.insert(format!("Patient/{id}"), representable(&r, &p));
        }
        let mut rng = fastrand::Rng::with_seed(5);
        for (kind, mut lines) in files {
            rng.shuffle(&mut lines);
            let mut f = std::fs::File::create(dir.join(format!("{kind}.ndjson"))).unwrap();
            for l in lines {
                writeln!(f, "{l}").unwrap();
            }
        }
        expected
    }

    #[test]
    fn a_bulk_export_of_1000_patients_streams_through() {
        let dir = tempfile::tempdir().unwrap();
        let expected = export(dir.path(), 1000);
        let r = reader();
        // Small runs force the on-disk merge: memory is bounded by the run, not the export.
        let bulk = BulkExport::open(
            &r,
            dir.path(),
            ReadOptions::lenient(VIGNETTE_DATE),
            64 * 1024,
        )
        .unwrap();
        assert!(bulk.skipped().is_empty());
        let mut seen = 0;
        for reading in bulk {
            let reading = reading.unwrap();
            let want = &expected[&reading.patient];
            assert_eq!(
                &without_provenance(reading.profile),
                want,
                "{}",
                reading.patient
            );
            seen += 1;
        }
        assert_eq!(seen, 1000);
    }

    #[test]
    fn bulk_orphans_and_garbage_are_reported_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        export(dir.path(), 3);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("Condition.ndjson"))
            .unwrap();
        writeln!(f, "{{not json").unwrap();
        writeln!(f, r#"{{"resourceType":"Condition","id":"orphan"}}"#).unwrap();
        std::fs::write(
            dir.path().join("Organization.ndjson"),
            "{\"resourceType\":\"Organization\",\"id\":\"o1\"}\n{\"resourceType\":\"Organization\",\"id\":\"o2\"}\n",
        )
        .unwrap();
        let r = reader();
        let bulk =
            BulkExport::open(&r, dir.path(), ReadOptions::lenient(VIGNETTE_DATE), 1 << 20).unwrap();
        let skipped: Vec<String> = bulk.skipped().iter().map(ToString::to_string).collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(
            skipped[0].contains("Condition.ndjson") && skipped[0].contains("not valid JSON"),
            "{skipped:?}"
        );
        // E6: once per type, however many lines; unread types only counted.
        assert_eq!(skipped[1], "1 Condition resource name no patient; skipped");
        assert_eq!(bulk.filter(Result::is_ok).count(), 3);
        let strict = BulkExport::open(&r, dir.path(), ReadOptions::strict(VIGNETTE_DATE), 1 << 20);
        let err = strict.err().unwrap().to_string();
        assert!(
            err.contains("Condition.ndjson:") && err.contains("not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn ndjson_of_bundles_reports_bad_lines_and_goes_on() {
        let r = reader();
        let mut text = String::new();
        for v in vignettes().iter().take(3) {
            text.push_str(&v["bundle"].to_string());
            text.push('\n');
        }
        text.push_str("{\"resourceType\":\"Bundle\",\"entry\":[]}\n\n");
        text.push_str(&vignettes()[3]["bundle"].to_string());
        let results: Vec<_> =
            BundleLines::new(&r, text.as_bytes(), "all.ndjson", lenient()).collect();
        assert_eq!(results.len(), 5);
        assert!(results[..3].iter().all(Result::is_ok));
        let err = results[3].as_ref().unwrap_err().to_string();
        assert_eq!(
            err,
            "all.ndjson:4: the record has no Patient resource; a profile needs one"
        );
        assert_eq!(results[4].as_ref().unwrap().0, 6);
    }
}
