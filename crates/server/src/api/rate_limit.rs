//! Requests per caller per minute: a fixed window per caller (the admin, or one
//! environment's tokens together), counted at the edge.
//!
//! Only authenticated callers are counted: an unauthenticated request is answered `401`
//! before it does any work, and keying on credentials nobody issued would let a client
//! grow the table without bound.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The window every count is kept over.
const WINDOW: Duration = Duration::from_secs(60);

/// Where a caller stands in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Requests a window allows.
    pub limit: u32,
    /// Requests left in this window, this one counted.
    pub remaining: u32,
    /// Whole seconds until the window starts over.
    pub reset_seconds: u64,
    /// Whether this request is over the limit.
    pub refused: bool,
}

/// The counts of every caller seen.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests per caller per minute.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            limit: per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `caller` at `now`.
    pub fn admit(&self, caller: &str, now: Instant) -> Standing {
        let mut windows = self.windows.lock();
        let (start, count) = windows.entry(caller.to_string()).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            (*start, *count) = (now, 0);
        }
        *count = count.saturating_add(1);
        let left = WINDOW.saturating_sub(now.duration_since(*start));
        Standing {
            limit: self.limit,
            remaining: self.limit.saturating_sub(*count),
            reset_seconds: left.as_secs() + u64::from(left.subsec_nanos() > 0),
            refused: *count > self.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_over_its_limit_is_refused_until_its_window_starts_over() {
        let limiter = RateLimiter::new(2);
        let start = Instant::now();
        let first = limiter.admit("env:a", start);
        assert_eq!((first.remaining, first.refused), (1, false));
        assert_eq!(first.reset_seconds, 60);
        assert!(!limiter.admit("env:a", start).refused);
        let third = limiter.admit("env:a", start + Duration::from_secs(10));
        assert_eq!((third.remaining, third.refused), (0, true));
        assert_eq!(third.reset_seconds, 50);
        // Another caller has its own window.
        assert!(
            !limiter
                .admit("env:b", start + Duration::from_secs(10))
                .refused
        );
        let later = limiter.admit("env:a", start + Duration::from_secs(60));
        assert_eq!((later.remaining, later.refused), (1, false));
    }
}
