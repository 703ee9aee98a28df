//! Event sources: where delivery events come from and how each proves it.
//! An admin creates a source and sees its secret once; rotating replaces it
//! at once. GitHub signs each body with the shared secret (HMAC-SHA256), so
//! that secret is kept to verify with; GitLab, DevLake and generic sources
//! send a bearer token, kept only as a SHA-256 hash. A default GitHub and
//! GitLab source may also come from `PAVED_EVENTS_GITHUB_SECRET` and
//! `PAVED_EVENTS_GITLAB_TOKEN`.

use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use super::config::OutcomesConfig;
use crate::auth::{authorize, Action, Principal};
use crate::{audit, now_unix, CoreError};

/// The id of the source configured by `PAVED_EVENTS_GITHUB_SECRET`.
pub const ENV_GITHUB: &str = "env-github";
/// The id of the source configured by `PAVED_EVENTS_GITLAB_TOKEN`.
pub const ENV_GITLAB: &str = "env-gitlab";

pub use paved_shared::outcomes::{Created, SourceKind, SourceView};

fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("pvev_{}", hex::encode(bytes))
}

/// The stored form of a bearer token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn check_name(name: &str) -> Result<String, CoreError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(CoreError::Invalid {
            field: "name",
            message: "must be 1 to 80 characters".into(),
        });
    }
    Ok(name.to_owned())
}

fn view(
    id: String,
    kind: &str,
    name: String,
    created_at: i64,
    rotated_at: Option<i64>,
    last_event_at: Option<i64>,
    event_count: i64,
) -> Option<SourceView> {
    let kind = SourceKind::parse(kind)?;
    Some(SourceView {
        endpoint: kind.endpoint().replace("{id}", &id),
        from_environment: id.starts_with("env-"),
        id,
        kind,
        name,
        created_at,
        rotated_at,
        last_event_at,
        event_count,
    })
}

/// Registers the sources the environment configures (so their deliveries
/// are counted); removes them when the variable is gone.
pub async fn sync_environment(pool: &SqlitePool, config: &OutcomesConfig) -> Result<(), CoreError> {
    let now = now_unix();
    for (id, kind, name, present) in [
        (
            ENV_GITHUB,
            "github",
            "GitHub (PAVED_EVENTS_GITHUB_SECRET)",
            config.github_secret.is_some(),
        ),
        (
            ENV_GITLAB,
            "gitlab",
            "GitLab (PAVED_EVENTS_GITLAB_TOKEN)",
            config.gitlab_token.is_some(),
        ),
    ] {
        if present {
            sqlx::query!(
                "INSERT INTO outcome_sources (id, kind, name, created_by, created_at)
                 VALUES (?1, ?2, ?3, 'environment', ?4) ON CONFLICT (id) DO NOTHING",
                id,
                kind,
                name,
                now
            )
            .execute(pool)
            .await?;
        } else {
            sqlx::query!("DELETE FROM outcome_sources WHERE id = ?1", id)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

/// Every source, newest first (platform admins).
pub async fn list(pool: &SqlitePool, principal: &Principal) -> Result<Vec<SourceView>, CoreError> {
    authorize(principal, Action::AdministerPlatform)?;
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", kind, name, created_at, rotated_at, last_event_at, event_count
           FROM outcome_sources ORDER BY created_at DESC, name"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            view(
                r.id,
                &r.kind,
                r.name,
                r.created_at,
                r.rotated_at,
                r.last_event_at,
                r.event_count,
            )
        })
        .collect())
}

/// Creates a source; its secret is in the answer and nowhere to be read again.
pub async fn create(
    pool: &SqlitePool,
    principal: &Principal,
    kind: SourceKind,
    name: &str,
) -> Result<Created, CoreError> {
    authorize(principal, Action::AdministerPlatform)?;
    let actor = &principal.actor();
    let name = check_name(name)?;
    let id = uuid::Uuid::new_v4().to_string();
    let secret = new_secret();
    let (plain, hashed) = match kind {
        SourceKind::Github => (Some(secret.clone()), None),
        _ => (None, Some(hash(&secret))),
    };
    let now = now_unix();
    let kind_name = kind.as_str();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "INSERT INTO outcome_sources (id, kind, name, secret, token_hash, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        id,
        kind_name,
        name,
        plain,
        hashed,
        actor,
        now
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| match CoreError::from(e) {
        CoreError::Conflict(_) => {
            CoreError::Conflict(format!("a source named {name} exists already"))
        }
        other => other,
    })?;
    audit::record(
        &mut *tx,
        actor,
        "outcomes.source.create",
        &format!("outcome-source:{id}"),
        None,
        Some(serde_json::json!({"kind": kind_name, "name": name})),
    )
    .await?;
    tx.commit().await?;
    let source = view(id, kind_name, name, now, None, None, 0)
        .ok_or_else(|| CoreError::NotFound("source".into()))?;
    Ok(Created { source, secret })
}

