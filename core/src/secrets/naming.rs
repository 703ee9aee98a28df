//! Where a secret lives and what Paved writes for it: KV paths, ACL policy
//! names and bodies, Kubernetes auth role names and Vault Agent Injector
//! annotations. Pure functions, so every rule is unit-tested here.

use serde::{Deserialize, Serialize};

use crate::config::VaultConfig;
use crate::CoreError;

pub use paved_shared::secrets::{
    LLM_HOLDER as LLM_SEGMENT, LLM_KEYS_NAME, TEAM_HOLDER as TEAM_SEGMENT,
};

/// Whose secret it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Holder {
    /// A catalog service (lowercased entity name).
    Service(String),
    /// The team as a whole.
    Team,
    /// The team's LLM provider keys, read by the platform gateway.
    LlmKeys,
}

impl Holder {
    /// The segment stored in the database and used in paths.
    pub fn segment(&self) -> &str {
        match self {
            Holder::Service(s) => s,
            Holder::Team => TEAM_SEGMENT,
            Holder::LlmKeys => LLM_SEGMENT,
        }
    }

    /// Reads a stored segment back.
    pub fn from_segment(segment: &str) -> Self {
        match segment {
            TEAM_SEGMENT => Holder::Team,
            LLM_SEGMENT => Holder::LlmKeys,
            other => Holder::Service(other.to_owned()),
        }
    }
}

/// One secret's identity: team, holder and name, all validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretTarget {
    /// The owning team.
    pub team: String,
    /// The service, the team, or the team's LLM keys.
    pub holder: Holder,
    /// The secret's name (a file name under `/vault/secrets/` in the pod).
    pub name: String,
}

impl SecretTarget {
    /// A service's secret.
    pub fn service(team: &str, service: &str, name: &str) -> Result<Self, CoreError> {
        Ok(Self {
            team: validate_team(team)?,
            holder: Holder::Service(validate_service(service)?),
            name: validate_secret_name(name)?,
        })
    }

    /// A team-wide secret.
    pub fn team_wide(team: &str, name: &str) -> Result<Self, CoreError> {
        Ok(Self {
            team: validate_team(team)?,
            holder: Holder::Team,
            name: validate_secret_name(name)?,
        })
    }

    /// A team's LLM provider keys (`{prefix}/llm/{team}`).
    pub fn llm_keys(team: &str) -> Result<Self, CoreError> {
        Ok(Self {
            team: validate_team(team)?,
            holder: Holder::LlmKeys,
            name: LLM_KEYS_NAME.into(),
        })
    }

    /// The secret `name` of a holder given by its path segment: a service's
    /// name, [`TEAM_SEGMENT`] or [`LLM_SEGMENT`] (whose one secret has a fixed name).
    pub fn in_holder(team: &str, holder: &str, name: &str) -> Result<Self, CoreError> {
        match holder {
            TEAM_SEGMENT => Self::team_wide(team, name),
            LLM_SEGMENT => Self::llm_keys(team),
            service => Self::service(team, service, name),
        }
    }

    /// The path below the KV mount, e.g. `platform/payments/checkout/db`.
    pub fn relative_path(&self, prefix: &str) -> String {
        match &self.holder {
            Holder::LlmKeys => format!("{prefix}/llm/{}", self.team),
            holder => format!("{prefix}/{}/{}/{}", self.team, holder.segment(), self.name),
        }
    }
}

/// A service or the team as a whole: what one ACL policy (and, for services,
/// one Kubernetes role) covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessScope {
    /// The owning team.
    pub team: String,
    /// The service, or the team as a whole.
    pub holder: Holder,
}

impl AccessScope {
    /// The scope a secret belongs to; `None` for LLM keys, which only the portal reads.
    pub fn of(target: &SecretTarget) -> Option<Self> {
        match target.holder {
            Holder::LlmKeys => None,
            _ => Some(Self {
                team: target.team.clone(),
                holder: target.holder.clone(),
            }),
        }
    }

    /// The ACL policy name: `paved__{team}__{service}` or `paved__{team}`. Double
    /// underscores never occur in validated names, so names cannot collide.
    pub fn policy_name(&self) -> String {
        match &self.holder {
            Holder::Service(service) => format!("paved__{}__{service}", self.team),
            _ => format!("paved__{}", self.team),
        }
    }

