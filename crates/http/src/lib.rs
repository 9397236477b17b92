//! The HTTP foundation every role stands on.
//!
//! - [`server::serve`]: the accept loop (HTTP/1.1 and h2c, or HTTPS with [`tls`]; header-size
//!   and header-read-time limits, graceful shutdown within a bound), serving a router, or a
//!   front that takes most requests before a router ([`server::App`]);
//! - [`idle`]: connections with no request yet, and HTTP/2 ones with none in progress, shut
//!   down after the header read time;
//! - [`linger`]: a connection hyper ends while the client still sends (an early 413) is read
//!   and dropped for a bounded while before it is closed, so the client reads the answer;
//! - [`files`]: bodiless `GET`s of local files (HLS segments) answered with `sendfile(2)` on
//!   plain HTTP/1.1 connections, before hyper sees them;
//! - [`tap`]: a plain connection a handler can reach past hyper; [`flush_check`] checks once that
//!   hyper flushes as the gateway's splice path assumes, which copies bodies when it does not;
//! - [`layers::Foundation`]: request ids, tracing spans, panics caught, timeouts, body limits and
//!   error rendering, wrapped around a role's router or called by a front that takes requests
//!   before any router ([`server::App`]);
//! - [`error::ApiError`]: the one error type at the HTTP edge, rendered as
//!   `{"error": code, "message": …}` for API clients and as a friendly page for browsers;
//! - [`health`]: `/healthz` and `/readyz`; [`metrics`]: `/metrics` in the Prometheus text format;
//! - [`trace`]: W3C `traceparent`, continued or started per request and passed on;
//! - [`client_addr`]: the client's address behind `trusted_proxies`, the one rule every role
//!   uses to believe `X-Forwarded-For`.
//!
//! This crate owns no business logic and no routes beyond health.

pub mod client_addr;
pub mod error;
pub mod files;
pub mod flush_check;
pub mod health;
pub mod idle;
pub mod layers;
pub mod linger;
pub mod metrics;
pub mod server;
pub mod tap;
pub mod tls;
pub mod trace;

/// Limits for this crate's unit tests: short timeouts, small bodies.
#[cfg(test)]
pub(crate) fn test_limits() -> turtlemen_config::HttpLimits {
    use std::time::Duration;
    turtlemen_config::HttpLimits {
        request_timeout: Duration::from_secs(5),
        header_read_timeout: Duration::from_secs(5),
        max_body_bytes: 1024,
        max_header_bytes: 8192,
        max_connections: 100,
        shutdown_timeout: Duration::from_secs(1),
    }
}

pub use error::{ApiError, ErrorBody};
