//! The deployment files stay in step with the binaries: every Haven service in
//! `docker-compose.yml` starts with exactly the environment compose gives it (host
//! names mapped to loopback, the database to a throwaway Postgres), and the gateway
//! then reaches every backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use haven_cli::ServiceName;
use haven_config::Settings;

const COMPOSE_HOSTS: [&str; 6] = [
    "intake",
    "case",
    "referral",
    "reporting",
    "gateway",
    "otel-collector",
];

fn compose_environments() -> BTreeMap<String, BTreeMap<String, String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docker-compose.yml");
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    let mut environments = BTreeMap::new();
    for (name, service) in services {
        let name = name.as_str().unwrap().to_owned();
        let Some(environment) = service["environment"].as_mapping() else {
            continue;
        };
        let environment = environment
            .iter()
            .map(|(key, value)| {
                (
                    key.as_str().unwrap().to_owned(),
                    value.as_str().unwrap().to_owned(),
                )
            })
            .collect();
        environments.insert(name, environment);
    }
    environments
}

/// Maps `http://case:50052` to `http://127.0.0.1:50052`, and the database to `database_url`.
fn on_loopback(
    environment: &BTreeMap<String, String>,
    database_url: Option<&str>,
    data_dir: &str,
) -> Vec<(String, String)> {
    let mut variables = Vec::new();
    for (key, value) in environment {
        if key == "HAVEN__DATABASE__URL" {
            if let Some(url) = database_url {
                variables.push((key.clone(), url.to_owned()));
            }
            continue;
        }
        if key == "HAVEN__TELEMETRY__OTLP_ENDPOINT" {
            // No collector here; export is exercised in deployment, not in this test.
            continue;
        }
        let mut value = value.clone();
        for host in COMPOSE_HOSTS {
            value = value.replace(&format!("://{host}:"), "://127.0.0.1:");
        }
        variables.push((key.clone(), value.replace("0.0.0.0:", "127.0.0.1:")));
    }
    variables.push(("HAVEN__DATA_DIR".to_owned(), data_dir.to_owned()));
    variables
}

/// The other services each one calls or follows. On loopback the defaults would
/// hide a missing endpoint, so compose must name every one explicitly.
const CALLS: &[(&str, &[&str])] = &[
    ("gateway", &["INTAKE", "CASE", "REFERRAL", "REPORTING"]),
    ("intake", &["CASE"]),
    ("case", &["INTAKE", "REFERRAL"]),
    ("referral", &["INTAKE", "CASE"]),
    ("reporting", &["INTAKE", "CASE", "REFERRAL"]),
];

#[test]
fn every_compose_service_names_the_services_it_calls() {
    let environments = compose_environments();
    for (service, callees) in CALLS {
        for callee in *callees {
            let key = format!("HAVEN__{callee}__ENDPOINT");
            let value = environments[*service].get(&key).unwrap_or_else(|| {
                panic!("docker-compose.yml: `{service}` calls {callee} but does not set {key}")
            });
            assert!(
                value.contains(&format!("://{}:", callee.to_lowercase())),
                "{service}: {key} = {value}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compose_service_starts_with_its_compose_environment() {
    haven_e2e::logs();
    let environments = compose_environments();
    let postgres = haven_storage::testing::postgres().await;
    let database_url = match postgres {
        Some(server) => Some(server.fresh_database().await),
        None => None,
    };
    let data_dir = tempfile::tempdir().unwrap();
    let data_dir_text = data_dir.path().to_str().unwrap().to_owned();

    let migrate_settings = Settings::load_from(
        None,
        on_loopback(
            &environments["migrate"],
            database_url.as_deref(),
            &data_dir_text,
        ),
    )
    .unwrap();
    haven_cli::migrate(&migrate_settings).await.unwrap();

    // Every port is bound before any service starts: on one host (unlike compose,
    // where each service has its own network), a service's outgoing connection could
    // otherwise take a later service's port as its ephemeral source port.
    let mut listeners = Vec::new();
    for service in ServiceName::ALL {
        let environment = environments
            .get(service.as_str())
            .unwrap_or_else(|| panic!("docker-compose.yml has no `{}` service", service.as_str()));
        let settings = Settings::load_from(
            None,
            on_loopback(environment, database_url.as_deref(), &data_dir_text),
        )
        .unwrap_or_else(|error| {
            panic!(
                "compose environment of {} refused: {error}",
                service.as_str()
            )
        });
        assert_eq!(
            settings.database.url.is_some(),
            database_url.is_some(),
            "{} gets the database URL from compose",
            service.as_str()
        );
        // Another test's connection can hold a fixed port for a moment: wait for it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let listener = loop {
            match haven_cli::bind(service, &settings).await {
                Ok(listener) => break listener,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(service = service.as_str(), "port busy, retrying: {error:#}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(error) => panic!(
                    "{} cannot bind its compose port: {error:#}",
                    service.as_str()
                ),
            }
        };
        listeners.push((service, listener, settings));
    }
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    for (service, listener, settings) in listeners {
        tasks.push(tokio::spawn(haven_cli::serve(
            service,
            listener,
            settings,
            shutdown.clone(),
        )));
    }

    let gateway =
        environments["gateway"]["HAVEN__GATEWAY__LISTEN"].replace("0.0.0.0:", "127.0.0.1:");
    let mut targets = vec![format!("http://{gateway}/readyz")];
    for service in ["intake", "case", "referral", "reporting"] {
        let key = format!("HAVEN__{}__LISTEN", service.to_uppercase());
        targets.push(format!(
            "grpc://{}",
            environments[service][&key].replace("0.0.0.0:", "127.0.0.1:")
        ));
    }
    for target in targets {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match haven_cli::healthcheck::check(&target).await {
                Ok(()) => break,
                Err(error) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{target} never became healthy: {error:#}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    shutdown.cancel();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
