//! Facilities of the directory: where organisations deliver services, with capacity;
//! the search for a place, the coverage report and the gazetteer.

use haven_error::HavenError;
use haven_proto::referral::v1 as referral;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{MAX_PAGE_SIZE, from_timestamp, non_empty, page_request, require_text};

/// Who a facility accepts. Empty lists accept everyone.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Acceptance {
    /// Genders accepted: `female`, `male`, `other`; empty: every gender.
    #[serde(default)]
    pub(crate) genders: Vec<String>,
    /// Age groups accepted: `child` (0-13), `adolescent` (14-17), `adult` (18-59),
    /// `older` (60+); empty: every age.
    #[serde(default)]
    pub(crate) age_groups: Vec<String>,
    /// Takes unaccompanied minors.
    #[serde(default)]
    pub(crate) minors: bool,
    /// Takes families with children.
    #[serde(default)]
    pub(crate) families: bool,
}

impl From<referral::Acceptance> for Acceptance {
    fn from(accepts: referral::Acceptance) -> Self {
        Self {
            genders: accepts.genders,
            age_groups: accepts.age_groups,
            minors: accepts.minors,
            families: accepts.families,
        }
    }
}

impl From<Acceptance> for referral::Acceptance {
    fn from(accepts: Acceptance) -> Self {
        Self {
            genders: accepts.genders,
            age_groups: accepts.age_groups,
            minors: accepts.minors,
            families: accepts.families,
        }
    }
}

/// A facility of an organisation: where a service is delivered.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Facility {
    /// Facility id.
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// Organisation that runs it.
    #[schema(format = Uuid)]
    pub(crate) organization_id: String,
    /// Name.
    pub(crate) name: String,
    /// Street address.
    pub(crate) address: Option<String>,
    /// Settlement of the gazetteer it is in.
    pub(crate) settlement: String,
    /// Latitude, WGS 84.
    pub(crate) latitude: f64,
    /// Longitude, WGS 84.
    pub(crate) longitude: f64,
    /// Service types offered: `shelter`, `medical`, `psychological`, `legal_aid`, ...
    pub(crate) service_types: Vec<String>,
    /// Beds (shelters) or slots; 0: not limited.
    pub(crate) capacity_total: u32,
    /// Beds or slots free now (held ones count as taken).
    pub(crate) capacity_free: u32,
    /// Who it accepts.
    pub(crate) accepts: Acceptance,
    /// Languages spoken (ISO 639 codes).
    pub(crate) languages: Vec<String>,
    /// Opening hours, as written by the organisation.
    pub(crate) opening_hours: Option<String>,
    /// The facility's telephone.
    pub(crate) contact_phone: Option<String>,
    /// The facility's e-mail address.
    pub(crate) contact_email: Option<String>,
    /// Whether it takes people now; inactive facilities are never found by search.
    pub(crate) active: bool,
    /// Incremented by every change; also sent as the `ETag`.
    pub(crate) version: u64,
    /// When it was added.
    #[serde(with = "time::serde::rfc3339::option")]
    pub(crate) created_at: Option<OffsetDateTime>,
}

impl From<referral::Facility> for Facility {
    fn from(facility: referral::Facility) -> Self {
        Self {
            id: facility.id,
            organization_id: facility.organization_id,
            name: facility.name,
            address: non_empty(facility.address),
            settlement: facility.settlement,
            latitude: facility.latitude,
            longitude: facility.longitude,
            service_types: facility.service_types,
            capacity_total: facility.capacity_total,
            capacity_free: facility.capacity_free,
            accepts: facility.accepts.map(Acceptance::from).unwrap_or_default(),
            languages: facility.languages,
            opening_hours: non_empty(facility.opening_hours),
            contact_phone: non_empty(facility.contact_phone),
            contact_email: non_empty(facility.contact_email),
            active: facility.active,
            version: facility.version,
            created_at: from_timestamp(facility.created_at),
        }
    }
}

/// One page of facilities.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FacilityPage {
    /// Facilities of this page.
    pub(crate) items: Vec<Facility>,
    /// Cursor of the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

fn default_active() -> bool {
    true
}

