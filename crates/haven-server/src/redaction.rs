//! Every gRPC response leaves a service with only the fields its caller may receive.
//!
//! [`RedactionLayer`] wraps the whole gRPC server, so no handler can forget it: for
//! a call to a Haven method it reads each response message as it streams out, looks
//! every field up in the classification table ([`crate::field_classes`]) and clears
//! the fields whose class none of the caller's roles may receive
//! (`haven_auth::fields::may_receive`). A field the table does not know is cleared
//! for everyone but services. The caller is the one [`AuthInterceptor`] authenticated
//! (handed over through a [`CallerSlot`]); a call it did not authenticate receives no
//! field at all (it fails before any message is sent anyway).
//!
//! Callers whose roles receive every class (case workers, supervisors, services) pay
//! nothing: their responses pass through untouched.
//!
//! [`AuthInterceptor`]: haven_auth::grpc::AuthInterceptor

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::Frame;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ReflectMessage, Value,
};
use tonic::Status;

use haven_auth::fields::any_may_receive;
use haven_auth::grpc::{CallerSlot, RefusalSink, RefusedCall};
use haven_auth::{FieldClass, Role};

use crate::field_classes::FIELD_CLASSES;

/// Length of a gRPC message frame's header: a compression flag and a 4-byte length.
const FRAME_HEADER: usize = 5;
/// Packages whose messages are Haven's own (the rest, such as
/// `google.protobuf.Timestamp`, carry no fields of their own to class).
const HAVEN_PACKAGE_PREFIX: &str = "haven.";

/// The descriptor pool of Haven's protos joined with the classification table.
#[derive(Debug)]
pub struct FieldClassifier {
    pool: DescriptorPool,
    classes: HashMap<&'static str, FieldClass>,
}

static CLASSIFIER: LazyLock<FieldClassifier> = LazyLock::new(|| {
    let pool = DescriptorPool::decode(haven_proto::FILE_DESCRIPTOR_SET)
        .unwrap_or_else(|_| DescriptorPool::new());
    FieldClassifier {
        pool,
        classes: FIELD_CLASSES.iter().copied().collect(),
    }
});

impl FieldClassifier {
    /// The classifier over the compiled protos and [`FIELD_CLASSES`].
    pub fn global() -> &'static FieldClassifier {
        &CLASSIFIER
    }

    /// The class of `field`, if the table names it.
    pub fn class_of(&self, field: &FieldDescriptor) -> Option<FieldClass> {
        self.classes.get(field.full_name()).copied()
    }

    /// The response message of the Haven method at gRPC `path`
    /// (`/haven.case.v1.CaseService/GetCase`); `None` for anything else (health,
    /// reflection).
    pub fn response_of(&self, path: &str) -> Option<MessageDescriptor> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        if !service.starts_with(HAVEN_PACKAGE_PREFIX) {
            return None;
        }
        let service = self.pool.get_service_by_name(service)?;
        let method = service
            .methods()
            .find(|candidate| candidate.name() == method)?;
        Some(method.output())
    }

    /// Every method of every Haven service.
    pub fn methods(&self) -> Vec<MethodDescriptor> {
        self.pool
            .services()
            .filter(|service| service.full_name().starts_with(HAVEN_PACKAGE_PREFIX))
            .flat_map(|service| service.methods().collect::<Vec<_>>())
            .collect()
    }

    /// Every response message of every Haven method, and the messages inside them.
    pub fn response_messages(&self) -> Vec<MessageDescriptor> {
        let mut found: Vec<MessageDescriptor> = Vec::new();
        let mut stack: Vec<MessageDescriptor> = self
            .pool
            .services()
            .filter(|service| service.full_name().starts_with(HAVEN_PACKAGE_PREFIX))
            .flat_map(|service| {
                service
                    .methods()
                    .map(|method| method.output())
                    .collect::<Vec<_>>()
            })
            .collect();
        while let Some(message) = stack.pop() {
            if !message.full_name().starts_with(HAVEN_PACKAGE_PREFIX)
                || found
                    .iter()
                    .any(|seen| seen.full_name() == message.full_name())
            {
                continue;
            }
            for field in message.fields() {
                if let Kind::Message(inner) = field.kind() {
                    stack.push(inner);
                }
            }
            found.push(message);
        }
        found.sort_by(|a, b| a.full_name().cmp(b.full_name()));
        found
    }

    /// Fields a response can carry that the table does not class.
    pub fn unclassified(&self) -> Vec<String> {
        self.response_messages()
            .iter()
            .flat_map(|message| message.fields().collect::<Vec<_>>())
            .filter(|field| self.class_of(field).is_none())
            .map(|field| field.full_name().to_owned())
            .collect()
    }

    /// Lines of the table that name no field a response can carry.
    pub fn stale(&self) -> Vec<&'static str> {
        let known: Vec<String> = self
            .response_messages()
            .iter()
            .flat_map(|message| {
                message
                    .fields()
                    .map(|field| field.full_name().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        FIELD_CLASSES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !known.iter().any(|field| field == name))
            .collect()
    }

    /// Clears, in `message` and the messages inside it, every field whose class
    /// `roles` may not receive, and every field the table does not class unless a
    /// role is [`Role::Service`].
    pub fn redact(&self, message: &mut DynamicMessage, roles: &[Role]) {
        let set: Vec<FieldDescriptor> = message.fields().map(|(field, _)| field).collect();
        for field in set {
            let keep = match self.class_of(&field) {
                Some(class) => any_may_receive(roles, class),
                None => roles.contains(&Role::Service),
            };
            if keep {
                self.redact_value(message.get_field_mut(&field), roles);
            } else {
                message.clear_field(&field);
            }
        }
    }

    fn redact_value(&self, value: &mut Value, roles: &[Role]) {
        match value {
            Value::Message(inner)
                if inner
                    .descriptor()
                    .full_name()
                    .starts_with(HAVEN_PACKAGE_PREFIX) =>
            {
                self.redact(inner, roles);
            }
            Value::List(items) => {
                for item in items {
                    self.redact_value(item, roles);
                }
            }
            Value::Map(entries) => {
                for item in entries.values_mut() {
                    self.redact_value(item, roles);
                }
            }
            _ => {}
        }
    }
}

