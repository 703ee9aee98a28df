//! Team LLM budgets in the UI: wire types, server functions and the Budget
//! page (`/teams/:name/budget`) with the editor and keys islands
//! (`board.rs`), the gateway settings, request logs and cache savings
//! (`gateway.rs`), plus the platform overview (`/llm`) with the price table.

pub mod board;
pub mod gateway;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
#[cfg(feature = "ssr")]
use paved_core::budgets;
pub use paved_shared::budgets::{
    cents_from_nanocents, dollars, dollars_f, BudgetForm, BudgetPage as BudgetPageData, BudgetView,
    CircuitInfo, CircuitState, GatewaySettings, ModelHealth, NewGatewayKey, OnLimit, Overview,
    PriceLine, UsageGroup,
};

use crate::components::{
    format_time, loaded, Badge, Card, Col, EmptyState, PageHeader, Table, Tone,
};
use crate::error::AppError;

/// The Budget page's data: members of the team, platform PMs and admins.
#[server(endpoint = "budget_page")]
pub async fn budget_page(team: String) -> Result<BudgetPageData, AppError> {
    let user = crate::ssr::require_user()?;
    Ok(budgets::page::budget_page(&crate::ssr::core()?, &user, &team).await?)
}

/// Saves the team budget (leads and admins; the server decides).
#[server(endpoint = "budget_save", input = Json)]
pub async fn save_budget(team: String, form: BudgetForm) -> Result<BudgetView, AppError> {
    let user = crate::ssr::require_user()?;
    Ok(budgets::page::save(&crate::ssr::core()?, &user, &team, None, form).await?)
}

/// Sets a workspace budget inside the team (leads and admins); the team needs a budget first.
#[server(endpoint = "budget_workspace_save", input = Json)]
pub async fn save_workspace_budget(
    team: String,
    workspace: String,
    form: BudgetForm,
) -> Result<BudgetView, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(budgets::page::save(&core, &user, &team, Some(&workspace), form).await?)
}

/// Creates a gateway key (leads and admins); the key is returned this once.
#[server(endpoint = "gateway_key_create")]
pub async fn create_gateway_key(
    team: String,
    name: String,
    workspace_id: String,
) -> Result<NewGatewayKey, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(budgets::page::create_key(&core, &user, &team, &name, &workspace_id).await?)
}

/// Revokes a gateway key (leads and admins).
#[server(endpoint = "gateway_key_revoke")]
pub async fn revoke_gateway_key(team: String, id: i64) -> Result<i64, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    budgets::keys::revoke(&core.db, &core.budgets.keys, &user, &team, id).await?;
    Ok(id)
}

/// The gateway part of the Budget page: the team's gateway settings, its
/// request logs (older than `logs_before`, when given) and what the cache
/// saved this period (members of the team, platform PMs and admins).
#[server(endpoint = "budget_gateway", input = Json)]
pub async fn gateway_panel(
    team: String,
    logs_before: Option<i64>,
) -> Result<gateway::GatewayPanel, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let page = budgets::gateway_page::gateway_page(&core, &user, &team, logs_before).await?;
    Ok(gateway::GatewayPanel {
        settings: page.settings,
        can_edit: page.can_edit,
        logs: page.logs,
        older_before: page.older_before,
        savings: page.savings,
        key_age: page.key_age,
    })
}

/// Saves the team's gateway settings (leads and admins; the server decides
/// and checks every field).
#[server(endpoint = "gateway_settings_save", input = Json)]
pub async fn save_gateway_settings(
    team: String,
    settings: GatewaySettings,
) -> Result<GatewaySettings, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(
        paved_core::gateway::settings::set(
            &core.gateway.settings,
            &core.db,
            &user,
            &team,
            settings,
        )
        .await?,
    )
}

/// Every team's budget, prices and breakers (platform PMs and admins).
#[server(endpoint = "llm_overview")]
pub async fn llm_overview() -> Result<Overview, AppError> {
    let user = crate::ssr::require_user()?;
    Ok(budgets::page::overview(&crate::ssr::core()?, &user).await?)
}

