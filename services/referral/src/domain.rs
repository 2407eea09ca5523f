//! Directory values.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{ErrorCode, HavenError};
use haven_proto::referral::v1 as pb;

/// Kind of organisation (HTCDS organisation types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationType {
    /// Government body.
    Government,
    /// Non-governmental organisation.
    Ngo,
    /// International organisation.
    InternationalOrganization,
    /// Private company.
    Private,
    /// Anything else.
    Other,
}

haven_storage::stored_enum!(OrganizationType, pb::OrganizationType,
    Government => "government" / Government,
    Ngo => "ngo" / Ngo,
    InternationalOrganization => "international_organization" / InternationalOrganization,
    Private => "private" / Private,
    Other => "other" / Other,
);

/// An organisation in the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the directory.
    pub name: String,
    /// Kind.
    pub organization_type: OrganizationType,
    /// Settlement of its main office.
    pub settlement: String,
    /// Whether it takes referrals.
    pub active: bool,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Incremented on every change.
    pub version: i64,
    /// Position in creation order, for cursors.
    pub position: i64,
}

impl Organization {
    /// The wire form.
    pub fn to_proto(&self) -> pb::Organization {
        pb::Organization {
            id: self.id.to_string(),
            name: self.name.clone(),
            organization_type: self.organization_type.to_proto().into(),
            settlement: self.settlement.clone(),
            active: self.active,
            created_at: Some(haven_proto::timestamp(self.created_at)),
            version: u64::try_from(self.version).unwrap_or_default(),
        }
    }
}

/// Service types a facility can offer: the case service's list.
pub const SERVICE_TYPES: [&str; 13] = [
    "shelter",
    "medical",
    "psychological",
    "legal_aid",
    "interpretation",
    "vocational_training",
    "education",
    "employment_support",
    "cash_assistance",
    "family_tracing",
    "documentation",
    "voluntary_return",
    "other",
];

/// Genders a facility can accept.
pub const GENDERS: [&str; 3] = ["female", "male", "other"];

/// Age groups a facility can accept.
pub const AGE_GROUPS: [&str; 4] = ["child", "adolescent", "adult", "older"];

/// The age group of an age in years.
pub fn age_group(age: u32) -> &'static str {
    match age {
        0..=13 => "child",
        14..=17 => "adolescent",
        18..=59 => "adult",
        _ => "older",
    }
}

/// Who a facility accepts. Empty lists accept everyone.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Acceptance {
    /// Genders.
    pub genders: Vec<String>,
    /// Age groups.
    pub age_groups: Vec<String>,
    /// Unaccompanied minors.
    pub minors: bool,
    /// Families with children.
    pub families: bool,
}

/// The person a place is sought for; `None`/false parts do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Gender.
    pub gender: Option<String>,
    /// Age in years.
    pub age: Option<u32>,
    /// An unaccompanied minor.
    pub minor: bool,
    /// Comes with family.
    pub family: bool,
    /// Language the facility should speak.
    pub language: Option<String>,
}

/// A place where an organisation delivers services.
#[derive(Debug, Clone, PartialEq)]
pub struct Facility {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// The editable details.
    pub details: FacilityDetails,
    /// Free beds or slots.
    pub capacity_free: u32,
    /// Concurrency version.
    pub version: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Position in creation order, for cursors.
    pub position: i64,
}

/// The editable part of a facility, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct FacilityDetails {
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Settlement of the gazetteer.
    pub settlement: String,
    /// Where it is.
    pub point: crate::geo::Point,
    /// Services offered.
    pub service_types: Vec<String>,
    /// Beds or slots; 0 = not limited.
    pub capacity_total: u32,
    /// Who it accepts.
    pub accepts: Acceptance,
    /// Languages spoken.
    pub languages: Vec<String>,
    /// Opening hours, free text.
    pub opening_hours: String,
    /// Phone.
    pub contact_phone: String,
    /// Email.
    pub contact_email: String,
    /// Takes referrals.
    pub active: bool,
}

impl Facility {
    /// Whether the facility takes the person described by `profile`.
    pub fn accepts(&self, profile: &Profile) -> bool {
        let accepts = &self.details.accepts;
        let gender_ok = match &profile.gender {
            Some(gender) => accepts.genders.is_empty() || accepts.genders.contains(gender),
            None => true,
        };
        let age_ok = match profile.age {
            Some(age) => {
                accepts.age_groups.is_empty()
                    || accepts
                        .age_groups
                        .iter()
                        .any(|group| group == age_group(age))
            }
            None => true,
        };
        let language_ok = match &profile.language {
            Some(language) => {
                self.details.languages.is_empty() || self.details.languages.contains(language)
            }
            None => true,
        };
        gender_ok
            && age_ok
            && language_ok
            && (!profile.minor || accepts.minors)
            && (!profile.family || accepts.families)
    }

