//! The class of every field that a Haven gRPC response can carry: one line a field,
//! grouped by message. [`crate::redaction`] removes from each response the fields
//! whose class the caller's roles may not receive (`haven_auth::fields`), and a
//! field missing here is removed for every role but services: a new field is
//! withheld from auditors and analysts until someone classes it. A test fails while
//! any field reachable from a response is missing here, or a line names no field.
//!
//! A field holding a message is classed as a whole; when the caller may receive it,
//! the fields inside are filtered by their own lines.

use haven_auth::FieldClass::{self, Identifying, Narrative, Operational, QuasiIdentifier};

/// `(fully qualified field name, class)`.
pub const FIELD_CLASSES: &[(&str, FieldClass)] = &[
    // case.v1.AddAssessmentResponse
    (
        "haven.case.v1.AddAssessmentResponse.assessment",
        Operational,
    ),
    ("haven.case.v1.AddAssessmentResponse.replayed", Operational),
    // case.v1.AddNoteResponse
    ("haven.case.v1.AddNoteResponse.note", Operational),
    // case.v1.AddServiceResponse
    ("haven.case.v1.AddServiceResponse.service", Operational),
    ("haven.case.v1.AddServiceResponse.replayed", Operational),
    // case.v1.Assessment
    ("haven.case.v1.Assessment.id", Operational),
    ("haven.case.v1.Assessment.case_id", Operational),
    ("haven.case.v1.Assessment.kind", Operational),
    ("haven.case.v1.Assessment.scores", Operational),
    ("haven.case.v1.Assessment.assessed_at", Operational),
    ("haven.case.v1.Assessment.assessed_by", Operational),
    // case.v1.Case
    ("haven.case.v1.Case.id", Operational),
    ("haven.case.v1.Case.code", Operational),
    ("haven.case.v1.Case.organization_id", Operational),
    ("haven.case.v1.Case.screening_id", Operational),
    ("haven.case.v1.Case.status", Operational),
    ("haven.case.v1.Case.stage", Operational),
    ("haven.case.v1.Case.opened_at", Operational),
    ("haven.case.v1.Case.version", Operational),
    ("haven.case.v1.Case.sealed", Operational),
    ("haven.case.v1.Case.person_id", Operational),
    ("haven.case.v1.Case.risk_level", Operational),
    ("haven.case.v1.Case.flags", QuasiIdentifier),
    ("haven.case.v1.Case.caseworkers", Operational),
    ("haven.case.v1.Case.closure", Operational),
    ("haven.case.v1.Case.pending_transfer", Operational),
    // case.v1.ChangeStageResponse
    ("haven.case.v1.ChangeStageResponse.case", Operational),
    // case.v1.Closure
    ("haven.case.v1.Closure.reason", Operational),
    ("haven.case.v1.Closure.reason_text", Narrative),
    ("haven.case.v1.Closure.override_reason", Narrative),
    ("haven.case.v1.Closure.status", Operational),
    ("haven.case.v1.Closure.requested_by", Operational),
    ("haven.case.v1.Closure.requested_at", Operational),
    ("haven.case.v1.Closure.reviewed_by", Operational),
    ("haven.case.v1.Closure.reviewed_at", Operational),
    ("haven.case.v1.Closure.review_comment", Narrative),
    // case.v1.CurrencyTotal
    ("haven.case.v1.CurrencyTotal.currency", Operational),
    ("haven.case.v1.CurrencyTotal.amount", Operational),
    // case.v1.DecideTransferResponse
    ("haven.case.v1.DecideTransferResponse.transfer", Operational),
    // case.v1.DomainScore
    ("haven.case.v1.DomainScore.domain", Operational),
    ("haven.case.v1.DomainScore.score", QuasiIdentifier),
    // case.v1.FollowUp
    ("haven.case.v1.FollowUp.id", Operational),
    ("haven.case.v1.FollowUp.case_id", Operational),
    ("haven.case.v1.FollowUp.case_code", Operational),
    ("haven.case.v1.FollowUp.kind", Operational),
    ("haven.case.v1.FollowUp.due_on", Operational),
    ("haven.case.v1.FollowUp.assigned_to", Operational),
    ("haven.case.v1.FollowUp.outcome", Operational),
    ("haven.case.v1.FollowUp.done_at", Operational),
    ("haven.case.v1.FollowUp.overdue", Operational),
    ("haven.case.v1.FollowUp.version", Operational),
    // case.v1.GetCaseResponse
    ("haven.case.v1.GetCaseResponse.case", Operational),
    // case.v1.GetTimelineResponse
    ("haven.case.v1.GetTimelineResponse.entries", Operational),
    // case.v1.ListAssessmentsResponse
    (
        "haven.case.v1.ListAssessmentsResponse.assessments",
        Operational,
    ),
    // case.v1.ListCasesResponse
    ("haven.case.v1.ListCasesResponse.cases", Operational),
    ("haven.case.v1.ListCasesResponse.page", Operational),
    // case.v1.ListFollowUpsResponse
    (
        "haven.case.v1.ListFollowUpsResponse.follow_ups",
        Operational,
    ),
    ("haven.case.v1.ListFollowUpsResponse.page", Operational),
    // case.v1.ListNotesResponse
    ("haven.case.v1.ListNotesResponse.notes", Operational),
    // case.v1.ListPaymentsResponse
    ("haven.case.v1.ListPaymentsResponse.payments", Operational),
    ("haven.case.v1.ListPaymentsResponse.totals", Operational),
    // case.v1.ListPlansResponse
    ("haven.case.v1.ListPlansResponse.plans", Operational),
    // case.v1.ListServicesResponse
    ("haven.case.v1.ListServicesResponse.services", Operational),
    // case.v1.ListTransfersResponse
    ("haven.case.v1.ListTransfersResponse.transfers", Operational),
    // case.v1.Note
    ("haven.case.v1.Note.id", Operational),
    ("haven.case.v1.Note.case_id", Operational),
    ("haven.case.v1.Note.visibility", Operational),
    ("haven.case.v1.Note.body", Narrative),
    ("haven.case.v1.Note.written_by", Operational),
    ("haven.case.v1.Note.written_at", Operational),
    // case.v1.OpenCaseResponse
    ("haven.case.v1.OpenCaseResponse.case", Operational),
    ("haven.case.v1.OpenCaseResponse.created", Operational),
    // case.v1.Payment
    ("haven.case.v1.Payment.id", Operational),
    ("haven.case.v1.Payment.case_id", Operational),
    ("haven.case.v1.Payment.amount", Operational),
    ("haven.case.v1.Payment.currency", Operational),
    ("haven.case.v1.Payment.paid_on", Operational),
    ("haven.case.v1.Payment.purpose", Narrative),
    ("haven.case.v1.Payment.service_id", Operational),
    ("haven.case.v1.Payment.reverses_payment_id", Operational),
    ("haven.case.v1.Payment.recorded_at", Operational),
    ("haven.case.v1.Payment.recorded_by", Operational),
    // case.v1.Plan
    ("haven.case.v1.Plan.case_id", Operational),
    ("haven.case.v1.Plan.plan_version", Operational),
    ("haven.case.v1.Plan.goals", Operational),
    ("haven.case.v1.Plan.status", Operational),
    ("haven.case.v1.Plan.submitted_by", Operational),
    ("haven.case.v1.Plan.submitted_at", Operational),
    ("haven.case.v1.Plan.reviewed_by", Operational),
    ("haven.case.v1.Plan.reviewed_at", Operational),
    ("haven.case.v1.Plan.review_comment", Narrative),
    ("haven.case.v1.Plan.version", Operational),
    // case.v1.PlanAction
    ("haven.case.v1.PlanAction.id", Operational),
    ("haven.case.v1.PlanAction.description", Narrative),
    (
        "haven.case.v1.PlanAction.responsible_organization_id",
        Operational,
    ),
    ("haven.case.v1.PlanAction.due_on", Operational),
    ("haven.case.v1.PlanAction.status", Operational),
    // case.v1.PlanGoal
    ("haven.case.v1.PlanGoal.domain", Operational),
    ("haven.case.v1.PlanGoal.goal", Narrative),
    ("haven.case.v1.PlanGoal.actions", Operational),
    // case.v1.RecordFollowUpOutcomeResponse
    (
        "haven.case.v1.RecordFollowUpOutcomeResponse.follow_up",
        Operational,
    ),
    // case.v1.RecordPaymentResponse
    ("haven.case.v1.RecordPaymentResponse.payment", Operational),
    ("haven.case.v1.RecordPaymentResponse.replayed", Operational),
    // case.v1.ReopenCaseResponse
    ("haven.case.v1.ReopenCaseResponse.case", Operational),
    // case.v1.RequestClosureResponse
    ("haven.case.v1.RequestClosureResponse.case", Operational),
    // case.v1.RequestTransferResponse
    (
        "haven.case.v1.RequestTransferResponse.transfer",
        Operational,
    ),
    // case.v1.ReviewClosureResponse
    ("haven.case.v1.ReviewClosureResponse.case", Operational),
    // case.v1.ReviewPlanResponse
    ("haven.case.v1.ReviewPlanResponse.plan", Operational),
    // case.v1.ScheduleFollowUpResponse
    (
        "haven.case.v1.ScheduleFollowUpResponse.follow_up",
        Operational,
    ),
    (
        "haven.case.v1.ScheduleFollowUpResponse.replayed",
        Operational,
    ),
    // case.v1.SealCaseResponse
    ("haven.case.v1.SealCaseResponse.case", Operational),
    // case.v1.ServiceDelivery
    ("haven.case.v1.ServiceDelivery.id", Operational),
    ("haven.case.v1.ServiceDelivery.case_id", Operational),
    ("haven.case.v1.ServiceDelivery.type", Operational),
    (
        "haven.case.v1.ServiceDelivery.provider_organization_id",
        Operational,
    ),
    ("haven.case.v1.ServiceDelivery.planned_on", Operational),
    ("haven.case.v1.ServiceDelivery.started_on", Operational),
    ("haven.case.v1.ServiceDelivery.ended_on", Operational),
    ("haven.case.v1.ServiceDelivery.status", Operational),
    ("haven.case.v1.ServiceDelivery.version", Operational),
    ("haven.case.v1.ServiceDelivery.recorded_at", Operational),
    ("haven.case.v1.ServiceDelivery.recorded_by", Operational),
    // case.v1.SubmitPlanResponse
    ("haven.case.v1.SubmitPlanResponse.plan", Operational),
    // case.v1.TimelineEntry
    ("haven.case.v1.TimelineEntry.sequence", Operational),
    ("haven.case.v1.TimelineEntry.occurred_at", Operational),
    ("haven.case.v1.TimelineEntry.type", Operational),
    // Filtered per reader by the event field table (`haven_events::fields`).
    ("haven.case.v1.TimelineEntry.details_json", Operational),
    // case.v1.Transfer
    ("haven.case.v1.Transfer.id", Operational),
    ("haven.case.v1.Transfer.case_id", Operational),
    ("haven.case.v1.Transfer.case_code", Operational),
    ("haven.case.v1.Transfer.from_organization_id", Operational),
    ("haven.case.v1.Transfer.to_organization_id", Operational),
    ("haven.case.v1.Transfer.reason", Narrative),
    ("haven.case.v1.Transfer.status", Operational),
    ("haven.case.v1.Transfer.requested_by", Operational),
    ("haven.case.v1.Transfer.requested_at", Operational),
    ("haven.case.v1.Transfer.decided_by", Operational),
    ("haven.case.v1.Transfer.decided_at", Operational),
    ("haven.case.v1.Transfer.decision_comment", Narrative),
    // case.v1.UpdateCaseResponse
    ("haven.case.v1.UpdateCaseResponse.case", Operational),
    // case.v1.UpdatePlanActionResponse
    ("haven.case.v1.UpdatePlanActionResponse.plan", Operational),
    // case.v1.UpdateServiceResponse
    ("haven.case.v1.UpdateServiceResponse.service", Operational),
    // common.v1.Event
    ("haven.common.v1.Event.sequence", Operational),
    ("haven.common.v1.Event.event_id", Operational),
    ("haven.common.v1.Event.source", Operational),
    ("haven.common.v1.Event.event_type", Operational),
    ("haven.common.v1.Event.aggregate_id", Operational),
    ("haven.common.v1.Event.organization_id", Operational),
    ("haven.common.v1.Event.payload_json", Operational),
    ("haven.common.v1.Event.occurred_at", Operational),
    ("haven.common.v1.Event.traceparent", Operational),
    // common.v1.PageResponse
    ("haven.common.v1.PageResponse.next_cursor", Operational),
    // common.v1.WatchEventsResponse
    ("haven.common.v1.WatchEventsResponse.event", Operational),
    // intake.v1.AccessEntry
    ("haven.intake.v1.AccessEntry.sequence", Operational),
    ("haven.intake.v1.AccessEntry.occurred_at", Operational),
    ("haven.intake.v1.AccessEntry.actor", Operational),
    ("haven.intake.v1.AccessEntry.organization_id", Operational),
    ("haven.intake.v1.AccessEntry.action", Operational),
    ("haven.intake.v1.AccessEntry.purpose", Operational),
    ("haven.intake.v1.AccessEntry.request_id", Operational),
    // intake.v1.CompleteClockResponse
    ("haven.intake.v1.CompleteClockResponse.clock", Operational),
    // intake.v1.ConfirmMatchResponse
    (
        "haven.intake.v1.ConfirmMatchResponse.screening",
        Operational,
    ),
    // intake.v1.Consent
    ("haven.intake.v1.Consent.id", Operational),
    ("haven.intake.v1.Consent.purpose", Operational),
    ("haven.intake.v1.Consent.given", Operational),
    ("haven.intake.v1.Consent.method", Operational),
    ("haven.intake.v1.Consent.recorded_by", Operational),
    ("haven.intake.v1.Consent.recorded_at", Operational),
    ("haven.intake.v1.Consent.by_guardian", Operational),
    ("haven.intake.v1.Consent.organization_types", Operational),
    // intake.v1.Coordinates
    ("haven.intake.v1.Coordinates.latitude", Identifying),
    ("haven.intake.v1.Coordinates.longitude", Identifying),
    // intake.v1.CreateScreeningResponse
    (
        "haven.intake.v1.CreateScreeningResponse.screening",
        Operational,
    ),
    (
        "haven.intake.v1.CreateScreeningResponse.replayed",
        Operational,
    ),
    // intake.v1.Decision
    ("haven.intake.v1.Decision.id", Operational),
    ("haven.intake.v1.Decision.stage", Operational),
    (
        "haven.intake.v1.Decision.deciding_organization_type",
        Operational,
    ),
    (
        "haven.intake.v1.Decision.deciding_organization_id",
        Operational,
    ),
    ("haven.intake.v1.Decision.legal_basis", Narrative),
    ("haven.intake.v1.Decision.decided_at", Operational),
    ("haven.intake.v1.Decision.reasons", Narrative),
    ("haven.intake.v1.Decision.recorded_by", Operational),
    ("haven.intake.v1.Decision.recorded_at", Operational),
    // intake.v1.ErasePersonResponse
    ("haven.intake.v1.ErasePersonResponse.person", Operational),
    // intake.v1.ExploitationDetails
    ("haven.intake.v1.ExploitationDetails.types", QuasiIdentifier),
    (
        "haven.intake.v1.ExploitationDetails.local_categories",
        QuasiIdentifier,
    ),
    (
        "haven.intake.v1.ExploitationDetails.means_of_control",
        QuasiIdentifier,
    ),
    (
        "haven.intake.v1.ExploitationDetails.recruitment_method",
        QuasiIdentifier,
    ),
    (
        "haven.intake.v1.ExploitationDetails.relationship_to_recruiter",
        QuasiIdentifier,
    ),
    (
        "haven.intake.v1.ExploitationDetails.countries_of_origin",
        QuasiIdentifier,
    ),
    (
        "haven.intake.v1.ExploitationDetails.countries_of_transit",
        QuasiIdentifier,
    ),
    (
        "haven.intake.v1.ExploitationDetails.countries_of_exploitation",
        QuasiIdentifier,
    ),
    (
        "haven.intake.v1.ExploitationDetails.started",
        QuasiIdentifier,
    ),
    ("haven.intake.v1.ExploitationDetails.ended", QuasiIdentifier),
    // intake.v1.FindMatchesResponse
    ("haven.intake.v1.FindMatchesResponse.matches", Operational),
    // intake.v1.GetIndicatorSetResponse
    ("haven.intake.v1.GetIndicatorSetResponse.set", Operational),
    // intake.v1.GetPersonResponse
    ("haven.intake.v1.GetPersonResponse.person", Operational),
    // intake.v1.GetScreeningResponse
    (
        "haven.intake.v1.GetScreeningResponse.screening",
        Operational,
    ),
    // intake.v1.Guardian
    ("haven.intake.v1.Guardian.name", Identifying),
    ("haven.intake.v1.Guardian.relationship", QuasiIdentifier),
    ("haven.intake.v1.Guardian.contact", Identifying),
    // intake.v1.Indicator
    ("haven.intake.v1.Indicator.code", Operational),
    ("haven.intake.v1.Indicator.label", Operational),
    // intake.v1.IndicatorAssessment
    (
        "haven.intake.v1.IndicatorAssessment.indicator_set_version",
        Operational,
    ),
    ("haven.intake.v1.IndicatorAssessment.answers", Operational),
    // intake.v1.IndicatorGroup
    (
        "haven.intake.v1.IndicatorGroup.exploitation_type",
        Operational,
    ),
    ("haven.intake.v1.IndicatorGroup.indicators", Operational),
    // intake.v1.IndicatorResponse
    ("haven.intake.v1.IndicatorResponse.code", QuasiIdentifier),
    ("haven.intake.v1.IndicatorResponse.answer", QuasiIdentifier),
    ("haven.intake.v1.IndicatorResponse.note", Narrative),
    // intake.v1.IndicatorSet
    ("haven.intake.v1.IndicatorSet.version", Operational),
    ("haven.intake.v1.IndicatorSet.name", Operational),
    ("haven.intake.v1.IndicatorSet.groups", Operational),
    ("haven.intake.v1.IndicatorSet.published_at", Operational),
    ("haven.intake.v1.IndicatorSet.published_by", Operational),
    // intake.v1.ListClocksResponse
    ("haven.intake.v1.ListClocksResponse.clocks", Operational),
    ("haven.intake.v1.ListClocksResponse.page", Operational),
    // intake.v1.ListIndicatorSetsResponse
    (
        "haven.intake.v1.ListIndicatorSetsResponse.sets",
        Operational,
    ),
    // intake.v1.ListPersonAccessResponse
    (
        "haven.intake.v1.ListPersonAccessResponse.entries",
        Operational,
    ),
    ("haven.intake.v1.ListPersonAccessResponse.page", Operational),
    // intake.v1.ListScreeningsResponse
    (
        "haven.intake.v1.ListScreeningsResponse.screenings",
        Operational,
    ),
    ("haven.intake.v1.ListScreeningsResponse.page", Operational),
    // intake.v1.Person
    ("haven.intake.v1.Person.id", Operational),
    ("haven.intake.v1.Person.code", Operational),
    ("haven.intake.v1.Person.organization_id", Operational),
    ("haven.intake.v1.Person.details", Identifying),
    ("haven.intake.v1.Person.erased", Operational),
    ("haven.intake.v1.Person.created_at", Operational),
    // intake.v1.PersonDetails
    ("haven.intake.v1.PersonDetails.given_name", Identifying),
    ("haven.intake.v1.PersonDetails.family_name", Identifying),
    ("haven.intake.v1.PersonDetails.patronymic", Identifying),
    ("haven.intake.v1.PersonDetails.birth_date", Identifying),
    ("haven.intake.v1.PersonDetails.birth_year", QuasiIdentifier),
    ("haven.intake.v1.PersonDetails.gender", QuasiIdentifier),
    (
        "haven.intake.v1.PersonDetails.citizenships",
        QuasiIdentifier,
    ),
    ("haven.intake.v1.PersonDetails.languages", QuasiIdentifier),
    ("haven.intake.v1.PersonDetails.phone", Identifying),
    ("haven.intake.v1.PersonDetails.address", Identifying),
    (
        "haven.intake.v1.PersonDetails.identity_document_number",
        Identifying,
    ),
    // intake.v1.PersonMatch
    ("haven.intake.v1.PersonMatch.person_id", Operational),
    ("haven.intake.v1.PersonMatch.person_code", Operational),
    ("haven.intake.v1.PersonMatch.kind", Operational),
    ("haven.intake.v1.PersonMatch.screening_ids", Operational),
    ("haven.intake.v1.PersonMatch.organization_id", Operational),
    ("haven.intake.v1.PersonMatch.restricted", Operational),
    // intake.v1.PublishIndicatorSetResponse
    (
        "haven.intake.v1.PublishIndicatorSetResponse.set",
        Operational,
    ),
    (
        "haven.intake.v1.PublishIndicatorSetResponse.replayed",
        Operational,
    ),
    // intake.v1.RecordConsentResponse
    (
        "haven.intake.v1.RecordConsentResponse.screening",
        Operational,
    ),
    // intake.v1.RecordDecisionResponse
    (
        "haven.intake.v1.RecordDecisionResponse.screening",
        Operational,
    ),
    // intake.v1.RiskAssessment
    ("haven.intake.v1.RiskAssessment.level", Operational),
    ("haven.intake.v1.RiskAssessment.factors", QuasiIdentifier),
    (
        "haven.intake.v1.RiskAssessment.immediate_needs",
        QuasiIdentifier,
    ),
    // intake.v1.Screening
    ("haven.intake.v1.Screening.id", Operational),
    ("haven.intake.v1.Screening.organization_id", Operational),
    ("haven.intake.v1.Screening.screened_by", Operational),
    ("haven.intake.v1.Screening.referral_source", Operational),
    ("haven.intake.v1.Screening.screened_at", Operational),
    ("haven.intake.v1.Screening.settlement", QuasiIdentifier),
    ("haven.intake.v1.Screening.language", QuasiIdentifier),
    ("haven.intake.v1.Screening.interpreter_used", Operational),
    ("haven.intake.v1.Screening.is_minor", QuasiIdentifier),
    ("haven.intake.v1.Screening.stage", Operational),
    ("haven.intake.v1.Screening.case_id", Operational),
    ("haven.intake.v1.Screening.consents", Operational),
    ("haven.intake.v1.Screening.decisions", Operational),
    ("haven.intake.v1.Screening.created_at", Operational),
    ("haven.intake.v1.Screening.version", Operational),
    ("haven.intake.v1.Screening.person_id", Operational),
    ("haven.intake.v1.Screening.person_code", Operational),
    ("haven.intake.v1.Screening.indicators", QuasiIdentifier),
    ("haven.intake.v1.Screening.exploitation", QuasiIdentifier),
    ("haven.intake.v1.Screening.risk", Operational),
    ("haven.intake.v1.Screening.re_trafficked", Operational),
    ("haven.intake.v1.Screening.coordinates", Identifying),
    ("haven.intake.v1.Screening.guardian", Identifying),
    // intake.v1.ShareForReferralResponse
    (
        "haven.intake.v1.ShareForReferralResponse.fields",
        Operational,
    ),
    // intake.v1.SharedField
    ("haven.intake.v1.SharedField.name", Operational),
    ("haven.intake.v1.SharedField.value", Identifying),
    // intake.v1.StatutoryClock
    ("haven.intake.v1.StatutoryClock.id", Operational),
    ("haven.intake.v1.StatutoryClock.screening_id", Operational),
    (
        "haven.intake.v1.StatutoryClock.organization_id",
        Operational,
    ),
    ("haven.intake.v1.StatutoryClock.name", Operational),
    ("haven.intake.v1.StatutoryClock.description", Operational),
    ("haven.intake.v1.StatutoryClock.started_at", Operational),
    ("haven.intake.v1.StatutoryClock.due_at", Operational),
    ("haven.intake.v1.StatutoryClock.completed_at", Operational),
    ("haven.intake.v1.StatutoryClock.completed_by", Operational),
    ("haven.intake.v1.StatutoryClock.state", Operational),
    // intake.v1.UpdateScreeningResponse
    (
        "haven.intake.v1.UpdateScreeningResponse.screening",
        Operational,
    ),
    // referral.v1.Acceptance
    ("haven.referral.v1.Acceptance.genders", Operational),
    ("haven.referral.v1.Acceptance.age_groups", Operational),
    ("haven.referral.v1.Acceptance.minors", Operational),
    ("haven.referral.v1.Acceptance.families", Operational),
    // referral.v1.ChangeReferralStatusResponse
    (
        "haven.referral.v1.ChangeReferralStatusResponse.referral",
        Operational,
    ),
    // referral.v1.CreateFacilityResponse
    (
        "haven.referral.v1.CreateFacilityResponse.facility",
        Operational,
    ),
    (
        "haven.referral.v1.CreateFacilityResponse.replayed",
        Operational,
    ),
    // referral.v1.CreateOrganizationResponse
    (
        "haven.referral.v1.CreateOrganizationResponse.organization",
        Operational,
    ),
    (
        "haven.referral.v1.CreateOrganizationResponse.replayed",
        Operational,
    ),
    // referral.v1.CreateReferralResponse
    (
        "haven.referral.v1.CreateReferralResponse.referral",
        Operational,
    ),
    (
        "haven.referral.v1.CreateReferralResponse.replayed",
        Operational,
    ),
    // referral.v1.DisclosedField
    ("haven.referral.v1.DisclosedField.name", Operational),
    ("haven.referral.v1.DisclosedField.value", Identifying),
    // referral.v1.Facility
    ("haven.referral.v1.Facility.id", Operational),
    ("haven.referral.v1.Facility.organization_id", Operational),
    ("haven.referral.v1.Facility.name", Operational),
    ("haven.referral.v1.Facility.address", Operational),
    ("haven.referral.v1.Facility.settlement", Operational),
    ("haven.referral.v1.Facility.latitude", Operational),
    ("haven.referral.v1.Facility.longitude", Operational),
    ("haven.referral.v1.Facility.service_types", Operational),
    ("haven.referral.v1.Facility.capacity_total", Operational),
    ("haven.referral.v1.Facility.capacity_free", Operational),
    ("haven.referral.v1.Facility.accepts", Operational),
    ("haven.referral.v1.Facility.languages", Operational),
    ("haven.referral.v1.Facility.opening_hours", Operational),
    ("haven.referral.v1.Facility.contact_phone", Operational),
    ("haven.referral.v1.Facility.contact_email", Operational),
    ("haven.referral.v1.Facility.active", Operational),
    ("haven.referral.v1.Facility.version", Operational),
    ("haven.referral.v1.Facility.created_at", Operational),
    // referral.v1.FacilityMatch
    ("haven.referral.v1.FacilityMatch.facility", Operational),
    ("haven.referral.v1.FacilityMatch.distance_km", Operational),
    // referral.v1.GetCoverageResponse
    (
        "haven.referral.v1.GetCoverageResponse.radius_km",
        Operational,
    ),
    (
        "haven.referral.v1.GetCoverageResponse.settlements_total",
        Operational,
    ),
    (
        "haven.referral.v1.GetCoverageResponse.settlements_covered",
        Operational,
    ),
    (
        "haven.referral.v1.GetCoverageResponse.uncovered",
        Operational,
    ),
    // referral.v1.GetFacilityResponse
    (
        "haven.referral.v1.GetFacilityResponse.facility",
        Operational,
    ),
    // referral.v1.GetOrganizationResponse
    (
        "haven.referral.v1.GetOrganizationResponse.organization",
        Operational,
    ),
    // referral.v1.GetReferralDisclosureResponse
    (
        "haven.referral.v1.GetReferralDisclosureResponse.referral_id",
        Operational,
    ),
    (
        "haven.referral.v1.GetReferralDisclosureResponse.case_code",
        Operational,
    ),
    (
        "haven.referral.v1.GetReferralDisclosureResponse.fields",
        Operational,
    ),
    // referral.v1.GetReferralResponse
    (
        "haven.referral.v1.GetReferralResponse.referral",
        Operational,
    ),
    // referral.v1.ListFacilitiesResponse
    (
        "haven.referral.v1.ListFacilitiesResponse.facilities",
        Operational,
    ),
    ("haven.referral.v1.ListFacilitiesResponse.page", Operational),
    // referral.v1.ListOrganizationsResponse
    (
        "haven.referral.v1.ListOrganizationsResponse.organizations",
        Operational,
    ),
    (
        "haven.referral.v1.ListOrganizationsResponse.page",
        Operational,
    ),
    // referral.v1.ListReferralsResponse
    (
        "haven.referral.v1.ListReferralsResponse.referrals",
        Operational,
    ),
    ("haven.referral.v1.ListReferralsResponse.page", Operational),
    // referral.v1.ListSettlementsResponse
    (
        "haven.referral.v1.ListSettlementsResponse.settlements",
        Operational,
    ),
    // referral.v1.Organization
    ("haven.referral.v1.Organization.id", Operational),
    ("haven.referral.v1.Organization.name", Operational),
    (
        "haven.referral.v1.Organization.organization_type",
        Operational,
    ),
    ("haven.referral.v1.Organization.settlement", Operational),
    ("haven.referral.v1.Organization.active", Operational),
    ("haven.referral.v1.Organization.created_at", Operational),
    ("haven.referral.v1.Organization.version", Operational),
    // referral.v1.Referral
    ("haven.referral.v1.Referral.id", Operational),
    ("haven.referral.v1.Referral.case_id", Operational),
    ("haven.referral.v1.Referral.case_code", Operational),
    (
        "haven.referral.v1.Referral.from_organization_id",
        Operational,
    ),
    ("haven.referral.v1.Referral.to_organization_id", Operational),
    ("haven.referral.v1.Referral.facility_id", Operational),
    ("haven.referral.v1.Referral.service_type", Operational),
    ("haven.referral.v1.Referral.purpose", Narrative),
    ("haven.referral.v1.Referral.urgency", Operational),
    ("haven.referral.v1.Referral.requested_by", Operational),
    ("haven.referral.v1.Referral.requested_at", Operational),
    ("haven.referral.v1.Referral.accept_by", Operational),
    ("haven.referral.v1.Referral.outcome_due_on", Operational),
    ("haven.referral.v1.Referral.status", Operational),
    ("haven.referral.v1.Referral.status_reason", Narrative),
    ("haven.referral.v1.Referral.outcome", Narrative),
    ("haven.referral.v1.Referral.capacity_reserved", Operational),
    ("haven.referral.v1.Referral.acceptance_overdue", Operational),
    ("haven.referral.v1.Referral.outcome_overdue", Operational),
    ("haven.referral.v1.Referral.version", Operational),
    ("haven.referral.v1.Referral.updated_at", Operational),
    // referral.v1.SearchFacilitiesResponse
    (
        "haven.referral.v1.SearchFacilitiesResponse.matches",
        Operational,
    ),
    (
        "haven.referral.v1.SearchFacilitiesResponse.radius_km",
        Operational,
    ),
    // referral.v1.Settlement
    ("haven.referral.v1.Settlement.name", Operational),
    ("haven.referral.v1.Settlement.name_en", Operational),
    ("haven.referral.v1.Settlement.latitude", Operational),
    ("haven.referral.v1.Settlement.longitude", Operational),
    // referral.v1.UncoveredSettlement
    ("haven.referral.v1.UncoveredSettlement.name", Operational),
    (
        "haven.referral.v1.UncoveredSettlement.latitude",
        Operational,
    ),
    (
        "haven.referral.v1.UncoveredSettlement.longitude",
        Operational,
    ),
    (
        "haven.referral.v1.UncoveredSettlement.nearest_facility_id",
        Operational,
    ),
    (
        "haven.referral.v1.UncoveredSettlement.nearest_distance_km",
        Operational,
    ),
    // referral.v1.UpdateFacilityResponse
    (
        "haven.referral.v1.UpdateFacilityResponse.facility",
        Operational,
    ),
    // reporting.v1.BudgetUse
    ("haven.reporting.v1.BudgetUse.dataset", Operational),
    ("haven.reporting.v1.BudgetUse.budget", Operational),
    ("haven.reporting.v1.BudgetUse.spent", Operational),
    ("haven.reporting.v1.BudgetUse.remaining", Operational),
    // reporting.v1.GetPrivacyBudgetResponse
    (
        "haven.reporting.v1.GetPrivacyBudgetResponse.budget_per_dataset",
        Operational,
    ),
    (
        "haven.reporting.v1.GetPrivacyBudgetResponse.datasets",
        Operational,
    ),
    // reporting.v1.PrivateCell
    ("haven.reporting.v1.PrivateCell.label", Operational),
    ("haven.reporting.v1.PrivateCell.count", Operational),
    // reporting.v1.PrivateTable
    ("haven.reporting.v1.PrivateTable.name", Operational),
    ("haven.reporting.v1.PrivateTable.cells", Operational),
    // reporting.v1.ReleasePrivateCountsResponse
    (
        "haven.reporting.v1.ReleasePrivateCountsResponse.scope",
        Operational,
    ),
    (
        "haven.reporting.v1.ReleasePrivateCountsResponse.release_id",
        Operational,
    ),
    (
        "haven.reporting.v1.ReleasePrivateCountsResponse.epsilon",
        Operational,
    ),
    (
        "haven.reporting.v1.ReleasePrivateCountsResponse.noise_sd",
        Operational,
    ),
    (
        "haven.reporting.v1.ReleasePrivateCountsResponse.tables",
        Operational,
    ),
    (
        "haven.reporting.v1.ReleasePrivateCountsResponse.budgets",
        Operational,
    ),
    (
        "haven.reporting.v1.ReleasePrivateCountsResponse.released_at",
        Operational,
    ),
    // reporting.v1.Cell
    ("haven.reporting.v1.Cell.labels", Operational),
    ("haven.reporting.v1.Cell.value", Operational),
    ("haven.reporting.v1.Cell.suppressed", Operational),
    ("haven.reporting.v1.Cell.complementary", Operational),
    // reporting.v1.ExportCtdcPart
    ("haven.reporting.v1.ExportCtdcPart.summary", Operational),
    ("haven.reporting.v1.ExportCtdcPart.csv_chunk", Operational),
    // reporting.v1.ExportCtdcResponse
    ("haven.reporting.v1.ExportCtdcResponse.csv", Operational),
    ("haven.reporting.v1.ExportCtdcResponse.rows", Operational),
    (
        "haven.reporting.v1.ExportCtdcResponse.withheld",
        Operational,
    ),
    (
        "haven.reporting.v1.ExportCtdcResponse.without_consent",
        Operational,
    ),
    ("haven.reporting.v1.ExportCtdcResponse.k", Operational),
    ("haven.reporting.v1.ExportCtdcResponse.sha256", Operational),
    (
        "haven.reporting.v1.ExportCtdcResponse.release_id",
        Operational,
    ),
    // reporting.v1.GetIndicatorsResponse
    (
        "haven.reporting.v1.GetIndicatorsResponse.scope",
        Operational,
    ),
    (
        "haven.reporting.v1.GetIndicatorsResponse.tables",
        Operational,
    ),
    (
        "haven.reporting.v1.GetIndicatorsResponse.measures",
        Operational,
    ),
    (
        "haven.reporting.v1.GetIndicatorsResponse.threshold",
        Operational,
    ),
    (
        "haven.reporting.v1.GetIndicatorsResponse.generated_at",
        Operational,
    ),
    (
        "haven.reporting.v1.GetIndicatorsResponse.max_perturbation",
        Operational,
    ),
    // reporting.v1.GetSummaryResponse
    (
        "haven.reporting.v1.GetSummaryResponse.screenings_total",
        Operational,
    ),
    (
        "haven.reporting.v1.GetSummaryResponse.identified_total",
        Operational,
    ),
    (
        "haven.reporting.v1.GetSummaryResponse.cases_total",
        Operational,
    ),
    (
        "haven.reporting.v1.GetSummaryResponse.cases_open",
        Operational,
    ),
    (
        "haven.reporting.v1.GetSummaryResponse.organizations_total",
        Operational,
    ),
    (
        "haven.reporting.v1.GetSummaryResponse.re_trafficked_total",
        Operational,
    ),
    (
        "haven.reporting.v1.GetSummaryResponse.checkpoints",
        Operational,
    ),
    (
        "haven.reporting.v1.GetSummaryResponse.generated_at",
        Operational,
    ),
    // reporting.v1.GetSummaryResponse.CheckpointsEntry
    (
        "haven.reporting.v1.GetSummaryResponse.CheckpointsEntry.key",
        Operational,
    ),
    (
        "haven.reporting.v1.GetSummaryResponse.CheckpointsEntry.value",
        Operational,
    ),
    // reporting.v1.ListReleasesResponse
    (
        "haven.reporting.v1.ListReleasesResponse.releases",
        Operational,
    ),
    // reporting.v1.Measure
    ("haven.reporting.v1.Measure.name", Operational),
    ("haven.reporting.v1.Measure.value", Operational),
    ("haven.reporting.v1.Measure.base", Operational),
    ("haven.reporting.v1.Measure.suppressed", Operational),
    ("haven.reporting.v1.Measure.unit", Operational),
    // reporting.v1.Release
    ("haven.reporting.v1.Release.id", Operational),
    ("haven.reporting.v1.Release.kind", Operational),
    ("haven.reporting.v1.Release.parameters_json", Operational),
    ("haven.reporting.v1.Release.rows", Operational),
    ("haven.reporting.v1.Release.withheld", Operational),
    ("haven.reporting.v1.Release.sha256", Operational),
    ("haven.reporting.v1.Release.released_by", Operational),
    ("haven.reporting.v1.Release.organization_id", Operational),
    ("haven.reporting.v1.Release.released_at", Operational),
    ("haven.reporting.v1.Release.epsilon", Operational),
    // reporting.v1.Scope
    ("haven.reporting.v1.Scope.from", Operational),
    ("haven.reporting.v1.Scope.to", Operational),
    ("haven.reporting.v1.Scope.organization_id", Operational),
    ("haven.reporting.v1.Scope.region", Operational),
    // reporting.v1.Table
    ("haven.reporting.v1.Table.name", Operational),
    ("haven.reporting.v1.Table.dimensions", Operational),
    ("haven.reporting.v1.Table.cells", Operational),
    ("haven.reporting.v1.Table.total", Operational),
    ("haven.reporting.v1.Table.total_suppressed", Operational),
    ("haven.reporting.v1.Table.total_complementary", Operational),
];