/// Sets a price (platform admins).
#[server(endpoint = "llm_price_save")]
pub async fn save_price(
    provider: String,
    model: String,
    input_usd: String,
    output_usd: String,
) -> Result<PriceLine, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(budgets::page::save_price(&core, &user, &provider, &model, &input_usd, &output_usd).await?)
}

/// The fill colour of a usage bar: red at the limit, amber past the soft alert.
pub fn bar_colour(b: &BudgetView) -> &'static str {
    let pct = b.used_percent();
    if pct >= 100 {
        "bg-red-500"
    } else if pct >= b.soft_alert_percent {
        "bg-amber-500"
    } else {
        "bg-indigo-500"
    }
}

fn usage_table(
    title: &'static str,
    what: &'static str,
    lines: Vec<UsageGroup>,
    testid: &'static str,
) -> impl IntoView {
    view! {
        <Card title=title>
            {if lines.is_empty() {
                view! { <p class="text-sm text-slate-500">"No gateway calls this period yet."</p> }.into_any()
            } else {
                view! {
                    <div class="overflow-x-auto">
                        <Table testid columns=vec![Col::text(what), Col::numeric("Requests"), Col::numeric("Errors"), Col::numeric("Tokens"), Col::numeric("Cost")]>
                                {lines.into_iter().map(|l| view! {
                                    <tr>
                                        <td class="font-medium">{if l.key.is_empty() { "(none)".to_owned() } else { l.key }}</td>
                                        <td class="text-right tabular-nums">{l.requests}</td>
                                        <td class="text-right tabular-nums">{l.errors}</td>
                                        <td class="text-right tabular-nums">{l.input_tokens + l.output_tokens}</td>
                                        <td class="text-right tabular-nums">{dollars_f(l.cost_cents)}</td>
                                    </tr>
                                }).collect_view()}
                            </Table>
                    </div>
                }.into_any()
            }}
        </Card>
    }
}

