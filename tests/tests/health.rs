//! gRPC health follows each service's own database: with Postgres refusing
//! connections, every gRPC service reports NOT_SERVING (not ready) while staying
//! live; once it accepts them again, SERVING. Postgres only: the throwaway cluster
//! can refuse connections for real.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::PgConnectOptions;

use haven_cli::ServiceName;
use haven_e2e::{Backend, TestStack};

/// Waits until every target's health check passes (`serving`) or fails.
async fn until_all(targets: &[String], serving: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for target in targets {
        loop {
            let healthy = haven_cli::healthcheck::check(target).await.is_ok();
            if healthy == serving {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{target} never became {}",
                if serving { "SERVING" } else { "NOT_SERVING" }
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Whether `target` (`grpc://host:port`) reports its liveness name SERVING.
async fn live(target: &str) -> bool {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let endpoint = target.replace("grpc://", "http://");
    let channel = tonic::transport::Endpoint::from_shared(endpoint)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: haven_server::LIVENESS_SERVICE.to_owned(),
        })
        .await
        .unwrap();
    response.into_inner().status() == ServingStatus::Serving
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_while_the_database_is_unreachable() {
    let Some(stack) = TestStack::start(Backend::Postgres).await else {
        return;
    };
    let targets: Vec<String> = [
        ServiceName::Intake,
        ServiceName::Case,
        ServiceName::Referral,
        ServiceName::Reporting,
    ]
    .into_iter()
    .map(|service| format!("grpc://{}", service.listen(&stack.settings)))
    .collect();
    until_all(&targets, true).await;

    // The services' database stops accepting connections and drops those it has
    // (changed from another database of the cluster, as Postgres requires).
    let url = stack
        .settings
        .database
        .url
        .as_ref()
        .unwrap()
        .expose()
        .clone();
    let services = PgConnectOptions::from_str(&url).unwrap();
    let database = services.get_database().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect_with(&services.database("postgres"))
        .await
        .unwrap();
    let allow = |allowed: bool| {
        sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS {allowed}"
        ))
    };
    sqlx::query(allow(false)).execute(&mut admin).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&database)
        .execute(&mut admin)
        .await
        .unwrap();
    until_all(&targets, false).await;
    // Liveness is the process alone: a database outage must not get it restarted.
    for target in &targets {
        assert!(live(target).await, "{target} is not live");
    }
    // The gateway's dependency status shows each backend not serving.
    let status: serde_json::Value = stack
        .http
        .get(stack.url("/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "degraded", "{status}");
    assert_eq!(status["backends"]["intake"], "not_serving", "{status}");

    // Reachable again: serving again, without a restart.
    sqlx::query(allow(true)).execute(&mut admin).await.unwrap();
    until_all(&targets, true).await;
    admin.close().await.unwrap();
    stack.stop().await;
}
