//! Building and running the roles.
//!
//! [`prepare`] does everything that can fail *before* anything is created: external services
//! (PostgreSQL, Redis) are reached first, then the listener is bound, and only then is the data
//! folder created, secrets generated and the SQLite database opened and migrated. So a wrong URL,
//! a server that is down or a port in use leaves nothing behind. [`Server::run`] then serves
//! until the shutdown future resolves and drains within the configured bound.

use anyhow::Context;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use turtlemen_auth::AuthInner;
use turtlemen_auth::signing_keys::KeyTimings;
use turtlemen_config::{Config, DatabaseUrl, HttpLimits, SessionUrl};
use turtlemen_db::{Db, DbOptions};
use turtlemen_gateway::dispatch::Target;
use turtlemen_gateway::proxy::Pool;
use turtlemen_gateway::routes::{self, RouteDefaults};
use turtlemen_gateway::{GatewayConfig, GatewayInner};
use turtlemen_http::files::FileResponder;
use turtlemen_http::health::Readiness;
use turtlemen_http::layers;
use turtlemen_http::server::{App, Front};
use turtlemen_identity::{InProcess, Jwks, Transport};
use turtlemen_session::{Sessions, StoreOptions};

/// How often the operational figures of `/metrics` are taken.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Which part of the system a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every role in one process.
    All,
    Gateway,
    Auth,
    Api,
    Worker {
        concurrency: usize,
        lease: std::time::Duration,
        /// Where the worker answers `/healthz`, `/readyz` and `/metrics` (and nothing else);
        /// `None`: it listens nowhere.
        health_listen: Option<SocketAddr>,
    },
}

impl Role {
    /// The `service.name` of the process's exported spans.
    pub fn service_name(&self) -> &'static str {
        match self {
            Role::All => "turtlemen",
            Role::Gateway => "turtlemen-gateway",
            Role::Auth => "turtlemen-auth",
            Role::Api => "turtlemen-api",
            Role::Worker { .. } => "turtlemen-worker",
        }
    }
}

/// Knobs that are not part of the user-facing configuration.
#[derive(Debug, Clone)]
pub struct Internals {
    /// Prefix of every key in a Redis session store (tests use one each).
    pub session_prefix: String,
    /// How long the gateway reuses a session read from the store (tests that change the store
    /// behind the gateway's back set zero).
    pub session_cache_ttl: std::time::Duration,
    /// How often the API server looks for expired uploads (tests shorten it).
    pub upload_sweep_every: std::time::Duration,
    /// Whether `serve` runs a worker in its process (tests that drive workers themselves turn
    /// it off).
    pub embedded_worker: bool,
    /// How often the auth service reloads its signing keys, how long a rotation publishes the
    /// next key before it signs, how long retired keys stay (tests shorten them).
    pub signing_keys: KeyTimings,
}

impl Default for Internals {
    fn default() -> Self {
        Self {
            session_prefix: "turtlemen:".into(),
            session_cache_ttl: std::time::Duration::from_secs(2),
            upload_sweep_every: turtlemen_api::UPLOAD_SWEEP_EVERY,
            embedded_worker: true,
            signing_keys: KeyTimings::default(),
        }
    }
}

/// What the auth service's key reloads need.
struct KeyReload {
    ring: Arc<turtlemen_auth::signing_keys::KeyRing>,
    db: Db,
    sealer: Arc<turtlemen_auth::secret_box::SecretBox>,
    timings: KeyTimings,
}

/// A prepared process: bound, migrated, ready to serve.
pub struct Server {
    listener: Option<TcpListener>,
    /// `metrics_listen`'s listener and what it answers (`/metrics` and the probes).
    metrics: Option<(TcpListener, Router)>,
    /// The span exporter (`otlp_endpoint`): the worker's sink, flushed at the end of `run`.
    spans: Option<Arc<crate::telemetry::OtlpSpans>>,
    tls: Option<Arc<turtlemen_http::tls::ReloadingTls>>,
    /// Media answered with `sendfile(2)` (API server and `serve`, on local storage).
    files: Option<Arc<dyn FileResponder>>,
    /// What the main listener serves.
    app: App,
    limits: HttpLimits,
    db: Option<Db>,
    sessions: Option<Sessions>,
    /// The media worker, and the folder of its slot (`workers/` in the data dir).
    worker: Option<(Db, turtlemen_worker::WorkerConfig, turtlemen_worker::transcode::Transcoder, std::path::PathBuf)>,
    /// The API server's periodic chores (view counts, expired uploads).
    janitor: Option<(turtlemen_api::ApiState, std::time::Duration)>,
    /// The auth service's signing keys, reloaded from the database.
    signing_keys: Option<KeyReload>,
    /// The RTMP ingest's listener and the lives it feeds.
    rtmp: Option<(TcpListener, Arc<turtlemen_live::Hub>)>,
    /// The RTMPS ingest's listener and certificate, feeding the same lives.
    rtmps: Option<(TcpListener, turtlemen_live::rtmp::TlsConfigs)>,
    /// What `/metrics`' operational figures are taken from, and whether they include the work
    /// in progress.
    sampler: (Readiness, Option<Db>, bool),
}

