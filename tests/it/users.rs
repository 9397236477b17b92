//! `turtlemen admin create-user` persists accounts on either backend, and refuses bad input
//! with one line and a non-zero exit.

use crate::helpers::{Stack, fresh_settings, run_cli};
use turtlemen_config::{Config, DatabaseUrl};
use turtlemen_domain::{Role, Username};

async fn create_user_persists(stack: Stack) {
    let Some((settings, _dir, _schema)) = fresh_settings(stack).await else { return };
    let config = Config::resolve(settings.clone()).unwrap();
    let data_dir = config.data_dir.display().to_string();
    let mut env = vec![("TURTLEMEN_DATA_DIR", data_dir.as_str())];
    let db_url;
    if let DatabaseUrl::Postgres(url) = &config.database {
        db_url = url.expose().to_string();
        env.push(("TURTLEMEN_DATABASE_URL", db_url.as_str()));
        // A fresh PostgreSQL schema must be migrated first, by the operator.
        let (code, _, err) = run_cli(
            &["admin", "create-user", "--username", "alice", "--email", "a@example.org", "--password-stdin"],
            "long enough pw\n",
            &env,
        );
        assert_ne!(code, 0);
        assert!(err.contains("turtlemen migrate"), "{err}");
        let (code, out, err) = run_cli(&["migrate"], "", &env);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("up to date"));
    }

    let create = |username: &str, email: &str, password: &str, admin: bool| {
        let mut args = vec!["admin", "create-user", "--username", username, "--email", email, "--password-stdin"];
        if admin {
            args.push("--admin");
        }
        run_cli(&args, password, &env)
    };
    let (code, out, err) = create("Alice", "Alice@Example.org", "correct horse battery\n", true);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("created admin Alice ("), "{out}");

    for (username, email, password, expected) in [
        ("ALICE", "other@example.org", "long enough pw", "username: this username is taken"),
        ("bob", "alice@EXAMPLE.org", "long enough pw", "email: an account with this email already exists"),
        ("bob", "bob@example.org", "short", "password: a password must be at least 8 characters long"),
        ("b", "bob@example.org", "long enough pw", "username: a username must be 3 to 32 characters long"),
        ("bob", "not-an-email", "long enough pw", "email: an email address looks like name@example.org"),
    ] {
        let (code, out, err) = create(username, email, password, false);
        assert_eq!(code, 1, "{username} {email}: {out}{err}");
        assert_eq!(err.trim_end(), format!("error: {expected}"), "one line naming the problem");
    }

    let (code, _, err) =
        run_cli(&["admin", "create-user", "--username", "carol", "--email", "c@example.org"], "", &env);
    assert_eq!(code, 2, "the password must come from stdin: {err}");

    // The account is really there, with its role and a verifiable Argon2id hash.
    let db = turtlemen::app::open_db(&config, false).await.unwrap();
    let user = turtlemen_db::users::find_by_username(&db, &Username::parse("alice").unwrap()).await.unwrap().unwrap();
    assert_eq!((user.username.as_str(), user.email.as_str(), user.role), ("Alice", "Alice@example.org", Role::Admin));
    let hash = turtlemen_db::users::password_hash(&db, user.id).await.unwrap().unwrap();
    assert!(turtlemen_auth::passwords::verify("correct horse battery", &hash));
    assert_eq!(turtlemen_db::users::count(&db).await.unwrap(), 1, "nothing half-created by the refused attempts");
    db.close().await;
}

#[tokio::test]
async fn create_user_persists_on_sqlite() {
    create_user_persists(Stack::Embedded).await;
}

#[tokio::test]
async fn create_user_persists_on_postgres() {
    create_user_persists(Stack::External).await;
}
