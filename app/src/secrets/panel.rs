//! The secrets panel (an island): list, create, rotate, versions, delete,
//! destroy, and the workload access card with the injector annotations.
//! Values live only in the form's inputs until they are sent, then are cleared.

use leptos::prelude::*;

use super::{
    key_problem, name_problem, AccessView, DeleteSecretVersion, DestroySecret, FinishProvisioning,
    SaveSecret, SecretPairs, SecretSummary, SecretVersion, SecretsPanelData as PanelData,
    StepOutcome, StepState, LLM_HOLDER, LLM_KEYS_NAME,
};
use crate::components::{format_time, Badge, Col, Table, Tone};

#[derive(Clone, Copy)]
struct PairRow {
    id: usize,
    key: RwSignal<String>,
    value: RwSignal<String>,
}

fn new_row(id: usize) -> PairRow {
    PairRow {
        id,
        key: RwSignal::new(String::new()),
        value: RwSignal::new(String::new()),
    }
}

/// What the editor is doing: creating, or rotating the named secret from a version.
#[derive(Clone, PartialEq)]
enum Editing {
    Closed,
    Create,
    Rotate { name: String, version: i64 },
}

/// A service's, team's or LLM keys' secrets.
#[island(lazy)]
pub fn SecretsPanel(data: PanelData) -> impl IntoView {
    let team = StoredValue::new(data.team.clone());
    let holder = StoredValue::new(data.holder.clone());
    let is_llm = data.holder == LLM_HOLDER;
    let can_write = data.can_write;
    let can_destroy = data.can_destroy;
    let secrets = RwSignal::new(data.secrets.clone());
    let access = RwSignal::new(data.access.clone());
    let steps: RwSignal<Option<(String, Vec<StepOutcome>)>> = RwSignal::new(None);
    let editing = RwSignal::new(Editing::Closed);
    let name = RwSignal::new(String::new());
    let rows = RwSignal::new(vec![new_row(0)]);
    let next_id = StoredValue::new(1usize);
    let touched = RwSignal::new(false);

    let save = ServerAction::<SaveSecret>::new();
    let finish = ServerAction::<FinishProvisioning>::new();

    let clear_form = move || {
        // Drop the values from memory and from the inputs.
        rows.with_untracked(|r| {
            for row in r {
                row.value.set(String::new());
            }
        });
        rows.set(vec![new_row(0)]);
        next_id.set_value(1);
        name.set(String::new());
        touched.set(false);
    };

    Effect::new(move |_| {
        if let Some(Ok(result)) = save.value().get() {
            let secret = result.secret.clone();
            secrets.update(|list| {
                list.retain(|s| s.name != secret.name);
                list.push(secret.clone());
                list.sort_by(|a, b| a.name.cmp(&b.name));
            });
            if result.access.is_some() {
                access.set(result.access.clone());
            }
            let verb = if result.created { "Created" } else { "Rotated" };
            steps.set(Some((
                format!(
                    "{verb} {} (version {}).",
                    secret.name, secret.current_version
                ),
                result.steps.clone(),
            )));
            editing.set(Editing::Closed);
            clear_form();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok((done, info))) = finish.value().get() {
            access.set(Some(info));
            steps.set(Some(("Provisioning re-run.".into(), done)));
        }
    });

    let name_error = move || {
        let n = name.get();
        (touched.get() && !is_llm && matches!(editing.get(), Editing::Create))
            .then(|| name_problem(&n))
            .flatten()
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        let pairs: Vec<(String, String)> = rows.with_untracked(|r| {
            r.iter()
                .map(|row| (row.key.get_untracked(), row.value.get_untracked()))
                .filter(|(k, v)| !(k.is_empty() && v.is_empty()))
                .collect()
        });
        let (secret_name, expected_version) = match editing.get_untracked() {
            Editing::Rotate { name, version } => (name, version),
            _ if is_llm => (LLM_KEYS_NAME.to_owned(), 0),
            _ => (name.get_untracked().trim().to_owned(), 0),
        };
        if !is_llm && name_problem(&secret_name).is_some() {
            return;
        }
        if pairs.is_empty()
            || pairs
                .iter()
                .any(|(k, v)| key_problem(k).is_some() || v.is_empty())
        {
            return;
        }
        save.dispatch(SaveSecret {
            team: team.get_value(),
            holder: holder.get_value(),
            name: secret_name,
            pairs: SecretPairs(pairs),
            expected_version,
        });
    };

    let editor = move || {
        let mode = editing.get();
        if mode == Editing::Closed {
            return None;
        }
        let heading = match &mode {
            Editing::Create if is_llm => "Set LLM provider keys".to_owned(),
            Editing::Create => "New secret".to_owned(),
            Editing::Rotate { name, version } => {
                format!("Rotate {name} (replaces version {version} with a new version)")
            }
            Editing::Closed => String::new(),
        };
        let creating = matches!(mode, Editing::Create) && !is_llm;
        Some(view! {
            <form on:submit=submit class="mt-4 rounded-lg border border-slate-200 p-4 dark:border-slate-700" data-testid="secret-form" novalidate>
                <h3 class="mb-3 text-sm font-semibold">{heading}</h3>
                {creating.then(|| view! {
                    <div class="mb-3">
                        <label for="secret-name" class="label">"Name"</label>
                        <input id="secret-name" class="input" autocomplete="off" placeholder="database"
                            aria-describedby="secret-name-help"
                            aria-invalid=move || name_error().is_some().to_string()
                            prop:value=move || name.get()
                            on:input=move |ev| { name.set(event_target_value(&ev)); touched.set(true); } />
                        <p id="secret-name-help" class=move || if name_error().is_some() { "mt-1 text-xs text-red-600" } else { "mt-1 text-xs text-slate-500" }>
                            {move || name_error().unwrap_or("The file name in the pod: /vault/secrets/<name>.")}
                        </p>
                    </div>
                })}
                <fieldset>
                    <legend class="label">{if is_llm { "Provider keys (e.g. OPENAI_API_KEY)" } else { "Keys and values" }}</legend>
                    <For each=move || rows.get() key=|row| row.id let:row>
                        <PairInputs row touched rows />
                    </For>
                </fieldset>
                <button type="button" class="btn-secondary mt-2 text-xs"
                    on:click=move |_| {
                        let id = next_id.get_value();
                        next_id.set_value(id + 1);
                        rows.update(|r| r.push(new_row(id)));
                    }>"Add another key"</button>
                <p class="mt-3 text-xs text-slate-500">
                    "Values go straight to Vault. Paved stores only the name, version and who wrote it, and clears this form once saved."
                </p>
                {move || save.value().get().and_then(|r| r.err()).map(|e| view! {
                    <p role="alert" class="mt-2 text-sm text-red-600" data-testid="secret-error">{e.to_string()}</p>
                })}
                <div class="mt-3 flex gap-2">
                    <button type="submit" class="btn-primary" disabled=move || save.pending().get()>
                        {move || if save.pending().get() { "Saving to Vault…" } else { "Save to Vault" }}
                    </button>
                    <button type="button" class="btn-secondary" on:click=move |_| { editing.set(Editing::Closed); clear_form(); }>"Cancel"</button>
                </div>
            </form>
        })
    };

    view! {
        <div data-testid="secrets-panel">
            {data.vault_notice.clone().map(|n| view! { <p role="alert" class="alert-danger mb-3 text-sm">{n}</p> })}
            {move || {
                let list = secrets.get();
                if list.is_empty() {
                    view! {
                        <div class="rounded-xl border border-dashed border-slate-300 p-6 text-center dark:border-slate-700">
                            <p class="font-medium">{if is_llm { "No LLM provider keys yet" } else { "No secrets yet" }}</p>
                            <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">
                                {if is_llm {
                                    "Team leads set the team's own provider keys here; until then the gateway uses the platform's."
                                } else if can_write {
                                    "Add one: its values go straight to Vault, and the page shows the annotations your pods need to read it."
                                } else {
                                    "Nothing has been provisioned here yet."
                                }}
                            </p>
                        </div>
                    }.into_any()
                } else {
                    view! { <SecretTable list team holder can_write can_destroy editing secrets /> }.into_any()
                }
            }}
            {move || steps.get().map(|(summary, steps)| view! { <StepList summary steps /> })}
            {move || (can_write && editing.get() == Editing::Closed && (!is_llm || secrets.get().is_empty())).then(|| view! {
                <button type="button" class="btn-primary mt-4" on:click=move |_| { steps.set(None); editing.set(Editing::Create); }>
                    {if is_llm { "Set provider keys" } else { "Add secret" }}
                </button>
            })}
            {editor}
            {move || access.get().map(|info| view! { <AccessCard info finish team holder /> })}
        </div>
    }
}

