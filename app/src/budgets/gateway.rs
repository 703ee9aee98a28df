//! The gateway part of the Budget page: the team's gateway settings (an
//! island: response cache, guardrails, request logs, provider-key rotation),
//! and, rendered on the server, its request logs and what the cache saved.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use paved_shared::budgets::{
    dollars_f, CacheSaving, GatewaySettings, GuardAction, ProviderKeyAge, RequestLogEntry,
    GUARDRAIL_DETECTORS, MAX_CACHE_TTL_SECS, MAX_LOG_RETENTION_DAYS,
};

use super::SaveGatewaySettings;
use crate::components::{Badge, Card, Col, EmptyState, Table, ToastRegion, Toasts, Tone};
use crate::error::AppError;

/// The gateway part of the Budget page, as the page loads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayPanel {
    /// The team's settings as saved.
    pub settings: GatewaySettings,
    /// The caller may change them (team leads and platform admins).
    pub can_edit: bool,
    /// Request logs, newest first.
    pub logs: Vec<RequestLogEntry>,
    /// Where the next (older) page of logs starts, when there may be one.
    pub older_before: Option<i64>,
    /// What the cache saved per feature this period.
    pub savings: Vec<CacheSaving>,
    /// How old the team's own provider keys are (`None`: the platform's are used).
    pub key_age: Option<ProviderKeyAge>,
}

/// A detector's name for people.
pub fn detector_label(detector: &str) -> &'static str {
    match detector {
        "email" => "Email addresses",
        "phone" => "Phone numbers",
        "card_number" => "Card numbers",
        "iban" => "IBANs",
        "api_key" => "API keys",
        "aws_key" => "AWS keys",
        "private_key" => "Private keys",
        _ => "Unknown detector",
    }
}

fn parse_action(raw: &str) -> GuardAction {
    match raw {
        "report" => GuardAction::Report,
        "redact" => GuardAction::Redact,
        "block" => GuardAction::Block,
        _ => GuardAction::Off,
    }
}

/// What an action does, in words.
fn action_label(action: GuardAction, answers: bool) -> &'static str {
    match (action, answers) {
        (GuardAction::Off, _) => "Off",
        (GuardAction::Report, _) => "Report (record what was found)",
        (GuardAction::Redact, _) => "Redact (replace each match with a placeholder)",
        (GuardAction::Block, false) => "Block (refuse the request)",
        (GuardAction::Block, true) => "Block (withhold the answer)",
    }
}

/// An action's name in the form's menus.
fn short_label(action: GuardAction) -> &'static str {
    match action {
        GuardAction::Off => "Off",
        GuardAction::Report => "Report",
        GuardAction::Redact => "Redact",
        GuardAction::Block => "Block",
    }
}

/// A validation message as a sentence: `must be 1–90 days` → `Must be 1–90 days.`
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.is_empty() && !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// The form's fields as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// Cache lifetime, seconds (empty: 0).
    pub cache: String,
    /// Chosen detectors.
    pub detectors: Vec<String>,
    /// Prompt action.
    pub prompt: GuardAction,
    /// Answer action.
    pub response: GuardAction,
    /// Log requests.
    pub log_requests: bool,
    /// Keep bodies.
    pub log_bodies: bool,
    /// Retention, days.
    pub retention: String,
    /// Rotation, days (empty: no policy).
    pub rotation: String,
}

impl Draft {
    /// The form seeded from saved settings.
    pub fn of(s: &GatewaySettings) -> Self {
        Self {
            cache: s.cache_ttl_secs.to_string(),
            detectors: s.guardrail_detectors.clone(),
            prompt: s.guardrail_prompt,
            response: s.guardrail_response,
            log_requests: s.log_requests,
            log_bodies: s.log_bodies,
            retention: s.log_retention_days.to_string(),
            rotation: s
                .key_rotation_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
        }
    }

