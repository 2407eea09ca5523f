//! What may leave the service: every published count perturbed by the cell-key
//! method and small cells suppressed (with complementary suppression) for aggregates,
//! and k-anonymity for record-level exports. Pure functions, so the properties are
//! tested on generated data.
//!
//! # Cell-key perturbation
//!
//! Suppressing the cells from 1 to 10 does not stop *differencing*: the same table
//! for a whole country and for every region but one differ by the people of that
//! region, and when that is one person, the two exact tables describe her. So no count
//! leaves as it is. This is the method of the UK's Office for National Statistics
//! (Census 2021) and the Australian Bureau of Statistics (TableBuilder):
//!
//! - every record (a screened person, a case) has a **record key**: 32 random-looking
//!   bits fixed by the record's id under the reporting database's secret
//!   ([`RecordKeys`](crate::counts)), so a rebuild gives every record the same key;
//! - a cell's **cell key** is the sum of the keys of the records it counts, modulo
//!   2³² ([`Count`]);
//! - the published value is the count plus a perturbation that the cell key picks
//!   from a fixed table ([`PERTURBATION`]): 0 with probability 1/2, ±1 with 1/5
//!   each, ±2 with 1/20 each. A count of at least the threshold is never published
//!   below it (the perturbations that would are replaced by the smallest allowed one),
//!   counts from 1 to below the threshold are suppressed, and 0 stays 0.
//!
//! The same people always give the same cell key, so the same value in every report,
//! format and scope: asking again, or for an overlapping scope, adds no information.
//! Two cells that differ by one person have unrelated cell keys, so their difference
//! is that person plus noise from −4 to +4: it no longer tells whether she is there.
//! Totals are perturbed from their own cell key like any cell, so a table's total
//! can differ from the sum of its published cells by a few.

use std::collections::BTreeMap;
use std::ops::{Add, AddAssign};

use haven_server::csv_file::{self, Cell, CsvFile, LineEnd};

/// A count with its cell key: how many records, and the sum of their record keys
/// modulo 2³². Adding counts adds both, so a cell's key depends only on which
/// records it holds, however it was summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Records counted.
    pub n: u64,
    /// Sum of their record keys, modulo 2³².
    pub key: u32,
}

impl Count {
    /// Nothing.
    pub const ZERO: Count = Count { n: 0, key: 0 };

    /// `n` records whose keys sum to `key`.
    pub fn new(n: u64, key: u32) -> Count {
        Count { n, key }
    }
}

impl Add for Count {
    type Output = Count;

    fn add(self, other: Count) -> Count {
        Count {
            n: self.n + other.n,
            key: self.key.wrapping_add(other.key),
        }
    }
}

impl AddAssign for Count {
    fn add_assign(&mut self, other: Count) {
        *self = *self + other;
    }
}

impl std::iter::Sum for Count {
    fn sum<I: Iterator<Item = Count>>(counts: I) -> Count {
        counts.fold(Count::ZERO, Add::add)
    }
}

/// The perturbation table: each change and its weight in twentieths. The cell key,
/// read as a fraction of 2³², falls into one of these slices.
pub const PERTURBATION: [(i64, u64); 5] = [(-2, 1), (-1, 4), (0, 10), (1, 4), (2, 1)];

/// The largest change perturbation makes to a count.
pub const MAX_PERTURBATION: u64 = 2;

/// The published value of a count of at least `threshold` (below it, or 0, the count
/// itself: those are suppressed or empty, never perturbed). Never below `threshold`.
pub fn perturb(count: Count, threshold: u64) -> u64 {
    if count.n == 0 || count.n < threshold {
        return count.n;
    }
    let n = i64::try_from(count.n).unwrap_or(i64::MAX);
    let lowest = i64::try_from(threshold).unwrap_or(i64::MAX) - n;
    let total: u64 = PERTURBATION.iter().map(|(_, weight)| weight).sum();
    let slice = (u64::from(count.key) * total) >> 32;
    let mut cumulative = 0;
    let mut change = 0;
    for (candidate, weight) in PERTURBATION {
        cumulative += weight;
        if slice < cumulative {
            change = candidate;
            break;
        }
    }
    u64::try_from(n.saturating_add(change.max(lowest))).unwrap_or_default()
}

