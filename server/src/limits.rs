//! Per-client rate limits for what an anonymous caller can start (sign-in
//! flows): a fixed window per key, bounded in memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `limit` attempts per key in each `window`.
#[derive(Debug)]
pub struct WindowLimiter {
    limit: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Keys remembered at most; past it, finished windows are forgotten first.
const MAX_KEYS: usize = 100_000;

impl WindowLimiter {
    /// A limiter of `limit` attempts per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            entries: Mutex::default(),
        }
    }

    /// Counts one attempt by `key` at `now`; `Err(wait)` when it is over the
    /// limit, with how long until the window ends.
    pub fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_KEYS && !entries.contains_key(key) {
            let window = self.window;
            entries.retain(|_, (start, _)| now.duration_since(*start) < window);
            if entries.len() >= MAX_KEYS {
                // Every key is live: refuse newcomers rather than grow.
                return Err(self.window);
            }
        }
        let entry = entries.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(self.window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }

    /// [`WindowLimiter::check_at`] now.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_window() {
        let limiter = WindowLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("10.0.0.1", t0).is_ok());
        }
        let wait = limiter
            .check_at("10.0.0.1", t0 + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        assert!(
            limiter.check_at("10.0.0.2", t0).is_ok(),
            "another client is not affected"
        );
        assert!(
            limiter
                .check_at("10.0.0.1", t0 + Duration::from_secs(60))
                .is_ok(),
            "a new window"
        );
    }
}
