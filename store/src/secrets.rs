//! Secret metadata: which secrets exist, their versions and writers, and
//! the state of each scope's Vault policy and Kubernetes role. No value
//! ever passes through here.

use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

/// A secret's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRow {
    pub id: i64,
    pub team: String,
    pub holder: String,
    pub name: String,
    pub current_version: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

/// A version's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    pub version: i64,
    pub created_at: i64,
    pub created_by: String,
    pub vault_request_id: Option<String>,
}

/// A scope's access row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRow {
    pub policy_name: String,
    pub role_name: Option<String>,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
    pub policy_synced_at: Option<i64>,
    pub role_synced_at: Option<i64>,
    pub last_attempt_at: i64,
    pub last_error: Option<String>,
}

/// Every secret of `team`'s `holder` (or of every holder), by holder and name.
pub async fn list(db: Db<'_>, team: &str, holder: Option<&str>) -> Result<Vec<SecretRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            SecretRow,
            r#"SELECT id AS "id!", team, holder, name, current_version, updated_at, updated_by
               FROM secrets WHERE team = ?1 AND (?2 IS NULL OR holder = ?2) ORDER BY holder, name"#,
            team,
            holder
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            SecretRow,
            r#"SELECT id, team, holder, name, current_version, updated_at, updated_by
               FROM secrets WHERE team = $1 AND ($2::TEXT IS NULL OR holder = $2)
               ORDER BY holder COLLATE "C", name COLLATE "C""#,
            team,
            holder
        )
        .fetch_all(pool)
        .await,
    )
}

/// One secret.
pub async fn find(
    db: Db<'_>,
    team: &str,
    holder: &str,
    name: &str,
) -> Result<Option<SecretRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            SecretRow,
            r#"SELECT id AS "id!", team, holder, name, current_version, updated_at, updated_by
               FROM secrets WHERE team = ?1 AND holder = ?2 AND name = ?3"#,
            team,
            holder,
            name
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_as!(
            SecretRow,
            "SELECT id, team, holder, name, current_version, updated_at, updated_by
               FROM secrets WHERE team = $1 AND holder = $2 AND name = $3",
            team,
            holder,
            name
        )
        .fetch_optional(pool)
        .await,
    )
}

/// The versions Paved wrote, newest first.
pub async fn versions(db: Db<'_>, secret_id: i64) -> Result<Vec<VersionRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            VersionRow,
            "SELECT version, created_at, created_by, vault_request_id
               FROM secret_versions WHERE secret_id = ?1 ORDER BY version DESC",
            secret_id
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            VersionRow,
            "SELECT version, created_at, created_by, vault_request_id
               FROM secret_versions WHERE secret_id = $1 ORDER BY version DESC",
            secret_id
        )
        .fetch_all(pool)
        .await,
    )
}

/// A version written to Vault.
#[derive(Debug, Clone, Copy)]
pub struct NewVersion<'a> {
    pub team: &'a str,
    pub holder: &'a str,
    pub name: &'a str,
    pub version: i64,
    pub actor: &'a str,
    pub vault_request_id: Option<&'a str>,
    pub now: i64,
}

/// Records a version (and the secret, the first time).
pub async fn record_version(conn: &mut Conn<'_>, v: NewVersion<'_>) -> Result<(), Error> {
    dual_conn!(conn.reborrow(), |c|
        sqlite: {
            let id = sqlx::query_scalar!(
                r#"INSERT INTO secrets (team, holder, name, current_version, created_at, created_by, updated_at, updated_by)
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?6)
                   ON CONFLICT (team, holder, name) DO UPDATE SET
                     current_version = excluded.current_version, updated_at = excluded.updated_at, updated_by = excluded.updated_by
                   RETURNING id AS "id!""#,
                v.team,
                v.holder,
                v.name,
                v.version,
                v.now,
                v.actor
            )
            .fetch_one(&mut *c)
            .await?;
            sqlx::query!(
                r#"INSERT INTO secret_versions (secret_id, version, created_at, created_by, vault_request_id)
                   VALUES (?1, ?2, ?3, ?4, ?5)
                   ON CONFLICT (secret_id, version) DO UPDATE SET created_at = excluded.created_at,
                     created_by = excluded.created_by, vault_request_id = excluded.vault_request_id"#,
                id,
                v.version,
                v.now,
                v.actor,
                v.vault_request_id
            )
            .execute(c)
            .await
            .map(drop)
        },
        postgres: {
            let id = sqlx::query_scalar!(
                r#"INSERT INTO secrets (team, holder, name, current_version, created_at, created_by, updated_at, updated_by)
                   VALUES ($1, $2, $3, $4, $5, $6, $5, $6)
                   ON CONFLICT (team, holder, name) DO UPDATE SET
                     current_version = excluded.current_version, updated_at = excluded.updated_at, updated_by = excluded.updated_by
                   RETURNING id"#,
                v.team,
                v.holder,
                v.name,
                v.version,
                v.now,
                v.actor
            )
            .fetch_one(&mut *c)
            .await?;
            sqlx::query!(
                r#"INSERT INTO secret_versions (secret_id, version, created_at, created_by, vault_request_id)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (secret_id, version) DO UPDATE SET created_at = excluded.created_at,
                     created_by = excluded.created_by, vault_request_id = excluded.vault_request_id"#,
                id,
                v.version,
                v.now,
                v.actor,
                v.vault_request_id
            )
            .execute(c)
            .await
            .map(drop)
        },
    )
}

