//! The software catalog: Backstage-compatible entities, their ingestion from
//! locations, storage and queries.

pub mod crawl;
pub mod discovery;
pub mod model;
pub mod page;
pub mod portal;
pub mod query;
pub mod refresh;
pub mod source;
pub mod stars;
pub mod store;

#[cfg(test)]
mod tests;

/// Backstage's example catalog from the third-party conformance material:
/// `PAVED_CONFORMANCE_DIR` (set by scripts/test.sh) or `../shared/conformance`
/// beside the project root.
#[cfg(test)]
pub(crate) fn conformance_examples() -> std::path::PathBuf {
    let base = std::env::var_os("PAVED_CONFORMANCE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
        });
    base.join("backstage-catalog-examples")
        .canonicalize()
        .expect("the conformance material must exist: set PAVED_CONFORMANCE_DIR or keep ../shared/conformance beside the project")
}

/// One operation of an OpenAPI definition, for the API page's table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiOperation {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `/pets/{id}`.
    pub path: String,
    /// `summary` (or `operationId`).
    pub summary: String,
}

/// The operations of an OpenAPI (or Swagger) definition in YAML or JSON;
/// empty when the text is not one.
pub fn api_operations(definition: &str) -> Vec<ApiOperation> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let Some(Ok(doc)) = source::parse_documents(definition).into_iter().next() else {
        return Vec::new();
    };
    let Some(paths) = doc.get("paths").and_then(serde_json::Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let summary = op
                    .get("summary")
                    .or_else(|| op.get("operationId"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                out.push(ApiOperation {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    summary,
                });
            }
        }
    }
    out
}

/// An entity as YAML for export: as authored, without the catalog's own
/// fields (uid, etag, relations), so importing it gives the same entity.
pub fn export_yaml(entity: &serde_json::Value) -> String {
    let mut e = entity.clone();
    if let Some(obj) = e.as_object_mut() {
        obj.remove("relations");
        obj.remove("status");
    }
    if let Some(m) = e
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        m.remove("uid");
        m.remove("etag");
        if let Some(a) = m
            .get_mut("annotations")
            .and_then(serde_json::Value::as_object_mut)
        {
            a.remove("backstage.io/orphan");
        }
        if m.get("annotations")
            .and_then(serde_json::Value::as_object)
            .is_some_and(|a| a.is_empty())
        {
            m.remove("annotations");
        }
    }
    serde_yaml::to_string(&e).unwrap_or_default()
}
