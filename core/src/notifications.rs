//! In-portal notifications: sent to users, to groups (everyone in the team)
//! or to everyone, read on the notifications page.

use paved_store::{notifications as stored, Conn, Db};

use crate::auth::Principal;
use crate::{now_unix, CoreError};

pub use paved_shared::notifications::{Notification, Severity};

/// The recipient every platform PM and admin reads.
pub const PLATFORM_ROLE: &str = "role:platform";

/// Sends one notification to each recipient, in one transaction.
pub async fn send(
    db: impl Into<Db<'_>>,
    recipients: &[String],
    title: &str,
    description: Option<&str>,
    link: Option<&str>,
    severity: Severity,
    origin: Option<&str>,
) -> Result<(), CoreError> {
    let mut tx = db.into().begin().await?;
    send_in(
        tx.conn(),
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
pub async fn send_in<'c>(
    conn: impl Into<Conn<'c>>,
    recipients: &[String],
    title: &str,
    description: Option<&str>,
    link: Option<&str>,
    severity: Severity,
    origin: Option<&str>,
    now: i64,
) -> Result<(), CoreError> {
    let mut conn = conn.into();
    for recipient in recipients {
        stored::insert(
            conn.reborrow(),
            stored::NewNotification {
                recipient,
                title,
                description,
                link,
                severity: severity.as_str(),
                origin,
                created_at: now,
            },
        )
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
    db: impl Into<Db<'_>>,
    principal: &Principal,
) -> Result<Vec<Notification>, CoreError> {
    let rows = stored::newest(
        db.into(),
        &recipients_for(principal),
        &reader_ref(principal),
    )
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
pub async fn unread_count(
    db: impl Into<Db<'_>>,
    principal: &Principal,
) -> Result<usize, CoreError> {
    Ok(list(db, principal)
        .await?
        .iter()
        .filter(|n| !n.read)
        .count())
}

/// Marks one of `principal`'s notifications read, for `principal` only.
pub async fn mark_read(
    db: impl Into<Db<'_>>,
    principal: &Principal,
    id: i64,
) -> Result<(), CoreError> {
    let found = stored::mark_read(
        db.into(),
        id,
        &recipients_for(principal),
        &reader_ref(principal),
        now_unix(),
    )
    .await?;
    if found {
        Ok(())
    } else {
        Err(CoreError::NotFound("notification".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TeamRole;

    /// Notifications reach the person, their teams and everyone, and read
    /// marks are per person, alike on SQLite and PostgreSQL.
    #[tokio::test]
    async fn notifications_work_alike_on_both_backends() {
        let Some((sqlite, postgres)) = crate::db::both_backends("notes").await else {
            return;
        };
        let dana = Principal {
            subject: "dana".into(),
            teams: [("payments".to_owned(), TeamRole::Member)].into(),
            ..paved_shared::auth::testing::member("payments")
        };
        let lee = Principal {
            subject: "lee".into(),
            ..dana.clone()
        };
        let sid = Principal {
            subject: "sid".into(),
            teams: [("search".to_owned(), TeamRole::Member)].into(),
            ..dana.clone()
        };
        let mut seen = vec![];
        for db in [Db::Sqlite(&sqlite), Db::Postgres(&postgres)] {
            let to = |r: &str| vec![r.to_owned()];
            send(
                db,
                &to("user:default/dana"),
                "for dana",
                None,
                None,
                Severity::Normal,
                None,
            )
            .await
            .unwrap();
            send(
                db,
                &to("group:default/payments"),
                "for payments",
                Some("d"),
                Some("/teams/payments"),
                Severity::High,
                Some("task-1"),
            )
            .await
            .unwrap();
            send(
                db,
                &to("broadcast"),
                "for all",
                None,
                None,
                Severity::Low,
                None,
            )
            .await
            .unwrap();
            let titles =
                |ns: &[Notification]| ns.iter().map(|n| n.title.clone()).collect::<Vec<_>>();
            let for_dana = list(db, &dana).await.unwrap();
            assert_eq!(titles(&for_dana), ["for all", "for payments", "for dana"]);
            assert_eq!(titles(&list(db, &sid).await.unwrap()), ["for all"]);
            // Dana reads the team's notification: still unread for Lee.
            let team_note = for_dana
                .iter()
                .find(|n| n.title == "for payments")
                .unwrap()
                .id;
            mark_read(db, &dana, team_note).await.unwrap();
            mark_read(db, &dana, team_note).await.unwrap();
            assert_eq!(unread_count(db, &dana).await.unwrap(), 2);
            assert_eq!(unread_count(db, &lee).await.unwrap(), 2);
            // Nobody marks what was not sent to them.
            assert!(matches!(
                mark_read(db, &sid, team_note).await,
                Err(CoreError::NotFound(_))
            ));
            let read: Vec<(String, bool)> = list(db, &dana)
                .await
                .unwrap()
                .into_iter()
                .map(|n| (n.title, n.read))
                .collect();
            seen.push(read);
        }
        assert_eq!(seen[0], seen[1]);
    }
}