#[component]
fn PairInputs(
    row: PairRow,
    touched: RwSignal<bool>,
    rows: RwSignal<Vec<PairRow>>,
) -> impl IntoView {
    let key_id = format!("secret-key-{}", row.id);
    let value_id = format!("secret-value-{}", row.id);
    let key_error = move || {
        let key = row.key.get();
        (touched.get() || !key.is_empty())
            .then(|| key_problem(&key))
            .flatten()
    };
    let value_error =
        move || (touched.get() && row.value.get().is_empty()).then_some("Enter a value.");
    view! {
        <div class="mb-2 grid gap-2 sm:grid-cols-[1fr_1fr_auto]" data-testid="secret-pair">
            <div>
                <label for=key_id.clone() class="sr-only">"Key"</label>
                <input id=key_id class="input font-mono" placeholder="KEY" autocomplete="off" spellcheck="false"
                    aria-label="Key"
                    aria-invalid=move || key_error().is_some().to_string()
                    prop:value=move || row.key.get()
                    on:input=move |ev| row.key.set(event_target_value(&ev)) />
                {move || key_error().map(|m| view! { <p class="mt-1 text-xs text-red-600">{m}</p> })}
            </div>
            <div>
                <label for=value_id.clone() class="sr-only">"Value"</label>
                <input id=value_id type="password" class="input font-mono" placeholder="value" autocomplete="new-password"
                    aria-label="Value"
                    aria-invalid=move || value_error().is_some().to_string()
                    prop:value=move || row.value.get()
                    on:input=move |ev| row.value.set(event_target_value(&ev)) />
                {move || value_error().map(|m| view! { <p class="mt-1 text-xs text-red-600">{m}</p> })}
            </div>
            <button type="button" class="btn-secondary self-start text-xs" aria-label="Remove this key"
                on:click=move |_| {
                    row.value.set(String::new());
                    rows.update(|r| { if r.len() > 1 { r.retain(|x| x.id != row.id) } });
                }>"Remove"</button>
        </div>
    }
}

