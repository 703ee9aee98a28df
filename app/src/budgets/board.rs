//! The Budget page's islands: the spend chart with the limit line and the
//! editor (leads), workspace budgets, gateway keys, and the admins' price table.

use leptos::prelude::*;

use paved_shared::budgets::{
    parse_limit_dollars as parse_dollars, parse_per_minute as parse_optional,
    BudgetBoard as BoardData, GatewayKeyInfo, Period,
};

use super::{
    bar_colour, cents_from_nanocents, dollars, dollars_f, BudgetForm, BudgetView, CreateGatewayKey,
    OnLimit, PriceLine, RevokeGatewayKey, SaveBudget, SavePrice, SaveWorkspaceBudget,
};
use crate::components::{format_time, Badge, Col, Table, Tone};

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// The effect of a budget in one sentence, for the confirmation.
pub fn effect(form: &BudgetForm) -> String {
    let limit = dollars(form.limit_cents);
    let alert_at = dollars(form.limit_cents * form.soft_alert_percent / 100);
    let per = form.period.per();
    if form.on_limit == OnLimit::Block {
        format!(
            "Blocks new requests once spend reaches {limit} {per}; alerts the team at {}% ({alert_at}).",
            form.soft_alert_percent
        )
    } else {
        format!(
            "Never blocks: requests continue past {limit} {per}; alerts the team at {}% ({alert_at}).",
            form.soft_alert_percent
        )
    }
}

