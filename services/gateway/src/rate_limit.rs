//! Per-caller rate limit: governor's keyed GCRA limiter, one state per
//! authenticated user of an organisation, or per client address for requests
//! without a valid token. GCRA is a token bucket kept as one timestamp: a caller may
//! make `gateway.rate_limit_burst` requests at once, and gets them back at
//! `gateway.rate_limit_per_minute`.
//!
//! The states live in this gateway's memory: with N replicas behind a load
//! balancer a caller gets up to N times the configured rate. That is the intended
//! trade-off (no shared store on the request path); size the limit per replica.
//!
//! Only a token that verifies picks a user's state. An invalid, expired or forged
//! token is keyed by the client address, so varying tokens does not buy more
//! requests. The address is the TCP peer: behind a proxy every anonymous caller
//! shares the proxy's state (forwarding headers are not trusted).
//!
//! Memory is bounded: states that have refilled completely (idle long enough) are
//! dropped by a periodic sweep, which loses nothing since a new state starts full;
//! past [`MAX_KEYS`] callers, new callers share one overflow state.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use governor::Quota;
use governor::clock::{Clock, DefaultClock, Reference as _};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::{DefaultKeyedStateStore, ShrinkableKeyedStateStore};
use haven_auth::http::Authenticated;
use haven_config::GatewaySettings;
use haven_error::{ErrorCode, HavenError};
use http::{HeaderValue, header};
use tokio::net::TcpListener;
use uuid::Uuid;

/// Most callers with a state of their own (a state is about a hundred bytes); the
/// overflow state comes on top.
pub(crate) const MAX_KEYS: usize = 100_000;
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

/// Whose state a request draws from.
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

static OVERFLOW: Key = Key::Overflow;

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Go ahead.
    Allowed,
    /// Over the limit; the caller's next request conforms after this many whole
    /// seconds (at least 1).
    Limited {
        /// Value of the `Retry-After` header.
        retry_after_seconds: u64,
    },
}

/// Governor's keyed store with a ceiling: once it holds `max_keys` callers, a caller
/// it does not hold yet draws from the shared [`Key::Overflow`] state, so a flood of
/// new addresses cannot grow the table without bound.
struct BoundedStore {
    states: DefaultKeyedStateStore<Key>,
    max_keys: usize,
}

impl StateStore for BoundedStore {
    type Key = Key;

    fn measure_and_replace<T, F, E>(&self, key: &Key, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        // Concurrent new callers may overshoot the ceiling by a few: it bounds
        // memory, it is no quota.
        let key = if self.states.contains_key(key) || self.states.len() < self.max_keys {
            key
        } else {
            &OVERFLOW
        };
        self.states.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<Key> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&self.states, drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&self.states);
    }

    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&self.states)
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&self.states)
    }
}

/// Counts only: the keys are users and addresses, not for logs.
impl fmt::Debug for BoundedStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("BoundedStore")
            .field("keys", &self.states.len())
            .field("max_keys", &self.max_keys)
            .finish()
    }
}

/// One GCRA state per caller: `burst` requests at once, one more every
/// `60 / per_minute` seconds.
#[derive(Debug)]
pub(crate) struct RateLimiter<C: Clock = DefaultClock> {
    governor: governor::RateLimiter<Key, BoundedStore, C, NoOpMiddleware<C::Instant>>,
    /// When the limiter was made; sweeps are timed from it.
    started: C::Instant,
    /// Time for an empty state to refill: how often refilled states are swept.
    sweep_every: Nanos,
    /// Nanoseconds after `started` when the next sweep is due.
    next_sweep: AtomicU64,
}

impl RateLimiter {
    /// A limiter from `gateway.rate_limit_per_minute` and `gateway.rate_limit_burst`.
    pub(crate) fn new(settings: &GatewaySettings) -> anyhow::Result<Self> {
        let per_minute = NonZeroU32::new(settings.rate_limit_per_minute)
            .context("gateway.rate_limit_per_minute must be at least 1")?;
        let burst = NonZeroU32::new(settings.rate_limit_burst)
            .context("gateway.rate_limit_burst must be at least 1")?;
        Ok(Self::with_clock(
            per_minute,
            burst,
            MAX_KEYS,
            DefaultClock::default(),
        ))
    }
}

impl<C: Clock> RateLimiter<C> {
    fn with_clock(per_minute: NonZeroU32, burst: NonZeroU32, max_keys: usize, clock: C) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let sweep_every = Nanos::from(quota.burst_size_replenished_in());
        let started = clock.now();
        let store = BoundedStore {
            states: DefaultKeyedStateStore::default(),
            max_keys,
        };
        Self {
            governor: governor::RateLimiter::new(quota, store, clock),
            started,
            sweep_every,
            next_sweep: AtomicU64::new(sweep_every.as_u64()),
        }
    }

    /// Counts a request against `key`'s state if it conforms.
    fn check(&self, key: &Key) -> Decision {
        self.sweep_if_due();
        match self.governor.check_key(key) {
            Ok(()) => Decision::Allowed,
            Err(not_until) => Decision::Limited {
                retry_after_seconds: whole_seconds(
                    not_until.wait_time_from(self.governor.clock().now()),
                ),
            },
        }
    }

    /// Once per refill time, forgets the states that have refilled completely:
    /// a new state starts full, so forgetting them changes nothing.
    fn sweep_if_due(&self) {
        let now = self
            .governor
            .clock()
            .now()
            .duration_since(self.started)
            .as_u64();
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        // One request sweeps; the others go on.
        let next = now.saturating_add(self.sweep_every.as_u64());
        if self
            .next_sweep
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.governor.retain_recent();
        self.governor.shrink_to_fit();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.governor.len()
    }
}

