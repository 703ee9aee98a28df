//! Ingestion, storage and query tests against SQLite, using Backstage's own
//! example catalog from ../shared/conformance.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sqlx::SqlitePool;

use super::query::{self, Filter, Query};
use super::source::{SourceLimits, Sources};
use super::{model, store};
use crate::auth::Principal;
use crate::CoreError;
use paved_shared::auth::testing;

fn examples() -> PathBuf {
    super::conformance_examples()
}

/// The kinds CoreState registers: the scaffolder's Template.
fn kinds() -> model::Kinds {
    model::Kinds::default().with(crate::scaffold::template::TemplateKind)
}

fn admin() -> Principal {
    testing::admin().named("ada")
}

fn developer() -> Principal {
    testing::member("payments").named("ada")
}

async fn register(pool: &SqlitePool, sources: &Sources, path: &Path) -> store::LocationInfo {
    let (info, _) = store::register_location(
        pool,
        sources,
        &admin(),
        "file",
        path.to_str().unwrap(),
        false,
    )
    .await
    .unwrap();
    info.unwrap()
}

fn relation_targets(entity: &Value, kind: &str) -> Vec<String> {
    entity["relations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == kind)
        .map(|r| r["targetRef"].as_str().unwrap().to_owned())
        .collect()
}

async fn ingest_examples(pool: &SqlitePool) -> (Sources, Vec<store::LocationInfo>) {
    let root = examples();
    let sources =
        Sources::new(std::slice::from_ref(&root), &[], SourceLimits::default()).with_kinds(kinds());
    let mut locations = Vec::new();
    for file in [
        "all.yaml",
        "acme/org.yaml",
        "apis/petstore-api.yaml",
        "apis/hello-world-api.yaml",
        "apis/wayback-search-api.yaml",
        "apis/wayback-archive-api.yaml",
        "systems/podcast-system.yaml",
        "systems/audio-playback-system.yaml",
        "systems/artist-engagement-portal-system.yaml",
        "domains/playback-domain.yaml",
        "domains/artists-domain.yaml",
        "domains/audio-domain.yaml",
        "components/different-namespace.yaml",
        "components/invalid-component.yaml",
    ] {
        locations.push(register(pool, &sources, &root.join(file)).await);
    }
    (sources, locations)
}

#[sqlx::test(migrations = "../migrations")]
async fn ingests_the_backstage_examples_with_relations_and_problems(pool: SqlitePool) {
    let (_, locations) = ingest_examples(&pool).await;

    let petstore = store::entity_by_ref(&pool, "component:default/petstore")
        .await
        .unwrap();
    assert!(!petstore["metadata"]["uid"].as_str().unwrap().is_empty());
    assert!(
        relation_targets(&petstore, "providesApi").contains(&"api:default/petstore".to_string())
    );
    let api = store::entity_by_ref(&pool, "api:default/petstore")
        .await
        .unwrap();
    assert_eq!(
        relation_targets(&api, "apiProvidedBy"),
        ["component:default/petstore"]
    );
    assert!(api["spec"]["definition"]
        .as_str()
        .unwrap()
        .contains("Swagger Petstore"));

    let lookup = store::entity_by_ref(&pool, "component:default/artist-lookup")
        .await
        .unwrap();
    assert_eq!(
        relation_targets(&lookup, "dependsOn"),
        ["resource:default/artists-db"]
    );
    let team_a = store::entity_by_ref(&pool, "group:default/team-a")
        .await
        .unwrap();
    assert!(relation_targets(&team_a, "hasMember")
        .contains(&"user:default/breanna.davison".to_string()));
    assert!(relation_targets(&team_a, "childOf").contains(&"group:default/backstage".to_string()));
    let other_ns = store::entity_by_ref(&pool, "component:alternative/different-namespace")
        .await
        .unwrap();
    assert_eq!(
        relation_targets(&other_ns, "ownedBy"),
        ["group:default/team-a"]
    );
    let podcast = store::entity_by_ref(&pool, "system:default/podcast")
        .await
        .unwrap();
    assert!(relation_targets(&podcast, "hasPart")
        .contains(&"component:default/podcast-api".to_string()));

    // The invalid component is refused, with its problem on its location.
    let invalid = locations.last().unwrap();
    assert_eq!(invalid.status, "failed");
    let problems = store::location_problems(&pool, &invalid.id).await.unwrap();
    assert!(problems
        .iter()
        .any(|p| p.field.as_deref() == Some("metadata.name")
            && p.message.contains("invalid component")));
    assert!(problems
        .iter()
        .all(|p| p.source.ends_with("invalid-component.yaml") && p.document == Some(0)));
    assert!(matches!(
        store::entity_by_ref(&pool, "component:default/invalid component").await,
        Err(CoreError::NotFound(_))
    ));

    // $text pointing at github.com is refused offline (host not allowed) and reported on the field.
    let wayback = &locations[4];
    let problems = store::location_problems(&pool, &wayback.id).await.unwrap();
    assert_eq!(problems[0].field.as_deref(), Some("spec.definition"));
    assert!(problems[0].message.contains("github.com"));

    // all.yaml lists files the example set does not ship; each is reported, the rest ingested.
    let all = &locations[0];
    assert_eq!(all.status, "problems");
    assert!(all.entity_count >= 15);
}

#[sqlx::test(migrations = "../migrations")]
async fn text_placeholders_resolve_relative_to_the_file(pool: SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("specs")).unwrap();
    std::fs::write(
        dir.path().join("specs/openapi.yaml"),
        "openapi: 3.0.0\ninfo: {title: Pay, version: '1'}\npaths: {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("api.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: pay}\nspec: {type: openapi, lifecycle: production, owner: payments, definition: {$text: ./specs/openapi.yaml}}\n",
    )
    .unwrap();
    let sources =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    let info = register(&pool, &sources, &dir.path().join("api.yaml")).await;
    assert_eq!(info.status, "ok");
    let api = store::entity_by_ref(&pool, "api:default/pay")
        .await
        .unwrap();
    assert!(api["spec"]["definition"]
        .as_str()
        .unwrap()
        .starts_with("openapi: 3.0.0"));
}