/// Opens the application database. SQLite files are created only when `create` is set.
pub async fn open_db(config: &Config, create: bool) -> anyhow::Result<Db> {
    let url = match &config.database {
        DatabaseUrl::Sqlite(url) => url.clone(),
        DatabaseUrl::Postgres(url) => url.expose().to_string(),
    };
    let opts = DbOptions {
        url,
        max_connections: config.database_max_connections,
        search_path: None,
        create_if_missing: create,
    };
    Ok(Db::connect(&opts).await?)
}

/// Brings the schema up to date where this process may: always on SQLite (one machine, one
/// file) and for `serve`; elsewhere it only checks, and asks for `turtlemen migrate`.
async fn migrate_or_check(db: &Db, may_migrate: bool) -> anyhow::Result<()> {
    if may_migrate || db.backend() == turtlemen_db::Backend::Sqlite {
        db.migrate().await?;
    } else {
        db.ensure_migrated().await?;
    }
    Ok(())
}

/// Prepares `role` for serving, in the order that leaves nothing half-created on failure.
pub async fn prepare(role: Role, config: &Config, internals: &Internals) -> anyhow::Result<Server> {
    // Roles alone need to know where the others are: checked before anything is created.
    if matches!(role, Role::Gateway | Role::Api) && config.upstream_auth.is_empty() {
        anyhow::bail!("this role alone needs the auth service's address: set --upstream-auth http://HOST:PORT");
    }
    if role == Role::Gateway && config.upstream_api.is_empty() {
        anyhow::bail!("the gateway alone needs the API servers' addresses: set --upstream-api http://HOST:PORT");
    }
    let uses_db = role != Role::Gateway;
    let uses_sessions = matches!(role, Role::All | Role::Gateway | Role::Auth | Role::Api);
    let uses_storage = matches!(role, Role::All | Role::Api | Role::Worker { .. });

    // 1. External services: reached before anything is created locally.
    let mut db = match (&config.database, uses_db) {
        (DatabaseUrl::Postgres(_), true) => Some(open_db(config, false).await?),
        _ => None,
    };
    let mut sessions: Option<Sessions> = match (&config.session, uses_sessions) {
        (SessionUrl::Redis(url), true) => Some(
            turtlemen_session::open(&StoreOptions::Redis {
                url: url.expose().to_string(),
                prefix: internals.session_prefix.clone(),
            })
            .await?,
        ),
        _ => None,
    };

    // 2. The listener.
    let listener =
        match role {
            Role::Worker { health_listen: None, .. } => None,
            Role::Worker { health_listen: Some(addr), .. } => {
                Some(TcpListener::bind(addr).await.with_context(|| {
                    format!("cannot listen on {addr} (choose another address with --health-listen)")
                })?)
            }
            _ => Some(TcpListener::bind(config.listen).await.with_context(|| {
                format!("cannot listen on {} (choose another address with --listen)", config.listen)
            })?),
        };

    // `/metrics` on a listener of its own (the worker's one listener already is one).
    let metrics_listener = match (role, config.metrics_listen) {
        (Role::Worker { .. }, _) | (_, None) => None,
        (_, Some(addr)) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (choose another address with --metrics-listen)"))?,
        ),
    };

    let rtmp_listener = bind_rtmp(role, config).await?;
    // RTMPS beside an RTMP ingest: its certificate is read now, a bad one stops the start.
    let rtmps = match (&rtmp_listener, &config.live.rtmps) {
        (Some(_), Some(r)) => {
            let tls = turtlemen_http::tls::ReloadingTls::load(&r.tls.cert, &r.tls.key)
                .map_err(|e| anyhow::anyhow!("live_rtmps_cert_file / live_rtmps_key_file: {e}"))?;
            let listener = TcpListener::bind(r.listen).await.with_context(|| {
                format!("cannot listen for RTMPS on {} (choose another address with --live-rtmps-listen)", r.listen)
            })?;
            let tls = Arc::new(tls);
            let configs: turtlemen_live::rtmp::TlsConfigs = Arc::new(move || tls.config());
            Some((listener, configs))
        }
        _ => None,
    };

    // Certificate files are read before anything is created; a bad one stops the start.
    let tls = match (&config.tls, &listener) {
        (Some(files), Some(_)) => Some(Arc::new(turtlemen_http::tls::ReloadingTls::load(&files.cert, &files.key)?)),
        _ => None,
    };

    // A public URL derived from `listen` follows the port actually bound (port 0 in tests).
    let mut config = config.clone();
    if let Some(addr) = listener.as_ref().and_then(|l| l.local_addr().ok())
        && config.public_url.port() == Some(0)
    {
        let _ = config.public_url.set_port(Some(addr.port()));
    }
    let config = &config;

    // 3. Local state.
    crate::data_dir::prepare(&config.data_dir)?;
    let keys = crate::data_dir::keys(config)?;
    if uses_db && db.is_none() {
        db = Some(open_db(config, true).await?);
    }
    if uses_sessions && sessions.is_none() {
        let path = config.data_dir.join("sessions.db");
        sessions = Some(turtlemen_session::open(&StoreOptions::Embedded { path }).await?);
    }
    if let Some(db) = &db {
        migrate_or_check(db, role == Role::All).await?;
        if matches!(role, Role::All | Role::Auth) && !turtlemen_db::moderation::has_admin(db).await? {
            if config.first_user_admin {
                tracing::info!("this instance has no admin yet: the first account created becomes admin");
            } else {
                tracing::warn!(
                    "this instance has no admin (first_user_admin is off): make one with `turtlemen admin set-role --username NAME --role admin`"
                );
            }
        }
    }
    let storage = match uses_storage {
        true => Some(open_storage(config).await?),
        false => None,
    };

    // 4. Routes.
    let readiness = crate::health::readiness(db.as_ref(), sessions.as_ref());
    let issuer = format!("{}auth", config.public_url.as_str());
    let mut signing_keys = None;
    let mut auth = async |db: &Db, store: &Sessions| -> anyhow::Result<Router> {
        let signer = crate::signing_keys::prepare(db, config, &keys, &internals.signing_keys).await?;
        let state = AuthInner::build(db.clone(), store.clone(), &config.public_url, signer, &keys.cookie)?
            .with_settings(auth_settings(config))
            .with_mailer(mailer(config)?)
            .with_identity_providers(config.identity_providers.clone())?;
        signing_keys = Some(KeyReload {
            ring: state.keys.clone(),
            db: db.clone(),
            sealer: Arc::new(turtlemen_auth::secret_box::SecretBox::for_signing_keys(&keys.cookie)),
            timings: internals.signing_keys,
        });
        // Client addresses behind `trusted_proxies` only, as everywhere (`Requester`).
        let trusted = turtlemen_http::client_addr::TrustedProxies::new(&config.trusted_proxies);
        Ok(turtlemen_auth::router(Arc::new(state)).layer(axum::Extension(trusted)))
    };
    // The live ingest: its hub reaches the database through the API's directory.
    let rtmp_port = rtmp_listener.as_ref().and_then(|l| l.local_addr().ok()).map_or(1935, |a| a.port());
    let rtmps_port = rtmps.as_ref().and_then(|(l, _)| l.local_addr().ok()).map(|a| a.port());
    let rtmp_host = config.public_url.host_str().unwrap_or("localhost").to_owned();
    let packager_url = config.live.packager_url.as_ref().unwrap_or(&config.public_url).to_string();
    let live_hub = match (&rtmp_listener, &db, &storage) {
        (Some(_), Some(db), Some(storage)) => {
            let directory = turtlemen_api::lives::LiveDirectory {
                db: db.clone(),
                storage: storage.clone(),
                packager_url: packager_url.clone(),
                limits: turtlemen_db::lives::LiveLimits {
                    per_user: config.live.max_per_user,
                    per_instance: config.live.max_per_instance,
                },
            };
            Some(turtlemen_live::Hub::new(ingest_config(config), storage.clone(), Arc::new(directory)))
        }
        _ => None,
    };
    let live_services = turtlemen_api::lives::LiveServices {
        hub: live_hub.clone(),
        rtmp_url: format!("rtmp://{rtmp_host}:{rtmp_port}/{}", turtlemen_live::rtmp::APP),
        rtmps_url: rtmps_port.map(|port| format!("rtmps://{rtmp_host}:{port}/{}", turtlemen_live::rtmp::APP)),
        relay: Arc::new(turtlemen_api::lives::relay::Relay::new(live_hub.is_some().then_some(packager_url))?),
    };
    // The live chat's bus: the store's (Redis pub/sub beside Redis, in-process otherwise).
    let chat_bus = match (&sessions, matches!(role, Role::All | Role::Api)) {
        (Some(store), true) => store.bus(turtlemen_api::chat::TOPIC).await?,
        _ => turtlemen_session::bus::Bus::local(),
    };
    let api_state = |db: &Db, store: &Sessions, storage: &turtlemen_storage::Storage, transport: Arc<dyn Transport>| {
        turtlemen_api::ApiState {
            db: db.clone(),
            jwks: Arc::new(Jwks::new(&issuer, transport)),
            storage: storage.clone(),
            uploads_dir: config.data_dir.join("uploads"),
            videos: config.videos,
            media: Arc::new(turtlemen_api::media::MediaSigner::from_secret(&keys.cookie)),
            views: Arc::new(turtlemen_api::views::ViewCounter::new(store.clone())),
            images: turtlemen_api::channel_images::processor(),
            live: live_services.clone(),
            sessions: store.clone(),
            chat: turtlemen_api::chat::Chat::new(chat_bus.clone(), &config.public_url),
            trusted_proxies: turtlemen_http::client_addr::TrustedProxies::new(&config.trusted_proxies),
            lists: Arc::new(turtlemen_api::shared_lists::SharedLists::new(config.videos.public_page_max_age)),
        }
    };
    let mut janitor_state = None;
    let mut files = None;
    // On a local store, media is sent straight from the file (not over TLS: see `files`).
    let media_files = |state: &turtlemen_api::ApiState| -> Option<Arc<dyn FileResponder>> {
        matches!(state.storage.location(), turtlemen_storage::StorageLocation::Local { .. }).then(|| {
            Arc::new(turtlemen_api::media::MediaFiles { signer: state.media.clone(), storage: state.storage.clone() })
                as Arc<dyn FileResponder>
        })
    };
    let route_defaults = RouteDefaults {
        max_body_bytes: config.http.max_body_bytes as u64,
        max_upload_bytes: config.videos.upload_max_bytes,
        request_timeout: config.http.request_timeout,
    };
    let gateway_config = |client_secret: String| GatewayConfig {
        public_url: config.public_url.clone(),
        issuer: issuer.clone(),
        client_id: turtlemen_auth::clients::GATEWAY_CLIENT_ID.into(),
        client_secret,
        idle: std::time::Duration::from_secs(7 * 24 * 3600),
        absolute: std::time::Duration::from_secs(30 * 24 * 3600),
        trusted_proxies: config.trusted_proxies.clone(),
        session_cache_ttl: internals.session_cache_ttl,
        routes: config.routes.clone().unwrap_or_else(|| routes::builtin(&route_defaults)),
        route_defaults,
        upstreams: config.upstreams.clone(),
    };
    // Every auth replica named, in turns; one that refuses connections is skipped.
    let issuer_over_http = || -> anyhow::Result<Arc<dyn Transport>> {
        if config.upstream_auth.is_empty() {
            anyhow::bail!("this role alone needs the auth service's address: set --upstream-auth http://HOST:PORT");
        }
        Ok(Arc::new(turtlemen_identity::Http::pool(&config.upstream_auth)?))
    };
    // Spans exported, when a collector is configured.
    let spans = match &config.otlp_endpoint {
        Some(endpoint) => {
            let url = url::Url::parse(endpoint.expose()).context("otlp_endpoint")?;
            Some(crate::telemetry::OtlpSpans::start(&url, role.service_name())?)
        }
        None => None,
    };
    let sink = spans.clone().map(|s| s as Arc<dyn turtlemen_domain::trace::SpanSink>);
    let foundation = layers::Foundation::new(
        &config.http,
        turtlemen_web::error_page,
        config.strict_transport_security().as_deref(),
        sink,
    );
    // The gateway takes every request but the health paths before any router.
    let mut front: Option<Arc<dyn Front>> = None;
    let routes = match (role, &db, &sessions, &storage) {
        (Role::All, Some(db), Some(store), Some(storage)) => {
            let client_secret = turtlemen_auth::clients::ensure_gateway(db, &config.public_url, &keys.cookie).await?;
            let auth_router = auth(db, store).await?;
            // One process: the gateway and the API reach the issuer without the network.
            let transport: Arc<dyn Transport> =
                Arc::new(InProcess::new(Router::new().nest("/auth", auth_router.clone())));
            let state = api_state(db, store, storage, transport.clone());
            janitor_state = Some(state.clone());
            let gateway = GatewayInner::new(gateway_config(client_secret), store.clone(), transport);
            gateway.follow_endings().await?;
            files = media_files(&state).map(|f| turtlemen_gateway::dispatch::api_files(gateway.clone(), f));
            let api_router = turtlemen_api::router(state);
            let auth_target = Target::InProcess(Router::new().nest("/auth", auth_router));
            front = Some(turtlemen_gateway::front(
                gateway,
                auth_target,
                Target::InProcess(api_router),
                foundation.clone(),
            )?);
            Router::new()
        }
        (Role::Auth, Some(db), Some(store), _) => {
            turtlemen_auth::clients::ensure_gateway(db, &config.public_url, &keys.cookie).await?;
            Router::new().nest("/auth", auth(db, store).await?)
        }
        (Role::Api, Some(db), Some(store), Some(storage)) => {
            let state = api_state(db, store, storage, issuer_over_http()?);
            janitor_state = Some(state.clone());
            files = media_files(&state);
            turtlemen_api::router(state)
        }
        (Role::Gateway, _, Some(store), _) => {
            let pool = |name: &str, urls: &[String]| -> anyhow::Result<Target> {
                let spec = turtlemen_config::UpstreamSpec::http1(urls.to_vec());
                Ok(Target::Pool(Arc::new(Pool::new(name, &spec)?)))
            };
            let (auth_pool, api_pool) = (pool("auth", &config.upstream_auth)?, pool("api", &config.upstream_api)?);
            let client_secret = turtlemen_auth::clients::gateway_secret(&keys.cookie);
            let gateway = GatewayInner::new(gateway_config(client_secret), store.clone(), issuer_over_http()?);
            gateway.follow_endings().await?;
            front = Some(turtlemen_gateway::front(gateway, auth_pool, api_pool, foundation.clone())?);
            Router::new()
        }
        _ => Router::new(),
    };
    // The figures: on their own listener when set; else on the main one, and there only to
    // this machine where that listener faces users.
    let health = match (metrics_listener.is_some(), role) {
        (true, _) => turtlemen_http::health::probes(readiness.clone()),
        (false, Role::All | Role::Gateway) => turtlemen_http::health::local_metrics(
            readiness.clone(),
            turtlemen_http::client_addr::TrustedProxies::new(&config.trusted_proxies),
        ),
        (false, _) => turtlemen_http::health::router(readiness.clone()),
    };
    let metrics = metrics_listener.map(|listener| {
        let router = turtlemen_http::health::router(readiness.clone());
        (listener, layers::foundation(router, &config.http, turtlemen_web::error_page))
    });
    let router = foundation.wrap(health.merge(routes));
    let app = match front {
        Some(front) => App::Front { front, rest: router },
        None => App::Router(router),
    };
    let transcoder = || storage.clone().map(|storage| transcoder(config, storage));
    let worker = match (role, &db, transcoder()) {
        (Role::All, Some(db), Some(t)) if internals.embedded_worker => {
            Some((db.clone(), turtlemen_worker::WorkerConfig::with_concurrency(1), t, config.data_dir.join("workers")))
        }
        (Role::Worker { concurrency, lease, .. }, Some(db), Some(t)) => {
            let worker_config = turtlemen_worker::WorkerConfig {
                lease,
                ..turtlemen_worker::WorkerConfig::with_concurrency(concurrency)
            };
            Some((db.clone(), worker_config, t, config.data_dir.join("workers")))
        }
        _ => None,
    };
    let janitor = janitor_state.map(|state| (state, internals.upload_sweep_every));
    let rtmp = rtmp_listener.zip(live_hub);
    // The API server and workers count the work in progress for `/metrics`; every role times
    // its database and session store.
    let counts_work = matches!(role, Role::All | Role::Api | Role::Worker { .. });
    let sampler = (readiness, db.clone(), counts_work);
    Ok(Server {
        listener,
        metrics,
        spans,
        tls,
        files,
        app,
        limits: config.http,
        db,
        sessions,
        worker,
        janitor,
        signing_keys,
        rtmp,
        rtmps,
        sampler,
    })
}

