//! The template wizard (an island): one page per parameter schema, fields
//! generated from the schema and re-generated as answers change (conditional
//! fields), live validation with the server's own rules (`paved-forms`), a
//! review page with secrets masked, a dry-run preview of the files, and
//! progress kept in the browser session (never the secrets) so a reload loses
//! nothing.

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use paved_shared::forms::{Field, FieldError, Widget};
use serde_json::{json, Value};

use super::{Preview, ScaffoldCreate, ScaffoldDryRun, WizardData};
use crate::secrets::SecretPairs;

/// Reads `path` (`a.b`) in an object.
fn get_path<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |v, part| v.get(part))
}

/// Sets (or with `None`, removes) `path` in an object, creating parents.
fn set_path(root: &mut Value, path: &str, value: Option<Value>) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut current = root;
    for part in &parts[..parts.len() - 1] {
        if !current.get(*part).is_some_and(Value::is_object) {
            current[*part] = json!({});
        }
        current = &mut current[*part];
    }
    let last = parts[parts.len() - 1];
    if let Value::Object(map) = current {
        match value {
            Some(v) => {
                map.insert(last.to_owned(), v);
            }
            None => {
                map.remove(last);
            }
        }
    }
}

/// Fills schema defaults for fields that have no answer yet.
fn apply_defaults(schema: &Value, values: &mut Value, secret_paths: &[String]) {
    for field in paved_shared::forms::fields(schema, values) {
        if secret_paths.contains(&field.path) {
            continue;
        }
        if get_path(values, &field.path).is_none() {
            if let Some(default) = field.schema.get("default") {
                set_path(values, &field.path, Some(default.clone()));
            }
        }
    }
}

#[derive(Clone, Copy)]
struct FormState {
    values: RwSignal<Value>,
    secrets: RwSignal<BTreeMap<String, String>>,
    touched: RwSignal<BTreeSet<String>>,
    show_all: RwSignal<bool>,
    server_errors: RwSignal<Vec<(String, String)>>,
    owners: StoredValue<Vec<String>>,
    entities: StoredValue<Vec<super::EntityOption>>,
}

impl FormState {
    /// Answers and secrets together, as the server validates them.
    fn merged(&self) -> Value {
        let mut all = self.values.get();
        if !all.is_object() {
            all = json!({});
        }
        for (k, v) in self.secrets.get() {
            if !v.is_empty() {
                set_path(&mut all, &k, Some(Value::String(v)));
            }
        }
        all
    }

    fn error_for(&self, errors: &[FieldError], path: &str) -> Option<String> {
        let shown = self.show_all.get() || self.touched.with(|t| t.contains(path));
        let server = self
            .server_errors
            .with(|e| e.iter().find(|(p, _)| p == path).map(|(_, m)| m.clone()));
        if server.is_some() {
            return server;
        }
        shown
            .then(|| {
                errors
                    .iter()
                    .find(|e| e.path == path)
                    .map(|e| e.message.clone())
            })
            .flatten()
    }
}

#[cfg(feature = "hydrate")]
const STORAGE_PREFIX: &str = "paved.wizard.";

#[cfg(feature = "hydrate")]
fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.session_storage().ok().flatten())
}

#[cfg(feature = "hydrate")]
fn new_session_id() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        .unwrap_or_default()
}

