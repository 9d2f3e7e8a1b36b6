//! The service's errors: what stops it starting, and how a hook call is refused.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{file}: cannot read: {message}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// The file is not a valid configuration.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// What is wrong, with line and column where known.
        message: String,
    },
}

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The rule set or value sets.
    #[error("{0}")]
    Content(String),
    /// A trusted client's keys.
    #[error("keys of {iss}: {message}")]
    Keys {
        /// The client.
        iss: String,
        /// What is wrong.
        message: String,
    },
    /// The feedback database.
    #[error("feedback database {path}: {message}")]
    Feedback {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Listening.
    #[error("cannot listen on {addr}: {message}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
}

/// A hook call refused: the status and a body that says why (never a 5xx for a bad body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// What was wrong, for the caller.
    pub message: String,
}

impl Refusal {
    /// `400 Bad Request`.
    pub fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// `401 Unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
        }
    }

    /// `412 Precondition Failed`: data the service needs could not be had (CDS Hooks 2.0).
    pub fn precondition(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::PRECONDITION_FAILED,
            message: message.into(),
        }
    }

    /// `404 Not Found`.
    pub fn not_found(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.status.canonical_reason().unwrap_or("error"), "message": self.message});
        (self.status, axum::Json(body)).into_response()
    }
}
