//! Why a session operation failed, and what status a request ends with because of it.
//!
//! The layer turns a failed save into a bare error response instead of the handler's answer,
//! since reporting success for a write that did not happen would be silent loss; the status
//! tells the client whether retrying can help (409 and 503) or not (500).

use std::fmt;

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;

use crate::store::StoreError;

/// Why a session operation failed.
#[derive(Debug)]
pub enum SessionError {
    /// The same keys were changed by this request and, meanwhile, by another one. The session
    /// now shows the other request's values; nothing of this request was written.
    Conflict(Vec<String>),
    /// Compare-and-set kept losing races after the configured number of retries.
    Contention,
    /// The store failed.
    Store(StoreError),
    /// A value could not be (de)serialized as the requested type.
    Serde(serde_json::Error),
    /// The request this session belongs to has finished; changes can no longer be saved.
    Finished,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Conflict(keys) => {
                write!(f, "session keys changed concurrently: {}", keys.join(", "))
            }
            SessionError::Contention => f.write_str("session write kept losing races"),
            SessionError::Store(e) => e.fmt(f),
            SessionError::Serde(e) => write!(f, "session value: {e}"),
            SessionError::Finished => f.write_str("the request of this session has finished"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        SessionError::Store(e)
    }
}

impl From<serde_json::Error> for SessionError {
    fn from(e: serde_json::Error) -> Self {
        SessionError::Serde(e)
    }
}

impl SessionError {
    /// The status the layer answers with when this error ends a request.
    pub fn status(&self) -> StatusCode {
        match self {
            SessionError::Conflict(_) => StatusCode::CONFLICT,
            SessionError::Contention => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        self.status().into_response()
    }
}