/// Whether `roles` receive every class of field, so their responses need no work.
fn receives_everything(roles: &[Role]) -> bool {
    FieldClass::ALL
        .into_iter()
        .all(|class| any_may_receive(roles, class))
}

/// Wraps a gRPC server so that every response is filtered by the caller's roles, and
/// every Haven call refused to an authenticated caller is reported to the port's
/// refusal sink (when it has one).
#[derive(Debug, Clone, Default)]
pub struct RedactionLayer {
    refusals: Option<Arc<dyn RefusalSink>>,
}

impl RedactionLayer {
    /// The layer, reporting refused calls to `refusals`.
    pub fn new(refusals: Option<Arc<dyn RefusalSink>>) -> Self {
        Self { refusals }
    }
}

impl<S> tower::Layer<S> for RedactionLayer {
    type Service = Redaction<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Redaction {
            inner,
            refusals: self.refusals.clone(),
        }
    }
}

/// The service [`RedactionLayer`] builds.
#[derive(Debug, Clone)]
pub struct Redaction<S> {
    inner: S,
    refusals: Option<Arc<dyn RefusalSink>>,
}

/// `grpc-status` of a refused call: `NOT_FOUND` (5) or `PERMISSION_DENIED` (7).
fn refusal(headers: &http::HeaderMap) -> Option<bool> {
    match headers.get("grpc-status")?.as_bytes() {
        b"5" => Some(true),
        b"7" => Some(false),
        _ => None,
    }
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, ResponseBody> tower::Service<http::Request<B>> for Redaction<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
    ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResponseBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let Some(message) = FieldClassifier::global().response_of(request.uri().path()) else {
            let response = self.inner.call(request);
            return Box::pin(async move { Ok(response.await?.map(tonic::body::Body::new)) });
        };
        let slot = CallerSlot::default();
        request.extensions_mut().insert(slot.clone());
        let method = request.uri().path().to_owned();
        let request_id = haven_auth::request_id::accept_or_generate(
            request
                .headers()
                .get(haven_auth::grpc::REQUEST_ID)
                .and_then(|value| value.to_str().ok()),
        );
        let refusals = self.refusals.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if let (Some(sink), Some(principal), Some(not_found)) =
                (&refusals, slot.principal(), refusal(response.headers()))
            {
                sink.record(RefusedCall {
                    principal: principal.clone(),
                    method,
                    not_found,
                    request_id,
                });
            }
            let roles = slot
                .principal()
                .map(|caller| caller.roles.clone())
                .unwrap_or_default();
            if receives_everything(&roles) {
                return Ok(response.map(tonic::body::Body::new));
            }
            Ok(response.map(|body| {
                tonic::body::Body::new(RedactingBody {
                    inner: tonic::body::Body::new(body),
                    message,
                    roles,
                    pending: BytesMut::new(),
                })
            }))
        })
    }
}

/// A response body whose messages are filtered as they pass.
struct RedactingBody {
    inner: tonic::body::Body,
    message: MessageDescriptor,
    roles: Vec<Role>,
    /// Bytes received but not yet a whole message.
    pending: BytesMut,
}

