//! The price table: price per million input and output tokens per provider and
//! model, seeded from the public list prices in `seed-prices.csv` and edited
//! by platform admins. A model without a price is refused by the gateway,
//! never counted as free.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::SqlitePool;

use super::money::{parse_seed_prices, parse_usd_per_mtok, Price};
use crate::auth::{authorize, Action, Principal};
use crate::{audit, now_unix, CoreError};

/// The seed list shipped with Paved.
pub const SEED_PRICES: &str = include_str!("seed-prices.csv");

/// One row of the price table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRow {
    /// `openai`, `anthropic`, …
    pub provider: String,
    /// The model name.
    pub model: String,
    /// Millicents per million input tokens.
    pub input_millicents_per_mtok: i64,
    /// Millicents per million output tokens.
    pub output_millicents_per_mtok: i64,
    /// Who set it (`seed` for the shipped list).
    pub updated_by: String,
    /// When (unix seconds).
    pub updated_at: i64,
}

impl PriceRow {
    /// The price as the ledger uses it.
    pub fn price(&self) -> Price {
        Price {
            input_millicents_per_mtok: self.input_millicents_per_mtok,
            output_millicents_per_mtok: self.output_millicents_per_mtok,
        }
    }
}

/// Prices in memory, keyed by (provider, model); refreshed after every change.
#[derive(Debug, Clone, Default)]
pub struct PriceBook(Arc<RwLock<HashMap<(String, String), Price>>>);

impl PriceBook {
    /// The price of `model` at `provider`, if the table has one.
    pub fn get(&self, provider: &str, model: &str) -> Option<Price> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(provider.to_owned(), model.to_owned()))
            .copied()
    }

    /// Reloads from SQLite.
    pub async fn reload(&self, pool: &SqlitePool) -> Result<(), CoreError> {
        let rows = list_all(pool).await?;
        let map = rows
            .into_iter()
            .map(|r| ((r.provider.clone(), r.model.clone()), r.price()))
            .collect();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }
}

/// Inserts the seed list when the table is empty (first start).
pub async fn seed_if_empty(pool: &SqlitePool) -> Result<usize, CoreError> {
    let count = sqlx::query_scalar!("SELECT COUNT(*) FROM llm_prices")
        .fetch_one(pool)
        .await?;
    if count > 0 {
        return Ok(0);
    }
    let seeds = parse_seed_prices(SEED_PRICES).map_err(|message| CoreError::Invalid {
        field: "seed-prices.csv",
        message,
    })?;
    let now = now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for s in &seeds {
        sqlx::query!(
            "INSERT OR IGNORE INTO llm_prices (provider, model, input_millicents_per_mtok, output_millicents_per_mtok, updated_by, updated_at) VALUES (?1, ?2, ?3, ?4, 'seed', ?5)",
            s.provider,
            s.model,
            s.price.input_millicents_per_mtok,
            s.price.output_millicents_per_mtok,
            now
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(seeds.len())
}

/// Every price, by provider and model.
pub async fn list_all(pool: &SqlitePool) -> Result<Vec<PriceRow>, CoreError> {
    Ok(sqlx::query_as!(
        PriceRow,
        "SELECT provider, model, input_millicents_per_mtok, output_millicents_per_mtok, updated_by, updated_at FROM llm_prices ORDER BY provider, model"
    )
    .fetch_all(pool)
    .await?)
}

fn check_name(field: &'static str, raw: &str) -> Result<String, CoreError> {
    let v = raw.trim();
    if v.is_empty() || v.len() > 200 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CoreError::Invalid {
            field,
            message: "must be 1–200 characters without spaces".into(),
        });
    }
    Ok(v.to_owned())
}

/// Sets a price from dollars per million tokens (platform admins only).
pub async fn set_price(
    pool: &SqlitePool,
    book: &PriceBook,
    caller: &Principal,
    provider: &str,
    model: &str,
    input_usd_per_mtok: &str,
    output_usd_per_mtok: &str,
) -> Result<PriceRow, CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    let provider = check_name("provider", provider)?;
    let model = check_name("model", model)?;
    let mut problems = Vec::new();
    let input = parse_usd_per_mtok(input_usd_per_mtok)
        .map_err(|m| problems.push(("input_usd_per_mtok".to_owned(), m)))
        .unwrap_or(0);
    let output = parse_usd_per_mtok(output_usd_per_mtok)
        .map_err(|m| problems.push(("output_usd_per_mtok".to_owned(), m)))
        .unwrap_or(0);
    if !problems.is_empty() {
        return Err(CoreError::InvalidFields(problems));
    }
    let actor = caller.actor();
    let now = now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let before = sqlx::query!(
        "SELECT input_millicents_per_mtok, output_millicents_per_mtok FROM llm_prices WHERE provider = ?1 AND model = ?2",
        provider,
        model
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| json!({"input_millicents_per_mtok": r.input_millicents_per_mtok, "output_millicents_per_mtok": r.output_millicents_per_mtok}));
    sqlx::query!(
        r#"INSERT INTO llm_prices (provider, model, input_millicents_per_mtok, output_millicents_per_mtok, updated_by, updated_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6)
           ON CONFLICT (provider, model) DO UPDATE SET input_millicents_per_mtok = excluded.input_millicents_per_mtok,
             output_millicents_per_mtok = excluded.output_millicents_per_mtok, updated_by = excluded.updated_by, updated_at = excluded.updated_at"#,
        provider,
        model,
        input,
        output,
        actor,
        now
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        &actor,
        "price.set",
        &format!("llm-price:{provider}/{model}"),
        before,
        Some(json!({"input_millicents_per_mtok": input, "output_millicents_per_mtok": output})),
    )
    .await?;
    tx.commit().await?;
    book.reload(pool).await?;
    Ok(PriceRow {
        provider,
        model,
        input_millicents_per_mtok: input,
        output_millicents_per_mtok: output,
        updated_by: actor,
        updated_at: now,
    })
}

/// Removes a price (admins): the gateway then refuses that model.
pub async fn remove_price(
    pool: &SqlitePool,
    book: &PriceBook,
    caller: &Principal,
    provider: &str,
    model: &str,
) -> Result<(), CoreError> {
    authorize(caller, Action::AdministerPlatform)?;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let removed = sqlx::query!(
        "DELETE FROM llm_prices WHERE provider = ?1 AND model = ?2",
        provider,
        model
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if removed == 0 {
        return Err(CoreError::NotFound(format!(
            "a price for {provider}/{model}"
        )));
    }
    audit::record(
        &mut *tx,
        &caller.actor(),
        "price.remove",
        &format!("llm-price:{provider}/{model}"),
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    book.reload(pool).await
}
