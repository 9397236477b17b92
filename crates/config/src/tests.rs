use super::*;
use clap::{Args, Command};

fn resolve(s: Settings) -> Result<Config, ConfigError> {
    Config::resolve(s)
}

#[test]
fn defaults_follow_the_design() {
    let c = resolve(Settings::default()).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.data_dir, PathBuf::from("turtlemen-data"));
    assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(c.session, SessionUrl::Embedded);
    assert!(matches!(c.database, DatabaseUrl::Sqlite(ref u) if u.ends_with("turtlemen-data/turtlemen.db")));
    assert_eq!(c.storage_url.scheme(), "file");
}

#[test]
fn layers_override_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nlog_level = \"debug\"\n").unwrap();
    let flags = Settings { listen: Some("127.0.0.1:9001".into()), ..Settings::default() };
    let c = Config::load(Some(&file), flags).unwrap();
    assert_eq!(c.listen.port(), 9001, "flag (or environment) beats file");
    assert_eq!(c.log_level, "debug", "file beats default");
}

#[test]
fn unknown_file_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
    let err = Config::load(Some(&file), Settings::default()).unwrap_err().to_string();
    assert!(err.contains("lisen"), "{err}");
}

#[test]
fn bad_values_name_the_key_and_the_fix() {
    let cases = [
        (Settings { database_url: Some("mysql://x".into()), ..Default::default() }, "database_url"),
        (Settings { database_url: Some("postgres://".into()), ..Default::default() }, "database_url"),
        (Settings { database_url: Some("sqlite://".into()), ..Default::default() }, "database_url"),
        (Settings { session_url: Some("memcached://x".into()), ..Default::default() }, "session_url"),
        (Settings { listen: Some("localhost".into()), ..Default::default() }, "listen"),
        (Settings { metrics_listen: Some("9090".into()), ..Default::default() }, "metrics_listen"),
        (Settings { otlp_endpoint: Some("collector:4318".into()), ..Default::default() }, "otlp_endpoint"),
        (Settings { otlp_endpoint: Some("file:///tmp/x".into()), ..Default::default() }, "otlp_endpoint"),
        (Settings { public_url: Some("javascript:alert(1)".into()), ..Default::default() }, "public_url"),
        (Settings { public_url: Some("https://x.org/sub".into()), ..Default::default() }, "public_url"),
        (Settings { cookie_secret: Some(Secret::new("short")), ..Default::default() }, "cookie_secret"),
        (Settings { request_timeout_secs: Some(0), ..Default::default() }, "request_timeout_secs"),
        (Settings { upstream_api: Some("https://api:8080".into()), ..Default::default() }, "upstream_api"),
        (Settings { upstream_auth: Some("http://auth:8081/auth".into()), ..Default::default() }, "upstream_auth"),
        (Settings { trusted_proxies: Some("10.0.0.0/33".into()), ..Default::default() }, "trusted_proxies"),
        (Settings { smtp_url: Some(Secret::new("http://u:hunter2@x")), ..Default::default() }, "smtp_url"),
        (Settings { mail_from: Some("nobody".into()), ..Default::default() }, "mail_from"),
        (Settings { bruteforce_account_failures: Some(0), ..Default::default() }, "bruteforce_account_failures"),
        (Settings { bruteforce_ip_window_secs: Some(0), ..Default::default() }, "bruteforce_ip_window_secs"),
    ];
    for (settings, key) in cases {
        let err = resolve(settings).unwrap_err().to_string();
        assert!(err.starts_with(key), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(!err.contains("hunter2"), "no secret in errors: {err}");
    }
}

#[test]
fn secrets_are_redacted() {
    let c = resolve(Settings {
        database_url: Some("postgres://app:pw123@db.internal/tm".into()),
        session_url: Some("redis://:redispw@cache:6379".into()),
        cookie_secret: Some(Secret::new("x".repeat(40))),
        otlp_endpoint: Some("https://otel:otlptok@collector.example:4318".into()),
        ..Default::default()
    })
    .unwrap();
    let shown = c.to_redacted_toml();
    let debug = format!("{c:?}");
    for text in [&shown, &debug] {
        assert!(!text.contains("pw123") && !text.contains("redispw") && !text.contains("xxxxxxxx"), "{text}");
        assert!(!text.contains("otlptok"), "{text}");
    }
    // The redacted output is itself a valid config file.
    let _: Settings = toml::from_str(&shown).unwrap();
}

/// docs/configuration.md documents every key with its flag and environment variable, and
/// nothing else.
#[test]
fn documentation_matches_the_keys() {
    let page = include_str!("../../../docs/configuration.md");
    let doc = page.split("\n## Keys").nth(1).expect("a Keys section").split("\n## ").next().unwrap_or("");
    let cmd = Settings::augment_args(Command::new("t"));
    let mut documented: Vec<&str> =
        doc.lines().filter_map(|l| l.strip_prefix("| `")).filter_map(|l| l.split('`').next()).collect();
    documented.sort();
    let mut keys = Vec::new();
    for arg in cmd.get_arguments() {
        let key = arg.get_id().as_str();
        let flag = format!("`--{}`", arg.get_long().unwrap());
        let env = format!("`{}`", arg.get_env().unwrap().to_str().unwrap());
        let row =
            doc.lines().find(|l| l.starts_with(&format!("| `{key}` "))).unwrap_or_else(|| panic!("{key} undocumented"));
        assert!(row.contains(&flag) && row.contains(&env), "row for {key} must name {flag} and {env}: {row}");
        keys.push(key);
    }
    keys.sort();
    assert_eq!(documented, keys, "docs/configuration.md rows and Settings fields differ");
}

fn from_toml(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(&file, text).unwrap();
    Config::load(Some(&file), Settings::default())
}

#[test]
fn routes_and_upstreams_from_toml() {
    let c = from_toml(
        r#"
        [[routes]]
        name = "media"
        host = "*.CDN.example.org"
        path = "/media"
        methods = ["get", "HEAD"]
        upstream = "media"
        auth = "none"
        timeout_secs = 0

        [[routes]]
        name = "rest"
        path = "/"
        upstream = "api"
        auth = "optional"
        max_body_bytes = 1024

        [upstreams.media]
        urls = ["http://10.0.0.1:9000", "http://10.0.0.2:9000/"]
        http2 = true
        connect_timeout_ms = 250
        "#,
    )
    .unwrap();
    let routes = c.routes.as_ref().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].host, Some(HostPattern::Suffix(".cdn.example.org".into())));
    assert!(routes[0].host.as_ref().unwrap().matches("a.cdn.example.org"));
    assert!(!routes[0].host.as_ref().unwrap().matches("cdn.example.org"));
    assert_eq!(routes[0].methods, Some(vec!["GET".to_string(), "HEAD".to_string()]));
    assert_eq!(routes[0].upstream, UpstreamRef::Named("media".into()));
    assert_eq!(routes[0].timeout, Some(std::time::Duration::ZERO));
    assert_eq!(routes[1].max_body_bytes, Some(1024));
    let media = &c.upstreams["media"];
    assert_eq!(media.urls, ["http://10.0.0.1:9000", "http://10.0.0.2:9000"]);
    assert!(media.http2);
    assert_eq!(media.connect_timeout, std::time::Duration::from_millis(250));
    // `turtlemen config` shows the tables, and its output reads back the same.
    let again = Config::resolve(toml::from_str(&c.to_redacted_toml()).unwrap()).unwrap();
    assert_eq!(again.routes, c.routes);
    assert_eq!(again.upstreams, c.upstreams);
    assert!(resolve(Settings::default()).unwrap().routes.is_none(), "absent: the built-in table");
}