/// The wizard for one template.
#[island(lazy)]
pub fn Wizard(data: WizardData) -> impl IntoView {
    let template_ref = StoredValue::new(data.template.entity_ref.clone());
    let pages = StoredValue::new(data.pages.clone());
    let page_count = data.pages.len();
    let secret_paths = StoredValue::new(paved_shared::forms::secret_fields(&Value::Array(
        data.pages.iter().map(|p| p.schema.clone()).collect(),
    )));
    let mut initial = json!({});
    for p in &data.pages {
        apply_defaults(&p.schema, &mut initial, &secret_paths.get_value());
    }
    let state = FormState {
        values: RwSignal::new(initial),
        secrets: RwSignal::new(BTreeMap::new()),
        touched: RwSignal::new(BTreeSet::new()),
        show_all: RwSignal::new(false),
        server_errors: RwSignal::new(Vec::new()),
        owners: StoredValue::new(data.owners.clone()),
        entities: StoredValue::new(data.entities.clone()),
    };
    let page = RwSignal::new(0usize);
    let session = RwSignal::new(String::new());
    let restored = RwSignal::new(false);
    let preview: RwSignal<Option<Preview>> = RwSignal::new(None);
    let dry_run = ServerAction::<ScaffoldDryRun>::new();
    let create = ServerAction::<ScaffoldCreate>::new();

    let record = move |event: &'static str, at: Option<i64>| {
        let session = session.get_untracked();
        if session.is_empty() {
            return;
        }
        let template_ref = template_ref.get_value();
        leptos::task::spawn_local(async move {
            let _ = super::scaffold_wizard_event(session, template_ref, event.into(), at).await;
        });
    };

    // In the browser: restore progress from this tab's session, or start a new wizard run.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            let key = format!("{STORAGE_PREFIX}{}", template_ref.get_value());
            let saved = session_storage()
                .and_then(|s| s.get_item(&key).ok().flatten())
                .and_then(|raw| serde_json::from_str::<Value>(&raw).ok());
            match saved {
                Some(saved) => {
                    if let Some(values) = saved.get("values").filter(|v| v.is_object()) {
                        state.values.set(values.clone());
                    }
                    let at = saved["page"].as_u64().unwrap_or(0) as usize;
                    page.set(at.min(page_count));
                    session.set(saved["session"].as_str().unwrap_or_default().to_owned());
                }
                None => {
                    session.set(new_session_id());
                    record("started", Some(0));
                }
            }
        }
        restored.set(true);
    });
    // Keep progress (never the secrets) in the session as the person goes.
    Effect::new(move |_| {
        let values = state.values.get();
        let at = page.get();
        let id = session.get();
        if !restored.get_untracked() {
            return;
        }
        #[cfg(feature = "hydrate")]
        if let Some(storage) = session_storage() {
            let key = format!("{STORAGE_PREFIX}{}", template_ref.get_value());
            let _ = storage.set_item(
                &key,
                &json!({"values": values, "page": at, "session": id}).to_string(),
            );
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (values, at, id);
    });
    Effect::new(move |_| {
        if let Some(Ok(id)) = create.value().get() {
            #[cfg(feature = "hydrate")]
            {
                if let Some(storage) = session_storage() {
                    let _ = storage
                        .remove_item(&format!("{STORAGE_PREFIX}{}", template_ref.get_value()));
                }
                if let Some(w) = web_sys::window() {
                    let _ = w.location().set_href(&format!("/create/tasks/{id}"));
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = id;
        }
    });
    // Server-side field errors (authoritative) go back to their fields and page.
    Effect::new(move |_| {
        let failed = create
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| dry_run.value().get().and_then(|r| r.err()));
        if let Some(crate::error::AppError::InvalidFields(list)) = failed {
            let first_page = pages.get_value().iter().position(|p| {
                let fields = paved_shared::forms::fields(&p.schema, &state.merged());
                list.iter().any(|(path, _)| {
                    fields
                        .iter()
                        .any(|f| path == &f.path || path.starts_with(&format!("{}.", f.path)))
                })
            });
            state.server_errors.set(list);
            if let Some(at) = first_page {
                page.set(at);
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(result)) = dry_run.value().get() {
            preview.set(Some(result));
        }
    });

    let errors = Memo::new(move |_| {
        let at = page.get();
        pages.with_value(|p| {
            p.get(at)
                .map(|pg| paved_shared::forms::validate(&pg.schema, &state.merged()))
                .unwrap_or_default()
        })
    });
    let errors_now = move || {
        let at = page.get();
        pages.with_value(|p| {
            p.get(at)
                .map(|pg| paved_shared::forms::validate(&pg.schema, &state.merged()))
                .unwrap_or_default()
        })
    };
    let go_next = move |_| {
        let errors = errors_now();
        if errors.is_empty() {
            state.show_all.set(false);
            state.server_errors.set(Vec::new());
            let next = page.get_untracked() + 1;
            page.set(next);
            record(
                if next == page_count { "review" } else { "page" },
                Some(next as i64),
            );
        } else {
            state.show_all.set(true);
        }
    };
    let secrets_payload = move || {
        SecretPairs(
            state
                .secrets
                .get_untracked()
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        )
    };

    view! {
        <div data-testid="wizard">
            <ol class="mb-6 flex flex-wrap gap-2 text-sm" aria-label="Wizard steps">
                {(0..=page_count).map(|i| {
                    let title = if i == page_count { "Review".to_owned() } else { data.pages[i].title.clone() };
                    view! {
                        <li class=move || step_class(page.get(), i)
                            aria-current=move || (page.get() == i).then_some("step")>
                            {format!("{}. {title}", i + 1)}
                        </li>
                    }
                }).collect_view()}
            </ol>
            {move || {
                let at = page.get();
                if at < page_count {
                    let current = pages.with_value(|p| p[at].clone());
                    let schema = current.schema.clone();
                    view! {
                        <form class="card" novalidate on:submit=move |ev| { ev.prevent_default(); go_next(()); }>
                            <h2 class="mb-1 text-lg font-semibold">{current.title.clone()}</h2>
                            {current.description.clone().map(|d| view! { <p class="mb-4 text-sm text-slate-600 dark:text-slate-400">{d}</p> })}
                            <div class="flex flex-col gap-4">
                                // Keyed by the field itself: typing never re-creates an input
                                // (focus stays); a conditional field appears or goes as answers change.
                                <For each=move || paved_shared::forms::fields(&schema, &state.merged())
                                    key=|field| serde_json::to_string(field).unwrap_or_default()
                                    let:field>
                                    <FieldInput field state errors />
                                </For>
                            </div>
                            <div class="mt-6 flex gap-2">
                                {(at > 0).then(|| view! {
                                    <button type="button" class="btn-secondary" on:click=move |_| page.update(|p| *p -= 1)>"Back"</button>
                                })}
                                <button type="submit" class="btn-primary">{if at + 1 == page_count { "Review" } else { "Next" }}</button>
                            </div>
                        </form>
                    }.into_any()
                } else {
                    view! { <Review pages state page create dry_run preview template_ref session secrets_payload /> }.into_any()
                }
            }}
        </div>
    }
}

#[component]
fn Review(
    pages: StoredValue<Vec<paved_shared::forms::Page>>,
    state: FormState,
    page: RwSignal<usize>,
    create: ServerAction<ScaffoldCreate>,
    dry_run: ServerAction<ScaffoldDryRun>,
    preview: RwSignal<Option<Preview>>,
    template_ref: StoredValue<String>,
    session: RwSignal<String>,
    secrets_payload: impl Fn() -> SecretPairs + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let merged = state.merged();
    let rows = pages.with_value(|ps| {
        ps.iter()
            .enumerate()
            .map(|(i, p)| {
                let fields: Vec<(String, String)> =
                    flatten(&paved_shared::forms::fields(&p.schema, &merged))
                        .into_iter()
                        .map(|f| {
                            let shown = if f.widget == Widget::Password {
                                if get_path(&merged, &f.path).is_some() {
                                    "••••••••".to_owned()
                                } else {
                                    "(not given)".to_owned()
                                }
                            } else {
                                get_path(&merged, &f.path)
                                    .map(display_answer)
                                    .unwrap_or_else(|| "—".into())
                            };
                            (f.label.clone(), shown)
                        })
                        .collect();
                (i, p.title.clone(), fields)
            })
            .collect::<Vec<_>>()
    });
    let open_file = RwSignal::new(None::<String>);
    view! {
        <div class="card" data-testid="wizard-review">
            <h2 class="mb-4 text-lg font-semibold">"Review"</h2>
            {rows.into_iter().map(|(i, title, fields)| view! {
                <section class="mb-4">
                    <div class="flex items-center justify-between">
                        <h3 class="text-sm font-semibold">{title}</h3>
                        <button type="button" class="text-sm text-indigo-700 hover:underline dark:text-indigo-300" on:click=move |_| page.set(i)>"Change"</button>
                    </div>
                    <dl class="mt-1 grid grid-cols-[minmax(8rem,14rem)_1fr] gap-x-4 gap-y-1 text-sm">
                        {fields.into_iter().map(|(label, value)| view! { <dt class="text-slate-500">{label}</dt><dd class="break-all" data-testid="review-value">{value}</dd> }).collect_view()}
                    </dl>
                </section>
            }).collect_view()}
            {move || create.value().get().and_then(|r| r.err()).or_else(|| dry_run.value().get().and_then(|r| r.err())).map(|e| view! {
                <p role="alert" class="alert-danger mb-3 text-sm">{e.to_string()}</p>
            })}
            <div class="flex flex-wrap gap-2">
                <button type="button" class="btn-secondary" on:click=move |_| page.update(|p| *p -= 1)>"Back"</button>
                <button type="button" class="btn-secondary" disabled=move || dry_run.pending().get()
                    on:click=move |_| {
                        dry_run.dispatch(ScaffoldDryRun { template_ref: template_ref.get_value(), values: state.values.get_untracked(), secrets: secrets_payload() });
                        let s = session.get_untracked();
                        if !s.is_empty() {
                            let t = template_ref.get_value();
                            leptos::task::spawn_local(async move { let _ = super::scaffold_wizard_event(s, t, "dry_run".into(), None).await; });
                        }
                    }>
                    {move || if dry_run.pending().get() { "Previewing…" } else { "Preview files (dry run)" }}
                </button>
                <button type="button" class="btn-primary" disabled=move || create.pending().get()
                    on:click=move |_| { create.dispatch(ScaffoldCreate { template_ref: template_ref.get_value(), values: state.values.get_untracked(), secrets: secrets_payload(), session: session.get_untracked() }); }>
                    {move || if create.pending().get() { "Creating…" } else { "Create" }}
                </button>
            </div>
            {move || preview.get().map(|p| view! {
                <section class="mt-6" data-testid="dry-run">
                    <h3 class="mb-2 text-sm font-semibold">"Dry run"</h3>
                    {p.error.clone().map(|e| view! { <p role="alert" class="alert-danger mb-2 text-sm">{e}</p> })}
                    <ol class="mb-3 flex flex-wrap gap-2 text-xs">
                        {p.steps.iter().map(|(name, status)| view! { <li class="rounded bg-slate-100 px-2 py-1 dark:bg-slate-800">{format!("{name}: {}", status.as_str())}</li> }).collect_view()}
                    </ol>
                    <p class="mb-1 text-sm">{format!("{} files would be created:", p.files.len())}</p>
                    <ul class="max-h-72 overflow-auto rounded border border-slate-200 text-sm dark:border-slate-700" data-testid="dry-run-files">
                        {p.files.iter().map(|f| {
                            let path = f.path.clone();
                            let path2 = f.path.clone();
                            view! {
                                <li><button type="button" class="w-full px-2 py-1 text-left font-mono text-xs hover:bg-slate-100 dark:hover:bg-slate-800"
                                    on:click=move |_| open_file.set(Some(path.clone()))>{path2}</button></li>
                            }
                        }).collect_view()}
                    </ul>
                    {move || open_file.get().and_then(|name| preview.get().and_then(|p| p.files.into_iter().find(|f| f.path == name))).map(|f| view! {
                        <div class="mt-3">
                            <p class="font-mono text-xs text-slate-500">{f.path.clone()}</p>
                            <pre tabindex="0" class="mt-1 max-h-96 overflow-auto rounded bg-slate-100 p-3 text-xs dark:bg-slate-950" data-testid="dry-run-file">{f.content.unwrap_or_else(|| "(binary or large file)".into())}</pre>
                        </div>
                    })}
                </section>
            })}
        </div>
    }
}

fn step_class(current: usize, i: usize) -> &'static str {
    if current == i {
        "rounded-full bg-indigo-600 px-3 py-1 text-white"
    } else if current > i {
        "rounded-full bg-indigo-100 px-3 py-1 text-indigo-800 dark:bg-indigo-900 dark:text-indigo-100"
    } else {
        "rounded-full bg-slate-100 px-3 py-1 text-slate-600 dark:bg-slate-800 dark:text-slate-300"
    }
}

fn flatten(fields: &[Field]) -> Vec<Field> {
    let mut out = Vec::new();
    for f in fields {
        if f.widget == Widget::Object {
            out.extend(flatten(&f.children));
        } else {
            out.push(f.clone());
        }
    }
    out
}

fn display_answer(value: &Value) -> String {
    match value {
        Value::Array(items) => items
            .iter()
            .map(paved_shared::forms::display)
            .collect::<Vec<_>>()
            .join(", "),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => paved_shared::forms::display(other),
    }
}

/// One generated field.
#[component]
fn FieldInput(field: Field, state: FormState, errors: Memo<Vec<FieldError>>) -> impl IntoView {
    let id = format!("field-{}", field.path.replace('.', "-"));
    let path = StoredValue::new(field.path.clone());
    let error = move || {
        errors
            .try_with(|list| state.error_for(list, &path.try_get_value().unwrap_or_default()))
            .flatten()
    };
    let error_id = format!("{id}-error");
    let help_id = format!("{id}-help");
    let described = {
        let (e, h) = (error_id.clone(), help_id.clone());
        move || {
            if error().is_some() {
                e.clone()
            } else {
                h.clone()
            }
        }
    };
    let invalid = move || error().is_some().to_string();
    let touch = move || {
        state.touched.update(|t| {
            t.insert(path.try_get_value().unwrap_or_default());
        })
    };
    let set = move |v: Option<Value>| {
        state
            .values
            .update(|values| set_path(values, &path.try_get_value().unwrap_or_default(), v));
        state
            .server_errors
            .update(|e| e.retain(|(p, _)| p != &path.try_get_value().unwrap_or_default()));
    };
    let current = move || {
        state
            .values
            .with(|v| get_path(v, &path.try_get_value().unwrap_or_default()).cloned())
    };
    let label = format!("{}{}", field.label, if field.required { " *" } else { "" });
    let input: AnyView = match field.widget.clone() {
        Widget::Password => view! {
            <input id=id.clone() type="password" class="input" autocomplete="new-password" aria-describedby=described.clone() aria-invalid=invalid
                prop:value=move || state.secrets.with(|s| s.get(&path.try_get_value().unwrap_or_default()).cloned().unwrap_or_default())
                on:input=move |ev| { let v = event_target_value(&ev); state.secrets.update(|s| { s.insert(path.try_get_value().unwrap_or_default(), v); }); touch(); } />
        }.into_any(),
        Widget::TextArea => view! {
            <textarea id=id.clone() class="input min-h-24" aria-describedby=described.clone() aria-invalid=invalid
                prop:value=move || current().map(|v| paved_shared::forms::display(&v)).unwrap_or_default()
                on:input=move |ev| { let v = event_target_value(&ev); set((!v.is_empty()).then_some(Value::String(v))); }
                on:blur=move |_| touch()></textarea>
        }.into_any(),
        Widget::Number { integer } => view! {
            <input id=id.clone() type="number" step=if integer { "1" } else { "any" } class="input" aria-describedby=described.clone() aria-invalid=invalid
                prop:value=move || current().map(|v| paved_shared::forms::display(&v)).unwrap_or_default()
                on:input=move |ev| {
                    let raw = event_target_value(&ev);
                    let parsed = if raw.trim().is_empty() { None } else if integer { raw.trim().parse::<i64>().ok().map(Value::from).or(Some(Value::String(raw))) } else { raw.trim().parse::<f64>().ok().map(Value::from).or(Some(Value::String(raw))) };
                    set(parsed);
                }
                on:blur=move |_| touch() />
        }.into_any(),
        Widget::Checkbox => view! {
            <input id=id.clone() type="checkbox" class="h-4 w-4" aria-describedby=described.clone()
                prop:checked=move || current().and_then(|v| v.as_bool()).unwrap_or(false)
                on:change=move |ev| { set(Some(Value::Bool(event_target_checked(&ev)))); touch(); } />
        }.into_any(),
        Widget::Radio(options) => {
            let name = id.clone();
            view! {
                <div role="radiogroup" aria-labelledby=format!("{id}-label") class="flex flex-wrap gap-4">
                    {options.into_iter().map(|(value, text)| {
                        let v = StoredValue::new(value);
                        view! {
                            <label class="flex items-center gap-2 text-sm">
                                <input type="radio" name=name.clone() prop:checked=move || current().is_some() && current() == v.try_get_value()
                                    on:change=move |_| { if let Some(x) = v.try_get_value() { set(Some(x)); } touch(); } />
                                {text}
                            </label>
                        }
                    }).collect_view()}
                </div>
            }.into_any()
        }
        Widget::Select(options) => {
            let options = StoredValue::new(options);
            view! {
                <select id=id.clone() class="input" aria-describedby=described.clone() aria-invalid=invalid
                    on:change=move |ev| {
                        let i: Option<usize> = event_target_value(&ev).parse().ok();
                        set(i.and_then(|i| options.with_value(|o| o.get(i).map(|(v, _)| v.clone()))));
                        touch();
                    }>
                    <option value="" selected=move || current().is_none()>"Choose…"</option>
                    {options.get_value().into_iter().enumerate().map(|(i, (value, text))| {
                        let v = StoredValue::new(value);
                        view! { <option value=i.to_string() selected=move || current().is_some() && current() == v.try_get_value()>{text}</option> }
                    }).collect_view()}
                </select>
            }.into_any()
        }
        Widget::OwnerPicker => picker(id.clone(), help_id.clone(), state.owners.get_value().into_iter().map(|o| { let t = o.rsplit('/').next().unwrap_or_default().to_owned(); (o, format!("Team {t}")) }).collect(), current, set, touch),
        Widget::EntityPicker { kinds } => picker(
            id.clone(),
            help_id.clone(),
            state.entities.get_value().into_iter().filter(|e| kinds.is_empty() || kinds.contains(&e.kind)).map(|e| (e.entity_ref.clone(), format!("{} ({})", e.title, e.entity_ref))).collect(),
            current,
            set,
            touch,
        ),
        Widget::RepoUrlPicker { allowed_hosts } => view! { <RepoUrlInput id=id.clone() allowed_hosts current=Signal::derive(current) set=Callback::new(move |v: Option<Value>| { set(v); touch(); }) /> }.into_any(),
        Widget::List { options } if !options.is_empty() => view! {
            <div class="flex flex-wrap gap-4">
                {options.into_iter().map(|(value, text)| {
                    let v = StoredValue::new(value);
                    view! {
                        <label class="flex items-center gap-2 text-sm">
                            <input type="checkbox" prop:checked=move || current().and_then(|c| c.as_array().map(|a| v.try_get_value().is_some_and(|x| a.contains(&x)))).unwrap_or(false)
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    let mut list = current().and_then(|c| c.as_array().cloned()).unwrap_or_default();
                                    let item = v.try_get_value();
                                    list.retain(|x| Some(x) != item.as_ref());
                                    if let (true, Some(item)) = (on, item) { list.push(item); }
                                    set(Some(Value::Array(list)));
                                    touch();
                                } />
                            {text}
                        </label>
                    }
                }).collect_view()}
            </div>
        }.into_any(),
        Widget::List { .. } => view! {
            <textarea id=id.clone() class="input min-h-20 font-mono" aria-describedby=described.clone() aria-invalid=invalid
                prop:value=move || current().and_then(|v| v.as_array().map(|a| a.iter().map(paved_shared::forms::display).collect::<Vec<_>>().join("\n"))).unwrap_or_default()
                on:input=move |ev| {
                    let lines: Vec<Value> = event_target_value(&ev).lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| Value::String(l.to_owned())).collect();
                    set(Some(Value::Array(lines)));
                }
                on:blur=move |_| touch()></textarea>
        }.into_any(),
        Widget::Object => {
            let children = field.children.clone();
            view! {
                <fieldset class="rounded-lg border border-slate-200 p-3 dark:border-slate-700">
                    {children.into_iter().map(|f| view! { <FieldInput field=f state errors /> }).collect_view()}
                </fieldset>
            }.into_any()
        }
        Widget::Text => view! {
            <input id=id.clone() class="input" autocomplete="off" autofocus=field.autofocus aria-describedby=described.clone() aria-invalid=invalid
                prop:value=move || current().map(|v| paved_shared::forms::display(&v)).unwrap_or_default()
                on:input=move |ev| { let v = event_target_value(&ev); set((!v.is_empty()).then_some(Value::String(v))); }
                on:blur=move |_| touch() />
        }.into_any(),
    };
    let is_checkbox = field.widget == Widget::Checkbox;
    let field_label = StoredValue::new(field.label.clone());
    view! {
        <div data-testid="wizard-field" data-path=field.path.clone()>
            // A checkbox sits before its label, on one line; other inputs go under theirs.
            {if is_checkbox {
                view! { <div class="flex items-center gap-2">{input}<label id=format!("{id}-label") for=id.clone() class="text-sm font-medium">{label}</label></div> }.into_any()
            } else {
                view! { <label id=format!("{id}-label") for=id.clone() class="label">{label}</label>{input} }.into_any()
            }}
            {field.help.clone().map(|h| view! { <p id=help_id.clone() class="mt-1 text-xs text-slate-500">{h}</p> })}
            {move || error().map(|e| view! { <p id=error_id.clone() class="mt-1 text-xs text-red-600" role="alert">{format!("{} {}", field_label.try_get_value().unwrap_or_default(), e)}</p> })}
        </div>
    }
}

