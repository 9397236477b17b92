//! The binary's behaviour at the command line: bad input gives one line naming the problem and
//! the fix, a non-zero exit, and nothing created; `config` redacts; `serve` starts, logs JSON
//! on request, and stops cleanly on SIGTERM.

use crate::helpers::run_cli;
use std::time::{Duration, Instant};

fn assert_one_line_error(code: i32, err: &str, must_contain: &[&str]) {
    assert_ne!(code, 0, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    for needle in must_contain {
        assert!(lines[0].contains(needle), "{needle:?} missing from {:?}", lines[0]);
    }
}

#[test]
fn unknown_flags_and_subcommands() {
    let (code, _, err) = run_cli(&["serve", "--no-such-flag"], "", &[]);
    assert_eq!(code, 2);
    assert_one_line_error(code, &err, &["--no-such-flag", "turtlemen --help"]);
    let (code, _, err) = run_cli(&["fly"], "", &[]);
    assert_one_line_error(code, &err, &["fly"]);
}

#[test]
fn unknown_config_file_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("turtlemen.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\ndatabse_url = \"sqlite://x\"\n").unwrap();
    let data = dir.path().join("data");
    let (code, _, err) =
        run_cli(&["serve", "--config", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap()], "", &[]);
    assert_one_line_error(code, &err, &["databse_url"]);
    assert!(!data.exists(), "nothing created");
    let (code, _, err) = run_cli(&["serve", "--config", dir.path().join("missing.toml").to_str().unwrap()], "", &[]);
    assert_one_line_error(code, &err, &["missing.toml", "--config"]);
}

/// Each bad setting fails before anything is created in the data dir.
#[test]
fn bad_settings_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (&[("TURTLEMEN_DATABASE_URL", "mysql://root@localhost/x")], &["database_url", "postgres://"]),
        (&[("TURTLEMEN_DATABASE_URL", "postgres://")], &["database_url"]),
        (
            &[("TURTLEMEN_DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")],
            &["cannot connect to PostgreSQL at 127.0.0.1:1", "--database-url"],
        ),
        (&[("TURTLEMEN_SESSION_URL", "redis://127.0.0.1:1")], &["cannot reach Redis at 127.0.0.1:1", "--session-url"]),
        (&[("TURTLEMEN_SESSION_URL", "memcached://x")], &["session_url"]),
        (&[("TURTLEMEN_LISTEN", "nonsense")], &["listen", "--listen"]),
        (&[("TURTLEMEN_STORAGE_URL", "ftp://x")], &["storage_url"]),
    ];
    for (env, needles) in cases {
        // Later entries win, so a case may override the listen address.
        let mut all = vec![("TURTLEMEN_DATA_DIR", data_s), ("TURTLEMEN_LISTEN", "127.0.0.1:0")];
        all.extend_from_slice(env);
        let (code, _, err) = run_cli(&["serve"], "", &all);
        assert_one_line_error(code, &err, needles);
        assert!(!data.exists(), "nothing created for {env:?}");
    }
}

#[test]
fn unwritable_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let data = file.join("data");
    let (code, _, err) = run_cli(&["serve", "--listen", "127.0.0.1:0", "--data-dir", data.to_str().unwrap()], "", &[]);
    assert_one_line_error(code, &err, &["cannot create data dir", "--data-dir"]);
}

#[test]
fn port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) = run_cli(&["serve", "--listen", &addr, "--data-dir", data.to_str().unwrap()], "", &[]);
    assert_one_line_error(code, &err, &[&addr, "--listen"]);
    assert!(!data.exists(), "nothing created");
}

