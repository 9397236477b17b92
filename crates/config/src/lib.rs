//! Typed configuration for every role.
//!
//! One set of keys ([`Settings`]) is read from three layers, each overriding the one before:
//! a TOML file (`--config FILE`), `TURTLEMEN_*` environment variables, and command-line flags.
//! Every key has all three spellings (`data_dir` ↔ `TURTLEMEN_DATA_DIR` ↔ `--data-dir`), because
//! the same struct is both the file schema (serde) and the flag set (clap). [`Config::resolve`]
//! then applies defaults and parses every value, so a bad URL is refused before anything is
//! created on disk or on the network. Secrets are [`Secret`]s and never print.
//!
//! This crate never touches the disk beyond reading the config file.

pub mod providers;
pub mod routes;
mod settings;

pub use providers::{IdentityProvider, ProviderKind};
pub use routes::{AuthMode, HostPattern, RouteSpec, UpstreamRef, UpstreamSpec};
pub use settings::{LogFormat, Settings};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use turtlemen_domain::Secret;
use url::Url;

/// The application database backend named by `database_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://path` (the default, in the data dir).
    Sqlite(String),
    /// `postgres://…` or `postgresql://…` (PostgreSQL, or CockroachDB through its wire protocol).
    Postgres(Secret),
}

/// The session store named by `session_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionUrl {
    /// Empty: a SQLite file in the data dir.
    Embedded,
    /// `redis://…` or `rediss://…`.
    Redis(Secret),
}

/// The effective configuration, with every default applied and every value parsed.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// A listener of its own for `/metrics` (with the probes); the main listener then answers
    /// no `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Where spans are exported (OTLP over HTTP, protobuf): the collector's base URL, to which
    /// `v1/traces` is added; a checked http(s) URL, kept as a secret (it may carry a password).
    pub otlp_endpoint: Option<Secret>,
    pub public_url: Url,
    pub database: DatabaseUrl,
    pub database_max_connections: u32,
    pub session: SessionUrl,
    pub storage_url: Url,
    /// Media storage read when an object is missing from `storage_url`, while media moves
    /// between stores (docs/operations.md); writes never go there.
    pub storage_fallback_url: Option<Url>,
    pub videos: VideoLimits,
    /// Whether the first account created on a fresh instance becomes admin.
    pub first_user_admin: bool,
    pub log_format: LogFormat,
    pub log_level: String,
    /// `None`: generated on first start and kept in the data dir.
    pub cookie_secret: Option<Secret>,
    /// `None`: generated on first start and kept in the data dir.
    pub signing_key_file: Option<PathBuf>,
    pub http: HttpLimits,
    /// Internal `http://` addresses of the auth service (roles run alone).
    pub upstream_auth: Vec<String>,
    /// Internal `http://` addresses of the API server (a gateway run alone).
    pub upstream_api: Vec<String>,
    /// Peers whose `X-Forwarded-*` headers the gateway believes.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// External identity providers the auth service brokers logins through.
    pub identity_providers: Vec<IdentityProvider>,
    pub mail: MailConfig,
    pub live: LiveConfig,
    pub brute_force: BruteForceConfig,
    /// Certificate chain and key for TLS termination; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// `Strict-Transport-Security` max-age; zero: the header is not sent. Sent only over https
    /// ([`Config::strict_transport_security`]).
    pub hsts_max_age: Duration,
    /// The gateway's route table; `None`: the built-in table.
    pub routes: Option<Vec<RouteSpec>>,
    /// Upstream pools named by routes.
    pub upstreams: std::collections::BTreeMap<String, UpstreamSpec>,
    /// The tables as written, for `turtlemen config`.
    raw_routes: Option<Vec<routes::RouteSettings>>,
    raw_upstreams: Option<std::collections::BTreeMap<String, routes::UpstreamSettings>>,
}

/// Where the RTMP ingest listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtmpListen {
    /// Unset: `127.0.0.1:1935` under `serve`, none for an API server alone.
    Default,
    /// `off`: no ingest.
    Off,
    At(SocketAddr),
}

