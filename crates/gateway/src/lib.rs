//! The gateway (the OAuth2 Proxy role): the ingress every request enters by.
//!
//! Today it holds the route table of the all-in-one process: `/auth/…` to the auth service and
//! everything else to the API server, both in-process. Session checks at the entry, the
//! `/oauth2/…` endpoints, identity forwarding and proxying to remote upstreams arrive with the
//! gateway issue; until then no identity reaches the services at all.

use axum::Router;

/// The in-process route table: the auth service under `/auth`, the API server for the rest.
pub fn route_table(auth: Router, api: Router) -> Router {
    Router::new().nest("/auth", auth).merge(api)
}
