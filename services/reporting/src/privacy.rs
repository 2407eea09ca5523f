//! Releases under differential privacy, and the privacy budget they spend.
//!
//! A private release publishes the victim counts of a scope as one-way tables over
//! fixed label sets (year, gender, age band, majority status, and each form of
//! exploitation as yes/no), each cell with two-sided geometric noise: the discrete
//! Laplace mechanism. Adding or removing one record changes one cell of each table by
//! one, so a table with noise of scale `1/ε_t` is `ε_t`-differentially private, and
//! the release, splitting its `ε` evenly over its tables, is `ε`-differentially
//! private by sequential composition. The label sets never depend on the data, so an
//! empty cell is published like any other.
//!
//! Privacy loss adds up over releases. The unit of privacy is a victim record, and the
//! records are partitioned by the calendar year they were registered in: a release
//! spends its `ε` from the budget of each year its period touches, and releases of
//! disjoint years compose in parallel (a record is in one year only). The ledger keeps
//! what each year has spent; a release that would take a year past the configured
//! budget is refused (see [`Spend`]).

use haven_error::HavenError;
use rand::Rng;
use time::Date;

use crate::publication::CtdcRecord;

/// Millionths of ε: the ledger's unit, so that sums are exact.
pub const MICROS: f64 = 1_000_000.0;

/// The smallest `ε` a release may spend (smaller would publish noise only).
pub const MIN_EPSILON: f64 = 0.01;

/// The longest period, in calendar years, one release may cover.
pub const MAX_YEARS: i32 = 10;

/// The label used for an unknown value.
const UNKNOWN: &str = "unknown";

/// A published table: its name and each label's noisy count.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateTable {
    /// e.g. `by_gender`.
    pub name: &'static str,
    /// Every label of the table's fixed set, with its published count.
    pub cells: Vec<(String, u64)>,
}

/// What a release spends: `epsilon` from the budget of each dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Spend {
    /// The datasets (one per calendar year), in ascending order so that concurrent
    /// releases charge them in the same order.
    pub datasets: Vec<String>,
    /// Millionths of ε spent from each.
    pub epsilon_micro: i64,
    /// The configured budget of each dataset, in millionths of ε.
    pub budget_micro: i64,
}

/// A dataset's use of its budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetUse {
    /// e.g. `victims_registered_2026`.
    pub dataset: String,
    /// Millionths of ε spent so far.
    pub spent_micro: i64,
}

/// The dataset of the records registered in `year`.
pub fn dataset(year: i32) -> String {
    format!("victims_registered_{year}")
}

/// Checks a release's request and says what it would spend.
pub fn spend(
    from: Option<Date>,
    to: Option<Date>,
    epsilon: f64,
    budget: f64,
) -> Result<Spend, HavenError> {
    let (Some(from), Some(to)) = (from, to) else {
        return Err(HavenError::invalid_field(
            "scope",
            "a private release needs a period: both `from` and `to`",
        ));
    };
    if to.year() - from.year() >= MAX_YEARS {
        return Err(HavenError::invalid_field(
            "scope.to",
            format!("a private release covers at most {MAX_YEARS} calendar years"),
        ));
    }
    if !epsilon.is_finite() || epsilon < MIN_EPSILON {
        return Err(HavenError::invalid_field(
            "epsilon",
            format!("must be a number of at least {MIN_EPSILON}"),
        ));
    }
    if epsilon > budget {
        return Err(HavenError::invalid_field(
            "epsilon",
            format!("is more than the whole budget of a year ({budget})"),
        ));
    }
    Ok(Spend {
        datasets: (from.year()..=to.year()).map(dataset).collect(),
        // Rounded up: the ledger never records less than was spent.
        epsilon_micro: (epsilon * MICROS).ceil() as i64,
        budget_micro: (budget * MICROS).floor() as i64,
    })
}

/// The message of a refused release.
pub fn over_budget(dataset: &str, spent_micro: i64, spend: &Spend) -> String {
    let left = (spend.budget_micro - spent_micro).max(0);
    format!(
        "the privacy budget of {dataset} is ε = {}; releases have spent {}, so this one \
         (ε = {}) would exceed it. Ask for at most ε = {}, or publish from releases already \
         made (GET /v1/releases); a budget is raised only by a decision recorded in the \
         configuration (reporting.privacy_budget)",
        micros(spend.budget_micro),
        micros(spent_micro),
        micros(spend.epsilon_micro),
        micros(left),
    )
}

