//! Black-box tests of the gateway: a real server on 127.0.0.1:0, real HTTP, and
//! either no backends at all or a fake intake service speaking real gRPC.

// Test helpers fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod case_work;
mod errors;
mod fake_backend;
mod fake_referral;
mod fake_reporting;
mod forwarding;
mod helpers;
mod idempotency;
mod operations;
mod rate_limit;
mod referrals;
mod reports;
mod tls;
