//! A team's page: members and roles.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::catalog::locations::ProblemTable;
use crate::catalog::{ref_href, team_problems};
use crate::components::{loaded, Badge, Card, Col, EmptyState, PageHeader, Table, Tone};
use crate::identity::{team_detail, TeamRole};

/// `/teams/:name`.
#[component]
pub fn TeamPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
    let team = Resource::new(name, team_detail);
    let problems = Resource::new(name, team_problems);
    view! {
        <Title text=format!("Team {}", untrack(name)) />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading team…"</p> }>
            {move || Suspend::new(async move {
                loaded(team.await, |page| {
                        let (team, catalog_members, owns) = (page.team, page.catalog_members, page.owns);
                        let count = team.members.len();
                        let team_name = team.name.clone();
                        let budget_href = format!("/teams/{}/budget", team.name);
                        let outcomes_href = format!("/teams/{}/outcomes", team.name);
                        view! {
                            <PageHeader title=team.display_name.clone() subtitle=format!("Team {} · {count} member(s)", team.name)>
                                <a href=outcomes_href class="btn-secondary" data-testid="outcomes-link">"Outcomes"</a>
                                <a href=budget_href class="btn-secondary" data-testid="budget-link">"LLM budget"</a>
                            </PageHeader>
                            <Card title="Members">
                                {if team.members.is_empty() {
                                    view! {
                                        <EmptyState title="No members yet" body="People join when they sign in with a group mapped to this team." />
                                    }.into_any()
                                } else {
                                    view! {
                                        <Table columns=vec![Col::text("Name"), Col::text("E-mail"), Col::text("Role")]>
                                                    {team.members.into_iter().map(|m| {
                                                        let tone = if m.role == TeamRole::Lead { Tone::Success } else { Tone::Neutral };
                                                        view! {
                                                            <tr>
                                                                <td class="font-medium">{m.display_name}</td>
                                                                <td>{m.email.unwrap_or_default()}</td>
                                                                <td><Badge tone>{m.role.as_str()}</Badge></td>
                                                            </tr>
                                                        }
                                                    }).collect_view()}
                                                </Table>
                                    }.into_any()
                                }}
                            </Card>
                            <div class="mt-6 grid gap-4 md:grid-cols-2">
                                <Card title="In the catalog">
                                    {match catalog_members.clone() {
                                        None => view! {
                                            <EmptyState title="No catalog Group for this team yet" body=format!("Add a Group entity named {} to a catalog-info.yaml file; its entities then show here.", team.name) />
                                        }.into_any(),
                                        Some(members) => {
                                            let group_href = ref_href(&format!("group:default/{}", team.name));
                                            view! {
                                                <p class="mb-2 text-sm"><a href=group_href class="text-indigo-700 hover:underline dark:text-indigo-300">"Open the team's catalog Group"</a></p>
                                                <h3 class="text-sm font-semibold">{format!("Owns {} entities", owns.len())}</h3>
                                                <ul class="mb-3 flex flex-wrap gap-x-3 gap-y-1 text-sm" data-testid="team-owns">
                                                    {owns.iter().map(|r| { let href = ref_href(r); view! { <li><a href=href class="hover:underline">{r.clone()}</a></li> } }).collect_view()}
                                                </ul>
                                                <h3 class="text-sm font-semibold">"Members per the catalog"</h3>
                                                <ul class="flex flex-wrap gap-x-3 gap-y-1 text-sm">
                                                    {members.into_iter().map(|r| { let href = ref_href(&r); view! { <li><a href=href class="hover:underline">{r}</a></li> } }).collect_view()}
                                                </ul>
                                            }.into_any()
                                        }
                                    }}
                                </Card>
                                <crate::secrets::SecretsSection team=team_name.clone() holder=crate::secrets::TEAM_HOLDER title="Team secrets"
                                    intro="Shared by every service of the team: each service's Vault role can read them." />
                                <crate::secrets::SecretsSection team=team_name.clone() holder=crate::secrets::LLM_HOLDER title="LLM provider keys"
                                    intro="The team's own provider keys for the platform LLM gateway (team leads set them). Without them the gateway uses the platform's keys." />
                                <crate::kube::TeamRuntimeCard team=team_name.clone() />
                                <Card title="Catalog problems">
                                    <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"What went wrong reading the catalog files of entities this team owns, so you can fix them."</p>
                                    <Suspense fallback=|| ()>
                                        {move || Suspend::new(async move {
                                            match problems.await {
                                                Ok(list) => view! { <ProblemTable problems=list /> }.into_any(),
                                                Err(e) => view! { <p role="alert" class="text-sm text-red-600">{e.to_string()}</p> }.into_any(),
                                            }
                                        })}
                                    </Suspense>
                                </Card>
                            </div>
                        }.into_any()
                    })
            })}
        </Suspense>
    }
}
