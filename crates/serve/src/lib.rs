//! # pathway-serve
//!
//! Pathway as a CDS Hooks 2.0 service an EHR calls: discovery (`GET /cds-services`), the
//! hooks `patient-view`, `order-select` and `order-sign` (`POST /cds-services/{id}`), feedback
//! (`POST /cds-services/{id}/feedback`, stored in SQLite) and `GET /health`.
//!
//! A hook call is checked (the client's JWT, then the request), what the prefetch lacks is
//! fetched from the EHR's FHIR server with the token it grants, the record is read as EHRs
//! write it (`pathway-fhir`), evaluated (`pathway-rules`) and answered with as few cards as
//! the situation needs. A bad request gets a `4xx` that says why, never a `5xx`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use pathway_serve::{Config, Service};
//! let mut config = Config::default();
//! config.insecure_dev = true; // development only: no JWT checked
//! let service = Service::start(config).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! pathway_serve::serve(service, listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! Architecture invariant: this crate is the HTTP layer only; reading records is
//! `pathway-fhir`'s and every clinical decision the rule set's.
#![forbid(unsafe_code)]

mod auth;
mod cards;
mod config;
mod error;
pub mod feedback;
mod prefetch;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pathway_core::Date;
use pathway_fhir::{Card, ReadOptions, Reader, ValueSets};
use pathway_rules::RuleSet;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tower::ServiceBuilder;

pub use config::{CardsConfig, Config, Limits, TrustedClient};
pub use error::{ConfigError, Refusal, StartError};

/// The three services, by id: `(id, hook, title)`.
const SERVICES: [(&str, &str, &str); 3] = [
    (
        "pathway-patient-view",
        "patient-view",
        "MS spasticity pathway: what needs action now",
    ),
    (
        "pathway-order-select",
        "order-select",
        "MS spasticity pathway: check a drug as it is chosen",
    ),
    (
        "pathway-order-sign",
        "order-sign",
        "MS spasticity pathway: check drug orders before they are signed",
    ),
];

/// A running service's state: the rule set, the reader, the configuration, the trusted
/// clients' keys and the feedback store.
pub struct Service {
    rs: &'static RuleSet,
    reader: Reader<'static>,
    cfg: Config,
    templates: Vec<prefetch::Template>,
    verifier: auth::Verifier,
    feedback: feedback::Store,
    http: reqwest::Client,
}

impl Service {
    /// Loads the rule set, value sets, keys and feedback store a configuration names. The
    /// rule set lives as long as the process (a service loads it once).
    pub async fn start(cfg: Config) -> Result<Arc<Service>, StartError> {
        cfg.check("configuration")?;
        let rs = match &cfg.ruleset {
            Some(p) => RuleSet::load(p).map_err(|e| StartError::Content(e.to_string()))?,
            None => RuleSet::ms_spasticity().map_err(|e| StartError::Content(e.to_string()))?,
        };
        let rs: &'static RuleSet = Box::leak(Box::new(rs));
        let vs = match &cfg.valuesets {
            Some(p) => ValueSets::load(p, rs),
            None => ValueSets::ms_spasticity(rs),
        }
        .map_err(|e| StartError::Content(e.to_string()))?;
        let templates = prefetch::templates(&vs.observation_codes());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.limits.fhir_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StartError::Content(format!("HTTP client: {e}")))?;
        let verifier = auth::Verifier::new(&cfg.trusted, http.clone()).await?;
        let feedback = feedback::Store::open(&cfg.feedback_db)?;
        Ok(Arc::new(Service {
            rs,
            reader: Reader::new(rs, vs),
            cfg,
            templates,
            verifier,
            feedback,
            http,
        }))
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether hook calls are accepted without a verified JWT.
    pub fn is_insecure(&self) -> bool {
        self.cfg.insecure_dev
    }

    /// The discovery document.
    pub fn discovery(&self) -> Value {
        let prefetch: serde_json::Map<String, Value> = self
            .templates
            .iter()
            .map(|t| (t.key.to_owned(), Value::String(t.query.clone())))
            .collect();
        let services: Vec<Value> = SERVICES
            .iter()
            .map(|(id, hook, title)| {
                json!({
                    "hook": hook,
                    "id": id,
                    "title": title,
                    "description": format!(
                        "{}: for a person with multiple sclerosis and spasticity, which steps of the treatment ladder to continue, offer, offer with caution, hold or never offer, with the rules and sources behind each (rule set {} {}).",
                        title, self.rs.stamp().id, self.rs.stamp().version),
                    "prefetch": prefetch,
                    "usageRequirements": "Send the prefetch listed (or a fhirServer and fhirAuthorization with read access to Patient, Condition, MedicationRequest, MedicationStatement, Observation, AllergyIntolerance and Procedure); sign each call with a JWT whose issuer the site has configured. Decision support only: a clinician decides."
                })
            })
            .collect();
        json!({ "services": services })
    }

