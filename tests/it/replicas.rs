//! An upload started on one API replica and resumed on another, on both stacks: the second
//! replica has a data dir of its own and shares only what a deployment shares (the database,
//! the session store and the media folder). Each sees the other's committed offset, the bytes
//! join into an original identical to the file sent, and the transcode is queued once.
//! (Every role as processes behind HAProxy, on S3, with replicas killed: `scale_out.rs`.)

use crate::moderation::bearer;
use crate::on_both_stacks;
use crate::uploads::{metadata, signed_in};
use reqwest::{Method, StatusCode};
use turtlemen::app::Role;

fn sample(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

on_both_stacks! {
    without_worker;
    async fn an_upload_started_on_one_api_replica_resumes_on_another(app) {
        let _ann = signed_in(&app, "ann").await;
        let token = bearer(&app, "ann").await;
        // Replica B: the API role alone, its own data dir and keys, the shared stores.
        let media = app.data_dir.join("media");
        let other = tempfile::tempdir().unwrap();
        let settings = turtlemen_config::Settings {
            data_dir: Some(other.path().join("data")),
            listen: Some("127.0.0.1:0".into()),
            public_url: Some(format!("http://{}", app.addr)),
            upstream_auth: Some(format!("http://{}", app.addr)),
            database_url: Some(match &app.settings.database_url {
                Some(url) => url.clone(),
                None => format!("sqlite://{}", app.data_dir.join("turtlemen.db").display()),
            }),
            storage_url: Some(format!("file://{}", media.display())),
            ..app.settings.clone()
        };
        let (b_addr, _b_stop, _) = crate::roles::start(Role::Api, settings).await;
        let a = |path: &str| format!("http://{}{path}", app.addr);
        let b = |path: &str| format!("http://{b_addr}{path}");
        let tus = |method: Method, url: String| {
            app.client.request(method, url).header("tus-resumable", "1.0.0").bearer_auth(&token)
        };

        let bytes = sample(3 * 1024 * 1024 + 77);
        let half = bytes.len() / 2;
        let res = tus(Method::POST, a("/api/v1/uploads"))
            .header("upload-length", bytes.len().to_string())
            .header("upload-metadata", metadata(&[("filename", "clip.mp4"), ("title", "Two replicas")]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let path = res.headers()["location"].to_str().unwrap().to_owned();
        let video = res.headers()["video-id"].to_str().unwrap().to_owned();
        let patch = |url: String, at: usize, body: Vec<u8>| {
            tus(Method::PATCH, url)
                .header("content-type", "application/offset+octet-stream")
                .header("upload-offset", at.to_string())
                .body(body)
        };
        let res = patch(a(&path), 0, bytes[..half].to_vec()).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);

        // B knows the offset A committed, and refuses a chunk at any other.
        let res = tus(Method::HEAD, b(&path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["upload-offset"], half.to_string().as_str());
        let res = patch(b(&path), half + 1, bytes[half + 1..].to_vec()).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        let res = patch(b(&path), half, bytes[half..].to_vec()).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "{:?}", res.text().await);
        assert_eq!(res.headers()["upload-offset"], bytes.len().to_string().as_str());

        // A sees it complete; the original is the file sent; one transcode is queued.
        let res = tus(Method::HEAD, a(&path)).send().await.unwrap();
        assert_eq!(res.headers()["upload-offset"], bytes.len().to_string().as_str());
        let original = std::fs::read(media.join("videos").join(&video).join("original")).unwrap();
        assert!(original == bytes, "the original is byte-identical to the file sent");
        assert!(!media.join("uploads").join(path.rsplit('/').next().unwrap()).exists(), "staging moved");
        let res = app.client.get(a(&format!("/api/v1/videos/{video}"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.json::<serde_json::Value>().await.unwrap()["state"], "processing");
        let filter = turtlemen_db::jobs::JobFilter { kind: Some(turtlemen_api::uploads::TRANSCODE.as_str()), ..Default::default() };
        let queued = turtlemen_db::jobs::list(&app.db, &filter).await.unwrap();
        assert_eq!(queued.len(), 1, "one transcode for the one upload");
    }
}
