//! Delivery outcomes in the UI: a team's Outcomes page
//! (`/teams/:name/outcomes`), a component's
//! (`/catalog/component/:namespace/:name/outcomes`) and the summary card on
//! the component's catalog page, all rendered on the server from one
//! [`OutcomesPage`]; the admins' event sources page is in [`sources`].
//! Every number links to the list it was computed from, and every row of
//! that list says why it counts.

pub mod capabilities;
pub mod platform;
pub mod sources;
pub mod surveys;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
pub use paved_shared::outcomes::{
    duration, Band, ChangeView, DeploymentView, Dora, IncidentView, List, OutcomesPage,
};

use crate::components::{loaded, Badge, Card, Col, EmptyState, PageHeader, Table, Tone};
use crate::error::AppError;

/// The page's data for a team (`team`) or a component
/// (`component:namespace/name`): the team's members, PMs and admins see a
/// team's; everyone signed in sees a component's.
#[server(endpoint = "outcomes_data")]
pub async fn outcomes_data(
    team: Option<String>,
    component: Option<String>,
    from: Option<String>,
    to: Option<String>,
    env: Option<String>,
    list: Option<String>,
) -> Result<OutcomesPage, AppError> {
    use paved_core::outcomes::{self, Query, QueryInput, Target};
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let target = match (team, component) {
        (Some(team), None) => Target::Team(team),
        (None, Some(component)) => Target::Component(component.to_ascii_lowercase()),
        _ => {
            return Err(crate::ssr::fail(AppError::Invalid {
                field: "team".into(),
                message: "name a team or a component".into(),
            }))
        }
    };
    let now = core.budgets.ledger.now_ms() / 1000;
    let query = Query::parse(
        &QueryInput {
            from: from.filter(|s| !s.is_empty()),
            to: to.filter(|s| !s.is_empty()),
            env: env.filter(|s| !s.is_empty()),
            tz: None,
            bands: None,
        },
        now,
    )?;
    let list = List::parse(list.as_deref().unwrap_or_default());
    Ok(outcomes::page(&core, &user, &target, &query, list).await?)
}

/// What the page's query string asks for.
#[derive(Debug, Clone, Default, PartialEq)]
struct Asked {
    from: Option<String>,
    to: Option<String>,
    env: Option<String>,
    list: List,
}

impl Asked {
    fn read() -> Memo<Asked> {
        let q = use_query_map();
        Memo::new(move |_| {
            q.with(|q| {
                let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
                Asked {
                    from: get("from"),
                    to: get("to"),
                    env: get("env"),
                    list: List::parse(&q.get("list").unwrap_or_default()),
                }
            })
        })
    }

    /// `base` with this window and `list`.
    fn href(&self, base: &str, list: List) -> String {
        let mut parts = vec![format!("list={}", list.as_str())];
        for (k, v) in [("from", &self.from), ("to", &self.to), ("env", &self.env)] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", crate::components::percent_encode(v)));
            }
        }
        format!("{base}?{}#behind", parts.join("&"))
    }
}

/// `/teams/:name/outcomes`.
#[component]
pub fn TeamOutcomesPage() -> impl IntoView {
    let params = use_params_map();
    let team = move || params.with(|p| p.get("name").unwrap_or_default());
    let asked = Asked::read();
    let data = Resource::new(
        move || (team(), asked.get()),
        |(team, a)| {
            outcomes_data(
                Some(team),
                None,
                a.from,
                a.to,
                a.env,
                Some(a.list.as_str().into()),
            )
        },
    );
    view! {
        // Read once: the server renders the title after the page's reactive
        // owner is gone, so a title closure over route params could panic
        // under load (pages are full loads in islands mode, so once is enough).
        <Title text=format!("Outcomes · team {}", untrack(team)) />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Computing outcomes…"</p> }>
            {move || Suspend::new(async move {
                let team = team();
                let a = asked.get_untracked();
                loaded(data.await, move |page| {
                    let base = format!("/teams/{team}/outcomes");
                    let (team_href, subject) = (format!("/teams/{team}"), format!("team {team}"));
                    view! {
                        <PageHeader title="Delivery outcomes" subtitle=format!("Team {team}: DORA's five keys from the team's delivery events, with what each number was computed from.")>
                            <a href=team_href class="btn-secondary">"Team page"</a>
                        </PageHeader>
                        <OutcomesBody page base asked=a subject />
                        <platform::TeamExperience team=team.clone() />
                    }
                })
            })}
        </Suspense>
    }
}

