//! When to try an HTTP request again, and how long to wait first.
//!
//! Retried: 408, 409, 429, every 5xx (including Anthropic's 529
//! "overloaded"), timeouts, dropped connections and malformed bodies.
//! A server that cannot be reached at all is retried too, but stops the
//! run when retries run out. Not retried: every other 4xx (bad key, bad request, unknown model):
//! sending the same request again cannot fix it, so the run stops.
//!
//! Waits grow exponentially with "equal jitter" (half fixed, half random),
//! so parallel workers that failed together do not retry together; a
//! server's `retry-after-ms` / `retry-after` (seconds or an HTTP date) is
//! honoured instead when present.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// Longest wait the harness accepts from a `retry-after` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Try again (after `retry_after` if the server said so).
    Retry {
        /// Why the attempt failed, for the error recorded if retries run out.
        reason: String,
        /// The server's requested wait.
        retry_after: Option<Duration>,
    },
    /// The server could not be reached: retried like [`Outcome::Retry`],
    /// but once retries run out the run stops (the teacher is down, not
    /// this item).
    Unreachable(String),
    /// The server refused the request (a 4xx other than the retried
    /// ones: bad key, unknown model, bad request): stop the run, retrying
    /// cannot help.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's message, with the URL.
        reason: String,
    },
    /// Stop the run: retrying cannot help.
    Fatal(String),
}

/// Whether an HTTP status is worth retrying.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || (500..600).contains(&status)
}

/// The wait a response asks for: `retry-after-ms` (OpenAI), else
/// `retry-after` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
/// Unparseable values are ignored; waits are capped at ten minutes.
pub fn retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    let from_ms = retry_after_ms
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0));
    let from_header = || {
        let v = retry_after?.trim();
        if let Ok(secs) = v.parse::<f64>() {
            return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
        }
        let at = httpdate::parse_http_date(v).ok()?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    };
    from_ms.or_else(from_header).map(|d| d.min(MAX_RETRY_AFTER))
}

/// Exponential backoff with equal jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Wait before the first retry (before jitter).
    pub base: Duration,
    /// Largest wait between two attempts (before jitter).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0-based): the server's
    /// `retry_after` when given, else `min(max, base·2^retry)` of which the
    /// upper half is random.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        if let Some(d) = retry_after {
            return d;
        }
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(rng.random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn statuses() {
        for s in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            retry_after(Some("250"), Some("9"), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(None, Some("2"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(None, Some("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        // A date in the past means "now".
        assert_eq!(
            retry_after(None, Some("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(None, Some("soon"), now), None);
        assert_eq!(retry_after(Some("-5"), None, now), None);
        assert_eq!(retry_after(None, Some("99999"), now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn backoff_grows_with_jitter_inside_bounds() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for (retry, ceiling) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (40, 1000),
        ] {
            let mut seen = Vec::new();
            for _ in 0..200 {
                let d = b.delay(retry, None, &mut rng).as_secs_f64() * 1000.0;
                assert!(
                    d >= ceiling as f64 / 2.0 - 1e-9 && d <= ceiling as f64 + 1e-9,
                    "{d}"
                );
                seen.push(d);
            }
            let spread = seen.iter().cloned().fold(f64::MIN, f64::max)
                - seen.iter().cloned().fold(f64::MAX, f64::min);
            assert!(spread > ceiling as f64 / 4.0, "jitter spreads the waits");
        }
        assert_eq!(
            b.delay(0, Some(Duration::from_secs(3)), &mut rng),
            Duration::from_secs(3)
        );
    }
}
