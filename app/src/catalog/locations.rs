//! `/catalog/locations`: registered locations with their ingestion status;
//! platform admins register new ones. `/catalog/locations/:id`: the problems.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::catalog::{
    catalog_location, catalog_locations, ImportYaml, LocationView, ProblemView, RefreshLocation,
    RegisterLocation,
};
use crate::components::{
    format_time, loaded, refetch_on, Badge, Card, Col, EmptyState, ErrorView, Field, MeResource,
    PageHeader, Table, Tone,
};
use crate::identity::{authorize, Action};

fn status_tone(status: &str) -> Tone {
    match status {
        "ok" => Tone::Success,
        "problems" => Tone::Warning,
        "failed" => Tone::Danger,
        _ => Tone::Neutral,
    }
}

/// The locations list.
#[component]
pub fn LocationsPage() -> impl IntoView {
    let me = expect_context::<MeResource>();
    let initial = Resource::new(|| (), |_| catalog_locations());
    view! {
        <Title text="Catalog locations" />
        <PageHeader title="Catalog locations" subtitle="Where catalog-info.yaml files are read from, and how the last read went." />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let is_admin = me.await.is_ok_and(|m| authorize(&m, Action::AdministerPlatform).is_ok());
                loaded(initial.await, |initial| view! { <LocationsManager is_admin initial /> })
            })}
        </Suspense>
    }
}

/// The forms (platform admins) and the list, refreshed after each change (an island).
#[island(lazy)]
fn LocationsManager(is_admin: bool, initial: Vec<LocationView>) -> impl IntoView {
    let register = ServerAction::<RegisterLocation>::new();
    let import = ServerAction::<ImportYaml>::new();
    let locations = RwSignal::new(initial);
    let load_error = RwSignal::new(None);
    refetch_on(
        move || register.version().get() + import.version().get(),
        catalog_locations,
        locations,
        load_error,
    );
    let import_error = Signal::derive(move || {
        import.value().get().and_then(|r| r.err()).map(|e| {
            e.field_message("yaml")
                .or_else(|| e.field_message("name"))
                .unwrap_or_else(|| e.to_string())
        })
    });
    let error = Signal::derive(move || {
        register
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.field_message("target").unwrap_or_else(|| e.to_string()))
    });
    view! {
        {is_admin.then(|| view! {
                    <Card title="Register a location" class="mb-6">
                        <ActionForm action=register>
                            <div class="grid gap-3 sm:grid-cols-[11rem_1fr_auto] sm:items-end">
                                <div class="flex flex-col gap-1">
                                    <label for="location-type" class="text-sm font-medium">"Type"</label>
                                    <select id="location-type" name="kind" class="input">
                                        <option value="file">"file"</option>
                                        <option value="url">"url"</option>
                                        <option value="github-discovery">"github-discovery"</option>
                                        <option value="gitlab-discovery">"gitlab-discovery"</option>
                                    </select>
                                </div>
                                <Field label="Target" id="location-target" error=error help="A path under PAVED_CATALOG_FILE_ROOTS; a file URL on PAVED_CATALOG_ALLOWED_HOSTS or a configured git host; for discovery, https://github.com/ORG/*/blob/-/catalog-info.yaml or https://gitlab.example.com/GROUP/blob/*/catalog-info.yaml">
                                    <input id="location-target" name="target" class="input" required aria-describedby="location-target-error" />
                                </Field>
                                <button type="submit" class="btn-primary justify-center" disabled=move || register.pending().get()>
                                    {move || if register.pending().get() { "Reading…" } else { "Register" }}
                                </button>
                            </div>
                        </ActionForm>
                    </Card>
                    <Card title="Import pasted YAML" class="mb-6">
                        <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"For entities that have no file to point at yet. The import becomes a location of its own; refreshing it re-reads what was pasted."</p>
                        <ActionForm action=import>
                            <div class="flex flex-col gap-3">
                                <div class="flex flex-col gap-1">
                                    <label for="import-name" class="text-sm font-medium">"Import name"</label>
                                    <input id="import-name" name="name" class="input" required maxlength="100" />
                                </div>
                                <Field label="YAML" id="import-yaml" error=import_error help="One or more entities, separated by ---">
                                    <textarea id="import-yaml" name="yaml" rows="8" class="input font-mono text-xs" required aria-describedby="import-yaml-error"></textarea>
                                </Field>
                                <button type="submit" class="btn-primary self-start" disabled=move || import.pending().get()>
                                    {move || if import.pending().get() { "Importing…" } else { "Import" }}
                                </button>
                            </div>
                        </ActionForm>
                        {move || import.value().get().and_then(|r| r.ok()).map(|l| view! {
                            <div class="mt-4" data-testid="import-result">
                                <p class="text-sm">{format!("Imported “{}”: {} entities, {} problems.", l.target, l.entity_count, l.problem_count)}</p>
                                <ProblemTable problems=l.problems />
                            </div>
                        })}
                    </Card>
        })}
        {move || match load_error.get() {
            Some(e) => view! { <ErrorView error=e /> }.into_any(),
            None => {
                let list = locations.get();
                if list.is_empty() {
                    view! {
                        <EmptyState title="No locations yet" body="A platform admin registers a catalog-info.yaml file or URL above; its entities appear in the catalog at once." />
                    }.into_any()
                } else {
                    view! { <LocationTable list /> }.into_any()
                }
            }
        }}
    }
}

