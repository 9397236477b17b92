//! Server-rendered pages and static assets, compiled into the binary.
//!
//! Placeholder: the real templates land with the web shell.

use axum::Router;
use axum::http::StatusCode;
use turtlemen_http::error::ErrorBody;

/// Routes serving the hashed static assets.
pub fn static_routes() -> Router {
    Router::new()
}

/// A full HTML error page.
pub fn error_page(status: StatusCode, body: &ErrorBody) -> String {
    turtlemen_http::layers::plain_error_page(status, body)
}

/// The home page.
pub fn home_page() -> String {
    "<!doctype html><title>Turtlemen</title><h1>Turtlemen</h1>".into()
}
