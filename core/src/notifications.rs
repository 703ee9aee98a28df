//! In-portal notifications: sent to users, to groups (everyone in the team)
//! or to everyone, read on the notifications page.

use sqlx::SqlitePool;

use crate::auth::Principal;
use crate::{now_unix, CoreError};

pub use paved_shared::notifications::{Notification, Severity};

/// The recipient every platform PM and admin reads.
pub const PLATFORM_ROLE: &str = "role:platform";

/// Sends one notification to each recipient, in one transaction.
pub async fn send(
    pool: &SqlitePool,
    recipients: &[String],
    title: &str,
    description: Option<&str>,
    link: Option<&str>,
    severity: Severity,
    origin: Option<&str>,
) -> Result<(), CoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    send_in(
        &mut tx,
        recipients,
        title,
        description,
        link,
        severity,
        origin,
        now_unix(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// [`send`] inside the caller's transaction, stamped `now` (unix seconds).
#[allow(clippy::too_many_arguments)]
pub async fn send_in(
    tx: &mut sqlx::SqliteConnection,
    recipients: &[String],
    title: &str,
    description: Option<&str>,
    link: Option<&str>,
    severity: Severity,
    origin: Option<&str>,
    now: i64,
) -> Result<(), CoreError> {
    let severity = severity.as_str();
    for recipient in recipients {
        sqlx::query!(
            "INSERT INTO notifications (recipient, title, description, link, severity, origin, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            recipient,
            title,
            description,
            link,
            severity,
            origin,
            now
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The refs a person receives notifications for: themselves, their teams' groups, and broadcasts.
pub fn recipients_for(principal: &Principal) -> Vec<String> {
    let mut out = vec![reader_ref(principal), "broadcast".to_owned()];
    out.extend(principal.teams.keys().map(|t| format!("group:default/{t}")));
    // Platform PMs and admins hear about the platform's own capabilities.
    if !principal.platform_roles.is_empty() {
        out.push(PLATFORM_ROLE.to_owned());
    }
    out
}

/// Who reads: read marks are kept per person, so a team's or a broadcast
/// notification one member has read stays unread for the others.
fn reader_ref(principal: &Principal) -> String {
    format!("user:default/{}", principal.subject.to_ascii_lowercase())
}

/// The newest notifications for `principal` (at most 100), with the
/// caller's own read marks.
pub async fn list(
    pool: &SqlitePool,
    principal: &Principal,
) -> Result<Vec<Notification>, CoreError> {
    let recipients = serde_json::to_string(&recipients_for(principal)).unwrap_or_default();
    let reader = reader_ref(principal);
    let rows = sqlx::query!(
        r#"SELECT n.id AS "id!", n.recipient, n.title, n.description, n.link, n.severity, n.created_at,
                  r.read_at AS "read_at?"
           FROM notifications n
           LEFT JOIN notification_reads r ON r.notification_id = n.id AND r.reader = ?2
           WHERE n.recipient IN (SELECT value FROM json_each(?1))
           ORDER BY n.created_at DESC, n.id DESC LIMIT 100"#,
        recipients,
        reader
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Notification {
            id: r.id,
            recipient: r.recipient,
            title: r.title,
            description: r.description,
            link: r.link,
            severity: Severity::parse(&r.severity).unwrap_or_default(),
            created_at: r.created_at,
            read: r.read_at.is_some(),
        })
        .collect())
}

/// How many of `principal`'s notifications are unread (the menu's badge).
pub async fn unread_count(pool: &SqlitePool, principal: &Principal) -> Result<usize, CoreError> {
    Ok(list(pool, principal)
        .await?
        .iter()
        .filter(|n| !n.read)
        .count())
}

/// Marks one of `principal`'s notifications read, for `principal` only.
pub async fn mark_read(pool: &SqlitePool, principal: &Principal, id: i64) -> Result<(), CoreError> {
    let recipients = serde_json::to_string(&recipients_for(principal)).unwrap_or_default();
    let reader = reader_ref(principal);
    let now = now_unix();
    let done = sqlx::query!(
        "INSERT INTO notification_reads (notification_id, reader, read_at)
         SELECT id, ?3, ?4 FROM notifications WHERE id = ?1 AND recipient IN (SELECT value FROM json_each(?2))
         ON CONFLICT (notification_id, reader) DO NOTHING",
        id,
        recipients,
        reader,
        now
    )
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        let visible = sqlx::query_scalar!(
            "SELECT COUNT(*) FROM notifications WHERE id = ?1 AND recipient IN (SELECT value FROM json_each(?2))",
            id,
            recipients
        )
        .fetch_one(pool)
        .await?;
        if visible == 0 {
            return Err(CoreError::NotFound("notification".into()));
        }
    }
    Ok(())
}