    /// The Kubernetes auth role name (services only).
    pub fn role_name(&self) -> Option<String> {
        match &self.holder {
            Holder::Service(service) => Some(format!("paved__{}__{service}", self.team)),
            _ => None,
        }
    }

    /// The ACL policy: read on exactly this scope's secrets, nothing else.
    pub fn policy_hcl(&self, vault: &VaultConfig) -> String {
        let folder = format!(
            "{}/data/{}/{}/{}",
            vault.kv_mount,
            vault.prefix,
            self.team,
            self.holder.segment()
        );
        let who = match &self.holder {
            Holder::Service(service) => format!("service {service} of team {}", self.team),
            _ => format!("every service of team {}", self.team),
        };
        format!(
            "# Managed by Paved; changes here are overwritten.\n# Read access to the secrets of {who}.\npath \"{folder}/*\" {{\n  capabilities = [\"read\"]\n}}\n"
        )
    }
}

/// The Kubernetes identity a service's workloads run as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadIdentity {
    /// The namespace (annotation `backstage.io/kubernetes-namespace`, default `default`).
    pub namespace: String,
    /// The service account (annotation `paved.dev/kubernetes-service-account`, default the service name).
    pub service_account: String,
    /// The Kubernetes auth mount of the cluster `kube:apply` deployed it to,
    /// when that cluster names one (else `PAVED_VAULT_K8S_AUTH_MOUNT`).
    pub auth_mount: Option<String>,
}

/// The Vault Agent Injector annotations for a service's pods, in order.
pub fn injector_annotations(
    vault: &VaultConfig,
    scope: &AccessScope,
    secret_names: &[String],
) -> Vec<(String, String)> {
    let Some(role) = scope.role_name() else {
        return Vec::new();
    };
    let mut out = vec![
        (
            "vault.hashicorp.com/agent-inject".to_owned(),
            "true".to_owned(),
        ),
        ("vault.hashicorp.com/role".to_owned(), role),
    ];
    if vault.workload_auth_mount != "kubernetes" {
        out.push((
            "vault.hashicorp.com/auth-path".into(),
            format!("auth/{}", vault.workload_auth_mount),
        ));
    }
    if let Some(ns) = &vault.namespace {
        out.push(("vault.hashicorp.com/namespace".into(), ns.clone()));
    }
    for name in secret_names {
        let target = SecretTarget {
            team: scope.team.clone(),
            holder: scope.holder.clone(),
            name: name.clone(),
        };
        let path = format!(
            "{}/data/{}",
            vault.kv_mount,
            target.relative_path(&vault.prefix)
        );
        out.push((
            format!("vault.hashicorp.com/agent-inject-secret-{name}"),
            path.clone(),
        ));
        // One KEY=value line per key, so the file can be sourced or read as a dotenv file.
        out.push((
            format!("vault.hashicorp.com/agent-inject-template-{name}"),
            format!(
                "{{{{- with secret \"{path}\" -}}}}\n{{{{- range $k, $v := .Data.data }}}}\n{{{{ $k }}}}={{{{ $v }}}}\n{{{{- end }}}}\n{{{{- end }}}}\n"
            ),
        ));
    }
    out
}

/// The annotations as a ready-to-paste YAML block for a pod template.
pub fn annotations_yaml(annotations: &[(String, String)]) -> String {
    let mut out = String::from("metadata:\n  annotations:\n");
    for (key, value) in annotations {
        if value.contains('\n') {
            out.push_str(&format!("    {key}: |\n"));
            for line in value.lines() {
                out.push_str(&format!("      {line}\n"));
            }
        } else {
            out.push_str(&format!("    {key}: \"{value}\"\n"));
        }
    }
    out
}

fn invalid(field: &'static str, message: impl Into<String>) -> CoreError {
    CoreError::Invalid {
        field,
        message: message.into(),
    }
}

/// Catalog-style names: letters and digits separated by single `-`, `_` or `.`.
fn is_catalog_name(value: &str, max: usize) -> bool {
    let bytes = value.as_bytes();
    !value.is_empty()
        && value.len() <= max
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !bytes
            .windows(2)
            .any(|w| !w[0].is_ascii_alphanumeric() && !w[1].is_ascii_alphanumeric())
}

fn validate_team(team: &str) -> Result<String, CoreError> {
    let team = team.trim().to_ascii_lowercase();
    if is_catalog_name(&team, 63) && !team.contains(['_', '.']) {
        Ok(team)
    } else {
        Err(invalid("team", "is not a team name"))
    }
}

