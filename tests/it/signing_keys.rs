//! Token-signing keys in the database, on both stacks: a rotation reaches two running replicas
//! with no restart — each publishes the next key before either signs with it, tokens signed
//! before go on verifying, new tokens from either replica verify at the gateway and the API of
//! both, and the old key leaves the key set (and the database) once its tokens expired; keys of
//! an older version's data dir are imported once, and of two replicas starting at once on an
//! empty database one key wins; `signing_key_file` becomes the current key (at once on a first
//! start, after the publish lead otherwise); a damaged key row stops a start with a reason and
//! leaves running replicas on the keys they have.

use crate::auth::{client, sign_in, token, user};
use crate::helpers::{Stack, TestApp, fresh_settings, until_signing, well_before};
use crate::on_both_stacks;
use crate::scopes::tokens_for;
use std::time::{Duration, Instant};
use turtlemen::app::{self, Role};
use turtlemen::cli::AdminCommand;
use turtlemen_auth::tokens;
use turtlemen_config::Config;
use turtlemen_db::signing_keys::{StoredKey, list};

fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

async fn published(app: &TestApp) -> Vec<String> {
    let set: serde_json::Value = app.get("/auth/jwks").await.json().await.unwrap();
    set["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

/// Fresh access and ID tokens from `on` for a refresh token; returns them and the next refresh token.
async fn refresh(on: &TestApp, secret: &str, refresh_token: &str) -> (String, String, String) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    let (status, body) = token(on, &form, Some(("first-ann", secret))).await;
    assert_eq!(status, 200, "{body}");
    let field = |name: &str| body[name].as_str().unwrap().to_string();
    (field("access_token"), field("id_token"), field("refresh_token"))
}

/// `/api/v1/me` with `access` on `on`: checked by its gateway, then by its API.
async fn me(on: &TestApp, access: &str) -> u16 {
    on.client.get(on.url("/api/v1/me")).bearer_auth(access).send().await.unwrap().status().as_u16()
}

fn current<'a>(rows: &'a [StoredKey], alg: &str) -> &'a StoredKey {
    let now = chrono::Utc::now();
    rows.iter()
        .filter(|r| r.alg == alg && r.activated_at <= now && r.retired_at.is_none_or(|t| t > now))
        .max_by_key(|r| r.generation)
        .unwrap()
}

