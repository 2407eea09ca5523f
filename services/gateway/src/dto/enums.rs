//! REST spellings of the proto enums: the proto name without its prefix, lowercased
//! (`REFERRAL_SOURCE_HOTLINE` → `hotline`).
//!
//! Each REST enum lists the same variants as its proto enum, so the OpenAPI document
//! shows every allowed value and serde rejects anything else with the field's path.
//! The conversions are exhaustive matches: a variant added to a proto enum does not
//! compile until it is added here too.

use haven_proto::case::v1 as case;
use haven_proto::intake::v1 as intake;
use haven_proto::referral::v1 as referral;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! api_enum {
    (
        $(#[$meta:meta])*
        $name:ident => $module:ident :: $proto:ident { $($variant:ident),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub(crate) enum $name {
            $(
                #[allow(missing_docs)]
                $variant,
            )+
        }

        impl From<$name> for $module::$proto {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => $module::$proto::$variant,)+
                }
            }
        }

        impl $name {
            /// Every value, in proto order.
            #[cfg(test)]
            pub(crate) const ALL: &[Self] = &[$(Self::$variant),+];

            /// Reads the wire value of the proto enum; `None` when it is unspecified or
            /// unknown to this build.
            #[allow(dead_code, reason = "input-only enums are never received")]
            pub(crate) fn from_proto(value: i32) -> Option<Self> {
                match $module::$proto::try_from(value).ok()? {
                    $module::$proto::Unspecified => None,
                    $($module::$proto::$variant => Some(Self::$variant),)+
                }
            }

            /// The wire value for a proto message.
            #[allow(dead_code, reason = "output-only enums are never sent")]
            pub(crate) fn to_proto(self) -> i32 {
                $module::$proto::from(self) as i32
            }
        }
    };
}

api_enum! {
    /// How the person came to the screening organisation.
    ReferralSource => intake::ReferralSource {
        Hotline,
        Police,
        BorderOrConsular,
        LabourInspection,
        NgoOutreach,
        SelfReferral,
        InternationalOrganization,
        Other,
    }
}

api_enum! {
    /// What a consent covers.
    ConsentPurpose => intake::ConsentPurpose { Assistance, DataSharing, Reporting }
}

api_enum! {
    /// How a consent was given.
    ConsentMethod => intake::ConsentMethod { Verbal, Written }
}

api_enum! {
    /// Stage of the identification procedure.
    IdentificationStage => intake::IdentificationStage {
        Screened,
        PresumedVictim,
        ReasonableGroundsPositive,
        ReasonableGroundsNegative,
        Identified,
        NotAVictim,
    }
}

api_enum! {
    /// Kind of organisation that took an identification decision.
    DecidingOrganizationType => intake::DecidingOrganizationType {
        Police,
        Ngo,
        ProsecutorOrCourt,
        OtherGovernment,
    }
}

api_enum! {
    /// Lifecycle status of a case.
    CaseStatus => case::CaseStatus { Active, FollowUp, Closed, ClosedReferred }
}

api_enum! {
    /// Workflow stage of a case.
    CaseStage => case::CaseStage { New, Assessment, Plan, Services, Monitoring, Closed }
}

/// Kind of organisation in the directory: the proto enum itself, spelled for REST by
/// `haven-proto`'s `rest` feature.
pub(crate) use referral::OrganizationType;

api_enum! {
    /// Where a referral stands: `requested` → `accepted` or `declined`; `accepted` →
    /// `in_progress` → `completed`; `cancelled` or `revoked` by the sender before it
    /// ends.
    ReferralStatus => referral::ReferralStatus {
        Requested,
        Accepted,
        Declined,
        InProgress,
        Completed,
        Cancelled,
        Revoked,
    }
}

api_enum! {
    /// How soon the receiving organisation is to answer a referral.
    Urgency => referral::Urgency { Routine, Urgent, Emergency }
}

