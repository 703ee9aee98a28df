//! Surveys in the UI: the prompt on the home page (`SurveyPromptCard`), the
//! surveys page (`/surveys`: what you are asked, and for platform PMs the
//! builder and every round's NPS over time) and a survey's results
//! (`/surveys/:id`, with `?team=` for a team lead): NPS with the response
//! rate, the score distribution, the driver heatmap (team × driver) and
//! comments by theme. Groups below the survey's minimum size arrive hidden
//! from the server and are shown as such.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use paved_shared::surveys::{
    AnswerInput, GroupResult, Results, Round, Score, Survey, SurveyInput, SurveyState,
    SurveysOverview, Theme, DEFAULT_MIN_GROUP, RESULT_TEAMS_PER_PAGE,
};

use crate::components::{loaded, percent_encode, Badge, Card, EmptyState, Field, PageHeader, Tone};
use crate::error::AppError;

/// Now, in seconds, from the one clock budgets and outcomes use.
#[cfg(feature = "ssr")]
fn now(core: &paved_core::CoreState) -> i64 {
    core.budgets.ledger.now_ms() / 1000
}

/// The survey the home page offers the caller now, if any.
#[server(endpoint = "survey_prompt_next")]
pub async fn survey_prompt_next() -> Result<Option<Survey>, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::outcomes::surveys::prompt(&core, &user, now(&core)).await?)
}

/// Keeps the caller's answer (or changes it while the survey is open).
#[server(endpoint = "survey_respond", input = Json)]
pub async fn survey_respond(id: String, answer: AnswerInput) -> Result<AnswerInput, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::outcomes::surveys::answer(&core, &user, &id, &answer, now(&core)).await?)
}

/// Hides the prompt for a few days, or for good (`dismiss`).
#[server(endpoint = "survey_hold")]
pub async fn survey_hold(id: String, dismiss: bool) -> Result<(), AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::outcomes::surveys::hold_prompt(&core, &user, &id, dismiss, now(&core)).await?)
}

/// The surveys page's data.
#[server(endpoint = "surveys_page_data")]
pub async fn surveys_page_data() -> Result<SurveysOverview, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::outcomes::surveys::overview(&core, &user, now(&core)).await?)
}

/// Creates a survey (platform PMs and admins).
#[server(endpoint = "survey_new", input = Json)]
pub async fn survey_new(input: SurveyInput) -> Result<Survey, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::outcomes::surveys::create(&core, &user, &input, now(&core)).await?)
}

/// A survey's results: platform-wide, or one team's for its lead.
#[server(endpoint = "survey_report")]
pub async fn survey_report(
    id: String,
    team: Option<String>,
    page: Option<usize>,
) -> Result<Results, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let team = team.filter(|t| !t.is_empty());
    Ok(paved_core::outcomes::surveys::results_page(
        &core,
        &user,
        &id,
        team.as_deref(),
        page.unwrap_or(1),
        now(&core),
    )
    .await?)
}

/// Replaces a survey's comment themes (platform PMs and admins).
#[server(endpoint = "survey_save_themes", input = Json)]
pub async fn survey_save_themes(id: String, themes: Vec<Theme>) -> Result<Survey, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    Ok(paved_core::outcomes::surveys::set_themes(&core, &user, &id, &themes, now(&core)).await?)
}

fn date(rfc3339: &str) -> String {
    rfc3339.get(..10).unwrap_or(rfc3339).to_owned()
}

fn state_badge(state: SurveyState) -> impl IntoView {
    let (tone, label) = match state {
        SurveyState::Open => (Tone::Success, "Open"),
        SurveyState::Scheduled => (Tone::Info, "Scheduled"),
        SurveyState::Closed => (Tone::Neutral, "Closed"),
    };
    view! { <Badge tone>{label}</Badge> }
}

/// The prompt on the home page: the survey the caller has not answered,
/// snoozed or dismissed, or nothing at all.
#[component]
pub fn SurveyPromptCard() -> impl IntoView {
    let next = Resource::new(|| (), |_| survey_prompt_next());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                // A prompt that cannot load is not worth an error on the home page.
                next.await.ok().flatten().map(|survey| view! {
                    <section class="card mb-6 border-indigo-200 dark:border-indigo-900" data-testid="survey-prompt" aria-label="Survey">
                        <SurveyForm survey mine=None prompt=true />
                    </section>
                })
            })}
        </Suspense>
    }
}