impl RtmpListen {
    /// The default address under `serve`.
    pub const SERVE_DEFAULT: &str = "127.0.0.1:1935";
}

/// Live video: the ingest and its caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    pub rtmp_listen: RtmpListen,
    /// The address recorded for lives this process packages; `None`: this process's own
    /// `public_url`.
    pub packager_url: Option<Url>,
    pub max_bitrate_kbps: u64,
    /// The picture's short side; the long side may be 16/9 of it.
    pub max_height: u32,
    pub max_duration: Duration,
    pub grace: Duration,
    pub read_timeout: Duration,
    /// Most lives one user may have on air at once (a publish beyond is refused).
    pub max_per_user: u64,
    /// Most lives the instance carries at once.
    pub max_per_instance: u64,
    /// The transcoded ladder, highest rung first; empty: H.264/AAC passed through.
    pub ladder: Vec<LadderRung>,
    /// The RTMPS ingest, when configured.
    pub rtmps: Option<RtmpsConfig>,
}

/// RTMP over TLS: where, and with which certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpsConfig {
    pub listen: SocketAddr,
    pub tls: TlsFiles,
}

/// One rung of the live transcoding ladder: a picture height and its video bit rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderRung {
    pub height: u32,
    pub video_kbps: u32,
}

/// Most rungs a ladder may have (each is one more H.264 encode per live).
pub const LADDER_MAX_RUNGS: usize = 6;

/// Parses `live_ladder`: `HEIGHT:KBPS` rungs separated by commas (`720:2500,360:800`), heights
/// even and distinct from 144 to 2160, 100 to 50,000 kb/s; returned highest first. Empty text
/// is no ladder (passthrough).
pub fn parse_ladder(text: &str) -> Result<Vec<LadderRung>, ConfigError> {
    let bad = |m: String| invalid("live_ladder", m);
    let mut rungs = Vec::new();
    for item in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (h, k) =
            item.split_once(':').ok_or_else(|| bad(format!("{item:?} is not HEIGHT:KBPS, as in 720:2500,360:800")))?;
        let height: u32 = h.trim().parse().map_err(|_| bad(format!("{h:?} is not a height in pixels")))?;
        let video_kbps: u32 = k.trim().parse().map_err(|_| bad(format!("{k:?} is not a bit rate in kb/s")))?;
        if !(144..=2160).contains(&height) || !height.is_multiple_of(2) {
            return Err(bad(format!("the height {height} must be even, from 144 to 2160")));
        }
        if !(100..=50_000).contains(&video_kbps) {
            return Err(bad(format!("the bit rate {video_kbps} must be from 100 to 50000 kb/s")));
        }
        if rungs.iter().any(|r: &LadderRung| r.height == height) {
            return Err(bad(format!("the height {height} is named twice")));
        }
        rungs.push(LadderRung { height, video_kbps });
    }
    if rungs.len() > LADDER_MAX_RUNGS {
        return Err(bad(format!("at most {LADDER_MAX_RUNGS} rungs")));
    }
    rungs.sort_by_key(|r| std::cmp::Reverse(r.height));
    Ok(rungs)
}

/// Outgoing mail.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `None`: messages are written to `{data_dir}/outbox/`.
    pub smtp_url: Option<Secret>,
    /// The sender, `Name <address>` or a bare address.
    pub from: String,
}

/// Thresholds of the brute-force protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BruteForceConfig {
    pub account_failures: u32,
    pub max_wait: Duration,
    pub ip_failures: u32,
    pub ip_window: Duration,
}

/// PEM files for TLS termination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Limits every listener applies.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    /// Most connections a listener holds open at once (accepting pauses at it).
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
}