/// Millionths of ε as ε.
pub fn micros(value: i64) -> f64 {
    value as f64 / MICROS
}

/// The tables of a release and the noise's standard deviation in each cell.
pub fn private_tables(
    records: &[CtdcRecord],
    years: std::ops::RangeInclusive<i32>,
    epsilon: f64,
    random: &mut impl Rng,
) -> (Vec<PrivateTable>, f64) {
    let years: Vec<String> = years.map(|year| year.to_string()).collect();
    let yes_no = || vec!["yes".to_owned(), "no".to_owned()];
    let labels = |values: &[&str]| -> Vec<String> {
        values
            .iter()
            .copied()
            .chain([UNKNOWN])
            .map(str::to_owned)
            .collect()
    };
    type Label = fn(&CtdcRecord) -> String;
    let tables: Vec<(&'static str, Vec<String>, Label)> = vec![
        ("by_year", years, |record| {
            record.year_of_registration.to_string()
        }),
        (
            "by_gender",
            labels(&["Female", "Male", "Transgender/NonConforming"]),
            |record| unknown_if_empty(&record.gender),
        ),
        (
            "by_age_band",
            labels(&[
                "0--8", "9--17", "18--20", "21--23", "24--26", "27--29", "30--38", "39--47", "48+",
            ]),
            |record| unknown_if_empty(&record.age_broad),
        ),
        (
            "by_majority_status",
            labels(&["Adult", "Minor"]),
            |record| unknown_if_empty(&record.majority_status),
        ),
        ("forced_labour", yes_no(), |record| {
            yes_or_no(record.is_forced_labour)
        }),
        ("sexual_exploitation", yes_no(), |record| {
            yes_or_no(record.is_sexual_exploit)
        }),
        ("other_exploitation", yes_no(), |record| {
            yes_or_no(record.is_other_exploit)
        }),
    ];
    let per_table = epsilon / tables.len() as f64;
    let alpha = (-per_table).exp();
    let published = tables
        .into_iter()
        .map(|(name, labels, label_of)| {
            let mut counts: Vec<(String, i64)> =
                labels.into_iter().map(|label| (label, 0)).collect();
            for record in records {
                let label = label_of(record);
                // A label outside the fixed set (a value added later) is not counted:
                // the set must not depend on the data.
                if let Some(cell) = counts.iter_mut().find(|(known, _)| *known == label) {
                    cell.1 += 1;
                }
            }
            let cells = counts
                .into_iter()
                .map(|(label, count)| {
                    let noisy = count + two_sided_geometric(alpha, random);
                    // Shown as at least zero: post-processing spends nothing.
                    (label, u64::try_from(noisy).unwrap_or(0))
                })
                .collect();
            PrivateTable { name, cells }
        })
        .collect();
    (published, noise_sd(alpha))
}

fn unknown_if_empty(value: &str) -> String {
    if value.is_empty() {
        UNKNOWN.to_owned()
    } else {
        value.to_owned()
    }
}

fn yes_or_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// The standard deviation of two-sided geometric noise with ratio `alpha`.
pub fn noise_sd(alpha: f64) -> f64 {
    (2.0 * alpha).sqrt() / (1.0 - alpha)
}

/// Two-sided geometric noise: `P(z) ∝ alpha^|z|`, as the difference of two geometric
/// variables, each drawn by Bernoulli trials on 64-bit integers (no logarithm of a
/// floating-point uniform, whose gaps leak the true value).
pub fn two_sided_geometric(alpha: f64, random: &mut impl Rng) -> i64 {
    geometric(alpha, random) - geometric(alpha, random)
}

