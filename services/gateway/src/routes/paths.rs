//! The path of every REST route, written once: the route table, the handlers'
//! `#[utoipa::path]` attributes and the `Location` of new records refer to these.
//!
//! A path is the template the router matches and the OpenAPI document shows, with
//! `{name}` for each path parameter.

use std::fmt::Display;

pub(crate) const SCREENINGS: &str = "/v1/screenings";
pub(crate) const SCREENING: &str = "/v1/screenings/{id}";
pub(crate) const SCREENING_CONSENTS: &str = "/v1/screenings/{id}/consents";
pub(crate) const SCREENING_DECISIONS: &str = "/v1/screenings/{id}/decisions";
pub(crate) const SCREENING_MATCHES: &str = "/v1/screenings/{id}/matches";
pub(crate) const SCREENING_MATCHES_CONFIRM: &str = "/v1/screenings/{id}/matches/confirm";

pub(crate) const CLOCKS: &str = "/v1/clocks";
pub(crate) const CLOCK_COMPLETE: &str = "/v1/clocks/{id}/complete";
pub(crate) const INDICATOR_SETS: &str = "/v1/indicator_sets";
pub(crate) const INDICATOR_SET: &str = "/v1/indicator_sets/{version}";

pub(crate) const PERSON: &str = "/v1/persons/{id}";
pub(crate) const PERSON_ACCESS_LOG: &str = "/v1/persons/{id}/access_log";

pub(crate) const CASES: &str = "/v1/cases";
pub(crate) const CASE: &str = "/v1/cases/{id}";
pub(crate) const CASE_STAGE: &str = "/v1/cases/{id}/stage";
pub(crate) const CASE_SEAL: &str = "/v1/cases/{id}/seal";
pub(crate) const CASE_ASSESSMENTS: &str = "/v1/cases/{id}/assessments";
pub(crate) const CASE_TRANSFERS: &str = "/v1/cases/{id}/transfers";
pub(crate) const TRANSFERS: &str = "/v1/transfers";
pub(crate) const TRANSFER_ACCEPT: &str = "/v1/transfers/{id}/accept";
pub(crate) const TRANSFER_REJECT: &str = "/v1/transfers/{id}/reject";
pub(crate) const CASE_PLANS: &str = "/v1/cases/{id}/plans";
pub(crate) const CASE_PLAN_APPROVE: &str = "/v1/cases/{id}/plans/{plan_version}/approve";
pub(crate) const CASE_PLAN_REJECT: &str = "/v1/cases/{id}/plans/{plan_version}/reject";
pub(crate) const CASE_PLAN_ACTION: &str = "/v1/cases/{id}/plans/{plan_version}/actions/{action_id}";
pub(crate) const CASE_SERVICES: &str = "/v1/cases/{id}/services";
pub(crate) const CASE_SERVICE: &str = "/v1/cases/{id}/services/{service_id}";
pub(crate) const CASE_PAYMENTS: &str = "/v1/cases/{id}/payments";
pub(crate) const CASE_FOLLOW_UPS: &str = "/v1/cases/{id}/follow_ups";
pub(crate) const CASE_FOLLOW_UP_OUTCOME: &str = "/v1/cases/{id}/follow_ups/{follow_up_id}/outcome";
pub(crate) const FOLLOW_UPS: &str = "/v1/follow_ups";
pub(crate) const CASE_NOTES: &str = "/v1/cases/{id}/notes";
pub(crate) const CASE_CLOSURE: &str = "/v1/cases/{id}/closure";
pub(crate) const CASE_CLOSURE_APPROVE: &str = "/v1/cases/{id}/closure/approve";
pub(crate) const CASE_CLOSURE_REJECT: &str = "/v1/cases/{id}/closure/reject";
pub(crate) const CASE_REOPEN: &str = "/v1/cases/{id}/reopen";
pub(crate) const CASE_TIMELINE: &str = "/v1/cases/{id}/timeline";

pub(crate) const ORGANIZATIONS: &str = "/v1/organizations";
pub(crate) const ORGANIZATION: &str = "/v1/organizations/{id}";
pub(crate) const FACILITIES: &str = "/v1/facilities";
pub(crate) const FACILITY_SEARCH: &str = "/v1/facilities/search";
pub(crate) const FACILITY: &str = "/v1/facilities/{id}";
pub(crate) const COVERAGE: &str = "/v1/coverage";
pub(crate) const SETTLEMENTS: &str = "/v1/settlements";

pub(crate) const REFERRALS: &str = "/v1/referrals";
pub(crate) const REFERRAL: &str = "/v1/referrals/{id}";
pub(crate) const REFERRAL_ACCEPT: &str = "/v1/referrals/{id}/accept";
pub(crate) const REFERRAL_DECLINE: &str = "/v1/referrals/{id}/decline";
pub(crate) const REFERRAL_START: &str = "/v1/referrals/{id}/start";
pub(crate) const REFERRAL_COMPLETE: &str = "/v1/referrals/{id}/complete";
pub(crate) const REFERRAL_CANCEL: &str = "/v1/referrals/{id}/cancel";
pub(crate) const REFERRAL_REVOKE: &str = "/v1/referrals/{id}/revoke";
pub(crate) const REFERRAL_DISCLOSURE: &str = "/v1/referrals/{id}/disclosure";

pub(crate) const REPORT_SUMMARY: &str = "/v1/reports/summary";
pub(crate) const REPORT_INDICATORS: &str = "/v1/reports/indicators";
pub(crate) const CTDC_EXPORT: &str = "/v1/exports/ctdc";
pub(crate) const RELEASES: &str = "/v1/releases";
pub(crate) const PRIVATE_COUNT_RELEASES: &str = "/v1/releases/private_counts";
pub(crate) const PRIVACY_BUDGET: &str = "/v1/privacy_budget";

pub(crate) const HEALTHZ: &str = "/healthz";
pub(crate) const READYZ: &str = "/readyz";
pub(crate) const STATUS: &str = "/status";

/// `template` with its one path parameter set to `value`: the path of one record,
/// e.g. the `Location` of a new one.
pub(crate) fn expand(template: &str, value: impl Display) -> String {
    debug_assert_eq!(
        template.matches('{').count(),
        1,
        "{template} must have exactly one parameter"
    );
    match (template.find('{'), template.find('}')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}{value}{}", &template[..open], &template[close + 1..])
        }
        _ => template.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expanding_a_template_fills_its_parameter() {
        assert_eq!(expand(SCREENING, "abc"), "/v1/screenings/abc");
        assert_eq!(expand(INDICATOR_SET, 3), "/v1/indicator_sets/3");
        assert_eq!(expand(CASE_NOTES, "c-1"), "/v1/cases/c-1/notes");
    }
}
