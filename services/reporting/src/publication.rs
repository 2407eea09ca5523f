//! What may leave the service: small-cell suppression with complementary suppression
//! for aggregates, and k-anonymity for record-level exports. Pure functions, so the
//! properties are tested on generated data.

use std::collections::BTreeMap;

/// A count table before suppression.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTable {
    /// Name, e.g. `screenings_by_source`.
    pub name: &'static str,
    /// Dimension names.
    pub dimensions: Vec<&'static str>,
    /// Labels and counts.
    pub cells: Vec<(Vec<String>, u64)>,
    /// The total the cells break down (for multi-valued dimensions, persons counted
    /// once, so not the sum of the cells).
    pub total: u64,
}

impl RawTable {
    /// A table whose total is the sum of its cells.
    pub fn additive(
        name: &'static str,
        dimensions: Vec<&'static str>,
        cells: Vec<(Vec<String>, u64)>,
    ) -> RawTable {
        let total = cells.iter().map(|(_, count)| count).sum();
        RawTable {
            name,
            dimensions,
            cells,
            total,
        }
    }
}

/// A published table: `None` where suppressed.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedTable {
    /// Name.
    pub name: &'static str,
    /// Dimension names.
    pub dimensions: Vec<&'static str>,
    /// Labels and counts, `None` when suppressed.
    pub cells: Vec<(Vec<String>, Option<u64>)>,
    /// The total, `None` when suppressed.
    pub total: Option<u64>,
}

/// Suppresses counts from 1 to below `threshold`, then, while a published total and
/// the published cells would give away a single suppressed cell, suppresses the next
/// smallest cell (or, if there is none, the total). Zero cells stay published: an
/// empty cell identifies nobody.
pub fn suppress(table: RawTable, threshold: u64) -> PublishedTable {
    let small = |count: u64| count > 0 && count < threshold;
    let mut hidden: Vec<bool> = table.cells.iter().map(|(_, count)| small(*count)).collect();
    let mut total_hidden = small(table.total);
    while !total_hidden && hidden.iter().filter(|hidden| **hidden).count() == 1 {
        let next = table
            .cells
            .iter()
            .enumerate()
            .filter(|(index, (_, count))| !hidden[*index] && *count > 0)
            .min_by_key(|(_, (_, count))| *count)
            .map(|(index, _)| index);
        match next {
            Some(index) => hidden[index] = true,
            None => total_hidden = true,
        }
    }
    PublishedTable {
        name: table.name,
        dimensions: table.dimensions,
        cells: table
            .cells
            .into_iter()
            .zip(hidden)
            .map(|((labels, count), hidden)| (labels, (!hidden).then_some(count)))
            .collect(),
        total: (!total_hidden).then_some(table.total),
    }
}

/// A figure that is not a count, resting on `base` persons or records.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// Name.
    pub name: String,
    /// Value; `None` when suppressed.
    pub value: Option<f64>,
    /// How many it rests on; 0 when that number is itself small (suppressed).
    pub base: u64,
    /// Unit.
    pub unit: String,
}

/// A measure resting on fewer than `threshold` persons is suppressed.
pub fn measure(
    name: impl Into<String>,
    value: f64,
    base: u64,
    unit: impl Into<String>,
    threshold: u64,
) -> Measure {
    let shown = base >= threshold;
    Measure {
        name: name.into(),
        value: (shown && value.is_finite()).then_some(value),
        // A small base is itself the count being protected.
        base: if shown { base } else { 0 },
        unit: unit.into(),
    }
}

