//! Which upstream failures are retried and how long to wait (REFERENCE §3).

use std::time::Duration;

use http::HeaderMap;
use rand::Rng;

/// Whether an upstream status may succeed on retry. A 429 whose code says the
/// provider's spend limit is reached is not retryable.
pub fn is_retryable(status: u16, body: &[u8]) -> bool {
    match status {
        429 => !spend_limit_reached(body),
        408 | 409 | 500 | 502 | 503 | 504 | 529 => true,
        _ => false,
    }
}

fn spend_limit_reached(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let error = &value["error"];
    [&error["code"], &error["type"]]
        .iter()
        .filter_map(|v| v.as_str())
        .any(|c| {
            matches!(
                c,
                "insufficient_quota" | "billing_hard_limit_reached" | "spend_limit_reached"
            )
        })
}

/// The wait the provider asks for: `retry-after-ms`, then `Retry-After` in
/// seconds or as an HTTP date, honoured when 0 < wait ≤ 60 s.
pub fn server_wait(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let wait = if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    } else if let Some(raw) = text("retry-after") {
        match raw.parse::<f64>() {
            Ok(secs) => Some(Duration::from_secs_f64(secs.max(0.0))),
            Err(_) => httpdate::parse_http_date(raw)
                .ok()
                .and_then(|at| at.duration_since(now).ok()),
        }
    } else {
        None
    }?;
    (wait > Duration::ZERO && wait <= Duration::from_secs(60)).then_some(wait)
}

/// Exponential backoff with full jitter: `random(0, min(cap, base × 2^attempt))`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base
        .checked_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
        .unwrap_or(cap)
        .min(cap);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(if ms == 0 {
        0
    } else {
        rand::thread_rng().gen_range(0..=ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn retryable_statuses_follow_the_reference() {
        for s in [408, 409, 429, 500, 502, 503, 504, 529] {
            assert!(is_retryable(s, b"{}"), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!is_retryable(s, b"{}"), "{s}");
        }
        assert!(!is_retryable(
            429,
            br#"{"error":{"code":"insufficient_quota","message":"You exceeded your current quota"}}"#
        ));
    }

    #[test]
    fn server_waits_prefer_milliseconds_and_ignore_silly_values() {
        let now = std::time::SystemTime::now();
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(server_wait(&h, now), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(server_wait(&h, now), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3600"));
        assert_eq!(server_wait(&h, now), None);
        h.insert("retry-after", HeaderValue::from_static("0"));
        assert_eq!(server_wait(&h, now), None);
        let later = now + Duration::from_secs(10);
        let date = httpdate::fmt_http_date(later);
        h.insert("retry-after", HeaderValue::from_str(&date).unwrap());
        let wait = server_wait(&h, now).unwrap();
        assert!(wait <= Duration::from_secs(10) && wait >= Duration::from_secs(9));
    }

    #[test]
    fn backoff_is_full_jitter_under_the_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_millis(1000);
        for attempt in 0..8 {
            for _ in 0..50 {
                let d = backoff(attempt, base, cap);
                assert!(d <= (base * 2u32.pow(attempt)).min(cap));
            }
        }
    }
}