    /// Free places once the total becomes `capacity_total`: places already held stay
    /// held, and free places follow the new total (never below none).
    pub fn free_places_with_total(&self, capacity_total: u32) -> i64 {
        let held = i64::from(self.details.capacity_total) - i64::from(self.capacity_free);
        (i64::from(capacity_total) - held).max(0)
    }

    /// Whether a place is free (or capacity is not limited).
    pub fn has_room(&self) -> bool {
        self.details.capacity_total == 0 || self.capacity_free > 0
    }

    /// The wire form.
    pub fn to_proto(&self) -> pb::Facility {
        let details = &self.details;
        pb::Facility {
            id: self.id.to_string(),
            organization_id: self.organization_id.to_string(),
            name: details.name.clone(),
            address: details.address.clone(),
            settlement: details.settlement.clone(),
            latitude: details.point.latitude,
            longitude: details.point.longitude,
            service_types: details.service_types.clone(),
            capacity_total: details.capacity_total,
            capacity_free: self.capacity_free,
            accepts: Some(pb::Acceptance {
                genders: details.accepts.genders.clone(),
                age_groups: details.accepts.age_groups.clone(),
                minors: details.accepts.minors,
                families: details.accepts.families,
            }),
            languages: details.languages.clone(),
            opening_hours: details.opening_hours.clone(),
            contact_phone: details.contact_phone.clone(),
            contact_email: details.contact_email.clone(),
            active: details.active,
            version: u64::try_from(self.version).unwrap_or_default(),
            created_at: Some(haven_proto::timestamp(self.created_at)),
        }
    }
}

/// The facilities among `candidates` within `radius_km` of `center` that accept the
/// person, nearest first, at most `limit`, each with its distance in km.
pub fn nearest(
    candidates: Vec<Facility>,
    center: crate::geo::Point,
    radius_km: f64,
    profile: &Profile,
    limit: usize,
) -> Vec<(f64, Facility)> {
    let mut matches: Vec<(f64, Facility)> = candidates
        .into_iter()
        .filter(|facility| facility.accepts(profile))
        .map(|facility| (center.distance_km(facility.details.point), facility))
        .filter(|(distance, _)| *distance <= radius_km)
        .collect();
    matches.sort_by(|(left, _), (right, _)| left.total_cmp(right));
    matches.truncate(limit);
    matches
}

/// Where a referral stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralStatus {
    /// Waiting for the receiving organisation.
    Requested,
    /// Accepted; a place is held if the facility counts them.
    Accepted,
    /// Declined, with a reason.
    Declined,
    /// The service is being delivered.
    InProgress,
    /// Delivered; the outcome is reported back.
    Completed,
    /// Withdrawn by the sender.
    Cancelled,
    /// Ended because consent to sharing was withdrawn (or the sender revoked it).
    Revoked,
}

haven_storage::stored_enum!(ReferralStatus, pb::ReferralStatus,
    Requested => "requested" / Requested,
    Accepted => "accepted" / Accepted,
    Declined => "declined" / Declined,
    InProgress => "in_progress" / InProgress,
    Completed => "completed" / Completed,
    Cancelled => "cancelled" / Cancelled,
    Revoked => "revoked" / Revoked,
);

/// Which side of a referral may make a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The organisation that referred.
    Sender,
    /// The organisation referred to.
    Receiver,
}

impl ReferralStatus {
    /// Still open: the receiving side may see what the referral discloses.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ReferralStatus::Requested | ReferralStatus::Accepted | ReferralStatus::InProgress
        )
    }

    /// Which side makes a move to this status.
    pub fn moved_by(self) -> Side {
        match self {
            ReferralStatus::Cancelled | ReferralStatus::Revoked => Side::Sender,
            _ => Side::Receiver,
        }
    }

    /// Whether the lifecycle allows moving from this status to `to`.
    pub fn can_move_to(self, to: ReferralStatus) -> bool {
        use ReferralStatus::*;
        matches!(
            (self, to),
            (Requested, Accepted | Declined | Cancelled | Revoked)
                | (Accepted, InProgress | Completed | Cancelled | Revoked)
                | (InProgress, Completed | Cancelled | Revoked)
        )
    }

    /// Checks that the lifecycle allows moving from this status to `to`.
    pub fn check_move_to(self, to: ReferralStatus) -> Result<(), MoveRefused> {
        if self.can_move_to(to) {
            Ok(())
        } else {
            Err(MoveRefused::Lifecycle { from: self, to })
        }
    }

    /// Checks that a caller acting for the sender (`sender`) and/or the receiver
    /// (`receiver`) of a referral may move it to this status.
    pub fn check_mover(self, sender: bool, receiver: bool) -> Result<(), MoveRefused> {
        let allowed = match self.moved_by() {
            Side::Sender => sender,
            Side::Receiver => receiver,
        };
        if allowed {
            Ok(())
        } else {
            Err(MoveRefused::OtherSide {
                to: self,
                side: self.moved_by(),
            })
        }
    }

    /// Whether a place held for the referral is released by moving to `to`.
    pub fn releases_place(self, to: ReferralStatus) -> bool {
        matches!(self, ReferralStatus::Accepted | ReferralStatus::InProgress)
            && matches!(
                to,
                ReferralStatus::Completed | ReferralStatus::Cancelled | ReferralStatus::Revoked
            )
    }
}

