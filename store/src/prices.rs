//! The LLM price table.

use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

/// One price as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPrice {
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

/// How many prices there are.
pub async fn count(db: Db<'_>) -> Result<i64, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!: i64" FROM llm_prices"#)
            .fetch_one(pool)
            .await,
        postgres: sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!" FROM llm_prices"#)
            .fetch_one(pool)
            .await,
    )
}

/// Every price, by provider and model (byte order).
pub async fn all(db: Db<'_>) -> Result<Vec<StoredPrice>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            StoredPrice,
            "SELECT provider, model, input_millicents_per_mtok, output_millicents_per_mtok, updated_by, updated_at FROM llm_prices ORDER BY provider, model"
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            StoredPrice,
            r#"SELECT provider, model, input_millicents_per_mtok, output_millicents_per_mtok, updated_by, updated_at FROM llm_prices ORDER BY provider COLLATE "C", model COLLATE "C""#
        )
        .fetch_all(pool)
        .await,
    )
}

/// A price's input and output rates, inside a transaction that may change it.
pub async fn find_for_update(
    conn: Conn<'_>,
    provider: &str,
    model: &str,
) -> Result<Option<(i64, i64)>, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "SELECT input_millicents_per_mtok, output_millicents_per_mtok FROM llm_prices WHERE provider = ?1 AND model = ?2",
            provider,
            model
        )
        .fetch_optional(c)
        .await
        .map(|r| r.map(|r| (r.input_millicents_per_mtok, r.output_millicents_per_mtok))),
        postgres: sqlx::query!(
            "SELECT input_millicents_per_mtok, output_millicents_per_mtok FROM llm_prices WHERE provider = $1 AND model = $2 FOR UPDATE",
            provider,
            model
        )
        .fetch_optional(c)
        .await
        .map(|r| r.map(|r| (r.input_millicents_per_mtok, r.output_millicents_per_mtok))),
    )
}

/// Writes a price; with `keep_existing`, an existing one is left as it is
/// (the seed list never overwrites an admin's price).
pub async fn upsert(conn: Conn<'_>, price: &StoredPrice, keep_existing: bool) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            r#"INSERT INTO llm_prices (provider, model, input_millicents_per_mtok, output_millicents_per_mtok, updated_by, updated_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6)
               ON CONFLICT (provider, model) DO UPDATE SET input_millicents_per_mtok = excluded.input_millicents_per_mtok,
                 output_millicents_per_mtok = excluded.output_millicents_per_mtok, updated_by = excluded.updated_by, updated_at = excluded.updated_at
               WHERE NOT ?7"#,
            price.provider,
            price.model,
            price.input_millicents_per_mtok,
            price.output_millicents_per_mtok,
            price.updated_by,
            price.updated_at,
            keep_existing
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            r#"INSERT INTO llm_prices (provider, model, input_millicents_per_mtok, output_millicents_per_mtok, updated_by, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (provider, model) DO UPDATE SET input_millicents_per_mtok = excluded.input_millicents_per_mtok,
                 output_millicents_per_mtok = excluded.output_millicents_per_mtok, updated_by = excluded.updated_by, updated_at = excluded.updated_at
               WHERE NOT $7"#,
            price.provider,
            price.model,
            price.input_millicents_per_mtok,
            price.output_millicents_per_mtok,
            price.updated_by,
            price.updated_at,
            keep_existing
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// Removes a price; whether there was one.
pub async fn remove(conn: Conn<'_>, provider: &str, model: &str) -> Result<bool, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!("DELETE FROM llm_prices WHERE provider = ?1 AND model = ?2", provider, model)
            .execute(c)
            .await
            .map(|r| r.rows_affected() > 0),
        postgres: sqlx::query!("DELETE FROM llm_prices WHERE provider = $1 AND model = $2", provider, model)
            .execute(c)
            .await
            .map(|r| r.rows_affected() > 0),
    )
}