api_enum! {
    /// Referrals sent by the caller's organisation (`outgoing`) or to it (`incoming`).
    ReferralDirection => referral::ReferralDirection { Outgoing, Incoming }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The REST name must be the proto name without its prefix, lowercased.
    fn assert_spelling<T>(values: &[T], proto_name: impl Fn(T) -> &'static str, prefix: &str)
    where
        T: Copy + Serialize + std::fmt::Debug,
    {
        for value in values {
            let rest = serde_json::to_value(value).unwrap();
            let proto = proto_name(*value);
            let expected = proto.strip_prefix(prefix).unwrap().to_lowercase();
            assert_eq!(rest, serde_json::json!(expected), "{value:?}");
        }
    }

    #[test]
    #[allow(
        clippy::useless_conversion,
        reason = "some of these enums are the proto enums themselves"
    )]
    fn rest_names_are_proto_names_without_prefix_lowercased() {
        assert_spelling(
            ReferralSource::ALL,
            |v| intake::ReferralSource::from(v).as_str_name(),
            "REFERRAL_SOURCE_",
        );
        assert_spelling(
            ConsentPurpose::ALL,
            |v| intake::ConsentPurpose::from(v).as_str_name(),
            "CONSENT_PURPOSE_",
        );
        assert_spelling(
            ConsentMethod::ALL,
            |v| intake::ConsentMethod::from(v).as_str_name(),
            "CONSENT_METHOD_",
        );
        assert_spelling(
            IdentificationStage::ALL,
            |v| intake::IdentificationStage::from(v).as_str_name(),
            "IDENTIFICATION_STAGE_",
        );
        assert_spelling(
            DecidingOrganizationType::ALL,
            |v| intake::DecidingOrganizationType::from(v).as_str_name(),
            "DECIDING_ORGANIZATION_TYPE_",
        );
        assert_spelling(
            CaseStatus::ALL,
            |v| case::CaseStatus::from(v).as_str_name(),
            "CASE_STATUS_",
        );
        assert_spelling(
            CaseStage::ALL,
            |v| case::CaseStage::from(v).as_str_name(),
            "CASE_STAGE_",
        );
        assert_spelling(
            OrganizationType::ALL,
            |v| referral::OrganizationType::from(v).as_str_name(),
            "ORGANIZATION_TYPE_",
        );
        assert_spelling(
            ReferralStatus::ALL,
            |v| referral::ReferralStatus::from(v).as_str_name(),
            "REFERRAL_STATUS_",
        );
        assert_spelling(
            Urgency::ALL,
            |v| referral::Urgency::from(v).as_str_name(),
            "URGENCY_",
        );
        assert_spelling(
            ReferralDirection::ALL,
            |v| referral::ReferralDirection::from(v).as_str_name(),
            "REFERRAL_DIRECTION_",
        );
        assert_spelling(
            Gender::ALL,
            |v| intake::Gender::from(v).as_str_name(),
            "GENDER_",
        );
        assert_spelling(
            MatchKind::ALL,
            |v| intake::MatchKind::from(v).as_str_name(),
            "MATCH_KIND_",
        );
        assert_spelling(
            IndicatorAnswer::ALL,
            |v| intake::IndicatorAnswer::from(v).as_str_name(),
            "INDICATOR_ANSWER_",
        );
        assert_spelling(
            ExploitationType::ALL,
            |v| intake::ExploitationType::from(v).as_str_name(),
            "EXPLOITATION_TYPE_",
        );
        assert_spelling(
            RiskLevel::ALL,
            |v| intake::RiskLevel::from(v).as_str_name(),
            "RISK_LEVEL_",
        );
        assert_spelling(
            ImmediateNeed::ALL,
            |v| intake::ImmediateNeed::from(v).as_str_name(),
            "IMMEDIATE_NEED_",
        );
        assert_spelling(
            ClockState::ALL,
            |v| intake::ClockState::from(v).as_str_name(),
            "CLOCK_STATE_",
        );
        assert_spelling(
            AssessmentKind::ALL,
            |v| case::AssessmentKind::from(v).as_str_name(),
            "ASSESSMENT_KIND_",
        );
        assert_spelling(
            NeedDomain::ALL,
            |v| case::NeedDomain::from(v).as_str_name(),
            "NEED_DOMAIN_",
        );
        assert_spelling(
            RiskLevel::ALL,
            |v| case::RiskLevel::from(v).as_str_name(),
            "RISK_LEVEL_",
        );
        assert_spelling(
            ApprovalStatus::ALL,
            |v| case::ApprovalStatus::from(v).as_str_name(),
            "APPROVAL_STATUS_",
        );
        assert_spelling(
            ClosureReason::ALL,
            |v| case::ClosureReason::from(v).as_str_name(),
            "CLOSURE_REASON_",
        );
        assert_spelling(
            ActionStatus::ALL,
            |v| case::ActionStatus::from(v).as_str_name(),
            "ACTION_STATUS_",
        );
        assert_spelling(
            ServiceType::ALL,
            |v| case::ServiceType::from(v).as_str_name(),
            "SERVICE_TYPE_",
        );
        assert_spelling(
            ServiceStatus::ALL,
            |v| case::ServiceStatus::from(v).as_str_name(),
            "SERVICE_STATUS_",
        );
        assert_spelling(
            FollowUpKind::ALL,
            |v| case::FollowUpKind::from(v).as_str_name(),
            "FOLLOW_UP_KIND_",
        );
        assert_spelling(
            FollowUpOutcome::ALL,
            |v| case::FollowUpOutcome::from(v).as_str_name(),
            "FOLLOW_UP_OUTCOME_",
        );
        assert_spelling(
            NoteVisibility::ALL,
            |v| case::NoteVisibility::from(v).as_str_name(),
            "NOTE_VISIBILITY_",
        );
    }

    #[test]
    fn wire_values_round_trip_and_unspecified_is_absent() {
        for value in IdentificationStage::ALL {
            assert_eq!(
                IdentificationStage::from_proto(value.to_proto()),
                Some(*value)
            );
        }
        assert_eq!(ReferralSource::from_proto(0), None);
        for value in RiskLevel::ALL {
            assert_eq!(
                RiskLevel::from_case_proto(value.to_case_proto()),
                Some(*value)
            );
        }
        assert_eq!(RiskLevel::from_case_proto(0), None);
        assert_eq!(ReferralSource::from_proto(9999), None);
    }
}

