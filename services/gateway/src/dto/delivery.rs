//! What a case delivers: services (shelter, medical, legal aid, ...) and the
//! cash-assistance ledger.

use haven_error::HavenError;
use haven_proto::case::v1 as case;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::enums::{ServiceStatus, ServiceType};
use super::{from_timestamp, non_empty, optional_date, require_date, require_text};

/// Body of `POST /v1/cases/{id}/services`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddService {
    /// Kind of service.
    #[serde(rename = "type")]
    pub(crate) service_type: ServiceType,
    /// Organisation providing it.
    pub(crate) provider_organization_id: uuid::Uuid,
    /// Planned date, `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(format = Date)]
    pub(crate) planned_on: Option<String>,
    /// Start date, `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(format = Date)]
    pub(crate) started_on: Option<String>,
    /// End date, `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(format = Date)]
    pub(crate) ended_on: Option<String>,
    /// Status; default `planned`.
    #[serde(default)]
    pub(crate) status: Option<ServiceStatus>,
}

impl AddService {
    /// Validates the body into the gRPC request for case `case_id`.
    pub(crate) fn into_proto(
        self,
        case_id: uuid::Uuid,
    ) -> Result<case::AddServiceRequest, HavenError> {
        Ok(case::AddServiceRequest {
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
            case_id: case_id.to_string(),
            r#type: self.service_type.to_proto(),
            provider_organization_id: self.provider_organization_id.to_string(),
            planned_on: optional_date("planned_on", self.planned_on)?,
            started_on: optional_date("started_on", self.started_on)?,
            ended_on: optional_date("ended_on", self.ended_on)?,
            status: self.status.map(ServiceStatus::to_proto).unwrap_or_default(),
        })
    }
}

/// Body of `PATCH /v1/cases/{id}/services/{service_id}`: only the fields present
/// change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateService {
    /// New status (forward only: planned → in progress → delivered, or cancelled).
    #[serde(default)]
    pub(crate) status: Option<ServiceStatus>,
    /// Start date, `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(format = Date)]
    pub(crate) started_on: Option<String>,
    /// End date, `YYYY-MM-DD`.
    #[serde(default)]
    #[schema(format = Date)]
    pub(crate) ended_on: Option<String>,
}

impl UpdateService {
    /// Validates the body into the gRPC request for service `id` of case `case_id` at
    /// `expected_version`.
    pub(crate) fn into_proto(
        self,
        case_id: uuid::Uuid,
        id: uuid::Uuid,
        expected_version: u64,
    ) -> Result<case::UpdateServiceRequest, HavenError> {
        Ok(case::UpdateServiceRequest {
            case_id: case_id.to_string(),
            id: id.to_string(),
            expected_version,
            status: self.status.map(ServiceStatus::to_proto).unwrap_or_default(),
            started_on: optional_date("started_on", self.started_on)?,
            ended_on: optional_date("ended_on", self.ended_on)?,
        })
    }
}

/// A service delivered (or planned) for a case.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServiceDelivery {
    /// Id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// The case.
    #[schema(format = Uuid)]
    pub(crate) case_id: String,
    /// Kind of service.
    #[serde(rename = "type")]
    pub(crate) service_type: Option<ServiceType>,
    /// Organisation providing it.
    #[schema(format = Uuid)]
    pub(crate) provider_organization_id: String,
    /// Planned date, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub(crate) planned_on: Option<String>,
    /// Start date, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub(crate) started_on: Option<String>,
    /// End date, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub(crate) ended_on: Option<String>,
    /// Status.
    pub(crate) status: Option<ServiceStatus>,
    /// Incremented by every change; also sent as the `ETag`.
    pub(crate) version: u64,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) recorded_at: Option<OffsetDateTime>,
    /// Who recorded it.
    pub(crate) recorded_by: String,
}

impl From<case::ServiceDelivery> for ServiceDelivery {
    fn from(service: case::ServiceDelivery) -> Self {
        Self {
            id: service.id,
            case_id: service.case_id,
            service_type: ServiceType::from_proto(service.r#type),
            provider_organization_id: service.provider_organization_id,
            planned_on: non_empty(service.planned_on),
            started_on: non_empty(service.started_on),
            ended_on: non_empty(service.ended_on),
            status: ServiceStatus::from_proto(service.status),
            version: service.version,
            recorded_at: from_timestamp(service.recorded_at),
            recorded_by: service.recorded_by,
        }
    }
}

/// A case's services.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServiceList {
    /// Services.
    pub(crate) items: Vec<ServiceDelivery>,
}

