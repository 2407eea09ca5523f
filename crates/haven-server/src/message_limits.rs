//! The message size limit of every generated gRPC server Haven serves.

use haven_proto::case::v1::case_service_server::CaseServiceServer;
use haven_proto::common::v1::event_feed_service_server::EventFeedServiceServer;
use haven_proto::intake::v1::clock_service_server::ClockServiceServer;
use haven_proto::intake::v1::indicator_set_service_server::IndicatorSetServiceServer;
use haven_proto::intake::v1::intake_service_server::IntakeServiceServer;
use haven_proto::referral::v1::referral_service_server::ReferralServiceServer;
use haven_proto::reporting::v1::reporting_service_server::ReportingServiceServer;

/// A generated gRPC server whose messages can be limited in size, both the requests
/// it decodes and the responses it encodes. tonic generates these limits as methods
/// of each server type, not of a trait; this trait lets [`crate::Service`] apply
/// [`crate::MAX_MESSAGE_BYTES`] to every service of a port.
pub trait MessageLimits {
    /// The server, refusing to decode or encode a message over `max_bytes`.
    #[must_use]
    fn limit_messages(self, max_bytes: usize) -> Self;
}

/// Implements [`MessageLimits`] by the generated methods of each listed server.
macro_rules! message_limits {
    ($($server:ident),+ $(,)?) => {
        $(
            impl<T> MessageLimits for $server<T> {
                fn limit_messages(self, max_bytes: usize) -> Self {
                    self.max_decoding_message_size(max_bytes)
                        .max_encoding_message_size(max_bytes)
                }
            }
        )+
    };
}

message_limits!(
    IntakeServiceServer,
    ClockServiceServer,
    IndicatorSetServiceServer,
    CaseServiceServer,
    ReferralServiceServer,
    ReportingServiceServer,
    EventFeedServiceServer,
);