/// Limits on uploads and video processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoLimits {
    pub upload_max_bytes: u64,
    /// 0: no limit.
    pub quota_bytes: u64,
    /// 0: no limit.
    pub daily_quota_bytes: u64,
    pub upload_expiry: Duration,
    /// 0: as many as cores.
    pub transcode_threads: u32,
    pub transcode_nice: u32,
    pub transcode_timeout: Duration,
    pub transcode_stall: Duration,
    pub max_duration: Duration,
    /// Comments one user may write per minute; 0: no limit.
    pub comments_per_minute: u32,
    /// Live chat messages one user may write per minute; 0: no limit.
    pub chat_per_minute: u32,
    /// Rating changes one user may make per minute; 0: no limit.
    pub ratings_per_minute: u32,
    /// How long a shared cache (the gateway's) may keep the public pages an anonymous visitor
    /// gets; zero: not at all.
    pub public_page_max_age: Duration,
}

/// A configuration problem, phrased as one line that names the problem and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}; check the --config path")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    /// A problem in one entry of a table (`routes[2].path`, `upstreams.media.urls`).
    #[error("{key}: {message}")]
    Entry { key: String, message: String },
}

pub(crate) fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, message: message.into() }
}

impl Config {
    /// Loads the file named by `config_file` (if any), lays `overrides` (environment and flags,
    /// already merged by clap) over it, and resolves the result.
    pub fn load(config_file: Option<&Path>, overrides: Settings) -> Result<Self, ConfigError> {
        let file = match config_file {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        Self::resolve(overrides.over(file))
    }

    /// Applies defaults and parses every value.
    pub fn resolve(s: Settings) -> Result<Self, ConfigError> {
        let data_dir = s.data_dir.unwrap_or_else(|| PathBuf::from("turtlemen-data"));
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty; use --data-dir PATH"));
        }
        let listen_text = s.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid("listen", format!("{listen_text:?} is not an address like 127.0.0.1:8080; fix --listen"))
        })?;
        let metrics_listen = match s.metrics_listen.as_deref().map(str::trim) {
            None | Some("" | "off") => None,
            Some(text) => Some(text.parse().map_err(|_| {
                invalid("metrics_listen", format!("{text:?} is not an address like 0.0.0.0:9090, nor \"off\""))
            })?),
        };
        let otlp_endpoint = match s.otlp_endpoint.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => match Url::parse(text) {
                Ok(url)
                    if matches!(url.scheme(), "http" | "https") && url.host().is_some() && url.query().is_none() =>
                {
                    Some(Secret::new(url.to_string()))
                }
                _ => {
                    return Err(invalid(
                        "otlp_endpoint",
                        format!("{:?} is not an http(s) URL like http://collector:4318", redact_url_password(text)),
                    ));
                }
            },
        };
        let public_url = match s.public_url {
            Some(text) => parse_public_url(&text)?,
            None => {
                let host = if listen.ip().is_unspecified() { "localhost".to_string() } else { listen.ip().to_string() };
                let host = if listen.is_ipv6() && !listen.ip().is_unspecified() { format!("[{host}]") } else { host };
                Url::parse(&format!("http://{host}:{}/", listen.port()))
                    .map_err(|e| invalid("public_url", e.to_string()))?
            }
        };
        let database = match s.database_url {
            Some(text) => parse_database_url(&text)?,
            None => DatabaseUrl::Sqlite(format!("sqlite://{}", data_dir.join("turtlemen.db").display())),
        };
        let session = parse_session_url(s.session_url.as_deref().unwrap_or(""))?;
        let storage_url = match s.storage_url {
            Some(text) => parse_storage_url("storage_url", &text)?,
            None => file_url(&data_dir.join("media"))?,
        };
        let storage_fallback_url = match s.storage_fallback_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let url = parse_storage_url("storage_fallback_url", text)?;
                if url == storage_url {
                    return Err(invalid("storage_fallback_url", "is the same store as storage_url; leave it empty"));
                }
                Some(url)
            }
        };
        let log_level = s.log_level.unwrap_or_else(|| "info".into());
        if log_level.trim().is_empty() {
            return Err(invalid("log_level", "must not be empty; try info, debug or turtlemen=debug,info"));
        }
        let cookie_secret = match s.cookie_secret {
            Some(secret) if secret.expose().len() < 32 => {
                return Err(invalid(
                    "cookie_secret",
                    "must be at least 32 characters; or leave it unset to generate one",
                ));
            }
            other => other,
        };
        let positive = |key: &'static str, v: Option<u64>, default: u64| match v.unwrap_or(default) {
            0 => Err(invalid(key, "must be greater than zero")),
            n => Ok(n),
        };
        let http = HttpLimits {
            request_timeout: Duration::from_secs(positive("request_timeout_secs", s.request_timeout_secs, 30)?),
            header_read_timeout: Duration::from_secs(positive(
                "header_read_timeout_secs",
                s.header_read_timeout_secs,
                10,
            )?),
            max_body_bytes: usize::try_from(positive("max_body_bytes", s.max_body_bytes, 2 * 1024 * 1024)?)
                .map_err(|_| invalid("max_body_bytes", "too large for this machine"))?,
            max_header_bytes: usize::try_from(positive("max_header_bytes", s.max_header_bytes, 16 * 1024)?)
                .map_err(|_| invalid("max_header_bytes", "too large for this machine"))?,
            max_connections: usize::try_from(positive("max_connections", s.max_connections, 16_384)?)
                .map_err(|_| invalid("max_connections", "too large for this machine"))?,
            shutdown_timeout: Duration::from_secs(positive("shutdown_timeout_secs", s.shutdown_timeout_secs, 10)?),
        };
        if http.max_header_bytes < 1024 {
            return Err(invalid("max_header_bytes", "must be at least 1024"));
        }
        let database_max_connections =
            u32::try_from(positive("database_max_connections", s.database_max_connections, 10)?)
                .map_err(|_| invalid("database_max_connections", "too large"))?;
        let videos = VideoLimits {
            upload_max_bytes: positive("upload_max_bytes", s.upload_max_bytes, 8 << 30)?,
            quota_bytes: s.upload_quota_bytes.unwrap_or(0),
            daily_quota_bytes: s.upload_daily_quota_bytes.unwrap_or(0),
            upload_expiry: Duration::from_secs(positive("upload_expiry_secs", s.upload_expiry_secs, 24 * 3600)?),
            transcode_threads: u32::try_from(s.transcode_threads.unwrap_or(0))
                .map_err(|_| invalid("transcode_threads", "too large"))?,
            transcode_nice: match s.transcode_nice.unwrap_or(10) {
                n @ 0..=19 => n as u32,
                _ => return Err(invalid("transcode_nice", "must be between 0 and 19")),
            },
            transcode_timeout: Duration::from_secs(positive(
                "transcode_timeout_secs",
                s.transcode_timeout_secs,
                4 * 3600,
            )?),
            transcode_stall: Duration::from_secs(positive("transcode_stall_secs", s.transcode_stall_secs, 120)?),
            max_duration: Duration::from_secs(positive(
                "video_max_duration_secs",
                s.video_max_duration_secs,
                4 * 3600,
            )?),
            comments_per_minute: s.comments_per_minute.unwrap_or(10),
            chat_per_minute: s.chat_per_minute.unwrap_or(20),
            ratings_per_minute: s.ratings_per_minute.unwrap_or(120),
            public_page_max_age: Duration::from_secs(s.public_page_max_age_secs.unwrap_or(2)),
        };
        let upstream_auth = parse_upstreams("upstream_auth", s.upstream_auth.as_deref())?;
        let upstream_api = parse_upstreams("upstream_api", s.upstream_api.as_deref())?;
        let trusted_proxies = parse_cidrs(s.trusted_proxies.as_deref())?;
        let smtp_url = match s.smtp_url {
            Some(url) if url.expose().is_empty() => None,
            Some(url) => Some(parse_smtp_url(url)?),
            None => None,
        };
        let from = match s.mail_from {
            Some(from) if from.contains('@') && !from.chars().any(char::is_control) => from,
            Some(_) => return Err(invalid("mail_from", "must be an address like \"Turtlemen <noreply@example.org>\"")),
            None => {
                format!("Turtlemen <noreply@{}>", public_url.host_str().unwrap_or("localhost").trim_matches(['[', ']']))
            }
        };
        let count = |key: &'static str, v: Option<u64>, default: u64| {
            u32::try_from(positive(key, v, default)?).map_err(|_| invalid(key, "too large"))
        };
        let brute_force = BruteForceConfig {
            account_failures: count("bruteforce_account_failures", s.bruteforce_account_failures, 5)?,
            max_wait: Duration::from_secs(positive("bruteforce_max_wait_secs", s.bruteforce_max_wait_secs, 15 * 60)?),
            ip_failures: count("bruteforce_ip_failures", s.bruteforce_ip_failures, 20)?,
            ip_window: Duration::from_secs(positive(
                "bruteforce_ip_window_secs",
                s.bruteforce_ip_window_secs,
                15 * 60,
            )?),
        };
        let rtmp_listen = match s.rtmp_listen.as_deref().map(str::trim) {
            None | Some("") => RtmpListen::Default,
            Some("off") => RtmpListen::Off,
            Some(text) => RtmpListen::At(text.parse().map_err(|_| {
                invalid("rtmp_listen", format!("{text:?} is not an address like 127.0.0.1:1935, nor \"off\""))
            })?),
        };
        let packager_url = match s.live_packager_url.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(text) => Some(
                Url::parse(text)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                    .ok_or_else(|| {
                        invalid("live_packager_url", "must be an http(s) URL such as http://10.0.0.5:8080/")
                    })?,
            ),
        };
        let live = LiveConfig {
            rtmp_listen,
            packager_url,
            max_bitrate_kbps: positive("live_max_bitrate_kbps", s.live_max_bitrate_kbps, 12_000)?,
            max_height: u32::try_from(positive("live_max_height", s.live_max_height, 1080)?)
                .ok()
                .filter(|h| *h <= 8640)
                .ok_or_else(|| invalid("live_max_height", "must be at most 8640"))?,
            max_duration: Duration::from_secs(positive("live_max_duration_secs", s.live_max_duration_secs, 12 * 3600)?),
            grace: Duration::from_secs(s.live_grace_secs.unwrap_or(30)),
            read_timeout: Duration::from_secs(positive("live_read_timeout_secs", s.live_read_timeout_secs, 10)?),
            max_per_user: positive("live_max_per_user", s.live_max_per_user, 2)?,
            max_per_instance: positive("live_max_per_instance", s.live_max_per_instance, 50)?,
            ladder: parse_ladder(s.live_ladder.as_deref().unwrap_or_default())?,
            rtmps: match (
                s.live_rtmps_listen.as_deref().map(str::trim).filter(|t| !t.is_empty()),
                &s.live_rtmps_cert_file,
                &s.live_rtmps_key_file,
            ) {
                (None, None, None) => None,
                (Some(text), Some(cert), Some(key)) => Some(RtmpsConfig {
                    listen: text.parse().map_err(|_| {
                        invalid("live_rtmps_listen", format!("{text:?} is not an address like 0.0.0.0:1936"))
                    })?,
                    tls: TlsFiles { cert: cert.clone(), key: key.clone() },
                }),
                (None, _, _) => {
                    return Err(invalid(
                        "live_rtmps_listen",
                        "is needed with live_rtmps_cert_file and live_rtmps_key_file",
                    ));
                }
                (_, None, _) => return Err(invalid("live_rtmps_cert_file", "is needed with live_rtmps_listen")),
                (_, _, None) => return Err(invalid("live_rtmps_key_file", "is needed with live_rtmps_listen")),
            },
        };
        let identity_providers = providers::resolve(&s.identity_providers)?;
        let tls = match (s.tls_cert_file, s.tls_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (Some(_), None) => return Err(invalid("tls_key_file", "is needed with tls_cert_file")),
            (None, Some(_)) => return Err(invalid("tls_cert_file", "is needed with tls_key_file")),
        };
        let upstreams = routes::resolve_upstreams(s.upstreams.as_ref())?;
        let routes = match &s.routes {
            None => None,
            Some(raw) => Some(routes::resolve_routes(raw, &upstreams)?),
        };
        Ok(Config {
            hsts_max_age: Duration::from_secs(s.hsts_max_age_secs.unwrap_or(365 * 24 * 3600)),
            identity_providers,
            mail: MailConfig { smtp_url, from },
            live,
            brute_force,
            tls,
            routes,
            upstreams,
            raw_routes: s.routes,
            raw_upstreams: s.upstreams,
            upstream_auth,
            upstream_api,
            trusted_proxies,
            data_dir,
            listen,
            metrics_listen,
            otlp_endpoint,
            public_url,
            database,
            database_max_connections,
            session,
            storage_url,
            storage_fallback_url,
            videos,
            first_user_admin: s.first_user_admin.unwrap_or(true),
            log_format: s.log_format.unwrap_or_default(),
            log_level,
            cookie_secret,
            signing_key_file: s.signing_key_file,
            http,
        })
    }

    /// The `Strict-Transport-Security` value every answer carries, when this instance is
    /// reached over https (its public URL, or its own TLS listener) and the header is not
    /// turned off.
    pub fn strict_transport_security(&self) -> Option<String> {
        let https = self.public_url.scheme() == "https" || self.tls.is_some();
        let max_age = self.hsts_max_age.as_secs();
        (https && max_age > 0).then(|| format!("max-age={max_age}"))
    }

    /// The effective configuration as TOML, secrets and URL passwords redacted.
    pub fn to_redacted_toml(&self) -> String {
        let settings = Settings {
            data_dir: Some(self.data_dir.clone()),
            listen: Some(self.listen.to_string()),
            metrics_listen: self.metrics_listen.map(|a| a.to_string()),
            otlp_endpoint: self.otlp_endpoint.as_ref().map(|u| redact_url_password(u.expose())),
            public_url: Some(self.public_url.to_string()),
            database_url: Some(match &self.database {
                DatabaseUrl::Sqlite(url) => url.clone(),
                DatabaseUrl::Postgres(url) => redact_url_password(url.expose()),
            }),
            database_max_connections: Some(u64::from(self.database_max_connections)),
            session_url: Some(match &self.session {
                SessionUrl::Embedded => String::new(),
                SessionUrl::Redis(url) => redact_url_password(url.expose()),
            }),
            storage_url: Some(redact_url_password(self.storage_url.as_str())),
            storage_fallback_url: self.storage_fallback_url.as_ref().map(|u| redact_url_password(u.as_str())),
            upload_max_bytes: Some(self.videos.upload_max_bytes),
            upload_quota_bytes: Some(self.videos.quota_bytes),
            upload_daily_quota_bytes: Some(self.videos.daily_quota_bytes),
            first_user_admin: Some(self.first_user_admin),
            upload_expiry_secs: Some(self.videos.upload_expiry.as_secs()),
            transcode_threads: Some(u64::from(self.videos.transcode_threads)),
            transcode_nice: Some(u64::from(self.videos.transcode_nice)),
            transcode_timeout_secs: Some(self.videos.transcode_timeout.as_secs()),
            transcode_stall_secs: Some(self.videos.transcode_stall.as_secs()),
            video_max_duration_secs: Some(self.videos.max_duration.as_secs()),
            comments_per_minute: Some(self.videos.comments_per_minute),
            chat_per_minute: Some(self.videos.chat_per_minute),
            ratings_per_minute: Some(self.videos.ratings_per_minute),
            public_page_max_age_secs: Some(self.videos.public_page_max_age.as_secs()),
            log_format: Some(self.log_format),
            log_level: Some(self.log_level.clone()),
            cookie_secret: self.cookie_secret.clone(),
            signing_key_file: self.signing_key_file.clone(),
            request_timeout_secs: Some(self.http.request_timeout.as_secs()),
            header_read_timeout_secs: Some(self.http.header_read_timeout.as_secs()),
            max_body_bytes: Some(self.http.max_body_bytes as u64),
            max_header_bytes: Some(self.http.max_header_bytes as u64),
            max_connections: Some(self.http.max_connections as u64),
            shutdown_timeout_secs: Some(self.http.shutdown_timeout.as_secs()),
            hsts_max_age_secs: Some(self.hsts_max_age.as_secs()),
            upstream_auth: Some(self.upstream_auth.join(",")),
            upstream_api: Some(self.upstream_api.join(",")),
            trusted_proxies: Some(self.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")),
            smtp_url: self.mail.smtp_url.clone(),
            mail_from: Some(self.mail.from.clone()),
            bruteforce_account_failures: Some(u64::from(self.brute_force.account_failures)),
            bruteforce_max_wait_secs: Some(self.brute_force.max_wait.as_secs()),
            bruteforce_ip_failures: Some(u64::from(self.brute_force.ip_failures)),
            bruteforce_ip_window_secs: Some(self.brute_force.ip_window.as_secs()),
            rtmp_listen: Some(match self.live.rtmp_listen {
                RtmpListen::Default => String::new(),
                RtmpListen::Off => "off".into(),
                RtmpListen::At(addr) => addr.to_string(),
            }),
            live_packager_url: self.live.packager_url.as_ref().map(Url::to_string),
            live_max_bitrate_kbps: Some(self.live.max_bitrate_kbps),
            live_max_height: Some(u64::from(self.live.max_height)),
            live_max_duration_secs: Some(self.live.max_duration.as_secs()),
            live_grace_secs: Some(self.live.grace.as_secs()),
            live_read_timeout_secs: Some(self.live.read_timeout.as_secs()),
            live_max_per_user: Some(self.live.max_per_user),
            live_max_per_instance: Some(self.live.max_per_instance),
            live_rtmps_listen: self.live.rtmps.as_ref().map(|r| r.listen.to_string()),
            live_rtmps_cert_file: self.live.rtmps.as_ref().map(|r| r.tls.cert.clone()),
            live_rtmps_key_file: self.live.rtmps.as_ref().map(|r| r.tls.key.clone()),
            live_ladder: Some(
                self.live.ladder.iter().map(|r| format!("{}:{}", r.height, r.video_kbps)).collect::<Vec<_>>().join(","),
            ),
            identity_providers: providers::unresolve(&self.identity_providers),
            tls_cert_file: self.tls.as_ref().map(|t| t.cert.clone()),
            tls_key_file: self.tls.as_ref().map(|t| t.key.clone()),
            routes: self.raw_routes.clone(),
            upstreams: self.raw_upstreams.clone(),
        };
        toml::to_string(&settings).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

fn parse_upstreams(key: &'static str, text: Option<&str>) -> Result<Vec<String>, ConfigError> {
    parse_upstream_list(key, text.unwrap_or("").split(',')).map_err(|e| match e {
        ConfigError::Entry { message, .. } => invalid(key, message),
        other => other,
    })
}

/// Internal `http://HOST:PORT` addresses (blank entries skipped).
fn parse_upstream_list<'a>(key: &str, parts: impl Iterator<Item = &'a str>) -> Result<Vec<String>, ConfigError> {
    let err = |message: String| ConfigError::Entry { key: key.to_string(), message };
    let mut out = Vec::new();
    for part in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let url = Url::parse(part).map_err(|e| err(format!("{part:?} is not a URL ({e}); use http://HOST:PORT")))?;
        if url.scheme() != "http" || url.host().is_none() || url.path() != "/" || url.query().is_some() {
            return Err(err(format!("{part:?}: use http://HOST:PORT (an internal address, no path)")));
        }
        out.push(part.trim_end_matches('/').to_string());
    }
    Ok(out)
}

