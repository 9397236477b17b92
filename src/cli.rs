//! The command line: `turtlemen serve | gateway | auth | api | worker | migrate | config | admin`.
//!
//! Every configuration key is a global flag with a `TURTLEMEN_*` twin, so every subcommand
//! (`admin` included) honours the same settings. Errors end the process with one line on
//! stderr that names the problem and the fix, and a non-zero exit code.

use crate::app::{self, Internals, Role};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use turtlemen_config::{Config, Settings};
use turtlemen_domain::Role as UserRole;

/// Turtlemen: a self-hosted video-sharing platform.
#[derive(Debug, Parser)]
#[command(name = "turtlemen", version, about, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file; environment variables and flags override it.
    #[arg(long, env = "TURTLEMEN_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process (SQLite, embedded sessions and local disk by default).
    Serve,
    /// Run the gateway alone.
    Gateway,
    /// Run the auth service alone.
    Auth,
    /// Run the API server alone.
    Api,
    /// Run a media worker alone.
    Worker {
        /// Jobs run at once.
        #[arg(long, env = "TURTLEMEN_WORKER_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
        /// Seconds a claimed job stays this worker's without renewal; a killed worker's jobs are
        /// taken up again this long after its last renewal, or at once when it restarts.
        #[arg(long, env = "TURTLEMEN_WORKER_LEASE_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=3600))]
        lease_secs: u64,
        /// Address to answer `/healthz`, `/readyz` and `/metrics` on (for probes and scrapes);
        /// unset: the worker listens nowhere.
        #[arg(long, env = "TURTLEMEN_WORKER_HEALTH_LISTEN")]
        health_listen: Option<std::net::SocketAddr>,
    },
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print the effective configuration (secrets redacted).
    Config,
    /// Administration tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a local account.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Shown name; the username when omitted.
        #[arg(long)]
        display_name: Option<String>,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (the only way: never from a flag).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Register an OAuth/OpenID Connect client; prints the secret of a confidential client.
    CreateClient {
        #[arg(long)]
        client_id: String,
        /// Where the client may receive codes (exact match); repeat for several.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Where the client may send users after signing out; repeat for several.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Shown on the consent page; the client id when omitted.
        #[arg(long)]
        name: Option<String>,
        /// A public client (single-page or native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// A first-party client of this instance: no consent page.
        #[arg(long)]
        first_party: bool,
        /// How its ID tokens are signed (`id_token_signed_response_alg`): ES256 (default) or RS256.
        #[arg(long, value_name = "ALG")]
        id_token_alg: Option<String>,
    },
    /// Publish new token-signing keys (in the database), which every auth replica starts
    /// signing with two minutes later, with no restart; the old keys stay published until every
    /// token they signed has expired.
    RotateSigningKey,
    /// Set an account's role: user, moderator or admin (recorded in the audit log).
    SetRole {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = ["user", "moderator", "admin"])]
        role: String,
    },
    /// Ban an account: its sessions end at once, its content is hidden, its address cannot
    /// register again.
    Ban {
        #[arg(long)]
        username: String,
        /// Why (kept for moderators).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift an account's ban.
    Unban {
        #[arg(long)]
        username: String,
    },
    /// Set an account's upload quotas in bytes, overriding the instance's (`default` restores
    /// the instance's setting; 0: no limit).
    SetQuota {
        #[arg(long)]
        username: String,
        /// Bytes of originals the account may keep in all.
        #[arg(long, value_name = "BYTES|default")]
        total: Option<String>,
        /// Bytes the account may upload in any 24 hours.
        #[arg(long, value_name = "BYTES|default")]
        daily: Option<String>,
    },
    /// Write a consistent copy of the embedded SQLite database to a new FILE, while servers keep
    /// running (PostgreSQL and CockroachDB are backed up with their own tools: docs/operations.md).
    Backup {
        /// The file to create; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Replace the embedded SQLite database with a backup and bring it up to date. Stop every
    /// server that uses the database first: a database in use is refused.
    Restore {
        /// A file written by `admin backup`.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Transcode a ready video again (or every ready one) through the job queue; each stays
    /// watchable on its current renditions until the new ones replace them.
    Retranscode {
        /// The video's id.
        #[arg(value_name = "VIDEO_ID", required_unless_present = "all", conflicts_with = "all")]
        video: Option<String>,
        /// Every ready video, queued in batches.
        #[arg(long)]
        all: bool,
    },
    /// Copy every media object that is missing at the destination (or differs in size) from one
    /// store to another, streaming; run it again to finish an interrupted copy. Part of moving
    /// media between local disk and S3 with no downtime (docs/operations.md).
    CopyMedia {
        /// The store to read: file:///PATH (an existing folder) or s3://BUCKET[/PREFIX].
        #[arg(long, value_name = "URL")]
        from: String,
        /// The store to write: file:///PATH (created if missing) or s3://BUCKET[/PREFIX].
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Fill the database with a synthetic instance for benchmarks (users `seedN` that cannot
    /// sign in, their channels, videos, subscriptions and comments). Refuses a database seeded
    /// before.
    Seed {
        #[arg(long, default_value_t = 50_000)]
        users: u32,
        /// Channels in all, each user's own included.
        #[arg(long, default_value_t = 100_000)]
        channels: u32,
        #[arg(long, default_value_t = 1_000_000)]
        videos: u32,
        #[arg(long, default_value_t = 5_000_000)]
        subscriptions: u64,
        /// An existing account to make follow the biggest channels (see --follows).
        #[arg(long)]
        follower: Option<String>,
        #[arg(long, default_value_t = 1_000)]
        follows: u32,
        /// Comments in all (at most 10,000,000): the first 5 videos get up to 100,000 each,
        /// the others a handful.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(..=10_000_000))]
        comments: u64,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(e.kind(), DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand) {
                let _ = e.print();
                return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
            }
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first} (see `turtlemen --help`)");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(cli.config.as_deref(), cli.settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::logging::init(config.log_format, &config.log_level);
    // Blocking-pool threads (password hashes, file system calls) end after 2 s idle instead of
    // tokio's 10 s: an idle thread keeps its allocator heap, 8 MiB after a sign-in.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text its parent already shows.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out.replace('\n', " ")
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let role = match command {
        Command::Serve => Role::All,
        Command::Gateway => Role::Gateway,
        Command::Auth => Role::Auth,
        Command::Api => Role::Api,
        Command::Worker { concurrency, lease_secs, health_listen } => Role::Worker {
            concurrency: usize::from(concurrency),
            lease: std::time::Duration::from_secs(lease_secs),
            health_listen,
        },
        Command::Config => {
            print!("{}", config.to_redacted_toml());
            return Ok(());
        }
        Command::Migrate => return migrate(&config).await,
        Command::Admin(admin) => return run_admin(admin, &config, &Internals::default()).await,
    };
    let started = std::time::Instant::now();
    let server = app::prepare(role, &config, &Internals::default()).await?;
    tracing::info!(role = ?role, startup_ms = started.elapsed().as_millis() as u64, public_url = %config.public_url, "ready");
    server.run(turtlemen_http::server::shutdown_signal()).await;
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    if matches!(config.database, turtlemen_config::DatabaseUrl::Sqlite(_)) {
        crate::data_dir::prepare(&config.data_dir)?;
    }
    let db = app::open_db(config, true).await?;
    db.migrate().await?;
    db.close().await;
    println!("database schema is up to date");
    Ok(())
}

/// Opens the database for an admin command: migrated on SQLite, checked on PostgreSQL.
async fn admin_db(config: &Config) -> anyhow::Result<turtlemen_db::Db> {
    Ok(match &config.database {
        turtlemen_config::DatabaseUrl::Sqlite(_) => {
            crate::data_dir::prepare(&config.data_dir)?;
            let db = app::open_db(config, true).await?;
            db.migrate().await?;
            db
        }
        turtlemen_config::DatabaseUrl::Postgres(_) => {
            let db = app::open_db(config, false).await?;
            db.ensure_migrated().await?;
            db
        }
    })
}

/// Publishes the next signing keys (making the first ones if the database has none yet).
async fn rotate_signing_keys(
    db: &turtlemen_db::Db,
    config: &Config,
    internals: &Internals,
) -> anyhow::Result<turtlemen_auth::signing_keys::Rotation> {
    if config.signing_key_file.is_some() {
        bail!(
            "signing_key_file is set: rotate by replacing that file and restarting the auth service (or unset it to use keys in the database)"
        );
    }
    crate::data_dir::prepare(&config.data_dir)?;
    let keys = crate::data_dir::keys(config)?;
    crate::signing_keys::prepare(db, config, &keys, &internals.signing_keys).await?;
    crate::signing_keys::rotate(db, &keys, &internals.signing_keys).await
}

/// Runs an `admin` subcommand. `internals` are those of the roles it acts beside (the session
/// store's key prefix: a ban ends the sessions where the gateways keep them).
pub async fn run_admin(command: AdminCommand, config: &Config, internals: &Internals) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateClient {
            client_id,
            redirect_uris,
            post_logout_redirect_uris,
            name,
            public,
            first_party,
            id_token_alg,
        } => {
            let db = admin_db(config).await?;
            let new = turtlemen_auth::clients::NewClient {
                client_id: client_id.clone(),
                name,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                first_party,
                id_token_alg,
            };
            let created = turtlemen_auth::clients::create(&db, new).await;
            db.close().await;
            match created? {
                Some(secret) => println!("created confidential client {client_id}\nclient_secret: {secret}"),
                None => println!("created public client {client_id} (PKCE required)"),
            }
            Ok(())
        }
        AdminCommand::RotateSigningKey => {
            let db = admin_db(config).await?;
            let rotated = rotate_signing_keys(&db, config, internals).await;
            db.close().await;
            let rotated = rotated?;
            println!(
                "published new signing keys {}; every auth service signs with them from {} (no restart needed)",
                rotated.kids.join(", "),
                rotated.signs_from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            Ok(())
        }
        AdminCommand::CreateUser { username, email, display_name, admin, password_stdin } => {
            if !password_stdin {
                bail!("pass the password on standard input with --password-stdin");
            }
            let mut input = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut input)
                .context("cannot read the password from standard input")?;
            let password = input.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&input);
            let db = admin_db(config).await?;
            let form = turtlemen_auth::accounts::AccountForm {
                username: &username,
                email: &email,
                display_name: display_name.as_deref(),
                password,
                role: if admin { UserRole::Admin } else { UserRole::User },
                promote_if_first: config.first_user_admin,
            };
            let created = turtlemen_auth::accounts::create(&db, form).await;
            db.close().await;
            let user = created?;
            println!("created {} {} ({})", user.role.as_str(), user.username, user.id);
            Ok(())
        }
        AdminCommand::SetRole { username, role } => {
            let db = admin_db(config).await?;
            let done = set_role(&db, &username, &role).await;
            db.close().await;
            done?;
            println!("{username} is now {role}");
            Ok(())
        }
        AdminCommand::Ban { username, reason } => {
            let db = admin_db(config).await?;
            let sessions = app::open_sessions(config, internals).await;
            let done = match sessions {
                Ok(sessions) => ban(&db, &sessions, &username, &reason).await,
                Err(e) => Err(e),
            };
            db.close().await;
            if done? {
                println!("banned {username}; their sessions have ended");
            } else {
                println!("{username} was banned already; their sessions have ended");
            }
            Ok(())
        }
        AdminCommand::Unban { username } => {
            let db = admin_db(config).await?;
            let done = unban(&db, &username).await;
            db.close().await;
            if done? {
                println!("unbanned {username}");
            } else {
                println!("{username} was not banned");
            }
            Ok(())
        }
        AdminCommand::SetQuota { username, total, daily } => {
            let db = admin_db(config).await?;
            let done = set_quota(&db, &username, total.as_deref(), daily.as_deref()).await;
            db.close().await;
            done?;
            println!("quotas of {username} set");
            Ok(())
        }
        AdminCommand::Backup { to } => {
            if !matches!(config.database, turtlemen_config::DatabaseUrl::Sqlite(_)) {
                return Err(turtlemen_db::backup::BackupError::NotSqlite.into());
            }
            // Not migrated: a backup copies the database as the running servers have it.
            let db = app::open_db(config, false).await?;
            let done = turtlemen_db::backup::backup(&db, &to).await;
            db.close().await;
            let copied = done?;
            println!(
                "wrote {} ({} bytes): {} tables, schema version {}",
                to.display(),
                copied.bytes,
                copied.tables,
                copied.schema_version
            );
            Ok(())
        }
        AdminCommand::Restore { from } => {
            let turtlemen_config::DatabaseUrl::Sqlite(url) = &config.database else {
                return Err(turtlemen_db::backup::RestoreError::NotSqlite.into());
            };
            crate::data_dir::prepare(&config.data_dir)?;
            let copied = turtlemen_db::backup::restore(url, &from).await?;
            println!(
                "restored {} into {url} ({} bytes): {} tables, schema version {}; start the servers again",
                from.display(),
                copied.bytes,
                copied.tables,
                copied.schema_version
            );
            Ok(())
        }
        AdminCommand::Retranscode { video, all } => {
            let db = admin_db(config).await?;
            let done = retranscode(&db, video.as_deref(), all).await;
            db.close().await;
            done
        }
        AdminCommand::CopyMedia { from, to } => copy_media(&from, &to).await,
        AdminCommand::Seed { users, channels, videos, subscriptions, follower, follows, comments } => {
            let db = admin_db(config).await?;
            let follower = match follower {
                Some(name) => {
                    let username =
                        turtlemen_domain::Username::parse(&name).map_err(|e| anyhow::anyhow!("--follower: {e}"))?;
                    let user = turtlemen_db::users::find_by_username(&db, &username)
                        .await?
                        .with_context(|| format!("--follower: no account named {name}"))?;
                    Some(user.id.0)
                }
                None => None,
            };
            let plan =
                turtlemen_db::seed::SeedPlan { users, channels, videos, subscriptions, follower, follows, comments };
            let started = std::time::Instant::now();
            let report = turtlemen_db::seed::seed(&db, &plan).await;
            db.close().await;
            let report = report?;
            for (part, took) in &report.timings {
                println!("{part}: {:.1} s", took.as_secs_f64());
            }
            println!(
                "seeded {} users, {} channels, {} videos, {} subscriptions in {:.1} s",
                report.users,
                report.channels,
                report.videos,
                report.subscriptions,
                started.elapsed().as_secs_f64()
            );
            if report.comments > 0 {
                println!("seeded {} comments, {} comment likes", report.comments, report.comment_likes);
                for video in &report.hot_videos {
                    println!("most commented video: {video}");
                }
            }
            Ok(())
        }
    }
}

/// Copies the media of store `from` into store `to` (`admin copy-media`).
async fn copy_media(from: &str, to: &str) -> anyhow::Result<()> {
    use turtlemen_storage::{Storage, StorageLocation};
    let parse = |flag: &str, text: &str| -> anyhow::Result<StorageLocation> {
        let url = url::Url::parse(text)
            .map_err(|e| anyhow::anyhow!("--{flag} {text:?} is not a URL ({e}); use file:///PATH or s3://BUCKET"))?;
        StorageLocation::from_url(&url).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let (source, target) = (parse("from", from)?, parse("to", to)?);
    if source == target {
        bail!("--from and --to name the same store; give the store to copy from and a different one to copy to");
    }
    if let (StorageLocation::Local { root: a }, StorageLocation::Local { root: b }) = (&source, &target)
        && (a.starts_with(b) || b.starts_with(a))
    {
        bail!("--from and --to are folders one inside the other; copy to a folder outside the source");
    }
    if let StorageLocation::Local { root } = &source
        && !root.is_dir()
    {
        bail!("--from: there is no folder {}; check the URL", root.display());
    }
    let (source, target) = (Storage::open_location(source).await?, Storage::open_location(target).await?);
    let started = std::time::Instant::now();
    let report = turtlemen_storage::copy::copy_missing(&source, &target, |r| {
        if r.copied % 1000 == 0 {
            println!("copied {} objects ({} bytes) so far", r.copied, r.bytes);
        }
    })
    .await
    .context("copying media")?;
    println!(
        "copied {} objects ({} bytes) in {:.1} s; {} of {} objects were at the destination already",
        report.copied,
        report.bytes,
        started.elapsed().as_secs_f64(),
        report.present,
        report.objects
    );
    Ok(())
}

/// Videos read per page by `retranscode --all`.
const RETRANSCODE_BATCH: u32 = 500;

/// Queues the re-transcode of one ready video, or of every one.
async fn retranscode(db: &turtlemen_db::Db, video: Option<&str>, all: bool) -> anyhow::Result<()> {
    use turtlemen_db::videos::{self, VideoState};
    use turtlemen_worker::retranscode::enqueue;
    if all {
        let (mut queued, mut before) = (0u64, 0u64);
        let mut after = None;
        loop {
            let page = videos::ready_after(db, after, RETRANSCODE_BATCH).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.0);
            for (id, version) in &page {
                if enqueue(db, *id, version.saturating_add(1)).await? {
                    queued += 1;
                } else {
                    before += 1;
                }
            }
        }
        println!("queued {queued} videos for re-transcoding ({before} were queued or running already)");
        return Ok(());
    }
    let text = video.context("name a video id, or --all")?;
    let id = uuid::Uuid::parse_str(text.trim()).map_err(|_| anyhow::anyhow!("VIDEO_ID: {text} is not a video id"))?;
    let v = videos::get(db, id).await?.with_context(|| format!("there is no video {id} (unknown or deleted)"))?;
    if v.state != VideoState::Ready {
        bail!(
            "video {id} is {}: only a ready video is transcoded again (a processing one is being transcoded now; \
             a failed one needs a new upload)",
            v.state.as_str()
        );
    }
    let version = v.media_version.saturating_add(1);
    if enqueue(db, id, version).await? {
        println!("queued video {id} for re-transcoding (media version {version})");
    } else {
        println!("video {id} is queued or being re-transcoded already (media version {version})");
    }
    Ok(())
}

async fn set_role(db: &turtlemen_db::Db, username: &str, role: &str) -> anyhow::Result<()> {
    use turtlemen_api::moderation::{Actor, bans};
    let role = UserRole::parse(role).with_context(|| format!("--role: {role} is not user, moderator or admin"))?;
    let user = bans::find_by_username(db, username).await.with_context(|| format!("--username: {username}"))?;
    bans::set_role(db, &Actor::command_line(), &user, role).await?;
    Ok(())
}

async fn ban(
    db: &turtlemen_db::Db,
    sessions: &turtlemen_session::Sessions,
    username: &str,
    reason: &str,
) -> anyhow::Result<bool> {
    use turtlemen_api::moderation::{Actor, bans};
    let user = bans::find_by_username(db, username).await.with_context(|| format!("--username: {username}"))?;
    Ok(bans::ban(db, sessions, &Actor::command_line(), None, &user, reason.trim()).await?)
}

async fn unban(db: &turtlemen_db::Db, username: &str) -> anyhow::Result<bool> {
    use turtlemen_api::moderation::{Actor, bans};
    let user = bans::find_by_username(db, username).await.with_context(|| format!("--username: {username}"))?;
    Ok(bans::unban(db, &Actor::command_line(), &user).await?)
}

/// `--total` / `--daily`: absent keeps the current value, `default` clears it, else bytes.
fn quota_arg(flag: &str, value: Option<&str>, current: Option<u64>) -> anyhow::Result<Option<u64>> {
    match value {
        None => Ok(current),
        Some("default") => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| anyhow::anyhow!("{flag}: a number of bytes, or default")),
    }
}

async fn set_quota(
    db: &turtlemen_db::Db,
    username: &str,
    total: Option<&str>,
    daily: Option<&str>,
) -> anyhow::Result<()> {
    use turtlemen_api::moderation::{Actor, bans};
    let user = bans::find_by_username(db, username).await.with_context(|| format!("--username: {username}"))?;
    let quota = turtlemen_db::users::QuotaOverride {
        total_bytes: quota_arg("--total", total, user.quota.total_bytes)?,
        daily_bytes: quota_arg("--daily", daily, user.quota.daily_bytes)?,
    };
    bans::set_quota(db, &Actor::command_line(), user.id, quota).await?;
    Ok(())
}