/// Answering a survey: a score (one click), optional drivers and comment,
/// then Send (the second click). In the prompt, also "Later" and "Don't
/// ask again". An island.
#[island(lazy)]
pub fn SurveyForm(survey: Survey, mine: Option<AnswerInput>, prompt: bool) -> impl IntoView {
    let respond = ServerAction::<SurveyRespond>::new();
    let hold = ServerAction::<SurveyHold>::new();
    let id = StoredValue::new(survey.id.clone());
    let questions = survey.drivers.clone();
    let n = questions.len();
    let score = RwSignal::new(mine.as_ref().map(|m| m.score));
    let drivers = RwSignal::new({
        let mut d = mine.as_ref().map(|m| m.drivers.clone()).unwrap_or_default();
        d.resize(n, None);
        d
    });
    let comment = RwSignal::new(
        mine.as_ref()
            .and_then(|m| m.comment.clone())
            .unwrap_or_default(),
    );
    let answered_before = mine.is_some();
    let sent = Signal::derive(move || matches!(respond.value().get(), Some(Ok(_))));
    let held = Signal::derive(move || matches!(hold.value().get(), Some(Ok(()))));
    let dismissing = RwSignal::new(false);
    let problem = Signal::derive(move || {
        respond
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| hold.value().get().and_then(|r| r.err()))
    });
    let send = move |_| {
        if let Some(s) = score.get_untracked() {
            let c = comment.get_untracked();
            respond.dispatch(SurveyRespond {
                id: id.get_value(),
                answer: AnswerInput {
                    score: s,
                    drivers: drivers.get_untracked(),
                    comment: (!c.trim().is_empty()).then_some(c),
                },
            });
        }
    };
    let closes = date(&survey.closes_at);
    let title = survey.title.clone();
    let question = survey.question.clone();
    let asks_comment = survey.comment;
    view! {
        {move || if held.get() {
            let text = if dismissing.get_untracked() {
                "We won't ask about this survey here again. You can still answer it on the Surveys page."
            } else {
                "We'll ask again in a few days. You can answer any time on the Surveys page."
            };
            view! { <p class="text-sm text-slate-600 dark:text-slate-400" data-testid="survey-held">{text}</p> }.into_any()
        } else if sent.get() {
            let closes = closes.clone();
            view! {
                <div data-testid="survey-thanks" role="status">
                    <p class="font-medium">"Thank you: your answer is in."</p>
                    <p class="mt-1 text-sm text-slate-600 dark:text-slate-400">
                        {format!("It is stored without your name. You can change it on the Surveys page until {closes}.")}
                    </p>
                </div>
            }.into_any()
        } else {
            let questions = questions.clone();
            let title = title.clone();
            let question = question.clone();
            let closes = closes.clone();
            view! {
                <div class="flex flex-col gap-4">
                    <div>
                        <p class="text-xs font-semibold uppercase tracking-wide text-indigo-600 dark:text-indigo-400">{title}</p>
                        <p class="mt-1 font-medium" id=format!("q-{}", id.get_value())>{question}</p>
                    </div>
                    <div role="radiogroup" aria-labelledby=format!("q-{}", id.get_value()) class="flex flex-wrap gap-1">
                        {(0u8..=10).map(|v| view! {
                            <button type="button" role="radio" data-testid=format!("score-{v}")
                                aria-checked=move || (score.get() == Some(v)).to_string()
                                aria-label=format!("{v} out of 10")
                                class=move || if score.get() == Some(v) { "btn-primary min-w-9 px-2" } else { "btn-secondary min-w-9 px-2" }
                                on:click=move |_| score.set(Some(v))>
                                {v}
                            </button>
                        }).collect_view()}
                    </div>
                    <div class="flex justify-between text-xs text-slate-500 dark:text-slate-400" aria-hidden="true">
                        <span>"0 · not at all likely"</span><span>"10 · extremely likely"</span>
                    </div>
                    <Show when=move || score.get().is_some()>
                        {questions.iter().enumerate().map(|(i, q)| {
                            let label_id = format!("d-{}-{i}", id.get_value());
                            view! {
                                <div class="flex flex-col gap-1 sm:flex-row sm:items-center sm:justify-between">
                                    <span class="text-sm" id=label_id.clone()>{q.clone()}</span>
                                    <div role="radiogroup" aria-labelledby=label_id class="flex gap-1">
                                        {(1u8..=5).map(|v| view! {
                                            <button type="button" role="radio" data-testid=format!("driver-{i}-{v}")
                                                aria-checked=move || (drivers.with(|d| d.get(i).copied().flatten()) == Some(v)).to_string()
                                                aria-label=format!("{v} out of 5")
                                                class=move || if drivers.with(|d| d.get(i).copied().flatten()) == Some(v) { "btn-primary px-2.5 py-1 text-sm" } else { "btn-secondary px-2.5 py-1 text-sm" }
                                                on:click=move |_| drivers.update(|d| if let Some(slot) = d.get_mut(i) { *slot = if *slot == Some(v) { None } else { Some(v) } })>
                                                {v}
                                            </button>
                                        }).collect_view()}
                                    </div>
                                </div>
                            }
                        }).collect_view()}
                        {asks_comment.then(|| view! {
                            <label class="flex flex-col gap-1 text-sm">
                                <span>"Anything you'd like to add? (optional)"</span>
                                <textarea class="input" rows="2" maxlength="2000" data-testid="survey-comment"
                                    prop:value=move || comment.get()
                                    on:input=move |ev| comment.set(event_target_value(&ev))></textarea>
                            </label>
                        })}
                    </Show>
                    <div class="flex flex-wrap items-center gap-2">
                        <button type="button" class="btn-primary" data-testid="survey-send"
                            disabled=move || score.get().is_none() || respond.pending().get()
                            on:click=send>
                            {move || if respond.pending().get() { "Sending…" } else if answered_before { "Change my answer" } else { "Send" }}
                        </button>
                        {prompt.then(|| view! {
                            <button type="button" class="btn-ghost" data-testid="survey-later"
                                on:click=move |_| { dismissing.set(false); hold.dispatch(SurveyHold { id: id.get_value(), dismiss: false }); }>
                                "Later"
                            </button>
                            <button type="button" class="btn-ghost" data-testid="survey-dismiss"
                                on:click=move |_| { dismissing.set(true); hold.dispatch(SurveyHold { id: id.get_value(), dismiss: true }); }>
                                "Don't ask again"
                            </button>
                        })}
                        <span class="text-xs text-slate-500 dark:text-slate-400">{format!("Anonymous · open until {closes}")}</span>
                    </div>
                    {move || problem.get().map(|e| view! { <p class="text-sm text-red-600 dark:text-red-400" role="alert">{e.to_string()}</p> })}
                </div>
            }.into_any()
        }}
    }
}