/// The RTMP listener of `serve` (on by default; a default port already taken only turns the
/// ingest off, with a warning) or of an API server told to ingest.
async fn bind_rtmp(role: Role, config: &Config) -> anyhow::Result<Option<TcpListener>> {
    use turtlemen_config::RtmpListen;
    match (role, config.live.rtmp_listen) {
        (Role::All | Role::Api, RtmpListen::At(addr)) => {
            Ok(Some(TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen for RTMP on {addr} (choose another address with --rtmp-listen, or \"off\")")
            })?))
        }
        (Role::All, RtmpListen::Default) => match TcpListener::bind(RtmpListen::SERVE_DEFAULT).await {
            Ok(l) => Ok(Some(l)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for RTMP on {}; live ingest is off (set --rtmp-listen)", RtmpListen::SERVE_DEFAULT);
                Ok(None)
            }
        },
        _ => Ok(None),
    }
}

/// The ingest's caps and timings, from the configuration.
fn ingest_config(config: &Config) -> turtlemen_live::IngestConfig {
    let l = &config.live;
    turtlemen_live::IngestConfig {
        max_bitrate_bps: l.max_bitrate_kbps.saturating_mul(1000),
        max_short_side: l.max_height,
        max_long_side: l.max_height.saturating_mul(16) / 9,
        max_duration: l.max_duration,
        read_timeout: l.read_timeout,
        grace: l.grace,
        ladder: l
            .ladder
            .iter()
            .map(|r| turtlemen_live::ladder::Rung { height: r.height, video_kbps: r.video_kbps })
            .collect(),
        ..turtlemen_live::IngestConfig::default()
    }
}

