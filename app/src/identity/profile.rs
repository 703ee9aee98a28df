//! The profile page: who you are, and your personal API tokens.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{
    format_time, loaded, refetch_on, Badge, Card, Col, EmptyState, ErrorView, Field, MeResource,
    PageHeader, Table, ToastRegion, Toasts, Tone,
};
use crate::identity::{list_tokens, CreateToken, RevokeToken, TokenInfo};

/// `/profile`.
#[component]
pub fn ProfilePage() -> impl IntoView {
    let me = expect_context::<MeResource>();
    let initial = Resource::new(|| (), |_| list_tokens());
    view! {
        <Title text="Profile" />
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                me.await.ok().map(|me| view! {
                    <PageHeader title=me.display_name.clone() subtitle=me.email.clone().unwrap_or_default() />
                })
            })}
        </Suspense>
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading tokens…"</p> }>
            {move || Suspend::new(async move {
                loaded(initial.await, |initial| view! { <TokenManager initial /> })
            })}
        </Suspense>
    }
}

/// Creating, listing and revoking personal API tokens (an island).
#[island(lazy)]
fn TokenManager(initial: Vec<TokenInfo>) -> impl IntoView {
    let toasts = Toasts::default();
    provide_context(toasts);
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = RwSignal::new(initial);
    let load_error = RwSignal::new(None);
    refetch_on(
        move || create.version().get() + revoke.version().get(),
        list_tokens,
        tokens,
        load_error,
    );
    Effect::new(move |_| {
        if let Some(Ok(t)) = create.value().get() {
            toasts.push(format!(
                "Token “{}” created. Copy it now: it will not be shown again.",
                t.name
            ));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = revoke.value().get() {
            toasts.push("Token revoked.");
        }
    });
    let days_error = Signal::derive(move || {
        create
            .value()
            .get()
            .and_then(|r| r.err())
            .and_then(|e| e.field_message("days"))
    });
    let name_error = Signal::derive(move || {
        create
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.field_message("name").unwrap_or_else(|| e.to_string()))
    });

    view! {
        <div class="grid gap-6 lg:grid-cols-3">
            <Card title="New API token" class="lg:col-span-1">
                <p class="mb-4 text-sm text-slate-600 dark:text-slate-400">
                    "For scripts and CI: send it as " <code>"Authorization: Bearer <token>"</code> ". It acts as you."
                </p>
                <ActionForm action=create>
                    <div class="flex flex-col gap-3">
                        <Field label="Token name" id="token-name" error=name_error help="For example: laptop, github-actions">
                            <input id="token-name" name="name" class="input" required maxlength="80"
                                aria-describedby="token-name-error" autocomplete="off"
                                aria-invalid=move || name_error.get().is_some().to_string() />
                        </Field>
                        <Field label="Expires after" id="token-days" error=days_error help="It stops working then, or sooner if you have not signed in to Paved for a month.">
                            <select id="token-days" name="days" class="input">
                                <option value="7">"7 days"</option>
                                <option value="30">"30 days"</option>
                                <option value="90" selected>"90 days"</option>
                                <option value="180">"180 days"</option>
                                <option value="365">"1 year"</option>
                            </select>
                        </Field>
                        <button type="submit" class="btn-primary" disabled=move || create.pending().get()>
                            {move || if create.pending().get() { "Creating…" } else { "Create token" }}
                        </button>
                    </div>
                </ActionForm>
                {move || create.value().get().and_then(|r| r.ok()).map(|t| view! {
                    <div class="alert-success mt-4" data-testid="new-token">
                        <p class="text-sm font-medium">"Copy your new token now. It will not be shown again."</p>
                        <p class="text-xs" data-testid="new-token-expiry">{format!("It expires {}.", format_time(t.expires_at))}</p>
                        <code class="mt-2 block break-all rounded bg-white/70 p-2 text-xs dark:bg-black/30">{t.value}</code>
                    </div>
                })}
            </Card>
            <Card title="Your API tokens" class="lg:col-span-2">
                {move || match load_error.get() {
                    Some(e) => view! { <ErrorView error=e /> }.into_any(),
                    None => {
                        let list = tokens.get();
                        if list.is_empty() {
                            view! {
                                <EmptyState title="No API tokens yet" body="Create one with the form on this page to call Paved's API from scripts or CI." />
                            }.into_any()
                        } else {
                            view! { <TokenTable list revoke /> }.into_any()
                        }
                    }
                }}
            </Card>
        </div>
        <ToastRegion />
    }
}

#[component]
fn TokenTable(list: Vec<TokenInfo>, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    view! {
        <Table columns=vec![Col::text("Name"), Col::text("Token"), Col::text("Created"), Col::text("Last used"), Col::text("Expires"), Col::actions("Actions")]>
                    {list.into_iter().map(|t| {
                        let active = t.revoked_at.is_none();
                        let label = format!("Revoke token {}", t.name);
                        view! {
                            <tr data-testid="token-row">
                                <td class="font-medium">{t.name.clone()}</td>
                                <td><code class="text-xs">{format!("{}…", t.prefix)}</code></td>
                                <td class="whitespace-nowrap">{format_time(t.created_at)}</td>
                                <td class="whitespace-nowrap">{t.last_used_at.map(format_time).unwrap_or_else(|| "never".into())}</td>
                                <td class="whitespace-nowrap">{format_time(t.expires_at)}</td>
                                <td class="text-right">
                                    {if active {
                                        view! {
                                            <ActionForm action=revoke>
                                                <input type="hidden" name="id" value=t.id />
                                                <button type="submit" class="btn-danger" aria-label=label>"Revoke"</button>
                                            </ActionForm>
                                        }.into_any()
                                    } else {
                                        view! { <Badge tone=Tone::Neutral>"revoked"</Badge> }.into_any()
                                    }}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </Table>
        {move || revoke.value().get().and_then(|r| r.err()).map(|e| view! {
            <p role="alert" class="mt-2 text-sm text-red-600">{e.to_string()}</p>
        })}
    }
}
