//! Refreshes people ask for, throttled: one crawl per location at a time (a
//! request while one runs waits for it instead of starting another), a
//! minimum interval per location for everyone but platform admins, and a cap
//! on crawls running at once across the whole catalog.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::source::Sources;
use super::store::{self, RefreshReport};
use crate::auth::{authorize, Action, Principal};
use crate::CoreError;

/// How soon a location may be refreshed again on request by a non-admin.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// Crawls that may run at once.
pub const MAX_CONCURRENT_CRAWLS: usize = 4;

/// The throttle, one per process (in `CoreState`).
#[derive(Debug)]
pub struct Refresher {
    locations: Mutex<HashMap<String, Arc<LocationSlot>>>,
    crawls: Semaphore,
    min_interval: Duration,
}

#[derive(Debug, Default)]
struct LocationSlot {
    running: tokio::sync::Mutex<()>,
    finished: Mutex<Option<Instant>>,
}

/// What a refresh request came to.
#[derive(Debug)]
pub enum Refreshed {
    /// This request crawled the location.
    Crawled(RefreshReport),
    /// A crawl was already running; this request waited for it to finish.
    Joined,
}

impl Default for Refresher {
    fn default() -> Self {
        Self::new(MIN_INTERVAL, MAX_CONCURRENT_CRAWLS)
    }
}

impl Refresher {
    /// A throttle with its own interval and cap (tests use short ones).
    pub fn new(min_interval: Duration, max_crawls: usize) -> Self {
        Self {
            locations: Mutex::default(),
            crawls: Semaphore::new(max_crawls.max(1)),
            min_interval,
        }
    }

    fn slot(&self, id: &str) -> Arc<LocationSlot> {
        let mut map = self.locations.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id.to_owned()).or_default().clone()
    }

    /// Refreshes location `id` for `caller` within the limits.
    pub async fn refresh(
        &self,
        pool: &sqlx::SqlitePool,
        sources: &Sources,
        caller: &Principal,
        id: &str,
    ) -> Result<Refreshed, CoreError> {
        // Unknown ids never take a slot (no memory for made-up ids).
        store::location(pool, id).await?;
        let slot = self.slot(id);
        let guard = match slot.running.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Coalesce: wait for the crawl in progress, start none.
                let _ = slot.running.lock().await;
                return Ok(Refreshed::Joined);
            }
        };
        let last = *slot.finished.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = last {
            let since = last.elapsed();
            if since < self.min_interval && authorize(caller, Action::AdministerPlatform).is_err() {
                let wait = (self.min_interval - since).as_secs().max(1);
                return Err(CoreError::TooManyRequests(format!(
                    "This location was refreshed {} seconds ago; it can be refreshed again in {wait} seconds.",
                    since.as_secs()
                )));
            }
        }
        let _permit = self
            .crawls
            .acquire()
            .await
            .map_err(|_| CoreError::Unavailable("the catalog is shutting down".into()))?;
        let report = store::refresh_location(pool, sources, id).await;
        *slot.finished.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        drop(guard);
        report.map(Refreshed::Crawled)
    }

    /// Refreshes the location providing `entity_ref`.
    pub async fn refresh_entity(
        &self,
        pool: &sqlx::SqlitePool,
        sources: &Sources,
        caller: &Principal,
        entity_ref: &str,
    ) -> Result<(), CoreError> {
        let Some(id) = store::location_id_of(pool, entity_ref).await? else {
            return Ok(());
        };
        self.refresh(pool, sources, caller, &id).await.map(|_| ())
    }
}
