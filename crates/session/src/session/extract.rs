//! Getting the [`Session`] in an axum handler.
//!
//! The layer puts the session into the request extensions; the extractor only clones it from
//! there. Forgetting the layer is a deployment mistake, not a client's, so it answers 500 with
//! a message that names the cause instead of running the handler without a session.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use super::Session;

/// Returned when a handler asks for a [`Session`] but no [`crate::SessionLayer`] is installed.
#[derive(Debug)]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "session layer is not installed",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}