/// Forgets a secret (its versions go with it).
pub async fn remove(conn: Conn<'_>, team: &str, holder: &str, name: &str) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "DELETE FROM secrets WHERE team = ?1 AND holder = ?2 AND name = ?3",
            team,
            holder,
            name
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "DELETE FROM secrets WHERE team = $1 AND holder = $2 AND name = $3",
            team,
            holder,
            name
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// The access row of a scope.
pub async fn access(db: Db<'_>, team: &str, holder: &str) -> Result<Option<AccessRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            AccessRow,
            "SELECT policy_name, role_name, namespace, service_account, policy_synced_at,
                    role_synced_at, last_attempt_at, last_error
               FROM secret_access WHERE team = ?1 AND holder = ?2",
            team,
            holder
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_as!(
            AccessRow,
            "SELECT policy_name, role_name, namespace, service_account, policy_synced_at,
                    role_synced_at, last_attempt_at, last_error
               FROM secret_access WHERE team = $1 AND holder = $2",
            team,
            holder
        )
        .fetch_optional(pool)
        .await,
    )
}

/// Stores the outcome of one convergence run.
pub async fn save_access(
    db: Db<'_>,
    team: &str,
    holder: &str,
    row: &AccessRow,
) -> Result<(), Error> {
    dual!(db, |pool|
        sqlite: sqlx::query!(
            r#"INSERT INTO secret_access (team, holder, policy_name, role_name, namespace, service_account,
                                          policy_synced_at, role_synced_at, last_attempt_at, last_error)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
               ON CONFLICT (team, holder) DO UPDATE SET policy_name = excluded.policy_name,
                 role_name = excluded.role_name, namespace = excluded.namespace,
                 service_account = excluded.service_account, policy_synced_at = excluded.policy_synced_at,
                 role_synced_at = excluded.role_synced_at, last_attempt_at = excluded.last_attempt_at,
                 last_error = excluded.last_error"#,
            team,
            holder,
            row.policy_name,
            row.role_name,
            row.namespace,
            row.service_account,
            row.policy_synced_at,
            row.role_synced_at,
            row.last_attempt_at,
            row.last_error
        )
        .execute(pool)
        .await
        .map(drop),
        postgres: sqlx::query!(
            r#"INSERT INTO secret_access (team, holder, policy_name, role_name, namespace, service_account,
                                          policy_synced_at, role_synced_at, last_attempt_at, last_error)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (team, holder) DO UPDATE SET policy_name = excluded.policy_name,
                 role_name = excluded.role_name, namespace = excluded.namespace,
                 service_account = excluded.service_account, policy_synced_at = excluded.policy_synced_at,
                 role_synced_at = excluded.role_synced_at, last_attempt_at = excluded.last_attempt_at,
                 last_error = excluded.last_error"#,
            team,
            holder,
            row.policy_name,
            row.role_name,
            row.namespace,
            row.service_account,
            row.policy_synced_at,
            row.role_synced_at,
            row.last_attempt_at,
            row.last_error
        )
        .execute(pool)
        .await
        .map(drop),
    )
}

/// A service's Kubernetes auth role in Vault, as the policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRole {
    /// The service.
    pub holder: String,
    pub role: String,
    pub namespace: String,
    pub service_account: String,
}

/// Every service with a Kubernetes role, by team and service.
pub async fn workload_roles(db: Db<'_>) -> Result<Vec<WorkloadRole>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            WorkloadRole,
            r#"SELECT holder, role_name AS "role!: String", namespace AS "namespace!: String",
                      service_account AS "service_account!: String"
               FROM secret_access
               WHERE role_name IS NOT NULL AND namespace IS NOT NULL AND service_account IS NOT NULL
               ORDER BY team, holder"#
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            WorkloadRole,
            r#"SELECT holder, role_name AS "role!", namespace AS "namespace!",
                      service_account AS "service_account!"
               FROM secret_access
               WHERE role_name IS NOT NULL AND namespace IS NOT NULL AND service_account IS NOT NULL
               ORDER BY team COLLATE "C", holder COLLATE "C""#
        )
        .fetch_all(pool)
        .await,
    )
}
