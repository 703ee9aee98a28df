//! Policy records: violations from every enforcement point (bounded), the
//! evaluations counted per policy and hour, and exceptions.

use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

/// One violation to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewViolation<'a> {
    pub at: i64,
    /// `scaffolder`, `ci`, `admission` or `audit`.
    pub point: &'a str,
    /// `deny`, `warn`, `dryrun`, `error` or `excepted`.
    pub action: &'a str,
    pub policy: &'a str,
    pub kind: &'a str,
    pub object: &'a str,
    pub namespace: &'a str,
    pub message: &'a str,
    pub source: &'a str,
    pub team: Option<&'a str>,
}

/// Evaluations of one policy in one hour (unix seconds / 3600).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCount<'a> {
    pub hour: i64,
    pub policy: &'a str,
    pub evaluations: i64,
    pub errors: i64,
}

/// Writes a batch in one transaction: the hourly counts added, the
/// violations appended, and only the newest `kept` violations kept (ids only
/// grow, so one range delete on the key).
pub async fn write_batch(
    db: Db<'_>,
    counts: &[HourCount<'_>],
    violations: &[NewViolation<'_>],
    kept: i64,
) -> Result<(), Error> {
    let mut tx = db.begin().await?;
    for c in counts {
        dual_conn!(tx.conn(), |conn|
            sqlite: sqlx::query!(
                "INSERT INTO policy_evaluations_hourly (hour, policy, evaluations, errors) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (hour, policy) DO UPDATE SET evaluations = evaluations + excluded.evaluations,
                                                         errors = errors + excluded.errors",
                c.hour,
                c.policy,
                c.evaluations,
                c.errors
            )
            .execute(conn)
            .await
            .map(drop),
            postgres: sqlx::query!(
                "INSERT INTO policy_evaluations_hourly (hour, policy, evaluations, errors) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (hour, policy) DO UPDATE SET
                     evaluations = policy_evaluations_hourly.evaluations + excluded.evaluations,
                     errors = policy_evaluations_hourly.errors + excluded.errors",
                c.hour,
                c.policy,
                c.evaluations,
                c.errors
            )
            .execute(conn)
            .await
            .map(drop),
        )?;
    }
    for v in violations {
        dual_conn!(tx.conn(), |conn|
            sqlite: sqlx::query!(
                "INSERT INTO policy_violations (at, point, action, policy, kind, object, namespace, message, source, team)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                v.at,
                v.point,
                v.action,
                v.policy,
                v.kind,
                v.object,
                v.namespace,
                v.message,
                v.source,
                v.team
            )
            .execute(conn)
            .await
            .map(drop),
            postgres: sqlx::query!(
                "INSERT INTO policy_violations (at, point, action, policy, kind, object, namespace, message, source, team)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                v.at,
                v.point,
                v.action,
                v.policy,
                v.kind,
                v.object,
                v.namespace,
                v.message,
                v.source,
                v.team
            )
            .execute(conn)
            .await
            .map(drop),
        )?;
    }
    dual_conn!(tx.conn(), |conn|
        sqlite: sqlx::query!(
            "DELETE FROM policy_violations WHERE id <= (SELECT MAX(id) FROM policy_violations) - ?1",
            kept
        )
        .execute(conn)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "DELETE FROM policy_violations WHERE id <= (SELECT MAX(id) FROM policy_violations) - $1",
            kept
        )
        .execute(conn)
        .await
        .map(drop),
    )?;
    tx.commit().await
}

/// Violations per policy since `since` (unix seconds).
pub async fn counts_since(db: Db<'_>, since: i64) -> Result<Vec<(String, i64)>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query!(
            r#"SELECT policy, COUNT(*) AS "n!: i64" FROM policy_violations WHERE at >= ?1 GROUP BY policy"#,
            since
        )
        .fetch_all(pool)
        .await
        .map(|rows| rows.into_iter().map(|r| (r.policy, r.n)).collect()),
        postgres: sqlx::query!(
            r#"SELECT policy, COUNT(*) AS "n!" FROM policy_violations WHERE at >= $1 GROUP BY policy"#,
            since
        )
        .fetch_all(pool)
        .await
        .map(|rows| rows.into_iter().map(|r| (r.policy, r.n)).collect()),
    )
}

/// A recorded violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationRecord {
    pub id: i64,
    pub at: i64,
    pub point: String,
    pub action: String,
    pub policy: String,
    pub kind: String,
    pub object: String,
    pub namespace: String,
    pub message: String,
    pub source: String,
    pub team: Option<String>,
}

