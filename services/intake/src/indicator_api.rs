//! The gRPC face of indicator sets.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use haven_auth::Action;
use haven_auth::grpc::principal;
use haven_error::HavenError;
use haven_proto::intake::v1 as pb;
use haven_proto::intake::v1::indicator_set_service_server::IndicatorSetService;

use crate::assessment::IndicatorSetDefinition;
use crate::store::ScreeningStore;

/// Implements `haven.intake.v1.IndicatorSetService`.
#[derive(Debug, Clone)]
pub struct IndicatorSetApi {
    store: Arc<dyn ScreeningStore>,
}

impl IndicatorSetApi {
    /// The API over the screening store (sets live with screenings).
    pub fn new(store: Arc<dyn ScreeningStore>) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl IndicatorSetService for IndicatorSetApi {
    async fn list_indicator_sets(
        &self,
        request: Request<pb::ListIndicatorSetsRequest>,
    ) -> Result<Response<pb::ListIndicatorSetsResponse>, Status> {
        principal(&request)?.require(Action::IndicatorSetRead)?;
        let sets = self.store.list_indicator_sets().await?;
        Ok(Response::new(pb::ListIndicatorSetsResponse {
            sets: sets.iter().map(|set| set.to_proto()).collect(),
        }))
    }

    async fn get_indicator_set(
        &self,
        request: Request<pb::GetIndicatorSetRequest>,
    ) -> Result<Response<pb::GetIndicatorSetResponse>, Status> {
        principal(&request)?.require(Action::IndicatorSetRead)?;
        let version = match request.get_ref().version {
            0 => None,
            version => {
                Some(i32::try_from(version).map_err(|_| HavenError::not_found("indicator set"))?)
            }
        };
        let set = self
            .store
            .get_indicator_set(version)
            .await?
            .ok_or_else(|| HavenError::not_found("indicator set"))?;
        Ok(Response::new(pb::GetIndicatorSetResponse {
            set: Some(set.to_proto()),
        }))
    }

    async fn publish_indicator_set(
        &self,
        request: Request<pb::PublishIndicatorSetRequest>,
    ) -> Result<Response<pb::PublishIndicatorSetResponse>, Status> {
        let caller = principal(&request)?;
        caller.require(Action::IndicatorSetPublish)?;
        let mut message = request.into_inner();
        let once = haven_audit::context::caller_key(
            &caller,
            "indicator_set.publish",
            &mut message,
            |message| &mut message.idempotency_key,
        )?;
        let definition = IndicatorSetDefinition::from_proto(message.name, message.groups)?;
        let set = self
            .store
            .publish_indicator_set(definition, &caller.subject, once.as_ref())
            .await?;
        Ok(Response::new(pb::PublishIndicatorSetResponse {
            set: Some(set.record.to_proto()),
            replayed: set.replayed,
        }))
    }
}