#[component]
fn SecretTable(
    list: Vec<SecretSummary>,
    team: StoredValue<String>,
    holder: StoredValue<String>,
    can_write: bool,
    can_destroy: bool,
    editing: RwSignal<Editing>,
    secrets: RwSignal<Vec<SecretSummary>>,
) -> impl IntoView {
    view! {
        <Table columns=vec![Col::text("Name"), Col::text("Version"), Col::text("Last written"), Col::actions("Actions")] testid="secrets-table">
                    {list.into_iter().map(|s| view! {
                        <SecretRow s team holder can_write can_destroy editing secrets />
                    }).collect_view()}
                </Table>
    }
}

#[component]
fn SecretRow(
    s: SecretSummary,
    team: StoredValue<String>,
    holder: StoredValue<String>,
    can_write: bool,
    can_destroy: bool,
    editing: RwSignal<Editing>,
    secrets: RwSignal<Vec<SecretSummary>>,
) -> impl IntoView {
    let show_versions = RwSignal::new(false);
    let confirm_destroy = RwSignal::new(false);
    let name = StoredValue::new(s.name.clone());
    let version = s.current_version;
    let versions = Resource::new(
        move || show_versions.get(),
        move |open| async move {
            if open {
                Some(
                    super::secret_versions(team.get_value(), holder.get_value(), name.get_value())
                        .await,
                )
            } else {
                None
            }
        },
    );
    let delete = ServerAction::<DeleteSecretVersion>::new();
    let destroy = ServerAction::<DestroySecret>::new();
    let confirmation = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            versions.refetch();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = destroy.value().get() {
            secrets.update(|list| list.retain(|x| x.name != name.get_value()));
        }
    });
    let rotate_label = format!("Rotate {}", s.name);
    let versions_label = format!("Versions of {}", s.name);
    let destroy_label = format!("Destroy {}", s.name);
    view! {
        <tr data-testid="secret-row">
            <td>
                <span class="font-medium">{s.name.clone()}</span>
                <code class="block break-all text-xs text-slate-500">{s.path.clone()}</code>
            </td>
            <td><Badge tone=Tone::Info>{format!("v{}", s.current_version)}</Badge></td>
            <td class="whitespace-nowrap text-sm">{format_time(s.updated_at)}<span class="block text-xs text-slate-500">{s.updated_by.clone()}</span></td>
            <td class="text-right">
                <div class="flex flex-wrap justify-end gap-1">
                    {can_write.then(|| view! {
                        <button type="button" class="btn-secondary text-xs" aria-label=rotate_label
                            on:click=move |_| editing.set(Editing::Rotate { name: name.get_value(), version })>"Rotate"</button>
                    })}
                    <button type="button" class="btn-secondary text-xs" aria-label=versions_label
                        aria-expanded=move || show_versions.get().to_string()
                        on:click=move |_| show_versions.update(|v| *v = !*v)>"Versions"</button>
                    {can_destroy.then(|| view! {
                        <button type="button" class="btn-danger text-xs" aria-label=destroy_label
                            on:click=move |_| confirm_destroy.update(|v| *v = !*v)>"Destroy"</button>
                    })}
                </div>
            </td>
        </tr>
        {move || confirm_destroy.get().then(|| view! {
            <tr><td colspan="4">
                <form class="flex flex-wrap items-end gap-2" on:submit=move |ev| {
                    ev.prevent_default();
                    destroy.dispatch(DestroySecret { team: team.get_value(), holder: holder.get_value(), name: name.get_value(), confirmation: confirmation.get_untracked() });
                }>
                    <label class="text-sm">
                        {format!("Type {} to destroy every version for good:", name.get_value())}
                        <input class="input mt-1" autocomplete="off" prop:value=move || confirmation.get()
                            on:input=move |ev| confirmation.set(event_target_value(&ev)) />
                    </label>
                    <button type="submit" class="btn-danger" disabled=move || confirmation.get() != name.get_value()>"Destroy all versions"</button>
                    {move || destroy.value().get().and_then(|r| r.err()).map(|e| view! { <p role="alert" class="text-sm text-red-600">{e.to_string()}</p> })}
                </form>
            </td></tr>
        })}
        {move || show_versions.get().then(|| view! {
            <tr><td colspan="4">
                <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading versions…"</p> }>
                    {move || Suspend::new(async move {
                        match versions.await {
                            Some(Ok(list)) => view! { <VersionList list can_destroy delete team holder name /> }.into_any(),
                            Some(Err(e)) => view! { <p role="alert" class="text-sm text-red-600">{e.to_string()}</p> }.into_any(),
                            None => ().into_any(),
                        }
                    })}
                </Transition>
                {move || delete.value().get().and_then(|r| r.err()).map(|e| view! { <p role="alert" class="text-sm text-red-600">{e.to_string()}</p> })}
            </td></tr>
        })}
    }
}

