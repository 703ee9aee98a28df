//! Entities a person starred, for their "starred" view.

use sqlx::SqlitePool;

use crate::auth::Principal;
use crate::{now_unix, CoreError};

/// Stars or unstars `entity_ref` for the caller; returns whether it is now starred.
pub async fn toggle(
    pool: &SqlitePool,
    caller: &Principal,
    entity_ref: &str,
) -> Result<bool, CoreError> {
    let user_id = caller
        .user_id
        .ok_or_else(|| CoreError::Forbidden("Only people can star entities.".into()))?;
    let entity_ref = entity_ref.to_ascii_lowercase();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let exists = sqlx::query_scalar!(
        "SELECT COUNT(*) FROM catalog_entities WHERE entity_ref = ?1",
        entity_ref
    )
    .fetch_one(&mut *tx)
    .await?;
    if exists == 0 {
        return Err(CoreError::NotFound(format!("entity {entity_ref}")));
    }
    let removed = sqlx::query!(
        "DELETE FROM catalog_stars WHERE user_id = ?1 AND entity_ref = ?2",
        user_id,
        entity_ref
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if removed == 0 {
        let now = now_unix();
        sqlx::query!(
            "INSERT INTO catalog_stars (user_id, entity_ref, created_at) VALUES (?1, ?2, ?3)",
            user_id,
            entity_ref,
            now
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(removed == 0)
}

/// The references the caller starred.
pub async fn starred(pool: &SqlitePool, caller: &Principal) -> Result<Vec<String>, CoreError> {
    let Some(user_id) = caller.user_id else {
        return Ok(Vec::new());
    };
    Ok(sqlx::query_scalar!(
        "SELECT entity_ref FROM catalog_stars WHERE user_id = ?1 ORDER BY entity_ref",
        user_id
    )
    .fetch_all(pool)
    .await?)
}