/// `/catalog/component/:namespace/:name/outcomes`.
#[component]
pub fn ComponentOutcomesPage() -> impl IntoView {
    let params = use_params_map();
    let entity = move || {
        params.with(|p| {
            (
                p.get("namespace").unwrap_or_default(),
                p.get("name").unwrap_or_default(),
            )
        })
    };
    let asked = Asked::read();
    let data = Resource::new(
        move || (entity(), asked.get()),
        |((ns, name), a)| {
            outcomes_data(
                None,
                Some(format!("component:{ns}/{name}")),
                a.from,
                a.to,
                a.env,
                Some(a.list.as_str().into()),
            )
        },
    );
    view! {
        <Title text=format!("Outcomes · {}", untrack(entity).1) />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Computing outcomes…"</p> }>
            {move || Suspend::new(async move {
                let (ns, name) = entity();
                let a = asked.get_untracked();
                loaded(data.await, move |page| {
                    let base = format!("/catalog/component/{ns}/{name}/outcomes");
                    let entity_href = crate::catalog::ref_href(&format!("component:{ns}/{name}"));
                    view! {
                        <PageHeader title="Delivery outcomes" subtitle=format!("Component {name}: DORA's five keys from its delivery events, with what each number was computed from.")>
                            <a href=entity_href class="btn-secondary">"Component page"</a>
                        </PageHeader>
                        <OutcomesBody page base asked=a subject=format!("component {name}") />
                    }
                })
            })}
        </Suspense>
    }
}

