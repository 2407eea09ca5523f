//! Logs, traces and trace-context propagation.
//!
//! - [`build_subscriber`] builds the JSON log subscriber (with an OpenTelemetry layer)
//!   without installing it, so tests can pass their own writer; [`init`] installs it
//!   for a binary and returns a [`TelemetryGuard`] that flushes spans on shutdown.
//! - Spans get a `trace_id` field, so every JSON log line of one request, in the
//!   gateway and in each gRPC service it calls, carries the same W3C trace id.
//! - [`http_request_span`] and [`grpc_request_span`] continue a caller's `traceparent`;
//!   [`inject_trace_context`] adds it to an outgoing gRPC request.
//!
//! Log lines carry ids only: never personal data, never tokens.

mod propagation;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

use haven_config::TelemetrySettings;

pub use propagation::{
    current_trace_id, grpc_request_span, http_request_span, inject_trace_context,
};

/// Flushes and shuts down trace export when the process ends.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports pending spans and stops the exporter.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("telemetry shutdown: {error}");
        }
    }
}

/// Builds the tracer provider: with an OTLP exporter when an endpoint is set, and
/// without one otherwise (spans still get ids, so logs still correlate).
pub fn tracer_provider(
    settings: &TelemetrySettings,
    service_name: &str,
) -> anyhow::Result<SdkTracerProvider> {
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &settings.otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// Builds the subscriber: env filter, JSON (or pretty) lines to `writer`, and the
/// OpenTelemetry layer. Does not install it.
pub fn build_subscriber<W>(
    settings: &TelemetrySettings,
    provider: &SdkTracerProvider,
    writer: W,
) -> anyhow::Result<Box<dyn Subscriber + Send + Sync>>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.log_filter)
        .map_err(|error| anyhow::anyhow!("telemetry.log_filter: {error}"))?;
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("haven"));
    let registry = Registry::default().with(filter).with(otel);
    if settings.log_format == "pretty" {
        let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
        return Ok(Box::new(registry.with(fmt)));
    }
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(writer);
    Ok(Box::new(registry.with(fmt)))
}

/// Installs the W3C trace-context propagator. Idempotent.
pub fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

/// Installs logging and tracing for a binary, writing JSON lines to stdout.
pub fn init(settings: &TelemetrySettings, service_name: &str) -> anyhow::Result<TelemetryGuard> {
    install_propagator();
    let provider = tracer_provider(settings, service_name)?;
    opentelemetry::global::set_tracer_provider(provider.clone());
    let subscriber = build_subscriber(settings, &provider, std::io::stdout)?;
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|error| anyhow::anyhow!("a global subscriber is already installed: {error}"))?;
    Ok(TelemetryGuard { provider })
}