    /// The settings these fields make, or every problem by field (the same
    /// rules the server applies).
    pub fn settings(&self) -> Result<GatewaySettings, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut whole = |raw: &str, field: &str, what: String| -> Option<i64> {
            let raw = raw.trim();
            match raw.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    problems.push((field.to_owned(), what));
                    None
                }
            }
        };
        let cache = if self.cache.trim().is_empty() {
            Some(0)
        } else {
            whole(
                &self.cache,
                "cache_ttl_secs",
                format!("enter a whole number of seconds, 0–{MAX_CACHE_TTL_SECS} (0 turns the cache off)"),
            )
        };
        let retention = whole(
            &self.retention,
            "log_retention_days",
            format!("enter a whole number of days, 1–{MAX_LOG_RETENTION_DAYS}"),
        );
        let rotation = if self.rotation.trim().is_empty() {
            Some(None)
        } else {
            whole(
                &self.rotation,
                "key_rotation_days",
                "enter a whole number of days, or leave it empty for no policy".into(),
            )
            .map(Some)
        };
        let settings = GatewaySettings {
            cache_ttl_secs: cache.unwrap_or(0),
            guardrail_detectors: self.detectors.clone(),
            guardrail_prompt: self.prompt,
            guardrail_response: self.response,
            log_requests: self.log_requests,
            log_bodies: self.log_bodies,
            log_retention_days: retention.unwrap_or(1),
            key_rotation_days: rotation.unwrap_or(None),
        };
        for (field, message) in settings.problems() {
            if !problems.iter().any(|(f, _)| *f == field) {
                problems.push((field, message));
            }
        }
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems)
        }
    }
}

