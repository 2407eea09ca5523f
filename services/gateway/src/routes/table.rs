//! The route table itself: each REST route once, with the action the caller's roles
//! must allow and what makes a retry of it safe.
//!
//! A `/v1` route missing here is not routed, and a handler asking for the caller of
//! an unlisted route is refused (deny by default). The authorization-matrix test
//! walks [`ROUTES`] in this order.

use haven_auth::Action;
use utoipa_axum::routes;

use super::Idempotency::{Keyed, KeyedDocumentedByOperation, NotKeyed};
use super::{
    Handler, Idempotency, PublicRoute, Route, cases, clocks, deliveries, facilities, follow_ups,
    health, notes, organizations, paths, persons, plans, referrals, reports, screenings, transfers,
};

const fn get(path: &'static str, action: Action, handler: Handler) -> Route {
    route("GET", path, action, Idempotency::Read, handler)
}

const fn post(
    path: &'static str,
    action: Action,
    idempotency: Idempotency,
    handler: Handler,
) -> Route {
    route("POST", path, action, idempotency, handler)
}

const fn patch(
    path: &'static str,
    action: Action,
    idempotency: Idempotency,
    handler: Handler,
) -> Route {
    route("PATCH", path, action, idempotency, handler)
}

const fn delete(
    path: &'static str,
    action: Action,
    idempotency: Idempotency,
    handler: Handler,
) -> Route {
    route("DELETE", path, action, idempotency, handler)
}

const fn route(
    method: &'static str,
    path: &'static str,
    action: Action,
    idempotency: Idempotency,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        action,
        idempotency,
        handler,
    }
}

/// Why a state change guarded by `If-Match` needs no key.
const IF_MATCH: Idempotency =
    NotKeyed("not a create: If-Match already makes a retry safe (a repeat is refused with 412)");

/// Why deciding a transfer needs no key.
const TRANSFER_DECISION: Idempotency =
    NotKeyed("not a create: a transfer is decided once, a repeated decision is refused");

