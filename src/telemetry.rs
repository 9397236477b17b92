//! OTLP span export (`otlp_endpoint`): each request a role serves and each job it runs is one
//! span, in the W3C trace it belongs to (`turtlemen_domain::trace`), exported to an
//! OpenTelemetry collector over OTLP/HTTP with protobuf.
//!
//! The OpenTelemetry SDK does the exporting: its batch processor queues the spans and sends them
//! from a thread of its own with its OTLP exporter, so a request only pushes to a bounded queue
//! (when the queue is full the span is dropped, never the request). Our spans keep the ids the
//! trace context gave them, the ones passed on in `traceparent` and recorded with jobs, so the
//! collector joins the processes' spans into one trace.
//!
//! Never: a span's attributes carrying a cookie, a token or a query string.

use anyhow::Context;
use opentelemetry::trace::{SpanContext, SpanId, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};
use std::sync::Arc;
use std::time::Duration;
use turtlemen_domain::trace::{Attribute, FinishedSpan, SpanKind, SpanSink};
use url::Url;

/// How long the batch processor gathers spans before it sends them.
const SEND_EVERY: Duration = Duration::from_secs(1);
/// The longest one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Spans waiting to be sent, at most; past it new ones are dropped.
const QUEUE: usize = 8192;

/// The exporter of one process's spans.
#[derive(Debug)]
pub struct OtlpSpans {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
}

impl OtlpSpans {
    /// Starts exporting to the collector at `endpoint` (its base URL: `v1/traces` is added) as
    /// `service`.
    pub fn start(endpoint: &Url, service: &str) -> anyhow::Result<Arc<OtlpSpans>> {
        let url = traces_url(endpoint)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .with_headers(Default::default())
            .build()
            .with_context(|| {
                format!("cannot export spans to {}", turtlemen_config::redact_url_password(url.as_str()))
            })?;
        let config = BatchConfigBuilder::default().with_scheduled_delay(SEND_EVERY).with_max_queue_size(QUEUE).build();
        let mut processor = BatchSpanProcessor::builder(exporter).with_batch_config(config).build();
        processor.set_resource(&Resource::builder_empty().with_service_name(service.to_owned()).build());
        let scope = InstrumentationScope::builder("turtlemen").with_version(env!("CARGO_PKG_VERSION")).build();
        let shown = turtlemen_config::redact_url_password(url.as_str());
        tracing::info!(otlp.endpoint = %shown, service.name = service, "exporting spans");
        Ok(Arc::new(OtlpSpans { processor, scope }))
    }

    /// Sends what is queued and stops the processor's thread (blocking: call it off the runtime).
    pub fn shutdown(&self) {
        if let Err(e) = self.processor.shutdown() {
            tracing::warn!(error = %e, "spans not all exported at shutdown");
        }
    }
}

impl SpanSink for OtlpSpans {
    fn finished(&self, span: FinishedSpan) {
        self.processor.on_end(span_data(span, &self.scope));
    }
}

/// `{endpoint}/v1/traces`, as the OTLP specification builds a signal's URL from a base URL.
fn traces_url(endpoint: &Url) -> anyhow::Result<Url> {
    let mut base = endpoint.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    Ok(base.join("v1/traces")?)
}

fn span_data(span: FinishedSpan, scope: &InstrumentationScope) -> SpanData {
    let ctx = span.context;
    let flags = TraceFlags::new(ctx.flags);
    let span_context =
        SpanContext::new(TraceId::from(ctx.trace_id), SpanId::from(ctx.span_id), flags, false, TraceState::default());
    let attributes = span
        .attributes
        .into_iter()
        .map(|(key, value)| match value {
            Attribute::Text(text) => KeyValue::new(key, text),
            Attribute::Int(n) => KeyValue::new(key, n),
        })
        .collect();
    SpanData {
        span_context,
        parent_span_id: SpanId::from(ctx.parent_id),
        parent_span_is_remote: ctx.parent_id != 0,
        span_kind: match span.kind {
            SpanKind::Server => opentelemetry::trace::SpanKind::Server,
            SpanKind::Consumer => opentelemetry::trace::SpanKind::Consumer,
        },
        name: span.name.into(),
        start_time: span.start,
        end_time: span.end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: if span.failed { Status::error("") } else { Status::Unset },
        instrumentation_scope: scope.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_to_the_base_url() {
        let url = |s: &str| traces_url(&Url::parse(s).unwrap()).unwrap().to_string();
        assert_eq!(url("http://collector:4318"), "http://collector:4318/v1/traces");
        assert_eq!(url("http://collector:4318/"), "http://collector:4318/v1/traces");
        assert_eq!(url("https://otel.example/ingest"), "https://otel.example/ingest/v1/traces");
    }
}