/// Body of `PATCH /v1/facilities/{id}`: every editable field of a facility. It
/// replaces them all: a field left out takes its default (no address, no contacts,
/// capacity 0 = not limited, accepts everyone but unaccompanied minors and families,
/// active), it does not keep its current value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FacilityDetails {
    /// Name.
    pub(crate) name: String,
    /// Street address.
    #[serde(default)]
    pub(crate) address: Option<String>,
    /// A settlement of the gazetteer (`GET /v1/settlements`); it locates the facility
    /// when no coordinates are given.
    pub(crate) settlement: String,
    /// Latitude, -90 to 90; with `longitude`, or neither (then the settlement's).
    #[serde(default)]
    pub(crate) latitude: Option<f64>,
    /// Longitude, -180 to 180; with `latitude`, or neither (then the settlement's).
    #[serde(default)]
    pub(crate) longitude: Option<f64>,
    /// Service types offered: `shelter`, `medical`, `psychological`, `legal_aid`, ...
    /// (the case service's service types).
    pub(crate) service_types: Vec<String>,
    /// Beds (shelters) or slots; 0 (default): not limited.
    #[serde(default)]
    pub(crate) capacity_total: u32,
    /// Who it accepts; default: everyone except unaccompanied minors and families.
    #[serde(default)]
    pub(crate) accepts: Acceptance,
    /// Languages spoken (ISO 639 codes).
    #[serde(default)]
    pub(crate) languages: Vec<String>,
    /// Opening hours.
    #[serde(default)]
    pub(crate) opening_hours: Option<String>,
    /// The facility's telephone (not a person's).
    #[serde(default)]
    pub(crate) contact_phone: Option<String>,
    /// The facility's e-mail address (not a person's).
    #[serde(default)]
    pub(crate) contact_email: Option<String>,
    /// Whether it takes people now; default `true`.
    #[serde(default = "default_active")]
    pub(crate) active: bool,
}

impl FacilityDetails {
    /// Validates the details into their proto message.
    pub(crate) fn into_proto(self) -> Result<referral::FacilityDetails, HavenError> {
        require_text("name", &self.name)?;
        require_text("settlement", &self.settlement)?;
        check_point(self.latitude, self.longitude)?;
        for (field, values) in [
            ("service_types", &self.service_types),
            ("languages", &self.languages),
            ("accepts.genders", &self.accepts.genders),
            ("accepts.age_groups", &self.accepts.age_groups),
        ] {
            for (index, value) in values.iter().enumerate() {
                require_text(&format!("{field}[{index}]"), value)?;
            }
        }
        Ok(referral::FacilityDetails {
            name: self.name,
            address: self.address.unwrap_or_default(),
            settlement: self.settlement,
            latitude: self.latitude,
            longitude: self.longitude,
            service_types: self.service_types,
            capacity_total: self.capacity_total,
            accepts: Some(self.accepts.into()),
            languages: self.languages,
            opening_hours: self.opening_hours.unwrap_or_default(),
            contact_phone: self.contact_phone.unwrap_or_default(),
            contact_email: self.contact_email.unwrap_or_default(),
            active: Some(self.active),
        })
    }

    /// The gRPC request replacing the details of facility `id` at `expected_version`.
    pub(crate) fn into_update(
        self,
        id: uuid::Uuid,
        expected_version: u64,
    ) -> Result<referral::UpdateFacilityRequest, HavenError> {
        Ok(referral::UpdateFacilityRequest {
            id: id.to_string(),
            expected_version,
            details: Some(self.into_proto()?),
        })
    }
}

/// Body of `POST /v1/facilities`: the facility's details and, for directory admins,
/// the organisation that runs it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateFacility {
    /// Organisation that runs it; default: yours. Only directory admins
    /// (`directory_admin`) may name another.
    #[serde(default)]
    pub(crate) organization_id: Option<uuid::Uuid>,
    /// Name.
    pub(crate) name: String,
    /// Street address.
    #[serde(default)]
    pub(crate) address: Option<String>,
    /// A settlement of the gazetteer (`GET /v1/settlements`); it locates the facility
    /// when no coordinates are given.
    pub(crate) settlement: String,
    /// Latitude, -90 to 90; with `longitude`, or neither (then the settlement's).
    #[serde(default)]
    pub(crate) latitude: Option<f64>,
    /// Longitude, -180 to 180; with `latitude`, or neither (then the settlement's).
    #[serde(default)]
    pub(crate) longitude: Option<f64>,
    /// Service types offered: `shelter`, `medical`, `psychological`, `legal_aid`, ...
    /// (the case service's service types).
    pub(crate) service_types: Vec<String>,
    /// Beds (shelters) or slots; 0 (default): not limited.
    #[serde(default)]
    pub(crate) capacity_total: u32,
    /// Who it accepts; default: everyone except unaccompanied minors and families.
    #[serde(default)]
    pub(crate) accepts: Acceptance,
    /// Languages spoken (ISO 639 codes).
    #[serde(default)]
    pub(crate) languages: Vec<String>,
    /// Opening hours.
    #[serde(default)]
    pub(crate) opening_hours: Option<String>,
    /// The facility's telephone (not a person's).
    #[serde(default)]
    pub(crate) contact_phone: Option<String>,
    /// The facility's e-mail address (not a person's).
    #[serde(default)]
    pub(crate) contact_email: Option<String>,
    /// Whether it takes people now; default `true`.
    #[serde(default = "default_active")]
    pub(crate) active: bool,
}