#[component]
fn LocationTable(list: Vec<LocationView>) -> impl IntoView {
    view! {
        <Card>
            <Table columns=vec![Col::text("Target"), Col::text("Status"), Col::text("Entities"), Col::text("Problems"), Col::text("Last refresh")]>
                        {list.into_iter().map(|l| view! {
                            <tr data-testid="location-row">
                                <td class="break-all"><a href=format!("/catalog/locations/{}", l.id) class="text-indigo-700 hover:underline dark:text-indigo-300">{l.target}</a></td>
                                <td><Badge tone=status_tone(&l.status)>{l.status}</Badge></td>
                                <td>{l.entity_count}</td>
                                <td>{l.problem_count}</td>
                                <td class="whitespace-nowrap">{l.last_refresh_at.map(format_time).unwrap_or_else(|| "never".into())}</td>
                            </tr>
                        }).collect_view()}
                    </Table>
        </Card>
    }
}

/// One location and its problems.
#[component]
pub fn LocationPage() -> impl IntoView {
    let params = use_params_map();
    let refresh = ServerAction::<RefreshLocation>::new();
    let location = Resource::new(
        move || {
            (
                params.with(|p| p.get("id").unwrap_or_default()),
                refresh.version().get(),
            )
        },
        |(id, _)| catalog_location(id),
    );
    view! {
        <Title text="Catalog location" />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                loaded(location.await, |l| {
                        let id = l.id.clone();
                        view! {
                            <PageHeader title=l.target.clone() subtitle=format!("{} location · {} entities · last refresh {}", l.kind, l.entity_count, l.last_refresh_at.map(format_time).unwrap_or_else(|| "never".into()))>
                                <ActionForm action=refresh>
                                    <input type="hidden" name="id" value=id />
                                    <button type="submit" class="btn-secondary" disabled=move || refresh.pending().get()>"Refresh now"</button>
                                </ActionForm>
                            </PageHeader>
                            <div class="mb-4 flex flex-wrap items-center gap-2">
                                <Badge tone=status_tone(&l.status)>{l.status.clone()}</Badge>
                                {l.integration.clone().map(|i| view! { <span class="text-sm text-slate-600 dark:text-slate-400" data-testid="location-integration">"Read through "{i}</span> })}
                                {l.discovered_by.clone().map(|d| {
                                    let href = format!("/catalog/locations/{d}");
                                    view! { <a class="text-sm text-indigo-700 hover:underline dark:text-indigo-300" href=href>"Found by a discovery location"</a> }
                                })}
                            </div>
                            <Card title="Problems">
                                <ProblemTable problems=l.problems />
                            </Card>
                        }.into_any()
                    })
            })}
        </Suspense>
    }
}

/// Problems with file, document, entity, field and message.
#[component]
pub fn ProblemTable(problems: Vec<ProblemView>) -> impl IntoView {
    if problems.is_empty() {
        return view! { <EmptyState title="No problems" body="Everything in this source was read and validated." /> }.into_any();
    }
    view! {
        <Table columns=vec![Col::text("File"), Col::text("Document"), Col::text("Entity"), Col::text("Field"), Col::text("Problem")] label="Problems">
                    {problems.into_iter().map(|p| view! {
                        <tr data-testid="problem-row">
                            <td class="max-w-xs break-all text-xs">{p.source}</td>
                            <td>{p.document.map(|d| d.to_string()).unwrap_or_default()}</td>
                            <td class="break-all">{p.entity_ref.unwrap_or_default()}</td>
                            <td><code class="text-xs">{p.field.unwrap_or_default()}</code></td>
                            <td class="text-red-700 dark:text-red-300">{p.message}</td>
                        </tr>
                    }).collect_view()}
                </Table>
    }
    .into_any()
}
