//! `/notifications`: what the scaffolder and other actions told the person,
//! their teams, or everyone; newest first, unread ones highlighted.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use paved_shared::notifications::{Notification, Severity};

use crate::components::{format_time, Badge, DataLink, EmptyState, ErrorView, PageHeader, Tone};
use crate::error::AppError;

/// The caller's notifications (their own, their teams', broadcasts).
#[server(endpoint = "notifications_list")]
pub async fn notifications_list() -> Result<Vec<Notification>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::notifications::list(&core.db, &user).await?)
}

/// How many of the caller's notifications are unread (for the menu).
#[server(endpoint = "notifications_unread")]
pub async fn notifications_unread() -> Result<usize, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::notifications::unread_count(&core.db, &user).await?)
}

/// Marks one notification read.
#[server(endpoint = "notifications_read")]
pub async fn notification_read(id: i64) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::notifications::mark_read(&core.db, &user, id).await?)
}

/// `/notifications`.
#[component]
pub fn NotificationsPage() -> impl IntoView {
    view! {
        <Title text="Notifications" />
        <PageHeader title="Notifications" subtitle="What Paved told you and your teams." />
        <NotificationList />
    }
}

/// The list, with "mark read" (an island).
#[island(lazy)]
fn NotificationList() -> impl IntoView {
    let read = ServerAction::<NotificationRead>::new();
    let list = Resource::new(move || read.version().get(), |_| notifications_list());
    view! {
        <Transition fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    Ok(items) if items.is_empty() => view! {
                        <EmptyState title="Nothing yet" body="When a golden path finishes, or a team you are on is told something, it shows here." />
                    }.into_any(),
                    Ok(items) => view! {
                        <ul class="flex flex-col gap-3" data-testid="notifications">
                            {items.into_iter().map(|n| {
                                let tone = match n.severity { Severity::Critical | Severity::High => Tone::Danger, Severity::Low => Tone::Neutral, Severity::Normal => Tone::Info };
                                let class = if n.read { "card opacity-70" } else { "card border-indigo-300 dark:border-indigo-700" };
                                view! {
                                    <li class=class data-testid="notification">
                                        <div class="flex flex-wrap items-center gap-2">
                                            <h2 class="font-medium">{n.title.clone()}</h2>
                                            <Badge tone>{n.severity.as_str()}</Badge>
                                            {(!n.read).then(|| view! { <Badge tone=Tone::Success>"new"</Badge> })}
                                            <span class="ml-auto text-xs text-slate-500">{format_time(n.created_at)}" · to "{n.recipient.clone()}</span>
                                        </div>
                                        {n.description.clone().map(|d| view! { <p class="mt-1 text-sm text-slate-700 dark:text-slate-300">{d}</p> })}
                                        <div class="mt-2 flex gap-3 text-sm">
                                            {n.link.clone().map(|l| view! { <DataLink url=l label="Open" /> })}
                                            {(!n.read).then(|| view! {
                                                <ActionForm action=read>
                                                    <input type="hidden" name="id" value=n.id />
                                                    <button type="submit" class="text-slate-600 hover:underline dark:text-slate-300">"Mark read"</button>
                                                </ActionForm>
                                            })}
                                        </div>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
