//! The catalog feature in the UI: server functions here (each one
//! `paved_core::catalog::page` call; wire types in `paved_shared::catalog`),
//! the list page in `list.rs`, the entity page in `entity.rs`, locations in
//! `locations.rs`.

pub mod entity;
pub mod integrations;
pub mod list;
pub mod locations;

use leptos::prelude::*;

use crate::error::AppError;

pub use paved_shared::catalog::{
    entity_href, ref_href, EntityView, ListPage, ListQuery, LocationView, PortalView, ProblemView,
    Row, FACETS, PAGE_SIZE,
};

/// One page of the catalog list; every signed-in user may read.
#[server(endpoint = "catalog_list")]
pub async fn catalog_list(query: ListQuery) -> Result<ListPage, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::catalog::page::list(&core, &user, &query).await?)
}

/// One entity for its page; every signed-in user may read.
#[server(endpoint = "catalog_entity")]
pub async fn catalog_entity(
    kind: String,
    namespace: String,
    name: String,
) -> Result<EntityView, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::catalog::page::entity(&core, &user, &kind, &namespace, &name).await?)
}

/// Saves an entity's portal fields (owners and platform admins only) and answers what was stored.
#[server(endpoint = "catalog_save_portal_fields")]
pub async fn save_portal_fields(
    entity_ref: String,
    oncall: String,
    support_url: String,
    notes: String,
) -> Result<PortalView, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let fields = PortalView {
        oncall,
        support_url,
        notes,
        ..Default::default()
    };
    Ok(paved_core::catalog::page::save_portal(&core, &user, &entity_ref, fields).await?)
}

/// Stars or unstars an entity for the caller; answers whether it is now starred.
#[server(endpoint = "catalog_toggle_star")]
pub async fn toggle_star(entity_ref: String) -> Result<bool, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::catalog::stars::toggle(&core.db, &user, &entity_ref).await?)
}

/// Imports pasted YAML as a location of its own; platform admins only.
#[server(endpoint = "catalog_import_yaml")]
pub async fn import_yaml(name: String, yaml: String) -> Result<LocationView, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::catalog::page::import(&core, &user, &name, &yaml).await?)
}

/// Registered locations (everyone reads, so owners can see why ingestion failed).
#[server(endpoint = "catalog_locations")]
pub async fn catalog_locations() -> Result<Vec<LocationView>, AppError> {
    crate::ssr::require_user()?;
    Ok(paved_core::catalog::page::locations(&crate::ssr::core()?).await?)
}

/// One location with its problems.
#[server(endpoint = "catalog_location")]
pub async fn catalog_location(id: String) -> Result<LocationView, AppError> {
    crate::ssr::require_user()?;
    Ok(paved_core::catalog::page::location(&crate::ssr::core()?, &id).await?)
}

/// Registers a location; platform admins only.
#[server(endpoint = "catalog_register_location")]
pub async fn register_location(kind: String, target: String) -> Result<LocationView, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::catalog::page::register(&core, &user, &kind, &target).await?)
}

/// Re-reads a location now (anyone signed in: it only re-reads the source).
#[server(endpoint = "catalog_refresh_location")]
pub async fn refresh_location(id: String) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    core.refresher
        .refresh(&core.db, &core.catalog, &user, &id)
        .await?;
    Ok(())
}

/// Ingestion problems of entities a team owns (members, PMs, admins).
#[server(endpoint = "team_problems")]
pub async fn team_problems(team: String) -> Result<Vec<ProblemView>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::catalog::page::team_problems(&core, &user, &team).await?)
}

/// Splits `text` into (piece, is a match) around the search words, for
/// highlighting without handing HTML to the browser.
pub fn highlight(text: &str, query: &str) -> Vec<(String, bool)> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() || text.is_empty() {
        return vec![(text.to_owned(), false)];
    }
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        return vec![(text.to_owned(), false)];
    }
    let mut marks = vec![false; text.len()];
    for w in &words {
        let mut start = 0;
        while let Some(i) = lower[start..].find(w.as_str()) {
            let at = start + i;
            marks[at..at + w.len()].iter_mut().for_each(|m| *m = true);
            start = at + w.len();
        }
    }
    let mut out: Vec<(String, bool)> = Vec::new();
    for (i, c) in text.char_indices() {
        let m = marks[i];
        match out.last_mut() {
            Some((s, last)) if *last == m => s.push(c),
            _ => out.push((c.to_string(), m)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlight_marks_search_words() {
        assert_eq!(
            highlight("Wayback Archive", "archive"),
            vec![
                ("Wayback ".to_string(), false),
                ("Archive".to_string(), true)
            ]
        );
        assert_eq!(highlight("abc", ""), vec![("abc".to_string(), false)]);
        assert_eq!(
            ref_href("api:default/petstore"),
            "/catalog/api/default/petstore"
        );
    }
}