fn validate_service(service: &str) -> Result<String, CoreError> {
    let service = service.trim().to_ascii_lowercase();
    if is_catalog_name(&service, 63) {
        Ok(service)
    } else {
        Err(invalid(
            "service",
            "is not a catalog name (letters and digits separated by single - _ or .)",
        ))
    }
}

/// Secret names become file names in the pod and part of an annotation key
/// (at most 63 characters after `agent-inject-template-`).
pub fn validate_secret_name(name: &str) -> Result<String, CoreError> {
    let name = name.trim();
    match paved_shared::forms::secret_name_problem(name) {
        None => Ok(name.to_owned()),
        Some(message) => Err(invalid("name", message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{VaultAuth, VaultConfig};

    fn vault() -> VaultConfig {
        VaultConfig {
            address: "http://127.0.0.1:8200".parse().unwrap(),
            ca_cert: None,
            namespace: None,
            kv_mount: "secret".into(),
            prefix: "platform".into(),
            workload_auth_mount: "kubernetes".into(),
            workload_token_ttl: "1h".into(),
            auth: VaultAuth::Token("t".to_owned().into()),
            health_interval: std::time::Duration::from_secs(5),
        }
    }

    #[test]
    fn paths_follow_the_documented_layout() {
        let t = SecretTarget::service("payments", "Checkout-API", "database").unwrap();
        assert_eq!(
            t.relative_path("platform"),
            "platform/payments/checkout-api/database"
        );
        let t = SecretTarget::team_wide("payments", "shared").unwrap();
        assert_eq!(
            t.relative_path("platform"),
            "platform/payments/_team/shared"
        );
        let t = SecretTarget::llm_keys("payments").unwrap();
        assert_eq!(t.relative_path("platform"), "platform/llm/payments");
        assert!(AccessScope::of(&t).is_none());
    }

    #[test]
    fn names_that_could_escape_or_collide_are_refused() {
        for (team, service, name) in [
            ("payments", "../search", "db"),
            ("payments", "a/b", "db"),
            ("pay_ments", "checkout", "db"),
            ("payments", "check__out", "db"),
            ("payments", "_team", "db"),
            ("payments", "checkout", "DB"),
            ("payments", "checkout", "db/../../x"),
            ("payments", "checkout", ""),
            ("payments", "checkout", &"x".repeat(41)),
            ("", "checkout", "db"),
        ] {
            assert!(
                SecretTarget::service(team, service, name).is_err(),
                "{team}/{service}/{name}"
            );
        }
    }

    #[test]
    fn policy_grants_read_on_exactly_the_scope() {
        let scope =
            AccessScope::of(&SecretTarget::service("payments", "checkout", "db").unwrap()).unwrap();
        assert_eq!(scope.policy_name(), "paved__payments__checkout");
        assert_eq!(scope.role_name().unwrap(), "paved__payments__checkout");
        let hcl = scope.policy_hcl(&vault());
        assert!(hcl.contains("path \"secret/data/platform/payments/checkout/*\""));
        assert!(hcl.contains("capabilities = [\"read\"]"));
        assert_eq!(hcl.matches("path ").count(), 1);
        let team = AccessScope::of(&SecretTarget::team_wide("payments", "db").unwrap()).unwrap();
        assert_eq!(team.policy_name(), "paved__payments");
        assert!(team.role_name().is_none());
    }

    #[test]
    fn annotations_render_env_lines_per_secret() {
        let scope =
            AccessScope::of(&SecretTarget::service("payments", "checkout", "db").unwrap()).unwrap();
        let a = injector_annotations(&vault(), &scope, &["db".into()]);
        let get = |k: &str| a.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("vault.hashicorp.com/agent-inject"), Some("true"));
        assert_eq!(
            get("vault.hashicorp.com/role"),
            Some("paved__payments__checkout")
        );
        assert_eq!(
            get("vault.hashicorp.com/agent-inject-secret-db"),
            Some("secret/data/platform/payments/checkout/db")
        );
        let template = get("vault.hashicorp.com/agent-inject-template-db").unwrap();
        assert!(template.contains("with secret \"secret/data/platform/payments/checkout/db\""));
        assert!(template.contains("{{ $k }}={{ $v }}"));
        let yaml = annotations_yaml(&a);
        let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(
            parsed["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-template-db"]
                .as_str()
                .unwrap(),
            template
        );
    }
}
