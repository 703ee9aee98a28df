//! The software catalog: Backstage-compatible entities, their ingestion from
//! locations, storage and queries.

pub mod crawl;
pub mod model;
pub mod query;
pub mod source;
pub mod store;

#[cfg(test)]
mod tests;

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
