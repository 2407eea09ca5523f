//! The `haven` binary as an operator uses it: a service started alone stops cleanly
//! on SIGTERM (exit 0), `token` prints a token the services accept, `healthcheck`
//! answers with its exit code, and health and reflection need no token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use haven_config::Settings;

const HAVEN: &str = env!("CARGO_BIN_EXE_haven");

fn haven(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(HAVEN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAVEN__DATA_DIR", data_dir)
        .current_dir(data_dir);
    command
}

/// Starts `haven serve case` on a free port and returns it with its address.
fn serve_case(data_dir: &std::path::Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = haven(data_dir)
        .args(["serve", "case"])
        .env("HAVEN__CASE__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap().contains("gRPC service listening") {
            break;
        }
    }
    (child, format!("127.0.0.1:{port}"))
}

fn wait_for_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "haven did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_service_started_alone_is_healthy_then_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = serve_case(dir.path());

    let healthy = haven(dir.path())
        .args(["healthcheck", &format!("grpc://{address}")])
        .status()
        .unwrap();
    assert!(healthy.success());
    let nothing_there = haven(dir.path())
        .args(["healthcheck", "grpc://127.0.0.1:1"])
        .status()
        .unwrap();
    assert!(!nothing_there.success());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_for_exit(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
}

#[test]
fn token_prints_a_token_the_services_accept_and_refuses_unknown_roles() {
    let dir = tempfile::tempdir().unwrap();
    let output = haven(dir.path())
        .args(["token", "--role", "case_worker"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();

    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    let keys = haven_auth::keys::KeyMaterial::load_or_create(&settings).unwrap();
    let verifier = haven_auth::TokenVerifier::new(&settings.auth, &keys).unwrap();
    let principal = verifier.verify_user(&token).unwrap();
    assert_eq!(principal.roles, vec![haven_auth::Role::CaseWorker]);
    // The default organisation is stable for a data directory.
    let again = haven(dir.path())
        .args(["token", "--role", "analyst"])
        .output()
        .unwrap();
    let again = verifier
        .verify_user(String::from_utf8(again.stdout).unwrap().trim())
        .unwrap();
    assert_eq!(again.organization_id, principal.organization_id);

    let refused = haven(dir.path())
        .args(["token", "--role", "service"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown role"));
}

#[test]
fn a_bad_setting_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = haven(dir.path())
        .args(["serve", "intake"])
        .env("HAVEN__INTAKE__LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("intake.listen"));
}

#[tokio::test]
async fn health_and_reflection_answer_without_a_token() {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = serve_case(dir.path());
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    assert!(
        names.contains(&"haven.case.v1.CaseService".to_owned()),
        "{names:?}"
    );

    // The domain service itself refuses a call without a token.
    let mut cases = haven_proto_client(channel);
    let refused = cases
        .get_case(haven_proto::case::v1::GetCaseRequest { id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    child.kill().unwrap();
    let _ = child.wait();
}

fn haven_proto_client(
    channel: tonic::transport::Channel,
) -> haven_proto::case::v1::case_service_client::CaseServiceClient<tonic::transport::Channel> {
    haven_proto::case::v1::case_service_client::CaseServiceClient::new(channel)
}
