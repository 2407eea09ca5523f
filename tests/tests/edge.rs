//! The network edge of the real stack: oversized credentials are refused cleanly over
//! REST and gRPC, metrics are served only on their own listener, and each gRPC port's
//! reflection (v1 and v1alpha) describes exactly the services it serves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use haven_auth::keys::DevTokenRequest;
use haven_cli::ServiceName;
use haven_e2e::{TestStack, authorized, on_both_backends};
use haven_error::{ErrorCode, HavenError};
use haven_proto::intake::v1 as intake;
use haven_proto::intake::v1::intake_service_client::IntakeServiceClient;
use serde_json::json;
use tokio_stream::StreamExt as _;
use uuid::Uuid;

/// The edge's limit on the `Authorization` header, in bytes.
const LIMIT: usize = 8 * 1024;
const PROBLEM_JSON: &str = "application/problem+json";

/// A validly signed intake officer token whose `sub` claim is padded with
/// `padding` characters.
fn padded_token(stack: &TestStack, organization: Uuid, padding: usize) -> String {
    // Padded with the role repeated: a subject that long would be refused (the audit
    // trail takes at most 128 bytes of it).
    let role = "intake_officer";
    let request = DevTokenRequest {
        subject: "officer".to_owned(),
        organization_id: organization,
        roles: vec![role.to_owned(); 1 + padding / (role.len() + 3)],
        ttl_seconds: 600,
    };
    stack
        .keys
        .mint_dev_token(&stack.settings.auth, &request)
        .unwrap()
}

/// The longest padded token whose `Authorization: Bearer <token>` header still fits.
fn largest_token_within_limit(stack: &TestStack, organization: Uuid) -> String {
    let mut padding = LIMIT;
    loop {
        let token = padded_token(stack, organization, padding);
        if "Bearer ".len() + token.len() <= LIMIT {
            return token;
        }
        padding -= 8;
    }
}

async fn screening_count(stack: &TestStack, token: &str) -> usize {
    let response = stack.get(token, "/v1/screenings").await;
    assert_eq!(response.status(), 200);
    let page: serde_json::Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().len()
}

async fn an_oversized_token_is_refused_with_431_and_one_just_under_the_limit_works(
    stack: TestStack,
) {
    let organization = Uuid::new_v4();
    let officer = stack.token(&["intake_officer"], organization);
    let oversized = padded_token(&stack, organization, 12 * 1024);
    assert!(oversized.len() > 16 * 1024, "{}", oversized.len());

    // Over REST: 431 problem+json naming the limit, before the token is looked at,
    // and nothing is written.
    for response in [
        stack.get(&oversized, "/v1/screenings").await,
        stack
            .post(
                &oversized,
                "/v1/screenings",
                json!({"referral_source": "police"}),
            )
            .await,
    ] {
        assert_eq!(response.status(), 431);
        assert_eq!(response.headers()["content-type"], PROBLEM_JSON);
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 431, "{problem}");
        assert_eq!(problem["request_id"], request_id.as_str(), "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("authorization header") && detail.contains(&LIMIT.to_string()),
            "{problem}"
        );
    }
    assert_eq!(screening_count(&stack, &officer).await, 0);

    // Over gRPC, straight to intake: UNAUTHENTICATED with Haven's error details, not
    // an HTTP error of the transport; nothing is written either.
    let mut client = IntakeServiceClient::new(stack.channel(ServiceName::Intake).await);
    let status = client
        .create_screening(authorized(
            intake::CreateScreeningRequest {
                referral_source: intake::ReferralSource::Police.into(),
                ..Default::default()
            },
            &oversized,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    let error = HavenError::from_status(&status);
    assert_eq!(error.code(), ErrorCode::Unauthenticated);
    assert!(
        error.message().contains(&LIMIT.to_string()),
        "{}",
        error.message()
    );
    assert_eq!(screening_count(&stack, &officer).await, 0);

    // A validly signed token just under the limit goes all the way through.
    let largest = largest_token_within_limit(&stack, organization);
    assert!("Bearer ".len() + largest.len() > LIMIT - 64);
    let created = stack
        .post(
            &largest,
            "/v1/screenings",
            json!({"referral_source": "police"}),
        )
        .await;
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    assert_eq!(screening_count(&stack, &largest).await, 1);
    let created = client
        .create_screening(authorized(
            intake::CreateScreeningRequest {
                referral_source: intake::ReferralSource::Police.into(),
                ..Default::default()
            },
            &largest,
        ))
        .await;
    assert!(created.is_ok(), "{created:?}");
    assert_eq!(screening_count(&stack, &officer).await, 2);
    stack.stop().await;
}

async fn metrics_are_served_only_on_their_own_listener(stack: TestStack) {
    let organization = Uuid::new_v4();
    let officer = stack.token(&["intake_officer"], organization);
    assert_eq!(screening_count(&stack, &officer).await, 0);

    // The public port does not have them: 404 problem+json, with or without a token.
    for token in [None, Some(officer.as_str())] {
        let mut request = stack.http.get(stack.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["content-type"], PROBLEM_JSON);
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("haven_gateway_http_requests_total"),
            "{body}"
        );
    }

    // The metrics listener is a different address and serves Prometheus text.
    assert_ne!(
        stack.settings.gateway.metrics_listen,
        stack.settings.gateway.listen
    );
    assert!(stack.settings.gateway.metrics_listen.ip().is_loopback());
    let response = stack
        .http
        .get(&stack.stack.metrics_url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.unwrap();
    let counted = text.lines().any(|line| {
        line.starts_with("haven_gateway_http_requests_total")
            && line.contains("route=\"/v1/screenings\"")
            && line.contains("status=\"200\"")
    });
    assert!(counted, "{text}");
    stack.stop().await;
}

/// What each gRPC port serves, besides health and reflection.
fn served_by(service: ServiceName) -> &'static [&'static str] {
    match service {
        ServiceName::Intake => &[
            "haven.intake.v1.IntakeService",
            "haven.intake.v1.ClockService",
            "haven.intake.v1.IndicatorSetService",
            "haven.common.v1.EventFeedService",
        ],
        ServiceName::Case => &[
            "haven.case.v1.CaseService",
            "haven.common.v1.EventFeedService",
        ],
        ServiceName::Referral => &[
            "haven.referral.v1.ReferralService",
            "haven.common.v1.EventFeedService",
        ],
        ServiceName::Reporting => &["haven.reporting.v1.ReportingService"],
        ServiceName::Gateway => &[],
    }
}

