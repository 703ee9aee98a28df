//! `/catalog/:kind/:namespace/:name`: an entity's overview, relations (graph
//! and lists), API definition, ingestion status and YAML export.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use leptos::form::ActionForm;

use crate::catalog::{
    catalog_entity, ref_href, EntityView, PortalView, SavePortalFields, ToggleStar,
};
use crate::components::{
    format_time, loaded, percent_encode, Badge, Card, Col, DataLink, PageHeader, Table, Tone,
};

/// The entity page.
#[component]
pub fn EntityPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || {
        params.with(|p| {
            (
                p.get("kind").unwrap_or_default(),
                p.get("namespace").unwrap_or_default(),
                p.get("name").unwrap_or_default(),
            )
        })
    };
    let entity = Resource::new(key, |(kind, namespace, name)| {
        catalog_entity(kind, namespace, name)
    });
    view! {
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                loaded(entity.await, |e| view! { <Entity e /> })
            })}
        </Suspense>
    }
}

#[component]
fn Entity(e: EntityView) -> impl IntoView {
    let subtitle = format!("{} · {}/{}", e.kind, e.namespace, e.name);
    let owner_href = ref_href(&e.owner);
    let owner_name = e.owner.rsplit('/').next().unwrap_or_default().to_owned();
    let file_name = format!("{}.yaml", e.name);
    let download = format!("data:text/yaml;charset=utf-8,{}", percent_encode(&e.yaml));
    let is_api = e.kind == "API";
    let is_component = e.kind == "Component";
    let (outcomes_ns, outcomes_name) = (
        e.namespace.to_ascii_lowercase(),
        e.name.to_ascii_lowercase(),
    );
    let service_name = e.name.to_ascii_lowercase();
    // Teams are the catalog Groups of the default namespace.
    let owner_team = e
        .owner
        .strip_prefix("group:default/")
        .unwrap_or_default()
        .to_owned();
    let problems = e.problems.clone();
    let tags = e.tags.clone();
    let entity_ref = format!("{}:{}/{}", e.kind.to_ascii_lowercase(), e.namespace, e.name);
    let portal_ref = entity_ref.clone();
    let runtime_ref = entity_ref.to_ascii_lowercase();
    let links = e.links.clone();
    let annotations = e.annotations.clone();
    view! {
        <Title text=e.title.clone() />
        <PageHeader title=e.title.clone() subtitle=subtitle>
            <StarButton entity_ref=entity_ref starred=e.starred />
            <a href=download download=file_name class="btn-secondary">"Export YAML"</a>
        </PageHeader>
        {e.orphan.then(|| view! {
            <div role="status" class="alert-info mb-4">
                "This entity is no longer in its source file. It is kept so nothing is lost; remove it from the catalog once you are sure it is gone."
            </div>
        })}
        {(!problems.is_empty()).then(|| view! {
            <div role="alert" class="alert-danger mb-4" data-testid="entity-problems">
                <p class="font-medium">"The last refresh reported problems with this entity:"</p>
                <ul class="mt-1 list-disc pl-5">
                    {problems.into_iter().map(|p| view! { <li>{format!("{}{}", p.field.map(|f| format!("{f}: ")).unwrap_or_default(), p.message)}</li> }).collect_view()}
                </ul>
            </div>
        })}
        <div class="grid gap-4 lg:grid-cols-3">
            <Card title="Overview" class="lg:col-span-2">
                <p class="mb-4 text-slate-700 dark:text-slate-300">{if e.description.is_empty() { "No description yet.".to_string() } else { e.description.clone() }}</p>
                <dl class="grid grid-cols-[8rem_1fr] gap-x-4 gap-y-2 text-sm">
                    <dt class="text-slate-500">"Owner"</dt>
                    <dd>{if e.owner.is_empty() { view! { <span>"—"</span> }.into_any() } else { view! { <a href=owner_href class="text-indigo-700 hover:underline dark:text-indigo-300">{owner_name}</a> }.into_any() }}</dd>
                    <dt class="text-slate-500">"Type"</dt><dd>{or_dash(&e.spec_type)}</dd>
                    <dt class="text-slate-500">"Lifecycle"</dt><dd>{or_dash(&e.lifecycle)}</dd>
                    <dt class="text-slate-500">"Tags"</dt>
                    <dd class="flex flex-wrap gap-1">{tags.into_iter().map(|t| view! { <Badge>{t}</Badge> }).collect_view()}</dd>
                </dl>
                {(!links.is_empty()).then(|| view! {
                    <h3 class="mt-4 mb-1 text-sm font-semibold">"Links"</h3>
                    <ul class="text-sm">{links.into_iter().map(|(url, title)| view! { <li><DataLink url label=title /></li> }).collect_view()}</ul>
                })}
            </Card>
            <PortalCard entity_ref=portal_ref portal=e.portal.clone() can_edit=e.can_edit />
            <Card title="Ingestion">
                <dl class="text-sm">
                    <dt class="text-slate-500">"Source"</dt><dd class="mb-2 break-all"><code class="text-xs">{e.source.clone()}</code></dd>
                    <dt class="text-slate-500">"Last refresh"</dt><dd>{e.last_refresh_at.map(format_time).unwrap_or_else(|| "never".into())}</dd>
                </dl>
            </Card>
            <Card title="Relations" class="lg:col-span-3">
                <RelationGraph center=e.name.clone() relations=e.relations.clone() />
                <RelationList relations=e.relations.clone() />
            </Card>
            {is_api.then(|| view! { <ApiDefinition operations=e.operations.clone() definition=e.definition.clone().unwrap_or_default() /> })}
            {(!annotations.is_empty()).then(|| view! {
                <Card title="Annotations" class="lg:col-span-3">
                    <dl class="grid gap-x-4 gap-y-1 text-sm sm:grid-cols-[minmax(10rem,20rem)_1fr]">
                        {annotations.into_iter().map(|(k, v)| view! { <dt class="break-all text-slate-500">{k}</dt><dd class="break-all">{v}</dd> }).collect_view()}
                    </dl>
                </Card>
            })}
            {is_component.then(|| view! { <crate::kube::RuntimeCard entity_ref=runtime_ref.clone() /> })}
            {is_component.then(|| view! {
                <crate::outcomes::ComponentOutcomesCard namespace=outcomes_ns.clone() name=outcomes_name.clone() />
            })}
            {(is_component && !owner_team.is_empty()).then(|| view! {
                <crate::secrets::SecretsSection team=owner_team.clone() holder=service_name.clone() title="Secrets" class="lg:col-span-3"
                    intro="Write-only Vault secrets for this service. Its pods read them through the Vault Agent Injector with the role below; values are never shown again." />
            })}
            <Card title="YAML" class="lg:col-span-3">
                <details><summary class="cursor-pointer text-sm">"Show the entity as YAML"</summary>
                    <pre tabindex="0" class="mt-2 overflow-x-auto rounded bg-slate-100 p-3 text-xs dark:bg-slate-950">{e.yaml.clone()}</pre>
                </details>
            </Card>
        </div>
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "—".into()
    } else {
        s.to_owned()
    }
}

