//! Redis restarted (down a few seconds, its keys gone with it) and Redis flushed (`FLUSHALL`) under load: the
//! sessions are lost, so signed-in people are asked to sign in again (401 from the API), they
//! can at once, and nothing else fails.

use super::load::{Load, Op, Outcome, ReadyWatch, Tally};
use super::services::PrivateRedis;
use super::{Serve, lost};
use crate::helpers::{PgSchema, external_urls};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_and_flushed_under_load() {
    let Some((pg, _)) = external_urls() else { return };
    // PostgreSQL is not broken here: a schema of the shared server does.
    let schema = PgSchema::create(&pg).await;
    let mut redis = PrivateRedis::start().await;
    let serve = Serve::start(&[("TURTLEMEN_DATABASE_URL", schema.url()), ("TURTLEMEN_SESSION_URL", redis.url())]).await;
    let db = super::open_db(&schema.url()).await;
    let (people, talk) = serve.people(&db).await;
    let ready = ReadyWatch::start(&serve.base);
    let load = Load::start(people, &talk);
    load.writes_go_on(6, "before Redis restarts").await;

    // 1. Redis restarted: killed, away for a while, started again on its port, empty.
    let restart = Instant::now();
    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.went_unready_after(restart) {
        assert!(Instant::now() < deadline, "/readyz never turned 503 with Redis down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(super::OUTAGE).await;
    redis.start_again().await;
    let restarted = Instant::now();
    let ready_again = ready.ready_after(restarted, Duration::from_secs(30)).await;
    load.signed_in_again(&super::PEOPLE, restarted, "after Redis restarted").await;
    load.writes_go_on(6, "after Redis restarted").await;
    // 2. Redis flushed.
    let flush = Instant::now();
    assert_eq!(redis.cli(&["FLUSHALL"]), "OK");
    load.signed_in_again(&super::PEOPLE, flush, "after Redis was flushed").await;
    load.writes_go_on(6, "after Redis was flushed").await;
    let (ops, committed) = load.stop().await;
    let lost = lost(&db, &committed).await;

    let before_flush: Vec<Op> = ops.iter().filter(|o| o.started < flush).cloned().collect();
    let after_flush: Vec<Op> = ops.iter().filter(|o| o.ended() >= flush).cloned().collect();
    let cases = [
        ("redis restarted (keys lost)", &before_flush, restart, restarted, ready_again),
        ("redis flushed (FLUSHALL)", &after_flush, flush, flush, flush),
    ];
    for (case, ops, fault, back, ready_at) in cases {
        // Recovered: every person signed in again after the fault.
        let signed_in_again = super::PEOPLE
            .iter()
            .map(|who| {
                ops.iter()
                    .filter(|o| o.who == *who && o.what == "sign in" && o.started >= back && o.outcome == Outcome::Ok)
                    .map(Op::ended)
                    .min()
                    .unwrap_or_else(|| {
                        let theirs: Vec<_> = ops.iter().filter(|o| o.who == *who && o.ended() >= fault).collect();
                        panic!("{case}: {who} signed in again: {theirs:#?}")
                    })
            })
            .max()
            .expect("people");
        let tally = Tally { case, ops, fault, back, recovered: signed_in_again.max(ready_at) };
        tally.print(lost, "recovered = every person signed in again");
        // Asked to sign in again: each person answered 401 (their session gone), then signed in.
        for who in super::PEOPLE {
            let asked = ops.iter().filter(|o| o.who == who && o.ended() >= fault && o.outcome == Outcome::Status(401));
            assert!(asked.count() >= 1, "{case}: {who} was asked to sign in again");
        }
        assert!(
            ops.iter().filter(|o| o.what == "sign in" && o.started >= back).all(|o| o.outcome == Outcome::Ok),
            "{case}: signing in works again at once: {:?}",
            ops.iter().filter(|o| o.what == "sign in" && o.outcome != Outcome::Ok).collect::<Vec<_>>()
        );
        // No request past the request timeout (the figure: the line's slowest failure).
        tally.check(&[]);
        // Nothing but 401s (a session gone) and, for a restart, 503s while Redis was away.
        let other: Vec<&Op> = ops
            .iter()
            .filter(|o| o.ended() >= fault)
            .filter(|o| !matches!(o.outcome, Outcome::Ok | Outcome::Status(401)))
            .filter(|o| !(o.outcome == Outcome::Status(503) && o.started < ready_at))
            .collect();
        assert!(other.is_empty(), "{case}: other failures: {other:?}");
    }
    assert_eq!(lost, 0, "committed writes lost");
}
