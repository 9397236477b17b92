//! The OpenAPI document against the running server, on both stacks: every documented operation
//! is routed and every other method on a documented path is 405; what the document says about
//! signing in holds (an operation that needs a token refuses a visitor, a public one serves
//! them); and schemathesis (PyPI, pinned in scripts/install-deps.sh) runs every operation with a
//! signed-in admin's session and seeded objects, failing the test on any 5xx or any answer that
//! breaks the document.

use crate::on_both_stacks;
use crate::uploads::{create, signed_in, signed_in_as};
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};
use turtlemen_db::jobs::{self, JobKind, NewJob};
use turtlemen_domain::Role;

const METHODS: [&str; 7] = ["get", "head", "post", "put", "patch", "delete", "options"];

/// `path` with its parameters filled in.
fn concrete(path: &str, id: &str, handle: &str) -> String {
    format!("/api/v1{}", path.replace("{id}", id).replace("{handle}", handle))
}

on_both_stacks! {
    async fn every_route_is_documented_and_the_document_says_who_may_call(app) {
        let (status, doc) = app.get_json("/api/v1/openapi.json").await;
        assert_eq!(status, 200);
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        for path in ["/uploads", "/uploads/{id}", "/videos/{id}", "/me/videos", "/admin/jobs", "/channels/{handle}", "/me/feed"] {
            assert!(paths.contains_key(path), "{path} documented");
        }
        let unknown = uuid::Uuid::now_v7().to_string();
        for (path, item) in paths {
            let url = app.url(&concrete(path, &unknown, "nobody-here"));
            for method in METHODS {
                let documented = item.get(method).is_some() || (method == "head" && item.get("get").is_some());
                let res = app.client.request(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), &url)
                    .header("tus-resumable", "1.0.0").send().await.unwrap();
                let status = res.status();
                if !documented {
                    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is routed but not documented");
                    continue;
                }
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed");
                let Some(op) = item.get(method) else { continue };
                // A visitor: refused where the document asks for a token, served otherwise.
                let security = op["security"].as_array().unwrap();
                let public = security.is_empty() || security.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty()));
                if public {
                    assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path} is documented as public");
                } else if path.starts_with("/admin/") {
                    assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: no admin route for a visitor");
                } else {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} is documented as needing a token");
                }
                let code = status.as_str();
                assert!(op["responses"].get(code).is_some(), "{method} {path}: {code} is not documented");
            }
        }
    }

    async fn schemathesis_finds_nothing(app) {
        let Some(st) = schemathesis() else { return };
        // Someone else's channel to follow; an admin who may call everything, with a video, an
        // upload in progress and a job.
        let _bob = signed_in(&app, "bob").await;
        let admin = signed_in_as(&app, "ada", Role::Admin).await;
        let (upload, video) = create(&app, &admin, 1000).await;
        let upload = upload.rsplit('/').next().unwrap().to_owned();
        let res = app.client.patch(app.url(&format!("/api/v1/videos/{video}"))).header("cookie", admin.cookie_header())
            .json(&serde_json::json!({"privacy": "public"})).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = app.client.post(app.url(&format!("/api/v1/videos/{video}/comments"))).header("cookie", admin.cookie_header())
            .json(&serde_json::json!({"text": "a comment to test"})).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let comment = res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        let payload = serde_json::json!({});
        let job = jobs::enqueue(&app.db, &NewJob::new(JobKind::new("openapi_test"), &payload)).await.unwrap().id;

        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("schemathesis.toml");
        std::fs::write(&config, format!(r#"
[[operations]]
include-path-regex = "^/videos/"
parameters = {{ "path.id" = "{video}" }}

[[operations]]
include-path-regex = "^/uploads/"
parameters = {{ "path.id" = "{upload}" }}

[[operations]]
include-path-regex = "^/comments/"
parameters = {{ "path.id" = "{comment}" }}

[[operations]]
include-path-regex = "^/admin/jobs/"
parameters = {{ "path.id" = "{job}" }}

[[operations]]
include-path-regex = "^/(channels|me/subscriptions)/"
parameters = {{ "path.handle" = "bob" }}

[[operations]]
include-path-regex = "^/me/history/[{{]video_id"
parameters = {{ "path.video_id" = "{video}" }}

[[operations]]
include-path-regex = "^/playlists/[{{]id[}}](/items)?$"
parameters = {{ "path.id" = "WL" }}

[[operations]]
include-path-regex = "^/playlists/[{{]id[}}]/items/[{{]item_id"
parameters = {{ "path.id" = "WL", "path.item_id" = "{video}" }}
"#)).unwrap();
        // tus chunks (`application/offset+octet-stream`) and channel pictures (`image/*`):
        // schemathesis sends the generated bytes as they are.
        std::fs::write(dir.path().join("turtlemen_hooks.py"), r#"
import schemathesis

@schemathesis.serializer("application/offset+octet-stream", "image/png", "image/jpeg", "image/gif", "image/webp")
def offset_octet_stream(ctx, value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, list):
        return bytes(int(v) % 256 for v in value if isinstance(v, int))
    return str(value).encode()
"#).unwrap();
        let started = Instant::now();
        let mut run = tokio::process::Command::new(st);
        run.arg("--config-file").arg(&config)
            .arg("run").arg(app.url("/api/v1/openapi.json"))
            .arg("--url").arg(app.url("/api/v1"))
            .arg("--header").arg(format!("Cookie: {}", admin.cookie_header()))
            .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"])
            .args(["--phases", "examples,coverage,fuzzing", "--max-examples", "25", "--seed", "1", "--workers", "2"])
            .args(["--request-timeout", "20", "--suppress-health-check", "all", "--no-color"])
            .env("SCHEMATHESIS_HOOKS", "turtlemen_hooks")
            .env("PYTHONPATH", dir.path())
            .current_dir(dir.path())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(480), run.output()).await
            .expect("schemathesis finishes within 8 minutes").expect("schemathesis runs");
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        eprintln!("schemathesis ran for {:.1} s", started.elapsed().as_secs_f64());
        assert!(out.status.success(), "schemathesis found problems:\n{text}");
    }
}

/// The schemathesis command, or `None` (the test skipped) where it is not installed — a
/// failure under CI (`TURTLEMEN_TEST_REQUIRE_EXTERNAL`).
fn schemathesis() -> Option<&'static str> {
    let found = std::process::Command::new("st").arg("--version").output().is_ok_and(|o| o.status.success());
    if found {
        return Some("st");
    }
    assert!(
        std::env::var_os("TURTLEMEN_TEST_REQUIRE_EXTERNAL").is_none(),
        "schemathesis is not installed (scripts/install-deps.sh installs it)"
    );
    eprintln!("skipped: schemathesis is not installed");
    None
}
