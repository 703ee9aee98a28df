# OpenBao dev server configuration for the demo (`bao server -dev -config=demo/openbao.hcl`).
# OpenBao only accepts audit devices declared in its configuration file.
audit "file" "paved-demo" {
  description = "Every request, so Paved's audit entries can be matched by Vault request id."
  options {
    file_path = ".paved/openbao-audit.log"
  }
}
