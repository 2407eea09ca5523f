//! Screening values, the rules about them, and their stored and wire forms.

use time::OffsetDateTime;
use uuid::Uuid;

use haven_error::{ErrorCode, HavenError};
use haven_proto::intake::v1 as pb;
use haven_proto::timestamp;

/// How the person came to the screening organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralSource {
    /// Hotline call.
    Hotline,
    /// Police.
    Police,
    /// Border guard or consulate.
    BorderOrConsular,
    /// Labour inspection.
    LabourInspection,
    /// NGO outreach.
    NgoOutreach,
    /// The person came by themselves.
    SelfReferral,
    /// An international organisation.
    InternationalOrganization,
    /// Anything else.
    Other,
}

haven_storage::stored_enum!(ReferralSource, pb::ReferralSource,
    Hotline => "hotline" / Hotline,
    Police => "police" / Police,
    BorderOrConsular => "border_or_consular" / BorderOrConsular,
    LabourInspection => "labour_inspection" / LabourInspection,
    NgoOutreach => "ngo_outreach" / NgoOutreach,
    SelfReferral => "self_referral" / SelfReferral,
    InternationalOrganization => "international_organization" / InternationalOrganization,
    Other => "other" / Other,
);

/// What a consent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentPurpose {
    /// Receiving assistance (a case).
    Assistance,
    /// Sharing data with other organisations (referrals).
    DataSharing,
    /// Inclusion in anonymised reporting and research.
    Reporting,
}

haven_storage::stored_enum!(ConsentPurpose, pb::ConsentPurpose,
    Assistance => "assistance" / Assistance,
    DataSharing => "data_sharing" / DataSharing,
    Reporting => "reporting" / Reporting,
);

/// How consent was given or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentMethod {
    /// Spoken.
    Verbal,
    /// Signed.
    Written,
}

haven_storage::stored_enum!(ConsentMethod, pb::ConsentMethod,
    Verbal => "verbal" / Verbal,
    Written => "written" / Written,
);

/// Stage of the identification procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentificationStage {
    /// Screened, nothing decided yet.
    Screened,
    /// Presumed victim.
    PresumedVictim,
    /// Reasonable grounds: positive.
    ReasonableGroundsPositive,
    /// Reasonable grounds: negative.
    ReasonableGroundsNegative,
    /// Identified as a victim of trafficking.
    Identified,
    /// Found not to be a victim.
    NotAVictim,
}

haven_storage::stored_enum!(IdentificationStage, pb::IdentificationStage,
    Screened => "screened" / Screened,
    PresumedVictim => "presumed_victim" / PresumedVictim,
    ReasonableGroundsPositive => "reasonable_grounds_positive" / ReasonableGroundsPositive,
    ReasonableGroundsNegative => "reasonable_grounds_negative" / ReasonableGroundsNegative,
    Identified => "identified" / Identified,
    NotAVictim => "not_a_victim" / NotAVictim,
);

/// Kind of organisation that took a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidingOrganizationType {
    /// Police.
    Police,
    /// NGO.
    Ngo,
    /// Prosecutor or court.
    ProsecutorOrCourt,
    /// Other government body.
    OtherGovernment,
}

haven_storage::stored_enum!(DecidingOrganizationType, pb::DecidingOrganizationType,
    Police => "police" / Police,
    Ngo => "ngo" / Ngo,
    ProsecutorOrCourt => "prosecutor_or_court" / ProsecutorOrCourt,
    OtherGovernment => "other_government" / OtherGovernment,
);

/// A recorded consent (or refusal, or withdrawal).
#[derive(Debug, Clone, PartialEq)]
pub struct Consent {
    /// Id.
    pub id: Uuid,
    /// Purpose.
    pub purpose: ConsentPurpose,
    /// Given (true) or refused/withdrawn (false).
    pub given: bool,
    /// How.
    pub method: ConsentMethod,
    /// Who recorded it.
    pub recorded_by: String,
    /// When.
    pub recorded_at: OffsetDateTime,
    /// Given or refused by a minor's guardian.
    pub by_guardian: bool,
    /// Data sharing only: the kinds of organisation it covers (empty = any).
    pub organization_types: Vec<String>,
}

/// The guardian or legal representative of a minor. Personal data: stored encrypted.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Guardian {
    /// Name.
    pub name: String,
    /// Relationship code, e.g. `parent`.
    pub relationship: String,
    /// Contact.
    pub contact: String,
}

// Personal data must never reach a log line through `{:?}`.
impl std::fmt::Debug for Guardian {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Guardian([redacted])")
    }
}