fn picker(
    id: String,
    described: String,
    options: Vec<(String, String)>,
    current: impl Fn() -> Option<Value> + Copy + Send + Sync + 'static,
    set: impl Fn(Option<Value>) + Copy + Send + Sync + 'static,
    touch: impl Fn() + Copy + Send + Sync + 'static,
) -> AnyView {
    let empty = options.is_empty();
    view! {
        <select id=id class="input" aria-describedby=described
            on:change=move |ev| { let v = event_target_value(&ev); set((!v.is_empty()).then_some(Value::String(v))); touch(); }>
            <option value="" selected=move || current().is_none()>{if empty { "Nothing to choose from yet" } else { "Choose…" }}</option>
            {options.into_iter().map(|(value, text)| {
                let v = value.clone();
                view! { <option value=value selected=move || current().and_then(|c| c.as_str().map(str::to_owned)) == Some(v.clone())>{text}</option> }
            }).collect_view()}
        </select>
    }
    .into_any()
}

/// `host?owner=o&repo=r`, edited as three inputs.
#[component]
fn RepoUrlInput(
    id: String,
    allowed_hosts: Vec<String>,
    current: Signal<Option<Value>>,
    set: Callback<Option<Value>>,
) -> impl IntoView {
    let parts = move || {
        let raw = current
            .get()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let (host, query) = raw.split_once('?').unwrap_or((raw.as_str(), ""));
        let mut owner = String::new();
        let mut repo = String::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("owner", v)) => owner = v.to_owned(),
                Some(("repo", v)) => repo = v.to_owned(),
                _ => {}
            }
        }
        (host.to_owned(), owner, repo)
    };
    let first_host = allowed_hosts.first().cloned().unwrap_or_default();
    let compose = move |host: String, owner: String, repo: String| {
        let host = if host.is_empty() {
            first_host.clone()
        } else {
            host
        };
        if owner.is_empty() && repo.is_empty() {
            set.run(None);
        } else {
            set.run(Some(Value::String(format!(
                "{host}?owner={owner}&repo={repo}"
            ))));
        }
    };
    let compose = StoredValue::new(compose);
    let hosts = allowed_hosts.clone();
    view! {
        <div class="grid gap-2 sm:grid-cols-3">
            <label class="text-xs">"Host"
                {if hosts.len() > 1 {
                    view! {
                        <select class="input" on:change=move |ev| { let (_, o, r) = parts(); compose.with_value(|c| c(event_target_value(&ev), o, r)); }>
                            {hosts.iter().map(|h| { let h2 = h.clone(); view! { <option value=h.clone() selected=move || parts().0 == h2>{h.clone()}</option> } }).collect_view()}
                        </select>
                    }.into_any()
                } else {
                    view! { <input class="input" readonly prop:value=hosts.first().cloned().unwrap_or_default() /> }.into_any()
                }}
            </label>
            <label class="text-xs">"Owner"
                <input id=id class="input" autocomplete="off" prop:value=move || parts().1
                    on:input=move |ev| { let (h, _, r) = parts(); compose.with_value(|c| c(h, event_target_value(&ev), r)); } />
            </label>
            <label class="text-xs">"Repository"
                <input class="input" autocomplete="off" prop:value=move || parts().2
                    on:input=move |ev| { let (h, o, _) = parts(); compose.with_value(|c| c(h, o, event_target_value(&ev))); } />
            </label>
        </div>
    }
}