/// The settings in words, for those who cannot change them.
fn readonly(s: &GatewaySettings) -> impl IntoView {
    let cache = if s.cache_ttl_secs == 0 {
        "Off (requests can still ask with Cache-Control: max-age=N)".to_owned()
    } else {
        format!("{} seconds", s.cache_ttl_secs)
    };
    let detectors = if s.guardrail_detectors.is_empty() {
        "none".to_owned()
    } else {
        GUARDRAIL_DETECTORS
            .into_iter()
            .filter(|d| s.guardrail_detectors.iter().any(|x| x == d))
            .map(detector_label)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let logs = match (s.log_requests, s.log_bodies) {
        (false, _) => "Off".to_owned(),
        (true, false) => format!("On, kept {} days", s.log_retention_days),
        (true, true) => format!(
            "On with bodies (masked), kept {} days",
            s.log_retention_days
        ),
    };
    let rotation = s
        .key_rotation_days
        .map_or("No policy".to_owned(), |d| format!("Every {d} days"));
    view! {
        <dl class="grid gap-3 text-sm sm:grid-cols-2" data-testid="gateway-settings-readonly">
            <div><dt class="text-slate-500">"Response cache lifetime"</dt><dd data-testid="ro-cache">{cache}</dd></div>
            <div><dt class="text-slate-500">"Guardrail detectors"</dt><dd data-testid="ro-detectors">{detectors}</dd></div>
            <div><dt class="text-slate-500">"Prompts that match"</dt><dd data-testid="ro-prompt">{action_label(s.guardrail_prompt, false)}</dd></div>
            <div><dt class="text-slate-500">"Answers that match"</dt><dd data-testid="ro-response">{action_label(s.guardrail_response, true)}</dd></div>
            <div><dt class="text-slate-500">"Request logs"</dt><dd data-testid="ro-logs">{logs}</dd></div>
            <div><dt class="text-slate-500">"Provider-key rotation"</dt><dd data-testid="ro-rotation">{rotation}</dd></div>
        </dl>
    }
}

const ERROR: &str = "text-sm text-red-600 dark:text-red-400";
const HELP: &str = "text-xs text-slate-500 dark:text-slate-400";

/// The team's gateway settings: a form for leads, the values in words for
/// everyone else.
#[island(lazy)]
pub fn GatewaySettingsForm(
    team: String,
    settings: GatewaySettings,
    can_edit: bool,
) -> impl IntoView {
    let toasts = Toasts::default();
    provide_context(toasts);
    let team = StoredValue::new(team);
    let saved = RwSignal::new(settings);
    let seed = Draft::of(&saved.get_untracked());
    let cache = RwSignal::new(seed.cache);
    let detectors = RwSignal::new(seed.detectors);
    let prompt = RwSignal::new(seed.prompt);
    let response = RwSignal::new(seed.response);
    let log_requests = RwSignal::new(seed.log_requests);
    let log_bodies = RwSignal::new(seed.log_bodies);
    let retention = RwSignal::new(seed.retention);
    let rotation = RwSignal::new(seed.rotation);
    let draft = Memo::new(move |_| {
        Draft {
            cache: cache.get(),
            detectors: detectors.get(),
            prompt: prompt.get(),
            response: response.get(),
            log_requests: log_requests.get(),
            log_bodies: log_bodies.get(),
            retention: retention.get(),
            rotation: rotation.get(),
        }
        .settings()
    });
    // The server's verdict on the last save, by field, until the form changes.
    let server_errors = RwSignal::new(Vec::<(String, String)>::new());
    let other_error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        draft.track();
        server_errors.set(Vec::new());
        other_error.set(None);
    });
    let save = ServerAction::<SaveGatewaySettings>::new();
    Effect::new(move |_| match save.value().get() {
        Some(Ok(s)) => {
            let d = Draft::of(&s);
            cache.set(d.cache);
            detectors.set(d.detectors);
            prompt.set(d.prompt);
            response.set(d.response);
            log_requests.set(d.log_requests);
            log_bodies.set(d.log_bodies);
            retention.set(d.retention);
            rotation.set(d.rotation);
            saved.set(s);
            toasts.push("Gateway settings saved. They apply from the next request.");
        }
        Some(Err(e)) => match e {
            AppError::InvalidFields(list) => server_errors.set(list),
            AppError::Invalid { field, message } => server_errors.set(vec![(field, message)]),
            other => other_error.set(Some(other.to_string())),
        },
        None => {}
    });
    let error = move |field: &'static str| {
        move || {
            let live = draft.with(|d| {
                d.as_ref().err().and_then(|list| {
                    list.iter()
                        .find(|(f, _)| f == field)
                        .map(|(_, m)| m.clone())
                })
            });
            live.or_else(|| {
                server_errors.with(|list| {
                    list.iter()
                        .find(|(f, _)| f == field)
                        .map(|(_, m)| m.clone())
                })
            })
            .map(|m| sentence(&m))
        }
    };
    let invalid = move |field: &'static str| move || error(field)().is_some().to_string();
    // Errors about fields this form does not show (none expected).
    let unplaced = move || {
        server_errors.with(|list| {
            list.iter()
                .filter(|(f, _)| {
                    ![
                        "cache_ttl_secs",
                        "guardrail_detectors",
                        "guardrail_prompt",
                        "guardrail_response",
                        "log_requests",
                        "log_bodies",
                        "log_retention_days",
                        "key_rotation_days",
                    ]
                    .contains(&f.as_str())
                })
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    let action_options = move |current: RwSignal<GuardAction>| {
        [
            GuardAction::Off,
            GuardAction::Report,
            GuardAction::Redact,
            GuardAction::Block,
        ]
        .into_iter()
        .map(move |a| {
            view! { <option value=a.as_str() selected=move || current.get() == a>{short_label(a)}</option> }
        })
        .collect_view()
    };

    view! {
        <section class="card" aria-labelledby="gateway-settings-heading" data-testid="gateway-settings">
            <h2 id="gateway-settings-heading" class="mb-1 text-base font-semibold">"Gateway settings"</h2>
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"How the gateway treats this team's calls: reusing answers, checking prompts and answers for personal data and secrets, and keeping a log for debugging."</p>
            {(!can_edit).then(|| view! {
                <p class="mb-3 text-sm text-slate-600 dark:text-slate-400" data-testid="gateway-settings-note">"Only the team's lead (or a platform admin) can change these settings."</p>
                {move || readonly(&saved.get())}
            })}
            {can_edit.then(|| view! {
                <form class="flex flex-col gap-6" novalidate on:submit=move |ev| {
                    ev.prevent_default();
                    if let Ok(settings) = draft.get_untracked() {
                        save.dispatch(SaveGatewaySettings { team: team.get_value(), settings });
                    }
                }>
                    <fieldset class="grid gap-3 md:grid-cols-3">
                        <legend class="mb-2 text-sm font-semibold">"Response cache"</legend>
                        <div class="flex flex-col gap-1">
                            <label for="gw-cache" class="text-sm font-medium">"Response cache lifetime (seconds)"</label>
                            <input id="gw-cache" class="input" inputmode="numeric" placeholder="0" aria-describedby="gw-cache-help gw-cache-error"
                                aria-invalid=invalid("cache_ttl_secs")
                                prop:value=move || cache.get() on:input=move |ev| cache.set(event_target_value(&ev)) />
                            <p id="gw-cache-error" role="alert" class=ERROR>{error("cache_ttl_secs")}</p>
                        </div>
                        <p id="gw-cache-help" class=format!("{HELP} md:col-span-2 md:self-center")>
                            "An identical request gets the stored answer for this long, without a call to the provider. 0 turns the cache off. Each request can decide for itself: "
                            <code>"Cache-Control: max-age=N"</code>" uses the cache for that request, "<code>"Cache-Control: no-store"</code>" skips it."
                        </p>
                    </fieldset>
                    <fieldset class="grid gap-3 md:grid-cols-3">
                        <legend class="mb-2 text-sm font-semibold">"Guardrails"</legend>
                        <fieldset class="md:col-span-3" aria-describedby="gw-detectors-error">
                            <legend class="text-sm font-medium">"Look for"</legend>
                            <div class="mt-1 flex flex-wrap gap-x-4 gap-y-1">
                                {GUARDRAIL_DETECTORS.into_iter().map(|d| {
                                    let id = format!("gw-detector-{d}");
                                    let label_for = id.clone();
                                    view! {
                                        <label for=label_for class="flex items-center gap-2 text-sm">
                                            <input id=id type="checkbox" value=d prop:checked=move || detectors.get().iter().any(|x| x == d)
                                                on:change=move |ev| {
                                                    let on = event_target_checked(&ev);
                                                    detectors.update(|list| {
                                                        list.retain(|x| x != d);
                                                        if on {
                                                            list.push(d.to_owned());
                                                            list.sort_by_key(|x| GUARDRAIL_DETECTORS.iter().position(|k| k == x));
                                                        }
                                                    });
                                                } />
                                            {detector_label(d)}
                                        </label>
                                    }
                                }).collect_view()}
                            </div>
                            <p id="gw-detectors-error" role="alert" class=ERROR>{error("guardrail_detectors")}</p>
                        </fieldset>
                        <div class="flex flex-col gap-1">
                            <label for="gw-prompt" class="text-sm font-medium">"Prompts that match"</label>
                            <select id="gw-prompt" class="input" aria-describedby="gw-prompt-help gw-prompt-error"
                                prop:value=move || prompt.get().as_str() on:change=move |ev| prompt.set(parse_action(&event_target_value(&ev)))>
                                {action_options(prompt)}
                            </select>
                            <p id="gw-prompt-help" class=HELP>"Report records what was found; redact replaces each match with a placeholder such as [EMAIL] before the prompt leaves for the provider; block refuses the request."</p>
                            <p id="gw-prompt-error" role="alert" class=ERROR>{error("guardrail_prompt")}</p>
                        </div>
                        <div class="flex flex-col gap-1">
                            <label for="gw-response" class="text-sm font-medium">"Answers that match"</label>
                            <select id="gw-response" class="input" aria-describedby="gw-response-help gw-response-error"
                                prop:value=move || response.get().as_str() on:change=move |ev| response.set(parse_action(&event_target_value(&ev)))>
                                {action_options(response)}
                            </select>
                            <p id="gw-response-help" class=HELP>"Report, redact or block (withhold) a complete answer. Streamed answers are reported only: they are never changed or withheld."</p>
                            <p id="gw-response-error" role="alert" class=ERROR>{error("guardrail_response")}</p>
                        </div>
                        <p class=format!("{HELP} md:pt-7")>"Findings are recorded with each request by kind and count, never the text itself."</p>
                    </fieldset>
                    <fieldset class="grid gap-3 md:grid-cols-3">
                        <legend class="mb-2 text-sm font-semibold">"Request logs"</legend>
                        <div class="flex flex-col gap-2">
                            <label for="gw-log-requests" class="flex items-center gap-2 text-sm">
                                <input id="gw-log-requests" type="checkbox" prop:checked=move || log_requests.get()
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        log_requests.set(on);
                                        if !on { log_bodies.set(false); }
                                    } />
                                "Log requests"
                            </label>
                            <label for="gw-log-bodies" class="flex items-center gap-2 text-sm">
                                <input id="gw-log-bodies" type="checkbox" aria-describedby="gw-log-bodies-error"
                                    prop:checked=move || log_bodies.get() disabled=move || !log_requests.get()
                                    on:change=move |ev| log_bodies.set(event_target_checked(&ev)) />
                                "Keep request and response bodies (masked)"
                            </label>
                            <p id="gw-log-bodies-error" role="alert" class=ERROR>{error("log_bodies")}</p>
                        </div>
                        <div class="flex flex-col gap-1">
                            <label for="gw-retention" class="text-sm font-medium">"Keep logs for (days)"</label>
                            <input id="gw-retention" class="input" inputmode="numeric" aria-describedby="gw-retention-error"
                                aria-invalid=invalid("log_retention_days")
                                prop:value=move || retention.get() on:input=move |ev| retention.set(event_target_value(&ev)) />
                            <p id="gw-retention-error" role="alert" class=ERROR>{error("log_retention_days")}</p>
                        </div>
                        <p class=format!("{HELP} md:self-center")>{format!("Email addresses, card numbers, keys and other secrets in kept bodies are masked. Logs are deleted once they are older than the days set here (1 to {MAX_LOG_RETENTION_DAYS}).")}</p>
                    </fieldset>
                    <fieldset class="grid gap-3 md:grid-cols-3">
                        <legend class="mb-2 text-sm font-semibold">"Provider keys"</legend>
                        <div class="flex flex-col gap-1">
                            <label for="gw-rotation" class="text-sm font-medium">"Rotate provider keys every (days)"</label>
                            <input id="gw-rotation" class="input" inputmode="numeric" placeholder="no policy" aria-describedby="gw-rotation-help gw-rotation-error"
                                aria-invalid=invalid("key_rotation_days")
                                prop:value=move || rotation.get() on:input=move |ev| rotation.set(event_target_value(&ev)) />
                            <p id="gw-rotation-error" role="alert" class=ERROR>{error("key_rotation_days")}</p>
                        </div>
                        <p id="gw-rotation-help" class=format!("{HELP} md:col-span-2 md:self-center")>"The team is reminded to rotate its own provider keys once they are older than this. Leave it empty for no policy."</p>
                    </fieldset>
                    <div class="flex flex-wrap items-center gap-3">
                        <button type="submit" class="btn-primary" disabled=move || draft.with(|d| d.is_err()) || save.pending().get()>
                            {move || if save.pending().get() { "Saving…" } else { "Save gateway settings" }}
                        </button>
                        <p role="alert" class=ERROR>{move || other_error.get()}" "{unplaced}</p>
                    </div>
                </form>
            })}
            <ToastRegion />
        </section>
    }
}

/// `2026-03-18T12:00:05.123Z` → `2026-03-18 12:00:05 UTC`.
fn log_time(at: &str) -> String {
    match (at.get(..10), at.get(11..19)) {
        (Some(day), Some(time)) if at.ends_with('Z') => format!("{day} {time} UTC"),
        _ => at.to_owned(),
    }
}

/// A logged body for reading: JSON indented, anything else as kept.
fn readable(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned())
}