    fn today(&self) -> Date {
        self.cfg
            .date
            .as_deref()
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| {
                jiff::Timestamp::now()
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .date()
            })
    }

    /// Answers one hook call: the cards and the rule ids behind them.
    pub async fn hook(
        &self,
        id: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Answer, Refusal> {
        let &(_, hook, _) = SERVICES
            .iter()
            .find(|(s, _, _)| *s == id)
            .ok_or_else(|| Refusal::not_found(format!("no CDS service `{id}`")))?;
        self.authorise(id, headers).await?;
        let req = Request::parse(body, hook)?;
        let values = self.prefetch(&req).await?;
        let bundle = prefetch::bundle_text(&values.found, body.len())?;
        let date = self.today();
        let reading = match self
            .reader
            .read_bundle(bundle.as_bytes(), &ReadOptions::lenient(date))
        {
            Ok(r) => r,
            Err(e) => {
                return Err(Refusal::precondition(format!(
                    "the record cannot be evaluated: {e}"
                )));
            }
        };
        let mut rec = self
            .rs
            .evaluate(&reading.profile)
            .map_err(|e| Refusal::precondition(format!("the record cannot be evaluated: {e}")))?;
        reading.annotate(&mut rec);
        for key in &values.unavailable {
            rec.warnings.push(format!(
                "prefetch `{key}` could not be had; that part of the record was not read"
            ));
        }
        let patient = format!("Patient/{}", req.patient_id);
        let ctx = cards::Ctx {
            rs: self.rs,
            cfg: &self.cfg.cards,
            patient: &patient,
            hook_instance: &req.hook_instance,
            service: id,
        };
        let made = if hook == "patient-view" {
            cards::patient_view(&ctx, &rec)
        } else {
            let draft = req.draft_orders.as_ref().unwrap_or(&Value::Null);
            let orders = self
                .reader
                .read_orders(draft, date)
                .map_err(|e| Refusal::bad_request(format!("context.draftOrders: {e}")))?;
            let with = if orders.classes.is_empty() {
                None
            } else {
                let mut p = reading.profile.clone();
                p.medications.extend(orders.classes.keys().cloned());
                self.rs.evaluate(&p).ok()
            };
            cards::orders(&ctx, &rec, with.as_ref(), &orders)
        };
        let mut rules: Vec<String> = made.iter().flat_map(|(_, i)| i.rules.clone()).collect();
        rules.sort();
        rules.dedup();
        let issued: Vec<feedback::Issued> = made.iter().map(|(_, i)| i.clone()).collect();
        let now = jiff::Timestamp::now().to_string();
        if !issued.is_empty() {
            self.feedback.issued(&issued, &now);
        }
        Ok(Answer {
            cards: made.into_iter().map(|(c, _)| c).collect(),
            rules,
            hook_instance: req.hook_instance,
        })
    }

    async fn authorise(&self, id: &str, headers: &HeaderMap) -> Result<(), Refusal> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        if !self.verifier.has_clients() {
            if self.cfg.insecure_dev {
                return Ok(());
            }
            return Err(Refusal::unauthorized(
                "no trusted CDS clients are configured: hook calls are refused (see `trusted` in the configuration, or --insecure-dev for development)",
            ));
        }
        let Some(token) = token else {
            if self.cfg.insecure_dev {
                return Ok(());
            }
            return Err(Refusal::unauthorized("a hook call needs a Bearer JWT"));
        };
        let audience = format!(
            "{}/cds-services/{id}",
            self.cfg.base_url.trim_end_matches('/')
        );
        self.verifier
            .verify(token, &audience, jiff::Timestamp::now().as_second())
            .await
            .map(|_| ())
    }

    async fn prefetch<'a>(&self, req: &Request<'a>) -> Result<Prefetched<'a>, Refusal> {
        let access = req.fhir_server.as_deref().map(|server| prefetch::Access {
            server,
            token: req.token.as_deref(),
            scopes: req.scopes.split_whitespace().collect(),
        });
        let mut found = Vec::new();
        let mut unavailable = Vec::new();
        let mut missing = Vec::new();
        for t in &self.templates {
            if let Some(v) = prefetch::usable(t.key, req.prefetch.get(t.key).copied())? {
                found.push(prefetch::Found::Sent(v));
                continue;
            }
            let why = match &access {
                None => "not prefetched and no fhirServer given".to_owned(),
                Some(a) if !a.may_read(t.kind) => {
                    format!(
                        "not prefetched and the token's scopes do not allow reading {}",
                        t.kind
                    )
                }
                Some(a) => {
                    let q = prefetch::query(t, &req.patient_id)?;
                    match prefetch::fetch(&self.http, a, &q, &self.cfg.limits).await {
                        Ok(resources) => {
                            found.push(prefetch::Found::Fetched(resources));
                            continue;
                        }
                        Err(e) => e,
                    }
                }
            };
            if t.required {
                missing.push(format!("{} ({why})", t.key));
            } else {
                unavailable.push(t.key.to_owned());
            }
        }
        if !missing.is_empty() {
            return Err(Refusal::precondition(format!(
                "data the service needs could not be had: {}",
                missing.join("; ")
            )));
        }
        Ok(Prefetched { found, unavailable })
    }
}