/// Waits until the instance's key reloads have deleted a key retired long ago (a reload deletes
/// such keys, then loads the rest).
async fn reloaded(app: &TestApp) {
    let jwk = tokens::es256_public_jwk(&tokens::generate_es256_pkcs8().unwrap()).unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::days(1);
    let bait = turtlemen_auth::signing_keys::retired_row(&jwk, long_ago).unwrap();
    assert!(turtlemen_db::signing_keys::insert_if_absent(&app.db, &bait).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while list(&app.db).await.unwrap().iter().any(|r| r.kid == bait.kid) {
        assert!(Instant::now() < deadline, "the keys were never reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The settings of another instance beside `app` (its data dir, database and session store).
fn beside(app: &TestApp) -> Config {
    let mut settings = app.settings.clone();
    settings.listen = Some("127.0.0.1:0".into());
    settings.public_url = Some(app.url(""));
    Config::resolve(settings).unwrap()
}

on_both_stacks! {
    async fn a_rotation_reaches_both_replicas_without_a_restart(app) {
        let b = app.replica().await;
        user(&app, "ann").await;
        let secret = client(&app, "first-ann", false).await.unwrap();
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;
        let first = tokens_for(&app, &browser, "first-ann", &secret, "openid offline_access").await;
        let old_access = first["access_token"].as_str().unwrap().to_string();
        let mut refresh_token = first["refresh_token"].as_str().unwrap().to_string();
        let old_kid = kid(&old_access);
        for on in [&app, &b] {
            assert_eq!(published(on).await[0], old_kid);
            assert_eq!(me(on, &old_access).await, 200);
        }

        // Rotate as an operator does, while both run.
        let timings = app.internals().signing_keys;
        let operator = beside(&app);
        let rotate = || turtlemen::cli::run_admin(AdminCommand::RotateSigningKey, &operator, app.internals());
        rotate().await.unwrap();
        let rows = list(&app.db).await.unwrap();
        let next = rows.iter().find(|r| r.alg == "ES256" && r.activated_at > chrono::Utc::now()).unwrap();
        let new_kid = next.kid.clone();
        let again = rotate().await.unwrap_err();
        assert!(again.to_string().contains("a rotation is under way"), "{again}");

        // Both replicas publish the next key before it signs; until then they sign with the old one.
        let signs_from = next.activated_at;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !published(&app).await.contains(&new_kid) || !published(&b).await.contains(&new_kid) {
            assert!(Instant::now() < deadline, "the next key was never published");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for on in [&app, &b] {
            let (access, id_token, next_refresh) = refresh(on, &secret, &refresh_token).await;
            refresh_token = next_refresh;
            if well_before(signs_from) {
                assert_eq!((kid(&access), kid(&id_token)), (old_kid.clone(), old_kid.clone()));
            }
        }
        // From its activation, each replica signs with it, by its own clock: no reload, no restart.
        until_signing(signs_from, timings.publish_lead.to_std().unwrap() * 2).await;
        let mut new_tokens = Vec::new();
        for on in [&app, &b] {
            let (access, id_token, next_refresh) = refresh(on, &secret, &refresh_token).await;
            refresh_token = next_refresh;
            assert_eq!((kid(&access), kid(&id_token)), (new_kid.clone(), new_kid.clone()));
            new_tokens.push(access);
        }

        // New tokens of either replica verify at the gateway and API of both; old ones too.
        for on in [&app, &b] {
            for access in [&new_tokens[0], &new_tokens[1], &old_access] {
                assert_eq!(me(on, access).await, 200);
            }
        }

        // Once every token of the old key expired, it leaves the set and the database.
        let deadline = Instant::now() + timings.retention.to_std().unwrap() + Duration::from_secs(10);
        loop {
            let gone = !published(&app).await.contains(&old_kid) && !published(&b).await.contains(&old_kid);
            let deleted = !list(&app.db).await.unwrap().iter().any(|r| r.kid == old_kid);
            if gone && deleted {
                break;
            }
            assert!(Instant::now() < deadline, "the retired key stayed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for on in [&app, &b] {
            assert_eq!(published(on).await[0], new_kid);
            let res = on.client.get(on.url("/auth/userinfo")).bearer_auth(&old_access).send().await.unwrap();
            assert_eq!(res.status(), 401, "the issuer no longer accepts the old key");
        }
        b.stop().await;
    }

    async fn a_damaged_key_row_stops_a_start_with_a_reason(app) {
        let kid = current(&list(&app.db).await.unwrap(), "ES256").kid.clone();
        let damage = async |sql: &str| {
            turtlemen_db::with_pool!(&app.db, |pool| {
                let query = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).bind(&kid);
                query.bind(b"TMv1 and then not a sealed key".to_vec()).execute(pool).await.unwrap();
            });
        };
        damage("UPDATE signing_keys SET private_key = $2 WHERE kid = $1").await;
        let refused = app::prepare(Role::All, &beside(&app), app.internals()).await.err().expect("refused");
        let message = format!("{refused:#}");
        assert!(message.contains(&format!("signing key {kid}")) && message.contains("does not open"), "{message}");

        damage("UPDATE signing_keys SET public_jwk = 'not a key' WHERE kid = $1 AND private_key = $2").await;
        let refused = app::prepare(Role::All, &beside(&app), app.internals()).await.err().expect("refused");
        let message = format!("{refused:#}");
        assert!(message.contains(&format!("signing key {kid}")) && message.contains("damaged"), "{message}");

        // The running instance keeps the keys it had, through its reloads: each deletes the keys
        // retired past their retention, so a bait row gone twice means a whole reload ran.
        for _ in 0..3 {
            reloaded(&app).await;
        }
        assert_eq!(published(&app).await[0], kid);
        user(&app, "ann").await;
        let secret = client(&app, "first-ann", false).await.unwrap();
        let browser = app.browser();
        sign_in(&app, &browser, "ann").await;
        let tokens = tokens_for(&app, &browser, "first-ann", &secret, "openid").await;
        let access = tokens["access_token"].as_str().unwrap();
        let signed_with = jsonwebtoken::decode_header(access).unwrap().kid;
        assert_eq!(signed_with.as_deref(), Some(kid.as_str()), "signed with the key in memory");
        assert_eq!(me(&app, access).await, 200);
    }
}

/// A data dir of an older version: its key files, and a retired key's public half.
fn legacy_secrets(data_dir: &std::path::Path) -> (String, String, String) {
    let secrets = data_dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let (es, rs) = (tokens::generate_es256_pkcs8().unwrap(), tokens::generate_rs256_pkcs8().unwrap());
    std::fs::write(secrets.join("signing-es256.p8"), &es).unwrap();
    std::fs::write(secrets.join("signing-rs256.p8"), &rs).unwrap();
    let retired = tokens::es256_public_jwk(&tokens::generate_es256_pkcs8().unwrap()).unwrap();
    // Retired "in an hour", so that the tests' short retention keeps it while they look.
    let list = serde_json::json!([{ "jwk": retired, "retired_at": chrono::Utc::now().timestamp() + 3600 }]);
    std::fs::write(secrets.join("retired-signing-keys.json"), list.to_string()).unwrap();
    let kid = |jwk: serde_json::Value| jwk["kid"].as_str().unwrap().to_string();
    (kid(tokens::es256_public_jwk(&es).unwrap()), kid(tokens::rs256_public_jwk(&rs).unwrap()), kid(retired))
}

async fn imports_once_and_the_key_file_wins(stack: Stack) {
    let Some((settings, dir, schema)) = fresh_settings(stack).await else { return };
    let (es_kid, rs_kid, retired_kid) = legacy_secrets(settings.data_dir.as_ref().unwrap());
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let rows = list(&app.db).await.unwrap();
    assert_eq!(current(&rows, "ES256").kid, es_kid);
    assert_eq!(current(&rows, "RS256").kid, rs_kid);
    let retired = rows.iter().find(|r| r.kid == retired_kid).expect("the retired key imported");
    assert!(retired.private_key.is_none() && retired.retired_at.is_some());
    let sealed = |r: &StoredKey| r.private_key.as_deref().is_none_or(turtlemen_auth::secret_box::SecretBox::is_sealed);
    assert!(rows.iter().all(sealed), "private keys sealed at rest");
    assert_eq!(published(&app).await[0], es_kid);

    // A replica with keys of its own in its own data dir uses the database's.
    let other = tempfile::tempdir().unwrap();
    legacy_secrets(other.path());
    let mut config = beside(&app);
    config.data_dir = other.path().to_path_buf();
    config.cookie_secret = None;
    std::fs::copy(app.data_dir.join("secrets/cookie.key"), other.path().join("secrets/cookie.key")).unwrap();
    let keys = turtlemen::data_dir::keys(&config).unwrap();
    let timings = app.internals().signing_keys;
    let signer = turtlemen::signing_keys::prepare(&app.db, &config, &keys, &timings).await.unwrap();
    assert_eq!(signer.kid(), es_kid);
    let newest = |rows: &[StoredKey]| rows.iter().filter(|r| r.alg == "ES256").filter_map(|r| r.generation).max();
    assert_eq!(newest(&list(&app.db).await.unwrap()), Some(1), "nothing imported twice");

    // An operator's key file is published from the next start and signs once the publish lead
    // passed, as a rotation's key does (every replica publishes it first); the old key retires then.
    let file = other.path().join("operator.p8");
    let operator = tokens::generate_es256_pkcs8().unwrap();
    std::fs::write(&file, &operator).unwrap();
    user(&app, "ann").await;
    let secret = client(&app, "first-ann", false).await.unwrap();
    let signing = async |app: &TestApp| {
        let browser = app.browser();
        sign_in(app, &browser, "ann").await;
        kid(tokens_for(app, &browser, "first-ann", &secret, "openid").await["access_token"].as_str().unwrap())
    };
    let app = app.restart_with(|s| s.signing_key_file = Some(file.clone())).await;
    let operator_kid = tokens::Signer::from_pkcs8(&operator).unwrap().kid().to_string();
    let rows = list(&app.db).await.unwrap();
    let signs_from = rows.iter().find(|r| r.kid == operator_kid).unwrap().activated_at;
    let lead = timings.publish_lead;
    let made = rows.iter().find(|r| r.kid == operator_kid).unwrap().created_at;
    assert!(signs_from - made >= lead - chrono::Duration::seconds(1), "activates a publish lead after the start");
    assert_eq!(current(&rows, "ES256").kid, es_kid);
    assert_eq!(rows.iter().find(|r| r.kid == es_kid).unwrap().retired_at, Some(signs_from));
    assert!(published(&app).await.contains(&operator_kid));
    let first = signing(&app).await;
    if well_before(signs_from) {
        assert_eq!(first, es_kid, "the file's key does not sign before its activation");
    }
    // A start within the lead leaves it as it is.
    let app = app.restart().await;
    let again = list(&app.db).await.unwrap();
    assert_eq!(again.iter().find(|r| r.kid == operator_kid).unwrap().activated_at, signs_from);
    assert_eq!(newest(&again), Some(2), "the same file twice changes nothing");
    until_signing(signs_from, lead.to_std().unwrap() * 2).await;
    assert_eq!(current(&list(&app.db).await.unwrap(), "ES256").kid, operator_kid);
    assert_eq!(published(&app).await[0], operator_kid);
    assert_eq!(signing(&app).await, operator_kid);
    let app = app.restart().await;
    assert_eq!(newest(&list(&app.db).await.unwrap()), Some(2), "nor a start after it");
    assert_eq!(signing(&app).await, operator_kid);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_data_dirs_are_imported_once_and_the_key_file_wins_embedded() {
    imports_once_and_the_key_file_wins(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_data_dirs_are_imported_once_and_the_key_file_wins_external() {
    imports_once_and_the_key_file_wins(Stack::External).await;
}

/// A first start with `signing_key_file` (no key in the database yet) signs with it at once.
async fn key_file_on_a_first_start(stack: Stack) {
    let Some((settings, dir, schema)) = fresh_settings(stack).await else { return };
    let file = dir.path().join("operator.p8");
    let operator = tokens::generate_es256_pkcs8().unwrap();
    std::fs::write(&file, &operator).unwrap();
    let settings = turtlemen_config::Settings { signing_key_file: Some(file), ..settings };
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let operator_kid = tokens::Signer::from_pkcs8(&operator).unwrap().kid().to_string();
    let rows = list(&app.db).await.unwrap();
    assert_eq!(current(&rows, "ES256").kid, operator_kid);
    assert_eq!(rows.iter().filter(|r| r.alg == "ES256").count(), 1, "{rows:?}");
    user(&app, "ann").await;
    let secret = client(&app, "first-ann", false).await.unwrap();
    let browser = app.browser();
    sign_in(&app, &browser, "ann").await;
    let tokens = tokens_for(&app, &browser, "first-ann", &secret, "openid").await;
    assert_eq!(kid(tokens["access_token"].as_str().unwrap()), operator_kid);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_signs_at_once_on_a_first_start_embedded() {
    key_file_on_a_first_start(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_signs_at_once_on_a_first_start_external() {
    key_file_on_a_first_start(Stack::External).await;
}

/// Two replicas, each with a key file of its own, starting at once on an empty database: one
/// key wins and both sign with it.
async fn first_start_race(stack: Stack) {
    let Some((settings, _dir, _schema)) = fresh_settings(stack).await else { return };
    let base = Config::resolve(settings).unwrap();
    turtlemen::data_dir::prepare(&base.data_dir).unwrap();
    let db = app::open_db(&base, true).await.unwrap();
    db.migrate().await.unwrap();
    let keys = turtlemen::data_dir::Keys { cookie: vec![7; 64] };
    let timings = turtlemen_auth::signing_keys::KeyTimings::default();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let configs: Vec<Config> = dirs
        .iter()
        .map(|d| {
            legacy_secrets(d.path());
            let mut config = base.clone();
            config.data_dir = d.path().to_path_buf();
            config
        })
        .collect();
    let (a, b) = tokio::join!(
        turtlemen::signing_keys::prepare(&db, &configs[0], &keys, &timings),
        turtlemen::signing_keys::prepare(&db, &configs[1], &keys, &timings)
    );
    assert_eq!(a.unwrap().kid(), b.unwrap().kid());
    let rows = list(&db).await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.alg == "ES256" && r.generation.is_some()).count(), 1, "{rows:?}");
    assert_eq!(rows.iter().filter(|r| r.alg == "RS256").count(), 1);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_agree_on_one_key_embedded() {
    first_start_race(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_agree_on_one_key_external() {
    first_start_race(Stack::External).await;
}
