//! Span export over OTLP/HTTP (`otlp_endpoint`), on both stacks: a receiver decodes what the
//! exporter sends with the specification's own protobuf messages (opentelemetry-proto). A
//! request's span continues the caller's trace and names the caller's span as its parent; the
//! job it queued is a span of the same trace whose parent is the request's span.

use crate::gateway::Browser;
use crate::helpers::{Stack, TestApp, fresh_settings};
use crate::uploads::signed_in;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the receiver was sent: each span with its resource's `service.name`.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Span)>>>);

async fn collect(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> Vec<u8> {
    assert_eq!(headers["content-type"], "application/x-protobuf");
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.0.lock().unwrap().push((service.clone(), span));
            }
        }
    }
    Vec::new()
}

/// A collector's OTLP/HTTP receiver on loopback: its base URL.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let app = Router::new().route("/v1/traces", post(collect)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn int_attribute(span: &Span, key: &str) -> Option<i64> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        AnyValue::IntValue(n) => Some(*n),
        _ => None,
    })
}

async fn subscribe(app: &TestApp, who: &Browser, traceparent: &str) -> u16 {
    let res = app
        .client
        .put(app.url("/api/v1/me/subscriptions/ann"))
        .header("accept", "application/json")
        .header("cookie", who.cookie_header())
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

async fn a_request_and_its_job_are_exported_in_the_callers_trace(stack: Stack) {
    let Some((settings, dir, schema)) = fresh_settings(stack).await else { return };
    let (endpoint, received) = receiver().await;
    let settings = turtlemen_config::Settings { otlp_endpoint: Some(endpoint), ..settings };
    let app = TestApp::spawn_with(settings, dir, schema).await;
    signed_in(&app, "ann").await;
    let bob = signed_in(&app, "bob").await;
    let (trace, caller) = ("5bf92f3577b34da6a3ce929d0e0e4736", "10f067aa0ba902b7");
    assert_eq!(subscribe(&app, &bob, &format!("00-{trace}-{caller}-01")).await, 204);

    // The request's span (its parent the caller's) and the new-subscriber job's (its parent
    // a span of the request), both in the caller's trace.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (entry, job, in_trace) = loop {
        let spans = received.0.lock().unwrap().clone();
        let in_trace: Vec<(String, Span)> = spans.into_iter().filter(|(_, s)| hex(&s.trace_id) == trace).collect();
        let entry = in_trace.iter().find(|(_, s)| hex(&s.parent_span_id) == caller).cloned();
        let job = in_trace.iter().find(|(_, s)| s.name == "job notify_new_subscriber").cloned();
        if let (Some(entry), Some(job)) = (entry, job) {
            break (entry, job, in_trace);
        }
        assert!(
            Instant::now() < deadline,
            "spans received: {:?}",
            received.0.lock().unwrap().iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(entry.0, "turtlemen", "service.name");
    assert_eq!(entry.1.name, "PUT api");
    assert_eq!(entry.1.kind, 2, "a server span");
    assert_eq!(int_attribute(&entry.1, "http.response.status_code"), Some(204));
    assert!(entry.1.end_time_unix_nano >= entry.1.start_time_unix_nano && entry.1.start_time_unix_nano > 0);
    let request_spans: Vec<String> =
        in_trace.iter().filter(|(_, s)| s.kind == 2).map(|(_, s)| hex(&s.span_id)).collect();
    assert!(request_spans.contains(&hex(&job.1.parent_span_id)), "the job's parent is a span of the request");
    assert_eq!(job.1.kind, 5, "a consumer span");
    assert_eq!(job.1.status.as_ref().map_or(0, |s| s.code), 0, "the job succeeded: status unset");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_job_are_exported_in_the_callers_trace_embedded() {
    a_request_and_its_job_are_exported_in_the_callers_trace(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_job_are_exported_in_the_callers_trace_external() {
    a_request_and_its_job_are_exported_in_the_callers_trace(Stack::External).await;
}