/// Every authenticated route.
pub static ROUTES: &[Route] = &[
    post(
        paths::SCREENINGS,
        Action::ScreeningCreate,
        KeyedDocumentedByOperation,
        || routes!(screenings::create_screening),
    ),
    get(paths::SCREENINGS, Action::ScreeningRead, || {
        routes!(screenings::list_screenings)
    }),
    get(paths::SCREENING, Action::ScreeningRead, || {
        routes!(screenings::get_screening)
    }),
    patch(paths::SCREENING, Action::ScreeningUpdate, IF_MATCH, || {
        routes!(screenings::update_screening)
    }),
    post(
        paths::SCREENING_CONSENTS,
        Action::ConsentRecord,
        KeyedDocumentedByOperation,
        || routes!(screenings::record_consent),
    ),
    post(
        paths::SCREENING_DECISIONS,
        Action::DecisionRecord,
        KeyedDocumentedByOperation,
        || routes!(screenings::record_decision),
    ),
    get(paths::SCREENING_MATCHES, Action::DuplicateSearch, || {
        routes!(persons::find_matches)
    }),
    post(
        paths::SCREENING_MATCHES_CONFIRM,
        Action::DuplicateSearch,
        NotKeyed(
            "not a create, and already idempotent: confirming a confirmed match changes nothing",
        ),
        || routes!(persons::confirm_match),
    ),
    get(paths::CLOCKS, Action::ClockRead, || {
        routes!(clocks::list_clocks)
    }),
    post(
        paths::CLOCK_COMPLETE,
        Action::ClockComplete,
        NotKeyed(
            "not a create, and already idempotent: completing a completed clock returns it \
             unchanged",
        ),
        || routes!(clocks::complete_clock),
    ),
    get(paths::INDICATOR_SETS, Action::IndicatorSetRead, || {
        routes!(clocks::list_indicator_sets)
    }),
    post(
        paths::INDICATOR_SETS,
        Action::IndicatorSetPublish,
        Keyed,
        || routes!(clocks::publish_indicator_set),
    ),
    get(paths::INDICATOR_SET, Action::IndicatorSetRead, || {
        routes!(clocks::get_indicator_set)
    }),
    get(paths::PERSON, Action::PersonRead, || {
        routes!(persons::get_person)
    }),
    get(
        paths::PERSON_ACCESS_LOG,
        Action::PersonAccessLogRead,
        || routes!(persons::access_log),
    ),
    get(paths::CASES, Action::CaseRead, || {
        routes!(cases::list_cases)
    }),
    get(paths::CASE, Action::CaseRead, || routes!(cases::get_case)),
    post(paths::CASE_STAGE, Action::CaseUpdate, IF_MATCH, || {
        routes!(cases::change_stage)
    }),
    // A retried assessment, service, payment or follow-up must never be recorded twice.
    post(paths::CASE_ASSESSMENTS, Action::CaseUpdate, Keyed, || {
        routes!(cases::add_assessment)
    }),
    get(paths::CASE_ASSESSMENTS, Action::CaseRead, || {
        routes!(cases::list_assessments)
    }),
    post(
        paths::CASE_SEAL,
        Action::CaseSeal,
        NotKeyed(
            "not a create, and already idempotent: sealing a sealed case returns it unchanged",
        ),
        || routes!(cases::seal_case),
    ),
    // Assigning caseworkers also needs `CaseAssign`; the case service checks it, as
    // only it knows which fields a PATCH changes.
    patch(paths::CASE, Action::CaseUpdate, IF_MATCH, || {
        routes!(cases::update_case)
    }),
    post(
        paths::CASE_TRANSFERS,
        Action::CaseUpdate,
        NotKeyed(
            "If-Match of the case already makes a retry safe (a repeat is refused with 412), \
             and the response carries the free-text reason for the handover",
        ),
        || routes!(transfers::request_transfer),
    ),
    get(paths::CASE_TRANSFERS, Action::CaseRead, || {
        routes!(transfers::list_case_transfers)
    }),
    get(paths::TRANSFERS, Action::CaseRead, || {
        routes!(transfers::list_transfers)
    }),
    post(
        paths::TRANSFER_ACCEPT,
        Action::CaseTransferDecide,
        TRANSFER_DECISION,
        || routes!(transfers::accept_transfer),
    ),
    post(
        paths::TRANSFER_REJECT,
        Action::CaseTransferDecide,
        TRANSFER_DECISION,
        || routes!(transfers::reject_transfer),
    ),
    post(
        paths::CASE_PLANS,
        Action::CaseUpdate,
        NotKeyed(
            "answers with the plan's goals and actions, narratives about the person that the \
             case service encrypts and shreds on erasure",
        ),
        || routes!(plans::submit_plan),
    ),
    get(paths::CASE_PLANS, Action::CaseRead, || {
        routes!(plans::list_plans)
    }),
    post(
        paths::CASE_PLAN_APPROVE,
        Action::CasePlanApprove,
        IF_MATCH,
        || routes!(plans::approve_plan),
    ),
    post(
        paths::CASE_PLAN_REJECT,
        Action::CasePlanApprove,
        IF_MATCH,
        || routes!(plans::reject_plan),
    ),
    patch(
        paths::CASE_PLAN_ACTION,
        Action::CaseUpdate,
        IF_MATCH,
        || routes!(plans::update_plan_action),
    ),
    post(paths::CASE_SERVICES, Action::CaseUpdate, Keyed, || {
        routes!(deliveries::add_service)
    }),
    get(paths::CASE_SERVICES, Action::CaseRead, || {
        routes!(deliveries::list_services)
    }),
    patch(paths::CASE_SERVICE, Action::CaseUpdate, IF_MATCH, || {
        routes!(deliveries::update_service)
    }),
    post(paths::CASE_PAYMENTS, Action::CaseUpdate, Keyed, || {
        routes!(deliveries::record_payment)
    }),
    get(paths::CASE_PAYMENTS, Action::CaseRead, || {
        routes!(deliveries::list_payments)
    }),
    post(paths::CASE_FOLLOW_UPS, Action::CaseUpdate, Keyed, || {
        routes!(follow_ups::schedule_follow_up)
    }),
    get(paths::CASE_FOLLOW_UPS, Action::CaseRead, || {
        routes!(follow_ups::list_case_follow_ups)
    }),
    post(
        paths::CASE_FOLLOW_UP_OUTCOME,
        Action::CaseUpdate,
        IF_MATCH,
        || routes!(follow_ups::record_follow_up_outcome),
    ),
    get(paths::FOLLOW_UPS, Action::CaseRead, || {
        routes!(follow_ups::list_follow_ups)
    }),
    post(
        paths::CASE_NOTES,
        Action::CaseUpdate,
        NotKeyed(
            "answers with the note, a narrative the case service encrypts and shreds on erasure",
        ),
        || routes!(notes::add_note),
    ),
    // Notes restricted to supervisors also need `CaseNoteReadRestricted`; the case
    // service leaves out those the caller may not read.
    get(paths::CASE_NOTES, Action::CaseNoteRead, || {
        routes!(notes::list_notes)
    }),
    post(paths::CASE_CLOSURE, Action::CaseUpdate, IF_MATCH, || {
        routes!(cases::request_closure)
    }),
    post(
        paths::CASE_CLOSURE_APPROVE,
        Action::CaseClosureApprove,
        IF_MATCH,
        || routes!(cases::approve_closure),
    ),
    post(
        paths::CASE_CLOSURE_REJECT,
        Action::CaseClosureApprove,
        IF_MATCH,
        || routes!(cases::reject_closure),
    ),
    post(paths::CASE_REOPEN, Action::CaseUpdate, IF_MATCH, || {
        routes!(cases::reopen_case)
    }),
    get(paths::CASE_TIMELINE, Action::CaseRead, || {
        routes!(cases::get_timeline)
    }),
    post(
        paths::ORGANIZATIONS,
        Action::OrganizationCreate,
        Keyed,
        || routes!(organizations::create_organization),
    ),
    get(paths::ORGANIZATIONS, Action::OrganizationRead, || {
        routes!(organizations::list_organizations)
    }),
    get(paths::ORGANIZATION, Action::OrganizationRead, || {
        routes!(organizations::get_organization)
    }),
    // The directory is read across organisations; a facility is changed by its own.
    post(paths::FACILITIES, Action::FacilityManage, Keyed, || {
        routes!(facilities::create_facility)
    }),
    get(paths::FACILITIES, Action::FacilityRead, || {
        routes!(facilities::list_facilities)
    }),
    // A static segment wins over `{id}`: `/v1/facilities/search` is never a facility.
    get(paths::FACILITY_SEARCH, Action::FacilityRead, || {
        routes!(facilities::search_facilities)
    }),
    get(paths::FACILITY, Action::FacilityRead, || {
        routes!(facilities::get_facility)
    }),
    patch(paths::FACILITY, Action::FacilityManage, IF_MATCH, || {
        routes!(facilities::update_facility)
    }),
    get(paths::COVERAGE, Action::CoverageRead, || {
        routes!(facilities::get_coverage)
    }),
    get(paths::SETTLEMENTS, Action::FacilityRead, || {
        routes!(facilities::list_settlements)
    }),
    // Referrals: the sender creates, cancels and revokes; the receiver answers. The
    // referral service checks which side of the referral the caller's organisation is.
    post(paths::REFERRALS, Action::ReferralCreate, Keyed, || {
        routes!(referrals::create_referral)
    }),
    get(paths::REFERRALS, Action::ReferralRead, || {
        routes!(referrals::list_referrals)
    }),
    get(paths::REFERRAL, Action::ReferralRead, || {
        routes!(referrals::get_referral)
    }),
    post(
        paths::REFERRAL_ACCEPT,
        Action::ReferralRespond,
        IF_MATCH,
        || routes!(referrals::accept_referral),
    ),
    post(
        paths::REFERRAL_DECLINE,
        Action::ReferralRespond,
        IF_MATCH,
        || routes!(referrals::decline_referral),
    ),
    post(
        paths::REFERRAL_START,
        Action::ReferralRespond,
        IF_MATCH,
        || routes!(referrals::start_referral),
    ),
    post(
        paths::REFERRAL_COMPLETE,
        Action::ReferralRespond,
        IF_MATCH,
        || routes!(referrals::complete_referral),
    ),
    post(
        paths::REFERRAL_CANCEL,
        Action::ReferralCreate,
        IF_MATCH,
        || routes!(referrals::cancel_referral),
    ),
    post(
        paths::REFERRAL_REVOKE,
        Action::ReferralCreate,
        IF_MATCH,
        || routes!(referrals::revoke_referral),
    ),
    get(
        paths::REFERRAL_DISCLOSURE,
        Action::ReferralDisclosureRead,
        || routes!(referrals::get_disclosure),
    ),
    // Statistics and the anonymised export are not of one organisation: they carry no
    // personal data, and the reporting service applies suppression and k-anonymity.
    get(paths::REPORT_SUMMARY, Action::SummaryRead, || {
        routes!(reports::get_summary)
    }),
    get(paths::REPORT_INDICATORS, Action::ReportRead, || {
        routes!(reports::get_indicators)
    }),
    post(
        paths::CTDC_EXPORT,
        Action::ReportExport,
        NotKeyed(
            "every export is its own release in the ledger: re-running the export is the \
             retry, and a replay would hand out a file the ledger does not record twice",
        ),
        || routes!(reports::export_ctdc),
    ),
    get(paths::RELEASES, Action::ReleaseRead, || {
        routes!(reports::list_releases)
    }),
    post(
        paths::PRIVATE_COUNT_RELEASES,
        Action::ReportExport,
        NotKeyed(
            "every release spends privacy budget and is its own entry in both ledgers: \
             re-running it is the retry, and a replay would hand out counts the ledger does \
             not record twice",
        ),
        || routes!(reports::release_private_counts),
    ),
    get(paths::PRIVACY_BUDGET, Action::ReleaseRead, || {
        routes!(reports::get_privacy_budget)
    }),
    // Last, so the authorization matrix erases only after every read.
    delete(
        paths::PERSON,
        Action::PersonErase,
        NotKeyed(
            "not a create, and already idempotent: erasing an erased person again leaves it as \
             it is",
        ),
        || routes!(persons::erase_person),
    ),
];

/// The routes open without authentication.
pub static PUBLIC_ROUTES: &[PublicRoute] = &[
    public_get(paths::HEALTHZ, || routes!(health::healthz)),
    public_get(paths::READYZ, || routes!(health::readyz)),
    public_get(paths::STATUS, || routes!(health::status)),
];

const fn public_get(path: &'static str, handler: Handler) -> PublicRoute {
    PublicRoute {
        method: "GET",
        path,
        handler,
    }
}
