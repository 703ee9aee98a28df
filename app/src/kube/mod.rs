//! Kubernetes in the portal: the runtime card on a Component's page (what
//! runs, what is failing, why and what to do, refreshed live; events and
//! logs for the owning team), the team overview, and `/admin/clusters`.

use leptos::prelude::*;
use leptos_meta::Title;
use paved_shared::kube::{ClusterRuntime, ClusterView, PodLogs, Problem, RuntimeView, Severity};

use crate::components::{loaded, Badge, Card, Col, EmptyState, ErrorView, PageHeader, Table, Tone};
use crate::error::AppError;

/// What runs for an entity, as the viewer may see it.
#[server(endpoint = "kube_runtime")]
pub async fn kube_runtime(entity_ref: String) -> Result<RuntimeView, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::kube::runtime(&core, &user, &entity_ref).await?)
}

/// A container's logs (owning team and admins).
#[server(endpoint = "kube_logs")]
pub async fn kube_logs(
    entity_ref: String,
    cluster: String,
    pod: String,
    container: Option<String>,
    previous: bool,
) -> Result<PodLogs, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::kube::logs(
        &core,
        &user,
        &entity_ref,
        &cluster,
        &pod,
        container.as_deref(),
        previous,
    )
    .await?)
}

/// The clusters with their health (platform admins).
#[server(endpoint = "kube_clusters")]
pub async fn kube_clusters() -> Result<Vec<ClusterView>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::kube::clusters(&core, &user).await?)
}

/// The Kubernetes card of a Component's page: rendered on the server, then
/// refreshed in the browser.
#[component]
pub fn RuntimeCard(entity_ref: String) -> impl IntoView {
    let data = Resource::new(move || entity_ref.clone(), kube_runtime);
    view! {
        <Card title="Kubernetes" class="lg:col-span-3">
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Reading the clusters…"</p> }>
                {move || Suspend::new(async move {
                    loaded(data.await, |view| view! { <RuntimePanel initial=view /> })
                })}
            </Suspense>
        </Card>
    }
}

