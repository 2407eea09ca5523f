//! Duplicate searches are rate-limited per user: the blind index must not become a
//! way to test guessed names one after another.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use haven_error::{ErrorCode, HavenError};

/// Searches one user may run per window.
pub const SEARCHES_PER_WINDOW: u32 = 20;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);
const MAX_TRACKED_USERS: usize = 10_000;

/// Fixed-window counter per user.
#[derive(Debug, Default)]
pub struct SearchLimit {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl SearchLimit {
    /// Counts one search by `user`; fails with `RateLimited` over the limit.
    pub fn check(&self, user: &str) -> Result<(), HavenError> {
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .map_err(|_| HavenError::new(ErrorCode::Internal, "search limiter poisoned"))?;
        if windows.len() >= MAX_TRACKED_USERS {
            windows.retain(|_, (started, _)| now.duration_since(*started) < WINDOW);
        }
        let (started, count) = windows.entry(user.to_owned()).or_insert((now, 0));
        if now.duration_since(*started) >= WINDOW {
            *started = now;
            *count = 0;
        }
        if *count >= SEARCHES_PER_WINDOW {
            let retry = WINDOW
                .saturating_sub(now.duration_since(*started))
                .as_secs()
                .max(1);
            return Err(HavenError::new(
                ErrorCode::RateLimited,
                format!("too many duplicate searches; retry in {retry} s"),
            ));
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_after_the_limit_is_refused_per_user() {
        let limit = SearchLimit::default();
        for _ in 0..SEARCHES_PER_WINDOW {
            limit.check("officer-1").unwrap();
        }
        assert_eq!(
            limit.check("officer-1").unwrap_err().code(),
            ErrorCode::RateLimited
        );
        limit.check("officer-2").unwrap();
    }
}
