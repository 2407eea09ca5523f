//! With `telemetry.otlp_endpoint` set, spans reach an OTLP collector (here a fake one
//! speaking the real OTLP/gRPC protocol), tagged with the service name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_to_the_configured_collector() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = collector.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(server))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });

    let mut settings = haven_config::Settings::default().telemetry;
    settings.otlp_endpoint = Some(format!("http://{address}"));
    let provider = haven_telemetry::tracer_provider(&settings, "haven-case").unwrap();
    let subscriber =
        haven_telemetry::build_subscriber(&settings, &provider, std::io::sink).unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("grpc.request", rpc = "/haven.case.v1.CaseService/GetCase");
        let _entered = span.enter();
        tracing::info!("handled");
    });
    let flushed = tokio::task::spawn_blocking(move || {
        let flushed = provider.force_flush();
        let _ = provider.shutdown();
        flushed
    })
    .await
    .unwrap();
    flushed.unwrap();

    let exports = collector.0.lock().unwrap().clone();
    let resource_spans: Vec<_> = exports
        .iter()
        .flat_map(|export| export.resource_spans.iter())
        .collect();
    let span_names: Vec<&str> = resource_spans
        .iter()
        .flat_map(|resource| resource.scope_spans.iter())
        .flat_map(|scope| scope.spans.iter())
        .map(|span| span.name.as_str())
        .collect();
    assert!(span_names.contains(&"grpc.request"), "{span_names:?}");
    let service_names: Vec<String> = resource_spans
        .iter()
        .filter_map(|resource| resource.resource.as_ref())
        .flat_map(|resource| resource.attributes.iter())
        .filter(|attribute| attribute.key == "service.name")
        .filter_map(
            |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                Value::StringValue(name) => Some(name.clone()),
                _ => None,
            },
        )
        .collect();
    assert!(
        service_names.contains(&"haven-case".to_owned()),
        "{service_names:?}"
    );
}
