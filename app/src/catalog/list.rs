//! `/catalog`: search, facets, sorting and paging, all in the URL.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::catalog::{catalog_list, highlight, ref_href, ListQuery, FACETS, PAGE_SIZE};
use crate::components::{
    loaded, percent_encode, Badge, Card, Col, EmptyState, PageHeader, Pager, Table, Tone,
};

/// URL parameter of each facet key.
fn param_of(key: &str) -> &'static str {
    match key {
        "kind" => "kind",
        "spec.type" => "type",
        "relations.ownedby" => "owner",
        "spec.lifecycle" => "lifecycle",
        "spec.system" => "system",
        _ => "tag",
    }
}

/// The list URL for `query`.
pub fn list_url(query: &ListQuery) -> String {
    let mut params: Vec<(String, String)> = Vec::new();
    if !query.q.is_empty() {
        params.push(("q".into(), query.q.clone()));
    }
    for (key, value) in &query.filters {
        params.push((param_of(key).into(), value.clone()));
    }
    if query.mine {
        params.push(("mine".into(), "1".into()));
    }
    if query.starred {
        params.push(("starred".into(), "1".into()));
    }
    if !query.sort.is_empty() && query.sort != "name" {
        params.push(("sort".into(), query.sort.clone()));
    }
    if query.page > 0 {
        params.push(("page".into(), query.page.to_string()));
    }
    let encoded: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    if encoded.is_empty() {
        "/catalog".into()
    } else {
        format!("/catalog?{}", encoded.join("&"))
    }
}

/// The catalog list page.
#[component]
pub fn CatalogPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| {
        params.with(|p| {
            let mut filters = Vec::new();
            for (key, _) in FACETS {
                if let Some(v) = p.get(param_of(key)).filter(|v| !v.is_empty()) {
                    filters.push((key.to_owned(), v));
                }
            }
            ListQuery {
                q: p.get("q").unwrap_or_default(),
                filters,
                mine: p.get("mine").is_some_and(|m| m == "1"),
                starred: p.get("starred").is_some_and(|m| m == "1"),
                page: p.get("page").and_then(|n| n.parse().ok()).unwrap_or(0),
                sort: p.get("sort").unwrap_or_else(|| "name".into()),
            }
        })
    });
    let page = Resource::new(move || query.get(), catalog_list);

    view! {
        <Title text="Catalog" />
        <PageHeader title="Catalog" subtitle="Every service, API, system, team and person, with who owns what.">
            <a href="/catalog/locations" class="btn-secondary">"Locations"</a>
        </PageHeader>
        <form method="get" action="/catalog" role="search" class="mb-4 flex flex-col gap-2 sm:flex-row">
            <label for="catalog-q" class="sr-only">"Search the catalog"</label>
            <input id="catalog-q" name="q" type="search" class="input" placeholder="Search names, titles, descriptions, tags…"
                value=move || query.get().q />
            {move || query.get().filters.into_iter().map(|(k, v)| view! { <input type="hidden" name=param_of(&k) value=v /> }).collect_view()}
            {move || query.get().mine.then(|| view! { <input type="hidden" name="mine" value="1" /> })}
            {move || query.get().starred.then(|| view! { <input type="hidden" name="starred" value="1" /> })}
            <button type="submit" class="btn-primary justify-center">"Search"</button>
        </form>
        <Transition fallback=|| view! { <p class="text-slate-500">"Loading the catalog…"</p> }>
            {move || Suspend::new(async move {
                let q = query.get_untracked();
                loaded(page.await, |page| view! { <Results query=q page /> })
            })}
        </Transition>
    }
}

