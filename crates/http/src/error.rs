//! Errors at the HTTP edge.
//!
//! Policy (after the `crates_io` backend): `anyhow` stays off the request path; model code
//! returns specific errors; handlers turn them into one [`ApiError`], whose `code` is a stable
//! snake_case string API clients can switch on. A store's error that says its class
//! ([`Classify`], as the database's does) becomes a status in one place, so this crate knows no
//! store. An internal error is logged once, here, with its cause chain, and the client sees only
//! a generic message and the request id.
//!
//! An `ApiError` response is JSON and carries its [`ErrorBody`] as an extension too; the
//! error-rendering layer ([`crate::layers`]) turns it into an HTML page when a browser asked.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use turtlemen_domain::{Classify, FailureClass};

/// What an error response says: a stable code and a human message.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// A stable snake_case code.
    #[schema(value_type = String)]
    pub error: Cow<'static, str>,
    /// What went wrong and what to fix, for a person.
    #[schema(value_type = String)]
    pub message: Cow<'static, str>,
}

/// An error returned by a handler.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self { status, body: ErrorBody { error: Cow::Borrowed(code), message: message.into() } }
    }

    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "There is nothing at this address.")
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Sign in to do this.")
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "You are not allowed to do this.")
    }

    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", message)
    }

    /// 507: no room to keep what was sent (a full disk), for now.
    pub fn storage_full(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::INSUFFICIENT_STORAGE, "storage_full", message)
    }

    /// An unexpected failure: logged here with its cause chain, never shown to the client.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Something went wrong on our side.")
    }

    /// The stable code for a status when nothing more specific is known.
    pub fn code_for(status: StatusCode) -> &'static str {
        match status.as_u16() {
            400 => "bad_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            406 => "not_acceptable",
            408 => "request_timeout",
            409 => "conflict",
            411 => "length_required",
            413 => "payload_too_large",
            414 => "uri_too_long",
            415 => "unsupported_media_type",
            422 => "unprocessable_entity",
            429 => "too_many_requests",
            431 => "request_header_fields_too_large",
            501 => "not_implemented",
            502 => "bad_gateway",
            503 => "service_unavailable",
            504 => "gateway_timeout",
            507 => "storage_full",
            s if s >= 500 => "internal_error",
            _ => "bad_request",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.body.error, self.body.message)
    }
}

/// A store's error (the database's…) answered by its class: the stores say
/// what kind of failure each error is ([`Classify`]), and this is the one place a class becomes
/// a status, so this crate knows no store.
impl<E: Classify + 'static> From<E> for ApiError {
    fn from(e: E) -> Self {
        match e.class() {
            FailureClass::Conflict => Self::new(StatusCode::CONFLICT, "conflict", "This already exists."),
            FailureClass::Unavailable => {
                tracing::error!(error = %e, "store unavailable");
                Self::unavailable("The service is temporarily unavailable; try again shortly.")
            }
            FailureClass::StorageFull => {
                tracing::error!(error = %e, "store disk full");
                Self::storage_full("The server has no room to save this right now; try again later.")
            }
            FailureClass::Internal => Self::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(&self.body)).into_response();
        res.extensions_mut().insert(self.body);
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_has_one_code_whoever_builds_the_answer() {
        let built = ApiError::storage_full("No room.");
        assert_eq!(built.status, StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(ApiError::code_for(built.status), built.body.error);
    }
}
