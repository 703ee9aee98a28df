//! What the catalog's pages show, one call each: the list with its facets,
//! an entity's page, locations and their problems. The REST API
//! (`/api/catalog`) speaks Backstage's shapes; these are the portal's own.

use super::crawl::Problem;
use super::portal::PortalFields;
use super::store::{self, LocationInfo};
use crate::auth::{authorize, Action, Principal};
use crate::{CoreError, CoreState};
use paved_shared::catalog::{
    EntityView, ListPage, ListQuery, LocationView, PortalView, ProblemView, Row, FACETS, PAGE_SIZE,
};

/// A page of the catalog list for `user` ("mine" means their teams'
/// entities), with facet counts. Only the listed facets can filter.
pub async fn list(
    core: &CoreState,
    user: &Principal,
    query: &ListQuery,
) -> Result<ListPage, CoreError> {
    use super::query::{summaries, Filter, Query};
    let mut set: Vec<(String, Vec<String>)> = Vec::new();
    for (key, value) in &query.filters {
        if !FACETS.iter().any(|(k, _)| k == key) {
            return Err(CoreError::Invalid {
                field: "filters",
                message: format!("cannot filter by {key}"),
            });
        }
        set.push((key.clone(), vec![value.to_ascii_lowercase()]));
    }
    if query.mine {
        let owners: Vec<String> = user
            .teams
            .keys()
            .map(|t| format!("group:default/{t}"))
            .collect();
        set.push((
            "relations.ownedby".into(),
            if owners.is_empty() {
                vec!["-".into()]
            } else {
                owners
            },
        ));
    }
    let filter = Filter {
        sets: if set.is_empty() { vec![] } else { vec![set] },
    };
    let order = match query.sort.as_str() {
        "kind" => "kind",
        "type" => "spec.type",
        "owner" => "spec.owner",
        "lifecycle" => "spec.lifecycle",
        _ => "metadata.name",
    };
    let only = if query.starred {
        Some(super::stars::starred(&core.db, user).await?)
    } else {
        None
    };
    let q = Query {
        filter: filter.clone(),
        full_text: Some(query.q.clone()).filter(|t| !t.trim().is_empty()),
        order: vec![(order.to_owned(), true)],
        offset: query.page.max(0) * PAGE_SIZE,
        limit: PAGE_SIZE,
        only,
    };
    let (rows, total) = summaries(&core.db, &core.facet_cache, &q).await?;
    let keys: Vec<String> = FACETS.iter().map(|(k, _)| (*k).to_owned()).collect();
    let counts = core.facet_cache.facets(&core.db, &keys, &filter).await?;
    Ok(ListPage {
        rows: rows
            .into_iter()
            .map(|r| Row {
                title: r.title.unwrap_or_else(|| r.name.clone()),
                kind: r.kind,
                namespace: r.namespace,
                name: r.name,
                description: r.description.unwrap_or_default(),
                spec_type: r.spec_type.unwrap_or_default(),
                lifecycle: r.lifecycle.unwrap_or_default(),
                owner: r.owner_ref.unwrap_or_default(),
                tags: r.tags,
                orphan: r.orphan,
            })
            .collect(),
        total,
        facets: keys
            .into_iter()
            .map(|k| {
                let v = counts.get(&k).cloned().unwrap_or_default();
                (k, v.into_iter().take(30).collect())
            })
            .collect(),
    })
}

