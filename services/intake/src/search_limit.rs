//! Duplicate searches are rate-limited per user: the blind index must not become a
//! way to test guessed names one after another.
//!
//! The count lives in intake's database (`search_windows`), one row per user updated
//! in one statement, so the limit holds across every intake replica: three replicas
//! do not give a user three times the searches.

use haven_error::{ErrorCode, HavenError};
use time::OffsetDateTime;

use crate::store::ScreeningStore;

/// Searches one user may run per window.
pub const SEARCHES_PER_WINDOW: i64 = 20;
/// The window, in milliseconds (one minute).
pub const WINDOW_MS: i64 = 60_000;

/// A user's current window as the database counts it, this search included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchWindow {
    /// When the window started (Unix milliseconds).
    pub started_ms: i64,
    /// Searches counted in it.
    pub searches: i64,
}

impl SearchWindow {
    /// Whether the search just counted may run at `now_ms`; over the limit, a
    /// `RateLimited` error saying when the window ends.
    pub fn verdict(self, now_ms: i64) -> Result<(), HavenError> {
        if self.searches <= SEARCHES_PER_WINDOW {
            return Ok(());
        }
        let remaining_ms = (self.started_ms + WINDOW_MS - now_ms).max(0);
        let retry_seconds = ((remaining_ms + 999) / 1_000).max(1);
        Err(HavenError::new(
            ErrorCode::RateLimited,
            format!("too many duplicate searches; retry in {retry_seconds} s"),
        ))
    }
}

/// Counts one search by `user` in the shared window and refuses it over the limit.
pub async fn check(store: &dyn ScreeningStore, user: &str) -> Result<(), HavenError> {
    let now_ms = now_ms();
    let window = store.count_search(user, now_ms, WINDOW_MS).await?;
    window.verdict(now_ms)
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_after_the_limit_is_refused_until_the_window_ends() {
        let started_ms = 1_000_000;
        let within = SearchWindow {
            started_ms,
            searches: SEARCHES_PER_WINDOW,
        };
        assert!(within.verdict(started_ms + 10).is_ok());
        let over = SearchWindow {
            started_ms,
            searches: SEARCHES_PER_WINDOW + 1,
        };
        let refused = over.verdict(started_ms + 15_500).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::RateLimited);
        assert!(refused.message().contains("retry in 45 s"), "{refused:?}");
        // A window the clock has already passed still asks for a second.
        let late = over.verdict(started_ms + WINDOW_MS + 5).unwrap_err();
        assert!(late.message().contains("retry in 1 s"), "{late:?}");
    }
}