/// Why a referral cannot make a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveRefused {
    /// The lifecycle has no move from `from` to `to`.
    Lifecycle {
        /// Where the referral stands.
        from: ReferralStatus,
        /// Where it was asked to go.
        to: ReferralStatus,
    },
    /// Only `side` makes a referral `to`, and the caller does not act for it.
    OtherSide {
        /// Where the referral was asked to go.
        to: ReferralStatus,
        /// The side that makes that move.
        side: Side,
    },
}

impl std::fmt::Display for MoveRefused {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lifecycle { from, to } => write!(
                formatter,
                "a `{}` referral cannot become `{}`",
                from.as_str(),
                to.as_str()
            ),
            Self::OtherSide {
                to,
                side: Side::Sender,
            } => write!(
                formatter,
                "only the referring organisation can make a referral `{}`",
                to.as_str()
            ),
            Self::OtherSide {
                to,
                side: Side::Receiver,
            } => write!(
                formatter,
                "only the receiving organisation can make a referral `{}`",
                to.as_str()
            ),
        }
    }
}

impl std::error::Error for MoveRefused {}

impl From<MoveRefused> for HavenError {
    fn from(refused: MoveRefused) -> Self {
        let code = match refused {
            MoveRefused::Lifecycle { .. } => ErrorCode::Conflict,
            MoveRefused::OtherSide { .. } => ErrorCode::PermissionDenied,
        };
        HavenError::new(code, refused.to_string())
    }
}

/// How soon a referral needs an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Routine: three days.
    Routine,
    /// Urgent: a day.
    Urgent,
    /// Emergency: four hours.
    Emergency,
}

haven_storage::stored_enum!(Urgency, pb::Urgency,
    Routine => "routine" / Routine,
    Urgent => "urgent" / Urgent,
    Emergency => "emergency" / Emergency,
);

impl Urgency {
    /// The default time to answer.
    pub fn answer_within(self) -> time::Duration {
        match self {
            Urgency::Routine => time::Duration::hours(72),
            Urgency::Urgent => time::Duration::hours(24),
            Urgency::Emergency => time::Duration::hours(4),
        }
    }
}

/// A referral of a case to a facility.
#[derive(Debug, Clone, PartialEq)]
pub struct Referral {
    /// Id.
    pub id: Uuid,
    /// The case.
    pub case_id: Uuid,
    /// Its pseudonymous code.
    pub case_code: String,
    /// The screening (for consent and disclosure in intake).
    pub screening_id: Uuid,
    /// Sender.
    pub from_organization_id: Uuid,
    /// Receiver.
    pub to_organization_id: Uuid,
    /// Facility.
    pub facility_id: Uuid,
    /// Service type.
    pub service_type: String,
    /// Purpose.
    pub purpose: String,
    /// Urgency.
    pub urgency: Urgency,
    /// Who referred.
    pub requested_by: String,
    /// When.
    pub requested_at: OffsetDateTime,
    /// Answer due.
    pub accept_by: OffsetDateTime,
    /// Outcome due.
    pub outcome_due_on: time::Date,
    /// Status.
    pub status: ReferralStatus,
    /// Why declined, cancelled or revoked.
    pub status_reason: String,
    /// Outcome.
    pub outcome: String,
    /// A place is held.
    pub capacity_reserved: bool,
    /// Concurrency version.
    pub version: i64,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Position in creation order, for cursors.
    pub position: i64,
}

impl Referral {
    /// Waiting for an answer past its time.
    pub fn acceptance_overdue(&self, now: OffsetDateTime) -> bool {
        self.status == ReferralStatus::Requested && self.accept_by < now
    }

    /// Accepted or under way past the outcome's due date.
    pub fn outcome_overdue(&self, now: OffsetDateTime) -> bool {
        matches!(
            self.status,
            ReferralStatus::Accepted | ReferralStatus::InProgress
        ) && self.outcome_due_on < now.date()
    }

