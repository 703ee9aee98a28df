//! The exact-match response cache: an answer reused for the same team, API,
//! model and request (its JSON with keys sorted, without the fields that do
//! not change the answer), within its lifetime. Kept in memory, bounded in
//! bytes, oldest out first; never shared across teams. Streams are not cached.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A cache key: SHA-256 of team, operation, model and the normalized body.
pub type Key = [u8; 32];

/// One stored answer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The body as first answered.
    pub body: Bytes,
    /// Its content type.
    pub content_type: String,
    /// What it cost when it was produced (what a hit saves).
    pub cost_nanocents: i64,
    /// The model that produced it.
    pub model: String,
    /// The deployment that produced it.
    pub deployment: String,
    /// When it was stored.
    pub stored_at: Instant,
    /// When it stops being served.
    pub expires_at: Instant,
}

/// What a request asks of the cache (`Cache-Control`, else the team's lifetime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Look for a stored answer (not with `no-cache` or `no-store`).
    pub lookup: bool,
    /// Store this answer for so long (not with `no-store`; zero: not at all).
    pub ttl: Duration,
    /// The oldest stored answer accepted (`max-age`), else any within its lifetime.
    pub max_age: Option<Duration>,
}

impl Policy {
    /// From the request's `Cache-Control` and the team's lifetime in seconds.
    /// A request opts in with `max-age=N` even when its team has no cache.
    pub fn of(cache_control: Option<&str>, team_ttl_secs: i64) -> Self {
        let team = Duration::from_secs(u64::try_from(team_ttl_secs).unwrap_or(0));
        let mut policy = Policy {
            lookup: !team.is_zero(),
            ttl: team,
            max_age: None,
        };
        let Some(header) = cache_control else {
            return policy;
        };
        for directive in header.split(',').map(|d| d.trim().to_ascii_lowercase()) {
            if directive == "no-store" {
                return Policy {
                    lookup: false,
                    ttl: Duration::ZERO,
                    max_age: None,
                };
            } else if directive == "no-cache" {
                policy.lookup = false;
            } else if let Some(n) = directive
                .strip_prefix("max-age=")
                .and_then(|n| n.trim_matches('"').parse::<u64>().ok())
            {
                let n = Duration::from_secs(
                    n.min(u64::try_from(paved_shared::budgets::MAX_CACHE_TTL_SECS).unwrap_or(0)),
                );
                policy.max_age = Some(n);
                if policy.ttl.is_zero() {
                    policy.ttl = n;
                }
                if !n.is_zero() && directive_allows_lookup(header) {
                    policy.lookup = true;
                }
            }
        }
        policy
    }

    /// Whether the cache is used at all.
    pub fn active(&self) -> bool {
        self.lookup || !self.ttl.is_zero()
    }
}

fn directive_allows_lookup(header: &str) -> bool {
    !header.to_ascii_lowercase().contains("no-cache")
}

/// The fields that never change an answer: who asks, tags, stream options.
const IGNORED: &[&str] = &[
    "user",
    "metadata",
    "stream_options",
    "store",
    "safety_identifier",
];

/// The key of a request: team, operation, model and its body normalized
/// (keys sorted, ignored fields dropped).
pub fn key(team: &str, operation: &str, model: &str, body: &Value) -> Key {
    let mut text = String::with_capacity(256);
    if let Value::Object(map) = body {
        let mut fields: Vec<(&String, &Value)> = map
            .iter()
            .filter(|(k, _)| !IGNORED.contains(&k.as_str()))
            .collect();
        fields.sort_by(|a, b| a.0.cmp(b.0));
        text.push('{');
        for (i, (k, v)) in fields.into_iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            canonical(&Value::String(k.clone()), &mut text);
            text.push(':');
            canonical(v, &mut text);
        }
        text.push('}');
    } else {
        canonical(body, &mut text);
    }
    let mut hash = Sha256::new();
    for part in [team, operation, model] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.update(text.as_bytes());
    hash.finalize().into()
}

/// JSON with object keys sorted.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut fields: Vec<(&String, &Value)> = map.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The stored answers.
#[derive(Debug)]
pub struct Cache {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Key, std::sync::Arc<Entry>>,
    /// Insertion order, for eviction.
    order: VecDeque<Key>,
    bytes: usize,
}

impl Cache {
    /// A cache holding at most `max_bytes` of answers.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored answer for `key`, if alive and no older than `max_age`.
    pub fn get(
        &self,
        key: &Key,
        now: Instant,
        max_age: Option<Duration>,
    ) -> Option<std::sync::Arc<Entry>> {
        let mut inner = self.lock();
        let entry = inner.map.get(key)?.clone();
        if entry.expires_at <= now {
            if let Some(old) = inner.map.remove(key) {
                inner.bytes = inner.bytes.saturating_sub(old.body.len());
            }
            return None;
        }
        if max_age.is_some_and(|m| now.saturating_duration_since(entry.stored_at) > m) {
            return None;
        }
        Some(entry)
    }

