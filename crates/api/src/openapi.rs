//! The API's description, OpenAPI 3.1, served at `/api/v1/openapi.json`.
//!
//! Written here by hand next to the handlers it describes (channels, subscriptions and the feed
//! in [`community`]); the schemas follow the JSON the handlers produce (`VideoView`,
//! `JobView`, the error body).
//!
//! Security: `oauth2` (authorization code at the auth service, with every [`Scope`] and what it
//! allows), `bearer` (the same access tokens) and `session` (the gateway's cookie, which acts
//! with every scope). Each operation names the scope it needs; `{}` among its requirements
//! means anonymous callers are served too.

use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use turtlemen_identity::Scope;

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(document()))
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn tus_header(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "header", "required": true, "description": description, "schema": { "type": "string" } })
}

fn id_param(description: &str) -> Value {
    json!({ "name": "id", "in": "path", "required": true, "description": description, "schema": { "type": "string", "format": "uuid" } })
}

/// The security requirements of an operation that needs `scope` (`None`: any valid token).
fn needs(scope: Option<Scope>) -> Value {
    let scopes: Vec<&str> = scope.map(Scope::as_str).into_iter().collect();
    json!([{ "oauth2": scopes }, { "bearer": scopes }, { "session": [] }])
}

/// The same, for an operation anonymous callers may use too (the scope widens what they see).
fn optional(scope: Scope) -> Value {
    let mut all = needs(Some(scope));
    if let Some(list) = all.as_array_mut() {
        list.insert(0, json!({}));
    }
    all
}

/// The OAuth 2.0 scheme: authorization code with PKCE at the auth service, every scope.
fn oauth2_scheme() -> Value {
    let scopes: serde_json::Map<String, Value> =
        Scope::ALL.iter().map(|s| (s.as_str().to_owned(), Value::from(s.description()))).collect();
    json!({
        "type": "oauth2",
        "description": "Access tokens from the auth service (OpenID Connect discovery at /auth/.well-known/openid-configuration). A token lacking the scope an operation needs gets 403 `insufficient_scope` with `WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"…\"`. Third-party clients get what the user consented to; the gateway's own session holds every scope. A refresh token comes only with `offline_access`.",
        "flows": { "authorizationCode": {
            "authorizationUrl": "/auth/authorize",
            "tokenUrl": "/auth/token",
            "refreshUrl": "/auth/token",
            "scopes": scopes
        } }
    })
}

mod community;
mod search;

/// The whole document.
pub fn document() -> Value {
    let mut doc = core_document();
    community::extend(&mut doc);
    search::extend(&mut doc);
    doc
}