    /// The wire form.
    pub fn to_proto(&self, now: OffsetDateTime) -> pb::Referral {
        pb::Referral {
            id: self.id.to_string(),
            case_id: self.case_id.to_string(),
            case_code: self.case_code.clone(),
            from_organization_id: self.from_organization_id.to_string(),
            to_organization_id: self.to_organization_id.to_string(),
            facility_id: self.facility_id.to_string(),
            service_type: self.service_type.clone(),
            purpose: self.purpose.clone(),
            urgency: self.urgency.to_proto().into(),
            requested_by: self.requested_by.clone(),
            requested_at: Some(haven_proto::timestamp(self.requested_at)),
            accept_by: Some(haven_proto::timestamp(self.accept_by)),
            outcome_due_on: self.outcome_due_on.to_string(),
            status: self.status.to_proto().into(),
            status_reason: self.status_reason.clone(),
            outcome: self.outcome.clone(),
            capacity_reserved: self.capacity_reserved,
            acceptance_overdue: self.acceptance_overdue(now),
            outcome_overdue: self.outcome_overdue(now),
            version: u64::try_from(self.version).unwrap_or_default(),
            updated_at: Some(haven_proto::timestamp(self.updated_at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_referral_lifecycle_refuses_illegal_moves() {
        use ReferralStatus::*;
        assert!(Requested.can_move_to(Accepted));
        assert!(
            !Requested.can_move_to(Completed),
            "no completion before acceptance"
        );
        assert!(!Declined.can_move_to(Accepted), "a decline is final");
        assert!(!Completed.can_move_to(Cancelled));
        assert!(Accepted.releases_place(Completed));
        assert!(!Requested.releases_place(Cancelled), "nothing was held yet");
        assert_eq!(Cancelled.moved_by(), Side::Sender);
        assert_eq!(Accepted.moved_by(), Side::Receiver);
        for status in [
            Requested, Accepted, Declined, InProgress, Completed, Cancelled, Revoked,
        ] {
            assert_eq!(ReferralStatus::parse(status.as_str()), Some(status));
            assert!(!status.can_move_to(status), "{status:?}");
        }
    }

    #[test]
    fn moves_are_refused_with_the_reason_a_client_reads() {
        use ReferralStatus::*;
        assert_eq!(Requested.check_move_to(Accepted), Ok(()));
        let refused = Declined.check_move_to(Accepted).unwrap_err();
        assert_eq!(
            refused,
            MoveRefused::Lifecycle {
                from: Declined,
                to: Accepted
            }
        );
        let error = HavenError::from(refused);
        assert_eq!(error.code(), ErrorCode::Conflict);
        assert_eq!(
            refused.to_string(),
            "a `declined` referral cannot become `accepted`"
        );

        // The receiver answers, the sender withdraws; acting for both sides is enough.
        assert_eq!(Accepted.check_mover(false, true), Ok(()));
        assert_eq!(Cancelled.check_mover(true, false), Ok(()));
        assert_eq!(Completed.check_mover(true, true), Ok(()));
        let refused = Accepted.check_mover(true, false).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "only the receiving organisation can make a referral `accepted`"
        );
        assert_eq!(
            HavenError::from(refused).code(),
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            Revoked.check_mover(false, true).unwrap_err().to_string(),
            "only the referring organisation can make a referral `revoked`"
        );
    }

    #[test]
    fn free_places_follow_a_new_total_and_held_places_stay_held() {
        let facility = |capacity_total: u32, capacity_free: u32| Facility {
            id: Uuid::nil(),
            organization_id: Uuid::nil(),
            details: FacilityDetails {
                name: "Shelter".into(),
                address: String::new(),
                settlement: "Baku".into(),
                point: crate::geo::Point::new(40.4, 49.9).unwrap(),
                service_types: vec!["shelter".into()],
                capacity_total,
                accepts: Acceptance::default(),
                languages: Vec::new(),
                opening_hours: String::new(),
                contact_phone: String::new(),
                contact_email: String::new(),
                active: true,
            },
            capacity_free,
            version: 1,
            created_at: OffsetDateTime::UNIX_EPOCH,
            position: 1,
        };
        // Six of ten places held.
        assert_eq!(facility(10, 4).free_places_with_total(12), 6);
        assert_eq!(facility(10, 4).free_places_with_total(8), 2);
        assert_eq!(
            facility(10, 4).free_places_with_total(3),
            0,
            "held places are never taken back"
        );
        // Unlimited until now: nothing was held.
        assert_eq!(facility(0, 0).free_places_with_total(5), 5);
    }

    #[test]
    fn ages_fall_into_groups() {
        assert_eq!(age_group(13), "child");
        assert_eq!(age_group(17), "adolescent");
        assert_eq!(age_group(18), "adult");
        assert_eq!(age_group(60), "older");
    }
}
