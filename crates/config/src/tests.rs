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
        ..Default::default()
    })
    .unwrap();
    let shown = c.to_redacted_toml();
    let debug = format!("{c:?}");
    for text in [&shown, &debug] {
        assert!(!text.contains("pw123") && !text.contains("redispw") && !text.contains("xxxxxxxx"), "{text}");
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
