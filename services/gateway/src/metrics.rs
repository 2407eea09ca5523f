//! Prometheus metrics: one recorder per process, a request counter and a latency
//! histogram labelled by method, matched route and status, and the `/metrics` page
//! (served on its own listener, see [`crate::metrics_app`]).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Path of the Prometheus page on the metrics listener.
pub(crate) const METRICS_PATH: &str = "/metrics";
const REQUESTS_TOTAL: &str = "haven_gateway_http_requests_total";
const REQUEST_DURATION: &str = "haven_gateway_http_request_duration_seconds";
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus handle, installing the recorder on first use.
///
/// Several gateways in one process (tests, `haven up`) share it. If some other
/// recorder is already installed globally, this one still renders, just without the
/// gateway's series; that is logged once.
pub(crate) fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), LATENCY_BUCKETS)
        {
            Ok(builder) => builder,
            Err(error) => {
                tracing::warn!(%error, "latency buckets refused, using summaries");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder is already installed; gateway metrics go there");
        }
        handle
    })
}

/// Counts each request and records its latency.
pub(crate) async fn record_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    // The matched route template, never the raw path: ids would explode cardinality.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus text exposition.
pub(crate) async fn render() -> Response {
    let handle = prometheus();
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
