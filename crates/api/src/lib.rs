//! The API server: the JSON API under `/api/v1` and the server-rendered pages.
//!
//! Today: the home page, the static assets and the API's not-found answer. Videos, comments,
//! profiles, channels and subscriptions arrive with their issues.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use turtlemen_db::Db;
use turtlemen_http::ApiError;

/// Shared state of the API server's handlers.
#[derive(Clone)]
pub struct ApiState {
    pub db: Db,
}

/// The API server's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(home))
        .nest("/api/v1", Router::new().fallback(|| async { ApiError::not_found() }))
        .with_state(state)
        .merge(turtlemen_web::static_routes())
        .fallback(|| async { ApiError::not_found() })
}

async fn home() -> Html<String> {
    // No videos exist yet: both lists stay empty until uploads arrive.
    let view = turtlemen_web::HomeView { recent: Vec::new(), trending: Vec::new() };
    Html(turtlemen_web::home_page(&view))
}