/// Relations grouped by type, each target a link.
#[component]
fn RelationList(relations: Vec<(String, String)>) -> impl IntoView {
    if relations.is_empty() {
        return view! { <p class="text-sm text-slate-500">"No relations. Add owner, system, dependsOn or providesApis to its YAML."</p> }.into_any();
    }
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (kind, target) in relations {
        match groups.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, list)) => list.push(target),
            None => groups.push((kind, vec![target])),
        }
    }
    view! {
        <dl class="mt-4 grid gap-x-6 gap-y-2 text-sm sm:grid-cols-[10rem_1fr]">
            {groups.into_iter().map(|(kind, targets)| view! {
                <dt class="text-slate-500">{kind}</dt>
                <dd class="flex flex-wrap gap-x-3 gap-y-1">
                    {targets.into_iter().map(|t| { let href = ref_href(&t); view! { <a href=href class="text-indigo-700 hover:underline dark:text-indigo-300" data-testid="relation-link">{t}</a> } }).collect_view()}
                </dd>
            }).collect_view()}
        </dl>
    }
    .into_any()
}

/// The entity in the middle, related entities around it, each a link.
#[component]
fn RelationGraph(center: String, relations: Vec<(String, String)>) -> impl IntoView {
    const MAX: usize = 12;
    if relations.is_empty() {
        return ().into_any();
    }
    let (w, h, r) = (720.0_f64, 340.0_f64, 130.0_f64);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let shown: Vec<(String, String)> = relations.into_iter().take(MAX).collect();
    let n = shown.len() as f64;
    let nodes = shown
        .into_iter()
        .enumerate()
        .map(|(i, (kind, target))| {
            let angle = -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * i as f64 / n;
            let (x, y) = (cx + 2.0 * r * angle.cos(), cy + r * angle.sin());
            // `kind:name`, so an API and a team of the same name stay apart.
            let label: String = match target.split_once(':') {
                Some((kind, rest)) => format!("{kind}:{}", rest.rsplit('/').next().unwrap_or(rest)),
                None => target.clone(),
            }
            .chars()
            .take(22)
            .collect();
            let href = ref_href(&target);
            let (mx, my) = ((cx + x) / 2.0, (cy + y) / 2.0);
            view! {
                <line x1=cx y1=cy x2=x y2=y class="stroke-slate-300 dark:stroke-slate-600" stroke-width="1.5" />
                <text x=mx y=my - 4.0 text-anchor="middle" class="fill-slate-500 text-[10px]">{kind}</text>
                <a href=href>
                    <rect x=x - 70.0 y=y - 14.0 width="140" height="28" rx="8" class="fill-white stroke-indigo-300 dark:fill-slate-800 dark:stroke-indigo-700" />
                    <text x=x y=y + 4.0 text-anchor="middle" class="fill-slate-800 text-[12px] dark:fill-slate-100">{label}</text>
                </a>
            }
        })
        .collect_view();
    view! {
        <svg viewBox=format!("0 0 {w} {h}") role="group" aria-label="Relations graph" class="w-full max-w-3xl">
            {nodes}
            <rect x=cx - 80.0 y=cy - 16.0 width="160" height="32" rx="10" class="fill-indigo-600" />
            <text x=cx y=cy + 5.0 text-anchor="middle" class="fill-white text-[13px] font-semibold">{center.chars().take(24).collect::<String>()}</text>
        </svg>
    }
    .into_any()
}

