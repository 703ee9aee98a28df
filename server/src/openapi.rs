//! What the OpenAPI documents of the JSON APIs share. Each API derives its
//! own document from its handlers (`catalog_api::CatalogApi`,
//! `secrets_api::SecretsApi`); the committed copies in `docs/` are checked
//! against them by each API's tests.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The bearer-token security scheme (a personal API token or a service token).
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// Fails unless the committed document at `path` is `generated`; with
/// `PAVED_WRITE_OPENAPI` set it first rewrites the committed copy.
#[cfg(test)]
pub fn compare(generated: &utoipa::openapi::OpenApi, path: &str) {
    let generated = generated.to_pretty_json().expect("the document serializes") + "\n";
    if std::env::var_os("PAVED_WRITE_OPENAPI").is_some() {
        std::fs::write(path, &generated).expect("the committed copy is writable");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} differs from the document the code generates; run PAVED_WRITE_OPENAPI=1 cargo test -p paved openapi"
    );
}
