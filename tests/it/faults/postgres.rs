//! PostgreSQL restarted (`pg_ctl stop -m fast`, a pause, start) under load: `/readyz` turns 503
//! then 200, requests meanwhile are refused with 503 and `Retry-After` well within the pool's
//! 5 s wait for a connection (a refused connect makes the pool fail at once, `db::refusals`),
//! the pool reconnects by itself, and every write answered 2xx is there afterwards.

use super::load::{Load, Outcome, ReadyWatch, Tally};
use super::services::{PrivatePostgres, PrivateRedis};
use super::{OUTAGE, Serve, lost, open_db};
use crate::helpers::external_urls;
use std::time::{Duration, Instant};

/// A refused request must be refused at most this long after it was sent: well under the pool's
/// wait for a connection (5 s), which a refusing server no longer costs. (A request that was
/// already waiting when PostgreSQL went away sees it at its next try, within a second.)
const REFUSED_WITHIN: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load() {
    if external_urls().is_none() {
        return;
    }
    let pg = PrivatePostgres::start();
    let redis = PrivateRedis::start().await;
    let serve = Serve::start(&[("TURTLEMEN_DATABASE_URL", pg.url()), ("TURTLEMEN_SESSION_URL", redis.url())]).await;
    let db = open_db(&pg.url()).await;
    let (people, talk) = serve.people(&db).await;
    let ready = ReadyWatch::start(&serve.base);
    let load = Load::start(people, &talk);
    load.writes_go_on(6, "before the restart").await;

    let fault = Instant::now();
    tokio::task::block_in_place(|| pg.stop_fast());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.went_unready_after(fault) {
        assert!(Instant::now() < deadline, "/readyz never turned 503 with PostgreSQL down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Once the refusal is known, a request is refused at once, and told when to come back.
    let asked = Instant::now();
    let res = reqwest::get(format!("{}/api/v1/videos/{talk}", serve.base)).await.expect("an answer");
    let refused_in = asked.elapsed();
    assert_eq!(res.status(), 503, "refused while PostgreSQL is away");
    assert!(res.headers().contains_key("retry-after"), "a 503 says when to come back: {:?}", res.headers());
    assert!(refused_in < Duration::from_secs(1), "refused at once, not after the pool's wait: {refused_in:?}");
    // The outage itself: PostgreSQL stays down this long while the people go on.
    tokio::time::sleep(OUTAGE).await;
    tokio::task::block_in_place(|| pg.start_again());
    let back = Instant::now();
    let recovered = ready.ready_after(back, Duration::from_secs(30)).await;
    load.writes_go_on(6, "after the restart").await;
    let (ops, committed) = load.stop().await;

    let lost = lost(&db, &committed).await;
    let tally = Tally { case: "postgres restarted (fast)", ops: &ops, fault, back, recovered };
    let mut refusals: Vec<Duration> = tally.during().filter(|o| o.outcome != Outcome::Ok).map(|o| o.took).collect();
    refusals.sort();
    tally.print(
        lost,
        &format!(
            "down {} ms, slowest /readyz {} ms, refusals median {} ms (one asked alone: {} ms)",
            (back - fault).as_millis(),
            ready.slowest().as_millis(),
            refusals.get(refusals.len() / 2).copied().unwrap_or_default().as_millis(),
            refused_in.as_millis()
        ),
    );
    assert_eq!(lost, 0, "committed writes lost");
    tally.check(&[]);
    assert!(ready.slowest() < Duration::from_secs(5), "/readyz answers within its check timeout");
    // While PostgreSQL was away, requests were refused with 503, quickly.
    for op in tally.during().filter(|o| o.outcome != Outcome::Ok) {
        let refused = match &op.outcome {
            Outcome::Status(s) => *s == 503,
            Outcome::Failed(why) => why.contains("503"),
            Outcome::Ok => true,
        };
        assert!(refused, "during the outage, refused with 503: {op:?}");
        assert!(op.took < REFUSED_WITHIN, "refused quickly: {op:?}");
    }
    assert!(tally.during().any(|o| o.outcome != Outcome::Ok), "the outage was felt: {:?}", tally.during().count());
}