/// Replaces a source's secret; the old one stops working at once.
pub async fn rotate(
    pool: &SqlitePool,
    principal: &Principal,
    id: &str,
) -> Result<Created, CoreError> {
    authorize(principal, Action::AdministerPlatform)?;
    let actor = &principal.actor();
    let row = sqlx::query!(
        r#"SELECT id AS "id!", kind, name, created_at, last_event_at, event_count FROM outcome_sources WHERE id = ?1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("event source {id}")))?;
    if row.id.starts_with("env-") {
        return Err(CoreError::Invalid {
            field: "id",
            message:
                "this source's secret comes from the environment; change the variable and restart"
                    .into(),
        });
    }
    let secret = new_secret();
    let (plain, hashed) = if row.kind == "github" {
        (Some(secret.clone()), None)
    } else {
        (None, Some(hash(&secret)))
    };
    let now = now_unix();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "UPDATE outcome_sources SET secret = ?2, token_hash = ?3, rotated_at = ?4 WHERE id = ?1",
        id,
        plain,
        hashed,
        now
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        actor,
        "outcomes.source.rotate",
        &format!("outcome-source:{id}"),
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    let source = view(
        row.id,
        &row.kind,
        row.name,
        row.created_at,
        Some(now),
        row.last_event_at,
        row.event_count,
    )
    .ok_or_else(|| CoreError::NotFound("source".into()))?;
    Ok(Created { source, secret })
}

/// Removes a source (its events stay, for the numbers they made).
pub async fn delete(pool: &SqlitePool, principal: &Principal, id: &str) -> Result<(), CoreError> {
    authorize(principal, Action::AdministerPlatform)?;
    let actor = &principal.actor();
    if id.starts_with("env-") {
        return Err(CoreError::Invalid {
            field: "id",
            message: "this source comes from the environment; unset the variable and restart"
                .into(),
        });
    }
    let mut tx = pool.begin().await?;
    let gone = sqlx::query!("DELETE FROM outcome_sources WHERE id = ?1", id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(CoreError::NotFound(format!("event source {id}")));
    }
    audit::record(
        &mut *tx,
        actor,
        "outcomes.source.delete",
        &format!("outcome-source:{id}"),
        None,
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The GitHub source whose secret signed `body` (`sha256=<hex>`), if any.
pub async fn verify_github(
    pool: &SqlitePool,
    config: &OutcomesConfig,
    body: &[u8],
    signature: &str,
) -> Result<Option<String>, CoreError> {
    let Some(given) = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return Ok(None);
    };
    if let Some(secret) = &config.github_secret {
        let mac = crate::integrations::hmac_sha256(secret.expose_secret().as_bytes(), body);
        if same(&mac, &given) {
            return Ok(Some(ENV_GITHUB.to_owned()));
        }
    }
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", secret AS "secret!" FROM outcome_sources WHERE kind = 'github' AND secret IS NOT NULL"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().find_map(|r| {
        let mac = crate::integrations::hmac_sha256(r.secret.as_bytes(), body);
        same(&mac, &given).then_some(r.id)
    }))
}

/// The source of `kind` whose token is `token`, if any.
pub async fn verify_token(
    pool: &SqlitePool,
    config: &OutcomesConfig,
    kind: SourceKind,
    token: &str,
) -> Result<Option<String>, CoreError> {
    if token.is_empty() || token.len() > 512 {
        return Ok(None);
    }
    if kind == SourceKind::Gitlab {
        if let Some(expected) = &config.gitlab_token {
            if same(expected.expose_secret().as_bytes(), token.as_bytes()) {
                return Ok(Some(ENV_GITLAB.to_owned()));
            }
        }
    }
    let hashed = hash(token);
    let kind_name = kind.as_str();
    let id = sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM outcome_sources WHERE kind = ?1 AND token_hash = ?2"#,
        kind_name,
        hashed
    )
    .fetch_optional(pool)
    .await?;
    Ok(id)
}