fn component_yaml(name: &str, owner: &str) -> String {
    format!("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: production\n  owner: {owner}\n")
}

#[sqlx::test(migrations = "../migrations")]
async fn vanished_entities_become_orphans_and_duplicates_keep_the_first_owner(pool: SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(
        &a,
        format!(
            "{}---\n{}",
            component_yaml("one", "payments"),
            component_yaml("two", "payments")
        ),
    )
    .unwrap();
    std::fs::write(&b, component_yaml("one", "search")).unwrap();
    let sources =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    let loc_a = register(&pool, &sources, &a).await;
    let loc_b = register(&pool, &sources, &b).await;

    let problems = store::location_problems(&pool, &loc_b.id).await.unwrap();
    assert!(problems[0].message.starts_with("conflict"), "{problems:?}");
    let one = store::entity_by_ref(&pool, "component:default/one")
        .await
        .unwrap();
    assert_eq!(one["spec"]["owner"], "payments", "the first owner is kept");

    let uid_before = one["metadata"]["uid"].clone();
    std::fs::write(&a, component_yaml("one", "payments-core")).unwrap();
    let report = store::refresh_location(&pool, &sources, &loc_a.id)
        .await
        .unwrap();
    assert_eq!((report.updated, report.orphaned), (1, 1));
    let two = store::entity_by_ref(&pool, "component:default/two")
        .await
        .unwrap();
    assert_eq!(
        two["metadata"]["annotations"]["backstage.io/orphan"],
        "true"
    );
    let one = store::entity_by_ref(&pool, "component:default/one")
        .await
        .unwrap();
    assert_eq!(one["metadata"]["uid"], uid_before, "uids survive refreshes");
    assert_eq!(
        relation_targets(&one, "ownedBy"),
        ["group:default/payments-core"]
    );

    let again = store::refresh_location(&pool, &sources, &loc_a.id)
        .await
        .unwrap();
    assert_eq!((again.added, again.updated, again.unchanged), (0, 0, 1));
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_input_is_reported_and_loses_nothing_else(pool: SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("good.yaml"), component_yaml("keeper", "payments")).unwrap();
    std::fs::write(root.join("malformed.yaml"), "apiVersion: [unclosed\n").unwrap();
    std::fs::write(
        root.join("unknown.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Spaceship\nmetadata: {name: x}\nspec: {}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("huge.yaml"),
        format!("a: \"{}\"\n", "x".repeat(10 * 1024 * 1024)),
    )
    .unwrap();
    let sources =
        Sources::new(&[root.to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    register(&pool, &sources, &root.join("good.yaml")).await;
    for (file, expected) in [
        ("malformed.yaml", "invalid YAML"),
        ("unknown.yaml", "unknown kind `Spaceship`"),
        ("huge.yaml", "the limit is 4096 KB"),
    ] {
        let info = register(&pool, &sources, &root.join(file)).await;
        assert_eq!(info.status, "failed", "{file}");
        let problems = store::location_problems(&pool, &info.id).await.unwrap();
        assert!(
            problems[0].message.contains(expected),
            "{file}: {problems:?}"
        );
    }
    assert!(store::entity_by_ref(&pool, "component:default/keeper")
        .await
        .is_ok());

    let outside =
        store::register_location(&pool, &sources, &admin(), "file", "/etc/passwd", false).await;
    assert!(matches!(
        outside,
        Err(CoreError::Invalid {
            field: "target",
            ..
        })
    ));
    let ssrf = store::register_location(
        &pool,
        &sources,
        &admin(),
        "url",
        "http://169.254.169.254/latest/meta-data",
        false,
    )
    .await;
    assert!(matches!(
        ssrf,
        Err(CoreError::Invalid {
            field: "target",
            ..
        })
    ));
    let twice = store::register_location(
        &pool,
        &sources,
        &admin(),
        "file",
        root.join("good.yaml").to_str().unwrap(),
        false,
    )
    .await;
    assert!(matches!(twice, Err(CoreError::Conflict(_))));
}

#[sqlx::test(migrations = "../migrations")]
async fn only_admins_manage_locations_and_entities(pool: SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.yaml"), component_yaml("c", "payments")).unwrap();
    let sources =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    let path = dir.path().join("c.yaml");
    let refused = store::register_location(
        &pool,
        &sources,
        &developer(),
        "file",
        path.to_str().unwrap(),
        false,
    )
    .await;
    assert!(matches!(refused, Err(CoreError::Forbidden(_))));
    let info = register(&pool, &sources, &path).await;
    assert!(matches!(
        store::delete_location(&pool, &developer(), &info.id).await,
        Err(CoreError::Forbidden(_))
    ));
    let c = store::entity_by_ref(&pool, "component:default/c")
        .await
        .unwrap();
    let uid = c["metadata"]["uid"].as_str().unwrap();
    assert!(matches!(
        store::delete_entity(&pool, &developer(), uid).await,
        Err(CoreError::Forbidden(_))
    ));
    store::delete_entity(&pool, &admin(), uid).await.unwrap();
    store::delete_location(&pool, &admin(), &info.id)
        .await
        .unwrap();
    assert!(store::locations(&pool).await.unwrap().is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn queries_filter_search_page_and_facet(pool: SqlitePool) {
    ingest_examples(&pool).await;
    let services = Query {
        filter: Filter::parse(&["kind=component,spec.type=service"]).unwrap(),
        order: vec![("metadata.name".into(), true)],
        limit: 3,
        ..Query::default()
    };
    let page = query::run(&pool, &services).await.unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.total > 3);
    assert!(page.items.iter().all(|e| e["spec"]["type"] == "service"));
    let names: Vec<&str> = page
        .items
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let next = query::run(
        &pool,
        &Query {
            offset: 3,
            ..services.clone()
        },
    )
    .await
    .unwrap();
    assert_ne!(
        next.items[0]["metadata"]["name"],
        page.items[0]["metadata"]["name"]
    );

    let search = Query {
        full_text: Some("wayback".into()),
        limit: 50,
        ..Query::default()
    };
    let found = query::run(&pool, &search).await.unwrap();
    assert!(found.total >= 4);
    assert!(found
        .items
        .iter()
        .all(|e| e["metadata"]["name"].as_str().unwrap().contains("wayback")));

    let owned = Query {
        filter: Filter::parse(&["relations.ownedby=group:default/team-c"]).unwrap(),
        limit: 50,
        ..Query::default()
    };
    assert!(query::run(&pool, &owned)
        .await
        .unwrap()
        .items
        .iter()
        .any(|e| e["metadata"]["name"] == "petstore"));

    let either = Query {
        filter: Filter::parse(&["kind=domain", "kind=system"]).unwrap(),
        limit: 50,
        ..Query::default()
    };
    assert_eq!(query::run(&pool, &either).await.unwrap().total, 6);

    let facets = query::facets(
        &pool,
        &["kind".into(), "spec.lifecycle".into()],
        &Filter::default(),
    )
    .await
    .unwrap();
    let kinds: Vec<&str> = facets["kind"].iter().map(|(v, _)| v.as_str()).collect();
    for k in [
        "component",
        "api",
        "group",
        "user",
        "system",
        "domain",
        "resource",
        "location",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let bad_order = Query {
        order: vec![("spec.definition".into(), true)],
        limit: 5,
        ..Query::default()
    };
    assert!(matches!(
        query::run(&pool, &bad_order).await,
        Err(CoreError::Invalid { field: "order", .. })
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn export_then_reimport_gives_identical_entities(pool: SqlitePool) {
    ingest_examples(&pool).await;
    let all = query::run(&pool, &Query { filter: Filter::parse(&["kind=component,kind=api,kind=group,kind=user,kind=system,kind=domain,kind=resource"]).unwrap(), limit: 1000, ..Query::default() })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::new();
    for entity in &all.items {
        yaml.push_str("---\n");
        yaml.push_str(&super::export_yaml(entity));
    }
    let export = dir.path().join("export.yaml");
    std::fs::write(&export, yaml).unwrap();

    let fresh = SqlitePool::connect("sqlite::memory:").await.unwrap();
    crate::db::MIGRATOR.run(&fresh).await.unwrap();
    let sources =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    let info = register(&fresh, &sources, &export).await;
    assert_eq!(
        info.status,
        "ok",
        "{:?}",
        store::location_problems(&fresh, &info.id).await.unwrap()
    );
    for original in &all.items {
        let entity_ref = format!(
            "{}:{}/{}",
            original["kind"].as_str().unwrap().to_ascii_lowercase(),
            original["metadata"]["namespace"].as_str().unwrap(),
            original["metadata"]["name"].as_str().unwrap()
        );
        let copy = store::entity_by_ref(&fresh, &entity_ref).await.unwrap();
        let strip = |e: &Value| {
            let mut e = e.clone();
            e["metadata"].as_object_mut().unwrap().remove("uid");
            e
        };
        assert_eq!(strip(&copy), strip(original), "{entity_ref}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn cached_facets_follow_every_catalog_change(pool: SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), component_yaml("a", "payments")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), component_yaml("b", "search")).unwrap();
    let sources =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    let cache = query::FacetCache::default();
    let keys = vec!["relations.ownedby".to_string()];
    register(&pool, &sources, &dir.path().join("a.yaml")).await;
    let first = cache
        .facets(&pool, &keys, &Filter::default())
        .await
        .unwrap();
    assert_eq!(
        first["relations.ownedby"],
        vec![("group:default/payments".to_string(), 1)]
    );
    assert_eq!(
        cache
            .facets(&pool, &keys, &Filter::default())
            .await
            .unwrap(),
        first
    );

    let b = register(&pool, &sources, &dir.path().join("b.yaml")).await;
    let second = cache
        .facets(&pool, &keys, &Filter::default())
        .await
        .unwrap();
    assert_eq!(
        second["relations.ownedby"].len(),
        2,
        "a new entity shows at once"
    );

    let components = Query {
        filter: Filter::parse(&["kind=component"]).unwrap(),
        limit: 10,
        ..Query::default()
    };
    let (_, total) = query::run_json_cached(&pool, &cache, &components)
        .await
        .unwrap();
    assert_eq!(total, 2);

    store::delete_location(&pool, &admin(), &b.id)
        .await
        .unwrap();
    assert_eq!(
        cache
            .facets(&pool, &keys, &Filter::default())
            .await
            .unwrap(),
        first,
        "and so does a removal"
    );
    let (page, total) = query::run_json_cached(&pool, &cache, &components)
        .await
        .unwrap();
    assert_eq!((page.len(), total), (1, 1), "cached totals follow too");
}

#[sqlx::test(migrations = "../migrations")]
async fn pasted_yaml_is_imported_refreshed_and_validated(pool: SqlitePool) {
    let sources = Sources::new(
        &[],
        &["example.com".parse().unwrap()],
        SourceLimits::default(),
    )
    .with_kinds(kinds());
    let yaml = format!(
        "{}---\n{}",
        component_yaml("pasted-one", "payments"),
        component_yaml("bad name", "payments")
    );
    let refused = store::import_pasted(&pool, &sources, &developer(), "mine", &yaml, false).await;
    assert!(matches!(refused, Err(CoreError::Forbidden(_))));
    assert!(matches!(
        store::import_pasted(&pool, &sources, &admin(), " ", &yaml, false).await,
        Err(CoreError::Invalid { field: "name", .. })
    ));
    assert!(matches!(
        store::import_pasted(&pool, &sources, &admin(), "x", "  ", false).await,
        Err(CoreError::Invalid { field: "yaml", .. })
    ));

    let (dry, crawl) = store::import_pasted(&pool, &sources, &admin(), "first import", &yaml, true)
        .await
        .unwrap();
    assert!(dry.is_none() && crawl.entities.len() == 1 && crawl.problems.len() == 1);
    assert!(
        store::locations(&pool).await.unwrap().is_empty(),
        "a dry run stores nothing"
    );

    let (info, _) = store::import_pasted(&pool, &sources, &admin(), "first import", &yaml, false)
        .await
        .unwrap();
    let info = info.unwrap();
    assert_eq!(
        (info.kind.as_str(), info.status.as_str()),
        ("pasted", "problems")
    );
    let problems = store::location_problems(&pool, &info.id).await.unwrap();
    assert_eq!(
        (
            problems[0].source.as_str(),
            problems[0].document,
            problems[0].field.as_deref()
        ),
        ("pasted:first import", Some(1), Some("metadata.name"))
    );
    assert!(store::entity_by_ref(&pool, "component:default/pasted-one")
        .await
        .is_ok());
    // Refreshing a pasted import re-reads what was pasted.
    let again = store::refresh_location(&pool, &sources, &info.id)
        .await
        .unwrap();
    assert_eq!(again.unchanged, 1);
    // Pasted YAML has no folder for relative references.
    let relative = "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: l}\nspec: {targets: [./x.yaml]}\n";
    let (_, crawl) = store::import_pasted(&pool, &sources, &admin(), "relative", relative, true)
        .await
        .unwrap();
    assert!(crawl.problems[0].message.contains("no folder"));
    let twice = store::import_pasted(&pool, &sources, &admin(), "first import", &yaml, false).await;
    assert!(matches!(twice, Err(CoreError::Conflict(_))));
}

#[sqlx::test(migrations = "../migrations")]
async fn stars_toggle_and_narrow_queries(pool: SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        format!(
            "{}---\n{}",
            component_yaml("starry", "payments"),
            component_yaml("plain", "payments")
        ),
    )
    .unwrap();
    let sources =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    register(&pool, &sources, &dir.path().join("c.yaml")).await;
    sqlx::query(
        "INSERT INTO users (id, subject, display_name, created_at) VALUES (1, 'ada', 'Ada', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let me = admin();
    assert!(super::stars::toggle(&pool, &me, "Component:default/starry")
        .await
        .unwrap());
    assert_eq!(
        super::stars::starred(&pool, &me).await.unwrap(),
        ["component:default/starry"]
    );
    let only = Query {
        only: Some(super::stars::starred(&pool, &me).await.unwrap()),
        limit: 10,
        ..Query::default()
    };
    let page = query::run(&pool, &only).await.unwrap();
    assert_eq!(
        (page.total, page.items[0]["metadata"]["name"].as_str()),
        (1, Some("starry"))
    );
    assert!(
        !super::stars::toggle(&pool, &me, "component:default/starry")
            .await
            .unwrap()
    );
    assert_eq!(
        query::run(
            &pool,
            &Query {
                only: Some(vec![]),
                limit: 10,
                ..Query::default()
            }
        )
        .await
        .unwrap()
        .total,
        0
    );
    assert!(matches!(
        super::stars::toggle(&pool, &me, "component:default/nope").await,
        Err(CoreError::NotFound(_))
    ));
}

#[sqlx::test(migrations = "../migrations")]
async fn owners_edit_portal_fields_and_others_cannot(pool: SqlitePool) {
    use super::portal::{self, PortalFields};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.yaml"), component_yaml("svc", "payments")).unwrap();
    let sources =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    register(&pool, &sources, &dir.path().join("c.yaml")).await;
    let fields = PortalFields {
        oncall: "#payments-oncall".into(),
        support_url: "https://help.example.com/pay".into(),
        notes: "Ask before deploying on Fridays.".into(),
        ..Default::default()
    };

    let member = developer();
    portal::set(&pool, &member, "component:default/svc", &fields)
        .await
        .unwrap();
    let saved = portal::get(&pool, "component:default/svc").await.unwrap();
    assert_eq!(
        (saved.oncall.as_str(), saved.updated_by.as_deref()),
        ("#payments-oncall", Some("user:ada"))
    );

    let outsider = testing::lead("search").named("ada");
    assert!(!portal::can_edit(&outsider, Some("group:default/payments")));
    assert!(matches!(
        portal::set(&pool, &outsider, "component:default/svc", &fields).await,
        Err(CoreError::Forbidden(_))
    ));
    assert!(portal::can_edit(&admin(), Some("group:default/payments")));
    let bad = PortalFields {
        support_url: "javascript:alert(1)".into(),
        ..fields.clone()
    };
    assert!(matches!(
        portal::set(&pool, &member, "component:default/svc", &bad).await,
        Err(CoreError::Invalid {
            field: "support_url",
            ..
        })
    ));
    assert!(matches!(
        portal::set(&pool, &member, "component:default/none", &fields).await,
        Err(CoreError::NotFound(_))
    ));
    let log = crate::audit::list(&pool, 0, 50).await.unwrap();
    assert_eq!(
        log.entries
            .iter()
            .filter(|e| e.action == "catalog.portal_fields.update")
            .count(),
        1
    );
}

/// Attack: a signed-in developer asks for refresh after refresh. One crawl
/// runs per location at a time (the others join it), and a developer may not
/// ask again within the minimum interval; admins may.
#[sqlx::test(migrations = "../migrations")]
async fn refreshes_on_request_are_coalesced_and_throttled(pool: SqlitePool) {
    use super::refresh::{Refreshed, Refresher};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    std::fs::write(&file, component_yaml("one", "payments")).unwrap();
    let sources =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    let location = register(&pool, &sources, &file).await;
    let refresher = Refresher::new(std::time::Duration::from_secs(60), 2);
    let dev = developer();
    let attempts = (0..8).map(|_| refresher.refresh(&pool, &sources, &dev, &location.id));
    let outcomes = futures_util::future::join_all(attempts).await;
    let crawled = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Refreshed::Crawled(_))))
        .count();
    assert_eq!(crawled, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(_) | Err(CoreError::TooManyRequests(_)))),
        "{outcomes:?}"
    );
    // Right after: a developer waits, an admin does not.
    let again = refresher.refresh(&pool, &sources, &dev, &location.id).await;
    assert!(
        matches!(&again, Err(CoreError::TooManyRequests(m)) if m.contains("again in")),
        "{again:?}"
    );
    assert!(matches!(
        refresher
            .refresh(&pool, &sources, &admin(), &location.id)
            .await,
        Ok(Refreshed::Crawled(_))
    ));
    // A made-up location id is not found and takes no slot.
    assert!(matches!(
        refresher
            .refresh(&pool, &sources, &dev, "no-such-location")
            .await,
        Err(CoreError::NotFound(_))
    ));
}

/// `count` components spread over four types, three lifecycles and ten owners,
/// plus the ten owning groups: a catalog big enough to cross several write
/// batches and for SQLite's statistics to matter.
fn generated_catalog(count: usize, changed_type_of: Option<usize>, skip: &[usize]) -> String {
    let types = ["service", "website", "library", "job"];
    let lifecycles = ["production", "experimental", "deprecated"];
    let mut docs: Vec<String> = (0..10)
        .map(|g| format!("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-{g}\nspec:\n  type: team\n  children: []\n"))
        .collect();
    for i in (0..count).filter(|i| !skip.contains(i)) {
        let kind = if changed_type_of == Some(i) {
            "grpc-service"
        } else {
            types[i % 4]
        };
        docs.push(format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: comp-{i:04}\n  title: Component {}\n  tags: [tag-{}]\nspec:\n  type: {kind}\n  lifecycle: {}\n  owner: team-{}\n",
            (count - i) % 97,
            i % 7,
            lifecycles[i % 3],
            i % 10
        ));
    }
    docs.join("---\n")
}

/// A folder holding `generated_catalog(count)` as `all.yaml`, and sources reading it.
fn generated_source(count: usize) -> (tempfile::TempDir, PathBuf, Sources) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.yaml");
    std::fs::write(&file, generated_catalog(count, None, &[])).unwrap();
    let sources =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    (dir, file, sources)
}

#[sqlx::test(migrations = "../migrations")]
async fn large_locations_are_written_in_batches_and_refreshed_exactly(pool: SqlitePool) {
    let (_dir, file, sources) = generated_source(1_234);
    let location = register(&pool, &sources, &file).await;
    assert_eq!(location.entity_count, 1_244);
    assert_eq!(location.problem_count, 0);

    // Every batch's fields and relations were written: the last entity (in the
    // last, partial batch) is found by a field filter and has its owner.
    let q = Query {
        filter: Filter::parse(&["metadata.tags=tag-1,kind=component"]).unwrap(),
        limit: 1000,
        ..Query::default()
    };
    let page = query::run(&pool, &q).await.unwrap();
    assert_eq!(page.total, (0..1_234).filter(|i| i % 7 == 1).count() as i64);
    let last = store::entity_by_ref(&pool, "component:default/comp-1233")
        .await
        .unwrap();
    assert_eq!(relation_targets(&last, "ownedBy"), ["group:default/team-3"]);
    let uid_before = last["metadata"]["uid"].clone();

    // One entity changed and two gone: one update, two orphans, the rest untouched.
    std::fs::write(&file, generated_catalog(1_234, Some(1_233), &[5, 600])).unwrap();
    let report = store::refresh_location(&pool, &sources, &location.id)
        .await
        .unwrap();
    assert_eq!(
        (
            report.added,
            report.updated,
            report.orphaned,
            report.unchanged
        ),
        (0, 1, 2, 1_241)
    );
    let last = store::entity_by_ref(&pool, "component:default/comp-1233")
        .await
        .unwrap();
    assert_eq!(
        last["metadata"]["uid"], uid_before,
        "uids survive refreshes"
    );
    assert_eq!(last["spec"]["type"], "grpc-service");
    let by_type = Query {
        filter: Filter::parse(&["spec.type=grpc-service"]).unwrap(),
        limit: 10,
        ..Query::default()
    };
    assert_eq!(query::run(&pool, &by_type).await.unwrap().total, 1);
    // The old fields of the updated entity are gone, not duplicated.
    let old_type: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM catalog_fields WHERE entity_uid = ?1 AND key = 'spec.type'",
    )
    .bind(uid_before.as_str().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(old_type, 1);
    let gone = store::entity_by_ref(&pool, "component:default/comp-0005")
        .await
        .unwrap();
    assert_eq!(
        gone["metadata"]["annotations"]["backstage.io/orphan"],
        "true"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn list_pages_walk_an_index_in_every_order_and_agree_with_a_sort(pool: SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.yaml");
    std::fs::write(&file, generated_catalog(4_000, None, &[])).unwrap();
    let sources =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    register(&pool, &sources, &file).await;

    // Every entity's sort keys, to check pages against a plain sort.
    let all: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
        "SELECT entity_ref, lower(name), lower(COALESCE(title, name)), COALESCE(spec_type, ''), COALESCE(owner_ref, ''), lower(kind) FROM catalog_entities",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (field, ascending) in [
        ("", true),
        ("metadata.name", true),
        ("metadata.title", false),
        ("spec.type", true),
        ("spec.owner", false),
        ("kind", true),
    ] {
        for filter in [
            "kind=component",
            "kind=component,spec.lifecycle=production",
            "kind=component,spec.type=library",
        ] {
            let q = Query {
                filter: Filter::parse(&[filter]).unwrap(),
                order: if field.is_empty() {
                    Vec::new()
                } else {
                    vec![(field.to_owned(), ascending)]
                },
                offset: 60,
                limit: 50,
                ..Query::default()
            };
            // A quarter or more of the catalog matches each filter, so the
            // page must come from walking the order's index, not a sort.
            let plan = query::page_plan(&pool, &q).await;
            assert!(
                plan.len() == 1 && plan[0].contains("USING INDEX catalog_entities_order_"),
                "{field} {ascending} {filter}: does not walk an order index: {plan:?}"
            );

            let (type_filter, lifecycle_filter) = match filter {
                "kind=component,spec.lifecycle=production" => (None, Some("production")),
                "kind=component,spec.type=library" => (Some("library"), None),
                _ => (None, None),
            };
            let mut expected: Vec<&(String, String, String, String, String, String)> = all
                .iter()
                .filter(|e| e.5 == "component")
                .filter(|e| type_filter.is_none_or(|t| e.3 == t))
                .filter(|e| {
                    lifecycle_filter.is_none_or(|l| {
                        let n: usize = e.0["component:default/comp-".len()..].parse().unwrap();
                        ["production", "experimental", "deprecated"][n % 3] == l
                    })
                })
                .collect();
            expected.sort_by(|a, b| {
                let key = |e: &(String, String, String, String, String, String)| match field {
                    "metadata.name" => e.1.clone(),
                    "metadata.title" => e.2.clone(),
                    "spec.type" => e.3.clone(),
                    "spec.owner" => e.4.clone(),
                    "kind" => e.5.clone(),
                    _ => String::new(),
                };
                let ordering = key(a).cmp(&key(b)).then_with(|| a.0.cmp(&b.0));
                if ascending {
                    ordering
                } else {
                    ordering.reverse()
                }
            });
            let want: Vec<String> = expected
                .iter()
                .skip(60)
                .take(50)
                .map(|e| e.0.clone())
                .collect();
            let page = query::run(&pool, &q).await.unwrap();
            let got: Vec<String> = page
                .items
                .iter()
                .map(|e| {
                    format!(
                        "component:default/{}",
                        e["metadata"]["name"].as_str().unwrap()
                    )
                })
                .collect();
            assert_eq!(got, want, "{field} {ascending} {filter}");
            assert_eq!(page.total, expected.len() as i64);
        }
    }

    // A search most entities match walks the order index too, checking each
    // entry against the search's matches, and agrees with a sort.
    let search = Query {
        filter: Filter::parse(&["kind=component"]).unwrap(),
        full_text: Some("component".into()),
        order: vec![("metadata.name".to_owned(), false)],
        offset: 100,
        limit: 50,
        ..Query::default()
    };
    let plan = query::page_plan(&pool, &search).await;
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX catalog_entities_order_name"))
            && plan.iter().all(|step| !step.contains("TEMP B-TREE")),
        "{plan:?}"
    );
    let page = query::run(&pool, &search).await.unwrap();
    assert_eq!(page.total, 4_000);
    let names: Vec<&str> = page
        .items
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..4_000)
        .rev()
        .skip(100)
        .take(50)
        .map(|i| format!("comp-{i:04}"))
        .collect();
    assert_eq!(names, want);

    // One match: looked up through the name's index, never a walk of all.
    let one = Query {
        filter: Filter::parse(&["kind=component,metadata.name=comp-0042"]).unwrap(),
        order: vec![("metadata.name".to_owned(), true)],
        limit: 50,
        ..Query::default()
    };
    let plan = query::page_plan(&pool, &one).await;
    assert!(
        plan.iter().any(|step| step.contains("(name_key=?)")),
        "{plan:?}"
    );
    assert_eq!(query::run(&pool, &one).await.unwrap().total, 1);
    // Past the last match: an empty page with the right total.
    let past = Query {
        filter: Filter::parse(&["kind=component"]).unwrap(),
        offset: 4_000,
        limit: 50,
        ..Query::default()
    };
    let page = query::run(&pool, &past).await.unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.total, 4_000);
}

/// Steps of one round of 200 entities each, stopping after `stop_after`.
fn one_round_steps(stop_after: usize) -> store::Pace {
    store::Pace {
        hold: std::time::Duration::ZERO,
        stop_after: Some(stop_after),
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_refresh_interrupted_half_way_is_finished_at_the_next_start(pool: SqlitePool) {
    let (dir, file, sources) = generated_source(1_000);
    let location = register(&pool, &sources, &file).await;
    assert_eq!(location.entity_count, 1_010);

    // The source changes: 200 components gone, 500 new ones. The refresh
    // stops after two of its steps, as a crash would stop it.
    let skip: Vec<usize> = (800..1_000).collect();
    std::fs::write(&file, generated_catalog(1_500, None, &skip)).unwrap();
    let found = super::crawl::crawl(
        &sources,
        sources.check("file", file.to_str().unwrap()).unwrap(),
    )
    .await;
    assert_eq!(found.entities.len(), 1_310);
    let stopped = store::apply_in_steps(&pool, &location.id, &found, one_round_steps(2)).await;
    assert!(stopped.is_err());
    let pending: (i64, i64) = sqlx::query_as(
        "SELECT apply_pending, (SELECT COUNT(*) FROM catalog_entities WHERE location_id = ?1 AND orphan = 0) FROM catalog_locations WHERE id = ?1",
    )
    .bind(&location.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(pending.0, 1, "the location is marked half-applied");
    assert_eq!(
        store::location(&pool, &location.id)
            .await
            .unwrap()
            .entity_count,
        1_010,
        "the recorded count is the last finished refresh's"
    );

    // A new process: the dead one's claim is released and the refresh redone.
    sqlx::query("UPDATE catalog_locations SET apply_token = 'dead-process' WHERE id = ?1")
        .bind(&location.id)
        .execute(&pool)
        .await
        .unwrap();
    let fresh =
        Sources::new(&[dir.path().to_path_buf()], &[], SourceLimits::default()).with_kinds(kinds());
    store::release_stale_claims(&pool).await.unwrap();
    assert_eq!(store::resume_interrupted(&pool, &fresh).await.unwrap(), 1);
    let info = store::location(&pool, &location.id).await.unwrap();
    assert_eq!(info.entity_count, 1_310);
    let (pending, provided, orphans): (i64, i64, i64) = sqlx::query_as(
        "SELECT apply_pending, \
           (SELECT COUNT(*) FROM catalog_entities WHERE location_id = ?1 AND orphan = 0), \
           (SELECT COUNT(*) FROM catalog_entities WHERE location_id = ?1 AND orphan = 1) \
         FROM catalog_locations WHERE id = ?1",
    )
    .bind(&location.id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((pending, provided, orphans), (0, 1_310, 200));
    // Nothing is left to finish.
    assert_eq!(store::resume_interrupted(&pool, &fresh).await.unwrap(), 0);

    // An unchanged source is not skipped while the location is half-applied.
    let stopped = store::apply_in_steps(&pool, &location.id, &found, one_round_steps(1)).await;
    assert!(stopped.is_err());
    let report = store::refresh_location(&pool, &sources, &location.id)
        .await
        .unwrap();
    assert_eq!(report.unchanged, 1_310);
    let pending: i64 =
        sqlx::query_scalar("SELECT apply_pending FROM catalog_locations WHERE id = ?1")
            .bind(&location.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_writers_get_in_while_a_large_location_is_written() {
    let (dir, file, sources) = generated_source(4_000);
    // Paved's own pool: its connections retry a busy write every millisecond.
    let url = format!("sqlite://{}", dir.path().join("paved.db").display());
    let pool = crate::db::connect(&url).await.unwrap();
    let ingest = {
        let (pool, sources, file) = (pool.clone(), sources.clone(), file.clone());
        tokio::spawn(async move { register(&pool, &sources, &file).await })
    };
    // Once the location's first steps are written, other writes go through
    // while it is still being written: each commits and sees it unfinished.
    let mut during = 0;
    for _ in 0..400 {
        let written: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM catalog_entities")
            .fetch_one(&pool)
            .await
            .unwrap();
        if written == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        }
        // `BEGIN IMMEDIATE` takes SQLite's write lock (or fails after the
        // 5 s busy timeout).
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE catalog_locations SET last_refresh_at = last_refresh_at")
            .execute(&mut *tx)
            .await
            .unwrap();
        let pending: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(apply_pending), 0) FROM catalog_locations")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        tx.commit().await.unwrap();
        if pending == 1 {
            during += 1;
        }
        if during == 3 || ingest.is_finished() {
            break;
        }
    }
    let location = ingest.await.unwrap();
    assert_eq!(location.entity_count, 4_010);
    assert_eq!(
        during, 3,
        "writes waited for the whole location instead of a step"
    );
}
