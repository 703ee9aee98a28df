//! `/admin/integrations`: the git hosts Paved reads from and publishes to,
//! their rate limits as the hosts last reported them, and a connection test.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{
    format_time, loaded, Badge, Card, Col, EmptyState, PageHeader, Table, Tone,
};
use crate::error::AppError;
use paved_shared::catalog::{ConnectionCheck, IntegrationView};

/// Every configured git host; platform admins only.
#[server(endpoint = "integrations_overview")]
pub async fn integrations_overview() -> Result<Vec<IntegrationView>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::integrations::page::overview(&core, &user).await?)
}

/// Asks `host` whether it accepts Paved's credential; platform admins only.
#[server(endpoint = "integration_test")]
pub async fn integration_test(host: String) -> Result<ConnectionCheck, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::integrations::page::test_connection(&core, &user, &host).await?)
}

/// `/admin/integrations`.
#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let list = Resource::new(|| (), |_| integrations_overview());
    view! {
        <Title text="Git hosts" />
        <PageHeader title="Git hosts" subtitle="Where catalog files, template skeletons and new repositories live. Credentials stay in Vault; this page shows only where." />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading git hosts…"</p> }>
            {move || Suspend::new(async move {
                loaded(list.await, |list| {
                    if list.is_empty() {
                        view! {
                            <Card>
                                <EmptyState title="No git hosts are configured" body="List GitHub, GitLab, Bitbucket, Azure DevOps or Gitea hosts in the YAML file that PAVED_INTEGRATIONS names, with each credential's path in Vault (see the README's Git hosts section), then restart Paved." />
                            </Card>
                        }
                        .into_any()
                    } else {
                        view! { <Card><IntegrationsTable list /></Card> }.into_any()
                    }
                })
            })}
        </Suspense>
    }
}

fn rate(i: &IntegrationView) -> String {
    match (i.limited_until, i.rate_remaining, i.rate_limit) {
        (Some(until), _, _) => format!("rate-limited until {}", format_time(until)),
        (None, Some(left), Some(of)) => format!(
            "{left} of {of} left{}",
            i.rate_reset_at
                .map(|r| format!(", resets {}", format_time(r)))
                .unwrap_or_default()
        ),
        _ => "not asked yet".to_owned(),
    }
}

#[component]
fn IntegrationsTable(list: Vec<IntegrationView>) -> impl IntoView {
    view! {
        <Table testid="integrations" columns=vec![Col::text("Host"), Col::text("Credential"), Col::text("Rate limit"), Col::numeric("Locations"), Col::actions("Test")]>
            {list.into_iter().map(|i| {
                let limited = i.limited_until.is_some();
                let rate_text = rate(&i);
                let expiry = i.clone();
                view! {
                    <tr data-testid="integration-row">
                        <td>
                            <span class="font-medium">{i.host.clone()}</span>
                            " " <Badge>{i.kind.clone()}</Badge>
                            <span class="block text-xs text-slate-500">{i.api_base_url.clone()}</span>
                        </td>
                        <td class="text-sm">
                            {i.credential.clone()}
                            <CredentialExpiry view=expiry />
                        </td>
                        <td class="text-sm">
                            {if limited {
                                view! { <Badge tone=Tone::Warning>{rate_text}</Badge> }.into_any()
                            } else {
                                view! { <span>{rate_text}</span> }.into_any()
                            }}
                        </td>
                        <td class="text-right">{i.locations}</td>
                        <td><TestConnection host=i.host.clone() /></td>
                    </tr>
                }
            }).collect_view()}
        </Table>
    }
}

/// When the credential expires, as the host said; a warning within 14 days.
#[component]
fn CredentialExpiry(view: IntegrationView) -> impl IntoView {
    match (view.token_expires_at, view.token_renewed) {
        (Some(at), true) => view! {
            <span class="block text-xs text-slate-500" data-testid="token-expiry">
                {format!("Installation token renewed automatically (current one until {})", format_time(at))}
            </span>
        }
        .into_any(),
        (Some(at), false) if view.token_expires_soon => view! {
            <span class="block" data-testid="token-expiry">
                <Badge tone=Tone::Warning>{format!("Token expires {}: replace it in Vault", format_time(at))}</Badge>
            </span>
        }
        .into_any(),
        (Some(at), false) => view! {
            <span class="block text-xs text-slate-500" data-testid="token-expiry">
                {format!("Token expires {}", format_time(at))}
            </span>
        }
        .into_any(),
        (None, _) => ().into_any(),
    }
}

/// The "Test connection" button and its answer (an island).
#[island(lazy)]
fn TestConnection(host: String) -> impl IntoView {
    let test = ServerAction::<IntegrationTest>::new();
    let label = format!("Test connection to {host}");
    let run_host = host.clone();
    view! {
        <div class="flex flex-col items-start gap-1">
            <button
                type="button"
                class="btn-secondary"
                aria-label=label
                disabled=move || test.pending().get()
                on:click=move |_| {
                    test.dispatch(IntegrationTest { host: run_host.clone() });
                }
            >
                {move || if test.pending().get() { "Testing…" } else { "Test connection" }}
            </button>
            <p role="status" class="text-xs" data-testid="connection-result">
                {move || match test.value().get() {
                    Some(Ok(check)) => view! {
                        <span class=if check.ok { "text-emerald-700 dark:text-emerald-400" } else { "text-red-600 dark:text-red-400" }>
                            {check.message}
                        </span>
                    }.into_any(),
                    Some(Err(e)) => view! { <span class="text-red-600">{e.to_string()}</span> }.into_any(),
                    None => view! { <span></span> }.into_any(),
                }}
            </p>
        </div>
    }
}