fn status_tone(status: u16) -> Tone {
    match status {
        200..=299 => Tone::Success,
        400..=499 => Tone::Warning,
        _ => Tone::Danger,
    }
}

fn log_entry(e: RequestLogEntry) -> impl IntoView {
    let body = |title: &'static str, text: Option<String>, testid: &'static str| {
        view! {
            <div>
                <h4 class="text-xs font-semibold uppercase text-slate-500">{title}</h4>
                {match text {
                    Some(t) => view! { <pre tabindex="0" class="mt-1 max-h-96 overflow-auto whitespace-pre-wrap break-all rounded bg-slate-100 p-3 text-xs dark:bg-slate-950" data-testid=testid>{readable(&t)}</pre> }.into_any(),
                    None => view! { <p class="mt-1 text-sm text-slate-500">"Not kept: bodies are logged only while “Keep request and response bodies” is on."</p> }.into_any(),
                }}
            </div>
        }
    };
    let meta = [
        Some(e.key_name.clone().unwrap_or_else(|| "(no key name)".into())),
        Some(e.request_type.clone()),
        e.deployment
            .clone()
            .filter(|d| *d != e.model)
            .map(|d| format!("via {d}")),
        Some(format!("{} ms", e.latency_ms)),
        e.feature.clone().map(|f| format!("feature {f}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    view! {
        <li data-testid="request-log" data-log-id=e.id>
            <details class="group rounded-lg border border-slate-200 p-3 dark:border-slate-800">
                <summary class="flex cursor-pointer list-none items-start gap-2 text-sm [&::-webkit-details-marker]:hidden">
                    <span aria-hidden="true" class="mt-0.5 text-slate-400 transition-transform group-open:rotate-90">"▸"</span>
                    <span class="flex flex-wrap items-center gap-x-3 gap-y-1">
                        <time datetime=e.at.clone() class="tabular-nums text-slate-600 dark:text-slate-400">{log_time(&e.at)}</time>
                        <Badge tone=status_tone(e.status)>{e.status.to_string()}</Badge>
                        <span class="font-medium">{e.model.clone()}</span>
                        <span class="text-slate-600 dark:text-slate-400">{meta}</span>
                        {e.cache_hit.then(|| view! { <Badge tone=Tone::Info>"cache hit"</Badge> })}
                        {e.guardrails.clone().map(|g| view! { <Badge tone=Tone::Warning>{format!("guardrails: {g}")}</Badge> })}
                    </span>
                </summary>
                <div class="mt-3 flex flex-col gap-3">
                    {e.trace_id.clone().map(|t| view! { <p class="text-xs text-slate-500">"Trace "<code>{t}</code></p> })}
                    {body("Request (masked)", e.request_body, "request-body")}
                    {body("Response (masked)", e.response_body, "response-body")}
                </div>
            </details>
        </li>
    }
}

/// How old the team's own provider keys are, against its rotation policy.
pub fn provider_keys_note(team: &str, age: Option<ProviderKeyAge>) -> impl IntoView {
    let keys = format!("/teams/{team}");
    match age {
        None => view! {
            <p class="text-sm text-slate-600 dark:text-slate-300" data-testid="provider-key-age">
                "The team calls providers with the platform's keys. A team lead can set the team's own under "
                <a class="link" href=keys>"LLM provider keys"</a>" on the team page."
            </p>
        }
        .into_any(),
        Some(a) => {
            let policy = a.rotation_days.map_or_else(
                || " No rotation policy is set.".to_owned(),
                |d| format!(" The team rotates them every {d} days."),
            );
            let overdue = a.overdue;
            view! {
                <p class="text-sm text-slate-600 dark:text-slate-300" data-testid="provider-key-age">
                    {format!("The team's own provider keys were set {} days ago ({}).{policy}", a.age_days, a.updated_at)}
                    {overdue.then(|| view! {
                        " "<Badge tone=Tone::Warning>"Rotation due"</Badge>" "
                        <a class="link" href=keys.clone()>"Set new keys"</a>
                        " — requests keep using the old key until the new one has answered once."
                    })}
                </p>
            }
            .into_any()
        }
    }
}

/// The team's newest logged requests (server-rendered), with a link to older ones.
pub fn request_logs_card(
    team: &str,
    logs: Vec<RequestLogEntry>,
    older_before: Option<i64>,
    showing_older: bool,
    logging_on: bool,
    can_edit: bool,
) -> impl IntoView {
    let page = format!("/teams/{team}/budget");
    let newest = format!("{page}#request-logs");
    let older = older_before.map(|id| format!("{page}?logs_before={id}#request-logs"));
    let empty = if showing_older {
        let back = newest.clone();
        view! { <EmptyState title="No older requests" body="Every logged request is on the newer pages."><a class="btn-secondary" href=back>"Newest requests"</a></EmptyState> }.into_any()
    } else if !logging_on {
        let body = if can_edit {
            "Turn it on in Gateway settings above to see each call the team makes through the gateway."
        } else {
            "A team lead turns it on in Gateway settings above."
        };
        view! { <EmptyState title="Request logging is off" body=body /> }.into_any()
    } else {
        view! { <EmptyState title="No requests logged yet" body="Calls through the gateway appear here." /> }.into_any()
    };
    view! {
        <section class="card" id="request-logs" aria-labelledby="request-logs-heading" data-testid="request-logs">
            <h2 id="request-logs-heading" class="mb-1 text-base font-semibold">"Request logs"</h2>
            <p class="mb-3 text-sm text-slate-600 dark:text-slate-400">"The team's calls through the gateway, newest first, 50 at a time. Open one to see its request and answer, with personal data and secrets masked."</p>
            {(!logging_on && !logs.is_empty()).then(|| view! {
                <p class="mb-3 text-sm text-slate-500" data-testid="logging-off-note">"Logging is off now: these requests were logged before it was turned off."</p>
            })}
            {if logs.is_empty() {
                empty
            } else {
                view! {
                    <ul class="flex flex-col gap-2" data-testid="request-log-list">
                        {logs.into_iter().map(log_entry).collect_view()}
                    </ul>
                    <nav aria-label="Request log pages" class="mt-4 flex gap-2 text-sm">
                        {showing_older.then(|| view! { <a class="btn-secondary" href=newest>"Newest requests"</a> })}
                        {older.map(|h| view! { <a class="btn-secondary" href=h data-testid="older-logs">"Load older"</a> })}
                    </nav>
                }.into_any()
            }}
        </section>
    }
}

/// What the response cache saved per feature this period (server-rendered).
pub fn cache_savings_card(savings: Vec<CacheSaving>) -> impl IntoView {
    view! {
        <Card title="Saved by the response cache" class="self-start">
            {if savings.is_empty() {
                view! { <p class="text-sm text-slate-500" data-testid="no-cache-savings">"No answers served from the cache this period. Set a cache lifetime above, or send Cache-Control: max-age=N."</p> }.into_any()
            } else {
                let hits: i64 = savings.iter().map(|s| s.hits).sum();
                let saved: f64 = savings.iter().map(|s| s.saved_cents).sum();
                view! {
                    <p class="mb-2 text-sm text-slate-600 dark:text-slate-400">{format!("{hits} {} from the cache this period, {} not spent.", if hits == 1 { "answer" } else { "answers" }, dollars_f(saved))}</p>
                    <Table testid="cache-savings" columns=vec![Col::text("Feature (X-Paved-Feature)"), Col::numeric("Cache hits"), Col::numeric("Saved")]>
                        {savings.into_iter().map(|s| view! {
                            <tr>
                                <td class="font-medium">{s.feature.unwrap_or_else(|| "(none)".into())}</td>
                                <td class="text-right tabular-nums">{s.hits}</td>
                                <td class="text-right tabular-nums">{dollars_f(s.saved_cents)}</td>
                            </tr>
                        }).collect_view()}
                    </Table>
                }.into_any()
            }}
        </Card>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> Draft {
        Draft::of(&GatewaySettings::default())
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(draft().settings(), Ok(GatewaySettings::default()));
    }

    #[test]
    fn every_field_is_checked_by_the_shared_rules() {
        let mut d = draft();
        d.retention = "0".into();
        d.cache = "soon".into();
        d.prompt = GuardAction::Redact;
        d.rotation = "x".into();
        let problems = d.settings().unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "cache_ttl_secs",
                "key_rotation_days",
                "guardrail_detectors",
                "log_retention_days"
            ]
        );
        assert_eq!(
            sentence(&problems[3].1),
            format!("Must be 1–{MAX_LOG_RETENTION_DAYS} days.")
        );
    }

    #[test]
    fn empty_means_off_or_no_policy() {
        let mut d = draft();
        d.cache = " ".into();
        d.rotation = String::new();
        d.detectors = vec!["email".into()];
        d.prompt = GuardAction::Redact;
        d.log_requests = true;
        d.log_bodies = true;
        d.retention = "30".into();
        let s = d.settings().unwrap();
        assert_eq!((s.cache_ttl_secs, s.key_rotation_days), (0, None));
        assert_eq!(Draft::of(&s).settings(), Ok(s));
    }

    #[test]
    fn log_times_read_as_utc() {
        assert_eq!(
            log_time("2026-03-18T12:00:05.123Z"),
            "2026-03-18 12:00:05 UTC"
        );
        assert_eq!(log_time("yesterday"), "yesterday");
        assert_eq!(readable("{\"a\":1}"), "{\n  \"a\": 1\n}");
        assert_eq!(readable("cut… (cut)"), "cut… (cut)");
    }
}
