//! Which action each REST route performs, checked against the shared role × action
//! policy before any backend is called. Services check again; this table is also what
//! the authorization-matrix test walks, so code and tests cannot drift apart.

use haven_auth::Action;

/// One `/v1` route and the action it performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRule {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Route template as the router matches it, e.g. `/v1/cases/{id}`.
    pub path: &'static str,
    /// The action the caller's roles must allow.
    pub action: Action,
}

const fn rule(method: &'static str, path: &'static str, action: Action) -> RouteRule {
    RouteRule {
        method,
        path,
        action,
    }
}

/// Every authenticated route. A `/v1` route missing here is refused (deny by default).
pub const ROUTE_POLICY: &[RouteRule] = &[
    rule("POST", "/v1/screenings", Action::ScreeningCreate),
    rule("GET", "/v1/screenings", Action::ScreeningRead),
    rule("GET", "/v1/screenings/{id}", Action::ScreeningRead),
    rule("PATCH", "/v1/screenings/{id}", Action::ScreeningUpdate),
    rule(
        "POST",
        "/v1/screenings/{id}/consents",
        Action::ConsentRecord,
    ),
    rule(
        "POST",
        "/v1/screenings/{id}/decisions",
        Action::DecisionRecord,
    ),
    rule(
        "GET",
        "/v1/screenings/{id}/matches",
        Action::DuplicateSearch,
    ),
    rule(
        "POST",
        "/v1/screenings/{id}/matches/confirm",
        Action::DuplicateSearch,
    ),
    rule("GET", "/v1/clocks", Action::ClockRead),
    rule("POST", "/v1/clocks/{id}/complete", Action::ClockComplete),
    rule("GET", "/v1/indicator_sets", Action::IndicatorSetRead),
    rule("POST", "/v1/indicator_sets", Action::IndicatorSetPublish),
    rule(
        "GET",
        "/v1/indicator_sets/{version}",
        Action::IndicatorSetRead,
    ),
    rule("GET", "/v1/persons/{id}", Action::PersonRead),
    rule(
        "GET",
        "/v1/persons/{id}/access_log",
        Action::PersonAccessLogRead,
    ),
    rule("GET", "/v1/cases", Action::CaseRead),
    rule("GET", "/v1/cases/{id}", Action::CaseRead),
    rule("POST", "/v1/cases/{id}/stage", Action::CaseUpdate),
    rule("POST", "/v1/cases/{id}/assessments", Action::CaseUpdate),
    rule("GET", "/v1/cases/{id}/assessments", Action::CaseRead),
    rule("POST", "/v1/cases/{id}/seal", Action::CaseSeal),
    // Assigning caseworkers also needs `CaseAssign`; the case service checks it, as
    // only it knows which fields a PATCH changes.
    rule("PATCH", "/v1/cases/{id}", Action::CaseUpdate),
    rule("POST", "/v1/cases/{id}/transfers", Action::CaseUpdate),
    rule("GET", "/v1/cases/{id}/transfers", Action::CaseRead),
    rule("GET", "/v1/transfers", Action::CaseRead),
    rule(
        "POST",
        "/v1/transfers/{id}/accept",
        Action::CaseTransferDecide,
    ),
    rule(
        "POST",
        "/v1/transfers/{id}/reject",
        Action::CaseTransferDecide,
    ),
    rule("POST", "/v1/cases/{id}/plans", Action::CaseUpdate),
    rule("GET", "/v1/cases/{id}/plans", Action::CaseRead),
    rule(
        "POST",
        "/v1/cases/{id}/plans/{plan_version}/approve",
        Action::CasePlanApprove,
    ),
    rule(
        "POST",
        "/v1/cases/{id}/plans/{plan_version}/reject",
        Action::CasePlanApprove,
    ),
    rule(
        "PATCH",
        "/v1/cases/{id}/plans/{plan_version}/actions/{action_id}",
        Action::CaseUpdate,
    ),
    rule("POST", "/v1/cases/{id}/services", Action::CaseUpdate),
    rule("GET", "/v1/cases/{id}/services", Action::CaseRead),
    rule(
        "PATCH",
        "/v1/cases/{id}/services/{service_id}",
        Action::CaseUpdate,
    ),
    rule("POST", "/v1/cases/{id}/payments", Action::CaseUpdate),
    rule("GET", "/v1/cases/{id}/payments", Action::CaseRead),
    rule("POST", "/v1/cases/{id}/follow_ups", Action::CaseUpdate),
    rule("GET", "/v1/cases/{id}/follow_ups", Action::CaseRead),
    rule(
        "POST",
        "/v1/cases/{id}/follow_ups/{follow_up_id}/outcome",
        Action::CaseUpdate,
    ),
    rule("GET", "/v1/follow_ups", Action::CaseRead),
    rule("POST", "/v1/cases/{id}/notes", Action::CaseUpdate),
    // Notes restricted to supervisors also need `CaseNoteReadRestricted`; the case
    // service leaves out those the caller may not read.
    rule("GET", "/v1/cases/{id}/notes", Action::CaseNoteRead),
    rule("POST", "/v1/cases/{id}/closure", Action::CaseUpdate),
    rule(
        "POST",
        "/v1/cases/{id}/closure/approve",
        Action::CaseClosureApprove,
    ),
    rule(
        "POST",
        "/v1/cases/{id}/closure/reject",
        Action::CaseClosureApprove,
    ),
    rule("POST", "/v1/cases/{id}/reopen", Action::CaseUpdate),
    rule("GET", "/v1/cases/{id}/timeline", Action::CaseRead),
    rule("POST", "/v1/organizations", Action::OrganizationCreate),
    rule("GET", "/v1/organizations", Action::OrganizationRead),
    rule("GET", "/v1/organizations/{id}", Action::OrganizationRead),
    // The directory is read across organisations; a facility is changed by its own.
    rule("POST", "/v1/facilities", Action::FacilityManage),
    rule("GET", "/v1/facilities", Action::FacilityRead),
    rule("GET", "/v1/facilities/search", Action::FacilityRead),
    rule("GET", "/v1/facilities/{id}", Action::FacilityRead),
    rule("PATCH", "/v1/facilities/{id}", Action::FacilityManage),
    rule("GET", "/v1/coverage", Action::CoverageRead),
    rule("GET", "/v1/settlements", Action::FacilityRead),
    // Referrals: the sender creates, cancels and revokes; the receiver answers. The
    // referral service checks which side of the referral the caller's organisation is.
    rule("POST", "/v1/referrals", Action::ReferralCreate),
    rule("GET", "/v1/referrals", Action::ReferralRead),
    rule("GET", "/v1/referrals/{id}", Action::ReferralRead),
    rule("POST", "/v1/referrals/{id}/accept", Action::ReferralRespond),
    rule(
        "POST",
        "/v1/referrals/{id}/decline",
        Action::ReferralRespond,
    ),
    rule("POST", "/v1/referrals/{id}/start", Action::ReferralRespond),
    rule(
        "POST",
        "/v1/referrals/{id}/complete",
        Action::ReferralRespond,
    ),
    rule("POST", "/v1/referrals/{id}/cancel", Action::ReferralCreate),
    rule("POST", "/v1/referrals/{id}/revoke", Action::ReferralCreate),
    rule(
        "GET",
        "/v1/referrals/{id}/disclosure",
        Action::ReferralDisclosureRead,
    ),
    // Statistics and the anonymised export are not of one organisation: they carry no
    // personal data, and the reporting service applies suppression and k-anonymity.
    rule("GET", "/v1/reports/summary", Action::SummaryRead),
    rule("GET", "/v1/reports/indicators", Action::ReportRead),
    rule("POST", "/v1/exports/ctdc", Action::ReportExport),
    rule("GET", "/v1/releases", Action::ReleaseRead),
    rule("POST", "/v1/releases/private_counts", Action::ReportExport),
    rule("GET", "/v1/privacy_budget", Action::ReleaseRead),
    // Last, so the authorization matrix erases only after every read.
    rule("DELETE", "/v1/persons/{id}", Action::PersonErase),
];

/// The action of a matched route, if it is listed.
pub fn required_action(method: &str, path: &str) -> Option<Action> {
    ROUTE_POLICY
        .iter()
        .find(|rule| rule.method == method && rule.path == path)
        .map(|rule| rule.action)
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;

    use super::*;

    #[test]
    fn every_documented_v1_operation_has_exactly_one_rule() {
        let document = crate::routes::documented().into_openapi();
        let mut documented = Vec::new();
        for (path, item) in &document.paths.paths {
            if !path.starts_with("/v1/") {
                continue;
            }
            let operations = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            for (method, present) in operations {
                if present {
                    documented.push((method, path.clone()));
                }
            }
        }
        let _ = crate::openapi::ApiDoc::openapi();
        for (method, path) in &documented {
            let rules = ROUTE_POLICY
                .iter()
                .filter(|rule| rule.method == *method && rule.path == path)
                .count();
            assert_eq!(rules, 1, "{method} {path} needs exactly one policy rule");
        }
        assert_eq!(
            documented.len(),
            ROUTE_POLICY.len(),
            "a rule names a route that does not exist"
        );
    }
}