/// Failures before the first success of trials that fail with probability `alpha`.
fn geometric(alpha: f64, random: &mut impl Rng) -> i64 {
    // alpha as a fraction of 2^64: a trial fails when a uniform 64-bit draw is below.
    let threshold = (alpha * 18_446_744_073_709_551_616.0) as u64;
    let mut failures = 0;
    while random.random::<u64>() < threshold {
        failures += 1;
    }
    failures
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use time::macros::date;

    use super::*;

    fn record(year: i32, gender: &str) -> CtdcRecord {
        CtdcRecord {
            year_of_registration: year,
            gender: gender.to_owned(),
            age_broad: "18--20".to_owned(),
            majority_status: "Adult".to_owned(),
            citizenship: "AZ".to_owned(),
            is_forced_labour: true,
            is_sexual_exploit: false,
            is_other_exploit: false,
        }
    }

    #[test]
    fn noise_has_the_distribution_of_its_parameter() {
        let mut random = rand::rngs::StdRng::seed_from_u64(7);
        let alpha = (-0.5f64).exp();
        let draws: Vec<i64> = (0..200_000)
            .map(|_| two_sided_geometric(alpha, &mut random))
            .collect();
        let mean = draws.iter().sum::<i64>() as f64 / draws.len() as f64;
        let variance = draws
            .iter()
            .map(|draw| (*draw as f64 - mean).powi(2))
            .sum::<f64>()
            / draws.len() as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        let expected = noise_sd(alpha);
        assert!(
            (variance.sqrt() - expected).abs() / expected < 0.02,
            "sd {} against {expected}",
            variance.sqrt()
        );
        // P(0) = (1 - α) / (1 + α).
        let zeros = draws.iter().filter(|draw| **draw == 0).count() as f64 / draws.len() as f64;
        assert!((zeros - (1.0 - alpha) / (1.0 + alpha)).abs() < 0.01);
    }

    #[test]
    fn every_label_of_a_fixed_set_is_published_whatever_the_data() {
        let mut random = rand::rngs::StdRng::seed_from_u64(1);
        let (empty, _) = private_tables(&[], 2025..=2026, 1.0, &mut random);
        let (full, _) = private_tables(
            &[record(2026, "Female"), record(2025, "")],
            2025..=2026,
            1.0,
            &mut random,
        );
        let shape = |tables: &[PrivateTable]| -> Vec<(&str, Vec<String>)> {
            tables
                .iter()
                .map(|table| {
                    let labels = table.cells.iter().map(|(label, _)| label.clone()).collect();
                    (table.name, labels)
                })
                .collect()
        };
        assert_eq!(shape(&empty), shape(&full));
        assert_eq!(empty.len(), 7);
        assert_eq!(
            shape(&empty)[0].1,
            ["2025".to_owned(), "2026".to_owned()],
            "the years of the period"
        );
    }

    #[test]
    fn large_counts_come_through_within_the_stated_error() {
        let mut random = rand::rngs::StdRng::seed_from_u64(3);
        let records: Vec<CtdcRecord> = (0..1_000).map(|_| record(2026, "Female")).collect();
        let (tables, sd) = private_tables(&records, 2026..=2026, 1.0, &mut random);
        let female = tables[1]
            .cells
            .iter()
            .find(|(label, _)| label == "Female")
            .map(|(_, count)| *count)
            .unwrap_or_default();
        assert!(
            (female as f64 - 1_000.0).abs() < 6.0 * sd,
            "{female} with sd {sd}"
        );
    }

    #[test]
    fn a_release_spends_from_each_year_it_touches() {
        let spend = spend(
            Some(date!(2025 - 07 - 01)),
            Some(date!(2026 - 06 - 30)),
            0.3,
            1.0,
        )
        .expect("valid");
        assert_eq!(
            spend.datasets,
            ["victims_registered_2025", "victims_registered_2026"]
        );
        assert_eq!(spend.epsilon_micro, 300_000);
        assert_eq!(spend.budget_micro, 1_000_000);
        for (from, to, epsilon) in [
            (None, Some(date!(2026 - 01 - 01)), 0.5),
            (
                Some(date!(2010 - 01 - 01)),
                Some(date!(2026 - 01 - 01)),
                0.5,
            ),
            (
                Some(date!(2026 - 01 - 01)),
                Some(date!(2026 - 02 - 01)),
                0.0,
            ),
            (
                Some(date!(2026 - 01 - 01)),
                Some(date!(2026 - 02 - 01)),
                f64::NAN,
            ),
            (
                Some(date!(2026 - 01 - 01)),
                Some(date!(2026 - 02 - 01)),
                1.5,
            ),
        ] {
            assert!(
                spend_is_refused(from, to, epsilon),
                "{from:?} {to:?} {epsilon}"
            );
        }
    }

    fn spend_is_refused(from: Option<Date>, to: Option<Date>, epsilon: f64) -> bool {
        spend(from, to, epsilon, 1.0).is_err()
    }
}