/// Body of `POST /v1/cases/{id}/payments`. To correct a payment, reverse it: name it
/// in `reverses_payment_id` (its amount and currency are then taken from it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordPayment {
    /// Decimal amount with at most two decimals, as a string; required unless
    /// reversing.
    #[serde(default)]
    #[schema(example = "150.00")]
    pub(crate) amount: Option<String>,
    /// ISO 4217 code, e.g. `AZN`; required unless reversing.
    #[serde(default)]
    pub(crate) currency: Option<String>,
    /// Date paid, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub(crate) paid_on: String,
    /// What it pays for.
    pub(crate) purpose: String,
    /// The cash-assistance service it belongs to.
    #[serde(default)]
    pub(crate) service_id: Option<uuid::Uuid>,
    /// The payment this entry reverses.
    #[serde(default)]
    pub(crate) reverses_payment_id: Option<uuid::Uuid>,
}

impl RecordPayment {
    /// Validates the body into the gRPC request for case `case_id`.
    pub(crate) fn into_proto(
        self,
        case_id: uuid::Uuid,
    ) -> Result<case::RecordPaymentRequest, HavenError> {
        let amount = self.amount.unwrap_or_default();
        let currency = self.currency.unwrap_or_default();
        if self.reverses_payment_id.is_none() {
            require_text("amount", &amount)?;
            require_text("currency", &currency)?;
        }
        require_date("paid_on", &self.paid_on)?;
        require_text("purpose", &self.purpose)?;
        Ok(case::RecordPaymentRequest {
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
            case_id: case_id.to_string(),
            amount,
            currency,
            paid_on: self.paid_on,
            purpose: self.purpose,
            service_id: self.service_id.map(|id| id.to_string()).unwrap_or_default(),
            reverses_payment_id: self
                .reverses_payment_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        })
    }
}

/// One entry of a case's cash-assistance ledger.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Payment {
    /// Id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// The case.
    #[schema(format = Uuid)]
    pub(crate) case_id: String,
    /// Decimal amount as a string (negative for a reversal).
    #[schema(example = "150.00")]
    pub(crate) amount: String,
    /// ISO 4217 code.
    pub(crate) currency: String,
    /// Date paid, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub(crate) paid_on: String,
    /// What it pays for.
    pub(crate) purpose: String,
    /// The cash-assistance service it belongs to.
    #[schema(format = Uuid)]
    pub(crate) service_id: Option<String>,
    /// The payment this entry reverses.
    #[schema(format = Uuid)]
    pub(crate) reverses_payment_id: Option<String>,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) recorded_at: Option<OffsetDateTime>,
    /// Who recorded it.
    pub(crate) recorded_by: String,
}

impl From<case::Payment> for Payment {
    fn from(payment: case::Payment) -> Self {
        Self {
            id: payment.id,
            case_id: payment.case_id,
            amount: payment.amount,
            currency: payment.currency,
            paid_on: payment.paid_on,
            purpose: payment.purpose,
            service_id: non_empty(payment.service_id),
            reverses_payment_id: non_empty(payment.reverses_payment_id),
            recorded_at: from_timestamp(payment.recorded_at),
            recorded_by: payment.recorded_by,
        }
    }
}

/// The total of a ledger in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CurrencyTotal {
    /// ISO 4217 code.
    pub(crate) currency: String,
    /// Decimal amount as a string.
    #[schema(example = "300.00")]
    pub(crate) amount: String,
}

impl From<case::CurrencyTotal> for CurrencyTotal {
    fn from(total: case::CurrencyTotal) -> Self {
        Self {
            currency: total.currency,
            amount: total.amount,
        }
    }
}

/// A case's cash-assistance ledger with its totals.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PaymentLedger {
    /// Entries, in the order recorded.
    pub(crate) items: Vec<Payment>,
    /// Totals per currency.
    pub(crate) totals: Vec<CurrencyTotal>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_needs_an_amount_unless_it_reverses_one() {
        let payment =
            |body: serde_json::Value| -> RecordPayment { serde_json::from_value(body).unwrap() };
        let error = payment(
            serde_json::json!({"currency": "AZN", "paid_on": "2026-03-01",
            "purpose": "rent"}),
        )
        .into_proto(uuid::Uuid::nil())
        .unwrap_err();
        assert_eq!(error.violations()[0].field, "amount");
        let reversal = payment(
            serde_json::json!({"paid_on": "2026-03-02", "purpose": "typo",
            "reverses_payment_id": uuid::Uuid::nil()}),
        )
        .into_proto(uuid::Uuid::nil())
        .unwrap();
        assert!(reversal.amount.is_empty());
        let error = payment(serde_json::json!({"amount": "150.00", "currency": "AZN",
            "paid_on": "2026-3-1", "purpose": "rent"}))
        .into_proto(uuid::Uuid::nil())
        .unwrap_err();
        assert_eq!(error.violations()[0].field, "paid_on");
    }
}