#[test]
fn config_shows_effective_values_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7000\"\nmax_body_bytes = 1234\npublic_url = \"https://file.example\"\n",
    )
    .unwrap();
    let (code, out, err) = run_cli(
        &["config", "--config", file.to_str().unwrap(), "--public-url", "https://flag.example"],
        "",
        &[
            ("TURTLEMEN_LISTEN", "127.0.0.1:7001"),
            ("TURTLEMEN_DATABASE_URL", "postgres://app:topsecretpw@db.internal/tm"),
            ("TURTLEMEN_COOKIE_SECRET", "0123456789abcdef0123456789abcdef-secret"),
            ("TURTLEMEN_SMTP_URL", "smtps://mailer:smtppassw0rd@mail.internal"),
            ("TURTLEMEN_BRUTEFORCE_ACCOUNT_FAILURES", "7"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let shown: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(shown["listen"].as_str(), Some("127.0.0.1:7001"), "environment beats file");
    assert_eq!(shown["public_url"].as_str(), Some("https://flag.example/"), "flag beats file");
    assert_eq!(shown["max_body_bytes"].as_integer(), Some(1234), "file beats default");
    assert!(!out.contains("topsecretpw") && !out.contains("0123456789abcdef"), "{out}");
    assert_eq!(shown["cookie_secret"].as_str(), Some("[redacted]"));
    assert!(!out.contains("smtppassw0rd") && !out.contains("mailer"), "{out}");
    assert_eq!(shown["smtp_url"].as_str(), Some("[redacted]"));
    assert_eq!(shown["bruteforce_account_failures"].as_integer(), Some(7));
}

#[test]
fn rotate_signing_key_publishes_the_next_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let (code, out, err) = run_cli(
        &[
            "admin",
            "create-client",
            "--client-id",
            "old",
            "--public",
            "--id-token-alg",
            "RS256",
            "--redirect-uri",
            "https://rp.example/cb",
            "--data-dir",
            data_arg,
        ],
        "",
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created public client old"), "{out}");
    let (code, _, err) = run_cli(
        &[
            "admin",
            "create-client",
            "--client-id",
            "x",
            "--id-token-alg",
            "HS256",
            "--redirect-uri",
            "https://rp.example/cb",
            "--data-dir",
            data_arg,
        ],
        "",
        &[],
    );
    assert_one_line_error(code, &err, &["id-token-alg"]);

    // An older version's data dir: its key is imported into the database, then the next keys
    // are published there; the files are left as they were.
    std::fs::create_dir_all(data.join("secrets")).unwrap();
    let es = turtlemen_auth::tokens::generate_es256_pkcs8().unwrap();
    std::fs::write(data.join("secrets/signing-es256.p8"), &es).unwrap();
    let old_kid = turtlemen_auth::tokens::Signer::from_pkcs8(&es).unwrap().kid().to_string();
    let (code, out, err) = run_cli(&["admin", "rotate-signing-key", "--data-dir", data_arg], "", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("published new signing keys") && out.contains("no restart needed"), "{out}");
    assert!(!out.contains(&old_kid), "{out}");
    assert_eq!(std::fs::read(data.join("secrets/signing-es256.p8")).unwrap(), es);
    assert!(!data.join("secrets/signing-rs256.p8").exists(), "no key file written");
    // One rotation at a time.
    let (code, _, err) = run_cli(&["admin", "rotate-signing-key", "--data-dir", data_arg], "", &[]);
    assert_one_line_error(code, &err, &["a rotation is under way"]);

    // A configured key file is not ours to rotate.
    let key = dir.path().join("key.p8");
    std::fs::write(&key, &es).unwrap();
    let (code, _, err) = run_cli(
        &["admin", "rotate-signing-key", "--data-dir", data_arg, "--signing-key-file", key.to_str().unwrap()],
        "",
        &[],
    );
    assert_one_line_error(code, &err, &["signing_key_file"]);
}

/// `serve` on an empty folder: ready quickly, JSON logs on request, secrets kept 0600 and never
/// logged, stops with exit code 0 on SIGTERM.
#[test]
fn serve_starts_and_stops_on_sigterm() {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let port = crate::cluster::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_turtlemen"))
        .arg("serve")
        .current_dir(dir.path())
        .env("TURTLEMEN_LISTEN", format!("127.0.0.1:{port}"))
        .env("TURTLEMEN_RTMP_LISTEN", "127.0.0.1:0")
        .env("TURTLEMEN_LOG_FORMAT", "json")
        .env_remove("TURTLEMEN_DATABASE_URL")
        .env_remove("TURTLEMEN_SESSION_URL")
        .env_remove("TURTLEMEN_DATA_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Write;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply).unwrap();
            assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not start listening");
        assert!(child.try_wait().unwrap().is_none(), "serve exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The default data dir was created in the working folder, secrets restricted to the owner
    // (the token-signing keys are in the database).
    let data = dir.path().join("turtlemen-data");
    assert!(data.join("turtlemen.db").exists());
    let mode = std::fs::metadata(data.join("secrets/cookie.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "cookie.key");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let cookie = std::fs::read(data.join("secrets/cookie.key")).unwrap();
    let lines: Vec<serde_json::Value> =
        logs.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    assert!(lines.iter().any(|l| l["message"] == "ready"), "{logs}");
    assert!(lines.iter().any(|l| l["message"].as_str().is_some_and(|m| m.starts_with("shutting down"))), "{logs}");
    assert!(!logs.contains(&hex_of(&cookie)), "the cookie key is never logged");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
