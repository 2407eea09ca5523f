//! gRPC reflection that describes exactly the services of one port, over both
//! `grpc.reflection.v1` and the older `grpc.reflection.v1alpha` many clients still
//! speak.

use tonic_reflection::server::v1::{
    ServerReflection as ReflectionV1, ServerReflectionServer as ServerV1,
};
use tonic_reflection::server::v1alpha::{
    ServerReflection as ReflectionV1alpha, ServerReflectionServer as ServerV1alpha,
};

/// Services every port serves besides its own: health and both reflection versions.
pub(crate) const INFRASTRUCTURE_SERVICES: [&str; 3] = [
    tonic_health::pb::health_server::SERVICE_NAME,
    tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME,
    tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME,
];

/// Both reflection services, listing `service_names` and
/// [`INFRASTRUCTURE_SERVICES`]; every listed name resolves to its file.
pub(crate) fn services(
    service_names: &[&'static str],
) -> anyhow::Result<(
    ServerV1<impl ReflectionV1>,
    ServerV1alpha<impl ReflectionV1alpha>,
)> {
    let v1 = builder(service_names).build_v1()?;
    let v1alpha = builder(service_names).build_v1alpha()?;
    Ok((v1, v1alpha))
}

fn builder(service_names: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        // Both versions' descriptors are registered here, so each server also
        // resolves the other's name.
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(haven_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    service_names
        .iter()
        .copied()
        .chain(INFRASTRUCTURE_SERVICES)
        .fold(builder, |builder, name| builder.with_service_name(name))
}
