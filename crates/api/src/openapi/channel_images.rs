//! The OpenAPI description of a channel's avatar and banner, merged into the document.

use super::{error_response, needs};
use serde_json::{Value, json};
use turtlemen_identity::Scope;

/// Adds the avatar and banner operations, and their URLs in the `Channel` schema, to `doc`.
pub(super) fn extend(doc: &mut Value) {
    let handle = json!({ "name": "handle", "in": "path", "required": true, "description": "The channel's handle (any case).", "schema": { "type": "string", "minLength": 3, "maxLength": 32 } });
    let channel_json = json!({ "application/json": { "schema": { "$ref": "#/components/schemas/Channel" } } });
    let image_body = json!({ "required": true, "description": "The image file itself (PNG, JPEG, GIF or WebP; a still picture; at most 2 MiB and 4096 × 4096 pixels). It is decoded and re-encoded as JPEG at fixed sizes; nothing else of it is kept.",
        "content": { "image/png": { "schema": { "type": "string", "contentMediaType": "image/png" } },
            "image/jpeg": { "schema": { "type": "string", "contentMediaType": "image/jpeg" } },
            "image/gif": { "schema": { "type": "string", "contentMediaType": "image/gif" } },
            "image/webp": { "schema": { "type": "string", "contentMediaType": "image/webp" } } } });
    for (picture, sizes) in [("avatar", "256 × 256, 96 × 96 and 48 × 48"), ("banner", "1920 × 320 and 960 × 160")]
    {
        let path = json!({
            "put": {
                "summary": format!("Sets the channel's {picture} ({sizes} JPEG; owner, or an admin with the admin scope)."),
                "security": needs(Some(Scope::ChannelsWrite)),
                "parameters": [handle.clone()],
                "requestBody": image_body.clone(),
                "responses": { "200": { "description": "The channel, with the new URL.", "content": channel_json.clone() },
                    "400": error_response("An empty or broken body (empty_body, invalid_body)."),
                    "401": error_response("Not signed in."),
                    "403": error_response("Not your channel (not_your_channel), or the token lacks channels:write (insufficient_scope)."),
                    "404": error_response("No channel has this handle."),
                    "413": error_response("Over 2 MiB (payload_too_large), or more pixels than allowed, read from the header before decoding (image_too_large)."),
                    "415": error_response("The Content-Type is not an image type (unsupported_media_type)."),
                    "422": error_response("not_an_image, image_truncated, animated_image or invalid_image; `message` says why.") }
            },
            "delete": {
                "summary": format!("Removes the channel's {picture} (a placeholder is shown)."),
                "security": needs(Some(Scope::ChannelsWrite)),
                "parameters": [handle.clone()],
                "responses": { "200": { "description": "The channel.", "content": channel_json.clone() },
                    "401": error_response("Not signed in."), "403": error_response("Not your channel, or the token lacks channels:write."),
                    "404": error_response("No channel has this handle.") }
            }
        });
        doc["paths"][format!("/channels/{{handle}}/{picture}")] = path;
    }
    if let Some(props) = doc["components"]["schemas"]["Channel"]["properties"].as_object_mut() {
        props.insert("avatar_url".into(), json!({ "type": ["string", "null"], "description": "The 256 × 256 avatar (JPEG, cached for ever; -96.jpg and -48.jpg for smaller), or null." }));
        props.insert("banner_url".into(), json!({ "type": ["string", "null"], "description": "The 1920 × 320 banner (JPEG, cached for ever; -960.jpg for 960 × 160), or null." }));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_picture_operations_are_described() {
        let doc = super::super::document();
        for picture in ["avatar", "banner"] {
            for method in ["put", "delete"] {
                let op = &doc["paths"][format!("/channels/{{handle}}/{picture}")][method];
                assert!(op["responses"]["200"].is_object(), "{method} {picture}");
                assert!(op["security"].is_array(), "{method} {picture}");
            }
        }
        assert!(doc["components"]["schemas"]["Channel"]["properties"]["avatar_url"].is_object());
    }
}