/// Each feature's cost per day this period, as sparklines.
fn feature_trends(features: Vec<(String, Vec<f64>)>) -> impl IntoView {
    view! {
        <Card title="Cost per feature over time">
            {if features.is_empty() {
                view! { <p class="text-sm text-slate-500">"No gateway calls this period yet. Callers name the feature a call is for with the X-Paved-Feature header."</p> }.into_any()
            } else {
                view! {
                    <ul class="flex flex-col gap-3" data-testid="feature-trends">
                        {features.into_iter().map(|(feature, daily)| {
                            let label = if feature.is_empty() { "(none)".to_owned() } else { feature };
                            let total: f64 = daily.iter().sum();
                            let values: Vec<Option<f64>> = daily.iter().map(|c| Some(c / 100.0)).collect();
                            view! {
                                <li class="flex items-center justify-between gap-3">
                                    <span class="min-w-0 truncate font-medium">{label.clone()}</span>
                                    <span class="flex items-center gap-2">
                                        {crate::outcomes::sparkline_per(&values, "dollars", &format!("{label} cost"), "day")}
                                        <span class="w-20 text-right tabular-nums">{dollars_f(total)}</span>
                                    </span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </Card>
    }
}

fn model_table(models: Vec<ModelHealth>) -> impl IntoView {
    let ms = |v: Option<i64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v} ms"));
    view! {
        <Card title="Models over the last 24 hours" class="mt-6">
            {if models.is_empty() {
                view! { <p class="text-sm text-slate-500" data-testid="models-empty">"No calls in the last 24 hours. Calls appear here once a team with a budget and a gateway key sends one to /llm/v1."</p> }.into_any()
            } else {
                view! {
                    <Table columns=vec![Col::text("Model"), Col::numeric("Calls"), Col::numeric("p50"), Col::numeric("p95"), Col::numeric("Added by the gateway, p95"), Col::text("Errors by class")] testid="model-health">
                        {models.into_iter().map(|m| {
                            let errors = if m.errors.is_empty() {
                                "none".to_owned()
                            } else {
                                m.errors.iter().map(|(class, n)| format!("{class} {n}")).collect::<Vec<_>>().join(", ")
                            };
                            view! {
                                <tr>
                                    <td class="font-medium">{m.model}</td>
                                    <td class="text-right tabular-nums">{m.calls}</td>
                                    <td class="text-right tabular-nums">{ms(m.p50_ms)}</td>
                                    <td class="text-right tabular-nums">{ms(m.p95_ms)}</td>
                                    <td class="text-right tabular-nums">{m.added_p95_ms.map_or_else(|| "—".to_owned(), |v| format!("{v:.1} ms"))}</td>
                                    <td class="text-sm">{errors}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </Table>
                }.into_any()
            }}
        </Card>
    }
}

fn circuit_table(circuits: Vec<CircuitInfo>) -> impl IntoView {
    view! {
        <Card title="Upstream health">
            {if circuits.is_empty() {
                view! { <p class="text-sm text-slate-500" data-testid="circuits-empty">"Every provider is answering: no circuit breaker has tripped."</p> }.into_any()
            } else {
                view! {
                    <ul class="space-y-1 text-sm" data-testid="circuits">
                        {circuits.into_iter().map(|c| {
                            let (tone, label) = match c.state {
                                CircuitState::Open => (Tone::Danger, format!("open · probe in {} s", c.retry_in_ms.div_ceil(1000))),
                                CircuitState::HalfOpen => (Tone::Warning, "half-open · probing".to_owned()),
                                CircuitState::Closed => (Tone::Success, "closed".to_owned()),
                            };
                            view! { <li class="flex items-center justify-between gap-2"><span>{format!("{} / {}", c.provider, c.model)}</span><Badge tone>{label}</Badge></li> }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </Card>
    }
}

/// `/teams/:name/budget`.
#[component]
pub fn BudgetPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
    let query = use_query_map();
    let logs_before =
        move || query.with(|q| q.get("logs_before").and_then(|v| v.parse::<i64>().ok()));
    let data = Resource::new(name, budget_page);
    let gateway_data = Resource::new(
        move || (name(), logs_before()),
        |(team, before)| gateway_panel(team, before),
    );
    view! {
        <Title text=format!("LLM budget · {}", untrack(name)) />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading the budget…"</p> }>
            {move || Suspend::new(async move {
                let both = match (data.await, gateway_data.await) {
                    (Ok(d), Ok(g)) => Ok((d, g)),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
                let showing_older = logs_before().is_some();
                loaded(both, |(d, g)| {
                        let team = d.board.team.clone();
                        let csv = format!("/api/budgets/v1/teams/{team}/usage.csv");
                        let back = format!("/teams/{team}");
                        let banner = d.board.budget.as_ref().filter(|b| b.soft_alert_crossed).map(|b| {
                            let over = b.is_blocking();
                            view! {
                                <div role="alert" data-testid="budget-alert" class="mb-4 rounded-lg border border-amber-300 bg-amber-50 px-4 py-3 text-sm text-amber-900 dark:border-amber-700 dark:bg-amber-950 dark:text-amber-100">
                                    {if over {
                                        format!("The budget is used up: new LLM requests are refused until it resets on {}.", b.resets_at_local)
                                    } else {
                                        format!("Spend has reached {}% of the budget ({} of {} {}).", b.soft_alert_percent, dollars_f(cents_from_nanocents(b.spent_nanocents)), dollars(b.limit_cents), b.period.per())
                                    }}
                                </div>
                            }
                        });
                        view! {
                            <PageHeader title=format!("LLM budget · team {team}") subtitle="What the team spends through the platform LLM gateway, and the limit that keeps it in check.">
                                <a href=back class="btn-secondary">"Team page"</a>
                                <a href=csv class="btn-secondary" download="">"Export CSV"</a>
                            </PageHeader>
                            {banner}
                            <board::BudgetBoard data=d.board.clone() />
                            <div class="mt-6 grid gap-4 md:grid-cols-2">
                                {usage_table("By model", "Model", d.by_model, "by-model")}
                                {usage_table("Top callers", "Gateway key", d.callers, "callers")}
                                {usage_table("By workspace", "Workspace", d.by_workspace, "by-workspace")}
                                {usage_table("By feature", "Feature (X-Paved-Feature)", d.by_feature, "by-feature")}
                                {feature_trends(d.feature_days)}
                                {circuit_table(d.circuits)}
                            </div>
                            <div class="mt-6">
                                <board::WorkspaceBudgets team=team.clone() workspaces=d.workspaces can_edit=d.board.can_edit has_team_budget=d.board.budget.is_some() />
                            </div>
                            <div class="mt-6">
                                <board::GatewayKeys team=team.clone() keys=d.keys can_manage=d.can_manage_keys />
                            </div>
                            <div class="mt-6">
                                <gateway::GatewaySettingsForm team=team.clone() settings=g.settings.clone() can_edit=g.can_edit />
                                <div class="mt-2">{gateway::provider_keys_note(&team, g.key_age)}</div>
                            </div>
                            <div class="mt-6 grid gap-4 lg:grid-cols-3">
                                <div class="lg:col-span-2">
                                    {gateway::request_logs_card(&team, g.logs, g.older_before, showing_older, g.settings.log_requests, g.can_edit)}
                                </div>
                                {gateway::cache_savings_card(g.savings)}
                            </div>
                            <Card title="Changes" class="mt-6">
                                {if d.history.is_empty() {
                                    view! { <EmptyState title="No changes yet" body="Every change to the budget is listed here with who made it." /> }.into_any()
                                } else {
                                    view! {
                                        <ol class="space-y-2 text-sm" data-testid="budget-history">
                                            {d.history.into_iter().map(|h| view! {
                                                <li><span class="font-medium">{format!("v{}", h.version)}</span>" · "{h.summary}" · "<span class="text-slate-500">{format!("{} · {}", h.changed_by, format_time(h.changed_at))}</span></li>
                                            }).collect_view()}
                                        </ol>
                                    }.into_any()
                                }}
                            </Card>
                        }.into_any()
                    })
            })}
        </Suspense>
    }
}

/// `/llm`: every team's budget, the price table and upstream health (PMs and admins).
#[component]
pub fn LlmOverviewPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| llm_overview());
    view! {
        <Title text="LLM gateway" />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                loaded(data.await, |d| view! {
                        <PageHeader title="LLM gateway" subtitle="Every team's budget this period, the prices the gateway bills at, and upstream health." >
                            <a href="/api/budgets/v1/usage.csv" class="btn-secondary" download="">"Export all usage (CSV)"</a>
                        </PageHeader>
                        <Card title="Team budgets">
                            {if d.budgets.is_empty() {
                                view! { <EmptyState title="No budgets yet" body="Team leads set one on their team's Budget page; until then the gateway refuses that team's calls." /> }.into_any()
                            } else {
                                view! {
                                    <Table columns=vec![Col::text("Team"), Col::text("Limit"), Col::numeric("Spent"), Col::text("Used"), Col::text("At the limit")] testid="all-budgets">
                                                {d.budgets.into_iter().map(|b| {
                                                    let pct = b.used_percent();
                                                    let fill = format!("h-2 rounded {}", bar_colour(&b));
                                                    let href = format!("/teams/{}/budget", b.team);
                                                    let label = match &b.workspace_id { Some(w) => format!("{} / {w}", b.team), None => b.team.clone() };
                                                    view! {
                                                        <tr>
                                                            <td><a class="font-medium text-indigo-700 hover:underline dark:text-indigo-300" href=href>{label}</a></td>
                                                            <td>{format!("{} {}", dollars(b.limit_cents), b.period.per())}</td>
                                                            <td class="text-right tabular-nums">{dollars_f(cents_from_nanocents(b.spent_nanocents))}</td>
                                                            <td class="min-w-32"><div class="h-2 rounded bg-slate-200 dark:bg-slate-800" role="progressbar" aria-valuenow=pct aria-valuemin="0" aria-valuemax="100" aria-label=format!("{pct}% used")><div class=fill style=format!("width: {pct}%")></div></div></td>
                                                            <td>{match b.on_limit { OnLimit::Block => "blocks", OnLimit::Alert => "alerts" }}</td>
                                                        </tr>
                                                    }
                                                }).collect_view()}
                                            </Table>
                                }.into_any()
                            }}
                        </Card>
                        <div class="mt-6 grid gap-4 md:grid-cols-3">
                            <div class="md:col-span-2"><board::PriceTable prices=d.prices can_edit=d.can_edit_prices /></div>
                            {circuit_table(d.circuits)}
                        </div>
                        {model_table(d.models)}
                    })
            })}
        </Suspense>
    }
}
