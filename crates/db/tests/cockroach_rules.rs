//! CockroachDB readiness, checked without CockroachDB: every PostgreSQL migration and every
//! query in this crate is scanned for what DESIGN.md's database rules forbid (sequences and
//! `SERIAL` keys, advisory locks, `LISTEN`/`NOTIFY`, triggers and stored procedures, timestamps
//! without a time zone), and every transaction this crate opens is checked to sit inside
//! `retry_serializable`, so a 40001 aborting a transaction is retried. The dynamic half — the
//! PostgreSQL suite at SERIALIZABLE, CockroachDB's isolation, with
//! `TURTLEMEN_TEST_POSTGRES_SERIALIZABLE=1` — is in tests/it/helpers.rs and docs/cockroachdb.md.

use std::fs;
use std::path::{Path, PathBuf};

/// SQL as lower-case tokens: words (`[a-z0-9_]+`) and single punctuation characters.
fn tokens(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in sql.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// What DESIGN.md's database rules forbid, found in a token stream: `(rule, the tokens found)`.
fn forbidden(t: &[String]) -> Vec<(&'static str, String)> {
    let at = |i: usize| t.get(i).map_or("", String::as_str);
    let mut found = Vec::new();
    for i in 0..t.len() {
        let (w, next, after) = (at(i), at(i + 1), at(i + 2));
        let rule = match w {
            "serial" | "bigserial" | "smallserial" => Some("SERIAL keys (CockroachDB makes them hotspots)"),
            "sequence" if at(i.wrapping_sub(1)) == "create" => Some("sequences (CockroachDB makes them hotspots)"),
            "nextval" if next == "(" => Some("sequences (CockroachDB makes them hotspots)"),
            "identity" if at(i.wrapping_sub(1)) == "as" => Some("identity columns (sequences underneath)"),
            w if w.starts_with("pg_advisory") || w.starts_with("pg_try_advisory") => {
                Some("advisory locks (missing on CockroachDB)")
            }
            "pg_notify" => Some("LISTEN/NOTIFY (workers poll instead)"),
            "listen" | "notify" | "unlisten"
                if next.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !next.is_empty() =>
            {
                Some("LISTEN/NOTIFY (workers poll instead)")
            }
            "trigger" if t[..i].iter().rev().take(4).any(|p| p == "create") => Some("triggers"),
            "function" | "procedure" if t[..i].iter().rev().take(3).any(|p| p == "create") => {
                Some("stored functions and procedures")
            }
            "do" if next == "$" => Some("stored functions and procedures"),
            "timestamp" if !(next == "with" && after == "time") => Some("timestamps without a time zone"),
            _ => None,
        };
        if let Some(rule) = rule {
            found.push((rule, t[i.saturating_sub(2)..(i + 3).min(t.len())].join(" ")));
        }
    }
    found
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("read the folder") {
        let path = entry.expect("read a folder entry").path();
        if path.is_dir() {
            out.extend(files(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// SQL text without `--` comments.
fn sql_without_comments(text: &str) -> String {
    text.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The string literals of a Rust file (normal and raw) that hold SQL: those naming a statement.
fn rust_sql_literals(text: &str) -> String {
    let mut literals = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' => {
                // A char literal ('"' would otherwise open a string); a lifetime has no closing quote.
                if let Some(len) = text[i + 1..].find('\'').filter(|&n| n <= 4) {
                    i += len + 1;
                }
                i += 1;
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'"' | b'#'))
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) =>
            {
                let hashes = bytes[i + 1..].iter().take_while(|&&b| b == b'#').count();
                let open = i + 1 + hashes;
                if bytes.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let end = text[open + 1..].find(&close).map_or(bytes.len(), |n| open + 1 + n);
                literals.push(&text[open + 1..end]);
                i = end + close.len();
            }
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                literals.push(&text[i + 1..j.min(bytes.len())]);
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    let statements = ["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "WITH", "NOTIFY", "LISTEN"];
    literals.into_iter().filter(|l| statements.iter().any(|s| l.contains(s))).collect::<Vec<_>>().join("\n")
}

fn violations(name: &str, sql: &str) -> Vec<String> {
    forbidden(&tokens(sql)).into_iter().map(|(rule, near)| format!("{name}: {rule}: near `{near}`")).collect()
}

#[test]
fn the_patterns_find_what_they_forbid() {
    // A check that could not fail would prove nothing: each rule catches its example.
    let bad = [
        "CREATE TABLE t (id BIGSERIAL PRIMARY KEY)",
        "SELECT nextval('s')",
        "id INT GENERATED ALWAYS AS IDENTITY",
        "SELECT pg_advisory_lock(1)",
        "NOTIFY jobs",
        "CREATE TRIGGER t AFTER INSERT ON x",
        "CREATE OR REPLACE FUNCTION f() RETURNS int",
        "created_at TIMESTAMP NOT NULL",
    ];
    for sql in bad {
        assert!(!violations("example", sql).is_empty(), "not caught: {sql}");
    }
    for sql in ["created_at TIMESTAMPTZ NOT NULL", "at timestamp with time zone", "SELECT notify_comment", "x AS id"] {
        assert!(violations("example", sql).is_empty(), "wrongly caught: {sql}");
    }
}

#[test]
fn postgres_migrations_keep_to_what_cockroachdb_runs() {
    let dir = crate_dir().join("migrations/postgres");
    let mut found = Vec::new();
    let migrations = files(&dir, "sql");
    assert!(migrations.len() > 10, "migrations not found in {}", dir.display());
    for path in migrations {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        found.extend(violations(&name, &sql_without_comments(&fs::read_to_string(&path).unwrap())));
    }
    assert!(found.is_empty(), "migrations break the database rules:\n{}", found.join("\n"));
}

#[test]
fn queries_keep_to_what_cockroachdb_runs() {
    let mut found = Vec::new();
    for path in files(&crate_dir().join("src"), "rs") {
        let name = path.strip_prefix(crate_dir()).unwrap().display().to_string();
        found.extend(violations(&name, &rust_sql_literals(&fs::read_to_string(&path).unwrap())));
    }
    assert!(found.is_empty(), "queries break the database rules:\n{}", found.join("\n"));
}

/// No query streams its rows: a cursor left open while the transaction issues its next
/// statement is a second active portal, which CockroachDB refuses.
#[test]
fn no_query_streams_rows() {
    let mut found = Vec::new();
    for path in files(&crate_dir().join("src"), "rs") {
        let text = fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.contains(".fetch(") && !line.trim_start().starts_with("//") {
                found.push(format!("{}:{}", path.strip_prefix(crate_dir()).unwrap().display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "rows streamed with fetch():\n{}", found.join("\n"));
}

#[test]
fn the_migration_runner_takes_no_advisory_lock() {
    let pool = fs::read_to_string(crate_dir().join("src/pool.rs")).unwrap();
    assert!(pool.contains("set_locking(false)"), "the migrator must not take PostgreSQL's advisory lock");
}

/// Where the last function declared in `text` starts (0 if none).
fn function_start(text: &str) -> usize {
    let mut offset = 0;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_start();
        let l = l.strip_prefix("pub(crate) ").or_else(|| l.strip_prefix("pub ")).unwrap_or(l);
        let l = l.strip_prefix("async ").unwrap_or(l);
        if l.starts_with("fn ") {
            start = offset;
        }
        offset += line.len();
    }
    start
}

/// Every `begin()` of a transaction in this crate is inside the closure of a
/// `retry_serializable` call in the same function, so a serialization failure is retried
/// (read-only transactions that only explain a plan excepted).
#[test]
fn every_transaction_is_retried_on_serialization_failure() {
    let mut found = Vec::new();
    let mut transactions = 0;
    for path in files(&crate_dir().join("src"), "rs") {
        let text = fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(crate_dir()).unwrap().display().to_string();
        for (at, _) in text.match_indices(".begin()") {
            transactions += 1;
            let start = function_start(&text[..at]);
            // The function's text, up to the next function: a transaction that only explains a
            // query plan (`SET LOCAL` + `EXPLAIN`, no write) needs no retry.
            let end = at + text[at..].find("\nfn ").or_else(|| text[at..].find("\npub ")).unwrap_or(text.len() - at);
            let body = &text[start..end];
            let explains_only =
                body.contains("EXPLAIN") && !["INSERT", "UPDATE", "DELETE"].iter().any(|w| body.contains(w));
            if !text[start..at].contains("retry_serializable(") && !explains_only {
                let line = text[..at].lines().count();
                found.push(format!("{name}:{line}"));
            }
        }
    }
    assert!(transactions > 20, "too few transactions found ({transactions}): the scan is broken");
    assert!(found.is_empty(), "transactions opened outside retry_serializable:\n{}", found.join("\n"));
}