impl CreateFacility {
    /// Validates the body into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<referral::CreateFacilityRequest, HavenError> {
        let organization_id = self
            .organization_id
            .map(|id| id.to_string())
            .unwrap_or_default();
        let details = FacilityDetails {
            name: self.name,
            address: self.address,
            settlement: self.settlement,
            latitude: self.latitude,
            longitude: self.longitude,
            service_types: self.service_types,
            capacity_total: self.capacity_total,
            accepts: self.accepts,
            languages: self.languages,
            opening_hours: self.opening_hours,
            contact_phone: self.contact_phone,
            contact_email: self.contact_email,
            active: self.active,
        };
        Ok(referral::CreateFacilityRequest {
            // Set by the handler from the `Idempotency-Key` header.
            idempotency_key: String::new(),
            organization_id,
            details: Some(details.into_proto()?),
        })
    }
}

/// Query of `GET /v1/facilities`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FacilityQuery {
    /// Only facilities of this organisation.
    pub(crate) organization_id: Option<uuid::Uuid>,
    /// Only facilities offering this service type.
    pub(crate) service_type: Option<String>,
    /// Only facilities in this settlement.
    pub(crate) settlement: Option<String>,
    /// Only active facilities.
    pub(crate) active_only: Option<bool>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

impl FacilityQuery {
    /// Validates the query into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<referral::ListFacilitiesRequest, HavenError> {
        Ok(referral::ListFacilitiesRequest {
            page: Some(page_request(self.limit, self.cursor)?),
            organization_id: self
                .organization_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            service_type: self.service_type.unwrap_or_default(),
            settlement: self.settlement.unwrap_or_default(),
            active_only: self.active_only.unwrap_or(false),
        })
    }
}

/// Rejects a point that is half given or off the globe, naming the field.
fn check_point(latitude: Option<f64>, longitude: Option<f64>) -> Result<(), HavenError> {
    match (latitude, longitude) {
        (Some(_), None) => Err(HavenError::invalid_field(
            "longitude",
            "must be given with latitude",
        )),
        (None, Some(_)) => Err(HavenError::invalid_field(
            "latitude",
            "must be given with longitude",
        )),
        (Some(latitude), Some(_)) if !(-90.0..=90.0).contains(&latitude) => Err(
            HavenError::invalid_field("latitude", "must be between -90 and 90"),
        ),
        (Some(_), Some(longitude)) if !(-180.0..=180.0).contains(&longitude) => Err(
            HavenError::invalid_field("longitude", "must be between -180 and 180"),
        ),
        _ => Ok(()),
    }
}

/// Rejects a radius that is not a positive number of kilometres.
fn check_radius(radius_km: Option<f64>) -> Result<f64, HavenError> {
    match radius_km {
        None => Ok(0.0),
        Some(radius) if radius.is_finite() && radius > 0.0 => Ok(radius),
        Some(_) => Err(HavenError::invalid_field(
            "radius_km",
            "must be a positive number of kilometres",
        )),
    }
}

/// Query of `GET /v1/facilities/search`: where (a settlement or a point), what
/// service, and who the place is for. Parameters left out do not filter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// Service type sought, e.g. `shelter`.
    pub(crate) service_type: Option<String>,
    /// Search around this settlement of the gazetteer...
    pub(crate) settlement: Option<String>,
    /// ...or around this point: latitude, -90 to 90, with `longitude`.
    pub(crate) latitude: Option<f64>,
    /// Longitude, -180 to 180, with `latitude`.
    pub(crate) longitude: Option<f64>,
    /// How far to look, in km; default from the deployment's configuration.
    pub(crate) radius_km: Option<f64>,
    /// The person's gender: `female`, `male`, `other`; intake's
    /// `transgender_or_other` is `other`, and `unknown` does not filter.
    pub(crate) gender: Option<String>,
    /// The person's age in years.
    pub(crate) age: Option<u32>,
    /// The person is an unaccompanied minor.
    pub(crate) minor: Option<bool>,
    /// The person comes with family.
    pub(crate) family: Option<bool>,
    /// A language (ISO 639 code) the facility should speak.
    pub(crate) language: Option<String>,
    /// Also facilities without free capacity.
    pub(crate) include_full: Option<bool>,
    /// At most this many, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
}

