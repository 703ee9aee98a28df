//! The price table: price per million input and output tokens per provider and
//! model, seeded from the public list prices in `seed-prices.csv` and edited
//! by platform admins. A model without a price is refused by the gateway,
//! never counted as free.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use paved_store::prices::StoredPrice;
use paved_store::Db;
use serde::{Deserialize, Serialize};
use serde_json::json;

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

    /// Reloads from the database.
    pub async fn reload(&self, db: impl Into<Db<'_>>) -> Result<(), CoreError> {
        let rows = list_all(db).await?;
        let map = rows
            .into_iter()
            .map(|r| ((r.provider.clone(), r.model.clone()), r.price()))
            .collect();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }
}

/// Inserts the seed list when the table is empty (first start).
pub async fn seed_if_empty(db: impl Into<Db<'_>>) -> Result<usize, CoreError> {
    let db = db.into();
    if paved_store::prices::count(db).await? > 0 {
        return Ok(0);
    }
    let seeds = parse_seed_prices(SEED_PRICES).map_err(|message| CoreError::Invalid {
        field: "seed-prices.csv",
        message,
    })?;
    let now = now_unix();
    let mut tx = db.begin().await?;
    for s in &seeds {
        let seed = StoredPrice {
            provider: s.provider.clone(),
            model: s.model.clone(),
            input_millicents_per_mtok: s.price.input_millicents_per_mtok,
            output_millicents_per_mtok: s.price.output_millicents_per_mtok,
            updated_by: "seed".into(),
            updated_at: now,
        };
        paved_store::prices::upsert(tx.conn(), &seed, true).await?;
    }
    tx.commit().await?;
    Ok(seeds.len())
}

/// Every price, by provider and model.
pub async fn list_all(db: impl Into<Db<'_>>) -> Result<Vec<PriceRow>, CoreError> {
    Ok(paved_store::prices::all(db.into())
        .await?
        .into_iter()
        .map(|p| PriceRow {
            provider: p.provider,
            model: p.model,
            input_millicents_per_mtok: p.input_millicents_per_mtok,
            output_millicents_per_mtok: p.output_millicents_per_mtok,
            updated_by: p.updated_by,
            updated_at: p.updated_at,
        })
        .collect())
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
    db: impl Into<Db<'_>>,
    book: &PriceBook,
    caller: &Principal,
    provider: &str,
    model: &str,
    input_usd_per_mtok: &str,
    output_usd_per_mtok: &str,
) -> Result<PriceRow, CoreError> {
    let db = db.into();
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
    let mut tx = db.begin().await?;
    let before = paved_store::prices::find_for_update(tx.conn(), &provider, &model)
        .await?
        .map(|(input, output)| json!({"input_millicents_per_mtok": input, "output_millicents_per_mtok": output}));
    paved_store::prices::upsert(
        tx.conn(),
        &StoredPrice {
            provider: provider.clone(),
            model: model.clone(),
            input_millicents_per_mtok: input,
            output_millicents_per_mtok: output,
            updated_by: actor.clone(),
            updated_at: now,
        },
        false,
    )
    .await?;
    audit::record(
        tx.conn(),
        &actor,
        "price.set",
        &format!("llm-price:{provider}/{model}"),
        before,
        Some(json!({"input_millicents_per_mtok": input, "output_millicents_per_mtok": output})),
    )
    .await?;
    tx.commit().await?;
    book.reload(db).await?;
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
    db: impl Into<Db<'_>>,
    book: &PriceBook,
    caller: &Principal,
    provider: &str,
    model: &str,
) -> Result<(), CoreError> {
    let db = db.into();
    authorize(caller, Action::AdministerPlatform)?;
    let mut tx = db.begin().await?;
    if !paved_store::prices::remove(tx.conn(), provider, model).await? {
        return Err(CoreError::NotFound(format!(
            "a price for {provider}/{model}"
        )));
    }
    audit::record(
        tx.conn(),
        &caller.actor(),
        "price.remove",
        &format!("llm-price:{provider}/{model}"),
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    book.reload(db).await
}
