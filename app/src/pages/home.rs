//! The home page: what to do next, by role.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{HomeRole, Me};
use crate::components::{Badge, Card, EmptyState, ErrorView, MeResource, PageHeader, Tone};

/// The signed-in home page.
#[component]
pub fn HomePage() -> impl IntoView {
    let me = expect_context::<MeResource>();
    view! {
        <Title text="Home" />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(me) => view! { <Home me /> }.into_any(),
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Home(me: Me) -> impl IntoView {
    let role = me.home_role();
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
            {teams.into_iter().map(|m| {
                let tone = if m.role == "lead" { Tone::Success } else { Tone::Neutral };
                let label = format!("{} · {}", m.team, if m.role == "lead" { "lead" } else { "member" });
                view! { <a href=format!("/teams/{}", m.team) data-testid="home-team"><Badge tone>{label}</Badge></a> }
            }).collect_view()}
        </div>
        <div class="grid gap-4 md:grid-cols-2 lg:grid-cols-3">
            {next_steps(role, &me)}
        </div>
    }
    .into_any()
}

fn next_steps(role: HomeRole, me: &Me) -> AnyView {
    let lead_team = me.led_teams().next().unwrap_or_default().to_owned();
    let budget_text = format!("LLM spend budgets for team {lead_team} will be set here.");
    let team_href = format!("/teams/{lead_team}");
    match role {
        HomeRole::Admin => view! {
            <Card title="Templates and policies">
                <p class="text-sm text-slate-600 dark:text-slate-400">"Golden-path templates and Rego policies will be managed here."</p>
                <Badge tone=Tone::Warning>"Coming with the templates issue"</Badge>
            </Card>
            <Card title="Audit log">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Every change anyone makes, with before and after."</p>
                <a href="/admin/audit" class="btn-secondary">"Open the audit log"</a>
            </Card>
        }
        .into_any(),
        HomeRole::ProductManager => view! {
            <Card title="Review adoption and NPS">
                <p class="text-sm text-slate-600 dark:text-slate-400">"Adoption, NPS and DORA outcomes per team will appear here."</p>
                <Badge tone=Tone::Warning>"Coming with the outcomes issue"</Badge>
            </Card>
        }
        .into_any(),
        HomeRole::Lead => view! {
            <Card title="Set your team budget">
                <p class="text-sm text-slate-600 dark:text-slate-400">
                    {budget_text}
                </p>
                <Badge tone=Tone::Warning>"Coming with the budgets issue"</Badge>
            </Card>
            <Card title="Your team">
                <a href=team_href class="btn-secondary">"See members and roles"</a>
            </Card>
        }
        .into_any(),
        _ => view! {
            <Card title="Find or create a service">
                <p class="text-sm text-slate-600 dark:text-slate-400">"Search the catalog, or scaffold a new service from a golden path."</p>
                <Badge tone=Tone::Warning>"Coming with the catalog issue"</Badge>
            </Card>
            <Card title="Automate with the API">
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Create a personal API token for scripts and CI."</p>
                <a href="/profile" class="btn-secondary">"Manage API tokens"</a>
            </Card>
        }
        .into_any(),
    }
}
