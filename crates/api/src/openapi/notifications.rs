//! The OpenAPI description of the signed-in user's notifications and their settings, merged
//! into the document.

use super::{error_response, needs};
use serde_json::{Value, json};
use turtlemen_identity::Scope;

/// Adds the paths and schemas to `doc`.
pub(super) fn extend(doc: &mut Value) {
    let e400 = error_response("Malformed request; `message` says what to fix.");
    let e401 = error_response("Not signed in.");
    let e403 = error_response("`insufficient_scope`: the token lacks the scope this needs.");
    let e415 = error_response("The body is not JSON.");
    let settings = json!({ "application/json": { "schema": { "$ref": "#/components/schemas/NotificationSettings" } } });
    let paths = json!({
        "/me/notifications": { "get": {
            "summary": "The signed-in user's notifications, newest first. A video that is no longer public or playable, or was deleted, is left out.",
            "security": needs(Some(Scope::NotificationsRead)),
            "parameters": [
                { "name": "cursor", "in": "query", "description": "The `next_cursor` of the previous page, as given (opaque, signed: anything else is 400 invalid_cursor).", "schema": { "type": "string", "maxLength": 100 } },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100 } }],
            "responses": { "200": { "description": "Notifications.", "content": { "application/json": { "schema": { "type": "object", "required": ["notifications", "next_cursor"], "properties": {
                "notifications": { "type": "array", "items": { "$ref": "#/components/schemas/Notification" } },
                "next_cursor": { "type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last." } } } } } },
                "400": e400, "401": e401, "403": e403 }
        } },
        "/me/notifications/unread": { "get": {
            "summary": "How many notifications are unread, counted up to 100.",
            "security": needs(Some(Scope::NotificationsRead)),
            "responses": { "200": { "description": "The count.", "content": { "application/json": { "schema": { "type": "object", "required": ["unread"], "properties": {
                "unread": { "type": "integer", "minimum": 0, "maximum": 100 } } } } } }, "401": e401, "403": e403 }
        } },
        "/me/notifications/read": { "post": {
            "summary": "Marks notifications read: the ids given (ids not the caller's change nothing), or all (JSON only).",
            "security": needs(Some(Scope::NotificationsWrite)),
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "oneOf": [
                { "type": "object", "additionalProperties": false, "required": ["ids"], "properties": { "ids": { "type": "array", "maxItems": 100, "items": { "type": "string", "format": "uuid" } } } },
                { "type": "object", "additionalProperties": false, "required": ["all"], "properties": { "all": { "const": true } } }] } } } },
            "responses": { "200": { "description": "How many changed, and the unread count after.", "content": { "application/json": { "schema": { "type": "object", "required": ["marked", "unread"], "properties": {
                "marked": { "type": "integer", "minimum": 0 }, "unread": { "type": "integer", "minimum": 0, "maximum": 100 } } } } } },
                "400": e400, "401": e401, "403": e403, "413": error_response("The body is too large."), "415": e415 }
        } },
        "/me/notifications/settings": {
            "get": {
                "summary": "Which kinds of notification the signed-in user gets (every kind unless turned off).",
                "security": needs(Some(Scope::NotificationsRead)),
                "responses": { "200": { "description": "The settings.", "content": settings }, "401": e401, "403": e403 }
            },
            "put": {
                "summary": "Turns kinds of notification on or off; kinds not named keep their setting (JSON only).",
                "security": needs(Some(Scope::NotificationsWrite)),
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "properties": {
                    "new_video": { "type": "boolean" }, "new_subscriber": { "type": "boolean" } } } } } },
                "responses": { "200": { "description": "The settings now.", "content": settings }, "400": e400, "401": e401, "403": e403, "415": e415 }
            }
        }
    });
    let schemas = json!({
        "Notification": { "type": "object", "required": ["id", "kind", "read", "created_at", "channel"], "properties": {
            "id": { "type": "string", "format": "uuid" },
            "kind": { "type": "string", "enum": ["new_video", "new_subscriber"] },
            "read": { "type": "boolean" },
            "created_at": { "type": "string", "format": "date-time" },
            "channel": { "type": "object", "required": ["id", "handle", "display_name", "url"], "description": "new_video: the channel that published; new_subscriber: your channel they followed.", "properties": {
                "id": { "type": "string", "format": "uuid" }, "handle": { "type": "string" }, "display_name": { "type": "string" }, "url": { "type": "string" } } },
            "video": { "type": "object", "required": ["id", "title", "watch_url"], "description": "new_video only.", "properties": {
                "id": { "type": "string", "format": "uuid" }, "title": { "type": "string" }, "watch_url": { "type": "string" } } },
            "subscriber": { "type": "object", "required": ["username", "display_name", "url"], "description": "new_subscriber only.", "properties": {
                "username": { "type": "string" }, "display_name": { "type": "string" }, "url": { "type": "string" } } } } },
        "NotificationSettings": { "type": "object", "required": ["new_video", "new_subscriber"], "properties": {
            "new_video": { "type": "boolean", "description": "A channel you follow published a video." },
            "new_subscriber": { "type": "boolean", "description": "Someone subscribed to your channel." } } }
    });
    super::merge(doc, paths, schemas);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_notification_operations_are_described() {
        let doc = super::super::document();
        for (path, method) in [
            ("/me/notifications", "get"),
            ("/me/notifications/unread", "get"),
            ("/me/notifications/read", "post"),
            ("/me/notifications/settings", "get"),
            ("/me/notifications/settings", "put"),
        ] {
            assert!(doc["paths"][path][method]["responses"].is_object(), "{method} {path}");
        }
        assert!(doc["components"]["schemas"]["Notification"].is_object());
        assert!(doc["paths"]["/me/feed"]["get"].is_object(), "the community paths stay");
    }
}
