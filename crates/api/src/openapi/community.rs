//! The OpenAPI description of channels, subscriptions and the feed, merged into the document.

use super::{error_response, needs};
use serde_json::{Value, json};
use turtlemen_identity::Scope;

fn handle_param() -> Value {
    json!({ "name": "handle", "in": "path", "required": true, "description": "The channel's handle (any case).", "schema": { "type": "string", "minLength": 3, "maxLength": 32 } })
}

fn cursor_param() -> Value {
    json!({ "name": "cursor", "in": "query", "description": "The `next_cursor` of the previous page, as given (opaque, signed: anything else is 400 invalid_cursor).", "schema": { "type": "string", "maxLength": 100 } })
}

fn limit_param() -> Value {
    json!({ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100 } })
}

/// Adds the paths and schemas to `doc`.
pub(super) fn extend(doc: &mut Value) {
    let e400 = error_response("Malformed request; `message` says what to fix.");
    let e401 = error_response("Not signed in.");
    let e403 = error_response("Not your channel.");
    let e404 = error_response("No channel has this handle.");
    let channel = json!({ "$ref": "#/components/schemas/Channel" });
    let channel_json = json!({ "application/json": { "schema": channel } });
    let video_page = json!({ "application/json": { "schema": { "type": "object", "required": ["videos", "next_cursor"], "properties": {
        "videos": { "type": "array", "items": { "$ref": "#/components/schemas/Video" } },
        "next_cursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last." } } } } });
    let paths = json!({
        "/channels": { "post": {
            "summary": "Creates another channel for the signed-in user (JSON only).",
            "security": needs(Some(Scope::ChannelsWrite)),
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "required": ["handle"], "properties": {
                "handle": { "type": "string", "description": "Letters, digits, '_', '-', '.'; 3 to 32; unique across usernames and handles, case-insensitively; reserved words refused." },
                "display_name": { "type": "string", "maxLength": 64 },
                "description": { "type": "string", "maxLength": 5000 } } } } } },
            "responses": { "201": { "description": "The channel.", "content": channel_json }, "400": e400, "401": e401,
                "409": error_response("The handle is taken (handle_taken)."), "415": error_response("The body is not JSON.") }
        } },
        "/channels/{handle}": {
            "get": {
                "summary": "A channel's public profile.",
                "security": [],
                "parameters": [handle_param()],
                "responses": { "200": { "description": "The channel.", "content": channel_json }, "404": e404 }
            },
            "patch": {
                "summary": "Changes a channel's display name, description and links (owner or admin; JSON only).",
            "security": needs(Some(Scope::ChannelsWrite)),
                "parameters": [handle_param()],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ChannelPatch" } } } },
                "responses": { "200": { "description": "The changed channel.", "content": channel_json }, "400": e400, "401": e401, "403": e403, "404": e404,
                    "413": error_response("The body is too large."), "415": error_response("The body is not JSON.") }
            }
        },
        "/channels/{handle}/videos": { "get": {
            "summary": "A channel's public, playable videos.",
            "security": [],
            "parameters": [handle_param(),
                { "name": "sort", "in": "query", "schema": { "type": "string", "enum": ["newest", "views"] } },
                cursor_param(), limit_param()],
            "responses": { "200": { "description": "Videos.", "content": video_page }, "400": e400, "404": e404 }
        } },
        "/me/subscriptions": { "get": {
            "summary": "The channels the signed-in user follows, newest subscription first.",
            "security": needs(Some(Scope::SubscriptionsRead)),
            "parameters": [cursor_param(), limit_param()],
            "responses": { "200": { "description": "Subscriptions.", "content": { "application/json": { "schema": { "type": "object", "required": ["subscriptions", "next_cursor"], "properties": {
                "subscriptions": { "type": "array", "items": { "type": "object", "properties": { "channel": channel, "subscribed_at": { "type": "string", "format": "date-time" } } } },
                "next_cursor": { "type": ["string", "null"] } } } } } }, "400": e400, "401": e401 }
        } },
        "/me/subscriptions/{handle}": {
            "put": {
                "summary": "Follows a channel (idempotent). Following your own channel is refused (own_channel).",
            "security": needs(Some(Scope::SubscriptionsWrite)),
                "parameters": [handle_param()],
                "responses": { "204": { "description": "Followed." }, "400": e400, "401": e401, "404": e404 }
            },
            "delete": {
                "summary": "Stops following a channel (idempotent).",
            "security": needs(Some(Scope::SubscriptionsWrite)),
                "parameters": [handle_param()],
                "responses": { "204": { "description": "Not followed." }, "401": e401, "404": e404 }
            }
        },
        "/me/feed": { "get": {
            "summary": "Newest public, playable videos of the channels the signed-in user follows.",
            "security": needs(Some(Scope::SubscriptionsRead)),
            "parameters": [cursor_param(), limit_param()],
            "responses": { "200": { "description": "Videos, newest first.", "content": video_page }, "400": e400, "401": e401 }
        } }
    });
    let schemas = json!({
        "Channel": { "type": "object", "required": ["id", "handle", "display_name", "subscriber_count", "owner"], "properties": {
            "id": { "type": "string", "format": "uuid" },
            "handle": { "type": "string" },
            "display_name": { "type": "string" },
            "description": { "type": "string" },
            "links": { "type": "array", "items": { "$ref": "#/components/schemas/ChannelLink" } },
            "subscriber_count": { "type": "integer", "minimum": 0 },
            "owner": { "type": "string", "description": "The owner's username." },
            "url": { "type": "string", "description": "The channel's page, /@handle." },
            "created_at": { "type": "string", "format": "date-time" },
            "subscribed": { "type": "boolean", "description": "Whether the signed-in caller follows it (absent for visitors)." } } },
        "ChannelLink": { "type": "object", "required": ["title", "url"], "properties": {
            "title": { "type": "string", "maxLength": 50 }, "url": { "type": "string", "format": "uri", "description": "http or https, without credentials." } } },
        "ChannelPatch": { "type": "object", "additionalProperties": false, "properties": {
            "display_name": { "type": "string", "minLength": 1, "maxLength": 64 },
            "description": { "type": "string", "maxLength": 5000 },
            "links": { "type": "array", "maxItems": 5, "items": { "$ref": "#/components/schemas/ChannelLink" } } } }
    });
    merge(doc, paths, schemas);
}

/// Adds `paths` and `schemas` (JSON objects) to the document's own.
pub(super) fn merge(doc: &mut Value, paths: Value, schemas: Value) {
    for (section, add) in [("paths", paths), ("components/schemas", schemas)] {
        let mut target = &mut *doc;
        for part in section.split('/') {
            target = &mut target[part];
        }
        if let (Some(target), Value::Object(add)) = (target.as_object_mut(), add) {
            target.extend(add);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_community_operations_are_described() {
        let doc = super::super::document();
        for (path, method) in [
            ("/channels", "post"),
            ("/channels/{handle}", "get"),
            ("/channels/{handle}", "patch"),
            ("/channels/{handle}/videos", "get"),
            ("/me/subscriptions", "get"),
            ("/me/subscriptions/{handle}", "put"),
            ("/me/subscriptions/{handle}", "delete"),
            ("/me/feed", "get"),
        ] {
            assert!(doc["paths"][path][method]["responses"].is_object(), "{method} {path}");
        }
        assert!(doc["paths"]["/videos/{id}"]["get"].is_object(), "the core paths stay");
        assert!(doc["components"]["schemas"]["Channel"].is_object());
        assert!(doc["components"]["schemas"]["Video"].is_object());
    }
}