impl SearchQuery {
    /// Validates the query into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<referral::SearchFacilitiesRequest, HavenError> {
        check_point(self.latitude, self.longitude)?;
        let radius_km = check_radius(self.radius_km)?;
        if let Some(limit) = self.limit
            && !(1..=MAX_PAGE_SIZE).contains(&limit)
        {
            return Err(HavenError::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        Ok(referral::SearchFacilitiesRequest {
            service_type: self.service_type.unwrap_or_default(),
            settlement: self.settlement.unwrap_or_default(),
            latitude: self.latitude,
            longitude: self.longitude,
            radius_km,
            profile: Some(referral::Profile {
                gender: self.gender.unwrap_or_default(),
                age: self.age.unwrap_or(0),
                minor: self.minor.unwrap_or(false),
                family: self.family.unwrap_or(false),
                language: self.language.unwrap_or_default(),
            }),
            include_full: self.include_full.unwrap_or(false),
            limit: self.limit.unwrap_or(0),
        })
    }
}

/// A facility found by a search, and how far it is.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FacilityMatch {
    /// The facility.
    pub(crate) facility: Facility,
    /// Distance from the settlement or point searched around, in km.
    pub(crate) distance_km: f64,
}

/// What a search found, nearest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FacilitySearch {
    /// Facilities found, nearest first.
    pub(crate) items: Vec<FacilityMatch>,
    /// The radius searched, in km.
    pub(crate) radius_km: f64,
}

impl From<referral::SearchFacilitiesResponse> for FacilitySearch {
    fn from(response: referral::SearchFacilitiesResponse) -> Self {
        Self {
            items: response
                .matches
                .into_iter()
                .filter_map(|found| {
                    Some(FacilityMatch {
                        facility: found.facility.map(Facility::from)?,
                        distance_km: found.distance_km,
                    })
                })
                .collect(),
            radius_km: response.radius_km,
        }
    }
}

/// Query of `GET /v1/coverage`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CoverageQuery {
    /// Service type, e.g. `shelter`.
    pub(crate) service_type: Option<String>,
    /// A settlement counts as covered within this many km of an active facility;
    /// default from the deployment's configuration.
    pub(crate) radius_km: Option<f64>,
}

impl CoverageQuery {
    /// Validates the query into the gRPC request.
    pub(crate) fn into_proto(self) -> Result<referral::GetCoverageRequest, HavenError> {
        Ok(referral::GetCoverageRequest {
            radius_km: check_radius(self.radius_km)?,
            service_type: self.service_type.unwrap_or_default(),
        })
    }
}

/// A settlement outside every active facility's reach for a service type.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UncoveredSettlement {
    /// Settlement.
    pub(crate) name: String,
    /// Latitude, WGS 84.
    pub(crate) latitude: f64,
    /// Longitude, WGS 84.
    pub(crate) longitude: f64,
    /// The nearest active facility offering the service; `null` if there is none.
    #[schema(format = Uuid)]
    pub(crate) nearest_facility_id: Option<String>,
    /// How far it is, in km; `null` if there is none.
    pub(crate) nearest_distance_km: Option<f64>,
}

impl From<referral::UncoveredSettlement> for UncoveredSettlement {
    fn from(settlement: referral::UncoveredSettlement) -> Self {
        let nearest_facility_id = non_empty(settlement.nearest_facility_id);
        Self {
            name: settlement.name,
            latitude: settlement.latitude,
            longitude: settlement.longitude,
            nearest_distance_km: nearest_facility_id
                .as_ref()
                .map(|_| settlement.nearest_distance_km),
            nearest_facility_id,
        }
    }
}

/// Which settlements are within reach of an active facility offering a service.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Coverage {
    /// The radius applied, in km.
    pub(crate) radius_km: f64,
    /// Settlements of the gazetteer.
    pub(crate) settlements_total: u32,
    /// Of them, within the radius of an active facility offering the service.
    pub(crate) settlements_covered: u32,
    /// The others, farthest first.
    pub(crate) uncovered: Vec<UncoveredSettlement>,
}

