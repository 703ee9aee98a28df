//! Twelve weeks of delivery history for the demo (`PAVED_DEMO=true`),
//! placed relative to the clock: commits, production deployments, two
//! incidents and the deployments that fixed them, for the demo's
//! `payments-api` (by its repository) and `checkout-web` and
//! `search-indexer` (naming the component). They go through the generic
//! format's reader like any posted event, kept under the source
//! `demo` (which has no token: nobody can post as it).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::{events, store};
use crate::CoreError;

/// The demo's source id.
pub const DEMO_SOURCE: &str = "demo";

const PAYMENTS_REPO: &str = "https://git.paved.demo/payments/payments-api";

fn sha(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))[..40].to_owned()
}

/// A small deterministic generator, so every demo starts with the same story.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// The demo history's batches (one per deployment), as posted.
pub fn batches(now: i64) -> Vec<Value> {
    let mut dice = Dice(42);
    let mut out = Vec::new();
    let start = now - 84 * 86_400;
    let mut parent: Option<String> = None;
    let mut n = 0;
    let mut day = start;
    // payments-api: a deployment most working days, each shipping the
    // commits pushed since the one before.
    while day < now - 86_400 {
        day += 86_400 * (1 + dice.roll(2) as i64);
        let deployed = day + 9 * 3_600 + dice.roll(8 * 3_600) as i64;
        if deployed >= now {
            break;
        }
        n += 1;
        let mut events = Vec::new();
        let mut head = String::new();
        for c in 0..1 + dice.roll(3) {
            let commit = sha(&format!("payments-api-{n}-{c}"));
            let committed = deployed - 3_600 * (2 + dice.roll(40) as i64);
            events.push(json!({
                "type": "change", "repo": PAYMENTS_REPO, "sha": commit,
                "parents": parent.iter().collect::<Vec<_>>(),
                "committed_at": crate::rfc3339_utc(committed),
            }));
            parent = Some(commit.clone());
            head = commit;
        }
        events.push(json!({
            "type": "deployment", "id": format!("payments-api-{n}"), "repo": PAYMENTS_REPO,
            "sha": head, "environment": "production", "status": "success",
            "title": format!("Release {n}"), "finished_at": crate::rfc3339_utc(deployed),
        }));
        // Every seventh release breaks something; the fix ships the same day.
        if n % 7 == 3 {
            let opened = deployed + 1_800;
            let resolved = opened + 3_600 * (1 + dice.roll(3) as i64);
            let key = format!("INC-{n}");
            events.push(json!({
                "type": "incident", "id": key, "repo": PAYMENTS_REPO,
                "title": format!("Card captures failing after release {n}"),
                "created_at": crate::rfc3339_utc(opened), "resolved_at": crate::rfc3339_utc(resolved),
                "cause": {"deployment": format!("payments-api-{n}")},
            }));
            let fix = sha(&format!("payments-api-{n}-fix"));
            let fixed = resolved - 1_200;
            events.push(json!({
                "type": "change", "repo": PAYMENTS_REPO, "sha": fix,
                "parents": parent.iter().collect::<Vec<_>>(),
                "committed_at": crate::rfc3339_utc(fixed - 1_800),
            }));
            parent = Some(fix.clone());
            events.push(json!({
                "type": "deployment", "id": format!("payments-api-{n}-hotfix"), "repo": PAYMENTS_REPO,
                "sha": fix, "environment": "production", "status": "success",
                "title": format!("Hotfix for {key}"), "finished_at": crate::rfc3339_utc(fixed), "fixes": key,
            }));
        }
        out.push(json!({ "events": events }));
    }
    // Two components that name themselves: weekly releases without commits.
    for (component, every) in [("checkout-web", 7), ("search-indexer", 4)] {
        let mut t = start + 86_400;
        let mut k = 0;
        while t < now {
            k += 1;
            out.push(json!({"events": [{
                "type": "deployment", "id": format!("{component}-{k}"), "component": component,
                "environment": "production", "title": format!("{component} {k}"),
                "finished_at": crate::rfc3339_utc(t + 14 * 3_600),
            }]}));
            t += every * 86_400;
        }
    }
    out
}

/// Seeds the history once: nothing happens when the demo source exists.
pub async fn seed(pool: &SqlitePool, now: i64) -> Result<(), CoreError> {
    let inserted = sqlx::query!(
        "INSERT INTO outcome_sources (id, kind, name, created_by, created_at)
         VALUES (?1, 'generic', 'Demo history', 'demo', ?2) ON CONFLICT DO NOTHING",
        DEMO_SOURCE,
        now
    )
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(());
    }
    for (i, batch) in batches(now).iter().enumerate() {
        let facts = events::generic(batch).map_err(|r| CoreError::Invalid {
            field: "demo",
            message: format!("{}: {}", r.field, r.message),
        })?;
        let body = batch.to_string();
        store::ingest(
            pool,
            DEMO_SOURCE,
            &format!("demo-{i}"),
            "generic",
            &body,
            &facts,
            now,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_batch_reads_as_the_generic_format() {
        let now = 1_780_000_000;
        let all = batches(now);
        assert!(all.len() > 40, "{}", all.len());
        for b in &all {
            events::generic(b).unwrap_or_else(|r| panic!("{b}: {} {}", r.field, r.message));
        }
        // Some hotfixes, so the rework rate has something to show.
        assert!(all.iter().any(|b| b.to_string().contains("\"fixes\"")));
    }
}
