//! The home page: what to do next, by role.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{loaded, Badge, Card, EmptyState, MeResource, PageHeader, Tone};
use crate::identity::{home_role, HomeRole, Principal, TeamRole};
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
        <div class="grid gap-4 md:grid-cols-2 lg:grid-cols-3">
            {next_steps(role, &me)}
        </div>
    }
    .into_any()
}

fn next_steps(role: HomeRole, me: &Principal) -> AnyView {
    let lead_team = me.led_teams().next().unwrap_or_default().to_owned();
    let budget_href = format!("/teams/{lead_team}/budget");
    let team_href = format!("/teams/{lead_team}");
    match role {
        HomeRole::Admin => view! {
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