/// An API's operations (OpenAPI) or its raw definition.
#[component]
fn ApiDefinition(operations: Vec<(String, String, String)>, definition: String) -> impl IntoView {
    view! {
        <Card title="API definition" class="lg:col-span-3">
            {if operations.is_empty() {
                view! { <pre tabindex="0" class="max-h-96 overflow-auto rounded bg-slate-100 p-3 text-xs dark:bg-slate-950">{definition}</pre> }.into_any()
            } else {
                view! {
                    <Table columns=vec![Col::text("Method"), Col::text("Path"), Col::text("Summary")] label="Operations">
                                {operations.into_iter().map(|(method, path, summary)| {
                                    let tone = match method.as_str() { "GET" => Tone::Info, "POST" => Tone::Success, "DELETE" => Tone::Danger, _ => Tone::Warning };
                                    view! { <tr><td><Badge tone>{method}</Badge></td><td><code class="text-xs">{path}</code></td><td>{summary}</td></tr> }
                                }).collect_view()}
                            </Table>
                    <details class="mt-3"><summary class="cursor-pointer text-sm">"Raw definition"</summary>
                        <pre tabindex="0" class="mt-2 max-h-96 overflow-auto rounded bg-slate-100 p-3 text-xs dark:bg-slate-950">{definition}</pre>
                    </details>
                }.into_any()
            }}
        </Card>
    }
}