/// Whole seconds, rounded up and at least 1: retrying then always conforms.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Middleware: answers `429 Too Many Requests` with `Retry-After` once the caller
/// has used up its burst. Health probes are exempt.
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
    match state.rate_limiter().check(&key) {
        Decision::Allowed => next.run(request).await,
        Decision::Limited {
            retry_after_seconds,
        } => too_many_requests(retry_after_seconds),
    }
}

/// What the limiter needs of the gateway's state: its limiter, and the verifier that
/// tells a caller's token from none.
pub(crate) trait LimitState: Clone + Send + Sync + 'static {
    /// The per-caller limiter.
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

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn user(subject: &str) -> Key {
        Key::User {
            organization_id: Uuid::nil(),
            subject: subject.to_owned(),
        }
    }

    /// A limiter on a clock the test moves.
    fn limiter(
        per_minute: u32,
        burst: u32,
        max_keys: usize,
    ) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(
            NonZeroU32::new(per_minute).unwrap(),
            NonZeroU32::new(burst).unwrap(),
            max_keys,
            clock.clone(),
        );
        (limiter, clock)
    }

    #[test]
    fn a_burst_is_allowed_then_refused_until_a_token_is_back() {
        // 60 a minute: one request a second.
        let (limiter, clock) = limiter(60, 3, 10);
        for _ in 0..3 {
            assert_eq!(limiter.check(&user("a")), Decision::Allowed);
        }
        assert_eq!(
            limiter.check(&user("a")),
            Decision::Limited {
                retry_after_seconds: 1
            }
        );
        // Another caller has its own state.
        assert_eq!(limiter.check(&user("b")), Decision::Allowed);
        clock.advance(Duration::from_millis(1_001));
        assert_eq!(limiter.check(&user("a")), Decision::Allowed);
        assert!(matches!(
            limiter.check(&user("a")),
            Decision::Limited { .. }
        ));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        // 6 a minute: one request every ten seconds.
        let (limiter, clock) = limiter(6, 1, 10);
        assert_eq!(limiter.check(&user("a")), Decision::Allowed);
        clock.advance(Duration::from_millis(500));
        assert_eq!(
            limiter.check(&user("a")),
            Decision::Limited {
                retry_after_seconds: 10
            }
        );
        // Retrying after the whole seconds it was told conforms.
        clock.advance(Duration::from_secs(10));
        assert_eq!(limiter.check(&user("a")), Decision::Allowed);
    }

    #[test]
    fn idle_buckets_are_swept_and_the_table_is_bounded() {
        let (limiter, clock) = limiter(60, 2, 3);
        for name in ["a", "b", "c"] {
            assert_eq!(limiter.check(&user(name)), Decision::Allowed);
        }
        // The table is full: new callers share the overflow state.
        assert_eq!(limiter.check(&user("d")), Decision::Allowed);
        assert_eq!(limiter.check(&user("e")), Decision::Allowed);
        assert!(matches!(
            limiter.check(&user("f")),
            Decision::Limited { .. }
        ));
        // Callers already known keep their own state.
        assert_eq!(limiter.check(&user("a")), Decision::Allowed);
        // Three callers and the shared overflow state.
        assert_eq!(limiter.len(), 4);
        // Once every state has refilled, the sweep forgets them all.
        clock.advance(Duration::from_secs(3));
        assert_eq!(limiter.check(&user("d")), Decision::Allowed);
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn a_state_still_refilling_survives_the_sweep() {
        // 60 a minute, burst 2: a state refills in two seconds.
        let (limiter, clock) = limiter(60, 2, 10);
        assert_eq!(limiter.check(&user("idle")), Decision::Allowed);
        clock.advance(Duration::from_millis(1_900));
        for _ in 0..2 {
            assert_eq!(limiter.check(&user("busy")), Decision::Allowed);
        }
        clock.advance(Duration::from_millis(200));
        // The sweep at 2.1 s forgets the idle caller, not the busy one, whose burst
        // is still spent.
        assert!(matches!(
            limiter.check(&user("busy")),
            Decision::Limited { .. }
        ));
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn the_debug_form_counts_callers_without_naming_them() {
        let (limiter, _clock) = limiter(60, 2, 10);
        limiter.check(&user("someone@example.org"));
        let printed = format!("{limiter:?}");
        assert!(printed.contains("keys: 1"), "{printed}");
        assert!(!printed.contains("someone"), "{printed}");
    }

    #[test]
    fn zero_limits_are_refused() {
        let settings = |per_minute, burst| GatewaySettings {
            rate_limit_per_minute: per_minute,
            rate_limit_burst: burst,
            ..haven_config::Settings::default().gateway
        };
        let error = RateLimiter::new(&settings(0, 10)).unwrap_err().to_string();
        assert!(error.contains("gateway.rate_limit_per_minute"), "{error}");
        let error = RateLimiter::new(&settings(60, 0)).unwrap_err().to_string();
        assert!(error.contains("gateway.rate_limit_burst"), "{error}");
        assert!(RateLimiter::new(&settings(60, 10)).is_ok());
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
