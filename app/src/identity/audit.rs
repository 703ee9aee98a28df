//! The audit log, for platform admins.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::{format_time, loaded, Card, EmptyState, PageHeader};
use crate::identity::audit_log;

/// `/admin/audit?offset=N`.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let offset = move || {
        query.with(|q| {
            q.get("offset")
                .and_then(|o| o.parse::<i64>().ok())
                .unwrap_or(0)
        })
    };
    let page = Resource::new(offset, audit_log);
    view! {
        <Title text="Audit log" />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading the audit log…"</p> }>
            {move || Suspend::new(async move {
                loaded(page.await, |page| {
                        let end = (page.offset + page.entries.len() as i64).min(page.total);
                        let prev = (page.offset > 0).then(|| (page.offset - page.limit).max(0));
                        let next = (end < page.total).then_some(end);
                        view! {
                            <PageHeader title="Audit log" subtitle="Every change, who made it, and what it was before and after." />
                            <Card>
                                {if page.entries.is_empty() {
                                    view! { <EmptyState title="Nothing has changed yet" body="Sign-ins that change memberships, and every change made in Paved, appear here." /> }.into_any()
                                } else {
                                    view! {
                                        <div class="overflow-x-auto">
                                            <table class="table">
                                                <thead><tr>
                                                    <th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"Action"</th>
                                                    <th scope="col">"Target"</th><th scope="col">"Before → after"</th>
                                                </tr></thead>
                                                <tbody>
                                                    {page.entries.into_iter().map(|r| view! {
                                                        <tr>
                                                            <td class="whitespace-nowrap">{format_time(r.at)}</td>
                                                            <td>{r.actor}</td>
                                                            <td><code class="text-xs">{r.action}</code></td>
                                                            <td>{r.target}</td>
                                                            <td class="max-w-md text-xs">
                                                                <code class="break-all">{r.before.unwrap_or_else(|| "—".into())}</code>
                                                                " → "
                                                                <code class="break-all">{r.after.unwrap_or_else(|| "—".into())}</code>
                                                            </td>
                                                        </tr>
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                        </div>
                                        <nav aria-label="Pages" class="mt-4 flex items-center justify-between text-sm">
                                            <span>{format!("{}–{} of {}", page.offset + 1, end, page.total)}</span>
                                            <span class="flex gap-2">
                                                {prev.map(|o| view! { <a class="btn-secondary" href=format!("/admin/audit?offset={o}")>"Newer"</a> })}
                                                {next.map(|o| view! { <a class="btn-secondary" href=format!("/admin/audit?offset={o}")>"Older"</a> })}
                                            </span>
                                        </nav>
                                    }.into_any()
                                }}
                            </Card>
                        }.into_any()
                    })
            })}
        </Suspense>
    }
}
