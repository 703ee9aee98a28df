//! `/admin/outcomes`: platform admins create, rotate and delete the sources
//! delivery events come from (each secret shown once) and see the events no
//! component claims yet.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use paved_shared::outcomes::{Created, SourceKind, SourceView, SourcesPage};

use crate::components::{
    format_time, loaded, refetch_on, Badge, Card, Col, EmptyState, ErrorView, Field, PageHeader,
    Table, ToastRegion, Toasts, Tone,
};
use crate::error::AppError;

/// Every source, the unmapped events and where events are sent; platform admins only.
#[server(endpoint = "event_sources")]
pub async fn event_sources() -> Result<SourcesPage, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::outcomes::sources_page(&core, &user).await?)
}

/// Creates a source; its secret is in the answer this once.
#[server(endpoint = "event_source_create")]
pub async fn event_source_create(kind: String, name: String) -> Result<Created, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let kind = SourceKind::parse(&kind).ok_or_else(|| {
        crate::ssr::fail(AppError::Invalid {
            field: "kind".into(),
            message: "choose GitHub, GitLab, DevLake or generic".into(),
        })
    })?;
    Ok(paved_core::outcomes::sources::create(&core.db, &user, kind, &name).await?)
}

/// Replaces a source's secret at once; the new one is in the answer this once.
#[server(endpoint = "event_source_rotate")]
pub async fn event_source_rotate(id: String) -> Result<Created, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::outcomes::sources::rotate(&core.db, &user, &id).await?)
}

/// Deletes a source (its events and what they told stay).
#[server(endpoint = "event_source_delete")]
pub async fn event_source_delete(id: String) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::outcomes::sources::delete(&core.db, &user, &id).await?)
}

async fn sources_list() -> Result<Vec<SourceView>, AppError> {
    event_sources().await.map(|p| p.sources)
}

/// `/admin/outcomes`.
#[component]
pub fn EventSourcesPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| event_sources());
    view! {
        <Title text="Delivery events" />
        <PageHeader title="Delivery events" subtitle="Where deployments, commits and incidents come from: each source proves itself with its own secret. Teams' Outcomes pages are computed from what these sources send." />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading sources…"</p> }>
            {move || Suspend::new(async move {
                loaded(data.await, |page| {
                    let unmapped = page.unmapped.clone();
                    view! {
                        <SourcesManager initial=page.sources github=page.endpoints.github gitlab=page.endpoints.gitlab
                            devlake=page.endpoints.devlake generic=page.endpoints.generic />
                        <Card title="Events no component claims" class="mt-6">
                            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Kept, never dropped: give the component that owns the repository a github.com/project-slug, gitlab.com/project-slug or backstage.io/source-location annotation (or fix the component a deployment names) and its numbers include these events at once."</p>
                            {if unmapped.is_empty() {
                                view! { <p class="text-sm text-slate-500" data-testid="unmapped-empty">"Every event maps to a component."</p> }.into_any()
                            } else {
                                view! {
                                    <Table testid="unmapped" columns=vec![Col::text("Kind"), Col::text("Repository"), Col::text("Component named"), Col::numeric("Events"), Col::text("Latest")]>
                                        {unmapped.into_iter().map(|u| view! {
                                            <tr>
                                                <td>{u.kind}</td>
                                                <td>{u.repo.unwrap_or_else(|| "—".into())}</td>
                                                <td>{u.component.unwrap_or_else(|| "—".into())}</td>
                                                <td class="text-right tabular-nums">{u.count}</td>
                                                <td class="whitespace-nowrap">{format_time(u.latest)}</td>
                                            </tr>
                                        }).collect_view()}
                                    </Table>
                                }.into_any()
                            }}
                        </Card>
                    }
                })
            })}
        </Suspense>
    }
}

fn endpoint_for(kind: SourceKind, id: &str, urls: &[String; 4]) -> String {
    match kind {
        SourceKind::Github => urls[0].clone(),
        SourceKind::Gitlab => urls[1].clone(),
        SourceKind::Devlake => urls[2].replace("{id}", id),
        SourceKind::Generic => urls[3].clone(),
    }
}

fn kind_label(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Github => "GitHub webhooks",
        SourceKind::Gitlab => "GitLab webhooks",
        SourceKind::Devlake => "DevLake webhook API",
        SourceKind::Generic => "Generic JSON",
    }
}