impl From<referral::GetCoverageResponse> for Coverage {
    fn from(response: referral::GetCoverageResponse) -> Self {
        Self {
            radius_km: response.radius_km,
            settlements_total: response.settlements_total,
            settlements_covered: response.settlements_covered,
            uncovered: response
                .uncovered
                .into_iter()
                .map(UncoveredSettlement::from)
                .collect(),
        }
    }
}

/// A settlement of the gazetteer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Settlement {
    /// Name, as facilities and searches name it.
    pub(crate) name: String,
    /// English name.
    pub(crate) name_en: Option<String>,
    /// Latitude, WGS 84.
    pub(crate) latitude: f64,
    /// Longitude, WGS 84.
    pub(crate) longitude: f64,
}

/// The gazetteer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SettlementList {
    /// Settlements.
    pub(crate) items: Vec<Settlement>,
}

impl From<referral::ListSettlementsResponse> for SettlementList {
    fn from(response: referral::ListSettlementsResponse) -> Self {
        Self {
            items: response
                .settlements
                .into_iter()
                .map(|settlement| Settlement {
                    name: settlement.name,
                    name_en: non_empty(settlement.name_en),
                    latitude: settlement.latitude,
                    longitude: settlement.longitude,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_of(error: &HavenError) -> &str {
        &error.violations()[0].field
    }

    #[test]
    fn a_point_is_whole_and_on_the_globe() {
        for (latitude, longitude, field) in [
            (Some(40.0), None, "longitude"),
            (None, Some(49.0), "latitude"),
            (Some(90.5), Some(49.0), "latitude"),
            (Some(f64::NAN), Some(49.0), "latitude"),
            (Some(40.0), Some(-180.5), "longitude"),
            (Some(40.0), Some(f64::INFINITY), "longitude"),
        ] {
            let error = check_point(latitude, longitude).unwrap_err();
            assert_eq!(field_of(&error), field, "{latitude:?} {longitude:?}");
        }
        for (latitude, longitude) in [
            (None, None),
            (Some(-90.0), Some(180.0)),
            (Some(40.4), Some(49.9)),
        ] {
            assert!(check_point(latitude, longitude).is_ok());
        }
    }

    #[test]
    fn a_radius_is_positive_and_left_out_means_the_default() {
        assert_eq!(check_radius(None).unwrap(), 0.0);
        assert_eq!(check_radius(Some(25.0)).unwrap(), 25.0);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(field_of(&check_radius(Some(bad)).unwrap_err()), "radius_km");
        }
    }

    #[test]
    fn details_left_out_take_their_defaults() {
        let details: FacilityDetails = serde_json::from_value(
            json!({"name": "Shelter", "settlement": "Ganja", "service_types": ["shelter"]}),
        )
        .unwrap();
        let details = details.into_proto().unwrap();
        assert!(
            details.active == Some(true),
            "a new facility is active unless told otherwise"
        );
        assert_eq!(details.latitude, None);
        assert_eq!(details.capacity_total, 0);
        assert!(details.accepts.is_some());

        let create: CreateFacility = serde_json::from_value(json!({
            "organization_id": uuid::Uuid::nil(), "name": "Shelter", "settlement": "Ganja",
            "latitude": 40.68, "longitude": 46.36, "service_types": ["shelter"], "active": false,
        }))
        .unwrap();
        let create = create.into_proto().unwrap();
        assert_eq!(create.organization_id, uuid::Uuid::nil().to_string());
        let details = create.details.unwrap();
        assert_eq!(details.latitude, Some(40.68));
        assert_eq!(details.active, Some(false));
    }

    #[test]
    fn blank_list_items_are_named() {
        let details: FacilityDetails = serde_json::from_value(json!({
            "name": "Shelter", "settlement": "Ganja", "service_types": ["shelter"],
            "accepts": {"genders": ["female", " "]},
        }))
        .unwrap();
        assert_eq!(
            field_of(&details.into_proto().unwrap_err()),
            "accepts.genders[1]"
        );
    }

    #[test]
    fn a_facility_without_nearest_has_no_distance() {
        let uncovered = UncoveredSettlement::from(referral::UncoveredSettlement {
            name: "Lerik".to_owned(),
            latitude: 38.77,
            longitude: 48.41,
            nearest_facility_id: String::new(),
            nearest_distance_km: 0.0,
        });
        assert_eq!(uncovered.nearest_facility_id, None);
        assert_eq!(uncovered.nearest_distance_km, None);
    }
}
