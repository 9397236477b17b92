//! Search and the home page on both stacks: ranking, suggestions as one types, each filter and
//! sort, the index kept in step with edits, deletes and privacy, only what anyone may see,
//! hostile queries (a result or a clean 400, never a 5xx), trending with time decay, categories
//! and "From your subscriptions".

use crate::channels::{call, new_video, page, publish};
use crate::helpers::TestApp;
use crate::on_both_stacks;
use crate::uploads::signed_in;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use turtlemen_db::Db;
use turtlemen_db::videos::{self as rows, Processed, Rendition};
use uuid::Uuid;

/// `text` percent-encoded as a query value.
fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The titles of the videos and the handles of the channels a search finds.
async fn search(app: &TestApp, query: &str) -> (Vec<String>, Vec<String>) {
    let (status, body) = call(app, None, Method::GET, &format!("/api/v1/search?{query}"), None).await;
    assert_eq!(status, 200, "{query}: {body}");
    let titles = body["videos"].as_array().unwrap().iter().map(|v| v["title"].as_str().unwrap().to_owned()).collect();
    let handles =
        body["channels"].as_array().unwrap().iter().map(|c| c["handle"].as_str().unwrap().to_owned()).collect();
    (titles, handles)
}

async fn titles(app: &TestApp, q: &str) -> Vec<String> {
    search(app, &format!("q={}", enc(q))).await.0
}

/// Sets text fields of a video through the API, as its owner.
async fn edit(app: &TestApp, who: &crate::gateway::Browser, id: &str, change: Value) {
    let (status, body) = call(app, Some(who), Method::PATCH, &format!("/api/v1/videos/{id}"), Some(change)).await;
    assert_eq!(status, 200, "{body}");
}

/// Makes a video ready with this duration, as processing would.
async fn publish_lasting(app: &TestApp, id: &str, duration_secs: f64) {
    let id = Uuid::parse_str(id).unwrap();
    rows::mark_uploaded(&app.db, id).await.unwrap();
    let p = Processed {
        duration_secs,
        width: 640,
        height: 360,
        renditions: vec![Rendition { name: "360p".into(), width: 640, height: 360, bandwidth: 900_000 }],
        has_poster: true,
        has_storyboard: false,
    };
    rows::mark_ready(&app.db, id, &p).await.unwrap();
}

/// Moves a video's publication time (the upload-date filter and "newest" read it).
async fn published_at(app: &TestApp, id: &str, at: DateTime<Utc>) {
    let id = Uuid::parse_str(id).unwrap();
    let sql = "UPDATE videos SET published_at = $1 WHERE id = $2";
    match &app.db {
        Db::Sqlite(pool) => sqlx::query(sql).bind(at).bind(id).execute(pool).await.unwrap().rows_affected(),
        Db::Postgres(pool) => sqlx::query(sql).bind(at).bind(id).execute(pool).await.unwrap().rows_affected(),
    };
}

async fn add_views_at(app: &TestApp, id: &str, n: u64, at: DateTime<Utc>) {
    turtlemen_db::trending::add_views_at(&app.db, &[(Uuid::parse_str(id).unwrap(), n)], at).await.unwrap();
}

