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

api_enum! {
    /// Kind of organisation in the directory.
    OrganizationType => referral::OrganizationType {
        Government,
        Ngo,
        InternationalOrganization,
        Private,
        Other,
    }
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
