//! CDS Hooks 2.0 and FHIR RequestGroup output, checked against the specs' required fields.

use pathway::fhir::{cds_hooks, request_group};
use serde_json::Value;

use crate::fhir::read;
use crate::support::{ruleset, vignettes};

/// Checks a CDS Hooks 2.0 response body; returns the problems found.
pub fn cds_hooks_problems(body: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let Some(cards) = body["cards"].as_array() else {
        return vec!["`cards` must be an array".into()];
    };
    for (i, c) in cards.iter().enumerate() {
        let mut bad = |m: String| p.push(format!("card {i}: {m}"));
        match c["summary"].as_str() {
            Some(s) if !s.is_empty() && s.chars().count() < 140 => {}
            other => bad(format!(
                "summary must be a string under 140 characters: {other:?}"
            )),
        }
        if !matches!(
            c["indicator"].as_str(),
            Some("info" | "warning" | "critical")
        ) {
            bad(format!("indicator {:?}", c["indicator"]));
        }
        if c["source"]["label"].as_str().is_none_or(str::is_empty) {
            bad("source.label is required".into());
        }
        if let Some(u) = c["uuid"].as_str()
            && uuid::Uuid::parse_str(u).is_err()
        {
            bad(format!("uuid {u} is not a UUID"));
        }
        if let Some(d) = c.get("detail")
            && !d.is_string()
        {
            bad("detail must be markdown text".into());
        }
        if let Some(sugg) = c["suggestions"].as_array() {
            let sb = c["selectionBehavior"].as_str();
            if !matches!(sb, Some("at-most-one" | "any")) {
                bad("selectionBehavior is required with suggestions".into());
            }
            let recommended = sugg.iter().filter(|s| s["isRecommended"] == true).count();
            if sb == Some("at-most-one") && recommended > 1 {
                bad("at-most-one allows one recommended suggestion".into());
            }
            for s in sugg {
                if s["label"].as_str().is_none_or(str::is_empty) {
                    bad("suggestion.label is required".into());
                }
                for a in s["actions"].as_array().into_iter().flatten() {
                    if !matches!(a["type"].as_str(), Some("create" | "update" | "delete")) {
                        bad(format!("action type {:?}", a["type"]));
                    }
                    if a["type"] == "create" {
                        for d in draft_problems(&a["resource"]) {
                            bad(d);
                        }
                    }
                }
            }
        }
    }
    p
}

/// Required elements of the draft orders (FHIR R4 MedicationRequest, ServiceRequest).
fn draft_problems(r: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let kind = r["resourceType"].as_str().unwrap_or("");
    if !matches!(kind, "MedicationRequest" | "ServiceRequest") {
        p.push(format!("draft resourceType {kind:?}"));
    }
    if r["status"] != "draft" || r["intent"] != "proposal" {
        p.push(format!("{kind}: status draft and intent proposal expected"));
    }
    if !r["subject"]["reference"].is_string() {
        p.push(format!("{kind}: subject is required"));
    }
    if kind == "MedicationRequest" && !r["medicationCodeableConcept"]["coding"].is_array() {
        p.push("MedicationRequest: medication[x] is required".into());
    }
    p
}

#[test]
fn cds_hooks_responses_of_every_vignette_are_valid_and_stable() {
    let rs = ruleset();
    for v in vignettes() {
        let reading = read(&v["bundle"]);
        let rec = rs.evaluate(&reading.profile).unwrap();
        let response = cds_hooks(&rec, rs, &reading.patient);
        let body = serde_json::to_value(&response).unwrap();
        let problems = cds_hooks_problems(&body);
        assert!(problems.is_empty(), "{}: {problems:?}", v["id"]);
        assert_eq!(response, cds_hooks(&rec, rs, &reading.patient), "stable");
        // Every offered or cautioned step has its card with a draft order.
        for s in rec
            .steps
            .iter()
            .filter(|s| matches!(s.status, pathway::Status::Offer | pathway::Status::Caution))
        {
            let card = response
                .cards
                .iter()
                .find(|c| {
                    c.source
                        .topic
                        .as_ref()
                        .is_some_and(|t| t.code == s.step.as_str())
                })
                .unwrap_or_else(|| panic!("{}: no card for {}", v["id"], s.step));
            assert_eq!(card.suggestions.len(), 1);
            let expected = if s.status == pathway::Status::Caution {
                "warning"
            } else {
                "info"
            };
            assert_eq!(serde_json::to_value(card.indicator).unwrap(), expected);
        }
        // Ids are unique within a response.
        let mut ids: Vec<&str> = response.cards.iter().map(|c| c.uuid.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), response.cards.len());
    }
}

