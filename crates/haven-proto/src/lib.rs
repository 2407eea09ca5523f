//! Generated gRPC contracts of Haven, compiled from `proto/haven/**`.
//!
//! One module per versioned package (`haven.case.v1` → [`case::v1`]), plus the
//! encoded file descriptor set that every service serves through gRPC reflection.
//!
//! With the `rest` feature, every message also derives `serde::Serialize` and
//! `utoipa::ToSchema`, and every enum `Serialize`, `Deserialize` and `ToSchema`, in
//! the REST API's spelling (see [`rest`]), so the gateway returns these types as its
//! JSON bodies.

/// `haven.common.v1`: the event feed every domain service exposes, paging.
pub mod common {
    #[allow(missing_docs, clippy::all, missing_debug_implementations)]
    pub mod v1 {
        tonic::include_proto!("haven.common.v1");
    }
}

/// `haven.intake.v1`: screenings, consent, identification decisions.
pub mod intake {
    #[allow(missing_docs, clippy::all, missing_debug_implementations)]
    pub mod v1 {
        tonic::include_proto!("haven.intake.v1");
    }
}

/// `haven.case.v1`: cases.
pub mod case {
    #[allow(missing_docs, clippy::all, missing_debug_implementations)]
    pub mod v1 {
        tonic::include_proto!("haven.case.v1");
    }
}

/// `haven.referral.v1`: directory of organisations, referrals.
pub mod referral {
    #[allow(missing_docs, clippy::all, missing_debug_implementations)]
    pub mod v1 {
        tonic::include_proto!("haven.referral.v1");
    }
}

/// `haven.reporting.v1`: statistics from events.
pub mod reporting {
    #[allow(missing_docs, clippy::all, missing_debug_implementations)]
    pub mod v1 {
        tonic::include_proto!("haven.reporting.v1");
    }
}

/// serde helpers of the REST spelling, named by the generated field attributes.
#[cfg(feature = "rest")]
pub mod rest;

#[cfg(feature = "rest")]
include!(concat!(env!("OUT_DIR"), "/rest_enums.rs"));

/// Encoded `FileDescriptorSet` of every Haven proto file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("haven_descriptor");

/// A protobuf timestamp from a `time` value.
pub fn timestamp(at: time::OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.unix_timestamp(),
        nanos: i32::try_from(at.nanosecond()).unwrap_or_default(),
    }
}

/// A `time` value from a protobuf timestamp; `None` when out of range.
pub fn from_timestamp(at: &prost_types::Timestamp) -> Option<time::OffsetDateTime> {
    let nanos = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}
