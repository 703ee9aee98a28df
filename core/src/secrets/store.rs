//! Secret metadata in SQLite: which secrets exist, their versions and
//! writers, and the state of each scope's Vault policy and Kubernetes role.
//! No value ever passes through here.

use sqlx::SqlitePool;

use super::naming::SecretTarget;
use crate::CoreError;

/// A secret's row.
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
pub struct VersionRow {
    pub version: i64,
    pub created_at: i64,
    pub created_by: String,
    pub vault_request_id: Option<String>,
}

/// A scope's access row.
#[derive(Debug, Clone)]
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

/// Every secret of `team`'s `holder`, by name.
pub async fn list(
    pool: &SqlitePool,
    team: &str,
    holder: &str,
) -> Result<Vec<SecretRow>, CoreError> {
    Ok(sqlx::query_as!(
        SecretRow,
        r#"SELECT id AS "id!", team, holder, name, current_version, updated_at, updated_by
           FROM secrets WHERE team = ?1 AND holder = ?2 ORDER BY name"#,
        team,
        holder
    )
    .fetch_all(pool)
    .await?)
}

/// Every secret of `team`, any holder.
pub async fn list_team(pool: &SqlitePool, team: &str) -> Result<Vec<SecretRow>, CoreError> {
    Ok(sqlx::query_as!(
        SecretRow,
        r#"SELECT id AS "id!", team, holder, name, current_version, updated_at, updated_by
           FROM secrets WHERE team = ?1 ORDER BY holder, name"#,
        team
    )
    .fetch_all(pool)
    .await?)
}

/// One secret.
pub async fn find(
    pool: &SqlitePool,
    target: &SecretTarget,
) -> Result<Option<SecretRow>, CoreError> {
    let holder = target.holder.segment();
    Ok(sqlx::query_as!(
        SecretRow,
        r#"SELECT id AS "id!", team, holder, name, current_version, updated_at, updated_by
           FROM secrets WHERE team = ?1 AND holder = ?2 AND name = ?3"#,
        target.team,
        holder,
        target.name
    )
    .fetch_optional(pool)
    .await?)
}

/// The versions Paved wrote, newest first.
pub async fn versions(pool: &SqlitePool, secret_id: i64) -> Result<Vec<VersionRow>, CoreError> {
    Ok(sqlx::query_as!(
        VersionRow,
        r#"SELECT version, created_at, created_by, vault_request_id
           FROM secret_versions WHERE secret_id = ?1 ORDER BY version DESC"#,
        secret_id
    )
    .fetch_all(pool)
    .await?)
}

/// The audit entry written with a change.
pub struct AuditNote<'a> {
    /// e.g. `secret.create`.
    pub action: &'a str,
    /// e.g. the KV path.
    pub target: &'a str,
    /// What to record (request ids, version).
    pub after: serde_json::Value,
}

