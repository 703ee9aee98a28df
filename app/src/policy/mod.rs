//! `/policies`: the policies in force with their action at each enforcement
//! point, a playground that checks pasted manifests, recent violations from
//! the scaffolder, CI and admission (platform admins and PMs), and the
//! exceptions platform admins grant instead of editing a policy.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use paved_shared::policy::{
    CheckReport, ExceptionView, PoliciesPage as PageData, PolicyView, ViolationPage, ViolationView,
};

use crate::components::{
    field_error, loaded, Badge, Card, Col, EmptyState, ErrorView, Field, PageHeader, Table,
    ToastRegion, Toasts, Tone,
};
use crate::error::AppError;

/// Everything the page shows, as the viewer may see it.
#[server(endpoint = "policy_page_data")]
pub async fn policy_page_data() -> Result<PageData, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::policy::page(&core, &user).await?)
}

/// Checks pasted manifests; nothing is recorded.
#[server(endpoint = "policy_playground")]
pub async fn policy_playground(manifests: String) -> Result<CheckReport, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::policy::playground(&core, &user, &manifests)?)
}

/// A page of recorded violations, newest first.
#[server(endpoint = "policy_violations")]
pub async fn policy_violations(
    point: Option<String>,
    before: Option<i64>,
) -> Result<ViolationPage, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let filter = paved_core::policy::ViolationFilter {
        point: point.filter(|p| !p.is_empty()),
        policy: None,
        before,
        limit: 50,
    };
    Ok(paved_core::policy::violations(&core, &user, filter).await?)
}

/// Grants an exception (platform admins).
#[server(endpoint = "policy_exception_create")]
pub async fn policy_exception_create(
    policy: String,
    namespace: String,
    object_name: String,
    team: String,
    reason: String,
    days: String,
) -> Result<ExceptionView, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let days = days.trim().parse::<u32>().map_err(|_| {
        crate::ssr::fail(AppError::Invalid {
            field: "days".into(),
            message: "a number of days from 1 to 365".into(),
        })
    })?;
    let input = paved_shared::policy::NewException {
        policy,
        namespace,
        object_name: Some(object_name),
        team,
        reason,
        days,
    };
    Ok(paved_core::policy::create_exception(&core, &user, input).await?)
}

/// Reads the policy folders again (platform admins); answers how many are in force.
#[server(endpoint = "policy_reload")]
pub async fn policy_reload() -> Result<usize, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(core.policies.reload(&core.db, &user).await?)
}

/// Revokes an exception (platform admins).
#[server(endpoint = "policy_exception_revoke")]
pub async fn policy_exception_revoke(id: i64) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::policy::revoke_exception(&core, &user, id).await?)
}

fn action_badge(action: Option<&str>) -> AnyView {
    match action {
        Some("deny") => view! { <Badge tone=Tone::Danger>"deny"</Badge> }.into_any(),
        Some("warn") => view! { <Badge tone=Tone::Warning>"warn"</Badge> }.into_any(),
        Some("dryrun") => view! { <Badge tone=Tone::Info>"dry run"</Badge> }.into_any(),
        Some("error") => view! { <Badge tone=Tone::Danger>"error"</Badge> }.into_any(),
        Some("excepted") => view! { <Badge tone=Tone::Neutral>"excepted"</Badge> }.into_any(),
        Some(other) => {
            let text = other.to_string();
            view! { <Badge>{text}</Badge> }.into_any()
        }
        None => view! { <span class="text-xs text-slate-500">"does not apply"</span> }.into_any(),
    }
}

/// `2026-12-06T22:55:01Z` as `2026-12-06 22:55 UTC`.
fn short_time(rfc3339: &str) -> String {
    match rfc3339.get(..16) {
        Some(t) => format!("{} UTC", t.replace('T', " ")),
        None => rfc3339.to_string(),
    }
}