#[component]
fn VersionList(
    list: Vec<SecretVersion>,
    can_destroy: bool,
    delete: ServerAction<DeleteSecretVersion>,
    team: StoredValue<String>,
    holder: StoredValue<String>,
    name: StoredValue<String>,
) -> impl IntoView {
    view! {
        <ul class="divide-y divide-slate-200 text-sm dark:divide-slate-700" data-testid="secret-versions">
            {list.into_iter().map(|v| {
                let state = if v.destroyed { Some("destroyed") } else if v.deleted_at.is_some() { Some("deleted") } else { None };
                let live = state.is_none();
                let number = v.version;
                view! {
                    <li class="flex flex-wrap items-center gap-2 py-1">
                        <span class="font-medium">{format!("Version {}", v.version)}</span>
                        <span class="text-slate-500">{v.created_at.chars().take(19).collect::<String>().replace('T', " ")}</span>
                        <span class="text-slate-500">{v.created_by.clone().unwrap_or_else(|| "written outside Paved".into())}</span>
                        {state.map(|s| view! { <Badge tone=Tone::Warning>{s}</Badge> })}
                        {(can_destroy && live).then(|| view! {
                            <button type="button" class="btn-secondary ml-auto text-xs" aria-label=format!("Delete version {number}")
                                on:click=move |_| { delete.dispatch(DeleteSecretVersion { team: team.get_value(), holder: holder.get_value(), name: name.get_value(), version: number }); }>
                                "Delete version"
                            </button>
                        })}
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

#[component]
fn StepList(summary: String, steps: Vec<StepOutcome>) -> impl IntoView {
    let failed = steps.iter().any(|s| s.state == StepState::Failed);
    view! {
        <div role="status" class=if failed { "alert-danger mt-4" } else { "alert-success mt-4" } data-testid="secret-steps">
            <p class="text-sm font-medium">{summary}</p>
            <ol class="mt-2 space-y-1 text-sm">
                {steps.into_iter().map(|s| {
                    let mark = match s.state { StepState::Done => "✓", StepState::Failed => "✗", StepState::Skipped => "–" };
                    view! { <li><span aria-hidden="true">{mark}" "</span><span class="sr-only">{s.state.as_str()}": "</span>{s.label}<span class="block pl-5 text-xs opacity-80">{s.detail}</span></li> }
                }).collect_view()}
            </ol>
            {failed.then(|| view! { <p class="mt-2 text-sm">"The secret itself was saved. Use “Finish provisioning” once Vault is healthy again."</p> })}
        </div>
    }
}

#[component]
fn AccessCard(
    info: AccessView,
    finish: ServerAction<FinishProvisioning>,
    team: StoredValue<String>,
    holder: StoredValue<String>,
) -> impl IntoView {
    let yaml = info.annotations_yaml.clone();
    let copy_source = yaml.clone();
    let copied = RwSignal::new(false);
    view! {
        <div class="mt-6 border-t border-slate-200 pt-4 dark:border-slate-700" data-testid="secret-access">
            <h3 class="mb-2 flex items-center gap-2 text-sm font-semibold">
                "Workload access"
                {if info.complete {
                    view! { <Badge tone=Tone::Success>"in place"</Badge> }.into_any()
                } else {
                    view! { <Badge tone=Tone::Warning>"incomplete"</Badge> }.into_any()
                }}
            </h3>
            <dl class="grid grid-cols-[9rem_1fr] gap-x-3 gap-y-1 text-sm">
                <dt class="text-slate-500">"Vault policy"</dt><dd><code class="text-xs">{info.policy_name.clone()}</code></dd>
                {info.role_name.clone().map(|r| view! { <dt class="text-slate-500">"Kubernetes role"</dt><dd><code class="text-xs">{r}</code></dd> })}
                {info.workload().map(|w| view! { <dt class="text-slate-500">"Service account"</dt><dd><code class="text-xs">{w}</code></dd> })}
            </dl>
            {info.last_error.clone().map(|e| view! {
                <div role="alert" class="alert-danger mt-3 text-sm">
                    <p>{e}</p>
                    <button type="button" class="btn-primary mt-2" disabled=move || finish.pending().get()
                        on:click=move |_| { finish.dispatch(FinishProvisioning { team: team.get_value(), holder: holder.get_value() }); }>
                        {move || if finish.pending().get() { "Provisioning…" } else { "Finish provisioning" }}
                    </button>
                    {move || finish.value().get().and_then(|r| r.err()).map(|e| view! { <p class="mt-1">{e.to_string()}</p> })}
                </div>
            })}
            {(!yaml.is_empty()).then(|| view! {
                <div class="mt-3">
                    <div class="mb-1 flex items-center justify-between">
                        <p class="text-sm">"Add these annotations to your pod template; the Vault Agent writes each secret to /vault/secrets/<name> as KEY=value lines."</p>
                        <button type="button" class="btn-secondary text-xs" on:click=move |_| {
                            #[cfg(feature = "hydrate")]
                            if let Some(window) = web_sys::window() {
                                let _ = window.navigator().clipboard().write_text(&copy_source);
                            }
                            #[cfg(not(feature = "hydrate"))]
                            let _ = &copy_source;
                            copied.set(true);
                        }>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
                    </div>
                    <pre tabindex="0" class="overflow-x-auto rounded bg-slate-100 p-3 text-xs dark:bg-slate-950" data-testid="injector-annotations">{yaml}</pre>
                </div>
            })}
        </div>
    }
}