/// The transcode handler's settings, from the configuration.
fn transcoder(config: &Config, storage: turtlemen_storage::Storage) -> turtlemen_worker::transcode::Transcoder {
    let v = &config.videos;
    let options = turtlemen_media::ProcessOptions {
        limits: turtlemen_media::Limits { max_duration_secs: v.max_duration.as_secs(), ..Default::default() },
        threads: v.transcode_threads,
        nice: i32::try_from(v.transcode_nice).unwrap_or(10),
        stall_timeout: v.transcode_stall,
        total_timeout: v.transcode_timeout,
        ..Default::default()
    };
    turtlemen_worker::transcode::Transcoder { storage, work_root: config.data_dir.join("work"), options }
}

/// The auth service's policies from the configuration.
fn auth_settings(config: &Config) -> turtlemen_auth::AuthSettings {
    let defaults = turtlemen_auth::AuthSettings::default();
    let b = &config.brute_force;
    let brute_force = turtlemen_auth::bruteforce::BruteForceSettings {
        max_failures: b.account_failures,
        max_wait: b.max_wait,
        ip_max_failures: b.ip_failures,
        ip_window: b.ip_window,
        ..defaults.brute_force.clone()
    };
    turtlemen_auth::AuthSettings { brute_force, first_user_admin: config.first_user_admin, ..defaults }
}

