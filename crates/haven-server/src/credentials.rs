//! The size limit of credentials, shared by the REST gateway and the gRPC servers.
//!
//! A signed token can be padded to any size; forwarding a huge one costs every hop
//! memory and, past HTTP/2's header limits, ends in errors no client can read. Both
//! edges refuse it up front with a clear error instead.

use haven_error::{ErrorCode, HavenError};

/// Longest `authorization` header (REST) or metadata value (gRPC) accepted, in
/// bytes. Real tokens are well under 2 KiB.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// Largest header list a gRPC server accepts over HTTP/2: room above
/// [`MAX_AUTHORIZATION_BYTES`] so an oversized token is answered with a gRPC status.
pub const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// Whether the `authorization` values of a request, together, exceed the limit.
pub fn authorization_too_large<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> bool {
    values.into_iter().map(<[u8]>::len).sum::<usize>() > MAX_AUTHORIZATION_BYTES
}

/// The message both edges give for an oversized credential.
pub fn oversized_authorization_message() -> String {
    format!("the authorization header is longer than {MAX_AUTHORIZATION_BYTES} bytes")
}

/// Interceptor run before every service of a gRPC port (health and reflection
/// included): refuses oversized `authorization` metadata with UNAUTHENTICATED.
#[allow(clippy::result_large_err, reason = "tonic's interceptor signature")]
pub(crate) fn refuse_oversized(
    request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    let values = request
        .metadata()
        .get_all("authorization")
        .iter()
        .map(|value| value.as_encoded_bytes());
    if authorization_too_large(values) {
        return Err(HavenError::new(
            ErrorCode::Unauthenticated,
            oversized_authorization_message(),
        )
        .into_status());
    }
    Ok(request)
}