/// The runtime view, refreshed every `refresh_seconds` (an island).
#[island(lazy)]
fn RuntimePanel(initial: RuntimeView) -> impl IntoView {
    let every = initial.refresh_seconds.max(5);
    let entity_ref = initial.entity_ref.clone();
    let state = RwSignal::new(initial);
    let error = RwSignal::new(None::<AppError>);
    let refresh = {
        let entity_ref = entity_ref.clone();
        move || {
            let entity_ref = entity_ref.clone();
            leptos::task::spawn_local(async move {
                match kube_runtime(entity_ref).await {
                    Ok(v) => {
                        state.set(v);
                        error.set(None);
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        }
    };
    Effect::new(move |_| {
        let refresh = refresh.clone();
        if state.with_untracked(|s| s.state == "ok") {
            let _ = set_interval_with_handle(refresh, std::time::Duration::from_secs(every));
        }
    });
    view! {
        <div data-testid="runtime">
            {move || error.get().map(|e| view! { <ErrorView error=e /> })}
            {move || {
                let v = state.get();
                match v.state.as_str() {
                    "ok" => v.clusters.into_iter().map(|c| view! { <ClusterSection c=c entity_ref=entity_ref.clone() /> }).collect_view().into_any(),
                    _ => view! {
                        <EmptyState
                            title=if v.state == "none" { "No cluster connected" } else { "Not deployed yet" }
                            body=v.message.clone().unwrap_or_default() />
                    }.into_any(),
                }
            }}
        </div>
    }
}

fn problem_tone(p: &Problem) -> Tone {
    match p.severity {
        Severity::Error => Tone::Danger,
        Severity::Warning => Tone::Warning,
    }
}

/// A cluster's state as a badge: the clusters page's (`ok`, `unreachable`,
/// `unknown`) and a service's view of it (`ok`, `unreachable`, `invalid`).
fn state_badge(state: &str) -> AnyView {
    match state {
        "ok" => view! { <Badge tone=Tone::Success>"reachable"</Badge> }.into_any(),
        "invalid" => view! { <Badge tone=Tone::Warning>"misconfigured"</Badge> }.into_any(),
        "unknown" => view! { <Badge>"not checked yet"</Badge> }.into_any(),
        _ => view! { <Badge tone=Tone::Danger>"unreachable"</Badge> }.into_any(),
    }
}

#[component]
fn ClusterSection(c: ClusterRuntime, entity_ref: String) -> impl IntoView {
    let ClusterRuntime {
        cluster: cluster_name,
        namespace,
        selector,
        state,
        message,
        fetched_at,
        workloads,
        pods,
        hpas,
        endpoints,
        problems,
        events,
        can_read_logs,
        ..
    } = c;
    let heading = format!("{cluster_name} · {namespace}");
    let nothing = state == "ok" && workloads.is_empty() && pods.is_empty();
    let state_badge = state_badge(&state);
    let logs = RwSignal::new(None::<Result<PodLogs, AppError>>);
    let can_logs = can_read_logs;
    let cluster = cluster_name.clone();
    let show_logs = move |pod: String, container: Option<String>, previous: bool| {
        let (entity_ref, cluster) = (entity_ref.clone(), cluster.clone());
        leptos::task::spawn_local(async move {
            logs.set(Some(
                kube_logs(entity_ref, cluster, pod, container, previous).await,
            ));
        });
    };
    view! {
        <section class="mb-6 last:mb-0" data-testid="runtime-cluster" data-cluster=cluster_name.clone()>
            <div class="mb-2 flex flex-wrap items-center gap-2">
                <h3 class="font-semibold">{heading}</h3>
                {state_badge}
                <span class="text-xs text-slate-500">{fetched_at.map(|t| format!("read {t}")).unwrap_or_default()}</span>
                <code class="text-xs text-slate-500">{selector}</code>
            </div>
            {message.map(|m| view! { <p role="alert" class="alert-warning mb-3 text-sm" data-testid="runtime-message">{m}</p> })}
            {(!problems.is_empty()).then(move || view! {
                <ul class="mb-4 space-y-2" data-testid="runtime-problems">
                    {problems.into_iter().map(|p| { let (tone, code, code_attr) = (problem_tone(&p), p.code.clone(), p.code.clone()); view! {
                        <li class="rounded border border-slate-200 p-3 dark:border-slate-700" data-testid="runtime-problem" data-code=code_attr>
                            <div class="flex flex-wrap items-center gap-2">
                                <Badge tone=tone>{code}</Badge>
                                <code class="text-xs">{p.object.clone()}</code>
                                {(p.count > 1).then(|| view! { <span class="text-xs text-slate-500">{format!("and {} more like it", p.count - 1)}</span> })}
                            </div>
                            <p class="mt-1 text-sm">{p.message.clone()}</p>
                            <p class="mt-1 text-sm text-slate-600 dark:text-slate-400"><span class="font-medium">"Suggested fix: "</span>{p.suggestion.clone()}</p>
                        </li>
                    }}).collect_view()}
                </ul>
            })}
            {nothing.then(|| view! {
                <EmptyState title="Nothing runs here" body="No workload in this namespace matches the selector. Check the backstage.io/kubernetes-id label on the Deployment and its pods, or run the golden path's deploy step again." />
            })}
            {(!workloads.is_empty()).then(move || view! {
                <div class="overflow-x-auto">
                    <Table testid="runtime-workloads" columns=vec![Col::text("Workload"), Col::text("Status"), Col::numeric("Ready"), Col::text("Images"), Col::text("Detail")]>
                        {workloads.into_iter().map(|w| view! {
                            <tr>
                                <td><code class="text-xs">{format!("{}/{}", w.kind, w.name)}</code></td>
                                <td>{w.status.clone()}</td>
                                <td class="tabular-nums">{w.desired.map(|d| format!("{} / {d}", w.ready)).unwrap_or_else(|| "—".into())}</td>
                                <td class="break-all text-xs">{w.images.join(", ")}</td>
                                <td class="text-xs">{w.detail.clone().unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}
                    </Table>
                </div>
            })}
            {(!pods.is_empty()).then(move || {
                let show_logs = show_logs.clone();
                view! {
                <div class="mt-3 overflow-x-auto">
                    <Table testid="runtime-pods" columns=vec![Col::text("Pod"), Col::text("Phase"), Col::numeric("Ready"), Col::numeric("Restarts"), Col::text("Last termination"), Col::actions("Logs")]>
                        {pods.into_iter().map(|p| {
                            let (current, previous) = (show_logs.clone(), show_logs.clone());
                            let (pod_a, pod_b) = (p.name.clone(), p.name.clone());
                            let crashed = p.restarts > 0 || p.last_termination.is_some();
                            view! {
                            <tr data-testid="runtime-pod">
                                <td><code class="text-xs">{p.name.clone()}</code></td>
                                <td>{p.waiting.clone().unwrap_or_else(|| p.phase.clone())}</td>
                                <td class="tabular-nums">{p.ready.clone()}</td>
                                <td class="tabular-nums">{p.restarts}</td>
                                <td class="text-xs">{p.last_termination.clone().unwrap_or_else(|| "—".into())}</td>
                                <td class="whitespace-nowrap">
                                    {can_logs.then(|| view! {
                                        <button type="button" class="btn-secondary text-xs" on:click=move |_| current(pod_a.clone(), None, false)>"Logs"</button>
                                        {crashed.then(|| view! {
                                            " "<button type="button" class="btn-secondary text-xs" on:click=move |_| previous(pod_b.clone(), None, true)>"Previous run"</button>
                                        })}
                                    })}
                                </td>
                            </tr>
                        }}).collect_view()}
                    </Table>
                </div>
            }})}
            {move || logs.get().map(|r| match r {
                Ok(l) => view! {
                    <div class="mt-3" data-testid="runtime-logs">
                        <p class="text-sm font-medium">{format!("{} / {}{}{}", l.pod, l.container, if l.previous { " (previous run)" } else { "" }, if l.truncated { ", last lines" } else { "" })}</p>
                        <pre tabindex="0" class="mt-1 max-h-96 overflow-auto rounded bg-slate-950 p-3 text-xs text-slate-100">{if l.lines.is_empty() { "(no output)".to_string() } else { l.lines.join("\n") }}</pre>
                    </div>
                }.into_any(),
                Err(e) => view! { <ErrorView error=e /> }.into_any(),
            })}
            {(!hpas.is_empty()).then(move || view! {
                <h4 class="mt-4 text-sm font-semibold">"Autoscaling"</h4>
                <ul class="text-sm">{hpas.into_iter().map(|h| view! {
                    <li>{format!("{} scales {} between {} and {}: {} now, {} wanted", h.name, h.target, h.min_replicas, h.max_replicas, h.current_replicas, h.desired_replicas)}</li>
                }).collect_view()}</ul>
            })}
            {(!endpoints.is_empty()).then(move || view! {
                <h4 class="mt-4 text-sm font-semibold">"Services and ingresses"</h4>
                <ul class="text-sm">{endpoints.into_iter().map(|e| view! {
                    <li><code class="text-xs">{format!("{}/{}", e.kind, e.name)}</code>" "{e.detail.clone()}</li>
                }).collect_view()}</ul>
            })}
            {events.map(|events| view! {
                <details class="mt-4">
                    <summary class="cursor-pointer text-sm font-semibold">{format!("Recent events ({})", events.len())}</summary>
                    {if events.is_empty() {
                        view! { <p class="mt-2 text-sm text-slate-500">"No recent events."</p> }.into_any()
                    } else {
                        view! {
                            <ul class="mt-2 space-y-1 text-sm" data-testid="runtime-events">
                                {events.into_iter().map(|e| view! {
                                    <li>
                                        <Badge tone=if e.kind == "Warning" { Tone::Warning } else { Tone::Neutral }>{e.reason.clone()}</Badge>" "
                                        <code class="text-xs">{e.object.clone()}</code>" "{e.message.clone()}
                                        {(e.count > 1).then(|| format!(" (×{})", e.count))}
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                </details>
            })}
        </section>
    }
}

/// Every Component of a team that runs somewhere.
#[server(endpoint = "kube_team_runtime")]
pub async fn kube_team_runtime(team: String) -> Result<Vec<RuntimeView>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::kube::team_runtime(&core, &user, &team).await?)
}

/// The team page's overview: each deployed service with its readiness and
/// problems per cluster, linking to its page (rendered on the server).
#[component]
pub fn TeamRuntimeCard(team: String) -> impl IntoView {
    let data = Resource::new(move || team.clone(), kube_team_runtime);
    view! {
        <Card title="Running services" class="md:col-span-2">
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Reading the clusters…"</p> }>
                {move || Suspend::new(async move {
                    loaded(data.await, |list| {
                        if list.is_empty() {
                            view! { <EmptyState title="Nothing deployed yet" body="Services deployed with a golden path's kube:apply step, or whose catalog-info.yaml names a cluster, show here with their health." /> }.into_any()
                        } else {
                            view! {
                                <div class="overflow-x-auto">
                                    <Table testid="team-runtime" columns=vec![Col::text("Service"), Col::text("Cluster"), Col::numeric("Pods ready"), Col::text("Problems")]>
                                        {list.into_iter().flat_map(|v| {
                                            let name = v.entity_ref.rsplit('/').next().unwrap_or_default().to_owned();
                                            let href = format!("/catalog/component/{}", v.entity_ref.split_once(':').map(|(_, r)| r).unwrap_or_default());
                                            v.clusters.into_iter().map(move |c| {
                                                let ready = c.pods.iter().filter(|p| p.ready.split_once('/').is_some_and(|(a, b)| a == b)).count();
                                                let errors = c.problems.iter().filter(|p| p.severity == Severity::Error).count();
                                                let warnings = c.problems.len() - errors;
                                                view! {
                                                    <tr>
                                                        <td><a href=href.clone() class="text-indigo-700 hover:underline dark:text-indigo-300">{name.clone()}</a></td>
                                                        <td>{format!("{} · {}", c.cluster, c.namespace)}{(c.state != "ok").then(|| view! { " "{state_badge(&c.state)} })}</td>
                                                        <td class="tabular-nums">{format!("{ready} / {}", c.pods.len())}</td>
                                                        <td>
                                                            {(errors > 0).then(|| view! { <Badge tone=Tone::Danger>{format!("{errors} failing")}</Badge> })}
                                                            {(warnings > 0).then(|| view! { " "<Badge tone=Tone::Warning>{format!("{warnings} warning{}", if warnings == 1 { "" } else { "s" })}</Badge> })}
                                                            {(errors + warnings == 0 && c.state == "ok").then(|| view! { <Badge tone=Tone::Success>"healthy"</Badge> })}
                                                        </td>
                                                    </tr>
                                                }
                                            }).collect::<Vec<_>>()
                                        }).collect_view()}
                                    </Table>
                                </div>
                            }.into_any()
                        }
                    })
                })}
            </Suspense>
        </Card>
    }
}

/// `/admin/clusters`: every configured cluster and whether it answers.
#[component]
pub fn ClustersPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| kube_clusters());
    view! {
        <Title text="Clusters" />
        <PageHeader title="Clusters" subtitle="The Kubernetes clusters golden paths deploy to and service pages read from. Each is asked its version when this page loads (answers are reused for 30 seconds)." />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Asking the clusters…"</p> }>
            {move || Suspend::new(async move {
                loaded(list.await, |list| {
                    if list.is_empty() {
                        view! {
                            <Card>
                                <EmptyState title="No cluster is connected" body="List clusters in the YAML file that PAVED_KUBE_CLUSTERS names (each with its kubeconfig or inCluster: true, the teams that may deploy there and their namespace), give Paved the ClusterRole in docs/kubernetes-rbac.yaml in each, then restart Paved. The README's Kubernetes section has an example." />
                            </Card>
                        }.into_any()
                    } else {
                        view! {
                            <Card>
                                <div class="overflow-x-auto">
                                    <Table testid="clusters" columns=vec![Col::text("Cluster"), Col::text("State"), Col::text("Version"), Col::text("Teams"), Col::text("Namespace"), Col::text("Credentials")]>
                                        {list.into_iter().map(|c| view! {
                                            <tr data-testid="cluster-row" data-state=c.state.clone()>
                                                <td class="font-medium">{c.name.clone()}{c.production.then(|| view! { " "<Badge tone=Tone::Warning>"production"</Badge> })}</td>
                                                <td>
                                                    {state_badge(&c.state)}
                                                    {c.latency_ms.map(|ms| view! { <span class="ml-1 text-xs text-slate-500">{format!("{ms} ms")}</span> })}
                                                    {c.message.clone().map(|m| view! { <p class="mt-1 text-xs text-red-700 dark:text-red-300">{m}</p> })}
                                                </td>
                                                <td class="text-sm">{c.version.clone().unwrap_or_else(|| "—".into())}</td>
                                                <td class="text-sm">{c.teams.join(", ")}</td>
                                                <td><code class="text-xs">{c.namespace_pattern.clone()}</code></td>
                                                <td class="break-all text-xs">{c.source.clone()}</td>
                                            </tr>
                                        }).collect_view()}
                                    </Table>
                                </div>
                            </Card>
                        }.into_any()
                    }
                })
            })}
        </Suspense>
    }
}