/// The five keys in brief on a component's catalog page.
#[component]
pub fn ComponentOutcomesCard(namespace: String, name: String) -> impl IntoView {
    let href = format!("/catalog/component/{namespace}/{name}/outcomes");
    let data = Resource::new(
        move || format!("component:{namespace}/{name}"),
        |component| outcomes_data(None, Some(component), None, None, None, None),
    );
    view! {
        <Card title="Delivery outcomes">
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Computing…"</p> }>
                {move || {
                    let href = href.clone();
                    Suspend::new(async move {
                        match data.await {
                            Ok(page) if page.has_events => {
                                let d = page.dora;
                                view! {
                                    <dl class="grid grid-cols-2 gap-3 text-sm sm:grid-cols-3" data-testid="outcomes-summary">
                                        {summary(&d).into_iter().map(|(label, value, band)| view! {
                                            <div>
                                                <dt class="text-slate-500 dark:text-slate-400">{label}</dt>
                                                <dd class="font-semibold tabular-nums">{value}" "{band.map(band_badge)}</dd>
                                            </div>
                                        }).collect_view()}
                                    </dl>
                                    <p class="mt-3 text-sm"><a href=href class="text-indigo-700 hover:underline dark:text-indigo-300">"Open the outcomes, with what each number was computed from"</a></p>
                                }.into_any()
                            }
                            Ok(_) => view! {
                                <p class="text-sm text-slate-600 dark:text-slate-400">"No delivery events reached this component yet. "
                                    <a href=href class="text-indigo-700 hover:underline dark:text-indigo-300">"How to send them"</a></p>
                            }.into_any(),
                            Err(e) => view! { <p role="alert" class="text-sm text-red-600">{e.to_string()}</p> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </Card>
    }
}

fn summary(d: &Dora) -> Vec<(&'static str, String, Option<Band>)> {
    vec![
        (
            "Deployments",
            format!("{:.1}/week", d.deployment_frequency.per_week),
            d.deployment_frequency.band,
        ),
        (
            "Lead time",
            d.lead_time_seconds
                .median
                .map(duration)
                .unwrap_or_else(|| "—".into()),
            d.lead_time_seconds.band,
        ),
        (
            "Change failure rate",
            percent(d.change_failure_rate.value),
            d.change_failure_rate.band,
        ),
        (
            "Recovery time",
            d.recovery_time_seconds
                .median
                .map(duration)
                .unwrap_or_else(|| "—".into()),
            d.recovery_time_seconds.band,
        ),
        ("Rework rate", percent(d.rework_rate.value), None),
    ]
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{:.0}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn band_badge(band: Band) -> impl IntoView {
    let tone = match band {
        Band::Elite => Tone::Success,
        Band::High => Tone::Info,
        Band::Medium => Tone::Warning,
        Band::Low => Tone::Danger,
    };
    view! { <Badge tone>{band.label()}</Badge> }
}

/// Whether a larger value is better (deployments) or worse (the rest).
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

/// One key: its value, band, trend against the previous window, the counts
/// behind it, a weekly sparkline and the link to its list.
struct Key {
    id: &'static str,
    title: &'static str,
    value: String,
    band: Option<Band>,
    now: Option<f64>,
    before: Option<f64>,
    better: Better,
    counts: String,
    weekly: Vec<Option<f64>>,
    unit: &'static str,
    list: List,
    link: String,
}

fn keys(page: &OutcomesPage) -> Vec<Key> {
    let d = &page.dora;
    let p = d.previous.as_deref();
    let weeks = &page.weeks;
    let df = &d.deployment_frequency;
    let lt = &d.lead_time_seconds;
    let cfr = &d.change_failure_rate;
    let rt = &d.recovery_time_seconds;
    let rw = &d.rework_rate;
    vec![
        Key {
            id: "deployment-frequency",
            title: "Deployment frequency",
            value: format!("{:.1} per week", df.per_week),
            band: df.band,
            now: Some(df.per_week),
            before: p.map(|p| p.deployment_frequency.per_week),
            better: Better::Higher,
            counts: format!(
                "{} deployments on {} days",
                df.deployments, df.deployment_days
            ),
            weekly: weeks
                .iter()
                .map(|w| Some(w.deployment_frequency.deployments as f64))
                .collect(),
            unit: "deployments",
            list: List::Deployments,
            link: format!("See the {} deployments", df.deployments),
        },
        Key {
            id: "lead-time",
            title: "Lead time for changes",
            value: lt.median.map(duration).unwrap_or_else(|| "No data".into()),
            band: lt.band,
            now: lt.median.map(|v| v as f64),
            before: p.and_then(|p| p.lead_time_seconds.median.map(|v| v as f64)),
            better: Better::Lower,
            counts: match lt.p90 {
                Some(p90) => format!("median of {} changes · p90 {}", lt.changes, duration(p90)),
                None => format!("{} changes", lt.changes),
            },
            weekly: weeks
                .iter()
                .map(|w| w.lead_time_seconds.median.map(|v| v as f64 / 3600.0))
                .collect(),
            unit: "hours",
            list: List::Changes,
            link: format!("See the {} changes", lt.changes),
        },
        Key {
            id: "change-failure-rate",
            title: "Change failure rate",
            value: percent(cfr.value),
            band: cfr.band,
            now: cfr.value,
            before: p.and_then(|p| p.change_failure_rate.value),
            better: Better::Lower,
            counts: format!(
                "{} of {} deployments caused an incident",
                cfr.failed, cfr.deployments
            ),
            weekly: weeks
                .iter()
                .map(|w| w.change_failure_rate.value.map(|v| v * 100.0))
                .collect(),
            unit: "%",
            list: List::Incidents,
            link: "See the incidents".into(),
        },
        Key {
            id: "recovery-time",
            title: "Failed deployment recovery time",
            value: rt.median.map(duration).unwrap_or_else(|| "No data".into()),
            band: rt.band,
            now: rt.median.map(|v| v as f64),
            before: p.and_then(|p| p.recovery_time_seconds.median.map(|v| v as f64)),
            better: Better::Lower,
            counts: format!("median of {} resolved · {} open", rt.incidents, rt.open),
            weekly: weeks
                .iter()
                .map(|w| w.recovery_time_seconds.median.map(|v| v as f64 / 3600.0))
                .collect(),
            unit: "hours",
            list: List::Incidents,
            link: format!("See the {} incidents", rt.incidents + rt.open),
        },
        Key {
            id: "rework-rate",
            title: "Deployment rework rate",
            value: percent(rw.value),
            band: None,
            now: rw.value,
            before: p.and_then(|p| p.rework_rate.value),
            better: Better::Lower,
            counts: format!(
                "{} of {} deployments fixed an incident",
                rw.rework, rw.deployments
            ),
            weekly: weeks
                .iter()
                .map(|w| w.rework_rate.value.map(|v| v * 100.0))
                .collect(),
            unit: "%",
            list: List::Deployments,
            link: "See which deployments were rework".into(),
        },
    ]
}

/// The change against the previous window, and whether it is for the better.
fn trend(key: &Key) -> Option<(String, Tone)> {
    let (now, before) = (key.now?, key.before?);
    if (now - before).abs() < f64::EPSILON {
        return Some(("same as the previous window".into(), Tone::Neutral));
    }
    let up = now > before;
    let good = match key.better {
        Better::Higher => up,
        Better::Lower => !up,
    };
    let arrow = if up { "▲" } else { "▼" };
    let text = if before.abs() < f64::EPSILON {
        format!("{arrow} from 0 in the previous window")
    } else {
        format!(
            "{arrow} {:.0}% against the previous window",
            ((now - before) / before * 100.0).abs()
        )
    };
    Some((text, if good { Tone::Success } else { Tone::Danger }))
}

/// A weekly sparkline: an SVG polyline with a gap where a week had no data,
/// described in words for screen readers.
pub(crate) fn sparkline(values: &[Option<f64>], unit: &str, title: &str) -> impl IntoView {
    sparkline_per(values, unit, title, "week")
}

/// [`sparkline`] over `period`s (`week`, `day`).
pub(crate) fn sparkline_per(
    values: &[Option<f64>],
    unit: &str,
    title: &str,
    period: &str,
) -> impl IntoView {
    let (w, h) = (120.0_f64, 32.0_f64);
    let max = values
        .iter()
        .flatten()
        .cloned()
        .fold(0.0_f64, f64::max)
        .max(f64::EPSILON);
    let step = if values.len() > 1 {
        w / (values.len() - 1) as f64
    } else {
        w
    };
    let mut segments: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let x = i as f64 * step;
                let y = h - 2.0 - (v / max) * (h - 4.0);
                current.push_str(&format!("{x:.1},{y:.1} "));
            }
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    let words = values
        .iter()
        .map(|v| match v {
            Some(v) => format!("{v:.1}"),
            None => "no data".into(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let label = format!(
        "{title} per {period} over the last {} {period}s, in {unit}: {words}",
        values.len()
    );
    view! {
        <svg viewBox=format!("0 0 {w} {h}") class="h-8 w-32 text-indigo-500" role="img" aria-label=label preserveAspectRatio="none">
            {segments.into_iter().map(|points| {
                let single = points.trim().split(' ').count() == 1;
                if single {
                    let (x, y) = points.trim().split_once(',').unwrap_or(("0", "0"));
                    view! { <circle cx=x.to_owned() cy=y.to_owned() r="1.5" fill="currentColor" /> }.into_any()
                } else {
                    view! { <polyline points=points fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round" /> }.into_any()
                }
            }).collect_view()}
        </svg>
    }
}

/// The window form, the five keys and the list behind them.
#[component]
fn OutcomesBody(page: OutcomesPage, base: String, asked: Asked, subject: String) -> impl IntoView {
    let from = page.dora.from.get(..10).unwrap_or_default().to_owned();
    let to = page.dora.to.get(..10).unwrap_or_default().to_owned();
    let environments = match &page.environment {
        Some(env) => format!("environment {env}"),
        None => format!("production ({})", page.production.join(", ")),
    };
    let keys = keys(&page);
    let empty = if page.components.is_empty() {
        Some(view! {
            <EmptyState title="No components to measure" body=format!("Outcomes are computed per catalog Component; {subject} owns none yet. Give a Component `spec.owner` naming the team, or create one from a golden path under Create.") />
        }.into_any())
    } else if !page.has_events {
        Some(view! { <NoEventsYet page=page.clone() subject=subject.clone() /> }.into_any())
    } else {
        None
    };
    let list = asked.list;
    let tabs = [
        (List::Deployments, "Deployments"),
        (List::Changes, "Changes"),
        (List::Incidents, "Incidents"),
    ];
    view! {
        <form method="get" action=base.clone() class="mb-6 flex flex-wrap items-end gap-3 text-sm" aria-label="Window">
            <label class="flex flex-col gap-1">"From"
                <input type="date" name="from" value=from class="input" />
            </label>
            <label class="flex flex-col gap-1">"Until (not included)"
                <input type="date" name="to" value=to class="input" />
            </label>
            <label class="flex flex-col gap-1">"Environment"
                <input type="text" name="env" value=page.environment.clone().unwrap_or_default() placeholder="production" class="input w-40" />
            </label>
            <input type="hidden" name="list" value=list.as_str() />
            <button type="submit" class="btn-secondary">"Show"</button>
            <p class="text-slate-500 dark:text-slate-400">{format!("Counting {environments}; the trend compares with the same length of time just before. Times in UTC.")}</p>
        </form>
        {empty}
        <div class="grid gap-4 sm:grid-cols-2 xl:grid-cols-5" data-testid="dora-keys">
            {keys.into_iter().map(|k| {
                let trend = trend(&k);
                let href = asked.href(&base, k.list);
                view! {
                    <section class="card flex flex-col gap-2" data-testid=k.id aria-labelledby=format!("{}-title", k.id)>
                        <h2 id=format!("{}-title", k.id) class="text-sm font-medium text-slate-600 dark:text-slate-400">{k.title}</h2>
                        <p class="text-2xl font-semibold tabular-nums" data-testid="value">{k.value.clone()}</p>
                        <div class="flex flex-wrap items-center gap-2 text-xs">
                            {match k.band {
                                Some(b) => band_badge(b).into_any(),
                                None if k.id == "rework-rate" => view! { <span class="text-slate-500">"DORA publishes no bands"</span> }.into_any(),
                                None => view! { <span class="text-slate-500">"No band without data"</span> }.into_any(),
                            }}
                            {trend.map(|(text, tone)| view! { <Badge tone>{text}</Badge> })}
                        </div>
                        {sparkline(&k.weekly, k.unit, k.title)}
                        <p class="text-xs text-slate-600 dark:text-slate-400">{k.counts.clone()}</p>
                        <a href=href class="mt-auto text-sm text-indigo-700 hover:underline dark:text-indigo-300" data-testid="drill-down">{k.link.clone()}</a>
                    </section>
                }
            }).collect_view()}
        </div>
        <section id="behind" class="card mt-6" aria-labelledby="behind-title">
            <h2 id="behind-title" class="mb-3 text-base font-semibold">"What the numbers were computed from"</h2>
            <nav class="mb-4 flex gap-2" aria-label="Lists">
                {tabs.into_iter().map(|(l, label)| {
                    let current = l == list;
                    let class = if current { "btn-primary" } else { "btn-secondary" };
                    view! { <a href=asked.href(&base, l) class=class aria-current=current.then_some("page")>{label}</a> }
                }).collect_view()}
            </nav>
            {(page.list_total as usize > OutcomesPage::LIST_LIMIT).then(|| view! {
                <p class="mb-2 text-sm text-slate-500">{format!("The first {} of {}; narrow the window to see the rest.", OutcomesPage::LIST_LIMIT, page.list_total)}</p>
            })}
            {match list {
                List::Deployments => deployments_table(page.behind.deployments).into_any(),
                List::Changes => changes_table(page.behind.changes).into_any(),
                List::Incidents => incidents_table(page.behind.incidents).into_any(),
            }}
        </section>
    }
}

/// What to send, and where, when no event has arrived.
#[component]
fn NoEventsYet(page: OutcomesPage, subject: String) -> impl IntoView {
    let e = page.endpoints;
    let curl = format!(
        "curl -X POST {} \\\n  -H 'Authorization: Bearer <the source token>' \\\n  -H 'Content-Type: application/json' \\\n  -d '{{\"type\": \"deployment\", \"id\": \"deploy-42\", \"repo\": \"https://github.com/acme/payments\", \"sha\": \"<full commit sha>\", \"environment\": \"production\", \"finished_at\": \"2026-11-02T10:00:00Z\"}}'",
        e.generic
    );
    view! {
        <div class="mb-6 rounded-xl border border-dashed border-slate-300 p-6 text-sm dark:border-slate-700" data-testid="no-events">
            <p class="font-medium">{format!("No delivery events reached {subject} by the end of this window")}</p>
            <p class="mt-1 text-slate-600 dark:text-slate-400">"Numbers appear as soon as deployments arrive; lead time also needs the commits (pushes or merged pull requests), and change failure rate the incidents. Events map to components through the `github.com/project-slug`, `gitlab.com/project-slug` or `backstage.io/source-location` annotations."</p>
            <ul class="mt-3 list-disc space-y-1 pl-5">
                <li>"GitHub: add a webhook to the repository (content type application/json; events: pushes, pull requests, deployments, deployment statuses, issues) with the URL "<code>{e.github}</code>" and the source's secret."</li>
                <li>"GitLab: add a webhook with the URL "<code>{e.gitlab}</code>" and the source's token as the secret token (push, merge request, deployment and issue events)."</li>
                <li>"Apache DevLake's webhook calls: point them at "<code>{e.devlake}</code>" with the source's token."</li>
                <li>"Any other tool: post Paved's generic JSON:"</li>
            </ul>
            <pre tabindex="0" class="mt-2 overflow-x-auto rounded bg-slate-100 p-3 text-xs dark:bg-slate-800"><code>{curl}</code></pre>
            {if page.manages_sources {
                view! { <p class="mt-3"><a href="/admin/outcomes" class="text-indigo-700 hover:underline dark:text-indigo-300">"Create an event source and its secret"</a></p> }.into_any()
            } else {
                view! { <p class="mt-3 text-slate-600 dark:text-slate-400">"A platform admin creates the event source and gives you its secret (Admin → Delivery events)."</p> }.into_any()
            }}
        </div>
    }
}

/// An RFC 3339 UTC time from the wire as the tables show it: `2026-03-02 10:00:00`.
fn when(t: &str) -> String {
    t.replace('T', " ").trim_end_matches('Z').to_owned()
}

fn short(sha: &str) -> String {
    sha.chars().take(7).collect()
}

fn deployments_table(rows: Vec<DeploymentView>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="text-sm text-slate-500">"No deployments in this window. Deployments arrive as deployment events (GitHub deployment statuses, GitLab deployment hooks, DevLake or generic deployments) for a production environment."</p> }.into_any();
    }
    view! {
        <div class="overflow-x-auto">
            <Table testid="deployments" columns=vec![Col::text("Finished"), Col::text("Deployment"), Col::text("Component"), Col::text("Environment"), Col::numeric("Changes"), Col::numeric("Lead time (median)"), Col::text("Counts because")]>
                {rows.into_iter().map(|d| {
                    let failed = d.status != "success";
                    view! {
                        <tr data-key=d.key.clone()>
                            <td class="whitespace-nowrap">{when(&d.finished_at)}</td>
                            <td>
                                <span class="font-medium">{d.title.clone().unwrap_or_else(|| d.key.clone())}</span>
                                {d.sha.as_deref().map(|s| view! { " "<code class="text-xs">{short(s)}</code> })}
                                {failed.then(|| view! { " "<Badge tone=Tone::Danger>"failed"</Badge> })}
                            </td>
                            <td>{d.component.rsplit('/').next().unwrap_or_default().to_owned()}</td>
                            <td>{d.environment}</td>
                            <td class="text-right tabular-nums">{d.changes}</td>
                            <td class="text-right tabular-nums">{d.lead_time_median_seconds.map(duration).unwrap_or_else(|| "—".into())}</td>
                            <td class="text-sm">
                                <p>{d.reason}</p>
                                {(!d.caused_incidents.is_empty()).then(|| view! { <p class="text-red-700 dark:text-red-400">{format!("Caused {}", d.caused_incidents.join(", "))}</p> })}
                                {d.rework.map(|why| view! { <p data-testid="rework"><Badge tone=Tone::Warning>"rework"</Badge>" "{why}</p> })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </Table>
        </div>
    }
    .into_any()
}

fn changes_table(rows: Vec<ChangeView>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="text-sm text-slate-500">"No changes reached production in this window. Lead time needs the commits: send push events (or merged pull requests, or DevLake's deploymentCommits) for the repositories the deployments name."</p> }.into_any();
    }
    view! {
        <div class="overflow-x-auto">
            <Table testid="changes" columns=vec![Col::text("Commit"), Col::text("Repository"), Col::text("Deployment"), Col::text("Committed"), Col::text("Deployed"), Col::numeric("Lead time"), Col::text("Counts because")]>
                {rows.into_iter().map(|c| view! {
                    <tr>
                        <td><code class="text-xs">{short(&c.sha)}</code></td>
                        <td class="text-sm">{c.repo}</td>
                        <td>{c.deployment}</td>
                        <td class="whitespace-nowrap">{c.committed_at.as_deref().map(when).unwrap_or_else(|| "unknown".into())}</td>
                        <td class="whitespace-nowrap">{when(&c.deployed_at)}</td>
                        <td class="text-right tabular-nums">{c.lead_seconds.map(duration).unwrap_or_else(|| "not counted".into())}</td>
                        <td class="text-sm">{c.reason}</td>
                    </tr>
                }).collect_view()}
            </Table>
        </div>
    }
    .into_any()
}

fn incidents_table(rows: Vec<IncidentView>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="text-sm text-slate-500">"No incidents opened in this window. Incidents arrive as GitHub issues with the incident label, GitLab incidents, or DevLake and generic incidents; name the cause (a commit or a deployment) to attribute them exactly."</p> }.into_any();
    }
    view! {
        <div class="overflow-x-auto">
            <Table testid="incidents" columns=vec![Col::text("Incident"), Col::text("Component"), Col::text("Opened"), Col::text("Resolved"), Col::numeric("Recovery"), Col::text("Blamed on"), Col::text("Why")]>
                {rows.into_iter().map(|i| view! {
                    <tr>
                        <td>
                            {match i.url.clone() {
                                Some(url) => view! { <crate::components::DataLink url label=i.title.clone() /> }.into_any(),
                                None => view! { <span>{i.title.clone()}</span> }.into_any(),
                            }}
                            " "<code class="text-xs">{i.key}</code>
                        </td>
                        <td>{i.component.rsplit('/').next().unwrap_or_default().to_owned()}</td>
                        <td class="whitespace-nowrap">{when(&i.created_at)}</td>
                        <td class="whitespace-nowrap">{i.resolved_at.as_deref().map(when).unwrap_or_else(|| "open".into())}</td>
                        <td class="text-right tabular-nums">{i.recovery_seconds.map(duration).unwrap_or_else(|| "—".into())}</td>
                        <td>{i.deployment.unwrap_or_else(|| "no deployment".into())}</td>
                        <td class="text-sm">{i.reason}</td>
                    </tr>
                }).collect_view()}
            </Table>
        </div>
    }
    .into_any()
}