/// `/policies`.
#[component]
pub fn PoliciesPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| policy_page_data());
    view! {
        <Title text="Policies" />
        <PageHeader title="Policies" subtitle="One set of policies, enforced three times: when a golden path publishes, in every pull request's CI (paved policy test) and when Kubernetes admits a workload." />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading policies…"</p> }>
            {move || Suspend::new(async move {
                loaded(data.await, |page| {
                    let insights = page.can_view_violations;
                    view! {
                        {page.can_administer.then(|| view! { <ReloadButton /> })}
                        <PolicyTable policies=page.policies.clone() sources=page.sources.clone() />
                        <div class="mt-6 grid gap-6 lg:grid-cols-2">
                            <Playground />
                            <ExceptionsManager initial=page.exceptions.clone() can_administer=page.can_administer
                                teams=page.teams.clone()
                                policies=page.policies.iter().filter(|p| p.kind != "Rego").map(|p| p.name.clone()).collect() />
                        </div>
                        {insights.then(|| view! { <ViolationsList initial=page.violations.clone() /> })}
                    }
                })
            })}
        </Suspense>
    }
}

/// Reads the policy folders again after they changed (an island, admins).
#[island(lazy)]
fn ReloadButton() -> impl IntoView {
    let reload = ServerAction::<PolicyReload>::new();
    view! {
        <div class="mb-4 flex flex-wrap items-center gap-3">
            <ActionForm action=reload>
                <button type="submit" class="btn-secondary" disabled=move || reload.pending().get()>
                    {move || if reload.pending().get() { "Reloading…" } else { "Reload policies" }}
                </button>
            </ActionForm>
            <span class="text-sm" aria-live="polite" data-testid="reload-result">
                {move || reload.value().get().map(|r| match r {
                    Ok(n) => view! { <span class="text-emerald-700 dark:text-emerald-300">{format!("{n} policies in force. Reload the page to see them.")}</span> }.into_any(),
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                })}
            </span>
        </div>
    }
}

#[component]
fn PolicyTable(policies: Vec<PolicyView>, sources: Vec<String>) -> impl IntoView {
    if policies.is_empty() {
        let body = if sources.is_empty() {
            "Put ConstraintTemplates and Constraints (or .rego files) in a policies folder and point PAVED_POLICY_DIRS at it; Paved loads them at start.".to_string()
        } else {
            format!("{} holds no ConstraintTemplates, Constraints or .rego files yet: add them and restart Paved.", sources.join(", "))
        };
        return view! { <Card title="Policies in force"><EmptyState title="No policies yet" body=body /></Card> }.into_any();
    }
    view! {
        <Card title="Policies in force">
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">
                {format!("Loaded from {}. Each policy denies, warns or only records (dry run) at each enforcement point.", sources.join(", "))}
            </p>
            <div class="overflow-x-auto">
                <Table testid="policies" columns=vec![Col::text("Policy"), Col::text("Owner"), Col::text("Scaffolder"), Col::text("CI"), Col::text("Admission"), Col::text("Applies to"), Col::numeric("Violations, 7 days")]>
                    {policies.into_iter().map(|p| {
                        let actions = p.actions.clone();
                        let excluded = (!p.excluded_namespaces.is_empty()).then(|| format!("not in {}", p.excluded_namespaces.join(", ")));
                        view! {
                            <tr data-testid="policy-row">
                                <td class="max-w-md">
                                    <div class="font-medium">{p.title.clone()}</div>
                                    <div class="text-xs text-slate-500"><code>{p.name.clone()}</code>" · "{p.kind.clone()}</div>
                                    <div class="mt-1 text-xs text-slate-600 dark:text-slate-400">{p.description.clone()}</div>
                                </td>
                                <td class="text-sm">{p.owner.clone().unwrap_or_else(|| "—".into())}</td>
                                {actions.into_iter().map(|a| view! { <td>{action_badge(a.as_deref())}</td> }).collect_view()}
                                <td class="text-xs">{p.matches.join(", ")}{excluded.map(|e| view! { <div class="text-slate-500">{e}</div> })}</td>
                                <td class="text-right tabular-nums">{p.recent_violations}</td>
                            </tr>
                        }
                    }).collect_view()}
                </Table>
            </div>
        </Card>
    }
    .into_any()
}