#[test]
fn cards_carry_the_why_with_records_and_sources() {
    let rs = ruleset();
    let v = vignettes().iter().find(|v| v["id"] == "V24").unwrap();
    let reading = read(&v["bundle"]);
    let rec = rs.evaluate(&reading.profile).unwrap();
    let response = cds_hooks(&rec, rs, &reading.patient);
    let diazepam = response
        .cards
        .iter()
        .find(|c| {
            c.source
                .topic
                .as_ref()
                .is_some_and(|t| t.code == "diazepam")
        })
        .unwrap();
    assert!(
        diazepam.summary.starts_with("Offer with caution Diazepam"),
        "{}",
        diazepam.summary
    );
    assert!(
        diazepam.detail.contains("FDA-BOX-2016"),
        "{}",
        diazepam.detail
    );
    assert!(
        diazepam.detail.contains("MedicationStatement/"),
        "{}",
        diazepam.detail
    );
    let held = response.cards.last().unwrap();
    assert!(
        held.detail.contains("Tizanidine (not-yet)"),
        "{}",
        held.detail
    );
}

#[test]
fn a_current_therapy_that_is_now_contraindicated_is_critical() {
    let rs = ruleset();
    let p = crate::support::profile_from_summary(&vignettes()[0]["patient"])
        .with_step(
            "tizanidine",
            pathway::StepRecord::current(Some(pathway::Outcome::Effective)),
        )
        .with_medication("cyp1a2-strong-inhibitor");
    let rec = rs.evaluate(&p).unwrap();
    let response = cds_hooks(&rec, rs, "Patient/x");
    let card = response
        .cards
        .iter()
        .find(|c| {
            c.source
                .topic
                .as_ref()
                .is_some_and(|t| t.code == "tizanidine")
        })
        .unwrap();
    assert_eq!(serde_json::to_value(card.indicator).unwrap(), "critical");
    assert!(
        card.summary.starts_with("Review Tizanidine now"),
        "{}",
        card.summary
    );
}

#[test]
fn request_group_has_one_action_per_offered_or_cautioned_step() {
    let rs = ruleset();
    for v in vignettes() {
        let reading = read(&v["bundle"]);
        let rec = rs.evaluate(&reading.profile).unwrap();
        let rg = serde_json::to_value(request_group(&rec, rs, &reading.patient)).unwrap();
        assert_eq!(rg["resourceType"], "RequestGroup");
        assert_eq!(rg["status"], "draft");
        assert_eq!(rg["intent"], "proposal");
        assert_eq!(rg["subject"]["reference"], reading.patient.as_str());
        let actions = rg["action"].as_array().unwrap();
        let offered: Vec<&str> = rec
            .steps
            .iter()
            .filter(|s| matches!(s.status, pathway::Status::Offer | pathway::Status::Caution))
            .map(|s| s.step.as_str())
            .collect();
        let ids: Vec<&str> = actions.iter().map(|a| a["id"].as_str().unwrap()).collect();
        assert_eq!(ids, offered, "{}", v["id"]);
        for a in actions {
            let target = a["resource"]["reference"]
                .as_str()
                .unwrap()
                .trim_start_matches('#');
            let contained = rg["contained"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == target);
            let contained = contained.unwrap_or_else(|| panic!("{target} is not contained"));
            assert!(
                draft_problems(contained).is_empty(),
                "{:?}",
                draft_problems(contained)
            );
            assert!(!a["documentation"].as_array().unwrap().is_empty());
        }
    }
}

#[test]
fn a_request_group_for_a_patient_outside_the_pathway_has_no_empty_arrays_and_says_why() {
    let rs = crate::support::ruleset();
    let p = pathway::Profile::new(crate::support::VIGNETTE_DATE, 40);
    let rec = rs.evaluate(&p).unwrap();
    let rg = serde_json::to_value(pathway::fhir::request_group(&rec, rs, "Patient/p")).unwrap();
    assert!(
        rg.get("contained").is_none() && rg.get("action").is_none(),
        "{rg:#}"
    );
    let notes: Vec<&str> = rg["note"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("does not apply")),
        "{notes:?}"
    );
}
