//! The audit log, for platform admins.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::{format_time, loaded, Card, Col, EmptyState, PageHeader, Pager, Table};
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
                                        <Table columns=vec![Col::text("When"), Col::text("Who"), Col::text("Action"), Col::text("Target"), Col::text("Before → after")]>
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
                                                </Table>
                                        <Pager first=page.offset + 1 last=end total=page.total
                                            prev=prev.map(|o| format!("/admin/audit?offset={o}"))
                                            next=next.map(|o| format!("/admin/audit?offset={o}"))
                                            prev_label="Newer" next_label="Older" />
                                    }.into_any()
                                }}
                            </Card>
                        }.into_any()
                    })
            })}
        </Suspense>
    }
}
