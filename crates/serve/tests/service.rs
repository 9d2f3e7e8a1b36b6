//! The CDS Hooks service as a real server on a loopback port: discovery, every hook with
//! full, partial, null and missing prefetch, the FHIR fallback against a local FHIR server,
//! 412, JWT checks, 400s, feedback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use pathway_serve::{Config, Service, TrustedClient};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vignette(id: &str) -> Value {
    let text = std::fs::read_to_string(root().join("../shared/spec/vignettes.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    let list = all
        .as_array()
        .cloned()
        .unwrap_or_else(|| all["vignettes"].as_array().unwrap().clone());
    list.into_iter().find(|v| v["id"] == id).unwrap()["bundle"].clone()
}

/// The record's resources, with references written as an EHR's FHIR API writes them
/// (`Patient/123`, not the collection's `urn:uuid:` fullUrls).
fn resources(bundle: &Value) -> Vec<Value> {
    let entries = bundle["entry"].as_array().unwrap();
    let names: Vec<(String, String)> = entries
        .iter()
        .filter_map(|e| {
            let r = &e["resource"];
            Some((
                e["fullUrl"].as_str()?.to_owned(),
                format!("{}/{}", r["resourceType"].as_str()?, r["id"].as_str()?),
            ))
        })
        .collect();
    fn fix(v: &mut Value, names: &[(String, String)]) {
        match v {
            Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if k == "reference"
                        && let Some(r) = x.as_str()
                        && let Some((_, to)) = names.iter().find(|(from, _)| from == r)
                    {
                        *x = Value::String(to.clone());
                    } else {
                        fix(x, names);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| fix(x, names)),
            _ => {}
        }
    }
    entries
        .iter()
        .map(|e| {
            let mut r = e["resource"].clone();
            fix(&mut r, &names);
            r
        })
        .collect()
}

fn searchset(rs: &[Value], kind: &str) -> Value {
    let entry: Vec<Value> = rs
        .iter()
        .filter(|r| r["resourceType"] == kind)
        .map(|r| json!({"fullUrl": format!("{kind}/{}", r["id"].as_str().unwrap_or("x")), "resource": r}))
        .collect();
    json!({"resourceType": "Bundle", "type": "searchset", "entry": entry})
}

/// The prefetch a CDS client would send for a record.
fn prefetch(bundle: &Value) -> serde_json::Map<String, Value> {
    let rs = resources(bundle);
    let patient = rs
        .iter()
        .find(|r| r["resourceType"] == "Patient")
        .unwrap()
        .clone();
    let mut m = serde_json::Map::new();
    m.insert("patient".into(), patient);
    for (key, kind) in [
        ("conditions", "Condition"),
        ("medicationRequests", "MedicationRequest"),
        ("medicationStatements", "MedicationStatement"),
        ("observations", "Observation"),
        ("allergies", "AllergyIntolerance"),
        ("procedures", "Procedure"),
    ] {
        m.insert(key.into(), searchset(&rs, kind));
    }
    m
}

fn patient_id(bundle: &Value) -> String {
    resources(bundle)
        .iter()
        .find(|r| r["resourceType"] == "Patient")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

struct Server {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _db: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn start(mut cfg: Config) -> Server {
    let db = tempfile::tempdir().unwrap();
    cfg.feedback_db = db.path().join("feedback.sqlite");
    cfg.date = Some("2026-11-22".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    cfg.base_url = format!("http://{addr}");
    let service = Service::start(cfg).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(pathway_serve::serve(service, listener, async {
        let _ = rx.await;
    }));
    Server {
        base: format!("http://{addr}"),
        stop: Some(tx),
        _db: db,
    }
}

fn dev() -> Config {
    Config {
        insecure_dev: true,
        ..Config::default()
    }
}

fn call(hook: &str, id: &str, prefetch: serde_json::Map<String, Value>) -> Value {
    json!({"hook": hook, "hookInstance": uuid(), "context": {"userId": "Practitioner/1", "patientId": id},
        "prefetch": prefetch})
}

fn uuid() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "d1577c69-dfbe-44ad-ba6d-3e05e953b{:03}",
        N.fetch_add(1, Ordering::SeqCst) % 1000
    )
}

async fn post(
    server: &Server,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn discovery_lists_three_services_with_prefetch_and_is_public() {
    let mut cfg = Config::default();
    cfg.trusted.push(TrustedClient {
        iss: "https://ehr.example".into(),
        jwks_file: Some(root().join("crates/serve/tests/keys/ehr-jwks.json")),
        jwks_url: None,
    });
    let s = start(cfg).await;
    let d: Value = reqwest::get(format!("{}/cds-services", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let services = d["services"].as_array().unwrap();
    let hooks: Vec<&str> = services
        .iter()
        .map(|x| x["hook"].as_str().unwrap())
        .collect();
    assert_eq!(hooks, ["patient-view", "order-select", "order-sign"]);
    for sv in services {
        let p = sv["prefetch"].as_object().unwrap();
        for key in [
            "patient",
            "conditions",
            "medicationRequests",
            "medicationStatements",
            "observations",
            "allergies",
            "procedures",
        ] {
            assert!(
                p[key].as_str().unwrap().contains("{{context.patientId}}"),
                "{key}"
            );
        }
        assert!(
            p["observations"]
                .as_str()
                .unwrap()
                .contains("http://loinc.org|98979-8")
        );
        assert!(sv["usageRequirements"].as_str().unwrap().contains("JWT"));
    }
    let h: Value = reqwest::get(format!("{}/health", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
}

#[tokio::test]
async fn patient_view_raises_one_card_for_what_needs_caution_and_none_when_not_applicable() {
    let s = start(dev()).await;
    // V10: eGFR 25: baclofen and gabapentin with caution.
    let b = vignette("V10");
    let (status, body) = post(
        &s,
        "/cds-services/pathway-patient-view",
        &call("patient-view", &patient_id(&b), prefetch(&b)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cards = body["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 1, "{body:#}");
    assert_eq!(cards[0]["indicator"], "warning");
    assert!(
        cards[0]["summary"].as_str().unwrap().contains("Baclofen"),
        "{}",
        cards[0]["summary"]
    );
    assert!(cards[0]["summary"].as_str().unwrap().chars().count() < 140);
    assert!(!cards[0]["overrideReasons"].as_array().unwrap().is_empty());
    // Suggestions carry the drug's RxNorm code.
    let suggestions = cards[0]["suggestions"].as_array().unwrap();
    assert!(suggestions.iter().any(
        |x| x["actions"][0]["resource"]["medicationCodeableConcept"]["coding"][0]["system"]
            == "http://www.nlm.nih.gov/research/umls/rxnorm"
    ));
    // No MS: the pathway does not apply, no card.
    let mut none = prefetch(&b);
    none.insert("conditions".into(), searchset(&[], "Condition"));
    let (status, body) = post(
        &s,
        "/cds-services/pathway-patient-view",
        &call("patient-view", &patient_id(&b), none),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["cards"], json!([]));
    // V01: nothing needs action (info only, not configured): no card.
    let b = vignette("V01");
    let (_, body) = post(
        &s,
        "/cds-services/pathway-patient-view",
        &call("patient-view", &patient_id(&b), prefetch(&b)),
        None,
    )
    .await;
    assert_eq!(body["cards"], json!([]), "{body:#}");
}

fn draft(code: &str, display: &str) -> Value {
    json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "draft-1", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code, "display": display}]}}}]})
}

#[tokio::test]
async fn order_sign_on_fluvoxamine_gives_a_critical_card_and_an_offered_drug_none() {
    let s = start(dev()).await;
    let b = vignette("V22");
    let mut c = call("order-sign", &patient_id(&b), prefetch(&b));
    c["context"]["draftOrders"] = draft("313413", "tizanidine 4 MG Oral Tablet");
    let (status, body) = post(&s, "/cds-services/pathway-order-sign", &c, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cards = body["cards"].as_array().unwrap();
    let critical: Vec<&Value> = cards
        .iter()
        .filter(|c| c["indicator"] == "critical")
        .collect();
    assert_eq!(critical.len(), 1, "{body:#}");
    let card = critical[0];
    assert!(
        card["summary"].as_str().unwrap().contains("Tizanidine"),
        "{}",
        card["summary"]
    );
    assert!(
        card["detail"]
            .as_str()
            .unwrap()
            .contains("R20.tizanidine.cyp1a2-inhibitor")
    );
    assert!(card["detail"].as_str().unwrap().contains("MEDDB"));
    let labels: Vec<&str> = card["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.iter().any(|l| l.contains("Dantrolene")),
        "{labels:?}"
    );
    let remove = card["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["actions"][0]["type"] == "delete")
        .unwrap();
    assert_eq!(
        remove["actions"][0]["resourceId"],
        json!(["MedicationRequest/draft-1"])
    );
    // Dantrolene is offered: ordering it raises nothing.
    let mut c = call("order-sign", &patient_id(&b), prefetch(&b));
    c["context"]["draftOrders"] = draft("3105", "dantrolene");
    let (_, body) = post(&s, "/cds-services/pathway-order-sign", &c, None).await;
    assert_eq!(body["cards"], json!([]), "{body:#}");
}

#[tokio::test]
async fn order_select_of_an_inhibitor_while_on_tizanidine_is_critical() {
    let s = start(dev()).await;
    let b = vignette("V22");
    let mut p = prefetch(&b);
    // Take fluvoxamine off the record, put current tizanidine on it.
    let mut rs = resources(&b);
    rs.retain(|r| {
        r["resourceType"] != "MedicationStatement"
            || r["medicationCodeableConcept"]["coding"][0]["code"] != "42355"
    });
    rs.push(json!({"resourceType": "MedicationRequest", "id": "tz", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "57258"}]},
        "subject": {"reference": format!("Patient/{}", patient_id(&b))}}));
    p.insert(
        "medicationStatements".into(),
        searchset(&rs, "MedicationStatement"),
    );
    p.insert(
        "medicationRequests".into(),
        searchset(&rs, "MedicationRequest"),
    );
    let mut c = call("order-select", &patient_id(&b), p);
    c["context"]["draftOrders"] = draft("903887", "fluvoxamine maleate 25 MG Oral Tablet");
    c["context"]["selections"] = json!(["MedicationRequest/draft-1"]);
    let (status, body) = post(&s, "/cds-services/pathway-order-select", &c, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cards = body["cards"].as_array().unwrap();
    assert!(
        cards.iter().any(|c| c["indicator"] == "critical"
            && c["summary"].as_str().unwrap().contains("Tizanidine")),
        "{body:#}"
    );
}

/// A FHIR server serving one record's resources, checking the bearer token.
async fn fhir_server(record: Value, token: &'static str) -> (String, Arc<AtomicUsize>) {
    #[derive(Clone)]
    struct St {
        rs: Arc<Vec<Value>>,
        token: &'static str,
        hits: Arc<AtomicUsize>,
    }
    async fn search(
        State(st): State<St>,
        Path(kind): Path<String>,
        headers: HeaderMap,
        RawQuery(_q): RawQuery,
    ) -> axum::response::Response {
        st.hits.fetch_add(1, Ordering::SeqCst);
        if headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {}", st.token))
        {
            return (StatusCode::UNAUTHORIZED, "no").into_response();
        }
        axum::Json(searchset(&st.rs, &kind)).into_response()
    }
    async fn read(
        State(st): State<St>,
        Path((kind, id)): Path<(String, String)>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        st.hits.fetch_add(1, Ordering::SeqCst);
        if headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {}", st.token))
        {
            return (StatusCode::UNAUTHORIZED, "no").into_response();
        }
        match st
            .rs
            .iter()
            .find(|r| r["resourceType"] == kind.as_str() && r["id"] == id.as_str())
        {
            Some(r) => axum::Json(r.clone()).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let hits = Arc::new(AtomicUsize::new(0));
    let st = St {
        rs: Arc::new(resources(&record)),
        token,
        hits: hits.clone(),
    };
    let app = axum::Router::new()
        .route("/fhir/{kind}", axum::routing::get(search))
        .route("/fhir/{kind}/{id}", axum::routing::get(read))
        .with_state(st);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/fhir"), hits)
}

#[tokio::test]
async fn partial_null_and_missing_prefetch_are_fetched_from_the_fhir_server_or_412() {
    let s = start(dev()).await;
    let b = vignette("V10");
    let id = patient_id(&b);
    let (full_status, full) = post(
        &s,
        "/cds-services/pathway-patient-view",
        &call("patient-view", &id, prefetch(&b)),
        None,
    )
    .await;
    assert_eq!(full_status, StatusCode::OK);
    let (fhir, hits) = fhir_server(b.clone(), "secret").await;
    let auth = json!({"access_token": "secret", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/Patient.read patient/Condition.read patient/Observation.read patient/MedicationRequest.read patient/MedicationStatement.read patient/AllergyIntolerance.read patient/Procedure.read", "subject": "cds-service"});
    let cases: Vec<(&str, serde_json::Map<String, Value>)> = vec![
        ("partial", {
            let mut p = prefetch(&b);
            p.remove("observations");
            p.remove("conditions");
            p
        }),
        ("null and OperationOutcome", {
            let mut p = prefetch(&b);
            p.insert("observations".into(), Value::Null);
            p.insert(
                "patient".into(),
                json!({"resourceType": "OperationOutcome", "issue": []}),
            );
            p
        }),
        ("none", serde_json::Map::new()),
    ];
    for (name, p) in cases {
        let mut c = call("patient-view", &id, p);
        c["fhirServer"] = json!(fhir);
        c["fhirAuthorization"] = auth.clone();
        let (status, body) = post(&s, "/cds-services/pathway-patient-view", &c, None).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        let strip = |v: &Value| {
            v["cards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["summary"].clone(), c["indicator"].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&body), strip(&full), "{name}");
    }
    assert!(hits.load(Ordering::SeqCst) >= 2 + 2 + 7);
    // Missing with no FHIR server: 412.
    let mut p = prefetch(&b);
    p.remove("observations");
    let (status, body) = post(
        &s,
        "/cds-services/pathway-patient-view",
        &call("patient-view", &id, p.clone()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert!(body["message"].as_str().unwrap().contains("observations"));
    // Scopes that do not cover Observation: 412, and the server is not asked.
    let before = hits.load(Ordering::SeqCst);
    let mut c = call("patient-view", &id, p.clone());
    c["fhirServer"] = json!(fhir);
    c["fhirAuthorization"] = json!({"access_token": "secret", "token_type": "Bearer", "scope": "patient/Condition.read"});
    let (status, _) = post(&s, "/cds-services/pathway-patient-view", &c, None).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(hits.load(Ordering::SeqCst), before);
    // A wrong token: the FHIR server refuses, so 412.
    let mut c = call("patient-view", &id, p);
    c["fhirServer"] = json!(fhir);
    c["fhirAuthorization"] =
        json!({"access_token": "wrong", "token_type": "Bearer", "scope": "patient/*.read"});
    let (status, _) = post(&s, "/cds-services/pathway-patient-view", &c, None).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
}

fn jwt(
    key_file: &str,
    kid: &str,
    alg: jsonwebtoken::Algorithm,
    aud: &str,
    exp_in: i64,
    jti: &str,
) -> String {
    let pem = std::fs::read(root().join("crates/serve/tests/keys").join(key_file)).unwrap();
    let key = match alg {
        jsonwebtoken::Algorithm::RS384 => jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap(),
    };
    let mut h = jsonwebtoken::Header::new(alg);
    h.kid = Some(kid.into());
    h.typ = Some("JWT".into());
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({"iss": "https://ehr.example", "sub": "client-1", "aud": aud, "iat": now, "exp": now + exp_in, "jti": jti});
    jsonwebtoken::encode(&h, &claims, &key).unwrap()
}

#[tokio::test]
async fn jwts_are_checked_issuer_audience_expiry_replay_and_key() {
    let mut cfg = Config::default();
    cfg.trusted.push(TrustedClient {
        iss: "https://ehr.example".into(),
        jwks_file: Some(root().join("crates/serve/tests/keys/ehr-jwks.json")),
        jwks_url: None,
    });
    let s = start(cfg).await;
    let b = vignette("V10");
    let body = call("patient-view", &patient_id(&b), prefetch(&b));
    let aud = format!("{}/cds-services/pathway-patient-view", s.base);
    let path = "/cds-services/pathway-patient-view";
    use jsonwebtoken::Algorithm::{ES384, RS384};
    let ok = jwt("ehr-es384.pem", "ehr-es384", ES384, &aud, 300, "j1");
    assert_eq!(post(&s, path, &body, Some(&ok)).await.0, StatusCode::OK);
    assert_eq!(
        post(&s, path, &body, Some(&ok)).await.0,
        StatusCode::UNAUTHORIZED,
        "replayed"
    );
    let rs = jwt("ehr-rs384.pem", "ehr-rs384", RS384, &aud, 300, "j2");
    assert_eq!(
        post(&s, path, &body, Some(&rs)).await.0,
        StatusCode::OK,
        "RS384"
    );
    let expired = jwt("ehr-es384.pem", "ehr-es384", ES384, &aud, -600, "j3");
    assert_eq!(
        post(&s, path, &body, Some(&expired)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let wrong_aud = jwt(
        "ehr-es384.pem",
        "ehr-es384",
        ES384,
        "https://elsewhere/cds-services/x",
        300,
        "j4",
    );
    assert_eq!(
        post(&s, path, &body, Some(&wrong_aud)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let unknown = jwt("other-es384.pem", "other-es384", ES384, &aud, 300, "j5");
    let (status, msg) = post(&s, path, &body, Some(&unknown)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(msg["message"].as_str().unwrap().contains("kid"));
    // A key of one kid, signed by another: the signature fails.
    let forged = jwt("other-es384.pem", "ehr-es384", ES384, &aud, 300, "j6");
    assert_eq!(
        post(&s, path, &body, Some(&forged)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&s, path, &body, None).await.0,
        StatusCode::UNAUTHORIZED,
        "no token"
    );
    // With no trusted client and no --insecure-dev, hook calls are refused.
    let closed = start(Config::default()).await;
    assert_eq!(
        post(&closed, path, &body, None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_requests_get_400_with_a_reason() {
    let s = start(dev()).await;
    let path = "/cds-services/pathway-order-sign";
    let b = vignette("V22");
    let good = {
        let mut c = call("order-sign", &patient_id(&b), prefetch(&b));
        c["context"]["draftOrders"] = draft("3105", "dantrolene");
        c
    };
    let mut cases = vec![];
    let mut c = good.clone();
    c["hook"] = json!("patient-view");
    cases.push((c, "`hook`"));
    let mut c = good.clone();
    c.as_object_mut().unwrap().remove("hookInstance");
    cases.push((c, "hookInstance"));
    let mut c = good.clone();
    c["context"]["patientId"] = json!(5);
    cases.push((c, "patientId"));
    let mut c = good.clone();
    c["context"].as_object_mut().unwrap().remove("draftOrders");
    cases.push((c, "draftOrders"));
    let mut c = good.clone();
    c["fhirAuthorization"] =
        json!({"access_token": "x", "token_type": "MAC", "scope": "patient/*.read"});
    c["fhirServer"] = json!("http://127.0.0.1:9");
    cases.push((c, "token_type"));
    let mut c = good.clone();
    c["context"]["patientId"] = json!("../etc");
    c["prefetch"] = json!({});
    c["fhirServer"] = json!("http://127.0.0.1:9");
    cases.push((c, "FHIR id"));
    for (c, needle) in cases {
        let (status, body) = post(&s, path, &c, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{needle}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{needle}: {body}"
        );
    }
    let r = reqwest::Client::new()
        .post(format!("{}{path}", s.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = reqwest::Client::new()
        .post(format!("{}/cds-services/nope", s.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Over the body limit: 413.
    let big = vec![b' '; (4 << 20) + 10];
    let r = reqwest::Client::new()
        .post(format!("{}{path}", s.base))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
}

#[tokio::test]
async fn feedback_is_stored_and_reported_per_rule() {
    let s = start(dev()).await;
    let b = vignette("V22");
    let mut c = call("order-sign", &patient_id(&b), prefetch(&b));
    c["context"]["draftOrders"] = draft("313413", "tizanidine 4 MG Oral Tablet");
    let (_, body) = post(&s, "/cds-services/pathway-order-sign", &c, None).await;
    let card = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["indicator"] == "critical")
        .unwrap();
    let fb = json!({"feedback": [{"card": card["uuid"], "outcome": "overridden",
        "overrideReason": {"reason": {"system": "urn:pathway:override-reason", "code": "specialist-advice", "display": "Following specialist advice"}, "userComment": "neurology"},
        "outcomeTimestamp": "2026-11-22T10:00:00Z"}]});
    let (status, _) = post(&s, "/cds-services/pathway-order-sign/feedback", &fb, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(
        &s,
        "/cds-services/pathway-order-sign/feedback",
        &json!({"feedback": [{"card": "x", "outcome": "maybe"}]}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let store =
        pathway_serve::feedback::Store::open(&s._db.path().join("feedback.sqlite")).unwrap();
    let (by_rule, by_kind) = store.report().unwrap();
    let rule = by_rule
        .iter()
        .find(|l| l.key == "R20.tizanidine.cyp1a2-inhibitor")
        .unwrap();
    assert_eq!((rule.issued, rule.accepted, rule.overridden), (1, 0, 1));
    assert_eq!(
        rule.top_reason.as_ref().unwrap().0,
        "specialist-advice (Following specialist advice)"
    );
    assert!(by_kind.iter().any(|l| l.key == "order:tizanidine"));
    let text = pathway_serve::feedback::render(&by_rule, &by_kind);
    assert!(text.contains("R20.tizanidine.cyp1a2-inhibitor"));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn random_and_truncated_bodies_never_get_a_5xx(cut in 0usize..4000, junk in proptest::collection::vec(any::<u8>(), 0..200), route in 0usize..5) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let s = start(dev()).await;
                let b = vignette("V24");
                let mut c = call("order-sign", &patient_id(&b), prefetch(&b));
                c["context"]["draftOrders"] = draft("3322", "diazepam");
                let text = c.to_string();
                let mut body = text.as_bytes()[..cut.min(text.len())].to_vec();
                body.extend(&junk);
                let path = ["/cds-services/pathway-patient-view", "/cds-services/pathway-order-select", "/cds-services/pathway-order-sign", "/cds-services/pathway-order-sign/feedback", "/cds-services"][route];
                let r = reqwest::Client::new().post(format!("{}{path}", s.base)).body(body).send().await.unwrap();
                prop_assert!(r.status().as_u16() < 500, "{} on {path}", r.status());
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn keys_can_come_from_a_jwks_url() {
    let jwks: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("crates/serve/tests/keys/ehr-jwks.json")).unwrap(),
    )
    .unwrap();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let j = jwks.clone();
            async move { axum::Json(j) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut cfg = Config::default();
    cfg.trusted.push(TrustedClient {
        iss: "https://ehr.example".into(),
        jwks_file: None,
        jwks_url: Some(format!("http://{addr}/jwks.json")),
    });
    let s = start(cfg).await;
    let b = vignette("V10");
    let body = call("patient-view", &patient_id(&b), prefetch(&b));
    let aud = format!("{}/cds-services/pathway-patient-view", s.base);
    let t = jwt(
        "ehr-es384.pem",
        "ehr-es384",
        jsonwebtoken::Algorithm::ES384,
        &aud,
        300,
        "u1",
    );
    let (status, body) = post(&s, "/cds-services/pathway-patient-view", &body, Some(&t)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
