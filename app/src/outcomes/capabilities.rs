//! `/capabilities`: the platform's capabilities as products, each with its
//! owner, lifecycle, SLOs, error budget left and burn rate; `?id=` opens
//! one with what its numbers were computed from. Server-rendered, no island.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use paved_shared::capabilities::{href, CapabilityView, SloState, SloView, BURN_WINDOW_HOURS};

use crate::components::{loaded, Badge, Card, DataLink, EmptyState, PageHeader, Tone};
use crate::error::AppError;

/// Every capability with its SLOs (anyone signed in).
#[server(endpoint = "capabilities_registry")]
pub async fn capabilities_registry() -> Result<Vec<CapabilityView>, AppError> {
    // Anyone signed in reads the registry: it is about the platform, not a team.
    crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let now = core.budgets.ledger.now_ms() / 1000;
    Ok(paved_core::outcomes::capabilities::list(&core, now).await?)
}

/// The badge of an SLO state.
pub fn state_badge(state: SloState) -> impl IntoView {
    let tone = match state {
        SloState::Breached => Tone::Danger,
        SloState::AtRisk => Tone::Warning,
        SloState::Met => Tone::Success,
        SloState::NoData => Tone::Neutral,
    };
    view! { <Badge tone>{state.label()}</Badge> }
}

fn pct(v: f64) -> String {
    let p = v * 100.0;
    if (p - p.round()).abs() < 0.005 {
        format!("{p:.0}%")
    } else {
        format!("{p:.2}%")
    }
}

/// The error budget left as a bar (0..100%; overspent shows empty and red).
fn budget_bar(s: &SloView) -> impl IntoView {
    match s.error_budget_remaining {
        None => view! { <span class="text-sm text-slate-500">"—"</span> }.into_any(),
        Some(r) => {
            let width = (r.clamp(0.0, 1.0) * 100.0).round();
            let colour = if r < 0.0 {
                "bg-red-500"
            } else if r < 0.25 {
                "bg-amber-500"
            } else {
                "bg-emerald-500"
            };
            let label = if r < 0.0 {
                format!("overspent by {}", pct(-r))
            } else {
                format!("{} left", pct(r))
            };
            let (title, aria) = (label.clone(), format!("Error budget {label}"));
            view! {
                <div class="flex items-center gap-2" title=title>
                    <div class="h-2 w-24 overflow-hidden rounded bg-slate-200 dark:bg-slate-700" role="img" aria-label=aria>
                        <div class=format!("h-2 {colour}") style=format!("width:{width}%")></div>
                    </div>
                    <span class="text-xs tabular-nums">{label}</span>
                </div>
            }
            .into_any()
        }
    }
}

/// `/capabilities`.
#[component]
pub fn CapabilitiesPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| capabilities_registry());
    let query = use_query_map();
    let chosen = move || query.with(|q| q.get("id").filter(|s| !s.is_empty()));
    view! {
        <Title text="Capabilities" />
        <PageHeader title="Platform capabilities" subtitle="What the platform offers as products: each with an owner, a lifecycle and SLOs computed from Paved's own records over the last 28 days." />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Computing SLOs…"</p> }>
            {move || Suspend::new(async move {
                let chosen = chosen();
                loaded(data.await, move |all| view! { <Registry all chosen /> })
            })}
        </Suspense>
    }
}