impl RedactingBody {
    /// The next whole message in `pending`, filtered and framed again.
    fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.pending.len() < FRAME_HEADER {
            return Ok(None);
        }
        let compressed = self.pending[0];
        let length = u32::from_be_bytes([
            self.pending[1],
            self.pending[2],
            self.pending[3],
            self.pending[4],
        ]) as usize;
        if self.pending.len() < FRAME_HEADER + length {
            return Ok(None);
        }
        if compressed != 0 {
            // Haven's servers never compress responses; a compressed message cannot be
            // read here, so it is not sent at all.
            return Err(Status::internal("response cannot be filtered"));
        }
        self.pending.advance(FRAME_HEADER);
        let encoded = self.pending.split_to(length).freeze();
        let mut message = DynamicMessage::decode(self.message.clone(), encoded)
            .map_err(|_| Status::internal("response cannot be filtered"))?;
        FieldClassifier::global().redact(&mut message, &self.roles);
        let body = message.encode_to_vec();
        let mut framed = BytesMut::with_capacity(FRAME_HEADER + body.len());
        framed.put_u8(0);
        framed.put_u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
        framed.put_slice(&body);
        Ok(Some(framed.freeze()))
    }
}

impl http_body::Body for RedactingBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        loop {
            match this.next_message() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(Frame::data(message)))),
                Ok(None) => {}
                Err(status) => return Poll::Ready(Some(Err(status))),
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => {
                        let bytes = data.copy_to_bytes(data.remaining());
                        this.pending.extend_from_slice(&bytes);
                    }
                    Err(trailers) => {
                        if !this.pending.is_empty() {
                            return Poll::Ready(Some(Err(Status::internal(
                                "response cannot be filtered",
                            ))));
                        }
                        return Poll::Ready(Some(Ok(trailers)));
                    }
                },
                Some(Err(status)) => return Poll::Ready(Some(Err(status))),
                None => {
                    if !this.pending.is_empty() {
                        return Poll::Ready(Some(Err(Status::internal(
                            "response cannot be filtered",
                        ))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_pool_holds_every_haven_service() {
        let classifier = FieldClassifier::global();
        assert!(
            classifier
                .response_of("/haven.intake.v1.IntakeService/GetScreening")
                .is_some()
        );
        assert!(
            classifier
                .response_of("/grpc.health.v1.Health/Check")
                .is_none()
        );
        assert!(classifier.response_messages().len() > 50);
    }

    #[test]
    fn every_field_a_response_can_carry_is_classed() {
        let unclassified = FieldClassifier::global().unclassified();
        assert!(
            unclassified.is_empty(),
            "class these fields in field_classes.rs: {unclassified:#?}"
        );
    }

    #[test]
    fn every_line_of_the_table_names_a_field() {
        let stale = FieldClassifier::global().stale();
        assert!(stale.is_empty(), "no such response fields: {stale:#?}");
    }

    #[test]
    fn an_auditor_receives_no_guardian_and_no_reasons() {
        use haven_proto::intake::v1 as pb;
        let screening = pb::Screening {
            id: "s-1".into(),
            settlement: "Ganja".into(),
            guardian: Some(pb::Guardian {
                name: "Canary Guardian".into(),
                relationship: "aunt".into(),
                contact: "+994 50 000 00 00".into(),
            }),
            decisions: vec![pb::Decision {
                id: "d-1".into(),
                reasons: "canary reasons".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let descriptor = FieldClassifier::global()
            .response_of("/haven.intake.v1.IntakeService/GetScreening")
            .expect("GetScreening");
        let response = pb::GetScreeningResponse {
            screening: Some(screening),
        };
        let filter = |roles: &[Role]| {
            let mut message =
                DynamicMessage::decode(descriptor.clone(), response.encode_to_vec().as_slice())
                    .expect("decodes");
            FieldClassifier::global().redact(&mut message, roles);
            pb::GetScreeningResponse::decode(message.encode_to_vec().as_slice())
                .expect("decodes")
                .screening
                .expect("screening stays")
        };

        let audited = filter(&[Role::Auditor]);
        assert_eq!(audited.id, "s-1");
        assert!(audited.guardian.is_none());
        assert_eq!(audited.settlement, "");
        assert_eq!(audited.decisions.len(), 1);
        assert_eq!(audited.decisions[0].id, "d-1");
        assert_eq!(audited.decisions[0].reasons, "");

        let worked = filter(&[Role::CaseWorker]);
        assert_eq!(worked.guardian.expect("guardian").name, "Canary Guardian");
        assert_eq!(worked.decisions[0].reasons, "canary reasons");

        // An auditor who is also a case worker receives what the case worker does.
        let both = filter(&[Role::Auditor, Role::CaseWorker]);
        assert!(both.guardian.is_some());
    }
}
