//! Prefetch (CDS Hooks 2.0): what the service asks the CDS client to send, and fetching from
//! the FHIR server what was not sent (missing, `null` or an OperationOutcome).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::Limits;
use crate::error::Refusal;

/// One prefetch template: its key, the FHIR query, the resource type it reads and whether a
/// hook call can be answered without it.
#[derive(Debug, Clone)]
pub struct Template {
    /// The prefetch key.
    pub key: &'static str,
    /// The FHIR query, with `{{context.patientId}}`.
    pub query: String,
    /// The resource type it returns.
    pub kind: &'static str,
    /// Whether the answer needs it (`412` without it); an optional one that cannot be had is
    /// said in the response's reading notes instead.
    pub required: bool,
}

/// The templates for what Pathway reads; `observation_codes` are the Observation codes of the
/// value sets.
pub fn templates(observation_codes: &[(String, String)]) -> Vec<Template> {
    let codes: Vec<String> = observation_codes
        .iter()
        .map(|(s, c)| format!("{s}|{c}"))
        .collect();
    let t = |key, kind, query: &str, required| Template {
        key,
        query: query.to_owned(),
        kind,
        required,
    };
    vec![
        t("patient", "Patient", "Patient/{{context.patientId}}", true),
        t(
            "conditions",
            "Condition",
            "Condition?patient={{context.patientId}}",
            true,
        ),
        t(
            "medicationRequests",
            "MedicationRequest",
            "MedicationRequest?patient={{context.patientId}}",
            true,
        ),
        t(
            "medicationStatements",
            "MedicationStatement",
            "MedicationStatement?patient={{context.patientId}}",
            false,
        ),
        Template {
            key: "observations",
            query: format!(
                "Observation?patient={{{{context.patientId}}}}&code={}",
                codes.join(",")
            ),
            kind: "Observation",
            required: true,
        },
        t(
            "allergies",
            "AllergyIntolerance",
            "AllergyIntolerance?patient={{context.patientId}}",
            true,
        ),
        t(
            "procedures",
            "Procedure",
            "Procedure?patient={{context.patientId}}",
            false,
        ),
    ]
}

/// The FHIR server access a hook call grants.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// The FHIR base URL.
    pub server: &'a str,
    /// The bearer token, if any.
    pub token: Option<&'a str>,
    /// The granted scopes, if a token was given.
    pub scopes: Vec<&'a str>,
}

impl Access<'_> {
    /// Whether the scopes allow reading `kind` (SMART v1 `patient/Condition.read`, v2
    /// `patient/Condition.rs`, wildcards).
    pub fn may_read(&self, kind: &str) -> bool {
        if self.token.is_none() {
            return true;
        }
        self.scopes.iter().any(|s| {
            let Some((context, rest)) = s.split_once('/') else {
                return false;
            };
            let Some((res, perm)) = rest.split_once('.') else {
                return false;
            };
            let perm = perm.split('?').next().unwrap_or(perm);
            matches!(context, "patient" | "user" | "system")
                && (res == "*" || res == kind)
                && (perm == "read"
                    || perm == "*"
                    || (perm.contains('r') && perm.chars().all(|c| "cruds".contains(c))))
        })
    }
}

/// Whether a prefetch value is usable: not `null` and not an OperationOutcome.
pub fn usable(v: Option<&Value>) -> Option<&Value> {
    let v = v?;
    if v.is_null() || v.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome") {
        return None;
    }
    v.is_object().then_some(v)
}