#[test]
fn bad_routes_name_the_entry_and_key() {
    let route = |extra: &str| format!("[[routes]]\nname = \"r\"\nupstream = \"api\"\nauth = \"optional\"\n{extra}\n");
    let cases = [
        (route("path = \"api\""), "routes[0].path"),
        (route("path = \"/api/\""), "routes[0].path"),
        (route("path = \"/a/../b\""), "routes[0].path"),
        (route("path = \"/\"\nhost = \"exa mple.org\""), "routes[0].host"),
        (route("path = \"/\"\nmethods = []"), "routes[0].methods"),
        (route("path = \"/\"\nmethods = [\"G T\"]"), "routes[0].methods"),
        (route("path = \"/\"\nmax_body_bytes = 0"), "routes[0].max_body_bytes"),
        (format!("{}{}", route("path = \"/\""), route("path = \"/x\"")), "routes[1].name"),
        (
            "[[routes]]\nname = \"r\"\npath = \"/\"\nupstream = \"nowhere\"\nauth = \"none\"\n".into(),
            "routes[0].upstream",
        ),
        ("[upstreams.m]\nurls = [\"https://x:1\"]\n".into(), "upstreams.m.urls"),
        ("[upstreams.m]\nurls = []\n".into(), "upstreams.m.urls"),
        ("[upstreams.m]\nurls = [\"http://x:1\"]\nread_timeout_secs = 0\n".into(), "upstreams.m.read_timeout_secs"),
        ("[upstreams.api]\nurls = [\"http://x:1\"]\n".into(), "upstreams.api"),
    ];
    for (text, key) in cases {
        let err = from_toml(&text).unwrap_err().to_string();
        assert!(err.starts_with(key), "{key}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    let err = from_toml(&route("path = \"/\"\nauth_mode = \"x\"")).unwrap_err().to_string();
    assert!(err.contains("auth_mode"), "unknown keys in a route are refused: {err}");
    let err = resolve(Settings { tls_cert_file: Some("c.pem".into()), ..Default::default() }).unwrap_err().to_string();
    assert!(err.starts_with("tls_key_file"), "{err}");
}

#[test]
fn a_storage_fallback_is_another_store() {
    assert_eq!(resolve(Settings::default()).unwrap().storage_fallback_url, None);
    let with = |storage: &str, fallback: &str| {
        resolve(Settings {
            storage_url: Some(storage.into()),
            storage_fallback_url: Some(fallback.into()),
            ..Settings::default()
        })
    };
    let c = with("s3://media", "file:///srv/media").unwrap();
    assert_eq!(c.storage_fallback_url.as_ref().map(Url::as_str), Some("file:///srv/media"));
    assert_eq!(with("s3://media", "").unwrap().storage_fallback_url, None, "empty means none");
    for (fallback, says) in [("s3://media", "same store"), ("http://x/", "unsupported storage"), ("nope", "malformed")]
    {
        let err = with("s3://media", fallback).unwrap_err().to_string();
        assert!(err.starts_with("storage_fallback_url: ") && err.contains(says), "{fallback}: {err}");
    }
}
