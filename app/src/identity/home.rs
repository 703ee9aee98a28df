//! The home page: what to do next, by role.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{loaded, Badge, Card, EmptyState, MeResource, PageHeader, Tone};
use crate::identity::{home_role, HomeRole, Principal, TeamRole};
use crate::outcomes::platform::{LeadCard, PlatformHomeBody};
use crate::outcomes::surveys::SurveyPromptCard;

/// The signed-in home page.
#[component]
pub fn HomePage() -> impl IntoView {
    let me = expect_context::<MeResource>();
    view! {
        <Title text="Home" />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                loaded(me.await, |me| view! { <Home me /> })
            })}
        </Suspense>
    }
}

#[component]
fn Home(me: Principal) -> impl IntoView {
    let role = home_role(&me);
    if role == HomeRole::Unassigned {
        return view! {
            <div class="mx-auto max-w-xl py-12" data-testid="home-unassigned">
                <EmptyState
                    title="You're signed in, but not on a team yet"
                    body="Ask your platform team to add you to your team's group in the identity provider. Once they have, sign out and in again."
                />
            </div>
        }
        .into_any();
    }
    let first_name = me
        .display_name
        .split_whitespace()
        .next()
        .unwrap_or("there")
        .to_owned();
    let (role_label, subtitle) = match role {
        HomeRole::Admin => (
            "Platform admin",
            "Own the golden paths and the rules every service is checked against.",
        ),
        HomeRole::ProductManager => (
            "Platform PM",
            "See whether the platform is working for the teams that use it.",
        ),
        HomeRole::Lead => (
            "Team lead",
            "Keep your team's LLM spend on budget and its services healthy.",
        ),
        _ => (
            "Developer",
            "Find what exists, or start a new service on a golden path.",
        ),
    };
    let teams = me.teams.clone();
    view! {
        <PageHeader title=format!("Hi {first_name}") subtitle=subtitle />
        <div class="mb-6 flex flex-wrap items-center gap-2" data-testid="home-role">
            <Badge tone=Tone::Info>{role_label}</Badge>
            {teams.into_iter().map(|(team, role)| {
                let tone = if role == TeamRole::Lead { Tone::Success } else { Tone::Neutral };
                let label = format!("{team} · {}", role.as_str());
                view! { <a href=format!("/teams/{team}") data-testid="home-team"><Badge tone>{label}</Badge></a> }
            }).collect_view()}
        </div>
        <SurveyPromptCard />
        {match role {
            HomeRole::ProductManager => view! { <PlatformHomeBody base="/" /> }.into_any(),
            HomeRole::Admin => view! {
                <div class="grid gap-4 md:grid-cols-2 lg:grid-cols-3">{next_steps(role, &me)}</div>
                <h2 class="mb-3 mt-8 text-lg font-semibold">"The platform at a glance"</h2>
                <PlatformHomeBody base="/" />
            }.into_any(),
            _ => view! {
                <div class="mb-6 grid gap-4 md:grid-cols-2 lg:grid-cols-3">
                    <MyTasks />
                    {me.teams.iter().filter(|(_, r)| **r == TeamRole::Lead).map(|(team, _)| view! { <LeadCard team=team.clone() /> }).collect_view()}
                    {me.teams.keys().cloned().map(|team| view! { <TeamGlance team /> }).collect_view()}
                    <Unread />
                </div>
                <div class="grid gap-4 md:grid-cols-2 lg:grid-cols-3">{next_steps(role, &me)}</div>
            }.into_any(),
        }}
    }
    .into_any()
}