/// Creating, rotating and deleting sources (an island).
#[island(lazy)]
fn SourcesManager(
    initial: Vec<SourceView>,
    github: String,
    gitlab: String,
    devlake: String,
    generic: String,
) -> impl IntoView {
    let toasts = Toasts::default();
    provide_context(toasts);
    let urls = [github, gitlab, devlake, generic];
    let create = ServerAction::<EventSourceCreate>::new();
    let rotate = ServerAction::<EventSourceRotate>::new();
    let delete = ServerAction::<EventSourceDelete>::new();
    let sources = RwSignal::new(initial);
    let load_error = RwSignal::new(None);
    refetch_on(
        move || create.version().get() + rotate.version().get() + delete.version().get(),
        sources_list,
        sources,
        load_error,
    );
    // The secret last created or rotated: shown until the next one.
    let shown = RwSignal::new(None::<Created>);
    Effect::new(move |_| {
        if let Some(Ok(c)) = create.value().get() {
            shown.set(Some(c));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(c)) = rotate.value().get() {
            toasts.push(format!(
                "The secret of “{}” was replaced; the old one stopped working.",
                c.source.name
            ));
            shown.set(Some(c));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            toasts.push("Source deleted; its events stay counted.");
        }
    });
    let problem = Signal::derive(move || {
        [create.value().get(), rotate.value().get()]
            .into_iter()
            .flatten()
            .find_map(|r| r.err())
            .or_else(|| delete.value().get().and_then(|r| r.err()))
    });
    let name_error = Signal::derive(move || {
        create
            .value()
            .get()
            .and_then(|r| r.err())
            .and_then(|e| e.field_message("name"))
    });
    let urls_for_secret = urls.clone();
    view! {
        <div class="grid gap-6 lg:grid-cols-3">
            <Card title="New source" class="lg:col-span-1">
                <ActionForm action=create>
                    <div class="flex flex-col gap-3">
                        <Field label="Sends" id="source-kind" error=Signal::derive(|| None::<String>) help="GitHub signs each delivery with the secret; the others send it as a token.">
                            <select id="source-kind" name="kind" class="input">
                                <option value="github">"GitHub webhooks"</option>
                                <option value="gitlab">"GitLab webhooks"</option>
                                <option value="devlake">"DevLake webhook API"</option>
                                <option value="generic">"Generic JSON"</option>
                            </select>
                        </Field>
                        <Field label="Name" id="source-name" error=name_error help="For people: the organization, group or tool, such as acme-github.">
                            <input id="source-name" name="name" class="input" required maxlength="100" autocomplete="off"
                                aria-describedby="source-name-error"
                                aria-invalid=move || name_error.get().is_some().to_string() />
                        </Field>
                        <button type="submit" class="btn-primary" disabled=move || create.pending().get()>
                            {move || if create.pending().get() { "Creating…" } else { "Create source" }}
                        </button>
                    </div>
                </ActionForm>
                {move || problem.get().filter(|e| e.field_message("name").is_none()).map(|e| view! { <div class="mt-3"><ErrorView error=e /></div> })}
                {move || shown.get().map(|c| {
                    let url = endpoint_for(c.source.kind, &c.source.id, &urls_for_secret);
                    view! {
                        <div class="alert-success mt-4 text-sm" data-testid="new-source-secret">
                            <p class="font-medium">{format!("Copy the secret of “{}” now: it is not shown again.", c.source.name)}</p>
                            <code class="mt-2 block break-all rounded bg-white/70 p-2 text-xs dark:bg-black/30">{c.secret.clone()}</code>
                            <p class="mt-2">"Send events to "<code class="break-all">{url}</code></p>
                        </div>
                    }
                })}
            </Card>
            <Card title="Sources" class="lg:col-span-2">
                {move || match load_error.get() {
                    Some(e) => view! { <ErrorView error=e /> }.into_any(),
                    None => {
                        let list = sources.get();
                        if list.is_empty() {
                            view! { <EmptyState title="No event sources yet" body="Create one with the form on this page, then add its URL and secret to your repositories' webhooks or your pipelines." /> }.into_any()
                        } else {
                            let urls = urls.clone();
                            view! {
                                <div class="overflow-x-auto">
                                    <Table testid="sources" columns=vec![Col::text("Name"), Col::text("Sends"), Col::text("Send to"), Col::numeric("Events"), Col::text("Last event"), Col::actions("Actions")]>
                                        {list.into_iter().map(|s| {
                                            let url = endpoint_for(s.kind, &s.id, &urls);
                                            let (rotate_id, delete_id) = (s.id.clone(), s.id.clone());
                                            let (rotate_label, delete_label) = (format!("Rotate the secret of {}", s.name), format!("Delete source {}", s.name));
                                            view! {
                                                <tr data-testid="source-row">
                                                    <td class="font-medium">{s.name.clone()}{s.from_environment.then(|| view! { " "<Badge tone=Tone::Neutral>"from the environment"</Badge> })}</td>
                                                    <td>{kind_label(s.kind)}</td>
                                                    <td><code class="break-all text-xs">{url}</code></td>
                                                    <td class="text-right tabular-nums">{s.event_count}</td>
                                                    <td class="whitespace-nowrap">{s.last_event_at.map(format_time).unwrap_or_else(|| "never".into())}</td>
                                                    <td class="text-right">
                                                        {if s.from_environment {
                                                            view! { <span class="text-xs text-slate-500">"Change the variable to rotate"</span> }.into_any()
                                                        } else {
                                                            view! {
                                                                <div class="flex justify-end gap-2">
                                                                    <ActionForm action=rotate>
                                                                        <input type="hidden" name="id" value=rotate_id />
                                                                        <button type="submit" class="btn-secondary" aria-label=rotate_label>"Rotate"</button>
                                                                    </ActionForm>
                                                                    <ActionForm action=delete>
                                                                        <input type="hidden" name="id" value=delete_id />
                                                                        <button type="submit" class="btn-danger" aria-label=delete_label>"Delete"</button>
                                                                    </ActionForm>
                                                                </div>
                                                            }.into_any()
                                                        }}
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </Table>
                                </div>
                            }.into_any()
                        }
                    }
                }}
            </Card>
        </div>
        <ToastRegion />
    }
}
