//! Prefetch (CDS Hooks 2.0): what the service asks the CDS client to send, and fetching from
//! the FHIR server what was not sent (missing, `null` or an OperationOutcome).

use std::time::Duration;

use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;

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

/// The head of a resource: its type and id (the rest is skipped, not kept).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    #[serde(borrow)]
    resource_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

/// A searchset's entries, each resource left as raw JSON.
#[derive(Debug, serde::Deserialize)]
struct Searchset<'a> {
    #[serde(default, borrow)]
    entry: Vec<SearchEntry<'a>>,
}

#[derive(Debug, serde::Deserialize)]
struct SearchEntry<'a> {
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
}

/// The `resourceType` of a resource whose JSON starts with it (as FHIR writers put it), read
/// without scanning the rest; `None` means "parse to find it".
fn peek_type(raw: &str) -> Option<&str> {
    let rest = raw.trim_start().strip_prefix('{')?.trim_start();
    let rest = rest
        .strip_prefix("\"resourceType\"")?
        .trim_start()
        .strip_prefix(':')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    let kind = rest.get(..rest.find('"')?)?;
    (!kind.contains('\\')).then_some(kind)
}

/// A resource's type, peeked or parsed.
fn resource_type(raw: &str) -> Result<Option<Cow<'_, str>>, serde_json::Error> {
    if let Some(k) = peek_type(raw) {
        return Ok(Some(Cow::Borrowed(k)));
    }
    let head: Head<'_> = serde_json::from_str(raw)?;
    Ok(head.resource_type)
}

/// A prefetch value: usable (a resource or a Bundle), or not (`null`, an OperationOutcome),
/// which the service then fetches itself (CDS Hooks 2.0).
pub fn usable<'a>(key: &str, v: Option<&'a RawValue>) -> Result<Option<&'a RawValue>, Refusal> {
    let Some(v) = v else { return Ok(None) };
    if v.get().trim() == "null" {
        return Ok(None);
    }
    let kind = resource_type(v.get()).map_err(|e| {
        Refusal::bad_request(format!("prefetch `{key}` is not a FHIR resource: {e}"))
    })?;
    match kind.as_deref() {
        Some("OperationOutcome") => Ok(None),
        Some(_) => Ok(Some(v)),
        None => Err(Refusal::bad_request(format!(
            "prefetch `{key}` is not a FHIR resource (no resourceType)"
        ))),
    }
}

/// What one prefetch key gave: the client's raw JSON, or what the service fetched.
pub enum Found<'a> {
    /// Sent by the CDS client.
    Sent(&'a RawValue),
    /// Fetched from the FHIR server.
    Fetched(Vec<Value>),
}

/// Puts the resources of prefetch values together as one `collection` Bundle's JSON, the
/// client's resources copied as they came (never parsed into a tree and written again). A
/// resource found twice (by type and id) is kept once.
pub fn bundle_text(found: &[Found<'_>], size_hint: usize) -> Result<String, Refusal> {
    let mut out = String::with_capacity(size_hint + 1024);
    out.push_str(r#"{"resourceType":"Bundle","type":"collection","entry":["#);
    let mut seen: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    let mut first = true;
    let mut push = |raw: &str, out: &mut String| -> Result<(), Refusal> {
        let head: Head<'_> = serde_json::from_str(raw)
            .map_err(|e| Refusal::bad_request(format!("a prefetched resource is not JSON: {e}")))?;
        let kind = head.resource_type.as_deref().unwrap_or_default();
        if let Some(id) = head.id.as_deref()
            && !seen.insert((kind.to_owned(), id.to_owned()))
        {
            return Ok(());
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push('{');
        if let Some(id) = head.id.as_deref() {
            let url = serde_json::to_string(&format!("{kind}/{id}"))
                .map_err(|e| Refusal::bad_request(e.to_string()))?;
            out.push_str(r#""fullUrl":"#);
            out.push_str(&url);
            out.push(',');
        }
        out.push_str(r#""resource":"#);
        out.push_str(raw);
        out.push('}');
        Ok(())
    };
    for f in found {
        match f {
            Found::Sent(raw) => {
                let kind = resource_type(raw.get()).map_err(|e| {
                    Refusal::bad_request(format!("a prefetch value is not JSON: {e}"))
                })?;
                if kind.as_deref() == Some("Bundle") {
                    let set: Searchset<'_> = serde_json::from_str(raw.get()).map_err(|e| {
                        Refusal::bad_request(format!("a prefetched Bundle cannot be read: {e}"))
                    })?;
                    for e in set.entry.iter().filter_map(|e| e.resource) {
                        push(e.get(), &mut out)?;
                    }
                } else {
                    push(raw.get(), &mut out)?;
                }
            }
            Found::Fetched(resources) => {
                for r in resources {
                    push(&r.to_string(), &mut out)?;
                }
            }
        }
    }
    out.push_str("]}");
    Ok(out)
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
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert!(usable("k", None).unwrap().is_none());
        assert!(usable("k", Some(&raw("null"))).unwrap().is_none());
        assert!(
            usable("k", Some(&raw(r#"{"resourceType":"OperationOutcome"}"#)))
                .unwrap()
                .is_none()
        );
        assert!(
            usable("k", Some(&raw(r#"{"resourceType":"Bundle"}"#)))
                .unwrap()
                .is_some()
        );
        assert!(usable("k", Some(&raw("[1]"))).is_err());
        assert!(usable("k", Some(&raw(r#"{"id":"x"}"#))).is_err());
    }

    #[test]
    fn types_are_peeked_when_they_come_first_and_parsed_otherwise() {
        assert_eq!(
            peek_type(r#" { "resourceType" : "Bundle", "x": 1}"#),
            Some("Bundle")
        );
        assert_eq!(peek_type(r#"{"id":"x","resourceType":"Bundle"}"#), None);
        assert_eq!(
            resource_type(r#"{"id":"x","resourceType":"Bundle"}"#)
                .unwrap()
                .as_deref(),
            Some("Bundle")
        );
        assert_eq!(peek_type(r#"{"resourceType":"Bun\u0064le"}"#), None);
    }

    #[test]
    fn the_bundle_copies_resources_once_each() {
        let raw = RawValue::from_string(
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Condition","id":"c1"}},{"resource":{"resourceType":"Condition","id":"c1"}}]}"#.to_owned(),
        )
        .unwrap();
        let p = RawValue::from_string(r#"{"resourceType":"Patient","id":"p"}"#.to_owned()).unwrap();
        let text = bundle_text(&[Found::Sent(&p), Found::Sent(&raw)], 0).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["entry"].as_array().unwrap().len(), 2);
        assert_eq!(v["entry"][0]["fullUrl"], "Patient/p");
        assert_eq!(v["entry"][1]["resource"]["id"], "c1");
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