/// Everything an entity's page shows `user`; every signed-in person may read.
pub async fn entity(
    core: &CoreState,
    user: &Principal,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<EntityView, CoreError> {
    use super::{api_operations, export_yaml, store};
    use serde_json::Value;
    let entity_ref = format!("{kind}:{namespace}/{name}");
    let portal = super::portal::get(&core.db, &entity_ref).await?;
    let starred = super::stars::starred(&core.db, user)
        .await?
        .contains(&entity_ref.to_ascii_lowercase());
    let e = store::entity_by_ref(&core.db, &entity_ref).await?;
    let status = store::entity_status(&core.db, &entity_ref).await?;
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let pairs = |v: &Value| -> Vec<(String, String)> {
        v.as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
            .unwrap_or_default()
    };
    let definition = e["spec"]["definition"].as_str().map(str::to_owned);
    let operations = definition
        .as_deref()
        .map(api_operations)
        .unwrap_or_default();
    let mut relations: Vec<(String, String)> = e["relations"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| (s(&r["type"]), s(&r["targetRef"])))
                .collect()
        })
        .unwrap_or_default();
    relations.sort();
    let owner_ref = relations
        .iter()
        .find(|(t, _)| t == "ownedBy")
        .map(|(_, r)| r.clone());
    Ok(EntityView {
        kind: s(&e["kind"]),
        namespace: s(&e["metadata"]["namespace"]),
        name: s(&e["metadata"]["name"]),
        title: e["metadata"]["title"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| s(&e["metadata"]["name"])),
        description: s(&e["metadata"]["description"]),
        spec_type: s(&e["spec"]["type"]),
        lifecycle: s(&e["spec"]["lifecycle"]),
        owner: relations
            .iter()
            .find(|(t, _)| t == "ownedBy")
            .map(|(_, r)| r.clone())
            .unwrap_or_default(),
        tags: e["metadata"]["tags"]
            .as_array()
            .map(|t| t.iter().map(s).collect())
            .unwrap_or_default(),
        links: e["metadata"]["links"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|l| {
                        (
                            s(&l["url"]),
                            l["title"]
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| s(&l["url"])),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        annotations: pairs(&e["metadata"]["annotations"]),
        labels: pairs(&e["metadata"]["labels"]),
        relations,
        definition,
        operations: operations
            .into_iter()
            .map(|o| (o.method, o.path, o.summary))
            .collect(),
        yaml: export_yaml(&e),
        orphan: status.orphan,
        source: status.source,
        last_refresh_at: status.last_refresh_at,
        problems: status.problems.into_iter().map(problem_view).collect(),
        starred,
        can_edit: super::portal::can_edit(user, owner_ref.as_deref()),
        portal: portal_view(portal),
    })
}

/// Saves an entity's portal fields (owners and platform admins) and answers what was stored.
pub async fn save_portal(
    core: &CoreState,
    user: &Principal,
    entity_ref: &str,
    fields: PortalView,
) -> Result<PortalView, CoreError> {
    let fields = PortalFields {
        oncall: fields.oncall,
        support_url: fields.support_url,
        notes: fields.notes,
        ..Default::default()
    };
    super::portal::set(&core.db, user, entity_ref, &fields).await?;
    Ok(portal_view(super::portal::get(&core.db, entity_ref).await?))
}

/// Every registered location (everyone reads, so owners see why ingestion failed).
pub async fn locations(core: &CoreState) -> Result<Vec<LocationView>, CoreError> {
    Ok(store::locations(&core.db)
        .await?
        .into_iter()
        .map(location_view)
        .collect())
}

/// One location with its problems.
pub async fn location(core: &CoreState, id: &str) -> Result<LocationView, CoreError> {
    let mut view = location_view(store::location(&core.db, id).await?);
    view.integration = url::Url::parse(&view.target)
        .ok()
        .and_then(|u| core.integrations.for_url(&u))
        .map(|i| format!("{} ({})", i.host, i.kind.as_str()));
    view.problems = store::location_problems(&core.db, id)
        .await?
        .into_iter()
        .map(problem_view)
        .collect();
    Ok(view)
}

/// Registers a location (platform admins).
pub async fn register(
    core: &CoreState,
    user: &Principal,
    kind: &str,
    target: &str,
) -> Result<LocationView, CoreError> {
    let (info, _) =
        store::register_location(&core.db, &core.catalog, user, kind, target.trim(), false).await?;
    registered(info)
}

/// Imports pasted YAML as a location of its own (platform admins), with its problems.
pub async fn import(
    core: &CoreState,
    user: &Principal,
    name: &str,
    yaml: &str,
) -> Result<LocationView, CoreError> {
    let (info, _) = store::import_pasted(&core.db, &core.catalog, user, name, yaml, false).await?;
    let id = registered(info)?.id;
    location(core, &id).await
}

/// Ingestion problems of the entities `team` owns (its members, PMs, admins).
pub async fn team_problems(
    core: &CoreState,
    user: &Principal,
    team: &str,
) -> Result<Vec<ProblemView>, CoreError> {
    authorize(user, Action::ViewTeam(team))?;
    Ok(
        store::problems_for_owner(&core.db, &format!("group:default/{team}"))
            .await?
            .into_iter()
            .map(problem_view)
            .collect(),
    )
}

/// A registration that is not a dry run always answers its location.
fn registered(info: Option<LocationInfo>) -> Result<LocationView, CoreError> {
    info.map(location_view).ok_or_else(|| {
        tracing::error!("a registration that is not a dry run answered no location");
        CoreError::Unavailable("The location could not be read back; try again.".into())
    })
}

fn problem_view(p: Problem) -> ProblemView {
    ProblemView {
        source: p.source,
        document: p.document.map(|d| d + 1),
        entity_ref: p.entity_ref,
        field: p.field,
        message: p.message,
    }
}

fn location_view(l: LocationInfo) -> LocationView {
    LocationView {
        id: l.id,
        kind: l.kind,
        target: l.target,
        status: l.status,
        entity_count: l.entity_count,
        problem_count: l.problem_count,
        last_refresh_at: l.last_refresh_at,
        problems: Vec::new(),
        integration: None,
        discovered_by: l.created_by.strip_prefix("discovery:").map(str::to_owned),
    }
}

fn portal_view(p: PortalFields) -> PortalView {
    PortalView {
        oncall: p.oncall,
        support_url: p.support_url,
        notes: p.notes,
        updated_by: p.updated_by,
        updated_at: p.updated_at,
    }
}