/// The axis maximum: the next 1, 2, 2.5 or 5 × 10ⁿ at or above `v`, so the
/// scale stays put while the limit line moves within it.
fn nice_ceiling(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.max(1.0).log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

#[component]
fn Chart(data: StoredValue<BoardData>, budget: RwSignal<Option<BudgetView>>) -> impl IntoView {
    let geometry = move || {
        let d = data.get_value();
        let days = d.days.len().max(1);
        let mut cumulative = Vec::with_capacity(days);
        let mut running = 0.0;
        for (i, p) in d.days.iter().enumerate() {
            if i <= d.today {
                running += p.cost_cents;
            }
            cumulative.push(running);
        }
        let limit = budget.get().map_or(0.0, |b| b.limit_cents as f64);
        let max_day = d.days.iter().map(|p| p.cost_cents).fold(0.0, f64::max);
        let top = nice_ceiling(
            [limit, d.projected_cents, running, max_day, 100.0]
                .into_iter()
                .fold(0.0, f64::max)
                * 1.1,
        );
        (d, days, cumulative, limit, top, running)
    };
    let x = move |i: f64, days: usize| LEFT + (W - LEFT - RIGHT) * (i / days as f64);
    let y = move |v: f64, top: f64| TOP + (H - TOP - BOTTOM) * (1.0 - v / top);
    view! {
        {move || {
            let (d, days, cumulative, limit, top, spent) = geometry();
            let bar_w = ((W - LEFT - RIGHT) / days as f64 * 0.7).max(1.0);
            let bars = d.days.iter().enumerate().map(|(i, p)| {
                let h = (H - TOP - BOTTOM) * (p.cost_cents / top);
                view! {
                    <rect x=x(i as f64 + 0.15, days) y=y(p.cost_cents, top) width=bar_w height=h.max(0.0)
                        class="fill-indigo-300 dark:fill-indigo-700"><title>{format!("{}: {}", p.day, dollars_f(p.cost_cents))}</title></rect>
                }
            }).collect_view();
            let line: String = cumulative.iter().enumerate().take(d.today + 1)
                .map(|(i, v)| format!("{:.1},{:.1}", x(i as f64 + 1.0, days), y(*v, top)))
                .collect::<Vec<_>>().join(" ");
            let projection = format!(
                "M{:.1},{:.1} L{:.1},{:.1}",
                x(d.today as f64 + 1.0, days), y(spent, top), x(days as f64, days), y(d.projected_cents, top)
            );
            let limit_y = y(limit, top);
            let first = d.days.first().map(|p| p.day.clone()).unwrap_or_default();
            let last = d.days.last().map(|p| p.day.clone()).unwrap_or_default();
            let label = format!(
                "Spend this period: {} so far, projected {} by the end; limit {}.",
                dollars_f(spent), dollars_f(d.projected_cents), dollars(limit as i64)
            );
            let aria = label.clone();
            view! {
                <svg viewBox=format!("0 0 {W} {H}") class="h-auto w-full" role="img" aria-label=aria data-testid="spend-chart">
                    <title>{label}</title>
                    <line x1=LEFT y1=H - BOTTOM x2=W - RIGHT y2=H - BOTTOM class="stroke-slate-300 dark:stroke-slate-700" />
                    <text x=LEFT - 6.0 y=TOP + 4.0 text-anchor="end" class="fill-slate-500 text-[10px]">{dollars(top as i64)}</text>
                    <text x=LEFT - 6.0 y=H - BOTTOM text-anchor="end" class="fill-slate-500 text-[10px]">"$0"</text>
                    <text x=LEFT y=H - 8.0 class="fill-slate-500 text-[10px]">{first}</text>
                    <text x=W - RIGHT y=H - 8.0 text-anchor="end" class="fill-slate-500 text-[10px]">{last}</text>
                    {bars}
                    <polyline points=line fill="none" stroke-width="2" class="stroke-indigo-600 dark:stroke-indigo-400" />
                    <path d=projection fill="none" stroke-width="2" stroke-dasharray="5 4" class="stroke-indigo-400" data-testid="projection" />
                    {(limit > 0.0).then(|| view! {
                        <g data-testid="limit-line" data-limit-cents=limit as i64 data-y=format!("{limit_y:.1}")>
                            <line x1=LEFT y1=limit_y x2=W - RIGHT y2=limit_y stroke-width="2" stroke-dasharray="6 3" class="stroke-red-500" />
                            <text x=W - RIGHT y=limit_y - 4.0 text-anchor="end" class="fill-red-600 text-[11px] dark:fill-red-400">{format!("Limit {}", dollars(limit as i64))}</text>
                        </g>
                    })}
                </svg>
                <p class="mt-1 flex flex-wrap gap-x-4 text-xs text-slate-500">
                    <span>"Bars: spend per day"</span><span>"Line: spend so far"</span><span>"Dashed: projected to the end of the period"</span><span class="text-red-600 dark:text-red-400">"Red: the limit"</span>
                </p>
            }
        }}
    }
}

/// Spend against the limit, the chart, and (for leads) the editor.
#[island(lazy)]
pub fn BudgetBoard(data: BoardData) -> impl IntoView {
    let team = StoredValue::new(data.team.clone());
    let can_edit = data.can_edit;
    let priced = StoredValue::new(data.priced_models.clone());
    let budget = RwSignal::new(data.budget.clone());
    let projected = data.projected_cents;
    let data = StoredValue::new(data);

    // The form, seeded from the budget (or sensible defaults for a first one).
    let seed = budget.get_untracked();
    let period = RwSignal::new(seed.as_ref().map_or(Period::Monthly, |b| b.period));
    let limit = RwSignal::new(seed.as_ref().map_or(String::new(), |b| {
        format!("{}.{:02}", b.limit_cents / 100, b.limit_cents % 100)
    }));
    let soft = RwSignal::new(
        seed.as_ref()
            .map_or("80".to_owned(), |b| b.soft_alert_percent.to_string()),
    );
    let on_limit = RwSignal::new(seed.as_ref().map_or(OnLimit::Block, |b| b.on_limit));
    let models = RwSignal::new(
        seed.as_ref()
            .map(|b| b.allowed_models.clone())
            .unwrap_or_default(),
    );
    let rpm = RwSignal::new(
        seed.as_ref()
            .and_then(|b| b.rpm_limit)
            .map(|n| n.to_string())
            .unwrap_or_default(),
    );
    let tpm = RwSignal::new(
        seed.as_ref()
            .and_then(|b| b.tpm_limit)
            .map(|n| n.to_string())
            .unwrap_or_default(),
    );
    let confirming: RwSignal<Option<BudgetForm>> = RwSignal::new(None);
    let saved_note = RwSignal::new(None::<String>);

    let limit_error = move || {
        let raw = limit.get();
        if raw.trim().is_empty() {
            Some("Enter the limit per period.".to_owned())
        } else {
            parse_dollars(&raw).err()
        }
    };
    let soft_error = move || match soft.get().trim().parse::<i64>() {
        Ok(n) if (1..=100).contains(&n) => None,
        _ => Some("A percentage from 1 to 100.".to_owned()),
    };
    let rpm_error = move || parse_optional(&rpm.get(), "Requests per minute").err();
    let tpm_error = move || parse_optional(&tpm.get(), "Tokens per minute").err();
    let form = move || -> Option<BudgetForm> {
        Some(BudgetForm {
            period: period.get(),
            limit_cents: parse_dollars(&limit.get()).ok()?,
            soft_alert_percent: soft
                .get()
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=100).contains(n))?,
            on_limit: on_limit.get(),
            allowed_models: models.get(),
            rpm_limit: parse_optional(&rpm.get(), "").ok()?,
            tpm_limit: parse_optional(&tpm.get(), "").ok()?,
            version: budget.get().map_or(0, |b| b.version),
        })
    };

    let save = ServerAction::<SaveBudget>::new();
    Effect::new(move |_| {
        if let Some(Ok(info)) = save.value().get() {
            saved_note.set(Some(format!(
                "Saved as version {}. {}",
                info.version,
                if info.on_limit == OnLimit::Block {
                    "The gateway enforces it from the next request."
                } else {
                    ""
                }
            )));
            budget.set(Some(info));
            confirming.set(None);
        }
    });
    let save_error = move || {
        save.value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };

    let summary = move || {
        budget.get().map(|b| {
            let pct = b.used_percent();
            let bar = format!("h-3 rounded {}", bar_colour(&b));
            view! {
                <div class="grid gap-4 sm:grid-cols-4" data-testid="budget-summary">
                    <div><p class="text-xs uppercase text-slate-500">"Spent this period"</p><p class="text-2xl font-semibold tabular-nums" data-testid="spent">{dollars_f(cents_from_nanocents(b.spent_nanocents))}</p></div>
                    <div><p class="text-xs uppercase text-slate-500">"Limit"</p><p class="text-2xl font-semibold tabular-nums" data-testid="limit">{format!("{} {}", dollars(b.limit_cents), b.period.per())}</p></div>
                    <div><p class="text-xs uppercase text-slate-500">"Projected by the end"</p><p class="text-2xl font-semibold tabular-nums">{dollars_f(projected)}</p></div>
                    <div><p class="text-xs uppercase text-slate-500">"Resets"</p><p class="text-sm font-medium" title=b.resets_at.clone()>{b.resets_at_local.clone()}</p><p class="text-xs text-slate-500">{format!("{} held by calls in flight", dollars_f(cents_from_nanocents(b.reserved_nanocents)))}</p></div>
                </div>
                <div class="mt-3 h-3 rounded bg-slate-200 dark:bg-slate-800" role="progressbar" aria-label="Budget used" aria-valuemin="0" aria-valuemax="100" aria-valuenow=pct>
                    <div class=bar style=format!("width: {pct}%")></div>
                </div>
                <p class="mt-1 text-xs text-slate-500">{format!("{pct}% used · {} · {}", if b.on_limit == OnLimit::Block { "blocks new requests at the limit" } else { "alerts only, never blocks" }, if b.allowed_models.is_empty() { "every priced model".to_owned() } else { format!("models: {}", b.allowed_models.join(", ")) })}</p>
            }
        })
    };

    let readonly = move || {
        budget.get().map(|b| view! {
            <dl class="grid gap-2 text-sm sm:grid-cols-3" data-testid="budget-readonly">
                <div><dt class="text-slate-500">"Period"</dt><dd>{b.period.as_str()}</dd></div>
                <div><dt class="text-slate-500">"Soft alert"</dt><dd>{format!("{}%", b.soft_alert_percent)}</dd></div>
                <div><dt class="text-slate-500">"Requests / tokens per minute"</dt><dd>{format!("{} / {}", b.rpm_limit.map_or("no limit".into(), |n| n.to_string()), b.tpm_limit.map_or("no limit".into(), |n| n.to_string()))}</dd></div>
            </dl>
        })
    };

    view! {
        <section class="card" aria-labelledby="budget-heading">
            <h2 id="budget-heading" class="mb-3 text-base font-semibold">"This period"</h2>
            {move || if budget.get().is_none() {
                view! { <p class="mb-3 text-sm text-slate-600 dark:text-slate-400" data-testid="no-budget">{if can_edit { "No budget yet: the gateway refuses this team's calls until you set one below." } else { "No budget yet: the gateway refuses this team's calls until a team lead sets one." }}</p> }.into_any()
            } else { view! { <div>{summary}</div> }.into_any() }}
            <div class="mt-4"><Chart data budget /></div>
        </section>
        <section class="card mt-6" aria-labelledby="budget-edit-heading">
            <h2 id="budget-edit-heading" class="mb-3 text-base font-semibold">{if can_edit { "Change the budget" } else { "Budget settings" }}</h2>
            {(!can_edit).then(|| view! {
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400" data-testid="readonly-note">"Only the team's lead (or a platform admin) can change the budget."</p>
                {readonly}
            })}
            {can_edit.then(|| view! {
                <form class="grid gap-4 md:grid-cols-3" on:submit=move |ev| {
                    ev.prevent_default();
                    saved_note.set(None);
                    if let Some(f) = form() { confirming.set(Some(f)); }
                }>
                    <div class="flex flex-col gap-1">
                        <label for="budget-period" class="text-sm font-medium">"Period"</label>
                        <select id="budget-period" class="input" prop:value=move || period.get().as_str() on:change=move |ev| period.set(Period::parse(&event_target_value(&ev)).unwrap_or_default())>
                            <option value="monthly" selected=move || period.get() == Period::Monthly>"Monthly (from the 1st)"</option>
                            <option value="weekly" selected=move || period.get() == Period::Weekly>"Weekly (from Monday)"</option>
                            <option value="daily" selected=move || period.get() == Period::Daily>"Daily"</option>
                        </select>
                    </div>
                    <div class="flex flex-col gap-1">
                        <label for="budget-limit" class="text-sm font-medium">"Limit (US dollars per period)"</label>
                        <input id="budget-limit" class="input" inputmode="decimal" placeholder="250.00" aria-describedby="budget-limit-error"
                            prop:value=move || limit.get() on:input=move |ev| limit.set(event_target_value(&ev)) />
                        <p id="budget-limit-error" role="alert" class="text-sm text-red-600 dark:text-red-400">{limit_error}</p>
                    </div>
                    <div class="flex flex-col gap-1">
                        <label for="budget-soft" class="text-sm font-medium">"Alert at (% of the limit)"</label>
                        <input id="budget-soft" class="input" inputmode="numeric" aria-describedby="budget-soft-error"
                            prop:value=move || soft.get() on:input=move |ev| soft.set(event_target_value(&ev)) />
                        <p id="budget-soft-error" role="alert" class="text-sm text-red-600 dark:text-red-400">{soft_error}</p>
                    </div>
                    <fieldset class="flex flex-col gap-1">
                        <legend class="text-sm font-medium">"At the limit"</legend>
                        <label class="flex items-center gap-2 text-sm"><input type="radio" name="on-limit" value="block" prop:checked=move || on_limit.get() == OnLimit::Block on:change=move |_| on_limit.set(OnLimit::Block) />"Block new requests"</label>
                        <label class="flex items-center gap-2 text-sm"><input type="radio" name="on-limit" value="alert" prop:checked=move || on_limit.get() == OnLimit::Alert on:change=move |_| on_limit.set(OnLimit::Alert) />"Alert only"</label>
                    </fieldset>
                    <div class="flex flex-col gap-1">
                        <label for="budget-rpm" class="text-sm font-medium">"Requests per minute"</label>
                        <input id="budget-rpm" class="input" inputmode="numeric" placeholder="no limit" prop:value=move || rpm.get() on:input=move |ev| rpm.set(event_target_value(&ev)) />
                        <p role="alert" class="text-sm text-red-600 dark:text-red-400">{rpm_error}</p>
                    </div>
                    <div class="flex flex-col gap-1">
                        <label for="budget-tpm" class="text-sm font-medium">"Tokens per minute"</label>
                        <input id="budget-tpm" class="input" inputmode="numeric" placeholder="no limit" prop:value=move || tpm.get() on:input=move |ev| tpm.set(event_target_value(&ev)) />
                        <p role="alert" class="text-sm text-red-600 dark:text-red-400">{tpm_error}</p>
                    </div>
                    <fieldset class="md:col-span-3">
                        <legend class="text-sm font-medium">"Allowed models (none ticked: every priced model)"</legend>
                        <div class="mt-1 flex flex-wrap gap-x-4 gap-y-1">
                            {priced.get_value().into_iter().map(|m| {
                                let name = m.clone();
                                let checked = { let m = m.clone(); move || models.get().contains(&m) };
                                view! {
                                    <label class="flex items-center gap-2 text-sm">
                                        <input type="checkbox" prop:checked=checked on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            models.update(|list| { list.retain(|x| x != &name); if on { list.push(name.clone()); list.sort(); } });
                                        } />
                                        {m}
                                    </label>
                                }
                            }).collect_view()}
                        </div>
                    </fieldset>
                    <div class="md:col-span-3 flex items-center gap-3">
                        <button type="submit" class="btn-primary" disabled=move || limit_error().is_some() || soft_error().is_some() || rpm_error().is_some() || tpm_error().is_some()>"Review change"</button>
                        <p class="text-sm text-green-700 dark:text-green-400" role="status" data-testid="budget-saved">{move || saved_note.get()}</p>
                    </div>
                </form>
                {move || confirming.get().map(|f| {
                    let sentence = super::board::effect(&f);
                    let submit = f.clone();
                    view! {
                        <div role="dialog" aria-modal="false" aria-labelledby="confirm-heading" class="mt-4 rounded-lg border border-indigo-300 bg-indigo-50 p-4 dark:border-indigo-700 dark:bg-indigo-950" data-testid="budget-confirm">
                            <h3 id="confirm-heading" class="font-semibold">"Confirm the new budget"</h3>
                            <p class="mt-1 text-sm" data-testid="budget-effect">{sentence}</p>
                            <p role="alert" class="mt-1 text-sm text-red-600 dark:text-red-400">{save_error}</p>
                            <div class="mt-3 flex gap-2">
                                <button type="button" class="btn-primary" disabled=move || save.pending().get()
                                    on:click=move |_| { save.dispatch(SaveBudget { team: team.get_value(), form: submit.clone() }); }>
                                    {move || if save.pending().get() { "Saving…" } else { "Confirm" }}
                                </button>
                                <button type="button" class="btn-secondary" on:click=move |_| confirming.set(None)>"Cancel"</button>
                            </div>
                        </div>
                    }
                })}
            })}
        </section>
    }
}