/// What the owning team keeps in Paved, and the form to change it (owners only).
#[island(lazy)]
fn PortalCard(entity_ref: String, portal: PortalView, can_edit: bool) -> impl IntoView {
    let save = ServerAction::<SavePortalFields>::new();
    let shown = RwSignal::new(portal.clone());
    Effect::new(move |_| {
        if let Some(Ok(saved)) = save.value().get() {
            shown.set(saved);
        }
    });
    let error = move |field: &'static str| {
        Signal::derive(move || {
            save.value().get().and_then(|r| r.err()).and_then(|e| {
                e.field_message(field).or_else(|| {
                    (e.field_message("oncall").is_none()
                        && e.field_message("support_url").is_none()
                        && e.field_message("notes").is_none()
                        && field == "notes")
                        .then(|| e.to_string())
                })
            })
        })
    };
    view! {
        <Card title="Team notes">
            <dl class="text-sm" data-testid="portal-fields">
                <dt class="text-slate-500">"On call"</dt>
                <dd class="mb-2">{move || { let v = shown.get().oncall; if v.is_empty() { "—".to_string() } else { v } }}</dd>
                <dt class="text-slate-500">"Support"</dt>
                <dd class="mb-2 break-all">{move || { let url = shown.get().support_url; if url.is_empty() { view! { <span>"—"</span> }.into_any() } else { view! { <DataLink url=url.clone() label=url /> }.into_any() } }}</dd>
                <dt class="text-slate-500">"Notes"</dt>
                <dd class="whitespace-pre-line">{move || { let v = shown.get().notes; if v.is_empty() { "—".to_string() } else { v } }}</dd>
            </dl>
            {can_edit.then(|| view! {
                <details class="mt-3">
                    <summary class="cursor-pointer text-sm text-indigo-700 dark:text-indigo-300">"Edit team notes"</summary>
                    <ActionForm action=save>
                        <input type="hidden" name="entity_ref" value=entity_ref.clone() />
                        <div class="mt-3 flex flex-col gap-3">
                            <crate::components::Field label="On call" id="portal-oncall" error=error("oncall")>
                                <input id="portal-oncall" name="oncall" class="input" maxlength="120" value=portal.oncall.clone() />
                            </crate::components::Field>
                            <crate::components::Field label="Support link" id="portal-support" error=error("support_url")>
                                <input id="portal-support" name="support_url" class="input" inputmode="url" value=portal.support_url.clone() />
                            </crate::components::Field>
                            <crate::components::Field label="Notes" id="portal-notes" error=error("notes")>
                                <textarea id="portal-notes" name="notes" class="input" rows="3">{portal.notes.clone()}</textarea>
                            </crate::components::Field>
                            <button type="submit" class="btn-primary self-start" disabled=move || save.pending().get()>"Save notes"</button>
                        </div>
                    </ActionForm>
                </details>
            })}
        </Card>
    }
}

/// Stars or unstars the entity for the viewer (an island).
#[island(lazy)]
fn StarButton(entity_ref: String, starred: bool) -> impl IntoView {
    let star = ServerAction::<ToggleStar>::new();
    let starred =
        Signal::derive(move || star.value().get().and_then(|r| r.ok()).unwrap_or(starred));
    view! {
        <ActionForm action=star>
            <input type="hidden" name="entity_ref" value=entity_ref />
            <button type="submit" class="btn-secondary" aria-pressed=move || starred.get().to_string()>
                {move || if starred.get() { "★ Starred" } else { "☆ Star" }}
            </button>
        </ActionForm>
    }
}