/// A recorded identification decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Id.
    pub id: Uuid,
    /// Stage decided.
    pub stage: IdentificationStage,
    /// Kind of deciding organisation.
    pub deciding_organization_type: DecidingOrganizationType,
    /// Legal basis cited.
    pub legal_basis: String,
    /// When it was decided.
    pub decided_at: OffsetDateTime,
    /// Reasons given.
    pub reasons: String,
    /// Who recorded it.
    pub recorded_by: String,
    /// When it was recorded.
    pub recorded_at: OffsetDateTime,
    /// The deciding organisation, when it is in the directory.
    pub deciding_organization_id: Option<Uuid>,
}

/// A screening with its consent and decision histories, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Screening {
    /// Id.
    pub id: Uuid,
    /// Screening organisation.
    pub organization_id: Uuid,
    /// Officer who screened.
    pub screened_by: String,
    /// How the person came.
    pub referral_source: ReferralSource,
    /// When.
    pub screened_at: OffsetDateTime,
    /// Settlement where it happened.
    pub settlement: String,
    /// ISO 639 language of the screening.
    pub language: String,
    /// Whether an interpreter was used.
    pub interpreter_used: bool,
    /// Whether the person is a minor.
    pub is_minor: bool,
    /// Current identification stage: that of the latest decision.
    pub stage: IdentificationStage,
    /// The case opened for this screening.
    pub case_id: Option<Uuid>,
    /// Consent history.
    pub consents: Vec<Consent>,
    /// Decision history.
    pub decisions: Vec<Decision>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Incremented on every change.
    pub version: i64,
    /// Position in creation order, for cursors.
    pub position: i64,
    /// The screened person, if details were recorded.
    pub person_id: Option<Uuid>,
    /// The person's pseudonymous code.
    pub person_code: Option<String>,
    /// Indicator answers, exploitation details, risk.
    pub assessment: crate::assessment::AssessmentParts,
    /// Confirmed as a person trafficked again.
    pub re_trafficked: bool,
    /// Where the screening took place (latitude, longitude).
    pub coordinates: Option<(f64, f64)>,
    /// A minor's guardian; `None` also once shredded with the person.
    pub guardian: Option<Guardian>,
}

impl Screening {
    /// The latest answer for a purpose, if any: consent is checked at the time of
    /// use against the newest record, so a withdrawal wins over an older consent.
    pub fn consent_for(&self, purpose: ConsentPurpose) -> Option<bool> {
        self.consents
            .iter()
            .rev()
            .find(|consent| consent.purpose == purpose)
            .map(|consent| consent.given)
    }

    /// Whether intake must open a case: identified (or, when the deployment allows it,
    /// presumed), consenting to assistance, and no case yet.
    pub fn needs_case(&self, when_presumed: bool) -> bool {
        let stage_qualifies = match self.stage {
            IdentificationStage::Identified => true,
            IdentificationStage::PresumedVictim
            | IdentificationStage::ReasonableGroundsPositive => when_presumed,
            _ => false,
        };
        self.case_id.is_none()
            && stage_qualifies
            && self.consent_for(ConsentPurpose::Assistance) == Some(true)
    }

    /// The person whose duplicates a search looks for: the screening's own, which it
    /// must have recorded.
    pub fn person_to_compare(&self) -> Result<Uuid, MatchRefusal> {
        self.person_id.ok_or(MatchRefusal::NothingToCompare)
    }

    /// The screening's person, to be linked to the person `other` as the same one
    /// trafficked again: the screening must have recorded a person, and another one.
    pub fn person_to_link(&self, other: Uuid) -> Result<Uuid, MatchRefusal> {
        let person_id = self.person_id.ok_or(MatchRefusal::NothingToLink)?;
        if person_id == other {
            return Err(MatchRefusal::OwnPerson);
        }
        Ok(person_id)
    }