/// Videos, uploads, the job queue.
fn core_document() -> Value {
    let e403 = error_response(
        "`insufficient_scope`: the access token does not grant the scope this needs (see `WWW-Authenticate`).",
    );
    let resumable = tus_header("Tus-Resumable", "Always 1.0.0.");
    let e400 = error_response("Malformed request; `message` says what to fix.");
    let e401 = error_response("Not signed in.");
    let e404 = error_response("No such thing, or not yours to see.");
    let video = json!({ "$ref": "#/components/schemas/Video" });
    let video_list = json!({ "type": "object", "required": ["videos"], "properties": { "videos": { "type": "array", "items": video } } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Turtlemen API",
            "version": "1",
            "description": "Videos, uploads (tus 1.0.0) and playback. Behind the gateway a browser session is enough; API clients send `Authorization: Bearer <access token>` issued by the auth service at /auth. Errors are `{\"error\": code, \"message\": text}`."
        },
        "servers": [{ "url": "/api/v1" }],
        "security": needs(None),
        "paths": {
            "/me": { "get": {
                "summary": "The signed-in user: any valid access token (`openid`); `email` only with the `email` scope.",
                "security": needs(None),
                "responses": { "200": { "description": "The user.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/User" } } } }, "401": e401 }
            } },
            "/me/videos": { "get": {
                "summary": "The signed-in user's videos, newest first.",
                "security": needs(Some(Scope::VideosRead)),
                "parameters": [
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100 } },
                    { "name": "before", "in": "query", "description": "Only videos created before this time (paging).", "schema": { "type": "string", "format": "date-time" } }
                ],
                "responses": { "200": { "description": "Videos.", "content": { "application/json": { "schema": video_list } } }, "401": e401, "403": e403 }
            } },
            "/videos": { "get": {
                "summary": "Public videos that can be played.",
                "security": [],
                "parameters": [
                    { "name": "sort", "in": "query", "schema": { "type": "string", "enum": ["recent", "trending"] } },
                    { "name": "category", "in": "query", "description": "Only this category's videos (a slug of the fixed list, e.g. music), newest first.", "schema": { "type": "string", "maxLength": 50 } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100 } }
                ],
                "responses": { "200": { "description": "Videos.", "content": { "application/json": { "schema": video_list } } }, "400": e400 }
            } },
            "/videos/{id}": {
                "get": {
                    "summary": "One video. Private videos exist only for their owner, whose token grants `videos:read`.",
                    "security": optional(Scope::VideosRead),
                    "parameters": [id_param("The video.")],
                    "responses": { "200": { "description": "The video.", "content": { "application/json": { "schema": video } } }, "404": e404 }
                },
                "patch": {
                    "summary": "Changes a video's metadata (owner or admin). JSON only.",
                    "security": needs(Some(Scope::VideosWrite)),
                    "parameters": [id_param("The video.")],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/MetadataPatch" } } } },
                    "responses": { "200": { "description": "The changed video.", "content": { "application/json": { "schema": video } } }, "400": e400, "401": e401, "403": e403, "404": e404, "415": error_response("The body is not JSON.") }
                },
                "delete": {
                    "summary": "Deletes a video and every stored file of it (owner or admin).",
                    "security": needs(Some(Scope::VideosWrite)),
                    "parameters": [id_param("The video.")],
                    "responses": { "204": { "description": "Deleted." }, "401": e401, "403": e403, "404": e404 }
                }
            },
            "/videos/{id}/views": { "post": {
                "summary": "Reports a view; counted once per viewer per hour (per user with `videos:write`, else per address).",
                "security": optional(Scope::VideosWrite),
                "parameters": [id_param("The video.")],
                "responses": { "204": { "description": "Reported." }, "400": e400, "404": e404 }
            } },
            "/uploads": {
                "options": {
                    "summary": "tus: what the server supports (Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm).",
                    "security": [],
                    "responses": { "204": { "description": "Capabilities in the headers." } }
                },
                "post": {
                    "summary": "tus creation (with upload): a new upload and its video, in state `uploading`.",
                    "security": needs(Some(Scope::VideosWrite)),
                    "parameters": [
                        resumable,
                        tus_header("Upload-Length", "The file's size in bytes, 1 to Tus-Max-Size."),
                        { "name": "Upload-Metadata", "in": "header", "required": true, "description": "Comma-separated `key base64(value)`: filename (required), title, description, tags (comma-separated), category, language, licence, privacy (public | unlisted | private; default private).", "schema": { "type": "string" } }
                    ],
                    "requestBody": { "required": false, "content": { "application/offset+octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                    "responses": {
                        "201": { "description": "Created; `Location` is the upload's URL, `Video-Id` its video, `Upload-Expires` when it lapses, `Upload-Offset` the bytes received with the creation." },
                        "400": e400, "401": e401, "403": e403, "412": error_response("Not tus 1.0.0."),
                        "413": error_response("Too large, or over the user's total or daily quota.")
                    }
                }
            },
            "/uploads/{id}": {
                "head": {
                    "summary": "tus: the upload's committed offset (`Upload-Offset`), length and expiry.",
                    "security": needs(Some(Scope::VideosWrite)),
                    "parameters": [id_param("The upload."), resumable.clone()],
                    "responses": { "200": { "description": "Offset in the headers." }, "403": e403, "404": e404, "410": error_response("Expired.") }
                },
                "patch": {
                    "summary": "tus: appends a chunk at `Upload-Offset`, optionally checked by `Upload-Checksum` (sha1, sha256).",
                    "security": needs(Some(Scope::VideosWrite)),
                    "parameters": [id_param("The upload."), resumable.clone(), tus_header("Upload-Offset", "Where the chunk starts; must equal the committed offset.")],
                    "requestBody": { "required": true, "content": { "application/offset+octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                    "responses": {
                        "204": { "description": "Appended; `Upload-Offset` is the new offset." },
                        "409": error_response("Wrong offset, or the upload is complete."),
                        "413": error_response("More bytes than Upload-Length."),
                        "415": error_response("Not application/offset+octet-stream."),
                        "423": error_response("Another request is writing to this upload."),
                        "460": error_response("Checksum mismatch; the chunk was discarded."),
                        "403": e403, "404": e404, "410": error_response("Expired.")
                    }
                },
                "delete": {
                    "summary": "tus termination: abandons an unfinished upload and its video.",
                    "security": needs(Some(Scope::VideosWrite)),
                    "parameters": [id_param("The upload."), resumable],
                    "responses": { "204": { "description": "Gone." }, "403": e403, "404": e404, "409": error_response("Complete: delete the video instead."), "423": error_response("A chunk is being written.") }
                }
            },
            "/admin/jobs": { "get": {
                "summary": "The job queue (admins only; 404 to anyone else).",
                "security": needs(Some(Scope::Admin)),
                "parameters": [
                    { "name": "state", "in": "query", "schema": { "type": "string", "enum": ["queued", "running", "succeeded", "failed"] } },
                    { "name": "kind", "in": "query", "schema": { "type": "string" } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500 } }
                ],
                "responses": { "200": { "description": "Jobs, newest first.", "content": { "application/json": { "schema": { "type": "object", "properties": { "jobs": { "type": "array", "items": { "$ref": "#/components/schemas/Job" } } } } } } }, "400": e400, "403": e403, "404": e404 }
            } },
            "/admin/jobs/{id}": { "get": {
                "summary": "One job (admins only).",
                "security": needs(Some(Scope::Admin)),
                "parameters": [id_param("The job.")],
                "responses": { "200": { "description": "The job.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Job" } } } }, "403": e403, "404": e404 }
            } },
            "/admin/jobs/{id}/retry": { "post": {
                "summary": "Runs a queued or failed job again now (admins only).",
                "security": needs(Some(Scope::Admin)),
                "parameters": [id_param("The job.")],
                "responses": { "204": { "description": "Queued." }, "403": e403, "404": e404, "409": error_response("Running or succeeded jobs are not retried.") }
            } },
            "/openapi.json": { "get": {
                "summary": "This document.",
                "security": [],
                "responses": { "200": { "description": "OpenAPI 3.1." } }
            } }
        },
        "components": {
            "securitySchemes": {
                "oauth2": oauth2_scheme(),
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT (RFC 9068) from the auth service" },
                "session": { "type": "apiKey", "in": "cookie", "name": "turtlemen_session", "description": "The gateway's session (browsers)." }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "message"], "properties": {
                    "error": { "type": "string", "description": "A stable snake_case code." },
                    "message": { "type": "string" } } },
                "User": { "type": "object", "properties": {
                    "id": { "type": "string", "format": "uuid" }, "username": { "type": "string" }, "display_name": { "type": "string" },
                    "email": { "type": "string" }, "role": { "type": "string", "enum": ["user", "admin"] }, "created_at": { "type": "string", "format": "date-time" } } },
                "MetadataPatch": { "type": "object", "additionalProperties": false, "properties": {
                    "title": { "type": "string", "minLength": 1, "maxLength": 100 },
                    "description": { "type": "string", "maxLength": 5000 },
                    "tags": { "type": "array", "maxItems": 10, "items": { "type": "string", "maxLength": 30 } },
                    "category": { "type": ["string", "null"], "maxLength": 50 },
                    "language": { "type": ["string", "null"], "maxLength": 50 },
                    "licence": { "type": ["string", "null"], "maxLength": 50 },
                    "privacy": { "type": "string", "enum": ["public", "unlisted", "private"] } } },
                "Video": { "type": "object", "required": ["id", "title", "state", "hls_url", "watch_url"], "properties": {
                    "id": { "type": "string", "format": "uuid" },
                    "title": { "type": "string" }, "description": { "type": "string" },
                    "tags": { "type": "array", "items": { "type": "string" } },
                    "category": { "type": ["string", "null"] }, "language": { "type": ["string", "null"] }, "licence": { "type": ["string", "null"] },
                    "privacy": { "type": "string", "enum": ["public", "unlisted", "private"] },
                    "state": { "type": "string", "enum": ["uploading", "processing", "ready", "failed"] },
                    "progress": { "type": "integer", "minimum": 0, "maximum": 100 },
                    "failure_reason": { "type": ["string", "null"], "description": "Why processing failed, for the owner." },
                    "playable": { "type": "boolean", "description": "True as soon as the first segments are published, while still processing." },
                    "hls_url": { "type": ["string", "null"], "description": "The HLS master playlist (a signed URL valid for 6 to 12 hours) once playable." },
                    "poster_url": { "type": ["string", "null"] },
                    "storyboard_url": { "type": ["string", "null"], "description": "WebVTT thumbnails track (cues point into a sprite with #xywh)." },
                    "duration_secs": { "type": ["number", "null"] }, "width": { "type": ["integer", "null"] }, "height": { "type": ["integer", "null"] },
                    "renditions": { "type": "array", "items": { "type": "object", "properties": {
                        "name": { "type": "string" }, "width": { "type": "integer" }, "height": { "type": "integer" }, "bandwidth": { "type": "integer" } } } },
                    "views": { "type": "integer" },
                    "channel": { "type": "object", "description": "The channel it is published in.", "properties": { "id": { "type": "string", "format": "uuid" }, "handle": { "type": "string" }, "display_name": { "type": "string" }, "username": { "type": "string", "description": "The owner's username." }, "url": { "type": "string", "description": "The channel's page." } } },
                    "created_at": { "type": "string", "format": "date-time" },
                    "published_at": { "type": ["string", "null"], "format": "date-time" },
                    "watch_url": { "type": "string", "description": "The video's page." },
                    "original": { "type": "object", "description": "Owner only.", "properties": { "filename": { "type": "string" }, "bytes": { "type": "integer" } } } } },
                "Job": { "type": "object", "properties": {
                    "id": { "type": "string", "format": "uuid" }, "kind": { "type": "string" },
                    "state": { "type": "string", "enum": ["queued", "running", "succeeded", "failed"] },
                    "attempts": { "type": "integer" }, "max_attempts": { "type": "integer" },
                    "run_at": { "type": "string", "format": "date-time" },
                    "lease_expires_at": { "type": ["string", "null"], "format": "date-time" },
                    "last_error": { "type": ["string", "null"], "description": "With ffmpeg's last words for transcodes." },
                    "key": { "type": ["string", "null"] },
                    "created_at": { "type": "string", "format": "date-time" }, "updated_at": { "type": "string", "format": "date-time" } } }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use turtlemen_identity::Scope;

    #[test]
    fn every_operation_names_known_scopes_and_every_scope_is_described() {
        let doc = super::document();
        let scopes = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"]["scopes"];
        for s in Scope::ALL {
            assert_eq!(scopes[s.as_str()], s.description(), "{s}");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let security = op["security"].as_array().unwrap_or_else(|| panic!("{method} {path}: no security"));
                for requirement in security {
                    for needed in requirement.get("oauth2").and_then(|v| v.as_array()).into_iter().flatten() {
                        let name = needed.as_str().unwrap();
                        assert!(Scope::parse(name).is_some(), "{method} {path}: {name}");
                        seen.insert(name.to_owned());
                    }
                }
            }
        }
        // `account` is the auth service's own API (`/auth/api/…`), not this document's.
        let api: std::collections::BTreeSet<String> =
            Scope::api().filter(|s| *s != Scope::Account).map(|s| s.as_str().to_owned()).collect();
        assert_eq!(seen, api, "every API scope is needed somewhere");
    }

    #[test]
    fn it_is_openapi_3_1_with_resolvable_references() {
        let doc = super::document();
        assert_eq!(doc["openapi"], "3.1.0");
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(doc["components"]["schemas"][name].is_object(), "unresolved schema {name}");
        }
    }
}
