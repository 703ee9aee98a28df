# The Vault (or OpenBao) policy for Paved itself, for the defaults
# PAVED_VAULT_KV_MOUNT=secret, PAVED_VAULT_PREFIX=platform and
# PAVED_VAULT_K8S_AUTH_MOUNT=kubernetes. Replace those three if you change them.
# The test suite runs Paved with exactly this policy, so it is known to suffice.

# Write secret values under the prefix; Paved never reads them back...
path "secret/data/platform/*" {
  capabilities = ["create", "update"]
}
# ...except teams' LLM provider keys, which the platform LLM gateway uses.
path "secret/data/platform/llm/*" {
  capabilities = ["create", "update", "read"]
}
path "secret/metadata/platform/*" {
  capabilities = ["read", "list", "delete"]
}
path "secret/delete/platform/*" {
  capabilities = ["update"]
}

# ...and the credentials of https git hosts the scaffolder publishes to
# (keys username and token at {prefix}/git/<host>).
path "secret/data/platform/git/*" {
  capabilities = ["read"]
}

# The ACL policies Paved manages are all named paved__<team>[__<service>].
path "sys/policy/paved__*" {
  capabilities = ["create", "read", "update"]
}

# One Kubernetes auth role per service, also named paved__<team>__<service>.
# A cluster in PAVED_KUBE_CLUSTERS with its own `vaultAuthMount` needs the
# same block for that mount (auth/<mount>/role/paved__*).
path "auth/kubernetes/role/paved__*" {
  capabilities = ["create", "read", "update"]
}

# Keep its own token alive (also in Vault's built-in default policy).
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Trust boundary: whoever holds this policy can write any paved__* policy and
# bind it to any service account, so the token is as sensitive as the secrets
# under the prefix. Vault Enterprise sentinel (or an egp) can pin the policy
# bodies to the read-only shape Paved writes.
