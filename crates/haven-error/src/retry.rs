//! Retrying work that failed for a reason that passes (a service or a database
//! unreachable, busy or too slow): exponential backoff with jitter on `backon`,
//! only for transient failures, and never past shutdown.
//!
//! One policy for every retry between Haven processes, so that a restart of one
//! service is met by spread-out, slowing retries from the others rather than a loop
//! per call site hammering it at a fixed pace.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use tokio_util::sync::CancellationToken;

use crate::{ErrorCode, HavenError};

/// The waits between attempts: the first step is `first`, each next step twice the
/// last, up to `longest`. Jitter stretches every wait by a random part of its step
/// (so a wait lies between the step and twice the step), so that processes that
/// failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    longest: Duration,
}

impl Backoff {
    /// Steps from `first`, doubling up to `longest`.
    pub const fn new(first: Duration, longest: Duration) -> Self {
        Self { first, longest }
    }

    /// The longest a retry ever waits, jitter included.
    pub fn longest_wait(&self) -> Duration {
        self.longest.max(self.first) * 2
    }

    fn builder(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_max_delay(self.longest)
            .with_jitter()
            .without_max_times()
    }
}

/// Whether another attempt may succeed where this one failed: the other side (or
/// the database) was unreachable, busy or too slow, or asked to slow down. Anything
/// else (an invalid request, a refusal, a conflict, an internal failure) would be
/// answered the same way again.
pub fn is_transient(error: &HavenError) -> bool {
    matches!(
        error.code(),
        ErrorCode::Unavailable | ErrorCode::DeadlineExceeded | ErrorCode::RateLimited
    )
}

/// Runs `attempt` until it succeeds or fails with an error that is not
/// [transient](is_transient), waiting as `backoff` says after each transient
/// failure; `on_retry` is told of each such failure and the wait before the next
/// attempt (to log it in the caller's words). There is no limit on attempts: the
/// caller's `shutdown` ends the retries.
///
/// `None` once `shutdown` is cancelled, at once: the attempt or the wait in
/// progress is dropped.
pub async fn retry<T, Attempt, Fut, OnRetry>(
    backoff: Backoff,
    shutdown: &CancellationToken,
    attempt: Attempt,
    on_retry: OnRetry,
) -> Option<Result<T, HavenError>>
where
    Attempt: FnMut() -> Fut,
    Fut: Future<Output = Result<T, HavenError>>,
    OnRetry: FnMut(&HavenError, Duration),
{
    let retried = attempt
        .retry(backoff.builder())
        .sleep(tokio::time::sleep)
        .when(is_transient)
        .notify(on_retry);
    tokio::select! {
        outcome = retried => Some(outcome),
        () = shutdown.cancelled() => None,
    }
}

/// Waits `duration` unless `shutdown` comes first; whether the wait ran out.
pub async fn pause(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => true,
        () = shutdown.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    use super::*;

    const QUICK: Backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(4));

    fn unavailable() -> HavenError {
        HavenError::unavailable(
            "the case service",
            std::io::Error::other("connection refused"),
        )
    }

    #[tokio::test]
    async fn transient_failures_are_retried_with_growing_jittered_waits_until_success() {
        let attempts = AtomicU32::new(0);
        let mut waits = Vec::new();
        let outcome = retry(
            QUICK,
            &CancellationToken::new(),
            || async {
                // More attempts than backon's default limit of three.
                match attempts.fetch_add(1, Ordering::SeqCst) {
                    0..=5 => Err(unavailable()),
                    6 => Err(HavenError::new(ErrorCode::DeadlineExceeded, "too slow")),
                    _ => Ok("opened"),
                }
            },
            |error, wait| {
                assert!(is_transient(error), "{error}");
                waits.push(wait);
            },
        )
        .await;
        assert_eq!(outcome.map(Result::ok), Some(Some("opened")));
        assert_eq!(attempts.load(Ordering::SeqCst), 8);
        let steps = [1, 2, 4, 4, 4, 4, 4].map(Duration::from_millis);
        assert_eq!(waits.len(), steps.len());
        // backon computes in f32: allow for its rounding.
        let slack = Duration::from_micros(1);
        for (wait, step) in waits.iter().zip(steps) {
            assert!(
                *wait + slack >= step && *wait <= step * 2 + slack,
                "wait {wait:?} for step {step:?}"
            );
            assert!(*wait <= QUICK.longest_wait() + slack);
        }
    }

    #[tokio::test]
    async fn an_error_a_retry_cannot_fix_is_returned_at_once() {
        for code in [
            ErrorCode::InvalidArgument,
            ErrorCode::PermissionDenied,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::Internal,
        ] {
            let attempts = AtomicU32::new(0);
            let outcome: Option<Result<(), HavenError>> = retry(
                QUICK,
                &CancellationToken::new(),
                || async {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    Err(HavenError::new(code, "refused"))
                },
                |error, _| panic!("retried {error}"),
            )
            .await;
            let error = outcome.and_then(Result::err).map(|error| error.code());
            assert_eq!(error, Some(code));
            assert_eq!(attempts.load(Ordering::SeqCst), 1, "{code}");
        }
    }

    #[tokio::test]
    async fn shutdown_ends_the_retries_while_they_wait() {
        let shutdown = CancellationToken::new();
        let slow = Backoff::new(Duration::from_secs(3_600), Duration::from_secs(3_600));
        let attempts = AtomicU32::new(0);
        let cancel = {
            let shutdown = shutdown.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                shutdown.cancel();
            }
        };
        let started = Instant::now();
        let (outcome, ()) = tokio::join!(
            retry(
                slow,
                &shutdown,
                || async {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    Err::<(), _>(unavailable())
                },
                |_, _| {},
            ),
            cancel,
        );
        assert!(outcome.is_none());
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_pause_ends_early_on_shutdown() {
        assert!(pause(Duration::from_millis(1), &CancellationToken::new()).await);
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        assert!(!pause(Duration::from_secs(3_600), &shutdown).await);
    }
}
