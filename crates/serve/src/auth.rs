//! Trusting CDS clients (CDS Hooks 2.0, "Trusting CDS Clients"): every hook call carries a
//! JWT signed by the client, whose public keys the site configures (a JWKS file or URL).
//! Checked: the signature (ES384 or RS384; ES256 and RS256 too), `kid`, `iss` (a trusted
//! client), `aud` (this service's endpoint URL), `exp`, `iat` and `jti` (never the same twice
//! while the token is valid).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::TrustedClient;
use crate::error::{Refusal, StartError};

/// The keys of one trusted client.
struct Client {
    iss: String,
    keys: Mutex<JwkSet>,
    url: Option<String>,
    last_fetch: Mutex<Option<Instant>>,
}

/// Verifies hook calls' JWTs.
pub struct Verifier {
    clients: Vec<Client>,
    /// `jti` of accepted tokens with when they expire (UNIX seconds).
    seen: Mutex<HashMap<String, i64>>,
    http: reqwest::Client,
}

/// The claims a CDS client's JWT must carry.
#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    jti: String,
    exp: i64,
}

/// At most this many `jti` are remembered; the oldest are forgotten past it.
const SEEN_MAX: usize = 200_000;

impl Verifier {
    /// Loads every trusted client's keys (files now, URLs now and on an unknown `kid`).
    pub async fn new(
        trusted: &[TrustedClient],
        http: reqwest::Client,
    ) -> Result<Verifier, StartError> {
        let mut clients = Vec::new();
        for t in trusted {
            let keys = match (&t.jwks_file, &t.jwks_url) {
                (Some(f), _) => {
                    let text = std::fs::read_to_string(f).map_err(|e| StartError::Keys {
                        iss: t.iss.clone(),
                        message: format!("{}: {e}", f.display()),
                    })?;
                    serde_json::from_str::<JwkSet>(&text).map_err(|e| StartError::Keys {
                        iss: t.iss.clone(),
                        message: format!("{}: not a JWKS: {e}", f.display()),
                    })?
                }
                (None, Some(url)) => {
                    fetch_jwks(&http, url)
                        .await
                        .map_err(|message| StartError::Keys {
                            iss: t.iss.clone(),
                            message,
                        })?
                }
                (None, None) => JwkSet { keys: Vec::new() },
            };
            clients.push(Client {
                iss: t.iss.clone(),
                keys: Mutex::new(keys),
                url: t.jwks_url.clone(),
                last_fetch: Mutex::new(Some(Instant::now())),
            });
        }
        Ok(Verifier {
            clients,
            seen: Mutex::new(HashMap::new()),
            http,
        })
    }

    /// Whether any client is trusted at all.
    pub fn has_clients(&self) -> bool {
        !self.clients.is_empty()
    }

    /// Checks a bearer token for a call to `audience`; `now` is UNIX seconds.
    pub async fn verify(&self, token: &str, audience: &str, now: i64) -> Result<String, Refusal> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Refusal::unauthorized(format!("not a JWT: {e}")))?;
        if !matches!(
            header.alg,
            Algorithm::ES384 | Algorithm::RS384 | Algorithm::ES256 | Algorithm::RS256
        ) {
            return Err(Refusal::unauthorized(format!(
                "algorithm {:?} is not accepted (ES384 or RS384)",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Refusal::unauthorized("the JWT header has no `kid`"))?;
        let mut found = self.key(&kid);
        if found.is_none() {
            self.refresh().await;
            found = self.key(&kid);
        }
        let (iss, key) = found.ok_or_else(|| {
            Refusal::unauthorized(format!("no trusted client has a key with kid `{kid}`"))
        })?;
        let mut v = Validation::new(header.alg);
        v.set_audience(&[audience]);
        v.set_issuer(&[&iss]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "jti"]);
        v.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v)
            .map_err(|e| Refusal::unauthorized(format!("the JWT is not accepted: {e}")))?;
        let c = data.claims;
        let _ = c.iss;
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Refusal::unauthorized("replay check unavailable"))?;
        seen.retain(|_, exp| *exp + 60 > now);
        if seen.contains_key(&c.jti) {
            return Err(Refusal::unauthorized(format!(
                "the JWT's jti `{}` was already used",
                c.jti
            )));
        }
        if seen.len() >= SEEN_MAX
            && let Some(oldest) = seen.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone())
        {
            seen.remove(&oldest);
        }
        seen.insert(c.jti, c.exp);
        Ok(iss)
    }

    fn key(&self, kid: &str) -> Option<(String, DecodingKey)> {
        for c in &self.clients {
            let keys = c.keys.lock().ok()?;
            if let Some(jwk) = keys.find(kid)
                && let Ok(key) = DecodingKey::from_jwk(jwk)
            {
                return Some((c.iss.clone(), key));
            }
        }
        None
    }

    /// Fetches JWKS URLs again, each at most once a minute.
    async fn refresh(&self) {
        for c in &self.clients {
            let Some(url) = &c.url else { continue };
            let due = c
                .last_fetch
                .lock()
                .map(|t| t.is_none_or(|t| t.elapsed() > Duration::from_secs(60)))
                .unwrap_or(false);
            if !due {
                continue;
            }
            if let Ok(mut t) = c.last_fetch.lock() {
                *t = Some(Instant::now());
            }
            if let Ok(set) = fetch_jwks(&self.http, url).await
                && let Ok(mut keys) = c.keys.lock()
            {
                *keys = set;
            }
        }
    }
}

async fn fetch_jwks(http: &reqwest::Client, url: &str) -> Result<JwkSet, String> {
    let r = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("{url}: HTTP {}", r.status()));
    }
    r.json::<JwkSet>()
        .await
        .map_err(|e| format!("{url}: not a JWKS: {e}"))
}
