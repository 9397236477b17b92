//! [`Settings`]: the raw, layered keys — every one optional, every one a TOML key, a
//! `TURTLEMEN_*` environment variable and a flag at once.

use crate::ConfigError;
use crate::routes::{RouteSettings, UpstreamSettings};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use turtlemen_domain::Secret;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// clap's parser for a secret: any text is one (it never fails).
fn secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

/// The configuration keys. Documented one by one in `docs/configuration.md`; a test keeps that
/// page and this struct in step.
#[derive(Debug, Clone, Default, clap::Args, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Folder for the SQLite database, media, keys and the embedded session store.
    #[arg(long, env = "TURTLEMEN_DATA_DIR", global = true, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "TURTLEMEN_LISTEN", global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Address of a second listener answering only /metrics, /healthz and /readyz; set, the main
    /// listener no longer answers /metrics ("off" or empty: none).
    #[arg(long, env = "TURTLEMEN_METRICS_LISTEN", global = true, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// OTLP/HTTP endpoint (http://collector:4318) to export each request's and job's span to;
    /// empty: none.
    #[arg(long, env = "TURTLEMEN_OTLP_ENDPOINT", global = true, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// The URL people use to reach this instance.
    #[arg(long, env = "TURTLEMEN_PUBLIC_URL", global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// Application database: sqlite://PATH or postgres://….
    #[arg(long, env = "TURTLEMEN_DATABASE_URL", global = true, value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most connections the database pool opens.
    #[arg(long, env = "TURTLEMEN_DATABASE_MAX_CONNECTIONS", global = true, value_name = "N")]
    pub database_max_connections: Option<u64>,
    /// Session store: empty for embedded, or redis://….
    #[arg(long, env = "TURTLEMEN_SESSION_URL", global = true, value_name = "URL", hide_env_values = true)]
    pub session_url: Option<String>,
    /// Media storage: file:///PATH or s3://BUCKET.
    #[arg(long, env = "TURTLEMEN_STORAGE_URL", global = true, value_name = "URL")]
    pub storage_url: Option<String>,
    /// Media storage read when an object is not in storage_url (while moving media): file:///PATH or s3://BUCKET.
    #[arg(long, env = "TURTLEMEN_STORAGE_FALLBACK_URL", global = true, value_name = "URL")]
    pub storage_fallback_url: Option<String>,
    /// Largest upload accepted, in bytes.
    #[arg(long, env = "TURTLEMEN_UPLOAD_MAX_BYTES", global = true, value_name = "BYTES")]
    pub upload_max_bytes: Option<u64>,
    /// Bytes of originals one user may keep in all (0: no limit).
    #[arg(long, env = "TURTLEMEN_UPLOAD_QUOTA_BYTES", global = true, value_name = "BYTES")]
    pub upload_quota_bytes: Option<u64>,
    /// Bytes one user may upload in 24 hours (0: no limit).
    #[arg(long, env = "TURTLEMEN_UPLOAD_DAILY_QUOTA_BYTES", global = true, value_name = "BYTES")]
    pub upload_daily_quota_bytes: Option<u64>,
    /// Whether the first account created on a fresh instance becomes admin (true or false).
    #[arg(long, env = "TURTLEMEN_FIRST_USER_ADMIN", global = true, value_name = "BOOL")]
    pub first_user_admin: Option<bool>,
    /// Seconds an unfinished upload is kept before it is cleaned away.
    #[arg(long, env = "TURTLEMEN_UPLOAD_EXPIRY_SECS", global = true, value_name = "SECS")]
    pub upload_expiry_secs: Option<u64>,
    /// Threads one ffmpeg run may use (0: as many as cores).
    #[arg(long, env = "TURTLEMEN_TRANSCODE_THREADS", global = true, value_name = "N")]
    pub transcode_threads: Option<u64>,
    /// Niceness of ffmpeg runs, 0 to 19.
    #[arg(long, env = "TURTLEMEN_TRANSCODE_NICE", global = true, value_name = "N")]
    pub transcode_nice: Option<u64>,
    /// Longest a transcode may take before ffmpeg is killed, in seconds.
    #[arg(long, env = "TURTLEMEN_TRANSCODE_TIMEOUT_SECS", global = true, value_name = "SECS")]
    pub transcode_timeout_secs: Option<u64>,
    /// Seconds without progress after which ffmpeg counts as hung and is killed.
    #[arg(long, env = "TURTLEMEN_TRANSCODE_STALL_SECS", global = true, value_name = "SECS")]
    pub transcode_stall_secs: Option<u64>,
    /// Longest video accepted, in seconds.
    #[arg(long, env = "TURTLEMEN_VIDEO_MAX_DURATION_SECS", global = true, value_name = "SECS")]
    pub video_max_duration_secs: Option<u64>,
    /// Comments one user may write per minute (0: no limit).
    #[arg(long, env = "TURTLEMEN_COMMENTS_PER_MINUTE", global = true, value_name = "N")]
    pub comments_per_minute: Option<u32>,
    /// Live chat messages one user may write per minute (0: no limit).
    #[arg(long, env = "TURTLEMEN_CHAT_PER_MINUTE", global = true, value_name = "N")]
    pub chat_per_minute: Option<u32>,
    /// Rating changes (video likes and dislikes, comment likes) one user may make per minute
    /// (0: no limit).
    #[arg(long, env = "TURTLEMEN_RATINGS_PER_MINUTE", global = true, value_name = "N")]
    pub ratings_per_minute: Option<u32>,
    /// Seconds a shared cache (the gateway's) may keep a public page an anonymous visitor gets
    /// (home, watch, channel, search); 0: never kept.
    #[arg(long, env = "TURTLEMEN_PUBLIC_PAGE_MAX_AGE_SECS", global = true, value_name = "SECS")]
    pub public_page_max_age_secs: Option<u64>,
    /// Log format: text or json.
    #[arg(long, env = "TURTLEMEN_LOG_FORMAT", global = true, value_name = "FORMAT")]
    pub log_format: Option<super::LogFormat>,
    /// Log filter, in tracing's EnvFilter syntax.
    #[arg(long, env = "TURTLEMEN_LOG_LEVEL", global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Key for signing cookies (at least 32 characters); generated when unset.
    #[arg(long, env = "TURTLEMEN_COOKIE_SECRET", global = true, value_name = "SECRET", value_parser = secret, hide_env_values = true)]
    pub cookie_secret: Option<Secret>,
    /// PKCS#8 private key for signing tokens; generated when unset.
    #[arg(long, env = "TURTLEMEN_SIGNING_KEY_FILE", global = true, value_name = "PATH")]
    pub signing_key_file: Option<PathBuf>,
    /// Longest time a request may take, in seconds.
    #[arg(long, env = "TURTLEMEN_REQUEST_TIMEOUT_SECS", global = true, value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Longest time a client may take to send its request headers, in seconds.
    #[arg(long, env = "TURTLEMEN_HEADER_READ_TIMEOUT_SECS", global = true, value_name = "SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Largest request body accepted by ordinary endpoints, in bytes.
    #[arg(long, env = "TURTLEMEN_MAX_BODY_BYTES", global = true, value_name = "BYTES")]
    pub max_body_bytes: Option<u64>,
    /// Largest request head (request line and headers), in bytes.
    #[arg(long, env = "TURTLEMEN_MAX_HEADER_BYTES", global = true, value_name = "BYTES")]
    pub max_header_bytes: Option<u64>,
    /// Most client connections a listener holds open at once; past it, new ones wait to be accepted.
    #[arg(long, env = "TURTLEMEN_MAX_CONNECTIONS", global = true, value_name = "N")]
    pub max_connections: Option<u64>,
    /// The auth service's internal addresses (comma-separated http:// URLs), for roles run alone.
    #[arg(long, env = "TURTLEMEN_UPSTREAM_AUTH", global = true, value_name = "URLS")]
    pub upstream_auth: Option<String>,
    /// The API server's internal addresses (comma-separated http:// URLs), for a gateway alone.
    #[arg(long, env = "TURTLEMEN_UPSTREAM_API", global = true, value_name = "URLS")]
    pub upstream_api: Option<String>,
    /// Proxies in front of the gateway whose X-Forwarded-* headers are believed (comma-separated CIDRs).
    #[arg(long, env = "TURTLEMEN_TRUSTED_PROXIES", global = true, value_name = "CIDRS")]
    pub trusted_proxies: Option<String>,
    /// Longest wait for in-flight requests at shutdown, in seconds.
    #[arg(long, env = "TURTLEMEN_SHUTDOWN_TIMEOUT_SECS", global = true, value_name = "SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Over https, how long browsers keep to https (Strict-Transport-Security max-age; 0: not sent).
    #[arg(long, env = "TURTLEMEN_HSTS_MAX_AGE_SECS", global = true, value_name = "SECS")]
    pub hsts_max_age_secs: Option<u64>,
    /// Address of the RTMP ingest for live video ("off": none).
    #[arg(long, env = "TURTLEMEN_RTMP_LISTEN", global = true, value_name = "ADDR")]
    pub rtmp_listen: Option<String>,
    /// The packager address recorded for lives this process ingests (how other API servers reach it).
    #[arg(long, env = "TURTLEMEN_LIVE_PACKAGER_URL", global = true, value_name = "URL")]
    pub live_packager_url: Option<String>,
    /// Highest bit rate a live encoder may send, in kilobits per second.
    #[arg(long, env = "TURTLEMEN_LIVE_MAX_BITRATE_KBPS", global = true, value_name = "KBPS")]
    pub live_max_bitrate_kbps: Option<u64>,
    /// Largest live picture, as its short side in pixels (the long side may be 16/9 of it).
    #[arg(long, env = "TURTLEMEN_LIVE_MAX_HEIGHT", global = true, value_name = "PIXELS")]
    pub live_max_height: Option<u64>,
    /// Longest live stream, in seconds.
    #[arg(long, env = "TURTLEMEN_LIVE_MAX_DURATION_SECS", global = true, value_name = "SECS")]
    pub live_max_duration_secs: Option<u64>,
    /// Seconds a dropped live encoder may take to reconnect and continue the same live.
    #[arg(long, env = "TURTLEMEN_LIVE_GRACE_SECS", global = true, value_name = "SECS")]
    pub live_grace_secs: Option<u64>,
    /// Seconds without data after which a live encoder's connection is closed.
    #[arg(long, env = "TURTLEMEN_LIVE_READ_TIMEOUT_SECS", global = true, value_name = "SECS")]
    pub live_read_timeout_secs: Option<u64>,
    /// Most lives one user may have on air at once.
    #[arg(long, env = "TURTLEMEN_LIVE_MAX_PER_USER", global = true, value_name = "N")]
    pub live_max_per_user: Option<u64>,
    /// Most lives the instance carries at once.
    #[arg(long, env = "TURTLEMEN_LIVE_MAX_PER_INSTANCE", global = true, value_name = "N")]
    pub live_max_per_instance: Option<u64>,
    /// The live transcoding ladder: HEIGHT:KBPS rungs, comma-separated (empty: passthrough).
    #[arg(long, env = "TURTLEMEN_LIVE_LADDER", global = true, value_name = "RUNGS")]
    pub live_ladder: Option<String>,
    /// Address of the RTMPS (RTMP over TLS) ingest; needs the two files below.
    #[arg(long, env = "TURTLEMEN_LIVE_RTMPS_LISTEN", global = true, value_name = "ADDR")]
    pub live_rtmps_listen: Option<String>,
    /// PEM certificate chain of the RTMPS ingest.
    #[arg(long, env = "TURTLEMEN_LIVE_RTMPS_CERT_FILE", global = true, value_name = "PATH")]
    pub live_rtmps_cert_file: Option<PathBuf>,
    /// PEM private key of `live_rtmps_cert_file`.
    #[arg(long, env = "TURTLEMEN_LIVE_RTMPS_KEY_FILE", global = true, value_name = "PATH")]
    pub live_rtmps_key_file: Option<PathBuf>,
    /// External identity providers (`[[identity_providers]]` tables): TOML only, no flag.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_providers: Vec<crate::providers::IdentityProviderSettings>,
    /// SMTP server for outgoing mail: smtp://[USER:PASSWORD@]HOST[:PORT] or smtps://…; unset: the outbox folder.
    #[arg(long, env = "TURTLEMEN_SMTP_URL", global = true, value_name = "URL", value_parser = secret, hide_env_values = true)]
    pub smtp_url: Option<Secret>,
    /// The sender of outgoing mail, e.g. "Turtlemen <noreply@example.org>".
    #[arg(long, env = "TURTLEMEN_MAIL_FROM", global = true, value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// Failed sign-ins of one account that lock it for a while.
    #[arg(long, env = "TURTLEMEN_BRUTEFORCE_ACCOUNT_FAILURES", global = true, value_name = "N")]
    pub bruteforce_account_failures: Option<u64>,
    /// Longest lockout of an account, in seconds.
    #[arg(long, env = "TURTLEMEN_BRUTEFORCE_MAX_WAIT_SECS", global = true, value_name = "SECS")]
    pub bruteforce_max_wait_secs: Option<u64>,
    /// Failed sign-ins from one IP address that lock it out…
    #[arg(long, env = "TURTLEMEN_BRUTEFORCE_IP_FAILURES", global = true, value_name = "N")]
    pub bruteforce_ip_failures: Option<u64>,
    /// …within this many seconds.
    #[arg(long, env = "TURTLEMEN_BRUTEFORCE_IP_WINDOW_SECS", global = true, value_name = "SECS")]
    pub bruteforce_ip_window_secs: Option<u64>,
    /// PEM certificate chain: serve HTTPS (HTTP/2 by ALPN) with it; reloaded when it changes.
    #[arg(long, env = "TURTLEMEN_TLS_CERT_FILE", global = true, value_name = "PATH")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    #[arg(long, env = "TURTLEMEN_TLS_KEY_FILE", global = true, value_name = "PATH")]
    pub tls_key_file: Option<PathBuf>,
    /// The gateway's route table (`[[routes]]`, TOML only); absent: the built-in table.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteSettings>>,
    /// Upstream pools named by routes (`[upstreams.NAME]`, TOML only).
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstreams: Option<BTreeMap<String, UpstreamSettings>>,
}

