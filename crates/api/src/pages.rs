//! The server-rendered pages of the API role: home, watch, upload, the creator's studio.
//!
//! Pages work without JavaScript and are enhanced with it; each knows the viewer from the access
//! token the gateway hands on (`Option<CurrentUser>`), never from a header a client could set.

use crate::ApiState;
use axum::Router;
use axum::response::Html;
use axum::routing::get;

/// The page routes.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/", get(home))
}

async fn home() -> Html<String> {
    // No videos exist yet: both lists stay empty until uploads arrive.
    let view = turtlemen_web::HomeView { recent: Vec::new(), trending: Vec::new() };
    Html(turtlemen_web::home_page(&view))
}
