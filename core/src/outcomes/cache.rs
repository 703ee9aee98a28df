//! Attributions kept between reads. Attributing a component walks its whole
//! delivery history (a year is thousands of commits), and every Outcomes page,
//! DORA call and sparkline needs it; the history only changes when a delivery
//! about the component's repositories (or naming the component) is kept.
//!
//! Every kept delivery stamps what it touched ([`Versions::touch`]); an
//! attribution is kept with the stamp of its component and repositories as
//! they were before it was loaded, and is used only while that stamp is
//! unchanged. A delivery whose subject is not known without a lookup (an
//! incident closed by key) stamps everything.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::compute::{Attribution, Scope};

/// What changed when: a counter per repository and per component.
#[derive(Debug, Default)]
pub struct Versions {
    inner: Mutex<VersionsInner>,
}

#[derive(Debug, Default)]
struct VersionsInner {
    counter: u64,
    everything: u64,
    keys: HashMap<String, u64>,
}

impl Versions {
    fn lock(&self) -> MutexGuard<'_, VersionsInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that events about `keys` (repositories `host/owner/name`,
    /// components `component:namespace/name`) were kept.
    pub fn touch<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.lock();
        inner.counter += 1;
        let now = inner.counter;
        for key in keys {
            match inner.keys.get_mut(key) {
                Some(at) => *at = now,
                None => {
                    inner.keys.insert(key.to_owned(), now);
                }
            }
        }
    }

    /// Records a change whose subject is unknown: every attribution is stale.
    pub fn touch_everything(&self) {
        let mut inner = self.lock();
        inner.counter += 1;
        inner.everything = inner.counter;
    }

    /// How many changes were recorded: equal counters mean nothing changed.
    pub fn counter(&self) -> u64 {
        self.lock().counter
    }

    /// The latest change to `scope`'s component or repositories.
    pub fn stamp(&self, scope: &Scope) -> u64 {
        let inner = self.lock();
        scope
            .repos
            .iter()
            .map(String::as_str)
            .chain([scope.component.as_str()])
            .filter_map(|k| inner.keys.get(k).copied())
            .fold(inner.everything, u64::max)
    }
}

/// What an attribution was computed for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The component.
    pub component: String,
    /// Its repositories when computed (a mapping change is a new key).
    pub repos: Vec<String>,
    /// Its monorepo folder when computed.
    pub path_prefix: Option<String>,
    /// One environment, or `None` for the production ones.
    pub environment: Option<String>,
    /// The end of the window: events from then on were not read.
    pub to: i64,
}

impl Key {
    /// The key of `scope` in `environment` up to `to`.
    pub fn new(scope: &Scope, environment: Option<&str>, to: i64) -> Key {
        Key {
            component: scope.component.clone(),
            repos: scope.repos.clone(),
            path_prefix: scope.path_prefix.clone(),
            environment: environment.map(str::to_ascii_lowercase),
            to,
        }
    }
}

/// Attributions by [`Key`], each with the stamp it was loaded under; at most
/// [`AttributionCache::CAPACITY`] (the least recently read go first).
#[derive(Debug, Default)]
pub struct AttributionCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    entries: HashMap<Key, (Arc<Attribution>, u64, u64)>,
    clock: u64,
}

impl AttributionCache {
    /// The most attributions kept (a year-long component is a few hundred KB).
    pub const CAPACITY: usize = 64;

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The attribution kept for `key`, if it was loaded at `stamp`.
    pub fn get(&self, key: &Key, stamp: u64) -> Option<Arc<Attribution>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        match inner.entries.get_mut(key) {
            Some((attribution, at, used)) if *at == stamp => {
                *used = now;
                Some(attribution.clone())
            }
            _ => None,
        }
    }

    /// Keeps `attribution`, loaded after `stamp` was read.
    pub fn put(&self, key: Key, attribution: Arc<Attribution>, stamp: u64) {
        let mut inner = self.lock();
        if !inner.entries.contains_key(&key) && inner.entries.len() >= Self::CAPACITY {
            if let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, (_, _, used))| *used)
                .map(|(k, _)| k.clone())
            {
                inner.entries.remove(&oldest);
            }
        }
        inner.clock += 1;
        let now = inner.clock;
        inner.entries.insert(key, (attribution, stamp, now));
    }
}

/// The last answer of an expensive every-team computation (the platform
/// home's numbers; every component's DORA for it and `/metrics`), reused
/// while what it was read from is the same (a fingerprint and a version the
/// caller gives) and it is younger than the caller's maximum age. One
/// caller computes while the others wait for its answer.
#[derive(Debug)]
pub struct Board<T> {
    inner: tokio::sync::Mutex<Option<BoardEntry<T>>>,
}

impl<T> Default for Board<T> {
    fn default() -> Self {
        Self {
            inner: tokio::sync::Mutex::new(None),
        }
    }
}

#[derive(Debug)]
struct BoardEntry<T> {
    fingerprint: u64,
    version: u64,
    at: i64,
    value: Arc<T>,
}

