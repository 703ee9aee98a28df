//! Secret metadata (stored through `paved-store`, on either database): which secrets exist, their versions and
//! writers, and the state of each scope's Vault policy and Kubernetes role.
//! No value ever passes through here.

use sqlx::SqlitePool;

use super::naming::SecretTarget;
use crate::CoreError;

pub use paved_store::secrets::{AccessRow, SecretRow, VersionRow};
use paved_store::Db;

/// Every secret of `team`'s `holder`, by name.
pub async fn list(
    db: impl Into<Db<'_>>,
    team: &str,
    holder: &str,
) -> Result<Vec<SecretRow>, CoreError> {
    Ok(paved_store::secrets::list(db.into(), team, Some(holder)).await?)
}

/// Every secret of `team`, any holder.
pub async fn list_team(db: impl Into<Db<'_>>, team: &str) -> Result<Vec<SecretRow>, CoreError> {
    Ok(paved_store::secrets::list(db.into(), team, None).await?)
}

/// One secret.
pub async fn find(
    db: impl Into<Db<'_>>,
    target: &SecretTarget,
) -> Result<Option<SecretRow>, CoreError> {
    Ok(paved_store::secrets::find(
        db.into(),
        &target.team,
        target.holder.segment(),
        &target.name,
    )
    .await?)
}

/// The versions Paved wrote, newest first.
pub async fn versions(db: impl Into<Db<'_>>, secret_id: i64) -> Result<Vec<VersionRow>, CoreError> {
    Ok(paved_store::secrets::versions(db.into(), secret_id).await?)
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
    db: impl Into<Db<'_>>,
    target: &SecretTarget,
    version: i64,
    actor: &str,
    vault_request_id: Option<&str>,
    audit: AuditNote<'_>,
) -> Result<(), CoreError> {
    let holder = target.holder.segment();
    let mut tx = db.into().begin().await?;
    paved_store::secrets::record_version(
        &mut tx.conn(),
        paved_store::secrets::NewVersion {
            team: &target.team,
            holder,
            name: &target.name,
            version,
            actor,
            vault_request_id,
            now: crate::now_unix(),
        },
    )
    .await?;
    crate::audit::record(
        tx.conn(),
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
    db: impl Into<Db<'_>>,
    target: &SecretTarget,
    actor: &str,
    audit_target: &str,
    audit_before: serde_json::Value,
) -> Result<(), CoreError> {
    let holder = target.holder.segment();
    let mut tx = db.into().begin().await?;
    paved_store::secrets::remove(tx.conn(), &target.team, holder, &target.name).await?;
    crate::audit::record(
        tx.conn(),
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
    db: impl Into<Db<'_>>,
    team: &str,
    holder: &str,
) -> Result<Option<AccessRow>, CoreError> {
    Ok(paved_store::secrets::access(db.into(), team, holder).await?)
}

/// Stores the outcome of one convergence run.
pub async fn save_access(
    db: impl Into<Db<'_>>,
    team: &str,
    holder: &str,
    row: &AccessRow,
) -> Result<(), CoreError> {
    Ok(paved_store::secrets::save_access(db.into(), team, holder, row).await?)
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

#[cfg(test)]
mod both_backends_tests {
    use super::*;

    /// Versions, access rows and removal are kept alike on SQLite and
    /// PostgreSQL, each change with its audit entry.
    #[tokio::test]
    async fn secret_metadata_is_kept_alike_on_both_backends() {
        let Some((sqlite, postgres)) = crate::db::both_backends("secrets").await else {
            return;
        };
        let db_key = SecretTarget::service("payments", "checkout", "database").unwrap();
        let api_key = SecretTarget::service("payments", "checkout", "api-key").unwrap();
        let shared = SecretTarget::team_wide("payments", "shared-token").unwrap();
        let mut seen = vec![];
        for db in [Db::Sqlite(&sqlite), Db::Postgres(&postgres)] {
            let note = |action| AuditNote {
                action,
                target: "kv/payments/checkout",
                after: serde_json::json!({"v": 1}),
            };
            record_version(
                db,
                &db_key,
                1,
                "user:dana",
                Some("req-1"),
                note("secret.create"),
            )
            .await
            .unwrap();
            record_version(db, &db_key, 2, "user:lee", None, note("secret.update"))
                .await
                .unwrap();
            record_version(db, &api_key, 1, "user:dana", None, note("secret.create"))
                .await
                .unwrap();
            record_version(db, &shared, 1, "user:lee", None, note("secret.create"))
                .await
                .unwrap();
            let found = find(db, &db_key).await.unwrap().unwrap();
            assert_eq!(
                (found.current_version, found.updated_by.as_str()),
                (2, "user:lee")
            );
            let history = versions(db, found.id).await.unwrap();
            let numbers: Vec<(i64, Option<String>)> = history
                .iter()
                .map(|v| (v.version, v.vault_request_id.clone()))
                .collect();
            assert_eq!(numbers, [(2, None), (1, Some("req-1".into()))]);
            let names = |rows: Vec<SecretRow>| -> Vec<(String, String)> {
                rows.into_iter().map(|r| (r.holder, r.name)).collect()
            };
            let service = names(list(db, "payments", "checkout").await.unwrap());
            assert_eq!(
                service,
                [
                    ("checkout".into(), "api-key".into()),
                    ("checkout".into(), "database".into())
                ]
            );
            let team = names(list_team(db, "payments").await.unwrap());
            assert_eq!(team.len(), 3);
            let row = AccessRow {
                policy_name: "payments-checkout".into(),
                role_name: Some("payments-checkout".into()),
                namespace: Some("payments".into()),
                service_account: Some("checkout".into()),
                policy_synced_at: Some(10),
                role_synced_at: None,
                last_attempt_at: 11,
                last_error: Some("Kubernetes auth is not enabled".into()),
            };
            save_access(db, "payments", "checkout", &row).await.unwrap();
            let fixed = AccessRow {
                role_synced_at: Some(12),
                last_attempt_at: 12,
                last_error: None,
                ..row
            };
            save_access(db, "payments", "checkout", &fixed)
                .await
                .unwrap();
            assert_eq!(
                access(db, "payments", "checkout").await.unwrap(),
                Some(fixed)
            );
            assert_eq!(access(db, "payments", "other").await.unwrap(), None);
            remove(
                db,
                &db_key,
                "user:lee",
                "kv/payments/checkout/database",
                serde_json::json!({}),
            )
            .await
            .unwrap();
            assert!(find(db, &db_key).await.unwrap().is_none());
            assert!(
                versions(db, found.id).await.unwrap().is_empty(),
                "versions go with it"
            );
            let audit = crate::audit::list(db, 0, 10).await.unwrap();
            let actions: Vec<String> = audit.entries.iter().map(|e| e.action.clone()).collect();
            seen.push((team, actions));
        }
        assert_eq!(seen[0], seen[1]);
    }
}