/// Up to `limit` violations with ids below `before`, newest first, of one
/// enforcement point and one policy when given.
pub async fn violations(
    db: Db<'_>,
    before: i64,
    point: Option<&str>,
    policy: Option<&str>,
    limit: i64,
) -> Result<Vec<ViolationRecord>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            ViolationRecord,
            r#"SELECT id AS "id!: i64", at, point, action, policy, kind, object, namespace, message, source, team
               FROM policy_violations
               WHERE id < ?1 AND (?2 IS NULL OR point = ?2) AND (?3 IS NULL OR policy = ?3)
               ORDER BY id DESC LIMIT ?4"#,
            before,
            point,
            policy,
            limit
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            ViolationRecord,
            r#"SELECT id, at, point, action, policy, kind, object, namespace, message, source, team
               FROM policy_violations
               WHERE id < $1 AND ($2::TEXT IS NULL OR point = $2) AND ($3::TEXT IS NULL OR policy = $3)
               ORDER BY id DESC LIMIT $4"#,
            before,
            point,
            policy,
            limit
        )
        .fetch_all(pool)
        .await,
    )
}

/// How many violations there are, of one point and one policy when given.
pub async fn violation_total(
    db: Db<'_>,
    point: Option<&str>,
    policy: Option<&str>,
) -> Result<i64, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!: i64" FROM policy_violations
               WHERE (?1 IS NULL OR point = ?1) AND (?2 IS NULL OR policy = ?2)"#,
            point,
            policy
        )
        .fetch_one(pool)
        .await,
        postgres: sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!" FROM policy_violations
               WHERE ($1::TEXT IS NULL OR point = $1) AND ($2::TEXT IS NULL OR policy = $2)"#,
            point,
            policy
        )
        .fetch_one(pool)
        .await,
    )
}

/// An exception as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRecord {
    pub id: i64,
    pub policy: String,
    pub namespace: String,
    pub object_name: String,
    pub team: String,
    pub reason: String,
    pub expires_at: i64,
    pub created_by: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// The newest 500 exceptions, revoked and expired ones included.
pub async fn exceptions(db: Db<'_>) -> Result<Vec<ExceptionRecord>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            ExceptionRecord,
            r#"SELECT id AS "id!: i64", policy, namespace, object_name, team, reason, expires_at,
                      created_by, created_at, revoked_at
               FROM policy_exceptions ORDER BY id DESC LIMIT 500"#
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            ExceptionRecord,
            r#"SELECT id, policy, namespace, object_name, team, reason, expires_at,
                      created_by, created_at, revoked_at
               FROM policy_exceptions ORDER BY id DESC LIMIT 500"#
        )
        .fetch_all(pool)
        .await,
    )
}

/// An exception that was not revoked (it may have expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnrevokedException {
    pub policy: String,
    pub namespace: String,
    pub object_name: String,
    pub expires_at: i64,
}

/// Every exception not revoked.
pub async fn unrevoked_exceptions(db: Db<'_>) -> Result<Vec<UnrevokedException>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            UnrevokedException,
            "SELECT policy, namespace, object_name, expires_at FROM policy_exceptions WHERE revoked_at IS NULL"
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            UnrevokedException,
            "SELECT policy, namespace, object_name, expires_at FROM policy_exceptions WHERE revoked_at IS NULL -- postgres"
        )
        .fetch_all(pool)
        .await,
    )
}

/// A new exception.
#[derive(Debug, Clone, Copy)]
pub struct NewException<'a> {
    pub policy: &'a str,
    pub namespace: &'a str,
    pub object_name: &'a str,
    pub team: &'a str,
    pub reason: &'a str,
    pub expires_at: i64,
    pub created_by: &'a str,
    pub created_at: i64,
}

/// Stores an exception; its id.
pub async fn insert_exception(conn: Conn<'_>, e: NewException<'_>) -> Result<i64, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query_scalar!(
            r#"INSERT INTO policy_exceptions (policy, namespace, object_name, team, reason, expires_at, created_by, created_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id AS "id!: i64""#,
            e.policy,
            e.namespace,
            e.object_name,
            e.team,
            e.reason,
            e.expires_at,
            e.created_by,
            e.created_at
        )
        .fetch_one(c)
        .await,
        postgres: sqlx::query_scalar!(
            r#"INSERT INTO policy_exceptions (policy, namespace, object_name, team, reason, expires_at, created_by, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"#,
            e.policy,
            e.namespace,
            e.object_name,
            e.team,
            e.reason,
            e.expires_at,
            e.created_by,
            e.created_at
        )
        .fetch_one(c)
        .await,
    )
}

/// Revokes an active exception; whether there was one.
pub async fn revoke_exception(conn: Conn<'_>, id: i64, by: &str, now: i64) -> Result<bool, Error> {
    let changed = dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "UPDATE policy_exceptions SET revoked_at = ?1, revoked_by = ?2 WHERE id = ?3 AND revoked_at IS NULL",
            now,
            by,
            id
        )
        .execute(c)
        .await
        .map(|r| r.rows_affected()),
        postgres: sqlx::query!(
            "UPDATE policy_exceptions SET revoked_at = $1, revoked_by = $2 WHERE id = $3 AND revoked_at IS NULL",
            now,
            by,
            id
        )
        .execute(c)
        .await
        .map(|r| r.rows_affected()),
    )?;
    Ok(changed == 1)
}