/// The session store for a command (`admin ban` writes the marks that end sessions): the
/// configured Redis under the same key prefix as the roles, else the embedded store in the
/// data dir that `serve` uses.
pub async fn open_sessions(config: &Config, internals: &Internals) -> anyhow::Result<Sessions> {
    let options = match &config.session {
        SessionUrl::Redis(url) => {
            StoreOptions::Redis { url: url.expose().to_string(), prefix: internals.session_prefix.clone() }
        }
        SessionUrl::Embedded => {
            crate::data_dir::prepare(&config.data_dir)?;
            StoreOptions::Embedded { path: config.data_dir.join("sessions.db") }
        }
    };
    Ok(turtlemen_session::open(&options).await?)
}

/// SMTP when `smtp_url` is set, else the outbox folder in the data dir.
fn mailer(config: &Config) -> anyhow::Result<turtlemen_auth::mail::Mailer> {
    use turtlemen_auth::mail::Mailer;
    let mailer = match &config.mail.smtp_url {
        Some(url) => Mailer::smtp(url.expose(), &config.mail.from)?,
        None => Mailer::outbox(config.data_dir.join("outbox"), &config.mail.from)?,
    };
    if !mailer.delivers() {
        tracing::warn!(
            "no smtp_url: mail is written to the outbox folder in the data dir, not sent; registration signs \
             new accounts in at once and password-reset links are read there by the operator"
        );
    }
    Ok(mailer)
}