/// Budgets for workspaces inside the team: a request from a key bound to a
/// workspace must fit both the team's budget and the workspace's.
#[island(lazy)]
pub fn WorkspaceBudgets(
    team: String,
    workspaces: Vec<BudgetView>,
    can_edit: bool,
    has_team_budget: bool,
) -> impl IntoView {
    let team = StoredValue::new(team);
    let list = RwSignal::new(workspaces);
    let workspace = RwSignal::new(String::new());
    let limit = RwSignal::new(String::new());
    let period = RwSignal::new(Period::Monthly);
    let on_limit = RwSignal::new(OnLimit::Block);
    let save = ServerAction::<SaveWorkspaceBudget>::new();
    Effect::new(move |_| {
        if let Some(Ok(info)) = save.value().get() {
            list.update(|l| {
                l.retain(|w| w.workspace_id != info.workspace_id);
                l.push(info.clone());
                l.sort_by(|a, b| a.workspace_id.cmp(&b.workspace_id));
            });
            workspace.set(String::new());
            limit.set(String::new());
        }
    });
    let limit_error = move || {
        let raw = limit.get();
        (!raw.trim().is_empty())
            .then(|| parse_dollars(&raw).err())
            .flatten()
    };
    let error = move || {
        save.value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    view! {
        <section class="card" aria-labelledby="ws-heading">
            <h2 id="ws-heading" class="mb-1 text-base font-semibold">"Workspace budgets"</h2>
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Optional limits for parts of the team (a key bound to a workspace must fit both its workspace's budget and the team's)."</p>
            {move || if list.get().is_empty() {
                view! { <p class="text-sm text-slate-500" data-testid="no-workspace-budgets">"No workspace budgets: the team budget covers every key."</p> }.into_any()
            } else {
                view! {
                    <ul class="space-y-1 text-sm" data-testid="workspace-budgets">
                        {list.get().into_iter().map(|w| view! {
                            <li><span class="font-medium">{w.workspace_id.clone().unwrap_or_default()}</span>{format!(": {} of {} {} · {}", dollars_f(cents_from_nanocents(w.spent_nanocents)), dollars(w.limit_cents), w.period.per(), if w.on_limit == OnLimit::Block { "blocks at the limit" } else { "alerts only" })}</li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {(can_edit && has_team_budget).then(|| view! {
                <form class="mt-4 flex flex-wrap items-end gap-3" on:submit=move |ev| {
                    ev.prevent_default();
                    let Ok(cents) = parse_dollars(&limit.get_untracked()) else { return };
                    save.dispatch(SaveWorkspaceBudget {
                        team: team.get_value(),
                        workspace: workspace.get_untracked(),
                        form: BudgetForm { period: period.get_untracked(), limit_cents: cents, soft_alert_percent: 80, on_limit: on_limit.get_untracked(), allowed_models: Vec::new(), rpm_limit: None, tpm_limit: None, version: 0 },
                    });
                }>
                    <div class="flex flex-col gap-1">
                        <label for="ws-name" class="text-sm font-medium">"Workspace"</label>
                        <input id="ws-name" class="input" placeholder="checkout" required prop:value=move || workspace.get() on:input=move |ev| workspace.set(event_target_value(&ev)) />
                    </div>
                    <div class="flex flex-col gap-1">
                        <label for="ws-limit" class="text-sm font-medium">"Limit (US dollars)"</label>
                        <input id="ws-limit" class="input" inputmode="decimal" placeholder="50.00" required aria-describedby="ws-limit-error" prop:value=move || limit.get() on:input=move |ev| limit.set(event_target_value(&ev)) />
                    </div>
                    <div class="flex flex-col gap-1">
                        <label for="ws-period" class="text-sm font-medium">"Period"</label>
                        <select id="ws-period" class="input" on:change=move |ev| period.set(Period::parse(&event_target_value(&ev)).unwrap_or_default())>
                            <option value="monthly">"Monthly"</option>
                            <option value="weekly">"Weekly"</option>
                            <option value="daily">"Daily"</option>
                        </select>
                    </div>
                    <div class="flex flex-col gap-1">
                        <label for="ws-on-limit" class="text-sm font-medium">"At the limit"</label>
                        <select id="ws-on-limit" class="input" on:change=move |ev| on_limit.set(OnLimit::parse(&event_target_value(&ev)).unwrap_or_default())>
                            <option value="block">"Block"</option>
                            <option value="alert">"Alert only"</option>
                        </select>
                    </div>
                    <button type="submit" class="btn-secondary" disabled=move || workspace.get().trim().is_empty() || limit.get().trim().is_empty() || limit_error().is_some() || save.pending().get()>"Save workspace budget"</button>
                </form>
                <p id="ws-limit-error" role="alert" class="mt-1 text-sm text-red-600 dark:text-red-400">{move || limit_error().or_else(error)}</p>
            })}
        </section>
    }
}

/// The team's gateway keys: created once-visible, revocable, with last use.
#[island(lazy)]
pub fn GatewayKeys(team: String, keys: Vec<GatewayKeyInfo>, can_manage: bool) -> impl IntoView {
    let team = StoredValue::new(team);
    let keys = RwSignal::new(keys);
    let name = RwSignal::new(String::new());
    let workspace = RwSignal::new(String::new());
    let shown = RwSignal::new(None::<String>);
    let create = ServerAction::<CreateGatewayKey>::new();
    let revoke = ServerAction::<RevokeGatewayKey>::new();
    Effect::new(move |_| {
        if let Some(Ok(new)) = create.value().get() {
            keys.update(|k| k.insert(0, new.info.clone()));
            shown.set(Some(new.key.clone()));
            name.set(String::new());
            workspace.set(String::new());
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(id)) = revoke.value().get() {
            keys.update(|k| {
                for key in k.iter_mut().filter(|k| k.id == id) {
                    key.revoked_at = Some(0);
                }
            });
        }
    });
    let error = move || {
        create
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| revoke.value().get().and_then(|r| r.err()))
            .map(|e| e.to_string())
    };
    view! {
        <section class="card" aria-labelledby="keys-heading">
            <h2 id="keys-heading" class="mb-1 text-base font-semibold">"Gateway keys"</h2>
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Services call the gateway at /llm/v1 with one of these keys (OpenAI-compatible: set it as the API key and the base URL to this portal's /llm/v1). Spend goes to this team's budget."</p>
            {move || shown.get().map(|key| view! {
                <div class="mb-3 rounded-lg border border-green-300 bg-green-50 p-3 text-sm dark:border-green-700 dark:bg-green-950" role="status">
                    <p class="font-medium">"Copy the key now: it is not shown again."</p>
                    <code class="mt-1 block break-all font-mono" data-testid="new-gateway-key">{key}</code>
                </div>
            })}
            <p role="alert" class="text-sm text-red-600 dark:text-red-400">{error}</p>
            {move || if keys.get().is_empty() {
                view! { <p class="text-sm text-slate-500" data-testid="no-keys">{if can_manage { "No keys yet: create one for each service that calls an LLM." } else { "No keys yet: a team lead creates them." }}</p> }.into_any()
            } else {
                view! {
                    <div class="overflow-x-auto">
                        <Table testid="gateway-keys" columns=[Col::text("Name"), Col::text("Key"), Col::text("Workspace"), Col::text("Last used"), Col::text("Status")].into_iter().chain(can_manage.then_some(Col::actions("Actions"))).collect()>
                                {keys.get().into_iter().map(|k| {
                                    let id = k.id;
                                    let revoked = k.revoked_at.is_some();
                                    view! {
                                        <tr>
                                            <td class="font-medium">{k.name.clone()}</td>
                                            <td class="font-mono text-xs">{format!("{}…", k.prefix)}</td>
                                            <td>{k.workspace_id.clone().unwrap_or_else(|| "—".into())}</td>
                                            <td>{k.last_used_at.map_or("never".into(), format_time)}</td>
                                            <td>{if revoked { view! { <Badge tone=Tone::Neutral>"revoked"</Badge> } } else { view! { <Badge tone=Tone::Success>"active"</Badge> } }}</td>
                                            {can_manage.then(|| view! {
                                                <td>{(!revoked).then(|| view! {
                                                    <button type="button" class="btn-ghost text-red-700 dark:text-red-400" aria-label=format!("Revoke key {}", k.name)
                                                        on:click=move |_| { revoke.dispatch(RevokeGatewayKey { team: team.get_value(), id }); }>"Revoke"</button>
                                                })}</td>
                                            })}
                                        </tr>
                                    }
                                }).collect_view()}
                            </Table>
                    </div>
                }.into_any()
            }}
            {can_manage.then(|| view! {
                <form class="mt-4 flex flex-wrap items-end gap-3" on:submit=move |ev| {
                    ev.prevent_default();
                    create.dispatch(CreateGatewayKey { team: team.get_value(), name: name.get_untracked(), workspace_id: workspace.get_untracked() });
                }>
                    <div class="flex flex-col gap-1">
                        <label for="key-name" class="text-sm font-medium">"Key name"</label>
                        <input id="key-name" class="input" placeholder="checkout-service" required prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                    </div>
                    <div class="flex flex-col gap-1">
                        <label for="key-workspace" class="text-sm font-medium">"Workspace (optional)"</label>
                        <input id="key-workspace" class="input" placeholder="checkout" prop:value=move || workspace.get() on:input=move |ev| workspace.set(event_target_value(&ev)) />
                    </div>
                    <button type="submit" class="btn-primary" disabled=move || name.get().trim().is_empty() || create.pending().get()>"Create key"</button>
                </form>
            })}
        </section>
    }
}

/// The price table; admins edit a row or add one.
#[island(lazy)]
pub fn PriceTable(prices: Vec<PriceLine>, can_edit: bool) -> impl IntoView {
    let prices = RwSignal::new(prices);
    let provider = RwSignal::new(String::new());
    let model = RwSignal::new(String::new());
    let input = RwSignal::new(String::new());
    let output = RwSignal::new(String::new());
    let save = ServerAction::<SavePrice>::new();
    Effect::new(move |_| {
        if let Some(Ok(row)) = save.value().get() {
            prices.update(|list| {
                list.retain(|p| !(p.provider == row.provider && p.model == row.model));
                list.push(row.clone());
                list.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
            });
        }
    });
    let error = move || {
        save.value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    view! {
        <section class="card" aria-labelledby="prices-heading">
            <h2 id="prices-heading" class="mb-1 text-base font-semibold">"Prices (US dollars per million tokens)"</h2>
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"Seeded from the providers' public list prices. A model without a price is refused by the gateway, never billed as free."</p>
            <div class="max-h-96 overflow-auto">
                <Table testid="prices" columns=[Col::text("Provider"), Col::text("Model"), Col::numeric("Input"), Col::numeric("Output"), Col::text("Set by")].into_iter().chain(can_edit.then_some(Col::actions("Edit"))).collect()>
                        {move || prices.get().into_iter().map(|p| {
                            let edit = p.clone();
                            view! {
                                <tr>
                                    <td>{p.provider.clone()}</td>
                                    <td class="font-medium">{p.model.clone()}{p.routed.then(|| view! { " " <Badge tone=Tone::Info>"offered"</Badge> })}</td>
                                    <td class="text-right tabular-nums">{format!("${}", p.input_usd)}</td>
                                    <td class="text-right tabular-nums">{format!("${}", p.output_usd)}</td>
                                    <td class="text-xs text-slate-500">{p.updated_by.clone()}</td>
                                    {can_edit.then(|| view! {
                                        <td><button type="button" class="btn-ghost" aria-label=format!("Edit the price of {}", p.model) on:click=move |_| {
                                            provider.set(edit.provider.clone()); model.set(edit.model.clone());
                                            input.set(edit.input_usd.clone()); output.set(edit.output_usd.clone());
                                        }>"Edit"</button></td>
                                    })}
                                </tr>
                            }
                        }).collect_view()}
                    </Table>
            </div>
            {can_edit.then(|| view! {
                <form class="mt-4 grid gap-3 sm:grid-cols-5 sm:items-end" on:submit=move |ev| {
                    ev.prevent_default();
                    save.dispatch(SavePrice { provider: provider.get_untracked(), model: model.get_untracked(), input_usd: input.get_untracked(), output_usd: output.get_untracked() });
                }>
                    <div class="flex flex-col gap-1"><label for="price-provider" class="text-sm font-medium">"Provider"</label><input id="price-provider" class="input" prop:value=move || provider.get() on:input=move |ev| provider.set(event_target_value(&ev)) /></div>
                    <div class="flex flex-col gap-1"><label for="price-model" class="text-sm font-medium">"Model"</label><input id="price-model" class="input" prop:value=move || model.get() on:input=move |ev| model.set(event_target_value(&ev)) /></div>
                    <div class="flex flex-col gap-1"><label for="price-input" class="text-sm font-medium">"Input $/M"</label><input id="price-input" class="input" inputmode="decimal" prop:value=move || input.get() on:input=move |ev| input.set(event_target_value(&ev)) /></div>
                    <div class="flex flex-col gap-1"><label for="price-output" class="text-sm font-medium">"Output $/M"</label><input id="price-output" class="input" inputmode="decimal" prop:value=move || output.get() on:input=move |ev| output.set(event_target_value(&ev)) /></div>
                    <button type="submit" class="btn-primary" disabled=move || save.pending().get()>"Save price"</button>
                </form>
                <p role="alert" class="mt-1 text-sm text-red-600 dark:text-red-400">{error}</p>
            })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_rounds_up_to_a_nice_number() {
        assert_eq!(nice_ceiling(27_500.0), 50_000.0);
        assert_eq!(nice_ceiling(35_750.0), 50_000.0);
        assert_eq!(nice_ceiling(180.0), 200.0);
        assert_eq!(nice_ceiling(2_100.0), 2_500.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
    }

    #[test]
    fn dollars_parse_strictly() {
        assert_eq!(parse_dollars("250"), Ok(25_000));
        assert_eq!(parse_dollars("$99.5"), Ok(9_950));
        assert_eq!(parse_dollars("1,000.01"), Ok(100_001));
        assert!(parse_dollars("12.345").is_err());
        assert!(parse_dollars("-3").is_err());
        assert!(parse_dollars("lots").is_err());
        assert!(parse_dollars("10000001").is_err());
    }

    #[test]
    fn the_confirmation_states_the_effect() {
        let mut form = BudgetForm {
            period: Period::Monthly,
            limit_cents: 25_000,
            soft_alert_percent: 80,
            on_limit: OnLimit::Block,
            allowed_models: vec![],
            rpm_limit: None,
            tpm_limit: None,
            version: 1,
        };
        assert_eq!(
            effect(&form),
            "Blocks new requests once spend reaches $250.00 per month; alerts the team at 80% ($200.00)."
        );
        form.on_limit = OnLimit::Alert;
        form.period = Period::Weekly;
        assert!(effect(&form).starts_with("Never blocks: requests continue past $250.00 per week"));
    }
}
