//! `/create`: the golden-path gallery, the wizard of one template, and the
//! page of one scaffolder task (live log).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::components::{
    format_time, loaded, Badge, Card, EmptyState, ErrorView, PageHeader, Tone,
};
use crate::scaffold::task::TaskProgress;
use crate::scaffold::wizard::Wizard;
use crate::scaffold::{scaffold_my_tasks, scaffold_task, scaffold_templates, scaffold_wizard};

fn time_saved(minutes: i64) -> String {
    if minutes >= 60 && minutes % 60 == 0 {
        format!("saves about {} h", minutes / 60)
    } else if minutes >= 60 {
        format!("saves about {:.1} h", minutes as f64 / 60.0)
    } else {
        format!("saves about {minutes} min")
    }
}

/// `/create`: pick a golden path.
#[component]
pub fn CreatePage() -> impl IntoView {
    let templates = Resource::new(|| (), |_| scaffold_templates());
    let tasks = Resource::new(|| (), |_| scaffold_my_tasks());
    view! {
        <Title text="Create" />
        <PageHeader title="Create something new" subtitle="Golden paths: a repository, a catalog entry, secrets and checked manifests in one go." />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading templates…"</p> }>
            {move || Suspend::new(async move {
                match templates.await {
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState title="No golden paths yet" body="Platform admins register templates in the catalog (Catalog → Locations, e.g. templates/all.yaml); they show here." />
                    }.into_any(),
                    Ok(list) => view! {
                        <ul class="grid gap-4 md:grid-cols-2 lg:grid-cols-3" data-testid="template-gallery">
                            {list.into_iter().map(|t| {
                                let href = t.wizard_href();
                                let label = format!("Choose {}", t.title);
                                view! {
                                    <li class="card flex flex-col" data-testid="template-card">
                                        <h2 class="text-base font-semibold">{t.title.clone()}</h2>
                                        <p class="mt-1 flex-1 text-sm text-slate-600 dark:text-slate-400">{t.description.clone()}</p>
                                        <div class="mt-3 flex flex-wrap gap-1">
                                            {(!t.spec_type.is_empty()).then(|| view! { <Badge tone=Tone::Info>{t.spec_type.clone()}</Badge> })}
                                            {t.tags.clone().into_iter().map(|tag| view! { <Badge>{tag}</Badge> }).collect_view()}
                                            {t.time_saved_minutes.map(|m| view! { <Badge tone=Tone::Success>{time_saved(m)}</Badge> })}
                                        </div>
                                        <a href=href class="btn-primary mt-4 self-start" aria-label=label>"Choose"</a>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Suspense>
        <Card title="Your recent runs" class="mt-6">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match tasks.await {
                        Ok(list) if list.is_empty() => view! { <p class="text-sm text-slate-500">"Nothing yet: pick a golden path above."</p> }.into_any(),
                        Ok(list) => view! {
                            <ul class="divide-y divide-slate-200 text-sm dark:divide-slate-700">
                                {list.into_iter().map(|t| {
                                    let href = format!("/create/tasks/{}", t.id);
                                    let tone = crate::scaffold::task::tone(t.status);
                                    view! { <li class="flex items-center gap-3 py-2"><a href=href class="flex-1 hover:underline">{t.template_title}</a><span class="text-slate-500">{format_time(t.created_at)}</span><Badge tone>{t.status.as_str()}</Badge></li> }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Card>
    }
}

/// `/create/templates/:namespace/:name`: the wizard.
#[component]
pub fn WizardPage() -> impl IntoView {
    let params = use_params_map();
    let key = move || {
        params.with(|p| {
            (
                p.get("namespace").unwrap_or_default(),
                p.get("name").unwrap_or_default(),
            )
        })
    };
    let data = Resource::new(key, |(ns, name)| scaffold_wizard(ns, name));
    view! {
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading the template…"</p> }>
            {move || Suspend::new(async move {
                loaded(data.await, |data| view! {
                        <Title text=data.template.title.clone() />
                        <PageHeader title=data.template.title.clone() subtitle=data.template.description.clone() />
                        {data.owners.is_empty().then(|| view! {
                            <p role="status" class="alert-info mb-4 text-sm">"You are not on a team yet, so you cannot pick an owner. Ask your platform team to add you."</p>
                        })}
                        <Wizard data />
                    })
            })}
        </Suspense>
    }
}

/// `/create/tasks/:id`: one task, live.
#[component]
pub fn TaskPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let task = Resource::new(id, scaffold_task);
    view! {
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading the task…"</p> }>
            {move || Suspend::new(async move {
                loaded(task.await, |task| view! {
                        <Title text=task.template_title.clone() />
                        <PageHeader title=task.template_title.clone() subtitle=format!("Started {}", format_time(task.created_at)) />
                        <TaskProgress task />
                    })
            })}
        </Suspense>
    }
}