api_enum! {
    /// Gender (HTCDS list).
    Gender => intake::Gender { Female, Male, TransgenderOrOther, Unknown }
}

api_enum! {
    /// How a duplicate candidate matched.
    MatchKind => intake::MatchKind { FullName, NamePart }
}

api_enum! {
    /// Answer to one trafficking indicator.
    IndicatorAnswer => intake::IndicatorAnswer { Yes, No, Unknown }
}

api_enum! {
    /// HTCDS exploitation type.
    ExploitationType => intake::ExploitationType {
        ForcedLabour,
        SexualExploitation,
        ChildLabour,
        ForcedMarriage,
        Servitude,
        ForcedBegging,
        OrganRemoval,
        ForcedCriminality,
        Slavery,
        Other,
    }
}

api_enum! {
    /// Risk level.
    RiskLevel => intake::RiskLevel { Low, Medium, High }
}

api_enum! {
    /// Immediate need found at screening.
    ImmediateNeed => intake::ImmediateNeed { Shelter, Medical, Safety, Interpreter, Legal, FoodAndClothing }
}

api_enum! {
    /// Where a statutory clock stands.
    ClockState => intake::ClockState { Open, DueSoon, Overdue, Completed }
}

api_enum! {
    /// Kind of needs assessment.
    AssessmentKind => case::AssessmentKind { Individual, Household, Community }
}

api_enum! {
    /// A domain of needs.
    NeedDomain => case::NeedDomain {
        Safety,
        Health,
        MentalHealth,
        Legal,
        Housing,
        Education,
        Livelihood,
        FamilyAndCommunity,
    }
}

impl From<RiskLevel> for case::RiskLevel {
    fn from(value: RiskLevel) -> Self {
        match value {
            RiskLevel::Low => case::RiskLevel::Low,
            RiskLevel::Medium => case::RiskLevel::Medium,
            RiskLevel::High => case::RiskLevel::High,
        }
    }
}

/// A case's risk level uses the same REST values as a screening's; only the proto
/// enums differ.
impl RiskLevel {
    /// Reads the wire value of the case service's enum; `None` when it is unspecified
    /// or unknown to this build.
    pub(crate) fn from_case_proto(value: i32) -> Option<Self> {
        match case::RiskLevel::try_from(value).ok()? {
            case::RiskLevel::Unspecified => None,
            case::RiskLevel::Low => Some(Self::Low),
            case::RiskLevel::Medium => Some(Self::Medium),
            case::RiskLevel::High => Some(Self::High),
        }
    }

    /// The wire value for a case service message.
    pub(crate) fn to_case_proto(self) -> i32 {
        case::RiskLevel::from(self) as i32
    }
}

api_enum! {
    /// Where a request for approval (a plan version, a closure, a transfer) stands. A
    /// transfer is `approved` once accepted.
    ApprovalStatus => case::ApprovalStatus { Requested, Approved, Rejected, Superseded }
}

api_enum! {
    /// Why a case is closed.
    ClosureReason => case::ClosureReason {
        GoalsAchieved,
        OwnDecision,
        MovedAway,
        LostContact,
        Deceased,
        Transferred,
        ReferredElsewhere,
        Other,
    }
}

api_enum! {
    /// Status of an action of a reintegration plan.
    ActionStatus => case::ActionStatus { Planned, InProgress, Done, Cancelled }
}

api_enum! {
    /// Kind of service delivered for a case.
    ServiceType => case::ServiceType {
        Shelter,
        Medical,
        Psychological,
        LegalAid,
        Interpretation,
        VocationalTraining,
        Education,
        EmploymentSupport,
        CashAssistance,
        FamilyTracing,
        Documentation,
        VoluntaryReturn,
        Other,
    }
}

api_enum! {
    /// Status of a service.
    ServiceStatus => case::ServiceStatus { Planned, InProgress, Delivered, Cancelled }
}

api_enum! {
    /// Kind of follow-up.
    FollowUpKind => case::FollowUpKind { Visit, Call, OfficeMeeting }
}

api_enum! {
    /// What came of a follow-up.
    FollowUpOutcome => case::FollowUpOutcome { Completed, NotReached, Declined, Cancelled }
}

/// Who may read a note: the proto enum itself, spelled for REST by `haven-proto`'s
/// `rest` feature.
pub(crate) use case::NoteVisibility;
