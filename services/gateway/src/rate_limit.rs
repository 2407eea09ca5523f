//! Per-caller rate limit: a token bucket per authenticated user of an organisation,
//! or per client address for requests without a valid token.
//!
//! The buckets live in this gateway's memory: with N replicas behind a load
//! balancer a caller gets up to N times the configured rate. That is the intended
//! trade-off (no shared store on the request path); size the limit per replica.
//!
//! Only a token that verifies picks a user's bucket. An invalid, expired or forged
//! token is keyed by the client address, so varying tokens does not buy more
//! requests. The address is the TCP peer: behind a proxy every anonymous caller
//! shares the proxy's bucket (forwarding headers are not trusted).
//!
//! Memory is bounded: full buckets (idle long enough to have refilled) are dropped
//! by a periodic sweep, which loses nothing since a new bucket starts full; past
//! [`MAX_BUCKETS`] live buckets, new callers share one overflow bucket.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use haven_auth::http::Authenticated;
use haven_config::GatewaySettings;
use haven_error::{ErrorCode, HavenError};
use http::{HeaderValue, header};
use tokio::net::TcpListener;
use uuid::Uuid;

/// Most callers with a bucket of their own (a bucket is about a hundred bytes);
/// the overflow bucket comes on top.
pub(crate) const MAX_BUCKETS: usize = 100_000;
/// Paths never limited: probes must work while a caller is throttled. (Metrics are
/// on a listener of their own.) `/status` is not a probe and calls every backend,
/// so it is limited like any other anonymous call.
const EXEMPT_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// The client's address as seen on the TCP connection, set by the server for every
/// connection (plain or TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

impl Connected<IncomingStream<'_, TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// Whose bucket a request draws from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// A user authenticated by a valid token.
    User {
        organization_id: Uuid,
        subject: String,
    },
    /// Anyone else, by client address (IPv6 by /64, what one host usually holds).
    Address(IpAddr),
    /// Requests without a known address (in-process calls).
    Unknown,
    /// New callers while the table is full.
    Overflow,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Buckets {
    by_key: HashMap<Key, Bucket>,
    last_sweep: Instant,
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Go ahead.
    Allowed,
    /// Over the limit; a token is back after this many whole seconds (at least 1).
    Limited {
        /// Value of the `Retry-After` header.
        retry_after_seconds: u64,
    },
}

/// Token buckets refilled at `per_minute / 60` tokens a second up to `burst`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    capacity: f64,
    refill_per_second: f64,
    /// Time for an empty bucket to refill; also how often idle buckets are swept.
    refill_time: Duration,
    max_buckets: usize,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    /// A limiter from `gateway.rate_limit_per_minute` and `gateway.rate_limit_burst`.
    pub(crate) fn new(settings: &GatewaySettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            settings.rate_limit_per_minute > 0,
            "gateway.rate_limit_per_minute must be at least 1"
        );
        anyhow::ensure!(
            settings.rate_limit_burst > 0,
            "gateway.rate_limit_burst must be at least 1"
        );
        Ok(Self::with_limits(
            settings.rate_limit_per_minute,
            settings.rate_limit_burst,
            MAX_BUCKETS,
        ))
    }

    fn with_limits(per_minute: u32, burst: u32, max_buckets: usize) -> Self {
        let capacity = f64::from(burst);
        let refill_per_second = f64::from(per_minute) / 60.0;
        Self {
            capacity,
            refill_per_second,
            refill_time: Duration::from_secs_f64(capacity / refill_per_second),
            max_buckets,
            buckets: Mutex::new(Buckets {
                by_key: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Takes a token from `key`'s bucket if there is one.
    fn check(&self, key: Key, now: Instant) -> Decision {
        // A poisoned lock only means another request panicked mid-update; the
        // numbers are still usable.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.saturating_duration_since(buckets.last_sweep) >= self.refill_time {
            self.sweep(&mut buckets, now);
        }
        let key = if buckets.by_key.contains_key(&key) || buckets.by_key.len() < self.max_buckets {
            key
        } else {
            Key::Overflow
        };
        let bucket = buckets.by_key.entry(key).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.refill_per_second).min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Decision::Allowed;
        }
        let wait = (1.0 - bucket.tokens) / self.refill_per_second;
        Decision::Limited {
            // Whole seconds, rounded up: retrying then always finds a token.
            retry_after_seconds: (wait.ceil() as u64).max(1),
        }
    }

    /// Drops buckets that have refilled completely: forgetting them changes nothing.
    fn sweep(&self, buckets: &mut Buckets, now: Instant) {
        buckets.by_key.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * self.refill_per_second < self.capacity
        });
        buckets.last_sweep = now;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .by_key
            .len()
    }
}