#[component]
fn Registry(mut all: Vec<CapabilityView>, chosen: Option<String>) -> impl IntoView {
    let count = |s: SloState| all.iter().filter(|c| c.state == s).count();
    let (breached, at_risk, met, none) = (
        count(SloState::Breached),
        count(SloState::AtRisk),
        count(SloState::Met),
        count(SloState::NoData),
    );
    let detail = chosen.as_deref().map(|id| {
        match all.iter().find(|c| c.id.eq_ignore_ascii_case(id)) {
            Some(c) => view! { <Detail c=c.clone() /> }.into_any(),
            None => view! {
                <div class="mb-6"><EmptyState title="No such capability" body="It may have been removed from the catalog; pick one from the list below." /></div>
            }
            .into_any(),
        }
    });
    // Worst first, then by name.
    all.sort_by(|a, b| b.state.cmp(&a.state).then_with(|| a.name.cmp(&b.name)));
    view! {
        <div class="mb-6 grid grid-cols-2 gap-3 md:grid-cols-4" data-testid="capability-summary">
            <Tile label="Breached" n=breached tone="text-red-600 dark:text-red-400" />
            <Tile label="At risk" n=at_risk tone="text-amber-600 dark:text-amber-400" />
            <Tile label="Met" n=met tone="text-emerald-600 dark:text-emerald-400" />
            <Tile label="No data yet" n=none tone="text-slate-500" />
        </div>
        {detail}
        <Card title="Every capability">
            <div class="overflow-x-auto">
                <table class="table" data-testid="capabilities">
                    <thead><tr>
                        <th scope="col">"Capability"</th><th scope="col">"Owner"</th><th scope="col">"Lifecycle"</th>
                        <th scope="col">"SLO"</th><th scope="col" class="text-right">"Now"</th><th scope="col">"Error budget"</th>
                        <th scope="col" class="text-right">{format!("Burn ({BURN_WINDOW_HOURS} h)")}</th><th scope="col">"State"</th>
                    </tr></thead>
                    <tbody>
                        {all.into_iter().map(|c| {
                            let href = href(&c.id);
                            let first = c.slos.first().cloned();
                            view! {
                                <tr data-testid="capability-row">
                                    <td><a class="link font-medium" href=href>{c.name.clone()}</a><div class="text-xs text-slate-500">{c.kind.clone()}</div></td>
                                    <td>{c.owner.clone()}</td>
                                    <td>{c.lifecycle.clone()}</td>
                                    <td class="text-sm">{first.as_ref().map(|s| format!("{} ≥ {}", s.id.replace('_', " "), pct(s.objective)))}</td>
                                    <td class="text-right tabular-nums">{first.as_ref().map(|s| s.sli.map(pct).unwrap_or_else(|| "—".into()))}</td>
                                    <td>{first.as_ref().map(budget_bar)}</td>
                                    <td class="text-right tabular-nums">{first.as_ref().map(|s| s.burn_rate.map(|b| format!("{b:.1}×")).unwrap_or_else(|| "—".into()))}</td>
                                    <td>{state_badge(c.state)}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <p class="mt-3 text-xs text-slate-500">"Owners, lifecycles, objectives and rollback notes come from the catalog: annotate a Template, or any entity with paved.dev/capability: <id>, and set paved.dev/slo-objective and paved.dev/rollback."</p>
        </Card>
    }
}

#[component]
fn Tile(label: &'static str, n: usize, tone: &'static str) -> impl IntoView {
    view! {
        <div class="card">
            <p class="text-sm text-slate-600 dark:text-slate-400">{label}</p>
            <p class=format!("text-2xl font-semibold tabular-nums {tone}")>{n}</p>
        </div>
    }
}

#[component]
fn Detail(c: CapabilityView) -> impl IntoView {
    let controls = c.cost_controls.clone();
    view! {
        <section class="card mb-6" data-testid="capability-detail" aria-labelledby="capability-name">
            <div class="flex flex-wrap items-center justify-between gap-2">
                <h2 id="capability-name" class="text-lg font-semibold">{c.name.clone()}</h2>
                {state_badge(c.state)}
            </div>
            <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">{c.description.clone()}</p>
            <dl class="mt-4 grid gap-3 text-sm sm:grid-cols-3">
                <div><dt class="text-slate-500">"Owner"</dt><dd class="font-medium" data-testid="capability-owner">{c.owner.clone()}</dd></div>
                <div><dt class="text-slate-500">"Lifecycle"</dt><dd>{c.lifecycle.clone()}</dd></div>
                <div><dt class="text-slate-500">"Declared by"</dt><dd>{c.declared_by.clone().unwrap_or_else(|| "built in (platform team)".into())}</dd></div>
            </dl>
            <div class="mt-4 flex flex-col gap-3">
                {c.slos.iter().map(|s| {
                    let numbers = format!(
                        "{} good of {} over {} days{}",
                        s.good, s.total, s.window_days,
                        s.sli.map(|v| format!(" = {}", pct(v))).unwrap_or_default()
                    );
                    view! {
                        <div class="rounded-lg border border-slate-200 p-3 dark:border-slate-800" data-testid="slo">
                            <div class="flex flex-wrap items-center justify-between gap-2">
                                <p class="font-medium">{format!("{} ≥ {}", s.name, pct(s.objective))}</p>
                                {state_badge(s.state)}
                            </div>
                            <p class="mt-1 text-sm" data-testid="slo-numbers">{numbers}</p>
                            <div class="mt-2 flex flex-wrap items-center gap-4 text-sm">
                                {budget_bar(s)}
                                <span>{s.burn_rate.map(|b| format!("Burning at {b:.1}× over the last {BURN_WINDOW_HOURS} hours{}", if s.fast_burn { " (fast)" } else { "" })).unwrap_or_else(|| format!("Nothing in the last {BURN_WINDOW_HOURS} hours"))}</span>
                            </div>
                        </div>
                    }
                }).collect_view()}
            </div>
            <div class="mt-4 grid gap-4 md:grid-cols-2">
                <div>
                    <h3 class="text-sm font-semibold">"Rollback"</h3>
                    <p class="text-sm text-slate-600 dark:text-slate-400" data-testid="capability-rollback">
                        {c.rollback.clone().unwrap_or_else(|| "Not written down yet: add a paved.dev/rollback annotation to the entity that declares this capability.".into())}
                    </p>
                </div>
                <div>
                    <h3 class="text-sm font-semibold">"Cost controls"</h3>
                    {if controls.is_empty() {
                        view! { <p class="text-sm text-slate-500">"None beyond the platform's defaults."</p> }.into_any()
                    } else {
                        view! { <ul class="list-disc pl-5 text-sm">{controls.into_iter().map(|t| view! { <li>{t}</li> }).collect_view()}</ul> }.into_any()
                    }}
                </div>
            </div>
            {c.link.clone().map(|url| view! { <div class="mt-4"><DataLink url label="Open it" class="btn-secondary" /></div> })}
        </section>
    }
}