impl<T> Board<T> {
    /// The answer for `fingerprint` (what was read) and `version` (e.g.
    /// [`Versions::counter`]) as of `now` (seconds): the kept one while it
    /// holds and is under `max_age` seconds old, else `compute`'s, kept for
    /// the next caller.
    pub async fn get_or_compute<E, F>(
        &self,
        fingerprint: u64,
        version: u64,
        now: i64,
        max_age: i64,
        compute: F,
    ) -> Result<Arc<T>, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        let mut entry = self.inner.lock().await;
        if let Some(e) = entry.as_ref() {
            if e.fingerprint == fingerprint
                && e.version == version
                && (0..max_age).contains(&(now - e.at))
            {
                return Ok(e.value.clone());
            }
        }
        let value = Arc::new(compute.await?);
        *entry = Some(BoardEntry {
            fingerprint,
            version,
            at: now,
            value: value.clone(),
        });
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(component: &str, repos: &[&str]) -> Scope {
        Scope {
            component: component.into(),
            repos: repos.iter().map(|r| r.to_string()).collect(),
            path_prefix: None,
        }
    }

    #[test]
    fn an_attribution_is_used_only_until_its_component_or_repositories_change() {
        let (versions, cache) = (Versions::default(), AttributionCache::default());
        let a = scope("component:default/a", &["github.com/acme/a"]);
        let b = scope("component:default/b", &["github.com/acme/b"]);
        let key = Key::new(&a, None, 100);
        let stamp = versions.stamp(&a);
        cache.put(key.clone(), Arc::default(), stamp);
        assert!(cache.get(&key, versions.stamp(&a)).is_some());
        // Another repository's events leave it alone.
        versions.touch(["github.com/acme/b"]);
        assert!(cache.get(&key, versions.stamp(&a)).is_some());
        assert!(versions.stamp(&b) > stamp);
        // Its repository's events make it stale; so does an event naming the component.
        versions.touch(["github.com/acme/a"]);
        assert!(cache.get(&key, versions.stamp(&a)).is_none());
        let stamp = versions.stamp(&a);
        cache.put(key.clone(), Arc::default(), stamp);
        versions.touch(["component:default/a"]);
        assert!(cache.get(&key, versions.stamp(&a)).is_none());
        // So does a change whose subject is unknown.
        let stamp = versions.stamp(&a);
        cache.put(key.clone(), Arc::default(), stamp);
        versions.touch_everything();
        assert!(cache.get(&key, versions.stamp(&a)).is_none());
        // Another window end, environment or mapping is another key.
        let stamp = versions.stamp(&a);
        cache.put(key.clone(), Arc::default(), stamp);
        assert!(cache.get(&Key::new(&a, None, 200), stamp).is_none());
        assert!(cache
            .get(&Key::new(&a, Some("staging"), 100), stamp)
            .is_none());
        let remapped = scope("component:default/a", &["github.com/acme/elsewhere"]);
        assert!(cache.get(&Key::new(&remapped, None, 100), stamp).is_none());
    }

    #[test]
    fn a_load_that_raced_a_change_is_not_used() {
        let (versions, cache) = (Versions::default(), AttributionCache::default());
        let a = scope("component:default/a", &["github.com/acme/a"]);
        let key = Key::new(&a, None, 100);
        // Stamp read, then a delivery is kept while loading.
        let before = versions.stamp(&a);
        versions.touch(["github.com/acme/a"]);
        cache.put(key.clone(), Arc::default(), before);
        assert!(cache.get(&key, versions.stamp(&a)).is_none());
    }

    #[tokio::test]
    async fn the_board_is_reused_only_while_nothing_changed_and_for_a_minute() {
        let board = Board::<u32>::default();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let get = |fingerprint, version, now| {
            let calls = &calls;
            let board = &board;
            async move {
                *board
                    .get_or_compute::<(), _>(fingerprint, version, now, 60, async {
                        Ok(calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(get(1, 1, 1000).await, 0);
        assert_eq!(get(1, 1, 1059).await, 0, "reused within the minute");
        assert_eq!(get(1, 1, 1060).await, 1, "a minute on, computed again");
        assert_eq!(get(1, 2, 1061).await, 2, "a delivery was kept");
        assert_eq!(get(9, 2, 1062).await, 3, "the mapping changed");
        assert_eq!(get(9, 2, 1000).await, 4, "a clock that went back");
        assert_eq!(get(9, 2, 1000).await, 4);
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_the_least_recently_read() {
        let cache = AttributionCache::default();
        let keys: Vec<Key> = (0..=AttributionCache::CAPACITY)
            .map(|i| Key::new(&scope(&format!("component:default/c{i}"), &[]), None, 1))
            .collect();
        for k in &keys[..AttributionCache::CAPACITY] {
            cache.put(k.clone(), Arc::default(), 0);
        }
        assert!(cache.get(&keys[0], 0).is_some());
        cache.put(keys[AttributionCache::CAPACITY].clone(), Arc::default(), 0);
        assert!(cache.get(&keys[0], 0).is_some(), "read last, so kept");
        assert!(
            cache.get(&keys[1], 0).is_none(),
            "the least recently read went"
        );
        assert!(cache.get(&keys[AttributionCache::CAPACITY], 0).is_some());
    }
}