/// The value below which `fraction` of sorted `values` lie (nearest rank).
pub fn percentile(sorted: &[f64], fraction: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (fraction * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// One person's published variables in the CTDC export.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CtdcRecord {
    /// Year the person was registered (screened).
    pub year_of_registration: i32,
    /// `Female`, `Male`, `Transgender/NonConforming` or empty.
    pub gender: String,
    /// CTDC age band, e.g. `18--20`.
    pub age_broad: String,
    /// `Adult`, `Minor` or empty.
    pub majority_status: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub citizenship: String,
    /// 1 if forced labour.
    pub is_forced_labour: bool,
    /// 1 if sexual exploitation.
    pub is_sexual_exploit: bool,
    /// 1 if another form.
    pub is_other_exploit: bool,
}

/// The CTDC columns of the export, in order (the HTCDS names are in the README).
pub const CTDC_COLUMNS: [&str; 9] = [
    "yearOfRegistration",
    "Datasource",
    "gender",
    "ageBroad",
    "majorityStatus",
    "citizenship",
    "isForcedLabour",
    "isSexualExploit",
    "isOtherExploit",
];

/// Keeps only records whose equivalence class over every published column has at
/// least `k` members; returns the kept records (sorted, so the file reveals no input
/// order) and how many were withheld.
pub fn k_anonymise(records: Vec<CtdcRecord>, k: usize) -> (Vec<CtdcRecord>, u64) {
    let mut classes: BTreeMap<CtdcRecord, usize> = BTreeMap::new();
    for record in &records {
        *classes.entry(record.clone()).or_default() += 1;
    }
    let mut kept = Vec::new();
    let mut withheld = 0;
    for (record, size) in classes {
        if size >= k {
            kept.extend(std::iter::repeat_n(record, size));
        } else {
            withheld += size as u64;
        }
    }
    (kept, withheld)
}

/// The CSV file of kept records.
pub fn ctdc_csv(records: &[CtdcRecord]) -> String {
    let flag = |value: bool| if value { "1" } else { "0" };
    let mut csv = CTDC_COLUMNS.join(",");
    csv.push('\n');
    for record in records {
        csv.push_str(&format!(
            "{},Case Management,{},{},{},{},{},{},{}\n",
            record.year_of_registration,
            record.gender,
            record.age_broad,
            record.majority_status,
            record.citizenship,
            flag(record.is_forced_labour),
            flag(record.is_sexual_exploit),
            flag(record.is_other_exploit),
        ));
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % below
        }
    }

    #[test]
    fn no_published_cell_is_small_and_no_single_cell_can_be_recovered() {
        let mut random = Lcg(3);
        for round in 0..2_000 {
            let cells: Vec<(Vec<String>, u64)> = (0..1 + random.next(8))
                .map(|index| {
                    let count = match random.next(4) {
                        0 => 0,
                        1 => 1 + random.next(10),
                        _ => random.next(60),
                    };
                    (vec![format!("c{index}")], count)
                })
                .collect();
            let raw = RawTable::additive("t", vec!["d"], cells.clone());
            let published = suppress(raw.clone(), 11);
            for ((_, count), (_, shown)) in cells.iter().zip(&published.cells) {
                if let Some(shown) = shown {
                    assert_eq!(shown, count, "round {round}: published counts are true");
                    assert!(
                        *shown == 0 || *shown >= 11,
                        "round {round}: a small cell was published"
                    );
                }
            }
            let hidden = published
                .cells
                .iter()
                .filter(|(_, shown)| shown.is_none())
                .count();
            if let Some(total) = published.total {
                assert_eq!(total, raw.total, "round {round}");
                assert!(
                    total == 0 || total >= 11,
                    "round {round}: a small total was published"
                );
                assert_ne!(
                    hidden, 1,
                    "round {round}: the total would give the suppressed cell away"
                );
                let shown: u64 = published.cells.iter().filter_map(|(_, shown)| *shown).sum();
                assert!(shown <= total, "round {round}: totals are consistent");
            }
        }
    }

    #[test]
    fn complementary_suppression_hides_the_next_smallest_cell() {
        let raw = RawTable::additive(
            "t",
            vec!["d"],
            vec![
                (vec!["a".into()], 3),
                (vec!["b".into()], 40),
                (vec!["c".into()], 25),
                (vec!["d".into()], 0),
            ],
        );
        let published = suppress(raw, 11);
        let values: Vec<Option<u64>> = published.cells.iter().map(|(_, value)| *value).collect();
        assert_eq!(values, [None, Some(40), None, Some(0)]);
        assert_eq!(published.total, Some(68));
        // Nothing else to hide: the total goes instead.
        let lone = suppress(
            RawTable::additive(
                "t",
                vec!["d"],
                vec![(vec!["a".into()], 2), (vec!["b".into()], 0)],
            ),
            11,
        );
        assert_eq!(lone.total, None);
    }

    #[test]
    fn k_anonymity_leaves_no_class_smaller_than_k() {
        let mut random = Lcg(9);
        let records: Vec<CtdcRecord> = (0..3_000)
            .map(|_| CtdcRecord {
                year_of_registration: 2023 + random.next(3) as i32,
                gender: ["Female", "Male"][random.next(2) as usize].into(),
                age_broad: ["9--17", "18--20", "30--38"][random.next(3) as usize].into(),
                majority_status: "Adult".into(),
                citizenship: ["AZ", "UZ", "NP"][random.next(3) as usize].into(),
                is_forced_labour: random.next(2) == 0,
                is_sexual_exploit: random.next(3) == 0,
                is_other_exploit: false,
            })
            .collect();
        let (kept, withheld) = k_anonymise(records.clone(), 11);
        assert_eq!(kept.len() as u64 + withheld, records.len() as u64);
        assert!(
            withheld > 0 && !kept.is_empty(),
            "the generated data has both"
        );
        let mut classes: BTreeMap<&CtdcRecord, usize> = BTreeMap::new();
        for record in &kept {
            *classes.entry(record).or_default() += 1;
        }
        assert!(classes.values().all(|size| *size >= 11));
        let csv = ctdc_csv(&kept);
        assert_eq!(csv.lines().count(), kept.len() + 1);
        assert!(csv.starts_with("yearOfRegistration,Datasource,gender,ageBroad"));
    }

    #[test]
    fn measures_on_few_people_are_suppressed_and_percentiles_use_nearest_rank() {
        assert_eq!(measure("m", 2.5, 10, "days", 11).value, None);
        assert_eq!(
            measure("m", 2.5, 10, "days", 11).base,
            0,
            "the small base is not published either"
        );
        assert_eq!(measure("m", 2.5, 11, "days", 11).value, Some(2.5));
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&sorted, 0.5), Some(5.0));
        assert_eq!(percentile(&sorted, 0.9), Some(9.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