fn parse_cidrs(text: Option<&str>) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let mut out = Vec::new();
    for part in text.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let net = part
            .parse::<ipnet::IpNet>()
            .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                invalid("trusted_proxies", format!("{part:?} is not an address or CIDR range like 10.0.0.0/8"))
            })?;
        out.push(net);
    }
    Ok(out)
}

fn parse_public_url(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| {
        invalid("public_url", format!("{text:?} is not a URL ({e}); use e.g. https://video.example.org"))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid("public_url", "must be an http:// or https:// URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("public_url", "must not carry a query, fragment or user name"));
    }
    if url.path() != "/" {
        return Err(invalid(
            "public_url",
            "must be the site's root (no path); serving under a sub-path is not supported",
        ));
    }
    Ok(url)
}

fn parse_database_url(text: &str) -> Result<DatabaseUrl, ConfigError> {
    let hint = "use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE";
    if let Some(path) = text.strip_prefix("sqlite:") {
        let path = path.trim_start_matches("//");
        if path.is_empty() {
            return Err(invalid("database_url", format!("the SQLite URL names no file; {hint}")));
        }
        return Ok(DatabaseUrl::Sqlite(text.to_string()));
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let url =
            Url::parse(text).map_err(|e| invalid("database_url", format!("malformed PostgreSQL URL ({e}); {hint}")))?;
        if url.host().is_none() {
            return Err(invalid("database_url", format!("the PostgreSQL URL names no host; {hint}")));
        }
        return Ok(DatabaseUrl::Postgres(Secret::new(text)));
    }
    let shown = redact_url_password(text);
    Err(invalid("database_url", format!("{shown:?} is neither sqlite:// nor postgres://; {hint}")))
}

fn parse_session_url(text: &str) -> Result<SessionUrl, ConfigError> {
    if text.is_empty() {
        return Ok(SessionUrl::Embedded);
    }
    let hint = "leave it empty for the embedded store, or use redis://HOST:PORT";
    let url = Url::parse(text).map_err(|e| invalid("session_url", format!("malformed URL ({e}); {hint}")))?;
    if !matches!(url.scheme(), "redis" | "rediss") || url.host().is_none() {
        return Err(invalid("session_url", format!("unsupported session store {:?}; {hint}", url.scheme())));
    }
    Ok(SessionUrl::Redis(Secret::new(text)))
}

fn parse_storage_url(key: &'static str, text: &str) -> Result<Url, ConfigError> {
    let hint = "use file:///PATH or s3://BUCKET";
    let url = Url::parse(text).map_err(|e| invalid(key, format!("malformed URL ({e}); {hint}")))?;
    match url.scheme() {
        "file" | "s3" => Ok(url),
        other => Err(invalid(key, format!("unsupported storage {other:?}; {hint}"))),
    }
}

fn file_url(path: &Path) -> Result<Url, ConfigError> {
    let absolute = std::path::absolute(path).map_err(|e| invalid("data_dir", e.to_string()))?;
    Url::from_file_path(&absolute).map_err(|()| invalid("data_dir", "cannot be expressed as a file:// URL"))
}

fn parse_smtp_url(url: Secret) -> Result<Secret, ConfigError> {
    let hint = "use smtp://[USER:PASSWORD@]HOST[:PORT] (add ?tls=required for STARTTLS) or smtps://HOST[:PORT]";
    let parsed = Url::parse(url.expose()).map_err(|_| invalid("smtp_url", format!("not a URL; {hint}")))?;
    if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host().is_none() {
        return Err(invalid("smtp_url", format!("unsupported mail server {:?}; {hint}", parsed.scheme())));
    }
    Ok(url)
}

/// Replaces the password of a URL, if any, for display.
pub fn redact_url_password(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some(Secret::REDACTED));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "[unparseable URL]".to_string(),
    }
}

#[cfg(test)]
mod tests;