const INFRASTRUCTURE: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// One `grpc.reflection.v1` exchange: the listed services, and for each whether a
/// file containing it came back.
async fn reflect_v1(channel: tonic::transport::Channel) -> (BTreeSet<String>, Vec<String>) {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut client = ServerReflectionClient::new(channel);
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([list]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(listed)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("v1: no service list");
    };
    let names: BTreeSet<String> = listed
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    let questions = names.iter().map(|name| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(name.clone())),
    });
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(questions.collect::<Vec<_>>()))
        .await
        .unwrap()
        .into_inner();
    let mut unresolved = Vec::new();
    for name in &names {
        match answers.next().await.unwrap().unwrap().message_response {
            Some(MessageResponse::FileDescriptorResponse(files))
                if !files.file_descriptor_proto.is_empty() => {}
            other => unresolved.push(format!("{name}: {other:?}")),
        }
    }
    (names, unresolved)
}

/// The same exchange over `grpc.reflection.v1alpha`.
async fn reflect_v1alpha(channel: tonic::transport::Channel) -> (BTreeSet<String>, Vec<String>) {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let mut client = ServerReflectionClient::new(channel);
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([list]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(listed)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("v1alpha: no service list");
    };
    let names: BTreeSet<String> = listed
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    let questions = names.iter().map(|name| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(name.clone())),
    });
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(questions.collect::<Vec<_>>()))
        .await
        .unwrap()
        .into_inner();
    let mut unresolved = Vec::new();
    for name in &names {
        match answers.next().await.unwrap().unwrap().message_response {
            Some(MessageResponse::FileDescriptorResponse(files))
                if !files.file_descriptor_proto.is_empty() => {}
            other => unresolved.push(format!("{name}: {other:?}")),
        }
    }
    (names, unresolved)
}

async fn each_port_reflects_exactly_its_services_over_v1_and_v1alpha(stack: TestStack) {
    for service in ServiceName::ALL {
        if service == ServiceName::Gateway {
            continue;
        }
        let expected: BTreeSet<String> = served_by(service)
            .iter()
            .chain(INFRASTRUCTURE.iter())
            .map(|name| (*name).to_owned())
            .collect();
        let channel = stack.channel(service).await;
        let (v1, unresolved) = reflect_v1(channel.clone()).await;
        assert_eq!(v1, expected, "{} over v1", service.as_str());
        assert!(
            unresolved.is_empty(),
            "{}: {unresolved:?}",
            service.as_str()
        );
        let (v1alpha, unresolved) = reflect_v1alpha(channel).await;
        assert_eq!(v1alpha, expected, "{} over v1alpha", service.as_str());
        assert!(
            unresolved.is_empty(),
            "{}: {unresolved:?}",
            service.as_str()
        );
    }
    stack.stop().await;
}

on_both_backends!(
    an_oversized_token_is_refused_with_431_and_one_just_under_the_limit_works,
    metrics_are_served_only_on_their_own_listener,
    each_port_reflects_exactly_its_services_over_v1_and_v1alpha,
);
