//! `/admin/access`: platform admins see everyone who has signed in, the
//! personal API tokens that still work, and stop a person's access at once
//! (disable) or one token (revoke).

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{
    format_time, loaded, refetch_on, Badge, Card, Col, EmptyState, ErrorView, PageHeader, Table,
    ToastRegion, Toasts, Tone,
};
use crate::error::AppError;
use paved_shared::identity::PersonAccess;

/// Everyone's access; platform admins only.
#[server(endpoint = "admin_access")]
pub async fn admin_access() -> Result<Vec<PersonAccess>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::tokens::access_overview(&core.db, &user).await?)
}

/// Disables (`disabled=true`) or re-enables a person; platform admins only.
/// Answers the state now in effect.
#[server(endpoint = "admin_set_disabled")]
pub async fn admin_set_disabled(user_id: i64, disabled: bool) -> Result<bool, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    paved_core::tokens::change_access(&core, &user, user_id, disabled).await?;
    Ok(disabled)
}

/// Revokes anyone's token; platform admins only.
#[server(endpoint = "admin_revoke_token")]
pub async fn admin_revoke_token(id: i64) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    paved_core::tokens::revoke_any(&core.db, &user, id).await?;
    Ok(())
}

/// `/admin/access`.
#[component]
pub fn AccessPage() -> impl IntoView {
    let initial = Resource::new(|| (), |_| admin_access());
    view! {
        <Title text="People and access" />
        <PageHeader title="People and access" subtitle="Everyone who has signed in, and the API tokens that still act for them. Disabling a person stops their sessions and tokens at once; signing in again does not bring them back until you enable them." />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading people…"</p> }>
            {move || Suspend::new(async move {
                loaded(initial.await, |initial| view! { <AccessManager initial /> })
            })}
        </Suspense>
    }
}

/// The list with its actions (an island).
#[island(lazy)]
fn AccessManager(initial: Vec<PersonAccess>) -> impl IntoView {
    let toasts = Toasts::default();
    provide_context(toasts);
    let set_disabled = ServerAction::<AdminSetDisabled>::new();
    let revoke = ServerAction::<AdminRevokeToken>::new();
    let people = RwSignal::new(initial);
    let load_error = RwSignal::new(None);
    refetch_on(
        move || set_disabled.version().get() + revoke.version().get(),
        admin_access,
        people,
        load_error,
    );
    Effect::new(move |_| {
        if let Some(Ok(disabled)) = set_disabled.value().get() {
            toasts.push(if disabled {
                "Disabled: their sessions and tokens stopped working."
            } else {
                "Enabled: they can sign in again."
            });
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = revoke.value().get() {
            toasts.push("Token revoked.");
        }
    });
    let action_error = move || {
        set_disabled
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| revoke.value().get().and_then(|r| r.err()))
    };
    view! {
        <Card>
            {move || action_error().map(|e| view! {
                <p role="alert" class="mb-3 text-sm text-red-600">{e.to_string()}</p>
            })}
            {move || match load_error.get() {
                Some(e) => view! { <ErrorView error=e /> }.into_any(),
                None => {
                    let list = people.get();
                    if list.is_empty() {
                        view! { <EmptyState title="Nobody has signed in yet" body="People appear here after their first sign-in through your identity provider." /> }.into_any()
                    } else {
                        view! { <PeopleTable list set_disabled revoke /> }.into_any()
                    }
                }
            }}
        </Card>
        <ToastRegion />
    }
}

#[component]
fn PeopleTable(
    list: Vec<PersonAccess>,
    set_disabled: ServerAction<AdminSetDisabled>,
    revoke: ServerAction<AdminRevokeToken>,
) -> impl IntoView {
    view! {
        <Table columns=vec![Col::text("Person"), Col::text("Last sign-in"), Col::text("API tokens that work"), Col::actions("Actions")]>
                    {list.into_iter().map(|PersonAccess { person: p, tokens }| {
                        let disabled = p.disabled_at.is_some();
                        let toggle_label = format!("{} {}", if disabled { "Enable" } else { "Disable" }, p.display_name);
                        view! {
                            <tr data-testid="person-row" data-subject=p.subject.clone()>
                                <td>
                                    <span class="font-medium">{p.display_name.clone()}</span>
                                    <span class="block text-xs text-slate-500">{p.subject.clone()}</span>
                                    {p.disabled_at.map(|at| view! { <Badge tone=Tone::Danger>{format!("disabled {}", format_time(at))}</Badge> })}
                                </td>
                                <td class="whitespace-nowrap">{p.last_login_at.map(format_time).unwrap_or_else(|| "never".into())}</td>
                                <td>
                                    {if tokens.is_empty() {
                                        view! { <span class="text-slate-500">"none"</span> }.into_any()
                                    } else {
                                        view! {
                                            <ul class="flex flex-col gap-1">
                                                {tokens.into_iter().map(|t| {
                                                    let label = format!("Revoke token {} of {}", t.name, p.display_name);
                                                    view! {
                                                        <li class="flex items-center gap-2" data-testid="person-token">
                                                            <span class="font-medium">{t.name}</span>
                                                            <code class="text-xs">{format!("{}…", t.prefix)}</code>
                                                            <span class="text-xs text-slate-500">{format!("expires {}", format_time(t.expires_at))}</span>
                                                            <ActionForm action=revoke>
                                                                <input type="hidden" name="id" value=t.id />
                                                                <button type="submit" class="btn-ghost text-xs text-red-700 dark:text-red-400" aria-label=label>"Revoke"</button>
                                                            </ActionForm>
                                                        </li>
                                                    }
                                                }).collect_view()}
                                            </ul>
                                        }.into_any()
                                    }}
                                </td>
                                <td class="text-right">
                                    <ActionForm action=set_disabled>
                                        <input type="hidden" name="user_id" value=p.id />
                                        <input type="hidden" name="disabled" value=(!disabled).to_string() />
                                        <button type="submit" class=if disabled { "btn-secondary" } else { "btn-danger" } aria-label=toggle_label>
                                            {if disabled { "Enable" } else { "Disable" }}
                                        </button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </Table>
    }
}