/// What a hook call is answered with.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The cards.
    pub cards: Vec<Card>,
    /// The rule ids behind them, sorted, each once.
    pub rules: Vec<String>,
    /// The call's `hookInstance`.
    pub hook_instance: String,
}

struct Prefetched<'a> {
    found: Vec<prefetch::Found<'a>>,
    unavailable: Vec<String>,
}

/// A hook call's body, checked; prefetch values stay raw JSON borrowed from the body.
struct Request<'a> {
    hook_instance: String,
    patient_id: String,
    fhir_server: Option<String>,
    token: Option<String>,
    scopes: String,
    prefetch: std::collections::HashMap<&'a str, &'a RawValue>,
    draft_orders: Option<Value>,
}

/// The body: the small parts as trees, the prefetch (the bulk of it) as raw JSON, read once,
/// by the FHIR reader. Other fields are passed over.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(default)]
    hook: Option<Value>,
    #[serde(default)]
    hook_instance: Option<Value>,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    fhir_server: Option<Value>,
    #[serde(default)]
    fhir_authorization: Option<Value>,
    #[serde(default, borrow)]
    prefetch: Option<&'a RawValue>,
}

impl<'a> Request<'a> {
    fn parse(body: &'a [u8], hook: &str) -> Result<Request<'a>, Refusal> {
        let text = std::str::from_utf8(body)
            .map_err(|e| Refusal::bad_request(format!("the body is not UTF-8: {e}")))?;
        let env: Envelope<'a> = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) if e.is_data() => {
                return Err(Refusal::bad_request(format!(
                    "the body is not a CDS Hooks request object: {e}"
                )));
            }
            Err(e) => return Err(Refusal::bad_request(format!("the body is not JSON: {e}"))),
        };
        let mut o = serde_json::Map::new();
        for (k, v) in [
            ("hook", env.hook),
            ("hookInstance", env.hook_instance),
            ("context", env.context),
            ("fhirServer", env.fhir_server),
            ("fhirAuthorization", env.fhir_authorization),
        ] {
            if let Some(v) = v {
                o.insert(k.to_owned(), v);
            }
        }
        let text = |k: &str| o.get(k).and_then(Value::as_str);
        match text("hook") {
            Some(h) if h == hook => {}
            Some(h) => {
                return Err(Refusal::bad_request(format!(
                    "`hook` is `{h}`, but this service answers `{hook}`"
                )));
            }
            None => return Err(Refusal::bad_request("`hook` is missing or not a string")),
        }
        let hook_instance = text("hookInstance")
            .filter(|s| !s.trim().is_empty() && s.len() <= 128)
            .ok_or_else(|| Refusal::bad_request("`hookInstance` is missing, empty or too long"))?
            .to_owned();
        let context = o
            .get("context")
            .and_then(Value::as_object)
            .ok_or_else(|| Refusal::bad_request("`context` is missing or not an object"))?;
        let patient_id = context
            .get("patientId")
            .and_then(Value::as_str)
            .ok_or_else(|| Refusal::bad_request("`context.patientId` is missing or not a string"))?
            .to_owned();
        if context.get("userId").is_some_and(|u| !u.is_string()) {
            return Err(Refusal::bad_request("`context.userId` is not a string"));
        }
        let draft_orders = if hook == "patient-view" {
            None
        } else {
            let d = context
                .get("draftOrders")
                .filter(|d| d.get("resourceType").and_then(Value::as_str) == Some("Bundle"))
                .ok_or_else(|| {
                    Refusal::bad_request("`context.draftOrders` is missing or not a FHIR Bundle")
                })?;
            Some(d.clone())
        };
        let fhir_server = match o.get("fhirServer") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.starts_with("http://") || s.starts_with("https://") => {
                Some(s.clone())
            }
            Some(_) => return Err(Refusal::bad_request("`fhirServer` is not an http(s) URL")),
        };
        let (token, scopes) = match o.get("fhirAuthorization") {
            None | Some(Value::Null) => (None, String::new()),
            Some(a) => {
                let field = |k: &str| a.get(k).and_then(Value::as_str);
                let token = field("access_token")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        Refusal::bad_request("`fhirAuthorization.access_token` is missing")
                    })?;
                if !field("token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
                    return Err(Refusal::bad_request(
                        "`fhirAuthorization.token_type` must be `Bearer`",
                    ));
                }
                let scope = field("scope")
                    .ok_or_else(|| Refusal::bad_request("`fhirAuthorization.scope` is missing"))?;
                if fhir_server.is_none() {
                    return Err(Refusal::bad_request(
                        "`fhirAuthorization` is given without a `fhirServer`",
                    ));
                }
                (Some(token.to_owned()), scope.to_owned())
            }
        };
        let prefetch = match env.prefetch {
            None => std::collections::HashMap::new(),
            Some(raw) if raw.get().trim() == "null" => std::collections::HashMap::new(),
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|_| Refusal::bad_request("`prefetch` is not an object of resources"))?,
        };
        Ok(Request {
            hook_instance,
            patient_id,
            fhir_server,
            token,
            scopes,
            prefetch,
            draft_orders,
        })
    }
}

