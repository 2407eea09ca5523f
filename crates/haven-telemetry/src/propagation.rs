//! W3C trace context across HTTP and gRPC.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(key) = tonic::metadata::MetadataKey::from_bytes(key.as_bytes()) else {
            return;
        };
        if let Ok(value) = tonic::metadata::MetadataValue::try_from(value) {
            self.0.insert(key, value);
        }
    }
}

fn continue_trace(span: &Span, headers: &http::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let trace_id = span.context().span().span_context().trace_id();
    span.record("trace_id", tracing::field::display(trace_id));
}

/// Span for an incoming REST request, continuing the caller's `traceparent` if any.
/// Records the method, the path (ids only, never personal data) and the request id.
pub fn http_request_span<B>(request: &http::Request<B>) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http.request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, request.headers());
    span
}

/// Span for an incoming gRPC call (use with `Server::builder().trace_fn`).
pub fn grpc_request_span<B>(request: &http::Request<B>) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "grpc.request",
        rpc = %request.uri().path(),
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, request.headers());
    span
}

/// Writes the current span's trace context (`traceparent`) into outgoing metadata.
pub fn inject_trace_context(metadata: &mut tonic::metadata::MetadataMap) {
    let context = Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata));
    });
}

/// The W3C `traceparent` of the current span, if it is part of a trace.
pub fn current_trace_id() -> Option<String> {
    let context = Span::current().context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_incoming_traceparent_is_continued_injected_and_logged() {
        crate::install_propagator();
        let settings = haven_config::Settings::default().telemetry;
        let provider = crate::tracer_provider(&settings, "test").unwrap();
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber =
            crate::build_subscriber(&settings, &provider, move || writer.clone()).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let request = http::Request::builder()
                .uri("/v1/cases/1")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .body(())
                .unwrap();
            let span = http_request_span(&request);
            let _entered = span.enter();
            tracing::info!("inside");
            let mut metadata = tonic::metadata::MetadataMap::new();
            inject_trace_context(&mut metadata);
            let traceparent = metadata
                .get("traceparent")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                traceparent.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
                "{traceparent}"
            );
        });
        let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(
            logs.contains("\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""),
            "{logs}"
        );
    }
}