/// `/surveys`.
#[component]
pub fn SurveysPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| surveys_page_data());
    view! {
        <Title text="Surveys" />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading surveys…"</p> }>
            {move || Suspend::new(async move {
                loaded(data.await, |o| view! { <Surveys o /> })
            })}
        </Suspense>
    }
}

#[component]
fn Surveys(o: SurveysOverview) -> impl IntoView {
    let subtitle = if o.platform {
        "Ask developers how the platform works for them, and follow the answers round by round."
    } else {
        "Tell the platform team how the platform works for you. Answers are anonymous."
    };
    let open = if o.open.is_empty() {
        view! {
            <EmptyState title="Nothing to answer right now"
                body="When the platform team asks your team or role something, the survey appears here and once on your home page." />
        }
        .into_any()
    } else {
        o.open
            .into_iter()
            .map(|s| {
                let answered = s.answered;
                view! {
                    <section class="card" data-testid="survey-open">
                        {answered.then(|| view! { <p class="mb-2"><Badge tone=Tone::Success>"Answered"</Badge></p> })}
                        <SurveyForm survey=s.survey mine=s.mine prompt=false />
                    </section>
                }
            })
            .collect_view()
            .into_any()
    };
    let led = o.led.clone();
    let team_surveys = (!o.team_surveys.is_empty() && !o.platform).then(|| {
        let surveys = o.team_surveys.clone();
        view! {
            <Card title="Your team's results" class="mt-6">
                <ul class="divide-y divide-slate-200 dark:divide-slate-800" data-testid="team-surveys">
                    {surveys.into_iter().map(|s| {
                        let links = led.iter().map(|team| {
                            let href = format!("/surveys/{}?team={}", s.id, percent_encode(team));
                            view! { <a class="btn-secondary" href=href>{format!("Team {team}")}</a> }
                        }).collect_view();
                        view! {
                            <li class="flex flex-wrap items-center justify-between gap-2 py-2">
                                <span>{s.title.clone()}" "{state_badge(s.state)}</span>
                                <span class="flex gap-2">{links}</span>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </Card>
        }
    });
    let platform = o.platform.then(|| {
        let rounds = o.rounds.clone();
        let teams = o.teams.clone();
        view! {
            <div class="mt-8 grid gap-6 lg:grid-cols-3">
                <Card title="NPS over time" class="lg:col-span-2">
                    <NpsTrend rounds=rounds.clone() />
                    <RoundsTable rounds />
                </Card>
                <Card title="New survey">
                    <SurveyBuilder teams />
                </Card>
            </div>
        }
    });
    view! {
        <PageHeader title="Surveys" subtitle=subtitle />
        <h2 class="mb-3 text-lg font-semibold">"Asked of you"</h2>
        <div class="grid gap-4">{open}</div>
        {team_surveys}
        {platform}
    }
}

#[component]
fn RoundsTable(rounds: Vec<Round>) -> impl IntoView {
    if rounds.is_empty() {
        return view! {
            <p class="mt-4 text-sm text-slate-500" data-testid="rounds-empty">"No surveys yet: create the first one with the form beside this, and its NPS appears here once enough people answer."</p>
        }
        .into_any();
    }
    view! {
        <div class="mt-4 overflow-x-auto">
            <table class="table" data-testid="rounds">
                <thead><tr><th scope="col">"Survey"</th><th scope="col">"State"</th><th scope="col">"Open"</th><th scope="col" class="text-right">"Answers"</th><th scope="col" class="text-right">"NPS"</th></tr></thead>
                <tbody>
                    {rounds.into_iter().map(|r| {
                        let href = format!("/surveys/{}", r.survey.id);
                        let nps = r.nps.map(|n| format!("{n:+}")).unwrap_or_else(|| format!("below {}", r.survey.min_group));
                        view! {
                            <tr>
                                <td><a class="link" href=href>{r.survey.title.clone()}</a></td>
                                <td>{state_badge(r.survey.state)}</td>
                                <td class="whitespace-nowrap">{format!("{} – {}", date(&r.survey.opens_at), date(&r.survey.closes_at))}</td>
                                <td class="text-right tabular-nums">{r.responses}</td>
                                <td class="text-right tabular-nums">{nps}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// NPS per round, oldest first, on a −100..100 axis with a line at 0.
#[component]
fn NpsTrend(rounds: Vec<Round>) -> impl IntoView {
    let mut points: Vec<(String, i32, u64)> = rounds
        .iter()
        .rev()
        .filter_map(|r| r.nps.map(|n| (r.survey.title.clone(), n, r.responses)))
        .collect();
    if points.len() > 24 {
        points.drain(..points.len() - 24);
    }
    if points.is_empty() {
        return view! {
            <p class="text-sm text-slate-500" data-testid="trend-empty">"The trend starts when a survey has enough answers to show its NPS."</p>
        }
        .into_any();
    }
    let (w, h, left, top, bottom) = (600.0_f64, 180.0_f64, 40.0_f64, 10.0_f64, 20.0_f64);
    let inner_w = w - left - 10.0;
    let y = |v: i32| top + (100.0 - v as f64) / 200.0 * (h - top - bottom);
    let x = |i: usize| {
        if points.len() == 1 {
            left + inner_w / 2.0
        } else {
            left + i as f64 * inner_w / (points.len() - 1) as f64
        }
    };
    let line: String = points
        .iter()
        .enumerate()
        .map(|(i, (_, v, _))| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect::<Vec<_>>()
        .join(" ");
    let words = points
        .iter()
        .map(|(t, v, _)| format!("{t}: {v:+}"))
        .collect::<Vec<_>>()
        .join(", ");
    let label = format!("NPS per survey round, oldest first: {words}");
    view! {
        <svg viewBox=format!("0 0 {w} {h}") class="h-auto w-full" role="img" aria-label=label data-testid="nps-trend">
            {[100, 50, 0, -50, -100].into_iter().map(|v| view! {
                <line x1=left x2=w - 10.0 y1=y(v) y2=y(v) class=if v == 0 { "stroke-slate-400 dark:stroke-slate-500" } else { "stroke-slate-200 dark:stroke-slate-800" } stroke-width="1" />
                <text x=left - 6.0 y=y(v) + 4.0 text-anchor="end" class="fill-slate-500 text-[10px]">{format!("{v:+}")}</text>
            }).collect_view()}
            <polyline points=line fill="none" stroke-width="2" class="stroke-indigo-600 dark:stroke-indigo-400" />
            {points.iter().enumerate().map(|(i, (t, v, n))| view! {
                <circle cx=x(i) cy=y(*v) r="4" class="fill-indigo-600 dark:fill-indigo-400">
                    <title>{format!("{t}: NPS {v:+} from {n} answers")}</title>
                </circle>
            }).collect_view()}
        </svg>
    }
    .into_any()
}

/// The survey builder (platform PMs and admins). An island.
#[island(lazy)]
fn SurveyBuilder(teams: Vec<String>) -> impl IntoView {
    let create = ServerAction::<SurveyNew>::new();
    let title = RwSignal::new(String::new());
    let drivers = RwSignal::new(
        "Ease of delivering a change\nQuality of the documentation\nSpeed of builds\nConfidence when on call"
            .to_owned(),
    );
    let comment = RwSignal::new(true);
    let chosen_teams = RwSignal::new(Vec::<String>::new());
    let roles = RwSignal::new(Vec::<String>::new());
    let opens = RwSignal::new(String::new());
    let closes = RwSignal::new(String::new());
    let min_group = RwSignal::new(DEFAULT_MIN_GROUP.to_string());
    let error_of = move |field: &'static str| crate::components::field_error(create, field);
    let other_error = Signal::derive(move || {
        create.value().get().and_then(|r| r.err()).filter(|e| {
            ["title", "drivers", "opens_at", "closes_at", "min_group"]
                .iter()
                .all(|f| e.field_message(f).is_none())
        })
    });
    Effect::new(move |_| {
        if let Some(Ok(survey)) = create.value().get() {
            #[cfg(feature = "hydrate")]
            if let Some(w) = web_sys::window() {
                let _ = w.location().set_href(&format!("/surveys/{}", survey.id));
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = survey;
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let list = |s: &str| -> Vec<String> {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let (t, r) = (chosen_teams.get_untracked(), roles.get_untracked());
        let opt = |s: String| (!s.trim().is_empty()).then_some(s);
        create.dispatch(SurveyNew {
            input: SurveyInput {
                title: title.get_untracked(),
                drivers: list(&drivers.get_untracked()),
                comment: Some(comment.get_untracked()),
                audience: Some(paved_shared::surveys::Audience { teams: t, roles: r }),
                opens_at: opt(opens.get_untracked()),
                closes_at: opt(closes.get_untracked()),
                min_group: min_group.get_untracked().trim().parse().ok(),
                ..Default::default()
            },
        });
    };
    let toggle = |list: RwSignal<Vec<String>>, value: String| {
        move |_| {
            list.update(|l| {
                if let Some(i) = l.iter().position(|v| *v == value) {
                    l.remove(i);
                } else {
                    l.push(value.clone());
                }
            })
        }
    };
    view! {
        <form class="flex flex-col gap-3" on:submit=submit data-testid="survey-builder">
            <Field label="Title" id="survey-title" error=error_of("title") help="People see it above the question, e.g. “Platform NPS, Q1”.">
                <input id="survey-title" class="input" required maxlength="200" autocomplete="off"
                    prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev)) />
            </Field>
            <Field label="Driver questions (1–5), one per line" id="survey-drivers" error=error_of("drivers") help="Leave empty to ask only the NPS question.">
                <textarea id="survey-drivers" class="input" rows="4"
                    prop:value=move || drivers.get() on:input=move |ev| drivers.set(event_target_value(&ev))></textarea>
            </Field>
            <label class="flex items-center gap-2 text-sm">
                <input type="checkbox" prop:checked=move || comment.get() on:change=move |ev| comment.set(event_target_checked(&ev)) />
                "Ask for an optional comment"
            </label>
            <fieldset class="flex flex-col gap-1">
                <legend class="text-sm font-medium">"Teams (none chosen: every team)"</legend>
                <div class="flex max-h-40 flex-wrap gap-x-4 gap-y-1 overflow-y-auto">
                    {teams.into_iter().map(|team| view! {
                        <label class="flex items-center gap-1 text-sm">
                            <input type="checkbox" data-testid=format!("audience-team-{team}") on:change=toggle(chosen_teams, team.clone()) />
                            {team.clone()}
                        </label>
                    }).collect_view()}
                </div>
            </fieldset>
            <fieldset class="flex flex-col gap-1">
                <legend class="text-sm font-medium">"Roles (none chosen: everyone)"</legend>
                <div class="flex flex-wrap gap-x-4 gap-y-1">
                    {[("developer", "Developers"), ("lead", "Team leads"), ("platform", "Platform team")].into_iter().map(|(value, label)| view! {
                        <label class="flex items-center gap-1 text-sm">
                            <input type="checkbox" on:change=toggle(roles, value.to_owned()) />
                            {label}
                        </label>
                    }).collect_view()}
                </div>
            </fieldset>
            <div class="grid grid-cols-2 gap-2">
                <Field label="Opens" id="survey-opens" error=error_of("opens_at") help="Empty: now.">
                    <input id="survey-opens" type="date" class="input" prop:value=move || opens.get() on:input=move |ev| opens.set(event_target_value(&ev)) />
                </Field>
                <Field label="Closes" id="survey-closes" error=error_of("closes_at") help="Empty: 14 days after it opens.">
                    <input id="survey-closes" type="date" class="input" prop:value=move || closes.get() on:input=move |ev| closes.set(event_target_value(&ev)) />
                </Field>
            </div>
            <Field label="Smallest group shown" id="survey-min" error=error_of("min_group") help="Teams and roles with fewer answers show nothing, comments included (at least 3).">
                <input id="survey-min" type="number" min="3" max="100" class="input w-24" prop:value=move || min_group.get() on:input=move |ev| min_group.set(event_target_value(&ev)) />
            </Field>
            <button type="submit" class="btn-primary" data-testid="survey-create" disabled=move || create.pending().get()>
                {move || if create.pending().get() { "Creating…" } else { "Create survey" }}
            </button>
            {move || other_error.get().map(|e| view! { <p class="text-sm text-red-600 dark:text-red-400" role="alert">{e.to_string()}</p> })}
        </form>
    }
}

/// `/surveys/:id` (with `?team=` for one team's results).
#[component]
pub fn SurveyResultsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let team = move || query.with(|q| q.get("team").filter(|t| !t.is_empty()));
    let page = move || {
        query.with(|q| {
            q.get("page")
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(1)
        })
    };
    let data = Resource::new(
        move || (id(), team(), page()),
        |(id, team, page)| survey_report(id, team, Some(page)),
    );
    view! {
        <Title text="Survey results" />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading results…"</p> }>
            {move || Suspend::new(async move {
                let (team, page) = (team(), page());
                loaded(data.await, move |r| view! { <ResultsView r team page /> })
            })}
        </Suspense>
    }
}

fn nps_tone(nps: i32) -> &'static str {
    if nps >= 30 {
        "text-emerald-600 dark:text-emerald-400"
    } else if nps >= 0 {
        "text-amber-600 dark:text-amber-400"
    } else {
        "text-red-600 dark:text-red-400"
    }
}

#[component]
fn ResultsView(r: Results, team: Option<String>, page: usize) -> impl IntoView {
    let s = r.survey.clone();
    let scope = match &team {
        Some(t) => format!("Team {t}"),
        None => "Everyone asked".to_owned(),
    };
    let subtitle = format!(
        "{scope} · {} – {} · groups under {} answers are hidden",
        date(&s.opens_at),
        date(&s.closes_at),
        r.min_group
    );
    let rate = r
        .response_rate
        .map(|x| format!("{:.0}%", x * 100.0))
        .unwrap_or_else(|| "—".into());
    let csv = team
        .is_none()
        .then(|| format!("/api/outcomes/v1/surveys/{}/results.csv", s.id));
    let header = view! {
        <PageHeader title=s.title.clone() subtitle>
            {state_badge(s.state)}
            {csv.map(|href| view! { <a class="btn-secondary" href=href download data-testid="survey-csv">"Download CSV"</a> })}
            <a class="btn-secondary" href="/surveys">"All surveys"</a>
        </PageHeader>
    };
    if r.hidden {
        let body = format!(
            "{} of {} people asked have answered. Results appear once at least {} have, so no answer can be told apart.",
            r.responses, r.audience, r.min_group
        );
        return view! {
            {header}
            <div data-testid="results-hidden">
                <EmptyState title="Not enough answers yet" body />
            </div>
        }
        .into_any();
    }
    let nps = r.nps.unwrap_or(0);
    let total = (r.promoters + r.passives + r.detractors).max(1) as f64;
    let pct = |n: u64| n as f64 / total * 100.0;
    let drivers = s.drivers.clone();
    // A company-wide round groups answers by hundreds of teams: the server
    // sends a page of them at a time.
    let per_page = RESULT_TEAMS_PER_PAGE;
    let pages = (r.teams_total as usize).div_ceil(per_page).max(1);
    let page = page.clamp(1, pages);
    let page_groups = r.by_team.clone();
    let team_pages = {
        let (id, total, shown) = (s.id.clone(), r.teams_total, page_groups.len());
        move || {
            (pages > 1).then(|| {
                let link = |p: usize| format!("/surveys/{}?page={p}", percent_encode(&id));
                let first = (page - 1) * per_page;
                view! {
                    <nav class="mt-3 flex items-center justify-between gap-2 text-sm" aria-label="Pages of teams" data-testid="result-pages">
                        <span class="text-slate-600 dark:text-slate-400">{format!("Teams {}–{} of {total}", first + 1, first + shown)}</span>
                        <span class="flex gap-2">
                            {(page > 1).then(|| view! { <a class="btn-secondary" href=link(page - 1) rel="prev">"Previous"</a> })}
                            {(page < pages).then(|| view! { <a class="btn-secondary" href=link(page + 1) rel="next">"Next"</a> })}
                        </span>
                    </nav>
                }
            })
        }
    };
    let team_pages_again = team_pages.clone();
    let (overall_drivers, heat_groups) = (r.drivers.clone(), page_groups.clone());
    let themes = r.themes.clone();
    let editor = team
        .is_none()
        .then(|| view! { <ThemeEditor id=s.id.clone() themes=s.themes.clone() /> });
    view! {
        {header}
        <div class="grid gap-4 md:grid-cols-3">
            <section class="card" data-testid="results-nps">
                <p class="text-sm text-slate-600 dark:text-slate-400">"Net Promoter Score"</p>
                <p class=format!("text-4xl font-semibold tabular-nums {}", nps_tone(nps)) data-testid="nps-value">{format!("{nps:+}")}</p>
                <p class="mt-1 text-sm text-slate-600 dark:text-slate-400" data-testid="nps-responses">
                    {format!("{} answers of {} asked · {rate} responded", r.responses, r.audience)}
                </p>
            </section>
            <section class="card md:col-span-2">
                <p class="mb-2 text-sm text-slate-600 dark:text-slate-400">"Promoters (9–10), passives (7–8), detractors (0–6)"</p>
                <div class="flex h-6 w-full overflow-hidden rounded" role="img"
                    aria-label=format!("{} promoters, {} passives, {} detractors", r.promoters, r.passives, r.detractors)>
                    <div class="bg-emerald-500" style=format!("width:{:.1}%", pct(r.promoters))></div>
                    <div class="bg-slate-300 dark:bg-slate-600" style=format!("width:{:.1}%", pct(r.passives))></div>
                    <div class="bg-red-500" style=format!("width:{:.1}%", pct(r.detractors))></div>
                </div>
                <p class="mt-2 flex flex-wrap gap-4 text-sm" data-testid="nps-parts">
                    <span>{format!("{} promoters", r.promoters)}</span>
                    <span>{format!("{} passives", r.passives)}</span>
                    <span>{format!("{} detractors", r.detractors)}</span>
                </p>
                <Distribution counts=r.distribution.clone() />
            </section>
        </div>
        {(!drivers.is_empty()).then(|| view! {
            <Card title="Drivers by team" class="mt-6">
                <Heatmap drivers=drivers.clone() overall=overall_drivers groups=heat_groups min=r.min_group />
                {team_pages()}
            </Card>
        })}
        <div class="mt-6 grid gap-6 lg:grid-cols-2">
            <Card title="By team">
                <GroupTable groups=page_groups min=r.min_group testid="by-team" />
                {team_pages_again()}
            </Card>
            <Card title="By persona">
                <GroupTable groups=r.by_persona.clone() min=r.min_group testid="by-persona" />
            </Card>
        </div>
        <Card title="Comments by theme" class="mt-6">
            {if themes.is_empty() {
                view! { <p class="text-sm text-slate-500">"No comments yet."</p> }.into_any()
            } else {
                view! {
                    <div class="flex flex-col gap-4" data-testid="themes">
                        {themes.into_iter().map(|t| {
                            let more = (t.count as usize).saturating_sub(t.comments.len());
                            view! {
                                <details class="rounded-lg border border-slate-200 p-3 dark:border-slate-800">
                                    <summary class="cursor-pointer font-medium">{format!("{} · {}", t.theme, t.count)}</summary>
                                    <ul class="mt-2 list-disc pl-5 text-sm">
                                        {t.comments.into_iter().map(|c| view! { <li>{c}</li> }).collect_view()}
                                    </ul>
                                    {(more > 0).then(|| view! { <p class="mt-2 text-xs text-slate-500">{format!("and {more} more: every comment is in the CSV")}</p> })}
                                </details>
                            }
                        }).collect_view()}
                    </div>
                }.into_any()
            }}
            {editor}
        </Card>
    }
    .into_any()
}

/// How many answered each score, 0 to 10, as bars.
#[component]
fn Distribution(counts: Vec<u64>) -> impl IntoView {
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    view! {
        <div class="mt-4 flex h-24 items-end gap-1" role="img" data-testid="distribution"
            aria-label=format!("Answers per score 0 to 10: {}", counts.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))>
            {counts.iter().enumerate().map(|(score, n)| {
                let colour = if score >= 9 { "bg-emerald-500" } else if score >= 7 { "bg-slate-400" } else { "bg-red-500" };
                view! {
                    <div class="flex flex-1 flex-col items-center gap-1" title=format!("{score}: {n} answers")>
                        <div class=format!("w-full rounded-t {colour}") style=format!("height:{:.0}%", *n as f64 / max * 100.0)></div>
                        <span class="text-[10px] text-slate-500">{score}</span>
                    </div>
                }
            }).collect_view()}
        </div>
    }
}

fn heat(mean: f64) -> &'static str {
    if mean >= 4.2 {
        "bg-emerald-600 text-white"
    } else if mean >= 3.6 {
        "bg-emerald-300 text-emerald-950"
    } else if mean >= 3.0 {
        "bg-amber-200 text-amber-950"
    } else if mean >= 2.4 {
        "bg-orange-300 text-orange-950"
    } else {
        "bg-red-500 text-white"
    }
}

/// Team × driver: each cell the team's mean (1–5), coloured; hidden teams say so.
#[component]
fn Heatmap(
    drivers: Vec<String>,
    overall: Vec<Option<f64>>,
    groups: Vec<GroupResult>,
    min: u32,
) -> impl IntoView {
    let cells = |values: &[Option<f64>]| {
        (0..drivers.len())
            .map(|i| match values.get(i).copied().flatten() {
                Some(m) => view! { <td class=format!("text-center tabular-nums {}", heat(m)) title=format!("mean {m:.2} of 5")>{format!("{m:.1}")}</td> }.into_any(),
                None => view! { <td class="text-center text-slate-400">"—"</td> }.into_any(),
            })
            .collect_view()
    };
    let rows = groups
        .iter()
        .map(|g| match g {
            GroupResult::Shown { team, score } => view! {
                <tr><th scope="row" class="text-left font-medium">{team.clone()}</th>{cells(&score.drivers)}</tr>
            }
            .into_any(),
            GroupResult::Hidden { team, .. } => view! {
                <tr><th scope="row" class="text-left font-medium">{team.clone()}</th>
                    <td colspan=drivers.len().to_string() class="text-sm text-slate-500">{format!("Hidden: fewer than {min} answers")}</td></tr>
            }
            .into_any(),
        })
        .collect_view();
    view! {
        <div class="overflow-x-auto">
            <table class="table" data-testid="heatmap">
                <thead><tr><th scope="col">"Team"</th>{drivers.iter().map(|d| view! { <th scope="col" class="text-center">{d.clone()}</th> }).collect_view()}</tr></thead>
                <tbody>
                    <tr><th scope="row" class="text-left">"Everyone"</th>{cells(&overall)}</tr>
                    {rows}
                </tbody>
            </table>
        </div>
        <p class="mt-2 text-xs text-slate-500">"Mean of 1 (poor) to 5 (great); greener is better."</p>
    }
}

#[component]
fn GroupTable(groups: Vec<GroupResult>, min: u32, testid: &'static str) -> impl IntoView {
    if groups.is_empty() {
        return view! { <p class="text-sm text-slate-500">"No answers in any group yet."</p> }
            .into_any();
    }
    view! {
        <table class="table" data-testid=testid>
            <thead><tr><th scope="col">"Group"</th><th scope="col" class="text-right">"Answers"</th><th scope="col" class="text-right">"NPS"</th></tr></thead>
            <tbody>
                {groups.into_iter().map(|g| match g {
                    GroupResult::Shown { team, score: Score { nps, responses, .. } } => view! {
                        <tr><td>{team}</td><td class="text-right tabular-nums">{responses}</td>
                            <td class=format!("text-right tabular-nums {}", nps_tone(nps))>{format!("{nps:+}")}</td></tr>
                    }.into_any(),
                    GroupResult::Hidden { team, .. } => view! {
                        <tr><td>{team}</td><td colspan="2" class="text-right text-sm text-slate-500">{format!("hidden (under {min})")}</td></tr>
                    }.into_any(),
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// Editing the keyword themes comments are grouped by. An island.
#[island(lazy)]
fn ThemeEditor(id: String, themes: Vec<Theme>) -> impl IntoView {
    let save = ServerAction::<SurveySaveThemes>::new();
    let text = RwSignal::new(
        themes
            .iter()
            .map(|t| format!("{}: {}", t.name, t.keywords.join(", ")))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let id = StoredValue::new(id);
    let parse_error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut themes = Vec::new();
        for (n, line) in text.get_untracked().lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let Some((name, words)) = line.split_once(':') else {
                parse_error.set(Some(format!(
                    "Line {}: write “Theme: keyword, keyword”.",
                    n + 1
                )));
                return;
            };
            themes.push(Theme {
                name: name.trim().to_owned(),
                keywords: words
                    .split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect(),
            });
        }
        parse_error.set(None);
        save.dispatch(SurveySaveThemes {
            id: id.get_value(),
            themes,
        });
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = save.value().get() {
            #[cfg(feature = "hydrate")]
            if let Some(w) = web_sys::window() {
                let _ = w.location().reload();
            }
        }
    });
    let problem = Signal::derive(move || {
        parse_error.get().or_else(|| {
            save.value()
                .get()
                .and_then(|r| r.err())
                .map(|e| e.to_string())
        })
    });
    view! {
        <form class="mt-4 flex flex-col gap-2" on:submit=submit data-testid="theme-editor">
            <label for="themes" class="text-sm font-medium">"Themes: one per line, “Theme: keyword, keyword”"</label>
            <textarea id="themes" class="input font-mono text-sm" rows="4" placeholder="Builds: build, ci, pipeline"
                prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            <div><button type="submit" class="btn-secondary" disabled=move || save.pending().get()>"Save themes"</button></div>
            {move || problem.get().map(|e| view! { <p class="text-sm text-red-600 dark:text-red-400" role="alert">{e}</p> })}
        </form>
    }
}