/// A count table before perturbation and suppression.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTable {
    /// Name, e.g. `screenings_by_source`.
    pub name: &'static str,
    /// Dimension names.
    pub dimensions: Vec<&'static str>,
    /// Labels and counts.
    pub cells: Vec<(Vec<String>, Count)>,
    /// The total the cells break down (for multi-valued dimensions, persons counted
    /// once, so not the sum of the cells).
    pub total: Count,
}

impl RawTable {
    /// A table whose total is the sum of its cells.
    pub fn additive(
        name: &'static str,
        dimensions: Vec<&'static str>,
        cells: Vec<(Vec<String>, Count)>,
    ) -> RawTable {
        let total = cells.iter().map(|(_, count)| *count).sum();
        RawTable {
            name,
            dimensions,
            cells,
            total,
        }
    }
}

/// What a table shows for one count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// The perturbed count (0 when empty).
    Shown(u64),
    /// Withheld: from 1 to below the threshold.
    Small,
    /// Withheld, though not small itself, so that a small cell cannot be worked out
    /// from the total and the other cells.
    Complementary,
}

impl Figure {
    /// The published value, if any.
    pub fn value(self) -> Option<u64> {
        match self {
            Figure::Shown(value) => Some(value),
            Figure::Small | Figure::Complementary => None,
        }
    }
}

/// A published table.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedTable {
    /// Name.
    pub name: &'static str,
    /// Dimension names.
    pub dimensions: Vec<&'static str>,
    /// Labels and what is shown for each.
    pub cells: Vec<(Vec<String>, Figure)>,
    /// The total.
    pub total: Figure,
}

/// Perturbs every count and suppresses those from 1 to below `threshold`; then, while
/// a published total and the published cells would give away a single suppressed
/// cell, suppresses the next smallest cell (or, if there is none, the total). Zero
/// cells stay published: an empty cell identifies nobody.
pub fn publish(table: RawTable, threshold: u64) -> PublishedTable {
    let small = |count: Count| count.n > 0 && count.n < threshold;
    let mut hidden: Vec<Option<Figure>> = table
        .cells
        .iter()
        .map(|(_, count)| small(*count).then_some(Figure::Small))
        .collect();
    let mut total_hidden = small(table.total).then_some(Figure::Small);
    while total_hidden.is_none() && hidden.iter().filter(|hidden| hidden.is_some()).count() == 1 {
        let next = table
            .cells
            .iter()
            .enumerate()
            .filter(|(index, (_, count))| hidden[*index].is_none() && count.n > 0)
            .min_by_key(|(_, (_, count))| count.n)
            .map(|(index, _)| index);
        match next {
            Some(index) => hidden[index] = Some(Figure::Complementary),
            None => total_hidden = Some(Figure::Complementary),
        }
    }
    let shown = |count: Count, hidden: Option<Figure>| {
        hidden.unwrap_or_else(|| Figure::Shown(perturb(count, threshold)))
    };
    PublishedTable {
        name: table.name,
        dimensions: table.dimensions,
        cells: table
            .cells
            .into_iter()
            .zip(hidden)
            .map(|((labels, count), hidden)| (labels, shown(count, hidden)))
            .collect(),
        total: shown(table.total, total_hidden),
    }
}

/// A figure that is not a count, resting on `base` persons or records.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// Name.
    pub name: String,
    /// Value; `None` when suppressed.
    pub value: Option<f64>,
    /// How many it rests on, perturbed like a count; 0 when that number is itself
    /// small (suppressed).
    pub base: u64,
    /// Unit.
    pub unit: String,
}

/// How a measure is rounded before it is published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rounding {
    /// To the nearest multiple of a step.
    Step(f64),
    /// To this many significant figures.
    Significant(i32),
}