on_both_stacks! {
    async fn search_ranks_and_filters_and_sorts(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let (status, _) = call(&app, Some(&ann), Method::POST, "/api/v1/channels",
            Some(json!({"handle": "turtletalks", "display_name": "Turtle Talks", "description": "All about shells."}))).await;
        assert_eq!(status, 201);

        // Title beats tags beats description.
        let in_title = new_video(&app, &ann, "Turtle shells explained", "public", Some("turtletalks")).await;
        edit(&app, &ann, &in_title, json!({"description": "A short lesson."})).await;
        let in_tags = new_video(&app, &ann, "Reef diary", "public", None).await;
        edit(&app, &ann, &in_tags, json!({"tags": ["turtle", "reef"]})).await;
        let in_description = new_video(&app, &bob, "Ocean life", "public", None).await;
        edit(&app, &bob, &in_description, json!({"description": "At minute three a turtle swims by."})).await;
        publish_lasting(&app, &in_title, 65.0).await;
        publish_lasting(&app, &in_tags, 600.0).await;
        publish_lasting(&app, &in_description, 1800.0).await;

        let (found, channels) = search(&app, "q=turtle").await;
        assert_eq!(found, ["Turtle shells explained", "Reef diary", "Ocean life"], "relevance");
        assert_eq!(channels, ["turtletalks"], "the channel's name matches too");
        assert_eq!(titles(&app, "TURTLE Shells").await, ["Turtle shells explained"], "every word must match, any case");
        assert_eq!(search(&app, "q=talks").await.1, ["turtletalks"]);
        assert!(titles(&app, "nothing-like-this").await.is_empty());

        // Duration: short < 4 min, medium 4–20, long > 20.
        assert_eq!(search(&app, "q=turtle&duration=short").await.0, ["Turtle shells explained"]);
        assert_eq!(search(&app, "q=turtle&duration=medium").await.0, ["Reef diary"]);
        assert_eq!(search(&app, "q=turtle&duration=long").await.0, ["Ocean life"]);
        // Upload date.
        published_at(&app, &in_tags, Utc::now() - TimeDelta::days(10)).await;
        published_at(&app, &in_description, Utc::now() - TimeDelta::days(400)).await;
        assert_eq!(search(&app, "q=turtle&date=today").await.0, ["Turtle shells explained"]);
        assert_eq!(search(&app, "q=turtle&date=month").await.0, ["Turtle shells explained", "Reef diary"]);
        assert_eq!(search(&app, "q=turtle&date=year").await.0.len(), 2);
        assert_eq!(search(&app, "q=turtle&date=hour").await.0, ["Turtle shells explained"]);
        // Channel.
        assert_eq!(search(&app, "q=turtle&channel=bob").await.0, ["Ocean life"]);
        assert_eq!(search(&app, "q=turtle&channel=TurtleTalks").await.0, ["Turtle shells explained"]);
        assert!(search(&app, "q=turtle&channel=nobody-here").await.0.is_empty(), "an unknown channel matches nothing");
        // Sorts.
        assert_eq!(search(&app, "q=turtle&sort=date").await.0, ["Turtle shells explained", "Reef diary", "Ocean life"]);
        add_views_at(&app, &in_description, 50, Utc::now()).await;
        add_views_at(&app, &in_tags, 5, Utc::now()).await;
        assert_eq!(search(&app, "q=turtle&sort=views").await.0, ["Ocean life", "Reef diary", "Turtle shells explained"]);

        // Pages: numbered and bounded.
        let (_, body) = call(&app, None, Method::GET, "/api/v1/search?q=turtle", None).await;
        assert_eq!((body["page"].as_u64(), body["next_page"].is_null()), (Some(1), true), "{body}");
        for (query, code) in [("q=turtle&page=0", "invalid_page"), ("q=turtle&page=21", "invalid_page"), ("q=turtle&sort=best", "invalid_filter"),
            ("q=turtle&date=decade", "invalid_filter"), ("q=turtle&duration=epic", "invalid_filter"), ("", "missing_query"), ("q=%20", "missing_query")] {
            let (status, body) = call(&app, None, Method::GET, &format!("/api/v1/search?{query}"), None).await;
            assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{query}: {body}");
        }

        // The page, without JavaScript: the same results, the filters as form controls.
        let (status, html) = page(&app, None, "/search?q=turtle&duration=long").await;
        assert_eq!(status, 200);
        assert!(html.contains("Ocean life") && !html.contains("Reef diary"), "{html}");
        assert!(html.contains("<option value=\"long\" selected>"), "{html}");
        assert!(html.contains("name=\"q\" value=\"turtle\""), "{html}");
        let (status, html) = page(&app, None, "/search?q=turtle").await;
        assert_eq!(status, 200);
        assert!(html.contains("Turtle Talks") && html.contains("href=\"/@turtletalks\""), "channels are listed: {html}");
        for card in ["1:05", "10:00", "30:00", "50 views", "ago"] {
            assert!(html.contains(card), "cards show durations, views and ages ({card})");
        }
        let (status, html) = page(&app, None, "/search?q=turtle&page=99").await;
        assert_eq!(status, 400, "a bad page is a 400 page with the reason");
        assert!(html.contains("page is 1 to 20"), "{html}");
        let (status, html) = page(&app, None, "/search").await;
        assert_eq!(status, 200);
        assert!(html.contains("id=\"search-q\""), "the empty form: {html}");

        // SQLite searches from the FTS5 index.
        if let Db::Sqlite(_) = &app.db {
            let text = turtlemen_domain::SearchText::parse("turtle").unwrap();
            let plan = turtlemen_db::search::plan(&app.db, &text).await.unwrap().join("\n");
            assert!(plan.contains("VIRTUAL TABLE INDEX"), "{plan}");
            assert!(!plan.contains("SCAN v\n") && !plan.ends_with("SCAN v"), "no scan of every video:\n{plan}");
        }
    }

    async fn suggestions_match_what_is_being_typed(app) {
        let ann = signed_in(&app, "ann").await;
        let (status, _) = call(&app, Some(&ann), Method::POST, "/api/v1/channels",
            Some(json!({"handle": "turtletalks", "display_name": "Turtle Talks"}))).await;
        assert_eq!(status, 201);
        let public = new_video(&app, &ann, "Turtle shells explained", "public", None).await;
        publish(&app, &public).await;
        let private = new_video(&app, &ann, "Turtle secrets", "private", None).await;
        publish(&app, &private).await;
        let described = new_video(&app, &ann, "Ocean life", "public", None).await;
        edit(&app, &ann, &described, json!({"description": "turtles everywhere"})).await;
        publish(&app, &described).await;

        let suggest = |q: &'static str| {
            let app = &app;
            async move {
                let (status, body) = call(app, None, Method::GET, &format!("/api/v1/search/suggestions?q={}", enc(q)), None).await;
                assert_eq!(status, 200, "{q}: {body}");
                body["suggestions"].as_array().unwrap().iter()
                    .map(|s| format!("{}:{}", s["kind"].as_str().unwrap(), s["text"].as_str().unwrap())).collect::<Vec<_>>()
            }
        };
        assert_eq!(suggest("tur").await, ["channel:Turtle Talks", "video:Turtle shells explained"], "titles only, public only");
        assert_eq!(suggest("Turtle sh").await, ["video:Turtle shells explained"]);
        assert_eq!(suggest("turtletal").await, ["channel:Turtle Talks"], "handles too");
        assert!(suggest("t").await.is_empty(), "one letter offers nothing");
        assert!(suggest("\"*(").await.is_empty());
        let (_, body) = call(&app, None, Method::GET, "/api/v1/search/suggestions?q=tur", None).await;
        assert_eq!(body["suggestions"][0]["url"], "/@turtletalks");
        assert_eq!(body["suggestions"][1]["url"], format!("/videos/{public}"));
    }

    async fn the_index_follows_edits_deletes_and_privacy(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let id = new_video(&app, &ann, "Alpha turtles", "public", None).await;
        assert!(titles(&app, "alpha").await.is_empty(), "not listed before it can be played");
        publish(&app, &id).await;
        assert_eq!(titles(&app, "alpha").await, ["Alpha turtles"]);

        edit(&app, &ann, &id, json!({"title": "Beta tortoises", "tags": ["gamma"]})).await;
        assert!(titles(&app, "alpha").await.is_empty(), "the old title is gone from the index");
        assert_eq!(titles(&app, "beta").await, ["Beta tortoises"]);
        assert_eq!(titles(&app, "gamma").await, ["Beta tortoises"]);
        for privacy in ["private", "unlisted"] {
            edit(&app, &ann, &id, json!({"privacy": privacy})).await;
            assert!(titles(&app, "beta").await.is_empty(), "{privacy} videos are never found");
            let (_, body) = call(&app, None, Method::GET, "/api/v1/search/suggestions?q=bet", None).await;
            assert!(body["suggestions"].as_array().unwrap().is_empty(), "{privacy}: {body}");
            let (_, html) = page(&app, Some(&bob), "/search?q=beta").await;
            assert!(!html.contains("Beta tortoises"), "{privacy}: {html}");
        }
        edit(&app, &ann, &id, json!({"privacy": "public"})).await;
        assert_eq!(titles(&app, "beta").await, ["Beta tortoises"]);
        rows::mark_failed(&app.db, Uuid::parse_str(&id).unwrap(), "the file is damaged").await.unwrap();
        assert!(titles(&app, "beta").await.is_empty(), "a failed video is not found");

        let other = new_video(&app, &ann, "Delta turtles", "public", None).await;
        publish(&app, &other).await;
        assert_eq!(titles(&app, "delta").await, ["Delta turtles"]);
        let (status, _) = call(&app, Some(&ann), Method::DELETE, &format!("/api/v1/videos/{other}"), None).await;
        assert_eq!(status, 204);
        assert!(titles(&app, "delta").await.is_empty(), "a deleted video is gone");
        let uploading = new_video(&app, &ann, "Epsilon turtles", "public", None).await;
        assert!(titles(&app, "epsilon").await.is_empty(), "an upload in progress is not found: {uploading}");

        // Channels: a new one, then a new name.
        assert_eq!(search(&app, "q=ann").await.1, ["ann"], "every account's channel is indexed at sign-up");
        let (status, _) = call(&app, Some(&ann), Method::POST, "/api/v1/channels", Some(json!({"handle": "shellshock", "display_name": "Shell Shock"}))).await;
        assert_eq!(status, 201);
        assert_eq!(search(&app, "q=shock").await.1, ["shellshock"]);
        let (status, _) = call(&app, Some(&ann), Method::PATCH, "/api/v1/channels/shellshock", Some(json!({"display_name": "Carapace Club"}))).await;
        assert_eq!(status, 200);
        assert!(search(&app, "q=shock").await.1.is_empty(), "the old name is gone");
        assert_eq!(search(&app, "q=carapace").await.1, ["shellshock"]);
    }

    async fn hostile_queries_get_results_or_a_clean_400(app) {
        let ann = signed_in(&app, "ann").await;
        let id = new_video(&app, &ann, "Turtle \"quoted\" NEAR stars*", "public", None).await;
        publish(&app, &id).await;
        let huge = "turtle ".repeat(1500);
        let hostile: Vec<&str> = vec![
            "\"", "\"\"", "*", "turtle*", "NEAR(turtle stars, 1)", "turtle AND", "OR", "NOT turtle", "a:b", "title:turtle",
            "{title}: turtle", "turtle & stars", "!turtle", "turtle | x", "(((", ")", "'", "''", "\\", "\\'", "-turtle", "^turtle",
            "turtle <-> stars", "turtle:*", "\u{202e}turtle", "tur\u{2066}tle", "<script>alert(1)</script>", "%", "%00", "😀 turtle",
            huge.as_str(), "a\u{0}b", "x\u{7}y", "   ", "",
        ];
        for q in hostile {
            for path in ["/api/v1/search", "/api/v1/search/suggestions"] {
                let (status, body) = call(&app, None, Method::GET, &format!("{path}?q={}", enc(q)), None).await;
                assert!(status == 200 || (status == 400 && body["error"].is_string() && body["message"].is_string()),
                    "{path} {:?}: {status} {body}", q.chars().take(40).collect::<String>());
            }
            let (status, html) = page(&app, None, &format!("/search?q={}", enc(q))).await;
            assert!(status == 200 || status == 400, "page {:?}: {status}", q.chars().take(40).collect::<String>());
            assert!(!html.contains("<script>alert"), "rendered inert");
        }
        // Operators are plain words: they find the title that holds them.
        assert_eq!(titles(&app, "NEAR(turtle stars, 1)").await, Vec::<String>::new(), "'1' is a word no title holds");
        assert_eq!(titles(&app, "\"quoted\" NEAR stars*").await, ["Turtle \"quoted\" NEAR stars*"]);
        assert_eq!(titles(&app, "turtle:*").await, ["Turtle \"quoted\" NEAR stars*"]);
        assert_eq!(titles(&app, "\u{202e}turtle").await, ["Turtle \"quoted\" NEAR stars*"]);
        // Too long, and NUL: 400 with a reason.
        let (status, body) = call(&app, None, Method::GET, &format!("/api/v1/search?q={}", enc(&huge)), None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_query")), "{body}");
        assert!(body["message"].as_str().unwrap().contains("at most 200"), "{body}");
        let (status, body) = call(&app, None, Method::GET, "/api/v1/search?q=a%00b", None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_query")), "{body}");
    }

    async fn trending_decays_with_time(app) {
        let ann = signed_in(&app, "ann").await;
        let old_hit = new_video(&app, &ann, "Old hit", "public", None).await;
        let fresh = new_video(&app, &ann, "Fresh", "public", None).await;
        let quiet = new_video(&app, &ann, "Quiet", "public", None).await;
        for id in [&old_hit, &fresh, &quiet] {
            publish(&app, id).await;
        }
        let now = Utc::now();
        // More views in all, but three days ago: an eighth of their weight is left.
        add_views_at(&app, &old_hit, 10, now - TimeDelta::days(3)).await;
        add_views_at(&app, &fresh, 4, now - TimeDelta::hours(1)).await;
        turtlemen_db::trending::refresh(&app.db, now).await.unwrap();
        let trending = || async {
            let (_, body) = call(&app, None, Method::GET, "/api/v1/videos?sort=trending", None).await;
            body["videos"].as_array().unwrap().iter().map(|v| v["title"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        };
        assert_eq!(trending().await, ["Fresh", "Old hit", "Quiet"]);
        let (_, html) = page(&app, None, "/").await;
        let trending_html = &html[html.find("trending-heading").unwrap()..];
        assert!(trending_html.find("Fresh").unwrap() < trending_html.find("Old hit").unwrap(), "{html}");

        // A week later every view is outside the window: scores drop to zero, newest first.
        turtlemen_db::trending::refresh(&app.db, now + TimeDelta::days(8)).await.unwrap();
        assert_eq!(trending().await, ["Quiet", "Fresh", "Old hit"]);
        // The same views, the other way round in time: the old hit leads.
        add_views_at(&app, &old_hit, 10, now).await;
        add_views_at(&app, &fresh, 4, now - TimeDelta::days(3)).await;
        turtlemen_db::trending::refresh(&app.db, now).await.unwrap();
        assert_eq!(trending().await[0], "Old hit");
    }

    async fn categories_are_a_fixed_list(app) {
        let ann = signed_in(&app, "ann").await;
        let song = new_video(&app, &ann, "A turtle song", "public", None).await;
        edit(&app, &ann, &song, json!({"category": "Music"})).await;
        publish(&app, &song).await;
        let lesson = new_video(&app, &ann, "Shell anatomy", "public", None).await;
        edit(&app, &ann, &lesson, json!({"category": "science-technology"})).await;
        publish(&app, &lesson).await;
        let (_, v) = call(&app, None, Method::GET, &format!("/api/v1/videos/{song}"), None).await;
        assert_eq!(v["category"], "music", "stored by slug");
        let (status, body) = call(&app, Some(&ann), Method::PATCH, &format!("/api/v1/videos/{song}"), Some(json!({"category": "Musik"}))).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_field")), "{body}");
        assert!(body["message"].as_str().unwrap().contains("science-technology"), "the reason lists the choices: {body}");

        let (_, body) = call(&app, None, Method::GET, "/api/v1/videos?category=music", None).await;
        let listed: Vec<&str> = body["videos"].as_array().unwrap().iter().map(|v| v["title"].as_str().unwrap()).collect();
        assert_eq!(listed, ["A turtle song"]);
        assert_eq!(call(&app, None, Method::GET, "/api/v1/videos?category=Musik", None).await.0, 400);

        let (status, html) = page(&app, None, "/?category=science-technology").await;
        assert_eq!(status, 200);
        let section = &html[html.find("category-heading").unwrap()..html.find("recent-heading").unwrap()];
        assert!(section.contains("Science &amp; Technology") || section.contains("Science &#38; Technology"), "{section}");
        assert!(section.contains("Shell anatomy") && !section.contains("A turtle song"), "{section}");
        assert!(html.contains("href=\"/?category=music\""), "every category is a link");
        assert!(html.contains("aria-current=\"page\">Science"), "the chosen one is marked");
        assert_eq!(page(&app, None, "/?category=bogus").await.0, 400);
        // The edit form offers the list.
        let (_, form) = page(&app, Some(&ann), &format!("/studio/videos/{song}/edit")).await;
        assert!(form.contains("<option value=\"music\" selected>Music</option>"), "{form}");
    }

    async fn the_home_page_shows_from_your_subscriptions(app) {
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let id = new_video(&app, &ann, "Ann's new turtle", "public", None).await;
        publish(&app, &id).await;
        let (_, html) = page(&app, Some(&bob), "/").await;
        assert!(html.contains("From your subscriptions") && html.contains("Nothing from your subscriptions yet"), "{html}");
        assert_eq!(call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ann", None).await.0, 204);
        let (_, html) = page(&app, Some(&bob), "/").await;
        let section = &html[html.find("subscriptions-heading").unwrap()..html.find("recent-heading").unwrap()];
        assert!(section.contains("Ann&#39;s new turtle") || section.contains("Ann&#x27;s new turtle") || section.contains("Ann's new turtle"), "{section}");
        assert!(section.contains("1:05") && section.contains("0 views") && section.contains("just now"), "a full card: {section}");
        let (_, html) = page(&app, None, "/").await;
        assert!(!html.contains("From your subscriptions"), "not for a visitor");
        // The header's search box is on every page.
        for path in ["/", "/subscriptions", "/@ann", "/search?q=x"] {
            let (_, html) = page(&app, Some(&bob), path).await;
            assert!(html.contains("role=\"search\"") && html.contains("<label for=\"site-search-q\""), "{path}");
        }
    }
}