/// Fetches one template's query from the FHIR server, following search pages on the same
/// server; returns the resources.
pub async fn fetch(
    http: &reqwest::Client,
    access: &Access<'_>,
    query: &str,
    limits: &Limits,
) -> Result<Vec<Value>, String> {
    let base = access.server.trim_end_matches('/');
    let mut url = format!("{base}/{query}");
    let mut out = Vec::new();
    for _ in 0..limits.fhir_max_pages.max(1) {
        let mut req = http
            .get(&url)
            .header("Accept", "application/fhir+json")
            .timeout(Duration::from_millis(limits.fhir_timeout_ms));
        if let Some(t) = access.token {
            req = req.bearer_auth(t);
        }
        let mut resp = req.send().await.map_err(|e| format!("{query}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!(
                "{query}: the FHIR server answered {}",
                resp.status()
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{query}: {e}"))? {
            if body.len() + chunk.len() > limits.fhir_max_bytes {
                return Err(format!(
                    "{query}: the FHIR server's answer is over {} bytes",
                    limits.fhir_max_bytes
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("{query}: the FHIR server's answer is not JSON: {e}"))?;
        match v.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => {
                if let Some(entries) = v.get("entry").and_then(Value::as_array) {
                    out.extend(entries.iter().filter_map(|e| e.get("resource")).cloned());
                }
                let next = v
                    .get("link")
                    .and_then(Value::as_array)
                    .and_then(|l| {
                        l.iter()
                            .find(|x| x.get("relation").and_then(Value::as_str) == Some("next"))
                    })
                    .and_then(|x| x.get("url"))
                    .and_then(Value::as_str);
                match next {
                    // Only pages of the same server: never a request elsewhere.
                    Some(n) if n.starts_with(base) => url = n.to_owned(),
                    _ => return Ok(out),
                }
            }
            Some("OperationOutcome") => {
                return Err(format!(
                    "{query}: the FHIR server answered an OperationOutcome"
                ));
            }
            Some(_) => {
                out.push(v);
                return Ok(out);
            }
            None => {
                return Err(format!(
                    "{query}: the FHIR server's answer is not a resource"
                ));
            }
        }
    }
    Ok(out)
}

/// Puts the resources of prefetch values together as one `collection` Bundle.
pub fn bundle(values: &[(String, Value)]) -> Value {
    let mut seen = std::collections::BTreeSet::new();
    let mut entries = Vec::new();
    for (_, v) in values {
        let resources: Vec<&Value> = match v.get("resourceType").and_then(Value::as_str) {
            Some("Bundle") => v
                .get("entry")
                .and_then(Value::as_array)
                .map(|e| e.iter().filter_map(|x| x.get("resource")).collect())
                .unwrap_or_default(),
            _ => vec![v],
        };
        for r in resources {
            let kind = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
            let id = r.get("id").and_then(Value::as_str);
            if let Some(id) = id
                && !seen.insert(format!("{kind}/{id}"))
            {
                continue;
            }
            let mut e = Map::new();
            if let Some(id) = id {
                e.insert("fullUrl".into(), Value::String(format!("{kind}/{id}")));
            }
            e.insert("resource".into(), r.clone());
            entries.push(Value::Object(e));
        }
    }
    serde_json::json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
}

/// Substitutes the context's patient id into a query.
pub fn query(template: &Template, patient_id: &str) -> Result<String, Refusal> {
    if patient_id.is_empty()
        || !patient_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(Refusal::bad_request(
            "context.patientId is not a FHIR id ([A-Za-z0-9-.]{1,64})",
        ));
    }
    Ok(template.query.replace("{{context.patientId}}", patient_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_of_smart_v1_and_v2_and_wildcards() {
        let a = |s: &'static str| Access {
            server: "http://x",
            token: Some("t"),
            scopes: s.split(' ').collect(),
        };
        assert!(a("patient/Condition.read").may_read("Condition"));
        assert!(a("patient/*.rs launch").may_read("Observation"));
        assert!(a("user/Observation.cruds").may_read("Observation"));
        assert!(!a("patient/Condition.read").may_read("Observation"));
        assert!(!a("patient/Observation.c").may_read("Observation"));
        assert!(!a("openid fhirUser").may_read("Patient"));
        let open = Access {
            server: "http://x",
            token: None,
            scopes: Vec::new(),
        };
        assert!(open.may_read("Patient"));
    }

    #[test]
    fn unusable_prefetch_values() {
        assert!(usable(None).is_none());
        assert!(usable(Some(&Value::Null)).is_none());
        let oo = serde_json::json!({"resourceType": "OperationOutcome"});
        assert!(usable(Some(&oo)).is_none());
        let b = serde_json::json!({"resourceType": "Bundle"});
        assert!(usable(Some(&b)).is_some());
    }

    #[test]
    fn patient_ids_are_checked_before_they_go_into_a_url() {
        let t = &templates(&[])[0];
        assert_eq!(query(t, "abc-1").unwrap(), "Patient/abc-1");
        assert!(query(t, "../x").is_err());
        assert!(query(t, "a b").is_err());
        assert!(query(t, "").is_err());
    }
}