/// Middleware: answers `429 Too Many Requests` with `Retry-After` once the caller's
/// bucket is empty. Health probes are exempt.
///
/// A verified caller is passed on to the [`Authenticated`] extractor so the token
/// is not verified twice.
pub(crate) async fn limit<S: LimitState>(
    State(state): State<S>,
    mut request: Request,
    next: Next,
) -> Response {
    if EXEMPT_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let key = match authenticate(&state, &request) {
        Some(authenticated) => {
            let key = Key::User {
                organization_id: authenticated.principal.organization_id,
                subject: authenticated.principal.subject.clone(),
            };
            request.extensions_mut().insert(authenticated);
            key
        }
        None => request
            .extensions()
            .get::<ConnectInfo<ClientAddr>>()
            .map_or(Key::Unknown, |ConnectInfo(ClientAddr(address))| {
                Key::Address(client_network(address.ip()))
            }),
    };
    match state.rate_limiter().check(key, Instant::now()) {
        Decision::Allowed => next.run(request).await,
        Decision::Limited {
            retry_after_seconds,
        } => too_many_requests(retry_after_seconds),
    }
}

/// What the limiter needs of the gateway's state: its buckets, and the verifier that
/// tells a caller's token from none.
pub(crate) trait LimitState: Clone + Send + Sync + 'static {
    /// The buckets.
    fn rate_limiter(&self) -> &RateLimiter;
    /// The verifier of user tokens.
    fn verifier(&self) -> &haven_auth::TokenVerifier;
}

/// The caller of a request with a valid bearer token, if any.
pub(crate) fn authenticate(state: &impl LimitState, request: &Request) -> Option<Authenticated> {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = haven_auth::bearer_token(header)?;
    let principal = state.verifier().verify_user(token).ok()?;
    Some(Authenticated {
        principal,
        bearer: token.to_owned(),
    })
}

/// The address itself for IPv4, the /64 network for IPv6.
fn client_network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::from(segments)
            }
        },
    }
}

fn too_many_requests(retry_after_seconds: u64) -> Response {
    tracing::debug!(retry_after_seconds, "rate limited");
    let mut response = HavenError::new(
        ErrorCode::RateLimited,
        format!("too many requests: retry after {retry_after_seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    response
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn user(subject: &str) -> Key {
        Key::User {
            organization_id: Uuid::nil(),
            subject: subject.to_owned(),
        }
    }

    #[test]
    fn a_burst_is_allowed_then_refused_until_a_token_is_back() {
        // 60 a minute: one token a second.
        let limiter = RateLimiter::with_limits(60, 3, 10);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(user("a"), start), Decision::Allowed);
        }
        assert_eq!(
            limiter.check(user("a"), start),
            Decision::Limited {
                retry_after_seconds: 1
            }
        );
        // Another caller has its own bucket.
        assert_eq!(limiter.check(user("b"), start), Decision::Allowed);
        let later = start + Duration::from_millis(1_001);
        assert_eq!(limiter.check(user("a"), later), Decision::Allowed);
        assert!(matches!(
            limiter.check(user("a"), later),
            Decision::Limited { .. }
        ));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        // 6 a minute: one token every ten seconds.
        let limiter = RateLimiter::with_limits(6, 1, 10);
        let start = Instant::now();
        assert_eq!(limiter.check(user("a"), start), Decision::Allowed);
        assert_eq!(
            limiter.check(user("a"), start + Duration::from_millis(500)),
            Decision::Limited {
                retry_after_seconds: 10
            }
        );
    }

    #[test]
    fn idle_buckets_are_swept_and_the_table_is_bounded() {
        let limiter = RateLimiter::with_limits(60, 2, 3);
        let start = Instant::now();
        for name in ["a", "b", "c"] {
            assert_eq!(limiter.check(user(name), start), Decision::Allowed);
        }
        // The table is full: new callers share the overflow bucket.
        assert_eq!(limiter.check(user("d"), start), Decision::Allowed);
        assert_eq!(limiter.check(user("e"), start), Decision::Allowed);
        assert!(matches!(
            limiter.check(user("f"), start),
            Decision::Limited { .. }
        ));
        // Three callers and the shared overflow bucket.
        assert_eq!(limiter.len(), 4);
        // Once every bucket has refilled, the sweep forgets them all.
        let later = start + Duration::from_secs(3);
        assert_eq!(limiter.check(user("d"), later), Decision::Allowed);
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn ipv6_callers_are_keyed_by_their_64_network() {
        let one = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 3, 4, 5, 6));
        let same_network = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        let other_network = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 3, 4, 5, 6));
        assert_eq!(client_network(one), client_network(same_network));
        assert_ne!(client_network(one), client_network(other_network));
        let mapped = IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1));
        assert_eq!(client_network(mapped), IpAddr::from([127, 0, 0, 1]));
    }
}
