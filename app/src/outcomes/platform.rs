//! The platform PM's home (`/platform`, and the home page of platform PMs
//! and admins): adoption as weekly trends, every team side by side (DORA,
//! adoption, AI cost, NPS) with sortable columns, the latest survey and the
//! capabilities that need attention. Server-rendered; sorting is a link.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use paved_shared::adoption::{AdoptionWeek, LeadGlance, PlatformHome, TeamRow, TEAM_PAGE_SIZE};
use paved_shared::budgets::dollars_f;
use paved_shared::outcomes::duration;

use crate::components::{loaded, percent_encode, Card, EmptyState, PageHeader};
use crate::error::AppError;
use crate::outcomes::{sparkline, sparkline_per};

/// The platform home's data (platform PMs and admins): one page (from 1)
/// of the teams, sorted by a column of `TEAM_SORTS`.
#[server(endpoint = "platform_home_data")]
pub async fn platform_home_data(
    sort: Option<String>,
    page: Option<u32>,
) -> Result<PlatformHome, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let now = core.budgets.ledger.now_ms() / 1000;
    Ok(paved_core::outcomes::adoption::platform_home(
        &core,
        &user,
        now,
        sort.as_deref().unwrap_or_default(),
        page.unwrap_or(1),
    )
    .await?)
}

/// `/platform`.
#[component]
pub fn PlatformPage() -> impl IntoView {
    view! {
        <Title text="Platform" />
        <PageHeader title="The platform as a product" subtitle="Whether teams adopt the platform, and whether it makes their delivery better." />
        <PlatformHomeBody base="/platform" />
    }
}

/// The body of the platform home, with sorting links to `base`.
#[component]
pub fn PlatformHomeBody(#[prop(into)] base: String) -> impl IntoView {
    let query = use_query_map();
    let params = move || {
        query.with(|q| {
            (
                q.get("sort"),
                q.get("page").and_then(|p| p.parse::<u32>().ok()),
            )
        })
    };
    let data = Resource::new(params, |(sort, page)| platform_home_data(sort, page));
    view! {
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading the platform's numbers…"</p> }>
            {move || Suspend::new({
                let base = base.clone();
                async move {
                    loaded(data.await, move |home| view! { <Body home base /> })
                }
            })}
        </Suspense>
    }
}

fn ratio(part: u64, whole: u64) -> String {
    if whole == 0 {
        "—".into()
    } else {
        format!("{:.0}%", part as f64 / whole as f64 * 100.0)
    }
}

fn series(weeks: &[AdoptionWeek], f: fn(&AdoptionWeek) -> f64) -> Vec<Option<f64>> {
    weeks.iter().map(|w| Some(f(w))).collect()
}

#[component]
fn Trend(
    label: &'static str,
    value: String,
    detail: String,
    values: Vec<Option<f64>>,
    unit: &'static str,
) -> impl IntoView {
    view! {
        <div class="card" data-testid="adoption-tile">
            <p class="text-sm text-slate-600 dark:text-slate-400">{label}</p>
            <p class="text-2xl font-semibold tabular-nums">{value}</p>
            <p class="text-xs text-slate-500">{detail}</p>
            <div class="mt-2">{sparkline(&values, unit, label)}</div>
        </div>
    }
}