    /// The wire form.
    pub fn to_proto(&self) -> pb::Screening {
        pb::Screening {
            id: self.id.to_string(),
            organization_id: self.organization_id.to_string(),
            screened_by: self.screened_by.clone(),
            referral_source: self.referral_source.to_proto().into(),
            screened_at: Some(timestamp(self.screened_at)),
            settlement: self.settlement.clone(),
            language: self.language.clone(),
            interpreter_used: self.interpreter_used,
            is_minor: self.is_minor,
            stage: self.stage.to_proto().into(),
            case_id: self.case_id.map(|id| id.to_string()).unwrap_or_default(),
            consents: self
                .consents
                .iter()
                .map(|consent| pb::Consent {
                    id: consent.id.to_string(),
                    purpose: consent.purpose.to_proto().into(),
                    given: consent.given,
                    method: consent.method.to_proto().into(),
                    recorded_by: consent.recorded_by.clone(),
                    recorded_at: Some(timestamp(consent.recorded_at)),
                    by_guardian: consent.by_guardian,
                    organization_types: consent.organization_types.clone(),
                })
                .collect(),
            decisions: self
                .decisions
                .iter()
                .map(|decision| pb::Decision {
                    id: decision.id.to_string(),
                    stage: decision.stage.to_proto().into(),
                    deciding_organization_type: decision
                        .deciding_organization_type
                        .to_proto()
                        .into(),
                    legal_basis: decision.legal_basis.clone(),
                    decided_at: Some(timestamp(decision.decided_at)),
                    reasons: decision.reasons.clone(),
                    recorded_by: decision.recorded_by.clone(),
                    recorded_at: Some(timestamp(decision.recorded_at)),
                    deciding_organization_id: decision
                        .deciding_organization_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                })
                .collect(),
            created_at: Some(timestamp(self.created_at)),
            version: u64::try_from(self.version).unwrap_or_default(),
            person_id: self.person_id.map(|id| id.to_string()).unwrap_or_default(),
            person_code: self.person_code.clone().unwrap_or_default(),
            indicators: self
                .assessment
                .indicators
                .as_ref()
                .map(|answers| answers.to_proto()),
            exploitation: self
                .assessment
                .exploitation
                .as_ref()
                .map(|details| details.to_proto()),
            risk: self.assessment.risk.as_ref().map(|risk| risk.to_proto()),
            re_trafficked: self.re_trafficked,
            coordinates: self
                .coordinates
                .map(|(latitude, longitude)| pb::Coordinates {
                    latitude,
                    longitude,
                }),
            guardian: self.guardian.as_ref().map(|guardian| pb::Guardian {
                name: guardian.name.clone(),
                relationship: guardian.relationship.clone(),
                contact: guardian.contact.clone(),
            }),
        }
    }
}

/// Why a screening's person cannot be compared with others or linked to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MatchRefusal {
    /// The screening recorded no person to search duplicates of.
    #[error("this screening has no person details to compare")]
    NothingToCompare,
    /// The screening recorded no person to link.
    #[error("this screening has no person details to link")]
    NothingToLink,
    /// The person to link is the screening's own.
    #[error("is the screening's own person")]
    OwnPerson,
}

impl From<MatchRefusal> for HavenError {
    fn from(refusal: MatchRefusal) -> Self {
        match refusal {
            MatchRefusal::NothingToCompare | MatchRefusal::NothingToLink => {
                HavenError::new(ErrorCode::Conflict, refusal.to_string())
            }
            MatchRefusal::OwnPerson => HavenError::invalid_field("person_id", refusal.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screening(person_id: Option<Uuid>) -> Screening {
        Screening {
            id: Uuid::now_v7(),
            organization_id: Uuid::now_v7(),
            screened_by: "officer-1".into(),
            referral_source: ReferralSource::Hotline,
            screened_at: OffsetDateTime::UNIX_EPOCH,
            settlement: "Chișinău".into(),
            language: "ro".into(),
            interpreter_used: false,
            is_minor: false,
            stage: IdentificationStage::Screened,
            case_id: None,
            consents: Vec::new(),
            decisions: Vec::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            version: 1,
            position: 1,
            person_id,
            person_code: None,
            assessment: crate::assessment::AssessmentParts::default(),
            re_trafficked: false,
            coordinates: None,
            guardian: None,
        }
    }

    #[test]
    fn only_a_screening_with_a_person_is_compared() {
        let person = Uuid::now_v7();
        assert_eq!(screening(Some(person)).person_to_compare(), Ok(person));
        let refused = screening(None).person_to_compare().unwrap_err();
        assert_eq!(refused, MatchRefusal::NothingToCompare);
        let error = HavenError::from(refused);
        assert_eq!(error.code(), ErrorCode::Conflict);
        assert_eq!(
            error.message(),
            "this screening has no person details to compare"
        );
    }

    #[test]
    fn a_person_is_linked_only_to_another_person() {
        let (person, other) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(screening(Some(person)).person_to_link(other), Ok(person));

        let without_person = screening(None).person_to_link(other).unwrap_err();
        assert_eq!(without_person, MatchRefusal::NothingToLink);
        let error = HavenError::from(without_person);
        assert_eq!(error.code(), ErrorCode::Conflict);
        assert_eq!(
            error.message(),
            "this screening has no person details to link"
        );

        let own = screening(Some(person)).person_to_link(person).unwrap_err();
        assert_eq!(own, MatchRefusal::OwnPerson);
        let error = HavenError::from(own);
        assert_eq!(error.code(), ErrorCode::InvalidArgument);
        assert_eq!(error.violations()[0].field, "person_id");
        assert_eq!(
            error.violations()[0].description,
            "is the screening's own person"
        );
    }
}