const PLAYGROUND_EXAMPLE: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: chat\n  namespace: payments\nspec:\n  containers:\n    - name: app\n      image: nginx:latest\n      env:\n        - name: OPENAI_API_KEY\n          value: sk-...\n";

/// Paste manifests, see every violation (an island).
#[island(lazy)]
fn Playground() -> impl IntoView {
    let check = ServerAction::<PolicyPlayground>::new();
    let result = check.value();
    view! {
        <Card title="Playground">
            <ActionForm action=check>
                <Field label="Kubernetes manifests (YAML, several documents separated by ---)" id="playground-manifests" error=Signal::derive(|| None::<String>)
                    help="Checked as an audit: nothing is recorded.">
                    <textarea id="playground-manifests" name="manifests" rows="12" spellcheck="false"
                        class="input font-mono text-xs" placeholder=PLAYGROUND_EXAMPLE required></textarea>
                </Field>
                <button type="submit" class="btn-primary mt-3" disabled=move || check.pending().get()>
                    {move || if check.pending().get() { "Checking…" } else { "Check" }}
                </button>
            </ActionForm>
            <div class="mt-4" aria-live="polite" data-testid="playground-result">
                {move || result.get().map(|r| match r {
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    Ok(report) if report.findings.is_empty() => view! {
                        <div class="alert-success text-sm">{format!("No violations in {} Kubernetes object{}.", report.objects, if report.objects == 1 { "" } else { "s" })}</div>
                    }.into_any(),
                    Ok(report) => {
                        let summary = format!("{} finding{} in {} object{}{}", report.findings.len(), if report.findings.len() == 1 { "" } else { "s" },
                            report.objects, if report.objects == 1 { "" } else { "s" }, if report.blocked { ": publishing would be blocked" } else { "" });
                        view! {
                            <p class=if report.blocked { "alert-danger text-sm" } else { "alert-warning text-sm" }>{summary}</p>
                            <ul class="mt-3 flex flex-col gap-2" data-testid="playground-findings">
                                {report.findings.into_iter().map(|f| view! {
                                    <li class="rounded border border-slate-200 p-2 text-sm dark:border-slate-700">
                                        <div class="flex flex-wrap items-center gap-2">
                                            {action_badge(Some(f.action.as_str()))}
                                            <code class="text-xs">{format!("line {} · {}", f.line, f.object)}</code>
                                            <span class="text-xs text-slate-500">{f.policy.clone()}</span>
                                        </div>
                                        <p class="mt-1">{f.message.clone()}</p>
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                })}
            </div>
        </Card>
    }
}

/// Recorded violations with a point filter and older pages (an island).
#[island(lazy)]
fn ViolationsList(initial: ViolationPage) -> impl IntoView {
    let items = RwSignal::new(initial.items);
    let next = RwSignal::new(initial.next_before);
    let total = RwSignal::new(initial.total);
    let point = RwSignal::new(String::new());
    let error = RwSignal::new(None::<AppError>);
    let loading = RwSignal::new(false);
    let load = move |before: Option<i64>, append: bool| {
        let p = point.get_untracked();
        loading.set(true);
        leptos::task::spawn_local(async move {
            match policy_violations(Some(p), before).await {
                Ok(page) => {
                    if append {
                        items.update(|list| list.extend(page.items));
                    } else {
                        items.set(page.items);
                    }
                    next.set(page.next_before);
                    total.set(page.total);
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
            loading.set(false);
        });
    };
    view! {
        <Card title="Recent violations" class="mt-6">
            <div class="mb-3 flex flex-wrap items-end gap-3">
                <label class="text-sm" for="violations-point">"Where"</label>
                <select id="violations-point" class="input w-auto" on:change=move |ev| { point.set(event_target_value(&ev)); load(None, false); }>
                    <option value="">"Everywhere"</option>
                    <option value="scaffolder">"Scaffolder"</option>
                    <option value="ci">"CI"</option>
                    <option value="admission">"Admission"</option>
                </select>
                <span class="text-sm text-slate-500" data-testid="violations-total">{move || format!("{} recorded", total.get())}</span>
            </div>
            {move || error.get().map(|e| view! { <ErrorView error=e /> })}
            {move || {
                let list: Vec<ViolationView> = items.get();
                if list.is_empty() {
                    view! { <EmptyState title="No violations recorded" body="Violations appear here when a golden path, a CI run or the admission webhook finds one. Try the playground to see what the policies catch." /> }.into_any()
                } else {
                    view! {
                        <div class="overflow-x-auto">
                            <Table testid="violations" columns=vec![Col::text("When"), Col::text("Where"), Col::text("Action"), Col::text("Object"), Col::text("Policy"), Col::text("Message"), Col::text("Source")]>
                                {list.into_iter().map(|v| view! {
                                    <tr data-testid="violation-row">
                                        <td class="whitespace-nowrap text-xs">{short_time(&v.at)}</td>
                                        <td>{v.point.clone()}</td>
                                        <td>{action_badge(Some(v.action.as_str()))}</td>
                                        <td><code class="text-xs">{v.object.clone()}</code></td>
                                        <td class="text-xs">{v.policy.clone()}</td>
                                        <td class="max-w-md text-sm">{v.message.clone()}</td>
                                        <td class="text-xs text-slate-500">{v.source.clone()}{v.team.clone().map(|t| format!(" · team {t}"))}</td>
                                    </tr>
                                }).collect_view()}
                            </Table>
                        </div>
                    }.into_any()
                }
            }}
            {move || next.get().map(|before| view! {
                <button type="button" class="btn-secondary mt-3" disabled=move || loading.get() on:click=move |_| load(Some(before), true)>
                    {move || if loading.get() { "Loading…" } else { "Older violations" }}
                </button>
            })}
        </Card>
    }
}

/// Exceptions: everyone sees them; platform admins grant and revoke (an island).
#[island(lazy)]
fn ExceptionsManager(
    initial: Vec<ExceptionView>,
    can_administer: bool,
    teams: Vec<String>,
    policies: Vec<String>,
) -> impl IntoView {
    let toasts = Toasts::default();
    provide_context(toasts);
    let create = ServerAction::<PolicyExceptionCreate>::new();
    let revoke = ServerAction::<PolicyExceptionRevoke>::new();
    let list = RwSignal::new(initial);
    let error = RwSignal::new(None::<AppError>);
    Effect::new(move |_| {
        if let Some(Ok(created)) = create.value().get() {
            toasts.push(format!(
                "Exception granted: {} no longer enforces in namespace {} until {}.",
                created.policy,
                created.namespace,
                short_time(&created.expires_at)
            ));
            list.update(|l| l.insert(0, created));
        }
    });
    Effect::new(move |_| {
        if revoke.version().get() > 0 {
            if let Some(Ok(())) = revoke.value().get() {
                toasts.push("Exception revoked; the policy applies again.");
            }
            leptos::task::spawn_local(async move {
                match policy_page_data().await {
                    Ok(page) => list.set(page.exceptions),
                    Err(e) => error.set(Some(e)),
                }
            });
        }
    });
    let other_error = Signal::derive(move || {
        create
            .value()
            .get()
            .and_then(|r| r.err())
            .filter(|e| {
                [
                    "policy",
                    "namespace",
                    "object_name",
                    "team",
                    "reason",
                    "days",
                ]
                .iter()
                .all(|f| e.field_message(f).is_none())
            })
            .or_else(|| revoke.value().get().and_then(|r| r.err()))
    });
    view! {
        <Card title="Exceptions">
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"An exception lets one constraint stop enforcing for a namespace's objects, with an owner, a reason and an expiry, instead of editing the policy. Findings it covers are still recorded, as excepted."</p>
            {can_administer.then(|| view! {
                <details class="mb-4 rounded border border-slate-200 p-3 dark:border-slate-700">
                    <summary class="cursor-pointer font-medium">"Grant an exception"</summary>
                    <ActionForm action=create>
                        <div class="mt-3 grid gap-3 sm:grid-cols-2">
                            <Field label="Policy" id="exception-policy" error=field_error(create, "policy")>
                                <select id="exception-policy" name="policy" class="input">
                                    {policies.iter().map(|p| view! { <option value=p.clone()>{p.clone()}</option> }).collect_view()}
                                </select>
                            </Field>
                            <Field label="Namespace" id="exception-namespace" error=field_error(create, "namespace")>
                                <input id="exception-namespace" name="namespace" class="input" required maxlength="63" autocomplete="off" />
                            </Field>
                            <Field label="Objects" id="exception-object" error=field_error(create, "object_name") help="A name, name-* or *, the default.">
                                <input id="exception-object" name="object_name" class="input" value="*" maxlength="253" autocomplete="off" />
                            </Field>
                            <Field label="Owning team" id="exception-team" error=field_error(create, "team")>
                                <select id="exception-team" name="team" class="input">
                                    {teams.iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                                </select>
                            </Field>
                            <Field label="Days" id="exception-days" error=field_error(create, "days") help="1 to 365.">
                                <input id="exception-days" name="days" type="number" min="1" max="365" value="30" class="input" required />
                            </Field>
                            <Field label="Reason" id="exception-reason" error=field_error(create, "reason") help="Why, for whoever reviews it later.">
                                <textarea id="exception-reason" name="reason" rows="2" class="input" required minlength="10" maxlength="2000"></textarea>
                            </Field>
                        </div>
                        <button type="submit" class="btn-primary mt-3" disabled=move || create.pending().get()>
                            {move || if create.pending().get() { "Granting…" } else { "Grant exception" }}
                        </button>
                    </ActionForm>
                </details>
            })}
            {move || other_error.get().map(|e| view! { <ErrorView error=e /> })}
            {move || error.get().map(|e| view! { <ErrorView error=e /> })}
            {move || {
                let items = list.get();
                if items.is_empty() {
                    view! { <EmptyState title="No exceptions" body="Every policy applies everywhere it is scoped to. When a team needs time to comply, a platform admin grants an exception here." /> }.into_any()
                } else {
                    view! {
                        <ul class="flex flex-col gap-2" data-testid="exceptions">
                            {items.into_iter().map(|e| {
                                let active = e.state == "active";
                                let id = e.id;
                                let label = format!("Revoke the exception to {} in {}", e.policy, e.namespace);
                                view! {
                                    <li class="rounded border border-slate-200 p-2 text-sm dark:border-slate-700" data-testid="exception-row">
                                        <div class="flex flex-wrap items-center gap-2">
                                            <Badge tone=if active { Tone::Warning } else { Tone::Neutral }>{e.state.clone()}</Badge>
                                            <code class="text-xs">{format!("{} · {}/{}", e.policy, e.namespace, e.object_name)}</code>
                                            <span class="text-xs text-slate-500">{format!("team {} · until {}", e.team, short_time(&e.expires_at))}</span>
                                        </div>
                                        <p class="mt-1">{e.reason.clone()}</p>
                                        {(active && can_administer).then(|| view! {
                                            <ActionForm action=revoke>
                                                <input type="hidden" name="id" value=id.to_string() />
                                                <button type="submit" class="btn-secondary mt-2" aria-label=label>"Revoke"</button>
                                            </ActionForm>
                                        })}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
        </Card>
        <ToastRegion />
    }
}