#[component]
fn Body(home: PlatformHome, base: String) -> impl IntoView {
    let a = home.adoption.clone();
    let weeks = a.weeks.clone();
    let last = weeks.last().cloned().unwrap_or_default();
    let rows = home.teams.clone();
    let sort = home.sort.clone();
    let pager = Pager {
        base: base.clone(),
        sort: sort.clone(),
        page: home.page.max(1),
        shown: rows.len(),
        total: home.teams_total,
    };
    let (base_for, sort_for) = (base.clone(), sort.clone());
    let heading = move |key: &'static str, label: &'static str, numeric: bool| {
        let href = format!("{base_for}?sort={}#teams", percent_encode(key));
        let current = sort_for == key;
        view! {
            <th scope="col" class=if numeric { "text-right" } else { "" }
                aria-sort=if current { if key == "team" || key == "lead_time" { "ascending" } else { "descending" } } else { "none" }>
                <a class="hover:underline" href=href>{label}{if current { " ▾" } else { "" }}</a>
            </th>
        }
    };
    let attention = if home.attention.is_empty() {
        view! { <p class="text-sm text-slate-600 dark:text-slate-400" data-testid="attention-empty">"Every capability is inside its SLO."</p> }.into_any()
    } else {
        view! {
            <ul class="flex flex-col gap-1" data-testid="attention">
                {home.attention.iter().map(|(id, name, state)| view! {
                    <li><a class="link" href=paved_shared::capabilities::href(id)>{name.clone()}</a>{format!(" · {state}")}</li>
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    let survey = match &home.latest_survey {
        Some((id, title, nps, n)) => view! {
            <p class="text-2xl font-semibold tabular-nums" data-testid="latest-nps">{format!("{nps:+}")}</p>
            <p class="text-sm text-slate-600 dark:text-slate-400">{format!("{title} · {n} answers")}</p>
            <a class="btn-secondary mt-2" href=format!("/surveys/{id}")>"Open the results"</a>
        }
        .into_any(),
        None => view! {
            <p class="text-sm text-slate-600 dark:text-slate-400">"No survey has enough answers to show an NPS yet."</p>
            <a class="btn-secondary mt-2" href="/surveys">"Create a survey"</a>
        }
        .into_any(),
    };
    view! {
        <div class="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
            <Trend label="Teams onboarded" value=format!("{} of {}", a.teams_onboarded, a.teams_total)
                detail=format!("{} own a service or ran a golden path", ratio(a.teams_onboarded, a.teams_total))
                values=series(&weeks, |w| w.template_runs as f64) unit="golden-path runs" />
            <Trend label="Services from golden paths" value=format!("{} of {}", a.services_from_golden_paths, a.services_total)
                detail=format!("{} of the catalog's services · {:.0} hours saved in 30 days", ratio(a.services_from_golden_paths, a.services_total), a.hours_saved_30d)
                values=series(&weeks, |w| w.template_successes as f64) unit="successful runs" />
            <Trend label="Active people" value=format!("{} this week", a.weekly_active)
                detail=format!("{} in 30 days of {} people", a.monthly_active, a.people_total)
                values=series(&weeks, |w| w.active_people as f64) unit="people" />
            <Trend label="Gateway calls this week" value=last.gateway_requests.to_string()
                detail=format!("{} spent this week · {} secret versions written", dollars_f(last.gateway_cost_cents), last.secret_writes)
                values=series(&weeks, |w| w.gateway_requests as f64) unit="calls" />
        </div>
        <div class="mt-6 grid gap-4 md:grid-cols-2">
            <Card title="Needs attention">
                {attention}
                <a class="btn-secondary mt-3" href="/capabilities">"All capabilities"</a>
            </Card>
            <Card title="Latest NPS">
                <div class="flex flex-col items-start">{survey}</div>
            </Card>
        </div>
        <GoldenPaths paths=home.golden_paths.clone() />
        <Card title="Teams over the last 30 days" class="mt-6">
            {if rows.is_empty() {
                view! { <EmptyState title="No teams yet" body="Teams appear when people sign in through groups that map to teams (PAVED_OIDC_GROUP_MAPPING)." /> }.into_any()
            } else {
                view! {
                    <div class="overflow-x-auto" id="teams">
                        <table class="table" data-testid="team-comparison">
                            <thead><tr>
                                {heading("team", "Team", false)}
                                {heading("members", "People", true)}
                                {heading("services", "Services", true)}
                                {heading("runs", "Golden-path runs", true)}
                                {heading("deploys", "Deploys / week", true)}
                                {heading("lead_time", "Lead time", true)}
                                {heading("secrets", "Secrets", true)}
                                {heading("ai_cost", "AI cost", true)}
                                <th scope="col">"AI cost per day"</th>
                                {heading("nps", "NPS", true)}
                            </tr></thead>
                            <tbody>
                                {rows.into_iter().map(|r| {
                                    let daily: Vec<Option<f64>> = r.ai_cost_daily.iter().map(|c| Some(c / 100.0)).collect();
                                    let team_href = format!("/teams/{}/outcomes", r.team);
                                    view! {
                                        <tr data-testid="team-row">
                                            <td><a class="link font-medium" href=team_href>{r.team.clone()}</a></td>
                                            <td class="text-right tabular-nums">{r.members}</td>
                                            <td class="text-right tabular-nums">{r.services}</td>
                                            <td class="text-right tabular-nums">{r.template_runs}</td>
                                            <td class="text-right tabular-nums">{r.dora.as_ref().map(|d| format!("{:.1}", d.deployment_frequency.per_week)).unwrap_or_else(|| "—".into())}</td>
                                            <td class="text-right tabular-nums">{r.dora.as_ref().and_then(|d| d.lead_time_seconds.median).map(duration).unwrap_or_else(|| "—".into())}</td>
                                            <td class="text-right tabular-nums">{r.secrets}</td>
                                            <td class="text-right tabular-nums">{dollars_f(r.ai_cost_cents)}</td>
                                            <td>{sparkline_per(&daily, "dollars", "AI cost", "day")}</td>
                                            <td class="text-right tabular-nums">{r.nps.map(|n| format!("{n:+}")).unwrap_or_else(|| "—".into())}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                    {pager.view()}
                    <p class="mt-2 text-xs text-slate-500">"A dash means no data: no delivery events for DORA, or too few answers for a team's NPS (never shown below a survey's minimum group)."</p>
                }.into_any()
            }}
        </Card>
    }
}

/// Where a page of teams sits among all, with links to the pages beside it.
struct Pager {
    base: String,
    sort: String,
    page: u32,
    shown: usize,
    total: u64,
}

impl Pager {
    fn view(self) -> impl IntoView {
        let first = (self.page as u64 - 1) * TEAM_PAGE_SIZE as u64;
        let href = |page: u32| {
            format!(
                "{}?sort={}&page={page}#teams",
                self.base,
                percent_encode(&self.sort)
            )
        };
        let previous = (self.page > 1).then(|| href(self.page - 1));
        let next = (first + (self.shown as u64) < self.total).then(|| href(self.page + 1));
        (self.total as usize > TEAM_PAGE_SIZE).then(|| {
            view! {
                <nav class="mt-3 flex items-center justify-between gap-2 text-sm" aria-label="Pages of teams" data-testid="team-pages">
                    <span class="text-slate-600 dark:text-slate-400">{format!("Teams {}–{} of {}", first + 1, first + self.shown as u64, self.total)}</span>
                    <span class="flex gap-2">
                        {previous.map(|h| view! { <a class="btn-secondary" href=h rel="prev">"Previous"</a> })}
                        {next.map(|h| view! { <a class="btn-secondary" href=h rel="next">"Next"</a> })}
                    </span>
                </nav>
            }
        })
    }
}

fn rate(r: Option<f64>) -> String {
    r.map(|v| format!("{:.0}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// Each golden path's wizard funnel, where people stop, its success and
/// the step that fails most, its lead time and the time it saved.
#[component]
fn GoldenPaths(paths: Vec<paved_shared::scaffold::TemplateMetrics>) -> impl IntoView {
    view! {
        <Card title="Golden paths over the last 30 days" class="mt-6">
            {if paths.is_empty() {
                view! { <p class="text-sm text-slate-600 dark:text-slate-400" data-testid="golden-paths-empty">"Nobody has opened a golden path's wizard in 30 days: share the Create page with the teams you are onboarding."</p> }.into_any()
            } else {
                view! {
                    <div class="overflow-x-auto">
                        <table class="table" data-testid="golden-paths">
                            <thead><tr>
                                <th scope="col">"Golden path"</th>
                                <th scope="col" class="text-right">"Wizards started"</th>
                                <th scope="col" class="text-right">"Completed"</th>
                                <th scope="col">"Where people stop"</th>
                                <th scope="col" class="text-right">"Runs"</th>
                                <th scope="col" class="text-right">"Succeeded"</th>
                                <th scope="col">"Failing step"</th>
                                <th scope="col" class="text-right">"Start to done"</th>
                                <th scope="col" class="text-right"><abbr title="From the wizard's start to the new service's first successful production deployment (median), and how many of the services created have reached production">"Start to production"</abbr></th>
                                <th scope="col" class="text-right">"Time saved"</th>
                            </tr></thead>
                            <tbody>
                                {paths.into_iter().map(|m| {
                                    let name = m.template_ref.strip_prefix("template:").unwrap_or(&m.template_ref).to_owned();
                                    let stops = if m.abandoned_at.is_empty() {
                                        "—".to_owned()
                                    } else {
                                        m.abandoned_at.iter().take(2).map(|(s, n)| format!("{s} ({n})")).collect::<Vec<_>>().join(", ")
                                    };
                                    let failing = m.failures_by_step.first().map(|(s, n)| format!("{s} ({n})")).unwrap_or_else(|| "—".into());
                                    view! {
                                        <tr>
                                            <td class="font-medium">{name}</td>
                                            <td class="text-right tabular-nums">{m.wizards_started}</td>
                                            <td class="text-right tabular-nums">{rate(m.completion_rate)}</td>
                                            <td class="text-sm">{stops}</td>
                                            <td class="text-right tabular-nums">{m.tasks}</td>
                                            <td class="text-right tabular-nums">{rate(m.success_rate)}</td>
                                            <td class="text-sm">{failing}</td>
                                            <td class="text-right tabular-nums">{m.lead_time_median_secs.map(duration).unwrap_or_else(|| "—".into())}</td>
                                            <td class="text-right tabular-nums" data-testid="to-production">{match m.production_lead_time_median_secs {
                                                Some(secs) => format!("{} ({} in production)", duration(secs), m.services_in_production),
                                                None if m.tasks_succeeded > 0 => "not deployed yet".to_owned(),
                                                None => "—".to_owned(),
                                            }}</td>
                                            <td class="text-right tabular-nums">{format!("{:.1} h", m.time_saved_minutes as f64 / 60.0)}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </Card>
    }
}

/// One team's platform experience (its members, PMs and admins).
#[server(endpoint = "team_experience")]
pub async fn team_experience(team: String) -> Result<TeamRow, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let now = core.budgets.ledger.now_ms() / 1000;
    Ok(paved_core::outcomes::adoption::team_row(&core, &user, &team, now).await?)
}

/// The team Outcomes page's platform section: golden-path runs, AI cost per
/// day and the team's NPS, each with where to go next.
#[component]
pub fn TeamExperience(team: String) -> impl IntoView {
    let name = team.clone();
    let data = Resource::new(move || name.clone(), team_experience);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new({
                let team = team.clone();
                async move {
                    data.await.ok().map(|r| {
                        let daily: Vec<Option<f64>> = r.ai_cost_daily.iter().map(|c| Some(c / 100.0)).collect();
                        let budget = format!("/teams/{team}/budget");
                        view! {
                            <h2 class="mb-3 mt-8 text-lg font-semibold">"Platform experience"</h2>
                            <div class="grid gap-4 md:grid-cols-3" data-testid="team-experience">
                                <Card title="AI cost, 30 days">
                                    <p class="text-2xl font-semibold tabular-nums" data-testid="team-ai-cost">{dollars_f(r.ai_cost_cents)}</p>
                                    <p class="text-xs text-slate-500">{format!("{} gateway calls", r.gateway_requests)}</p>
                                    <div class="mt-2">{sparkline_per(&daily, "dollars", "AI cost", "day")}</div>
                                    <a class="link mt-2 text-sm" href=budget>"Budget and cost per feature"</a>
                                </Card>
                                <Card title="Golden paths, 30 days">
                                    <p class="text-2xl font-semibold tabular-nums">{r.template_runs}</p>
                                    <p class="text-xs text-slate-500">{format!("runs · {} services owned · {} secrets", r.services, r.secrets)}</p>
                                    <a class="link mt-2 text-sm" href="/create">"Start a new service"</a>
                                </Card>
                                <Card title="Team NPS">
                                    {match r.nps {
                                        Some(n) => view! { <p class="text-2xl font-semibold tabular-nums" data-testid="team-nps">{format!("{n:+}")}</p><p class="text-xs text-slate-500">"from the latest survey with enough answers"</p> }.into_any(),
                                        None => view! { <p class="text-sm text-slate-600 dark:text-slate-400" data-testid="team-nps-none">"No survey has enough answers from this team to show an NPS. Answer open surveys on the Surveys page; results appear from the survey's minimum group up."</p> }.into_any(),
                                    }}
                                    <a class="link mt-2 text-sm" href="/surveys">"Surveys"</a>
                                </Card>
                            </div>
                        }
                    })
                }
            })}
        </Suspense>
    }
}

/// One team at a glance for its lead (the team's members, PMs and admins).
#[server(endpoint = "lead_glance")]
pub async fn lead_glance_data(team: String) -> Result<LeadGlance, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let now = core.budgets.ledger.now_ms() / 1000;
    Ok(paved_core::outcomes::adoption::lead_glance(&core, &user, &team, now).await?)
}

/// "12.0 → 9.5" style: the window before, then this one.
fn versus(now: Option<String>, before: Option<String>) -> String {
    match (now, before) {
        (Some(n), Some(b)) => format!("{n} (was {b})"),
        (Some(n), None) => n,
        (None, _) => "—".to_owned(),
    }
}

/// A lead's team at a glance on the home page: the budget's burn and
/// forecast, failing secrets, and delivery against the 30 days before.
#[component]
pub fn LeadCard(team: String) -> impl IntoView {
    let name = team.clone();
    let data = Resource::new(move || name.clone(), lead_glance_data);
    let budget_href = format!("/teams/{team}/budget");
    let outcomes_href = format!("/teams/{team}/outcomes");
    view! {
        <Card title=format!("Team {team} this month")>
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                {move || Suspend::new({
                    let (budget_href, outcomes_href) = (budget_href.clone(), outcomes_href.clone());
                    async move {
                        loaded(data.await, move |g| {
                            let budget = match &g.budget {
                                Some(b) => {
                                    let pct = if b.limit_cents > 0 { (b.spent_cents / b.limit_cents as f64 * 100.0).min(100.0) } else { 100.0 };
                                    let over = b.projected_cents > b.limit_cents as f64;
                                    view! {
                                        <p class="text-sm" data-testid="lead-burn">{format!("LLM spend {} of {} {}", dollars_f(b.spent_cents), dollars_f(b.limit_cents as f64), b.period)}</p>
                                        <div class="my-1 h-2 rounded bg-slate-200 dark:bg-slate-800" role="progressbar" aria-valuenow=pct.round() aria-valuemin="0" aria-valuemax="100" aria-label=format!("{:.0}% of the budget used", pct)>
                                            <div class=if over { "h-2 rounded bg-amber-500" } else { "h-2 rounded bg-indigo-500" } style=format!("width: {pct:.0}%")></div>
                                        </div>
                                        <p class="text-xs text-slate-600 dark:text-slate-400" data-testid="lead-forecast">{format!("At this pace {} by the end of the period{}", dollars_f(b.projected_cents), if over { ": over the limit" } else { "" })}</p>
                                    }.into_any()
                                }
                                None => view! { <p class="text-sm text-slate-600 dark:text-slate-400" data-testid="lead-burn">"No LLM budget yet: the gateway refuses the team's calls until you set one."</p> }.into_any(),
                            };
                            let d = &g.dora;
                            let before = d.previous.as_deref();
                            let deploys = versus(
                                Some(format!("{:.1}", d.deployment_frequency.per_week)),
                                before.map(|p| format!("{:.1}", p.deployment_frequency.per_week)),
                            );
                            let lead = versus(
                                d.lead_time_seconds.median.map(duration),
                                before.and_then(|p| p.lead_time_seconds.median).map(duration),
                            );
                            let secrets = match g.secrets_failing {
                                0 => "Every service's Vault policy and role are in place.".to_owned(),
                                1 => "1 service's Vault policy or role failed to write.".to_owned(),
                                n => format!("{n} services' Vault policies or roles failed to write."),
                            };
                            view! {
                                {budget}
                                <dl class="mt-3 grid grid-cols-2 gap-2 text-sm" data-testid="lead-delivery">
                                    <div><dt class="text-xs text-slate-500">"Deploys per week"</dt><dd class="tabular-nums">{deploys}</dd></div>
                                    <div><dt class="text-xs text-slate-500">"Lead time"</dt><dd class="tabular-nums">{lead}</dd></div>
                                </dl>
                                <p class="mt-2 text-sm" data-testid="lead-secrets">{secrets}</p>
                                <div class="mt-3 flex flex-wrap gap-2">
                                    <a class="btn-secondary" href=budget_href>"Budget"</a>
                                    <a class="btn-secondary" href=outcomes_href>"Outcomes"</a>
                                </div>
                            }
                        })
                    }
                })}
            </Suspense>
        </Card>
    }
}
