//! Client-side rate limits: at most `requests_per_minute` requests and
//! `tokens_per_minute` tokens in any 60-second window.
//!
//! A sliding-window log: every admitted request leaves (time, tokens); a new
//! request waits until the last minute's totals leave room for it. Tokens
//! are an estimate made before sending (prompt bytes / 4 plus `max_tokens`,
//! as the providers count a request against their token limit), so the
//! limiter is conservative. A request larger than the whole token budget is
//! admitted alone in an empty window rather than never.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

/// Shared by every worker of one model.
#[derive(Debug)]
pub struct RateLimiter {
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u64>,
    log: Mutex<VecDeque<(Instant, u64)>>,
    changed: Condvar,
}

impl RateLimiter {
    /// A limiter; `None` means no limit of that kind.
    pub fn new(requests_per_minute: Option<u32>, tokens_per_minute: Option<u64>) -> Self {
        Self {
            requests_per_minute,
            tokens_per_minute,
            log: Mutex::new(VecDeque::new()),
            changed: Condvar::new(),
        }
    }

    /// Blocks until a request of `tokens` estimated tokens fits, then records it.
    pub fn acquire(&self, tokens: u64) {
        if self.requests_per_minute.is_none() && self.tokens_per_minute.is_none() {
            return;
        }
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            match self.wait_needed(&mut log, now, tokens) {
                None => {
                    log.push_back((now, tokens));
                    return;
                }
                Some(wait) => {
                    log = self
                        .changed
                        .wait_timeout(log, wait)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
            }
        }
    }

    /// How long until a request of `tokens` fits at `now`, or `None` if it
    /// fits now. Drops entries older than the window.
    fn wait_needed(
        &self,
        log: &mut VecDeque<(Instant, u64)>,
        now: Instant,
        tokens: u64,
    ) -> Option<Duration> {
        while log
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= WINDOW)
        {
            log.pop_front();
        }
        let until_oldest_expires = |index: usize| {
            log.get(index)
                .map(|(at, _)| (*at + WINDOW).saturating_duration_since(now))
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(1))
        };
        if let Some(rpm) = self.requests_per_minute
            && log.len() >= rpm as usize
        {
            return Some(until_oldest_expires(log.len() - rpm as usize));
        }
        if let Some(tpm) = self.tokens_per_minute {
            let used: u64 = log.iter().map(|(_, t)| t).sum();
            if !log.is_empty() && used.saturating_add(tokens) > tpm {
                // Wait for enough of the oldest entries to leave the window.
                let mut freed = 0u64;
                for (i, (_, t)) in log.iter().enumerate() {
                    freed += t;
                    if used - freed + tokens <= tpm || i + 1 == log.len() {
                        return Some(until_oldest_expires(i));
                    }
                }
            }
        }
        None
    }
}

/// The token estimate for a request: a quarter of the prompt's bytes plus
/// the most tokens it may generate.
pub fn estimate_tokens(prompt_bytes: usize, max_tokens: usize) -> u64 {
    (prompt_bytes as u64).div_ceil(4) + max_tokens as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_limit_waits_for_the_oldest_to_leave_the_window() {
        let l = RateLimiter::new(Some(2), None);
        let t0 = Instant::now();
        let mut log = VecDeque::from([(t0, 0), (t0 + Duration::from_secs(10), 0)]);
        let wait = l
            .wait_needed(&mut log, t0 + Duration::from_secs(15), 0)
            .unwrap();
        assert_eq!(wait, Duration::from_secs(45));
        // Once the first entry is a minute old, a request fits.
        assert_eq!(
            l.wait_needed(&mut log, t0 + Duration::from_secs(60), 0),
            None
        );
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn token_limit_counts_the_window() {
        let l = RateLimiter::new(None, Some(1000));
        let t0 = Instant::now();
        let mut log = VecDeque::from([(t0, 600), (t0 + Duration::from_secs(20), 300)]);
        let now = t0 + Duration::from_secs(30);
        assert_eq!(l.wait_needed(&mut log, now, 100), None);
        // 600 + 300 + 200 > 1000: wait until the 600 leaves (30 s from now).
        assert_eq!(
            l.wait_needed(&mut log, now, 200),
            Some(Duration::from_secs(30))
        );
        // Needs both to leave: wait for the second (50 s from now).
        assert_eq!(
            l.wait_needed(&mut log, now, 900),
            Some(Duration::from_secs(50))
        );
        // Too big for any window: admitted alone once the window is empty.
        let mut empty = VecDeque::new();
        assert_eq!(l.wait_needed(&mut empty, now, 5000), None);
    }

    #[test]
    fn acquire_without_limits_does_not_block() {
        let l = RateLimiter::new(None, None);
        for _ in 0..1000 {
            l.acquire(1_000_000);
        }
    }

    #[test]
    fn estimate() {
        assert_eq!(estimate_tokens(0, 16), 16);
        assert_eq!(estimate_tokens(9, 16), 19);
    }
}