    /// Stores an answer; the oldest go when the cache is full. The body is
    /// copied: a body read from the network may be a view into a much
    /// larger buffer, which the cache would otherwise keep alive unseen.
    pub fn put(&self, key: Key, mut entry: Entry) {
        entry.body = Bytes::copy_from_slice(&entry.body);
        let size = entry.body.len();
        if size > self.max_bytes / 4 {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.map.insert(key, std::sync::Arc::new(entry)) {
            inner.bytes = inner.bytes.saturating_sub(old.body.len());
        } else {
            inner.order.push_back(key);
        }
        inner.bytes += size;
        while inner.bytes > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.bytes = inner.bytes.saturating_sub(old.body.len());
            }
        }
        // Keys of entries that expired and were dropped on read stay in
        // `order` until their turn; keep it from growing without bound.
        if inner.order.len() > inner.map.len() * 2 + 1024 {
            let live: std::collections::HashSet<Key> = inner.map.keys().copied().collect();
            inner.order.retain(|k| live.contains(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(body: &str, ttl: u64) -> Entry {
        let now = Instant::now();
        Entry {
            body: Bytes::from(body.to_owned()),
            content_type: "application/json".into(),
            cost_nanocents: 7,
            model: "m".into(),
            deployment: "m".into(),
            stored_at: now,
            expires_at: now + Duration::from_secs(ttl),
        }
    }

    #[test]
    fn keys_ignore_order_and_who_asks_but_not_the_team_or_content() {
        let a = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0, "user": "ana"});
        let b = json!({"temperature": 0, "user": "bo", "messages": [{"content": "hi", "role": "user"}], "model": "m"});
        assert_eq!(
            key("payments", "chat", "m", &a),
            key("payments", "chat", "m", &b)
        );
        assert_ne!(
            key("payments", "chat", "m", &a),
            key("search", "chat", "m", &a)
        );
        assert_ne!(
            key("payments", "chat", "m", &a),
            key("payments", "responses", "m", &a)
        );
        let c = json!({"model": "m", "messages": [{"role": "user", "content": "hi!"}], "temperature": 0});
        assert_ne!(
            key("payments", "chat", "m", &a),
            key("payments", "chat", "m", &c)
        );
    }

    #[test]
    fn cache_control_opts_in_out_and_limits_age() {
        let off = Policy::of(None, 0);
        assert!(!off.active());
        let team = Policy::of(None, 600);
        assert!(team.lookup && team.ttl == Duration::from_secs(600));
        let asked = Policy::of(Some("max-age=60"), 0);
        assert!(asked.lookup && asked.ttl == Duration::from_secs(60));
        assert_eq!(asked.max_age, Some(Duration::from_secs(60)));
        let fresh = Policy::of(Some("no-cache"), 600);
        assert!(!fresh.lookup && fresh.ttl == Duration::from_secs(600));
        let never = Policy::of(Some("no-store"), 600);
        assert!(!never.active());
        let huge = Policy::of(Some("max-age=99999999"), 0);
        assert_eq!(huge.ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn entries_expire_respect_max_age_and_the_oldest_go_first() {
        let cache = Cache::new(100);
        let now = Instant::now();
        cache.put([1; 32], entry("0123456789", 60));
        assert!(cache.get(&[1; 32], now, None).is_some());
        assert!(cache
            .get(&[1; 32], now + Duration::from_secs(61), None)
            .is_none());
        cache.put([2; 32], entry("0123456789", 60));
        assert!(cache
            .get(
                &[2; 32],
                now + Duration::from_secs(30),
                Some(Duration::from_secs(10))
            )
            .is_none());
        for i in 3..20u8 {
            cache.put([i; 32], entry("0123456789", 60));
        }
        assert!(cache.get(&[3; 32], now, None).is_none(), "evicted");
        assert!(cache.get(&[19; 32], now, None).is_some());
        cache.put([99; 32], entry(&"x".repeat(60), 60));
        assert!(
            cache.get(&[99; 32], now, None).is_none(),
            "too large to keep"
        );
    }

    #[test]
    fn a_view_into_a_large_buffer_is_kept_as_its_own_copy() {
        let cache = Cache::new(1 << 20);
        let big = Bytes::from(vec![b'y'; 1 << 16]);
        let range = big.as_ptr() as usize..big.as_ptr() as usize + big.len();
        let mut view = entry("", 60);
        view.body = big.slice(0..10);
        cache.put([7; 32], view);
        let kept = cache.get(&[7; 32], Instant::now(), None).unwrap();
        assert_eq!(&kept.body[..], b"yyyyyyyyyy");
        assert!(
            !range.contains(&(kept.body.as_ptr() as usize)),
            "the cache must not pin the network buffer"
        );
    }
}