impl Server {
    /// The session store, when the role uses one.
    pub fn sessions(&self) -> Option<&Sessions> {
        self.sessions.as_ref()
    }

    /// The application database, when the role uses one.
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound address of `metrics_listen`, when set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then drains and closes everything.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let worker = self.worker.map(|(db, config, t, slots)| {
            let stop = stopped();
            let sink = self.spans.clone().map(|s| s as Arc<dyn turtlemen_domain::trace::SpanSink>);
            tokio::spawn(async move { turtlemen_worker::run(db, config, t, &slots, sink, stop).await })
        });
        let (readiness, sampled_db, counts_work) = self.sampler;
        // While PostgreSQL refuses connections, requests fail at once instead of waiting out the
        // pool's timeout (`turtlemen_db::refusals`).
        let refusals = sampled_db.clone().map(|db| {
            let stop = stopped();
            tokio::spawn(async move { db.watch_refusals(stop).await })
        });
        let sampler = tokio::spawn(crate::health::sample(readiness, sampled_db, counts_work, SAMPLE_EVERY, stopped()));
        let janitor = self.janitor.map(|(state, every)| tokio::spawn(turtlemen_api::janitor(state, every, stopped())));
        let signing_keys = self
            .signing_keys
            .map(|k| tokio::spawn(turtlemen_auth::signing_keys::follow(k.ring, k.db, k.sealer, k.timings, stopped())));
        let rtmps = match (self.rtmps, &self.rtmp) {
            (Some((listener, tls)), Some((_, hub))) => {
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(rtmps.address = %addr, "listening for RTMPS");
                }
                Some(tokio::spawn(turtlemen_live::rtmp::serve_tls(listener, tls, hub.clone(), stopped())))
            }
            _ => None,
        };
        let rtmp = self.rtmp.map(|(listener, hub)| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(rtmp.address = %addr, "listening for RTMP");
            }
            tokio::spawn(turtlemen_live::rtmp::serve(listener, hub, stopped()))
        });
        let metrics = self.metrics.map(|(listener, router)| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(metrics.address = %addr, "listening for /metrics");
            }
            let stop = stopped();
            tokio::spawn(turtlemen_http::server::serve(listener, router, self.limits, stop))
        });
        match self.listener {
            Some(listener) => {
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(listen.address = %addr, "listening");
                }
                let extras = turtlemen_http::server::Extras { tls: self.tls, files: self.files };
                turtlemen_http::server::serve_with(listener, self.app, self.limits, extras, shutdown).await;
            }
            None => shutdown.await,
        }
        let _ = stop_tx.send(true);
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        if let Some(janitor) = janitor {
            let _ = janitor.await;
        }
        if let Some(signing_keys) = signing_keys {
            let _ = signing_keys.await;
        }
        let _ = sampler.await;
        if let Some(refusals) = refusals {
            let _ = refusals.await;
        }
        if let Some(rtmp) = rtmp {
            let _ = rtmp.await;
        }
        if let Some(rtmps) = rtmps {
            let _ = rtmps.await;
        }
        if let Some(db) = self.db {
            db.close().await;
        }
        if let Some(spans) = self.spans {
            let _ = tokio::task::spawn_blocking(move || spans.shutdown()).await;
        }
    }
}

/// The media store of `storage_url`, reading from `storage_fallback_url` what it lacks.
pub async fn open_storage(config: &Config) -> anyhow::Result<turtlemen_storage::Storage> {
    let storage = turtlemen_storage::Storage::open(&config.storage_url).await?;
    Ok(match &config.storage_fallback_url {
        Some(url) => {
            tracing::info!(storage.fallback = %url, "media missing from storage_url is read from storage_fallback_url");
            storage.with_fallback(turtlemen_storage::Storage::open(url).await?)
        }
        None => storage,
    })
}
