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

/// The Kubernetes base: its manifests, where `kubectl apply -k deploy/kubernetes`
/// takes them from.
const KUBERNETES_BASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes/base");
/// The production overlay (the base with a CloudNativePG cluster).
const KUBERNETES_PRODUCTION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/kubernetes/production"
);

/// Every YAML document of a file.
fn yaml_documents(path: &std::path::Path) -> Vec<serde_yaml::Value> {
    use serde::Deserialize as _;
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            serde_yaml::Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
        .filter(|document| !document.is_null())
        .collect()
}

/// The resources a kustomization lists.
fn kustomization_resources(dir: &str) -> Vec<String> {
    let kustomization = &yaml_documents(&std::path::Path::new(dir).join("kustomization.yaml"))[0];
    kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|resource| resource.as_str().unwrap().to_owned())
        .collect()
}

/// Every object of the base, by kind.
fn base_objects() -> Vec<serde_yaml::Value> {
    kustomization_resources(KUBERNETES_BASE)
        .iter()
        .flat_map(|file| yaml_documents(&std::path::Path::new(KUBERNETES_BASE).join(file)))
        .collect()
}

fn of_kind<'a>(
    objects: &'a [serde_yaml::Value],
    kind: &'a str,
) -> impl Iterator<Item = &'a serde_yaml::Value> {
    objects.iter().filter(move |object| object["kind"] == kind)
}

#[test]
fn every_kubernetes_deployment_has_a_disruption_budget_and_prefers_other_nodes() {
    // Every manifest of the base is applied.
    let listed = kustomization_resources(KUBERNETES_BASE);
    for entry in std::fs::read_dir(KUBERNETES_BASE).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            assert!(
                listed.contains(&name),
                "base/kustomization.yaml does not list {name}"
            );
        }
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes");
    assert_eq!(kustomization_resources(root), ["base"]);

    let objects = base_objects();
    let budgets: Vec<&serde_yaml::Value> = of_kind(&objects, "PodDisruptionBudget").collect();
    let deployments: Vec<&serde_yaml::Value> = of_kind(&objects, "Deployment").collect();
    assert_eq!(deployments.len(), ServiceName::ALL.len());
    for deployment in deployments {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let selector = &deployment["spec"]["selector"]["matchLabels"];
        let replicas = deployment["spec"]["replicas"].as_u64().unwrap();
        assert!(
            replicas >= 2,
            "{name}: {replicas} replica(s); a drain or a crash stops the service"
        );
        assert_eq!(
            deployment["spec"]["strategy"]["type"], "RollingUpdate",
            "{name}: replicas are replaced one by one"
        );
        let budget = budgets
            .iter()
            .find(|budget| &budget["spec"]["selector"]["matchLabels"] == selector)
            .unwrap_or_else(|| panic!("{name}: no PodDisruptionBudget selects its pods"));
        // A drain may evict one pod at a time, and can make progress.
        assert_eq!(budget["spec"]["maxUnavailable"], 1, "{name}");
        let preferred = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
            ["preferredDuringSchedulingIgnoredDuringExecution"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name}: no preferred pod anti-affinity"));
        assert!(
            preferred.iter().any(|term| {
                term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
                    && &term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
            }),
            "{name}: anti-affinity must keep its own replicas on different nodes"
        );
    }
}

#[test]
fn the_production_overlay_puts_haven_on_a_cloudnativepg_cluster_with_backups() {
    let dir = std::path::Path::new(KUBERNETES_PRODUCTION);
    for resource in kustomization_resources(KUBERNETES_PRODUCTION) {
        let path = dir.join(&resource);
        assert!(
            path.is_file() || path.join("kustomization.yaml").is_file(),
            "production lists {resource}, which does not exist"
        );
    }
    let objects: Vec<serde_yaml::Value> = kustomization_resources(KUBERNETES_PRODUCTION)
        .iter()
        .filter(|resource| resource.ends_with(".yaml"))
        .flat_map(|file| yaml_documents(&dir.join(file)))
        .collect();
    let cluster = of_kind(&objects, "Cluster")
        .next()
        .expect("a CloudNativePG Cluster");
    assert_eq!(cluster["apiVersion"], "postgresql.cnpg.io/v1");
    let cluster_name = cluster["metadata"]["name"].as_str().unwrap();
    assert_eq!(cluster["spec"]["instances"], 3);
    let store = &cluster["spec"]["backup"]["barmanObjectStore"];
    assert!(
        store["destinationPath"]
            .as_str()
            .is_some_and(|path| !path.is_empty())
    );
    assert!(store["wal"].is_mapping(), "WAL is archived continuously");
    let backup = of_kind(&objects, "ScheduledBackup")
        .next()
        .expect("a ScheduledBackup");
    assert_eq!(backup["spec"]["cluster"]["name"], cluster_name);
    let credentials = store["s3Credentials"]["accessKeyId"]["name"]
        .as_str()
        .unwrap();
    assert!(
        of_kind(&objects, "Secret").any(|secret| secret["metadata"]["name"] == credentials),
        "the backup credentials Secret {credentials} is part of the overlay"
    );

    // The patch gives every Haven process the operator's app Secret as its database.
    let kustomization = &yaml_documents(&dir.join("kustomization.yaml"))[0];
    let patches = kustomization["patches"].as_sequence().unwrap();
    let base = base_objects();
    let mut patched = std::collections::BTreeSet::new();
    for patch in patches {
        let operations = yaml_documents(&dir.join(patch["path"].as_str().unwrap()));
        let secret = &operations[0][0]["value"][0]["valueFrom"]["secretKeyRef"];
        assert_eq!(operations[0][0]["value"][0]["name"], "HAVEN__DATABASE__URL");
        assert_eq!(secret["name"], format!("{cluster_name}-app").as_str());
        assert_eq!(secret["key"], "uri");
        let target = &patch["target"];
        for object in of_kind(&base, target["kind"].as_str().unwrap()) {
            let by_name = target["name"]
                .as_str()
                .is_none_or(|name| object["metadata"]["name"] == name);
            let by_label = target["labelSelector"].as_str().is_none_or(|selector| {
                let (key, value) = selector.split_once('=').unwrap();
                object["metadata"]["labels"][key] == value
            });
            if by_name && by_label {
                patched.insert(object["metadata"]["name"].as_str().unwrap().to_owned());
            }
        }
    }
    let runs_haven: std::collections::BTreeSet<String> = base
        .iter()
        .filter(|object| object["kind"] == "Deployment" || object["kind"] == "Job")
        .map(|object| object["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        patched, runs_haven,
        "every Deployment and the migrate Job take the URL"
    );

    // Where kubectl is installed, the overlay renders with it.
    let Ok(rendered) = std::process::Command::new("kubectl")
        .args(["kustomize", KUBERNETES_PRODUCTION])
        .output()
    else {
        eprintln!("kubectl not installed: rendering not checked");
        return;
    };
    assert!(
        rendered.status.success(),
        "kubectl kustomize production: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let text = String::from_utf8(rendered.stdout).unwrap();
    assert_eq!(
        text.matches(&format!("name: {cluster_name}-app")).count(),
        runs_haven.len()
    );
}
