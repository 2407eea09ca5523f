//! What a report is asked and what the projections answer before publication: the
//! scope of a report and the raw facts (exact counts and durations) that only
//! [`crate::publication`] turns into figures that leave the service.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::publication::{Count, RawTable};

/// Which records a report covers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportScope {
    /// From this time on.
    pub from: Option<OffsetDateTime>,
    /// Before this time.
    pub until: Option<OffsetDateTime>,
    /// Of this organisation.
    pub organization_id: Option<Uuid>,
    /// In this region (the screening's settlement).
    pub region: Option<String>,
}

/// The unsuppressed material of the indicators; only [`crate::publication`] output
/// leaves the service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Count tables.
    pub tables: Vec<RawTable>,
    /// Days from screening to identification, per identified person.
    pub days_to_identification: Durations,
    /// Days from screening to the case's first service.
    pub days_to_first_service: Durations,
    /// Days from a referral to its acceptance.
    pub days_to_accept: Durations,
    /// Referrals answered (accepted at some point, or declined).
    pub referrals_answered: Count,
    /// Of those, accepted.
    pub referrals_accepted: u64,
    /// Cash assistance per currency: total in hundredths and cases paid.
    pub cash: Vec<(String, i64, Count)>,
    /// Per domain: mean first score, mean latest score, cases assessed twice or more.
    pub outcomes: Vec<(String, f64, f64, Count)>,
}

/// Durations in days, sorted, and how many (with their cell key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Durations {
    /// The durations, shortest first.
    pub days: Vec<f64>,
    /// How many there are.
    pub base: Count,
}
