//! The OpenAPI description of search and its suggestions, merged into the document.

use super::community::merge;
use super::error_response;
use serde_json::{Value, json};

fn q_param(description: &str) -> Value {
    json!({ "name": "q", "in": "query", "required": true, "description": description, "schema": { "type": "string", "maxLength": 200 } })
}

fn enum_param(name: &str, description: &str, values: &[(&str, &str)]) -> Value {
    let values: Vec<&str> = values.iter().map(|(v, _)| *v).collect();
    json!({ "name": name, "in": "query", "description": description, "schema": { "type": "string", "enum": values } })
}

/// Adds the paths and schemas to `doc`.
pub(super) fn extend(doc: &mut Value) {
    use crate::search::{DATES, DURATIONS, MAX_PAGE, SORTS};
    let e400 = error_response(
        "Bad search: `missing_query`, `invalid_query` (too long, control characters, no word), `invalid_filter`, `invalid_page`.",
    );
    let paths = json!({
        "/search": { "get": {
            "summary": "Public, playable videos and channels matching every word of q. Anyone may search; the answer is the same for everyone.",
            "security": [],
            "parameters": [
                q_param("Words to find in titles, tags, descriptions, channel names and handles. Operators are not interpreted: every character that is not a letter or digit separates words."),
                enum_param("date", "Uploaded within the last hour, 24 hours (today), week, month or year.", DATES),
                enum_param("duration", "short: under 4 minutes; medium: 4 to 20; long: over 20.", DURATIONS),
                { "name": "channel", "in": "query", "description": "Only this channel's videos (a handle; an unknown one matches nothing).", "schema": { "type": "string", "maxLength": 64 } },
                enum_param("sort", "Best match first (default), newest first, or most viewed first.", SORTS),
                { "name": "page", "in": "query", "description": "Page number (20 videos each); channels come with page 1.", "schema": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE } }
            ],
            "responses": { "200": { "description": "Results.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SearchResults" } } } }, "400": e400 }
        } },
        "/search/suggestions": { "get": {
            "summary": "Channels and video titles holding every typed word, the last as a prefix (two letters or more): for a search box as one types.",
            "security": [],
            "parameters": [{ "name": "q", "in": "query", "description": "The text typed so far (no word yet: an empty list).", "schema": { "type": "string", "maxLength": 200 } }],
            "responses": { "200": { "description": "Suggestions, channels first.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Suggestions" } } } },
                "400": error_response("`invalid_query`: too long, or control characters.") }
        } }
    });
    let schemas = json!({
        "SearchResults": { "type": "object", "required": ["videos", "channels", "page", "next_page"], "properties": {
            "videos": { "type": "array", "items": { "$ref": "#/components/schemas/Video" } },
            "channels": { "type": "array", "items": { "$ref": "#/components/schemas/Channel" } },
            "page": { "type": "integer", "minimum": 1 },
            "next_page": { "type": ["integer", "null"], "description": "The next page's number; null on the last." } } },
        "Suggestions": { "type": "object", "required": ["suggestions"], "properties": {
            "suggestions": { "type": "array", "items": { "type": "object", "required": ["kind", "text", "url"], "properties": {
                "kind": { "type": "string", "enum": ["video", "channel"] },
                "text": { "type": "string", "description": "The video's title or the channel's display name." },
                "handle": { "type": "string", "description": "The channel's handle (channels only)." },
                "url": { "type": "string", "description": "The watch page or the channel page." } } } } } }
    });
    merge(doc, paths, schemas);
}

#[cfg(test)]
mod tests {
    #[test]
    fn search_is_described() {
        let doc = super::super::document();
        for path in ["/search", "/search/suggestions"] {
            assert!(doc["paths"][path]["get"]["responses"]["200"].is_object(), "{path}");
        }
        assert!(doc["components"]["schemas"]["SearchResults"].is_object());
    }
}