/// The HTTP routes with their limits: body size (`413`), time (`408`), concurrency (`503`
/// when more calls arrive than are handled at once) and CORS.
pub fn router(service: Arc<Service>) -> Router {
    let limits = service.cfg.limits.clone();
    let cors = cors(&service.cfg.cors_origins);
    Router::new()
        .route("/cds-services", get(discovery))
        .route("/cds-services/{id}", post(hook))
        .route("/cds-services/{id}/feedback", post(feedback_post))
        .route("/health", get(health))
        .with_state(service)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    Refusal {
                        status: StatusCode::SERVICE_UNAVAILABLE,
                        message: "the service is busy: try again".into(),
                    }
                }))
                .load_shed()
                .concurrency_limit(limits.concurrency),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(limits.request_timeout_ms),
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            limits.body_bytes,
        ))
        .layer(cors)
}

fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    let layer = CorsLayer::new()
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
        ]);
    if origins.iter().any(|o| o == "*") {
        return layer.allow_origin(Any);
    }
    let list: Vec<axum::http::HeaderValue> =
        origins.iter().filter_map(|o| o.parse().ok()).collect();
    layer.allow_origin(AllowOrigin::list(list))
}

async fn discovery(State(s): State<Arc<Service>>) -> Response {
    axum::Json(s.discovery()).into_response()
}

async fn health(State(s): State<Arc<Service>>) -> Response {
    axum::Json(json!({"status": "ok", "ruleset": s.rs.stamp().id, "version": s.rs.stamp().version}))
        .into_response()
}

async fn hook(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = s.hook(&id, &headers, &body).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(a) => {
            tracing::info!(hook_instance = %a.hook_instance, service = %id, status = 200, latency_ms, cards = a.cards.len(), rules = ?a.rules, "hook answered");
            axum::Json(json!({ "cards": a.cards })).into_response()
        }
        Err(r) => {
            tracing::info!(service = %id, status = r.status.as_u16(), latency_ms, "hook refused");
            r.into_response()
        }
    }
}

async fn feedback_post(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !SERVICES.iter().any(|(x, _, _)| *x == id) {
        return Refusal::not_found(format!("no CDS service `{id}`")).into_response();
    }
    if let Err(r) = s.authorise(&id, &headers).await {
        return r.into_response();
    }
    let parsed: Result<feedback::Body, _> = serde_json::from_slice(&body);
    let body = match parsed {
        Ok(b) => b,
        Err(e) => return Refusal::bad_request(format!("not a feedback body: {e}")).into_response(),
    };
    let now = jiff::Timestamp::now().to_string();
    match s.feedback.record(&id, &body, &now) {
        Ok(n) => {
            tracing::info!(service = %id, status = 200, items = n, "feedback stored");
            StatusCode::OK.into_response()
        }
        Err(r) => r.into_response(),
    }
}

/// Serves until `shutdown` completes, then finishes the calls in flight.
pub async fn serve(
    service: Arc<Service>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(service))
        .with_graceful_shutdown(shutdown)
        .await
}