#[component]
fn Results(query: ListQuery, page: crate::catalog::ListPage) -> impl IntoView {
    let starred_url = list_url(&ListQuery {
        starred: !query.starred,
        page: 0,
        ..query.clone()
    });
    let mine_url = list_url(&ListQuery {
        mine: !query.mine,
        page: 0,
        ..query.clone()
    });
    let facet_views = page
        .facets
        .iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(key, values)| {
            let label = FACETS.iter().find(|(k, _)| k == key).map(|(_, l)| *l).unwrap_or("");
            let active = query.filters.iter().find(|(k, _)| k == key).map(|(_, v)| v.to_lowercase());
            let links = values
                .iter()
                .map(|(value, count)| {
                    let is_active = active.as_deref() == Some(value.as_str());
                    let mut next = query.clone();
                    next.page = 0;
                    next.filters.retain(|(k, _)| k != key);
                    if !is_active {
                        next.filters.push((key.clone(), value.clone()));
                    }
                    let href = list_url(&next);
                    let class = if is_active { "facet facet-active" } else { "facet" };
                    let text = if key == "relations.ownedby" { value.rsplit('/').next().unwrap_or(value).to_owned() } else { value.clone() };
                    view! {
                        <li><a href=href class=class aria-current=is_active.then_some("true")>
                            <span>{text}</span><span class="text-xs text-slate-500 dark:text-slate-400">{*count}</span>
                        </a></li>
                    }
                })
                .collect_view();
            view! {
                <div>
                    <h3 class="mb-1 text-xs font-semibold tracking-wide text-slate-500 uppercase dark:text-slate-400">{label}</h3>
                    <ul class="flex flex-col gap-0.5" aria-label=format!("Filter by {label}")>{links}</ul>
                </div>
            }
        })
        .collect_view();
    let start = query.page * PAGE_SIZE;
    let end = (start + page.rows.len() as i64).min(page.total);
    let prev = (query.page > 0).then(|| {
        list_url(&ListQuery {
            page: query.page - 1,
            ..query.clone()
        })
    });
    let next = (end < page.total).then(|| {
        list_url(&ListQuery {
            page: query.page + 1,
            ..query.clone()
        })
    });
    let sort_links = [
        ("name", "Name"),
        ("kind", "Kind"),
        ("type", "Type"),
        ("owner", "Owner"),
        ("lifecycle", "Lifecycle"),
    ]
    .into_iter()
    .map(|(key, label)| {
        let href = list_url(&ListQuery {
            sort: key.into(),
            page: 0,
            ..query.clone()
        });
        let current = query.sort == key || (query.sort.is_empty() && key == "name");
        view! { <a href=href class="nav-link" aria-current=current.then_some("true")>{label}</a> }
    })
    .collect_view();
    let search = query.q.clone();
    let empty_catalog = page.total == 0
        && query.q.is_empty()
        && query.filters.is_empty()
        && !query.mine
        && !query.starred;

    view! {
        <div class="grid gap-6 lg:grid-cols-[14rem_1fr]">
            <aside class="flex flex-col gap-4" aria-label="Filters">
                <a href=mine_url class="btn-secondary justify-center" aria-current=query.mine.then_some("true")>
                    {if query.mine { "Showing my teams' · show all" } else { "Only my teams'" }}
                </a>
                <a href=starred_url class="btn-secondary justify-center" aria-current=query.starred.then_some("true")>
                    {if query.starred { "Showing starred · show all" } else { "★ Starred" }}
                </a>
                {facet_views}
            </aside>
            <Card>
                <div class="mb-3 flex flex-wrap items-center justify-between gap-2 text-sm">
                    <span data-testid="catalog-count">{format!("{} entities", page.total)}</span>
                    <nav aria-label="Sort by" class="flex flex-wrap gap-1">{sort_links}</nav>
                </div>
                {if page.rows.is_empty() {
                    if empty_catalog {
                        view! { <EmptyState title="The catalog is empty" body="A platform admin registers catalog-info.yaml locations under Catalog → Locations; entities appear as soon as they are read." /> }.into_any()
                    } else if query.starred && query.q.is_empty() && query.filters.is_empty() {
                        view! { <EmptyState title="Nothing starred yet" body="Star the entities you work with from their pages, and they gather here." /> }.into_any()
                    } else {
                        view! { <EmptyState title="Nothing matches" body="Try fewer words, or remove a filter on the left." /> }.into_any()
                    }
                } else {
                    view! {
                        <Table columns=vec![Col::text("Name"), Col::text("Kind"), Col::text("Type"), Col::text("Owner"), Col::text("Lifecycle"), Col::text("Description")]>
                                    {page.rows.into_iter().map(|r| {
                                        let href = r.href();
                                        let owner_href = ref_href(&r.owner);
                                        let owner_name = r.owner.rsplit('/').next().unwrap_or_default().to_owned();
                                        let title = highlight(&r.title, &search);
                                        let description = highlight(&r.description, &search);
                                        let tone = match r.lifecycle.as_str() { "production" => Tone::Success, "deprecated" => Tone::Danger, "experimental" => Tone::Warning, _ => Tone::Neutral };
                                        view! {
                                            <tr data-testid="catalog-row">
                                                <td class="font-medium">
                                                    <a href=href class="text-indigo-700 hover:underline dark:text-indigo-300">{marks(title)}</a>
                                                    {r.orphan.then(|| view! { " " <Badge tone=Tone::Warning>"orphan"</Badge> })}
                                                </td>
                                                <td><Badge>{r.kind}</Badge></td>
                                                <td>{r.spec_type}</td>
                                                <td>{(!r.owner.is_empty()).then(|| view! { <a href=owner_href class="hover:underline">{owner_name}</a> })}</td>
                                                <td>{(!r.lifecycle.is_empty()).then(|| view! { <Badge tone>{r.lifecycle}</Badge> })}</td>
                                                <td class="max-w-md text-slate-600 dark:text-slate-400">{marks(description)}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </Table>
                        <Pager first=start + 1 last=end total=page.total prev next />
                    }.into_any()
                }}
            </Card>
        </div>
    }
}

/// Renders highlighted pieces, matches in `<mark>`.
pub fn marks(pieces: Vec<(String, bool)>) -> impl IntoView {
    pieces
        .into_iter()
        .map(|(text, hit)| if hit { view! { <mark class="rounded bg-amber-200 px-0.5 dark:bg-amber-700 dark:text-white">{text}</mark> }.into_any() } else { text.into_any() })
        .collect_view()
}