impl Settings {
    /// Reads a TOML file; unknown keys are an error.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_string() + "; see docs/configuration.md for the keys",
        })
    }

    /// `self` laid over `lower`: every key set here wins.
    pub fn over(self, lower: Settings) -> Settings {
        Settings {
            data_dir: self.data_dir.or(lower.data_dir),
            listen: self.listen.or(lower.listen),
            metrics_listen: self.metrics_listen.or(lower.metrics_listen),
            otlp_endpoint: self.otlp_endpoint.or(lower.otlp_endpoint),
            public_url: self.public_url.or(lower.public_url),
            database_url: self.database_url.or(lower.database_url),
            database_max_connections: self.database_max_connections.or(lower.database_max_connections),
            session_url: self.session_url.or(lower.session_url),
            storage_url: self.storage_url.or(lower.storage_url),
            storage_fallback_url: self.storage_fallback_url.or(lower.storage_fallback_url),
            upload_max_bytes: self.upload_max_bytes.or(lower.upload_max_bytes),
            upload_quota_bytes: self.upload_quota_bytes.or(lower.upload_quota_bytes),
            upload_daily_quota_bytes: self.upload_daily_quota_bytes.or(lower.upload_daily_quota_bytes),
            first_user_admin: self.first_user_admin.or(lower.first_user_admin),
            upload_expiry_secs: self.upload_expiry_secs.or(lower.upload_expiry_secs),
            transcode_threads: self.transcode_threads.or(lower.transcode_threads),
            transcode_nice: self.transcode_nice.or(lower.transcode_nice),
            transcode_timeout_secs: self.transcode_timeout_secs.or(lower.transcode_timeout_secs),
            transcode_stall_secs: self.transcode_stall_secs.or(lower.transcode_stall_secs),
            video_max_duration_secs: self.video_max_duration_secs.or(lower.video_max_duration_secs),
            comments_per_minute: self.comments_per_minute.or(lower.comments_per_minute),
            chat_per_minute: self.chat_per_minute.or(lower.chat_per_minute),
            ratings_per_minute: self.ratings_per_minute.or(lower.ratings_per_minute),
            public_page_max_age_secs: self.public_page_max_age_secs.or(lower.public_page_max_age_secs),
            log_format: self.log_format.or(lower.log_format),
            log_level: self.log_level.or(lower.log_level),
            cookie_secret: self.cookie_secret.or(lower.cookie_secret),
            signing_key_file: self.signing_key_file.or(lower.signing_key_file),
            request_timeout_secs: self.request_timeout_secs.or(lower.request_timeout_secs),
            header_read_timeout_secs: self.header_read_timeout_secs.or(lower.header_read_timeout_secs),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            max_header_bytes: self.max_header_bytes.or(lower.max_header_bytes),
            max_connections: self.max_connections.or(lower.max_connections),
            upstream_auth: self.upstream_auth.or(lower.upstream_auth),
            upstream_api: self.upstream_api.or(lower.upstream_api),
            trusted_proxies: self.trusted_proxies.or(lower.trusted_proxies),
            shutdown_timeout_secs: self.shutdown_timeout_secs.or(lower.shutdown_timeout_secs),
            hsts_max_age_secs: self.hsts_max_age_secs.or(lower.hsts_max_age_secs),
            rtmp_listen: self.rtmp_listen.or(lower.rtmp_listen),
            live_packager_url: self.live_packager_url.or(lower.live_packager_url),
            live_max_bitrate_kbps: self.live_max_bitrate_kbps.or(lower.live_max_bitrate_kbps),
            live_max_height: self.live_max_height.or(lower.live_max_height),
            live_max_duration_secs: self.live_max_duration_secs.or(lower.live_max_duration_secs),
            live_grace_secs: self.live_grace_secs.or(lower.live_grace_secs),
            live_read_timeout_secs: self.live_read_timeout_secs.or(lower.live_read_timeout_secs),
            live_max_per_user: self.live_max_per_user.or(lower.live_max_per_user),
            live_max_per_instance: self.live_max_per_instance.or(lower.live_max_per_instance),
            live_ladder: self.live_ladder.or(lower.live_ladder),
            live_rtmps_listen: self.live_rtmps_listen.or(lower.live_rtmps_listen),
            live_rtmps_cert_file: self.live_rtmps_cert_file.or(lower.live_rtmps_cert_file),
            live_rtmps_key_file: self.live_rtmps_key_file.or(lower.live_rtmps_key_file),
            identity_providers: if self.identity_providers.is_empty() {
                lower.identity_providers
            } else {
                self.identity_providers
            },
            smtp_url: self.smtp_url.or(lower.smtp_url),
            mail_from: self.mail_from.or(lower.mail_from),
            bruteforce_account_failures: self.bruteforce_account_failures.or(lower.bruteforce_account_failures),
            bruteforce_max_wait_secs: self.bruteforce_max_wait_secs.or(lower.bruteforce_max_wait_secs),
            bruteforce_ip_failures: self.bruteforce_ip_failures.or(lower.bruteforce_ip_failures),
            bruteforce_ip_window_secs: self.bruteforce_ip_window_secs.or(lower.bruteforce_ip_window_secs),
            tls_cert_file: self.tls_cert_file.or(lower.tls_cert_file),
            tls_key_file: self.tls_key_file.or(lower.tls_key_file),
            routes: self.routes.or(lower.routes),
            upstreams: self.upstreams.or(lower.upstreams),
        }
    }
}
