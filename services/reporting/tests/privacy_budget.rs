//! The privacy budget ledger, on SQLite and on Postgres: releases under differential
//! privacy spend from the budget of each year they touch, concurrent releases never
//! spend past it, and a refused release leaves both ledgers as they were.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use time::macros::date;
use uuid::Uuid;

use haven_config::Settings;
use haven_error::ErrorCode;
use haven_reporting::privacy::{self, BudgetUse};
use haven_reporting::projections::{self, LedgerChange, NewRelease, Projections};

async fn setup(settings: &Settings) -> Arc<dyn Projections> {
    let keys =
        haven_reporting::RecordKeys::load(&haven_auth::keys::keys_dir(&settings.data_dir)).unwrap();
    projections::open(haven_reporting::connect(settings).await.unwrap(), keys)
}

fn release() -> NewRelease {
    NewRelease {
        kind: "private_counts",
        parameters: "{}".to_owned(),
        rows: 30,
        withheld: 0,
        sha256: "00".repeat(32),
        released_by: "analyst".to_owned(),
        organization_id: Uuid::new_v4(),
    }
}

fn spent(budget: &[BudgetUse], year: i32) -> Option<f64> {
    budget
        .iter()
        .find(|used| used.dataset == privacy::dataset(year))
        .map(|used| privacy::micros(used.spent_micro))
}

async fn releases_spend_per_year_and_are_refused_past_the_budget(
    projections: Arc<dyn Projections>,
) {
    // A release over the second half of 2025 and the first of 2026 spends from both.
    let across = privacy::spend(
        Some(date!(2025 - 07 - 01)),
        Some(date!(2026 - 06 - 30)),
        0.4,
        1.0,
    )
    .unwrap();
    let (first, budgets) = projections
        .record_release(release(), LedgerChange::Budget(&across))
        .await
        .unwrap();
    assert_eq!(first.epsilon, Some(0.4));
    assert_eq!(budgets.len(), 2);
    let only_2026 = privacy::spend(
        Some(date!(2026 - 01 - 01)),
        Some(date!(2026 - 12 - 31)),
        0.5,
        1.0,
    )
    .unwrap();
    projections
        .record_release(release(), LedgerChange::Budget(&only_2026))
        .await
        .unwrap();
    let budget = projections.privacy_budget().await.unwrap();
    assert_eq!(spent(&budget, 2025), Some(0.4));
    assert_eq!(spent(&budget, 2026), Some(0.9), "0.4 + 0.5, exactly");

    // 0.2 more fits 2025 but not 2026: refused as a whole, with what is left.
    let too_much = privacy::spend(
        Some(date!(2025 - 01 - 01)),
        Some(date!(2026 - 03 - 31)),
        0.2,
        1.0,
    )
    .unwrap();
    let refused = projections
        .record_release(release(), LedgerChange::Budget(&too_much))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Conflict);
    let message = refused.to_string();
    assert!(message.contains("victims_registered_2026"), "{message}");
    assert!(message.contains("at most ε = 0.1"), "{message}");
    let after = projections.privacy_budget().await.unwrap();
    assert_eq!(
        after, budget,
        "a refused release spends nothing, in no year"
    );
    let releases = projections.releases(10).await.unwrap();
    assert_eq!(releases.len(), 2, "and is not in the release ledger");
    assert!(releases.iter().all(|release| release.epsilon.is_some()));

    // The rest of 2026's budget can still be spent, to the last millionth.
    let rest = privacy::spend(
        Some(date!(2026 - 01 - 01)),
        Some(date!(2026 - 01 - 31)),
        0.1,
        1.0,
    )
    .unwrap();
    projections
        .record_release(release(), LedgerChange::Budget(&rest))
        .await
        .unwrap();
    let budget = projections.privacy_budget().await.unwrap();
    assert_eq!(spent(&budget, 2026), Some(1.0));
}

async fn concurrent_releases_never_spend_past_the_budget(projections: Arc<dyn Projections>) {
    let spend = privacy::spend(
        Some(date!(2024 - 01 - 01)),
        Some(date!(2024 - 12 - 31)),
        0.3,
        1.0,
    )
    .unwrap();
    let mut releases = Vec::new();
    for _ in 0..10 {
        let projections = projections.clone();
        let spend = spend.clone();
        releases.push(tokio::spawn(async move {
            projections
                .record_release(release(), LedgerChange::Budget(&spend))
                .await
        }));
    }
    let mut made = 0;
    for release in releases {
        match release.await.unwrap() {
            Ok(_) => made += 1,
            Err(error) => assert_eq!(error.code(), ErrorCode::Conflict, "{error}"),
        }
    }
    assert_eq!(made, 3, "three of 0.3 fit a budget of 1");
    let budget = projections.privacy_budget().await.unwrap();
    let spent = spent(&budget, 2024).unwrap();
    assert!((spent - 0.9).abs() < 1e-9, "{spent}");
    assert_eq!(projections.releases(50).await.unwrap().len(), 3);
}

haven_storage::backend_suite! {
    setup = setup;
    releases_spend_per_year_and_are_refused_past_the_budget,
    concurrent_releases_never_spend_past_the_budget,
}