impl Rounding {
    fn apply(self, value: f64) -> f64 {
        let step = match self {
            Rounding::Step(step) => step,
            Rounding::Significant(_) if value == 0.0 => return 0.0,
            Rounding::Significant(figures) => {
                10f64.powi(value.abs().log10().floor() as i32 + 1 - figures)
            }
        };
        let rounded = (value / step).round() * step;
        // Steps are decimal (5, 0.1, 0.05): round away binary artefacts at 1e-9.
        (rounded * 1e9).round() / 1e9
    }
}

/// A measure resting on fewer than `threshold` persons is suppressed. Otherwise the
/// value is rounded (so that two scopes a person apart rarely differ at all, and
/// never by her own value) and the base is perturbed.
pub fn measure(
    name: impl Into<String>,
    value: f64,
    base: Count,
    rounding: Rounding,
    unit: impl Into<String>,
    threshold: u64,
) -> Measure {
    let shown = base.n >= threshold;
    Measure {
        name: name.into(),
        value: (shown && value.is_finite()).then(|| rounding.apply(value)),
        // A small base is itself the count being protected.
        base: if shown { perturb(base, threshold) } else { 0 },
        unit: unit.into(),
    }
}

/// How measures are rounded: coarse enough that two scopes a person apart rarely
/// differ, and never by that person's own value.
pub mod steps {
    use super::Rounding;

