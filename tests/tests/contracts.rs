//! The public contracts stay what `contracts/` says they are: the OpenAPI document
//! the gateway serves at `/v1/openapi.json`, and the gRPC file descriptor set the
//! services describe by reflection.
//!
//! Each test regenerates one contract and compares it with the committed snapshot;
//! a difference fails with the first changed line and a `diff -u` command to see
//! the rest. A changed snapshot is a contract change: when it is intended, rewrite
//! the snapshots with
//!
//! ```text
//! HAVEN_UPDATE_CONTRACTS=1 cargo test -p haven-e2e --test contracts
//! ```
//!
//! and list the change in the changelog of the README, so that client authors learn
//! of it (see `contracts/README.md`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use prost::Message as _;
use prost_reflect::ReflectMessage as _;
use prost_reflect::prost_types::FileDescriptorSet;
use prost_reflect::text_format::FormatOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Set to `1` to rewrite the snapshots instead of comparing with them.
const UPDATE: &str = "HAVEN_UPDATE_CONTRACTS";

/// The committed snapshots, at the root of the workspace.
fn contracts_dir() -> PathBuf {
    let tests_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests_crate
        .parent()
        .expect("the tests crate is inside the workspace")
        .join("contracts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_contract_is_the_snapshot() {
    let document = served_openapi_document().await;
    let mut text = serde_json::to_string_pretty(&sorted(document)).unwrap();
    text.push('\n');
    check_snapshot("openapi.json", text.as_bytes());
}

#[test]
fn the_grpc_contract_is_the_snapshot() {
    let descriptors = haven_descriptors();
    let mut text = descriptors
        .transcode_to_dynamic()
        .to_text_format_with_options(&FormatOptions::new().pretty(true));
    text.push('\n');
    check_snapshot("grpc/haven.txtpb", text.as_bytes());
    check_snapshot("grpc/haven.binpb", &descriptors.encode_to_vec());
}

/// The document the gateway serves at `/v1/openapi.json` with default settings (so
/// its server URL is the default `gateway.public_url`).
async fn served_openapi_document() -> serde_json::Value {
    let (_dir, settings) = haven_storage::testing::sqlite_settings();
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = TcpListener::bind(any_port).await.unwrap();
    let metrics_listener = TcpListener::bind(any_port).await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let gateway = tokio::spawn(haven_gateway::serve(
        listener,
        metrics_listener,
        settings,
        shutdown.clone(),
    ));
    let response = reqwest::get(format!("http://{address}/v1/openapi.json"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let document = response.json().await.unwrap();
    shutdown.cancel();
    gateway.await.unwrap().unwrap();
    document
}

/// `value` with the keys of every object in alphabetical order, whatever map type
/// serde_json was built with.
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(object) => {
            let mut object: serde_json::Map<_, _> = object
                .into_iter()
                .map(|(key, value)| (key, sorted(value)))
                .collect();
            object.sort_keys();
            serde_json::Value::Object(object)
        }
        serde_json::Value::Array(items) => items.into_iter().map(sorted).collect(),
        other => other,
    }
}

/// Haven's file descriptor set, as reflection serves it, without source positions
/// and comments (moving a line or rewording a comment changes no contract), files
/// in name order.
fn haven_descriptors() -> FileDescriptorSet {
    let mut descriptors = FileDescriptorSet::decode(haven_proto::FILE_DESCRIPTOR_SET).unwrap();
    for file in &mut descriptors.file {
        file.source_code_info = None;
    }
    descriptors
        .file
        .sort_by(|left, right| left.name.cmp(&right.name));
    descriptors
}

/// Compares `generated` with the snapshot `name` under `contracts/`, or rewrites the
/// snapshot when [`UPDATE`] is set.
fn check_snapshot(name: &str, generated: &[u8]) {
    let snapshot = contracts_dir().join(name);
    if std::env::var(UPDATE).is_ok_and(|value| value == "1") {
        std::fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
        std::fs::write(&snapshot, generated).unwrap();
        return;
    }
    let committed = std::fs::read(&snapshot).unwrap_or_default();
    if committed == generated {
        return;
    }
    // The regenerated contract goes beside the build, for `diff`.
    let regenerated = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("contracts")
        .join(name);
    std::fs::create_dir_all(regenerated.parent().unwrap()).unwrap();
    std::fs::write(&regenerated, generated).unwrap();
    panic!(
        "the contract in contracts/{name} changed{}\n\
         see the whole difference with: diff -u {} {}\n\
         if the change is intended, list it in the README's changelog and rewrite the \
         snapshots with: {UPDATE}=1 cargo test -p haven-e2e --test contracts",
        first_difference(&committed, generated),
        snapshot.display(),
        regenerated.display(),
    );
}

/// Where two versions of a text first differ, as `: line N` and both lines; for a
/// binary or missing snapshot, only what happened.
fn first_difference(committed: &[u8], generated: &[u8]) -> String {
    if committed.is_empty() {
        return " (no snapshot committed yet)".to_owned();
    }
    let (Ok(committed), Ok(generated)) = (
        std::str::from_utf8(committed),
        std::str::from_utf8(generated),
    ) else {
        return " (binary snapshot; its text form shows what)".to_owned();
    };
    let mut committed_lines = committed.lines();
    let mut generated_lines = generated.lines();
    for number in 1.. {
        match (committed_lines.next(), generated_lines.next()) {
            (None, None) => break,
            (before, after) if before == after => {}
            (before, after) => {
                return format!(
                    ": first at line {number}\n- {}\n+ {}",
                    before.unwrap_or("(end of snapshot)"),
                    after.unwrap_or("(end of regenerated contract)"),
                );
            }
        }
    }
    " (in line endings only)".to_owned()
}