/// The person's recent golden-path runs.
#[component]
fn MyTasks() -> impl IntoView {
    let tasks = Resource::new(|| (), |_| crate::scaffold::scaffold_my_tasks());
    view! {
        <Card title="Your recent runs">
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match tasks.await {
                        Ok(list) if !list.is_empty() => view! {
                            <ul class="flex flex-col gap-1 text-sm" data-testid="home-tasks">
                                {list.into_iter().take(5).map(|t| {
                                    let tone = match t.status.as_str() {
                                        "completed" => Tone::Success,
                                        "failed" => Tone::Danger,
                                        "open" | "processing" => Tone::Info,
                                        _ => Tone::Neutral,
                                    };
                                    view! {
                                        <li class="flex items-center justify-between gap-2">
                                            <a class="link truncate" href=format!("/create/tasks/{}", t.id)>{t.template_title}</a>
                                            <Badge tone>{t.status.as_str()}</Badge>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        _ => view! {
                            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Nothing run yet: a golden path creates the repository, catalog entry and secrets in one go."</p>
                            <a href="/create" class="btn-secondary">"Choose a golden path"</a>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Card>
    }
}

/// One of the person's teams: catalog problems and where its outcomes are.
#[component]
fn TeamGlance(team: String) -> impl IntoView {
    let name = team.clone();
    let problems = Resource::new(move || name.clone(), crate::catalog::team_problems);
    let outcomes = format!("/teams/{team}/outcomes");
    let page = format!("/teams/{team}");
    view! {
        <Card title=format!("Team {team}")>
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                {move || Suspend::new({
                    let page = page.clone();
                    async move {
                        match problems.await {
                            Ok(p) if !p.is_empty() => view! {
                                <p class="mb-2 text-sm" data-testid="home-problems"><Badge tone=Tone::Warning>{format!("{} catalog problems", p.len())}</Badge></p>
                                <a class="link text-sm" href=page>"See what to fix"</a>
                            }.into_any(),
                            Ok(_) => view! { <p class="mb-2 text-sm text-slate-600 dark:text-slate-400">"Every catalog entry the team owns reads cleanly."</p> }.into_any(),
                            Err(_) => view! { <p class="mb-2 text-sm text-slate-500">"Catalog problems could not be read just now."</p> }.into_any(),
                        }
                    }
                })}
            </Suspense>
            <a class="btn-secondary mt-2" href=outcomes>"Delivery outcomes"</a>
        </Card>
    }
}

/// Unread notifications, with the way to them.
#[component]
fn Unread() -> impl IntoView {
    let unread = Resource::new(|| (), |_| crate::notifications::notifications_unread());
    view! {
        <Card title="Notifications">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let n = unread.await.unwrap_or(0);
                    let text = match n {
                        0 => "You're all caught up.".to_owned(),
                        1 => "1 unread notification.".to_owned(),
                        n => format!("{n} unread notifications."),
                    };
                    view! { <p class="mb-3 text-sm text-slate-600 dark:text-slate-400" data-testid="home-unread">{text}</p> }
                })}
            </Suspense>
            <a href="/notifications" class="btn-secondary">"Open notifications"</a>
        </Card>
    }
}

fn next_steps(role: HomeRole, me: &Principal) -> AnyView {
    let lead_team = me.led_teams().next().unwrap_or_default().to_owned();
    let budget_href = format!("/teams/{lead_team}/budget");
    let team_href = format!("/teams/{lead_team}");
    match role {
        HomeRole::Admin => view! {
            <Card title="Platform capabilities">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Every golden path, model route and platform service with its owner, SLOs and error budget."</p>
                <a href="/capabilities" class="btn-secondary">"Open capabilities"</a>
            </Card>
            <Card title="Golden paths">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"The templates teams start services from, and where the catalog reads them."</p>
                <a href="/catalog/locations" class="btn-secondary">"Manage catalog locations"</a>
            </Card>
            <Card title="Access">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Who can sign in, and the API tokens that still work."</p>
                <a href="/admin/access" class="btn-secondary">"Review access"</a>
            </Card>
            <Card title="Audit log">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Every change anyone makes, with before and after."</p>
                <a href="/admin/audit" class="btn-secondary">"Open the audit log"</a>
            </Card>
        }
        .into_any(),
        HomeRole::ProductManager => view! {
            <Card title="LLM spend across teams">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Every team's budget this period, the prices the gateway bills at, and upstream health."</p>
                <a href="/llm" class="btn-secondary">"Open the LLM gateway overview"</a>
            </Card>
            <Card title="What teams have built">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Every service, API and resource, with its owner and lifecycle."</p>
                <a href="/catalog" class="btn-secondary">"Browse the catalog"</a>
            </Card>
        }
        .into_any(),
        HomeRole::Lead => view! {
            <Card title="Your team's LLM budget">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">{format!("Set the limit that keeps team {lead_team}'s LLM spend in check, and see where it goes.")}</p>
                <a href=budget_href class="btn-secondary">"Open the budget"</a>
            </Card>
            <Card title="Your team">
                <a href=team_href class="btn-secondary">"See members and roles"</a>
            </Card>
            <Card title="Start a new service">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Scaffold a repository, catalog entry and secrets from a golden path."</p>
                <a href="/create" class="btn-secondary">"Choose a golden path"</a>
            </Card>
        }
        .into_any(),
        _ => view! {
            <Card title="Find or create a service">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Search the catalog, or scaffold a new service from a golden path."</p>
                <div class="flex flex-wrap gap-2">
                    <a href="/catalog" class="btn-secondary">"Search the catalog"</a>
                    <a href="/create" class="btn-secondary">"Create a service"</a>
                </div>
            </Card>
            <Card title="Automate with the API">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Create a personal API token for scripts and CI."</p>
                <a href="/profile" class="btn-secondary">"Manage API tokens"</a>
            </Card>
        }
        .into_any(),
    }
}
