//! The service's configuration: a TOML file, then environment variables, then flags.

use std::path::{Path, PathBuf};

use pathway_core::Status;
use serde::Deserialize;

use crate::error::ConfigError;

/// Everything `pathway serve` can be told. Every field has a default; a site's TOML file
/// names only what it changes.
///
/// ```
/// use pathway_serve::Config;
/// let c = Config::from_toml("site.toml", r#"
/// base-url = "https://cds.example.org"
/// [cards]
/// statuses = ["excluded"]
/// "#).unwrap();
/// assert_eq!(c.base_url, "https://cds.example.org");
/// assert_eq!(c.cards.statuses, [pathway_core::Status::Excluded]);
/// assert_eq!(c.limits.concurrency, 64);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:8080`); `--port` changes the port.
    pub listen: String,
    /// The service's public base URL: a CDS client's JWT names `{base-url}/cds-services/{id}`
    /// as its audience.
    pub base_url: String,
    /// Evaluation date (`YYYY-MM-DD`) instead of the server clock's (for tests).
    pub date: Option<String>,
    /// Accept hook calls without a verified JWT. For development only; `pathway serve`
    /// prints a warning when it is on.
    pub insecure_dev: bool,
    /// CDS clients trusted to call the service, by JWT issuer.
    pub trusted: Vec<TrustedClient>,
    /// Which cards to raise.
    pub cards: CardsConfig,
    /// Request limits.
    pub limits: Limits,
    /// Origins allowed by CORS (browser-based CDS clients such as the sandbox); `*` for any.
    pub cors_origins: Vec<String>,
    /// Where feedback is stored (SQLite).
    pub feedback_db: PathBuf,
    /// Rule set (TOML) instead of the shipped one.
    pub ruleset: Option<PathBuf>,
    /// Value sets (TOML) instead of the shipped ones.
    pub valuesets: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            base_url: "http://127.0.0.1:8080".into(),
            date: None,
            insecure_dev: false,
            trusted: Vec::new(),
            cards: CardsConfig::default(),
            limits: Limits::default(),
            cors_origins: vec!["*".into()],
            feedback_db: PathBuf::from("pathway-feedback.sqlite"),
            ruleset: None,
            valuesets: None,
        }
    }
}

/// A CDS client the service trusts: its JWT issuer and where its public keys are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrustedClient {
    /// The JWT `iss` the client uses.
    pub iss: String,
    /// A JWKS file with its public keys.
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL with its public keys (fetched at start and when an unknown `kid` arrives,
    /// at most once a minute).
    pub jwks_url: Option<String>,
}

/// Which cards a hook raises.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CardsConfig {
    /// Step statuses that raise a card on patient-view (`excluded` for a current therapy
    /// that must be reviewed, `caution` for the next steps that need a clinician's review).
    pub statuses: Vec<Status>,
    /// Also raise `info` cards (the next steps offered without caution, unrecognised records
    /// other than medications).
    pub info: bool,
    /// A page explaining a step, with `{step}` replaced by the step id; linked from cards.
    pub explanation_url: Option<String>,
}

impl Default for CardsConfig {
    fn default() -> Self {
        CardsConfig {
            statuses: vec![Status::Excluded, Status::Caution],
            info: false,
            explanation_url: None,
        }
    }
}

/// Request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub body_bytes: usize,
    /// Longest a hook call may take, in milliseconds.
    pub request_timeout_ms: u64,
    /// Hook calls handled at once; more get `503`.
    pub concurrency: usize,
    /// Longest a FHIR server request may take, in milliseconds.
    pub fhir_timeout_ms: u64,
    /// Largest FHIR server response, in bytes.
    pub fhir_max_bytes: usize,
    /// Pages of a FHIR search followed at most.
    pub fhir_max_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 4 << 20,
            request_timeout_ms: 10_000,
            concurrency: 64,
            fhir_timeout_ms: 5_000,
            fhir_max_bytes: 16 << 20,
            fhir_max_pages: 5,
        }
    }
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: path.display().to_string(),
            message: e.to_string(),
        })?;
        Config::from_toml(&path.display().to_string(), &text)
    }

    /// Parses a configuration from TOML text (`file` names it in errors).
    pub fn from_toml(file: &str, text: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(String::new(), |s| {
                let before = text.get(..s.start).unwrap_or_default();
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!("line {line}, column {column}: ")
            });
            ConfigError::Parse {
                file: file.to_owned(),
                message: format!("{at}{}", e.message().trim()),
            }
        })?;
        c.check(file)?;
        Ok(c)
    }

    /// Applies `PATHWAY_*` environment variables: `PATHWAY_LISTEN`, `PATHWAY_BASE_URL`,
    /// `PATHWAY_DATE`, `PATHWAY_FEEDBACK_DB`.
    pub fn with_env(mut self, get: impl Fn(&str) -> Option<String>) -> Config {
        if let Some(v) = get("PATHWAY_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("PATHWAY_BASE_URL") {
            self.base_url = v;
        }
        if let Some(v) = get("PATHWAY_DATE") {
            self.date = Some(v);
        }
        if let Some(v) = get("PATHWAY_FEEDBACK_DB") {
            self.feedback_db = PathBuf::from(v);
        }
        self
    }

    /// Checks what serde cannot.
    pub fn check(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::Parse {
            file: file.to_owned(),
            message,
        };
        for t in &self.trusted {
            if t.jwks_file.is_none() && t.jwks_url.is_none() {
                return Err(bad(format!(
                    "[[trusted]] `{}` names neither `jwks-file` nor `jwks-url`",
                    t.iss
                )));
            }
        }
        if let Some(d) = &self.date {
            d.parse::<jiff::civil::Date>()
                .map_err(|e| bad(format!("`date` `{d}` is not YYYY-MM-DD: {e}")))?;
        }
        if self.limits.concurrency == 0 || self.limits.body_bytes == 0 {
            return Err(bad(
                "`limits` must allow at least one request and one byte".into()
            ));
        }
        Ok(())
    }
}
