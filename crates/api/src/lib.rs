//! The API server: the JSON API under `/api/v1` and the server-rendered pages.
//!
//! Today: the home page, the static assets and the API's not-found answer. Videos, comments,
//! profiles, channels and subscriptions arrive with their issues.

pub mod identity;

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use turtlemen_db::Db;
use turtlemen_http::ApiError;
use turtlemen_identity::Jwks;

/// Shared state of the API server's handlers.
#[derive(Clone)]
pub struct ApiState {
    pub db: Db,
    /// The issuer's keys, to verify access tokens locally.
    pub jwks: Arc<Jwks>,
}

/// The API server's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(home))
        .nest("/api/v1", Router::new().route("/me", get(me)).fallback(|| async { ApiError::not_found() }))
        .with_state(state)
        .merge(turtlemen_web::static_routes())
        .fallback(|| async { ApiError::not_found() })
}

/// `GET /api/v1/me`: the signed-in user.
async fn me(user: identity::CurrentUser) -> Json<serde_json::Value> {
    let u = user.0;
    Json(serde_json::json!({
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "email": u.email,
        "role": u.role,
        "created_at": u.created_at,
    }))
}

async fn home() -> Html<String> {
    // No videos exist yet: both lists stay empty until uploads arrive.
    let view = turtlemen_web::HomeView { recent: Vec::new(), trending: Vec::new() };
    Html(turtlemen_web::home_page(&view))
}