    /// Medians and 90th percentiles of durations: 5 days.
    pub const DAYS: Rounding = Rounding::Step(5.0);
    /// Rates: 5 percentage points.
    pub const RATIO: Rounding = Rounding::Step(0.05);
    /// Money totals: two significant figures (15,000, 1,500, 150).
    pub const AMOUNT: Rounding = Rounding::Significant(2);
    /// Mean scores: a tenth.
    pub const SCORE: Rounding = Rounding::Step(0.1);
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

/// How many records of each class a release publishes, given how many the class
/// holds now (`current`) and how many the previous release of the same dataset
/// published (`released`). A class changes between releases by 0 or by at least `k`
/// records, never by fewer: new records wait until `k` of them can enter together,
/// and when records leave (an erasure, a consent withdrawn) the class drops by whole
/// multiples of `k` (to 0 below `k`). So comparing two releases never isolates a
/// record added or removed between them, and every published class has at least `k`
/// members, as k-anonymity asks. Classes are keyed by their published values.
pub fn release_counts<C: Ord + Clone>(
    current: &BTreeMap<C, u64>,
    released: &BTreeMap<C, u64>,
    k: u64,
) -> BTreeMap<C, u64> {
    let k = k.max(1);
    let mut next = BTreeMap::new();
    for class in current.keys().chain(released.keys()) {
        let now = current.get(class).copied().unwrap_or(0);
        let before = released.get(class).copied().unwrap_or(0);
        let count = if now >= before + k {
            // Enough new records to enter together.
            now
        } else if now >= before {
            // Too few new ones: they wait.
            before
        } else {
            // Some left: drop whole batches, so that at most `now` remain.
            let dropped = (before - now).div_ceil(k) * k;
            before - dropped
        };
        let count = if count < k { 0 } else { count };
        if count > 0 {
            next.insert(class.clone(), count);
        }
    }
    next
}

/// The classes of `records`: each distinct CSV row ([`ctdc_row`]) and how many
/// records have it.
pub fn ctdc_classes(records: &[CtdcRecord]) -> BTreeMap<String, u64> {
    let mut classes = BTreeMap::new();
    for record in records {
        *classes.entry(ctdc_row(record)).or_default() += 1;
    }
    classes
}

/// The CSV file of released classes: each class's row as often as it is counted, in
/// the order of the rows (which reveals no input order).
pub fn release_csv(classes: &BTreeMap<String, u64>) -> String {
    let mut csv = CsvFile::new(CTDC_COLUMNS, LineEnd::Lf).finish();
    // Each class is a row `ctdc_row` wrote: repeated as it is.
    for (row, count) in classes {
        for _ in 0..*count {
            csv.push_str(row);
            csv.push('\n');
        }
    }
    csv
}

/// One record's CSV row, without its line end. It is also the record's class in the
/// release ledger, so it must not change for the same record.
pub fn ctdc_row(record: &CtdcRecord) -> String {
    let year = record.year_of_registration.to_string();
    csv_file::line(ctdc_cells(record, &year))
}

/// The CSV file of kept records.
pub fn ctdc_csv(records: &[CtdcRecord]) -> String {
    let mut csv = CsvFile::new(CTDC_COLUMNS, LineEnd::Lf);
    for record in records {
        let year = record.year_of_registration.to_string();
        csv.row(ctdc_cells(record, &year));
    }
    csv.finish()
}

/// A record's cells in the order of [`CTDC_COLUMNS`]; `year` is its year of
/// registration, written.
fn ctdc_cells<'a>(record: &'a CtdcRecord, year: &'a str) -> [Cell<'a>; 9] {
    let flag = |value: bool| Cell::Figure(if value { "1" } else { "0" });
    [
        Cell::Figure(year),
        Cell::Text("Case Management"),
        Cell::Text(&record.gender),
        Cell::Text(&record.age_broad),
        Cell::Text(&record.majority_status),
        Cell::Text(&record.citizenship),
        flag(record.is_forced_labour),
        flag(record.is_sexual_exploit),
        flag(record.is_other_exploit),
    ]
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

        /// A record or cell key: 32 bits from two draws (one gives 31).
        fn key(&mut self) -> u64 {
            (self.next(1 << 16) << 16) | self.next(1 << 16)
        }
    }

    fn count(n: u64, key: u64) -> Count {
        Count::new(n, u32::try_from(key % (1 << 32)).unwrap_or_default())
    }

    #[test]
    fn no_published_cell_is_small_and_no_single_cell_can_be_recovered() {
        let mut random = Lcg(3);
        for round in 0..2_000 {
            let cells: Vec<(Vec<String>, Count)> = (0..1 + random.next(8))
                .map(|index| {
                    let n = match random.next(4) {
                        0 => 0,
                        1 => 1 + random.next(10),
                        _ => random.next(60),
                    };
                    (vec![format!("c{index}")], count(n, random.key()))
                })
                .collect();
            let raw = RawTable::additive("t", vec!["d"], cells.clone());
            let published = publish(raw.clone(), 11);
            for ((_, count), (_, figure)) in cells.iter().zip(&published.cells) {
                if let Figure::Shown(shown) = figure {
                    assert!(
                        shown.abs_diff(count.n) <= MAX_PERTURBATION,
                        "round {round}: {shown} is within the bound of {}",
                        count.n
                    );
                    assert!(
                        *shown == 0 || *shown >= 11,
                        "round {round}: a small cell was published"
                    );
                    assert_eq!(*shown == 0, count.n == 0, "round {round}: zero stays zero");
                } else if count.n > 0 && count.n < 11 {
                    assert_eq!(*figure, Figure::Small, "round {round}");
                }
            }
            let hidden = published
                .cells
                .iter()
                .filter(|(_, figure)| figure.value().is_none())
                .count();
            if let Figure::Shown(total) = published.total {
                assert!(
                    total.abs_diff(raw.total.n) <= MAX_PERTURBATION,
                    "round {round}"
                );
                assert!(
                    total == 0 || total >= 11,
                    "round {round}: a small total was published"
                );
                assert_ne!(
                    hidden, 1,
                    "round {round}: the total would give the suppressed cell away"
                );
                let shown: u64 = published
                    .cells
                    .iter()
                    .filter_map(|(_, figure)| figure.value())
                    .sum();
                let cells = published.cells.len() as u64;
                assert!(
                    shown <= total + MAX_PERTURBATION * (cells + 1),
                    "round {round}: totals agree with their cells within the bounds"
                );
            }
        }
    }

    #[test]
    fn complementary_suppression_hides_the_next_smallest_cell() {
        let raw = RawTable::additive(
            "t",
            vec!["d"],
            vec![
                (vec!["a".into()], count(3, 1)),
                (vec!["b".into()], count(40, 2)),
                (vec!["c".into()], count(25, 3)),
                (vec!["d".into()], count(0, 0)),
            ],
        );
        let published = publish(raw, 11);
        let figures: Vec<Figure> = published.cells.iter().map(|(_, figure)| *figure).collect();
        assert_eq!(figures[0], Figure::Small);
        assert!(matches!(figures[1], Figure::Shown(38..=42)));
        assert_eq!(
            figures[2],
            Figure::Complementary,
            "large, hidden to protect `a`"
        );
        assert_eq!(figures[3], Figure::Shown(0));
        assert!(matches!(published.total, Figure::Shown(66..=70)));
        // Nothing else to hide: the total goes instead.
        let lone = publish(
            RawTable::additive(
                "t",
                vec!["d"],
                vec![
                    (vec!["a".into()], count(2, 5)),
                    (vec!["b".into()], count(0, 0)),
                ],
            ),
            11,
        );
        assert_eq!(lone.total, Figure::Small);
    }

    #[test]
    fn the_same_people_give_the_same_value_and_one_more_gives_noise() {
        let mut random = Lcg(17);
        let keys: Vec<u32> = (0..40)
            .map(|_| u32::try_from(random.key()).unwrap_or_default())
            .collect();
        let of = |keys: &[u32]| -> Count { keys.iter().map(|key| Count::new(1, *key)).sum() };
        // Summed in any order or grouping (months, days, regions), one cell key.
        let whole = of(&keys);
        let parts = of(&keys[..13]) + of(&keys[13..29]) + of(&keys[29..]);
        assert_eq!(whole, parts);
        let mut reversed = keys.clone();
        reversed.reverse();
        assert_eq!(perturb(of(&reversed), 11), perturb(whole, 11));

        // Over many cells, the changes follow the published table: no bias away from
        // the threshold, and every change in the table occurs.
        let mut seen: BTreeMap<i64, u64> = BTreeMap::new();
        let cells = 20_000;
        for _ in 0..cells {
            let n = 20 + random.next(200);
            let key = random.key();
            let shown = perturb(count(n, key), 11);
            *seen
                .entry(
                    i64::try_from(shown).unwrap_or_default() - i64::try_from(n).unwrap_or_default(),
                )
                .or_default() += 1;
        }
        for (change, weight) in PERTURBATION {
            let expected = cells * weight / 20;
            let got = seen.get(&change).copied().unwrap_or_default();
            assert!(
                got.abs_diff(expected) < expected / 5 + 50,
                "change {change}: {got} of {cells}, expected about {expected}"
            );
        }
        assert_eq!(seen.keys().copied().collect::<Vec<_>>(), [-2, -1, 0, 1, 2]);
        // At the threshold itself, nothing goes below it.
        for key in 0..200_u64 {
            assert!(perturb(count(11, key * 21_474_836), 11) >= 11);
            assert!(perturb(count(12, key * 21_474_836), 11) >= 11);
        }
    }

    #[test]
    fn ctdc_rows_keep_their_bytes_and_run_nothing_in_a_spreadsheet() {
        let record =
            |gender: &str, age_broad: &str, majority: &str, citizenship: &str| CtdcRecord {
                year_of_registration: 2026,
                gender: gender.to_owned(),
                age_broad: age_broad.to_owned(),
                majority_status: majority.to_owned(),
                citizenship: citizenship.to_owned(),
                is_forced_labour: true,
                is_sexual_exploit: false,
                is_other_exploit: true,
            };
        // The row is a class of the release ledger: these bytes must not change.
        let known = record("Transgender/NonConforming", "18--20", "Adult", "AZ");
        assert_eq!(
            ctdc_row(&known),
            "2026,Case Management,Transgender/NonConforming,18--20,Adult,AZ,1,0,1"
        );
        let unknown = record("", "", "", "");
        assert_eq!(ctdc_row(&unknown), "2026,Case Management,,,,,1,0,1");
        let hostile = record("Female", "9--17", "Minor", "=HYPERLINK(\"x\",\"y\")");
        assert_eq!(
            ctdc_row(&hostile),
            "2026,Case Management,Female,9--17,Minor,\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\",1,0,1"
        );
        let header = "yearOfRegistration,Datasource,gender,ageBroad,majorityStatus,citizenship,\
                      isForcedLabour,isSexualExploit,isOtherExploit\n";
        let records = [unknown.clone(), known.clone(), known.clone()];
        let expected = format!(
            "{header}{}\n{}\n{}\n",
            ctdc_row(&unknown),
            ctdc_row(&known),
            ctdc_row(&known)
        );
        assert_eq!(ctdc_csv(&records), expected);
        assert_eq!(release_csv(&ctdc_classes(&records)), expected);
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
    fn successive_releases_change_a_class_by_none_or_at_least_k() {
        let mut random = Lcg(41);
        let k = 11;
        for round in 0..500 {
            let mut released: BTreeMap<u32, u64> = BTreeMap::new();
            let mut now: BTreeMap<u32, u64> = BTreeMap::new();
            for step in 0..30 {
                // People arrive (and sometimes leave) one or a few at a time.
                for _ in 0..random.next(4) {
                    *now.entry(u32::try_from(random.next(5)).unwrap())
                        .or_default() += 1;
                }
                if random.next(6) == 0
                    && let Some(count) = now.values_mut().find(|count| **count > 0)
                {
                    *count -= 1;
                }
                let next = release_counts(&now, &released, k);
                for class in now.keys().chain(released.keys()) {
                    let (before, after) = (
                        released.get(class).copied().unwrap_or(0),
                        next.get(class).copied().unwrap_or(0),
                    );
                    assert!(
                        before.abs_diff(after) == 0 || before.abs_diff(after) >= k,
                        "round {round} step {step}: a class moved from {before} to {after}"
                    );
                    assert!(
                        after == 0 || after >= k,
                        "round {round}: a class smaller than k"
                    );
                    assert!(
                        after <= now.get(class).copied().unwrap_or(0),
                        "round {round}: more published than hold the class"
                    );
                }
                released = next;
            }
        }
        // The first release is plain k-anonymity; then one more person changes nothing.
        let first = release_counts(&BTreeMap::from([(1, 12_u64), (2, 4)]), &BTreeMap::new(), 11);
        assert_eq!(first, BTreeMap::from([(1, 12)]));
        let second = release_counts(&BTreeMap::from([(1, 13_u64), (2, 4)]), &first, 11);
        assert_eq!(second, first, "one new person waits for ten more");
    }

    #[test]
    fn measures_on_few_people_are_suppressed_and_percentiles_use_nearest_rank() {
        let tenth = Rounding::Step(0.1);
        assert_eq!(
            measure("m", 2.5, count(10, 1), tenth, "days", 11).value,
            None
        );
        assert_eq!(
            measure("m", 2.5, count(10, 1), tenth, "days", 11).base,
            0,
            "the small base is not published either"
        );
        assert_eq!(
            measure("m", 2.5, count(11, 1), tenth, "days", 11).value,
            Some(2.5)
        );
        assert_eq!(
            measure("m", 12.4, count(30, 1), steps::DAYS, "days", 11).value,
            Some(10.0)
        );
        assert_eq!(
            measure("m", 0.312, count(30, 1), steps::RATIO, "ratio", 11).value,
            Some(0.3)
        );
        for (total, published) in [
            (150.5, 150.0),
            (15_249.0, 15_000.0),
            (1_575.0, 1_600.0),
            (0.0, 0.0),
        ] {
            assert_eq!(
                measure("m", total, count(30, 1), steps::AMOUNT, "AZN", 11).value,
                Some(published)
            );
        }
        let base = measure("m", 1.0, count(30, 7), steps::DAYS, "days", 11).base;
        assert!(
            base.abs_diff(30) <= MAX_PERTURBATION,
            "the base is perturbed like a count"
        );
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&sorted, 0.5), Some(5.0));
        assert_eq!(percentile(&sorted, 0.9), Some(9.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
