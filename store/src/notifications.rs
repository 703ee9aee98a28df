//! In-portal notifications and each person's read marks.

use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

/// A notification to store.
#[derive(Debug, Clone, Copy)]
pub struct NewNotification<'a> {
    /// `user:default/dana`, `group:default/payments`, `broadcast`, …
    pub recipient: &'a str,
    /// The title.
    pub title: &'a str,
    /// More words, if any.
    pub description: Option<&'a str>,
    /// Where it leads, if anywhere.
    pub link: Option<&'a str>,
    /// `low`, `normal`, `high` or `critical`.
    pub severity: &'a str,
    /// What sent it (e.g. a task id).
    pub origin: Option<&'a str>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Stores one notification.
pub async fn insert(conn: Conn<'_>, n: NewNotification<'_>) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "INSERT INTO notifications (recipient, title, description, link, severity, origin, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            n.recipient,
            n.title,
            n.description,
            n.link,
            n.severity,
            n.origin,
            n.created_at
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "INSERT INTO notifications (recipient, title, description, link, severity, origin, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            n.recipient,
            n.title,
            n.description,
            n.link,
            n.severity,
            n.origin,
            n.created_at
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// A stored notification with the reader's own read mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    /// Row id.
    pub id: i64,
    /// Who it was sent to.
    pub recipient: String,
    /// The title.
    pub title: String,
    /// More words, if any.
    pub description: Option<String>,
    /// Where it leads, if anywhere.
    pub link: Option<String>,
    /// `low`, `normal`, `high` or `critical`.
    pub severity: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When this reader read it.
    pub read_at: Option<i64>,
}

/// The newest 100 notifications sent to any of `recipients`, with
/// `reader`'s read marks.
pub async fn newest(
    db: Db<'_>,
    recipients: &[String],
    reader: &str,
) -> Result<Vec<NotificationRow>, Error> {
    dual!(db, |pool|
        sqlite: {
            let recipients = serde_json::to_string(recipients).unwrap_or_default();
            sqlx::query_as!(
                NotificationRow,
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
            .await
        },
        postgres: sqlx::query_as!(
            NotificationRow,
            r#"SELECT n.id, n.recipient, n.title, n.description, n.link, n.severity, n.created_at,
                      r.read_at AS "read_at?"
               FROM notifications n
               LEFT JOIN notification_reads r ON r.notification_id = n.id AND r.reader = $2
               WHERE n.recipient = ANY ($1)
               ORDER BY n.created_at DESC, n.id DESC LIMIT 100"#,
            recipients,
            reader
        )
        .fetch_all(pool)
        .await,
    )
}

/// Marks notification `id` read by `reader` if it was sent to one of
/// `recipients`; whether it was (already read counts as found).
pub async fn mark_read(
    db: Db<'_>,
    id: i64,
    recipients: &[String],
    reader: &str,
    now: i64,
) -> Result<bool, Error> {
    dual!(db, |pool|
        sqlite: {
            let recipients = serde_json::to_string(recipients).unwrap_or_default();
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
            if done.rows_affected() > 0 {
                Ok(true)
            } else {
                sqlx::query_scalar!(
                    r#"SELECT COUNT(*) AS "n!: i64" FROM notifications WHERE id = ?1 AND recipient IN (SELECT value FROM json_each(?2))"#,
                    id,
                    recipients
                )
                .fetch_one(pool)
                .await
                .map(|n| n > 0)
            }
        },
        postgres: {
            let done = sqlx::query!(
                "INSERT INTO notification_reads (notification_id, reader, read_at)
                 SELECT id, $3, $4 FROM notifications WHERE id = $1 AND recipient = ANY ($2)
                 ON CONFLICT (notification_id, reader) DO NOTHING",
                id,
                recipients,
                reader,
                now
            )
            .execute(pool)
            .await?;
            if done.rows_affected() > 0 {
                Ok(true)
            } else {
                sqlx::query_scalar!(
                    r#"SELECT COUNT(*) AS "n!" FROM notifications WHERE id = $1 AND recipient = ANY ($2)"#,
                    id,
                    recipients
                )
                .fetch_one(pool)
                .await
                .map(|n| n > 0)
            }
        },
    )
}
