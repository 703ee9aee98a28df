//! Vault secrets on the wire: what the secrets panel and
//! `/api/secrets/v1/…` show. Values never appear in any of these types.

use serde::{Deserialize, Serialize};

/// The holder segment of a team's shared secrets.
pub const TEAM_HOLDER: &str = "_team";
/// The holder segment of a team's LLM provider keys.
pub const LLM_HOLDER: &str = "_llm";
/// The fixed name of a team's LLM provider keys.
pub const LLM_KEYS_NAME: &str = "provider-keys";

/// One secret, as listed (never its values).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretSummary {
    /// The owning team.
    pub team: String,
    /// The service name, `_team` or `_llm`.
    pub holder: String,
    /// The secret's name.
    pub name: String,
    /// The full KV v2 data path, e.g. `secret/data/platform/payments/checkout/db`.
    pub path: String,
    /// The newest version Paved wrote.
    pub current_version: i64,
    /// When it was last written (Unix seconds).
    pub updated_at: i64,
    /// Who wrote it last.
    pub updated_by: String,
}

/// One version's metadata.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretVersion {
    /// The version number.
    pub version: i64,
    /// When Vault created it (RFC 3339), or when Paved recorded it.
    pub created_at: String,
    /// Who wrote it through Paved (absent for versions written elsewhere).
    pub created_by: Option<String>,
    /// When it was soft-deleted, if it was.
    pub deleted_at: Option<String>,
    /// Whether its data is destroyed for good.
    pub destroyed: bool,
    /// Vault's request id of the write, to match Vault's audit log.
    pub vault_request_id: Option<String>,
}

/// A secret with its versions.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretDetail {
    /// The secret.
    pub summary: SecretSummary,
    /// Versions, newest first.
    pub versions: Vec<SecretVersion>,
    /// False when Vault could not be asked and the list comes from Paved's records alone.
    pub from_vault: bool,
}

/// How one provisioning step went.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Done (or already in place).
    Done,
    /// Failed; the detail says why.
    Failed,
    /// Not needed for this kind of secret.
    Skipped,
}

/// One provisioning step's outcome.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// `secret`, `policy` or `role`.
    pub step: String,
    /// What the step does, for people.
    pub label: String,
    /// How it went.
    pub state: StepState,
    /// The detail (what was written, or why it failed).
    pub detail: String,
}

/// What workloads need to read a scope's secrets, and whether it is in place.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessView {
    /// The ACL policy name.
    pub policy_name: String,
    /// The Kubernetes auth role (services only).
    pub role_name: Option<String>,
    /// The workloads' namespace (services only).
    pub namespace: Option<String>,
    /// The workloads' service account (services only).
    pub service_account: Option<String>,
    /// When the policy was last written successfully.
    pub policy_synced_at: Option<i64>,
    /// When the role was last written successfully.
    pub role_synced_at: Option<i64>,
    /// The last convergence error, if the last run failed.
    pub last_error: Option<String>,
    /// Whether everything is in place.
    pub complete: bool,
    /// The injector annotations, in order (services only), as [name, value] pairs.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<String>>))]
    pub annotations: Vec<(String, String)>,
    /// The same annotations as a YAML block to paste into a pod template.
    pub annotations_yaml: String,
}

/// The answer to a write: the new version, each step's outcome and the access details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteOutcome {
    /// Whether this created the secret (version 1).
    pub created: bool,
    /// The secret after the write.
    pub secret: SecretSummary,
    /// Secret, policy and role steps.
    pub steps: Vec<StepOutcome>,
    /// Policy, role and annotations (absent for LLM keys).
    pub access: Option<AccessView>,
    /// Vault's request id of the write.
    pub vault_request_id: Option<String>,
}

impl WriteOutcome {
    /// Whether every step succeeded.
    pub fn complete(&self) -> bool {
        self.steps.iter().all(|s| s.state != StepState::Failed)
    }
}

/// The secrets of one service (or the team as a whole) with their access state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HolderSecrets {
    /// The team.
    pub team: String,
    /// The service name, `_team` or `_llm`.
    pub holder: String,
    /// The secrets, by name.
    pub secrets: Vec<SecretSummary>,
    /// Policy, role and annotations, once anything was provisioned.
    pub access: Option<AccessView>,
}

/// Everything the secrets panel of a service or team shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretsPanelData {
    /// The team.
    pub team: String,
    /// The service name, `_team` or `_llm`.
    pub holder: String,
    /// The secrets.
    pub secrets: Vec<SecretSummary>,
    /// Workload access, once provisioned.
    pub access: Option<AccessView>,
    /// Whether the caller may create and rotate.
    pub can_write: bool,
    /// Whether the caller may delete versions and destroy.
    pub can_destroy: bool,
    /// Set when Vault is down or sealed.
    pub vault_notice: Option<String>,
    /// False when this portal has no Vault configured.
    pub configured: bool,
}

impl StepState {
    /// The wire name: `done`, `failed` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Done => "done",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
        }
    }
}

impl AccessView {
    /// `namespace/service-account` of the workloads, for services.
    pub fn workload(&self) -> Option<String> {
        self.namespace
            .as_ref()
            .zip(self.service_account.as_ref())
            .map(|(ns, sa)| format!("{ns}/{sa}"))
    }
}