/// Records a new version (and the secret, the first time) in one transaction with its audit entry.
pub async fn record_version(
    pool: &SqlitePool,
    target: &SecretTarget,
    version: i64,
    actor: &str,
    vault_request_id: Option<&str>,
    audit: AuditNote<'_>,
) -> Result<(), CoreError> {
    let now = crate::now_unix();
    let holder = target.holder.segment();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let id = sqlx::query_scalar!(
        r#"INSERT INTO secrets (team, holder, name, current_version, created_at, created_by, updated_at, updated_by)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?6)
           ON CONFLICT (team, holder, name) DO UPDATE SET
             current_version = excluded.current_version, updated_at = excluded.updated_at, updated_by = excluded.updated_by
           RETURNING id AS "id!""#,
        target.team,
        holder,
        target.name,
        version,
        now,
        actor
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        r#"INSERT INTO secret_versions (secret_id, version, created_at, created_by, vault_request_id)
           VALUES (?1, ?2, ?3, ?4, ?5)
           ON CONFLICT (secret_id, version) DO UPDATE SET created_at = excluded.created_at,
             created_by = excluded.created_by, vault_request_id = excluded.vault_request_id"#,
        id,
        version,
        now,
        actor,
        vault_request_id
    )
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut *tx,
        actor,
        audit.action,
        audit.target,
        None,
        Some(audit.after),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Forgets a destroyed secret (its versions go with it), with the audit entry.
pub async fn remove(
    pool: &SqlitePool,
    target: &SecretTarget,
    actor: &str,
    audit_target: &str,
    audit_before: serde_json::Value,
) -> Result<(), CoreError> {
    let holder = target.holder.segment();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query!(
        "DELETE FROM secrets WHERE team = ?1 AND holder = ?2 AND name = ?3",
        target.team,
        holder,
        target.name
    )
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut *tx,
        actor,
        "secret.destroy",
        audit_target,
        Some(audit_before),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The access row of a scope.
pub async fn access(
    pool: &SqlitePool,
    team: &str,
    holder: &str,
) -> Result<Option<AccessRow>, CoreError> {
    Ok(sqlx::query_as!(
        AccessRow,
        r#"SELECT policy_name, role_name, namespace, service_account, policy_synced_at,
                  role_synced_at, last_attempt_at, last_error
           FROM secret_access WHERE team = ?1 AND holder = ?2"#,
        team,
        holder
    )
    .fetch_optional(pool)
    .await?)
}

/// Stores the outcome of one convergence run.
pub async fn save_access(
    pool: &SqlitePool,
    team: &str,
    holder: &str,
    row: &AccessRow,
) -> Result<(), CoreError> {
    sqlx::query!(
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
    .await?;
    Ok(())
}

/// The Kubernetes identity of a service owned by `team`: the catalog
/// Component's `backstage.io/kubernetes-namespace` and
/// `paved.dev/kubernetes-service-account` annotations, else `default` and its name.
pub async fn workload(
    pool: &SqlitePool,
    team: &str,
    service: &str,
) -> Result<Option<(String, String)>, CoreError> {
    let owner = format!("group:default/{team}");
    let row = sqlx::query!(
        r#"SELECT e.name,
                  json_extract(e.body, '$.metadata.annotations."backstage.io/kubernetes-namespace"') AS "namespace: String",
                  json_extract(e.body, '$.metadata.annotations."paved.dev/kubernetes-service-account"') AS "service_account: String",
                  l.team AS "location_team?: String"
           FROM catalog_entities e LEFT JOIN catalog_locations l ON l.id = e.location_id
           WHERE e.kind_key = 'component' AND e.name_key = lower(?1) AND lower(e.owner_ref) = ?2
           LIMIT 1"#,
        service,
        owner
    )
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    // Ownership claimed from another team's golden-path location is not ownership.
    if let Some(holder) = r.location_team.as_deref().filter(|t| *t != team) {
        return Err(CoreError::Forbidden(format!(
            "Component {service} claims team {team} as its owner, but it was registered by a golden path of team {holder}; secrets bind only to components the team registered itself or a platform admin registered."
        )));
    }
    let namespace = r.namespace.unwrap_or_else(|| "default".into());
    let service_account = r
        .service_account
        .unwrap_or_else(|| r.name.to_ascii_lowercase());
    for (annotation, value) in [
        ("backstage.io/kubernetes-namespace", &namespace),
        ("paved.dev/kubernetes-service-account", &service_account),
    ] {
        if !is_dns1123_label(value) {
            return Err(CoreError::Invalid {
                field: "workload",
                message: format!(
                    "Component {service}'s annotation {annotation} is `{value}`, which is not a Kubernetes name (1 to 63 lowercase letters, digits and dashes, no wildcards); fix it in catalog-info.yaml first."
                ),
            });
        }
    }
    Ok(Some((namespace, service_account)))
}

/// A Kubernetes namespace or service-account name as a Vault role may bind
/// it: a DNS-1123 label (1 to 63 of `a-z`, `0-9`, `-`, alphanumeric at both
/// ends). Wildcards and globs are refused.
pub fn is_dns1123_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod workload_tests {
    #[test]
    fn only_plain_kubernetes_names_bind() {
        for ok in ["payments", "payments-api", "a", "x1"] {
            assert!(super::is_dns1123_label(ok), "{ok}");
        }
        for bad in [
            "*",
            "pay*",
            "Payments",
            "-x",
            "x-",
            "",
            "a.b",
            "a b",
            &"x".repeat(64),
        ] {
            assert!(!super::is_dns1123_label(bad), "{bad}");
        }
    }

    /// Attack: a Component that claims team payments, with a wildcard
    /// namespace or from a location another team's golden path registered,
    /// must not get a Vault role bound to it.
    #[sqlx::test(migrations = "../migrations")]
    async fn workloads_bind_only_plain_names_from_the_teams_own_locations(pool: sqlx::SqlitePool) {
        use crate::catalog::source::{SourceLimits, Sources};
        use crate::catalog::store::register_scaffolded;
        use crate::CoreError;
        let sources = Sources::new(&[], &[], SourceLimits::default());
        let component = |name: &str, namespace: &str| {
            format!(
                "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations:\n    backstage.io/kubernetes-namespace: '{namespace}'\nspec: {{type: service, lifecycle: production, owner: payments}}\n"
            )
        };
        for (location, yaml, team) in [
            ("loc-wild", component("svc-wild", "*"), "payments"),
            ("loc-other", component("svc-other", "payments"), "search"),
            ("loc-own", component("svc-own", "payments"), "payments"),
        ] {
            register_scaffolded(&pool, &sources, "test", location, &yaml, Some(team))
                .await
                .unwrap();
        }
        let wild = super::workload(&pool, "payments", "svc-wild").await;
        assert!(
            matches!(&wild, Err(CoreError::Invalid { message, .. }) if message.contains("not a Kubernetes name")),
            "{wild:?}"
        );
        let other = super::workload(&pool, "payments", "svc-other").await;
        assert!(
            matches!(&other, Err(CoreError::Forbidden(m)) if m.contains("team search")),
            "{other:?}"
        );
        assert_eq!(
            super::workload(&pool, "payments", "svc-own").await.unwrap(),
            Some(("payments".to_owned(), "svc-own".to_owned()))
        );
    }
}
