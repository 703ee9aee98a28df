//! A task's page (an island): the steps with their state, the log streaming
//! live over server-sent events, cancel while it runs, retry from the failed
//! step, and the template's output links once done.

use leptos::prelude::*;

use super::{LogLine, ScaffoldCancel, ScaffoldRetry, Status, TaskPage, TaskStep};
use crate::components::{Badge, DataLink, Tone};
use crate::secrets::SecretPairs;

/// A status's badge colour (also the task list's).
pub fn tone(status: Status) -> Tone {
    match status {
        Status::Completed => Tone::Success,
        Status::Failed => Tone::Danger,
        Status::Processing => Tone::Info,
        Status::Cancelled | Status::Skipped => Tone::Warning,
        Status::Open => Tone::Neutral,
    }
}

fn mark(status: Status) -> &'static str {
    match status {
        Status::Completed => "✓",
        Status::Failed => "✗",
        Status::Processing => "…",
        Status::Skipped => "–",
        Status::Cancelled => "■",
        Status::Open => "○",
    }
}

/// The live view of one task.
#[island(lazy)]
pub fn TaskProgress(task: TaskPage) -> impl IntoView {
    let id = StoredValue::new(task.id.clone());
    let status = RwSignal::new(task.status);
    let steps: RwSignal<Vec<TaskStep>> = RwSignal::new(task.steps.clone());
    let log: RwSignal<Vec<LogLine>> = RwSignal::new(task.log.clone());
    let links = RwSignal::new(task.links.clone());
    let text = RwSignal::new(task.text.clone());
    let error = RwSignal::new(task.error.clone());
    let can_control = task.can_control;
    let secret_names = StoredValue::new(task.secret_names.clone());
    let cancel = ServerAction::<ScaffoldCancel>::new();
    let retry = ServerAction::<ScaffoldRetry>::new();
    let retry_secrets = RwSignal::new(std::collections::BTreeMap::<String, String>::new());
    let reload = move || {
        leptos::task::spawn_local(async move {
            if let Ok(fresh) = super::scaffold_task(id.get_value()).await {
                status.set(fresh.status);
                steps.set(fresh.steps);
                log.set(fresh.log);
                links.set(fresh.links);
                text.set(fresh.text);
                error.set(fresh.error);
            }
        });
    };

    // Follow the task live while it runs.
    let follow = move || {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::closure::Closure;
            use wasm_bindgen::JsCast;
            let after = log.with_untracked(|l| l.last().map(|e| e.id).unwrap_or(0));
            let url = format!(
                "/api/scaffolder/v2/tasks/{}/eventstream?after={after}",
                id.get_value()
            );
            let Ok(source) = web_sys::EventSource::new(&url) else {
                return;
            };
            let on_log = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                move |ev: web_sys::MessageEvent| {
                    let Some(data) = ev.data().as_string() else {
                        return;
                    };
                    let Ok(event) = serde_json::from_str::<serde_json::Value>(&data) else {
                        return;
                    };
                    let body = &event["body"];
                    let step = body["stepId"].as_str().map(str::to_owned);
                    if let (Some(step), Some(state)) = (
                        step.clone(),
                        body["status"].as_str().and_then(Status::parse),
                    ) {
                        steps.update(|list| {
                            if let Some(s) = list.iter_mut().find(|s| s.id == step) {
                                s.status = state;
                            }
                        });
                    }
                    status.update(|s| {
                        if *s == Status::Open {
                            *s = Status::Processing
                        }
                    });
                    log.update(|l| {
                        l.push(LogLine {
                            id: event["id"].as_i64().unwrap_or(0),
                            step_id: step,
                            message: body["message"].as_str().unwrap_or_default().to_owned(),
                            at: 0,
                        })
                    });
                },
            );
            let closer = source.clone();
            let on_end = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
                move |_ev: web_sys::MessageEvent| {
                    closer.close();
                    reload();
                },
            );
            let _ = source.add_event_listener_with_callback("log", on_log.as_ref().unchecked_ref());
            let _ = source
                .add_event_listener_with_callback("completion", on_end.as_ref().unchecked_ref());
            let _ = source
                .add_event_listener_with_callback("cancelled", on_end.as_ref().unchecked_ref());
            on_log.forget();
            on_end.forget();
        }
    };
    Effect::new(move |_| {
        if status.get_untracked().is_active() {
            follow();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = retry.value().get() {
            status.set(Status::Open);
            retry_secrets.set(Default::default());
            follow();
            reload();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = cancel.value().get() {
            reload();
        }
    });

    view! {
        <div class="grid gap-4 lg:grid-cols-3" data-testid="task">
            <section class="card lg:col-span-1" aria-label="Steps">
                <div class="mb-3 flex items-center justify-between">
                    <h2 class="text-base font-semibold">"Steps"</h2>
                    {move || { let s = status.get(); view! { <span data-testid="task-status"><Badge tone=tone(s)>{s.as_str()}</Badge></span> } }}
                </div>
                <ol class="space-y-2 text-sm">
                    {move || steps.get().into_iter().map(|s| {
                        let (t, m, label) = (tone(s.status), mark(s.status), s.status.as_str());
                        view! {
                            <li class="flex items-center gap-2" data-testid="task-step" data-status=label>
                                <span aria-hidden="true" class="w-4 text-center">{m}</span>
                                <span class="flex-1">{s.name}</span>
                                <Badge tone=t>{label}</Badge>
                            </li>
                        }
                    }).collect_view()}
                </ol>
                {move || (can_control && status.get().is_active()).then(|| view! {
                    <button type="button" class="btn-danger mt-4" disabled=move || cancel.pending().get()
                        on:click=move |_| { cancel.dispatch(ScaffoldCancel { id: id.get_value() }); }>"Cancel"</button>
                })}
                {move || (can_control && status.get().is_retryable()).then(|| view! {
                    <form class="mt-4 flex flex-col gap-2" on:submit=move |ev| {
                        ev.prevent_default();
                        retry.dispatch(ScaffoldRetry { id: id.get_value(), secrets: SecretPairs(retry_secrets.get_untracked().into_iter().collect()) });
                    }>
                        {secret_names.get_value().into_iter().map(|name| {
                            let n = StoredValue::new(name.clone());
                            view! {
                                <label class="text-sm">{format!("{name} (enter it again if Paved restarted)")}
                                    <input type="password" class="input mt-1" autocomplete="new-password"
                                        on:input=move |ev| { let v = event_target_value(&ev); retry_secrets.update(|m| { m.insert(n.get_value(), v); }); } />
                                </label>
                            }
                        }).collect_view()}
                        <button type="submit" class="btn-primary" disabled=move || retry.pending().get()>"Retry from the failed step"</button>
                        {move || retry.value().get().and_then(|r| r.err()).map(|e| view! { <p role="alert" class="text-sm text-red-600">{e.to_string()}</p> })}
                    </form>
                })}
            </section>
            <section class="card lg:col-span-2" aria-label="Log">
                <h2 class="mb-3 text-base font-semibold">"Log"</h2>
                {move || error.get().map(|e| view! { <p role="alert" class="alert-danger mb-3 text-sm" data-testid="task-error">{e}</p> })}
                {move || (!links.get().is_empty()).then(|| view! {
                    <div class="alert-success mb-3" data-testid="task-output">
                        <p class="text-sm font-medium">"Done. Next:"</p>
                        <ul class="mt-1 flex flex-wrap gap-3 text-sm">
                            {links.get().into_iter().map(|(title, href)| view! { <li><DataLink url=href label=title class="font-medium underline" /></li> }).collect_view()}
                        </ul>
                        {text.get().into_iter().map(|(title, html)| view! {
                            <div class="mt-2 text-sm">
                                <p class="font-semibold">{title}</p>
                                <div class="output-text" inner_html=html></div>
                            </div>
                        }).collect_view()}
                    </div>
                })}
                <pre tabindex="0" class="max-h-[32rem] overflow-auto rounded bg-slate-950 p-3 text-xs text-slate-100" data-testid="task-log" aria-live="polite">
                    {move || log.get().into_iter().map(|l| format!("{}{}\n", l.step_id.map(|s| format!("[{s}] ")).unwrap_or_default(), l.message)).collect::<String>()}
                </pre>
            </section>
        </div>
    }
}
