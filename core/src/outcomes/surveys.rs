//! NPS and driver surveys with anonymity by construction. PMs (and admins)
//! create a survey for an audience; each person in it answers once (and may
//! change the answer while the survey is open); results are shown only for
//! groups of at least the survey's minimum size.
//!
//! What is stored (see the migration): answers without the person, time or
//! insertion order; who has answered, apart from what. An open survey's
//! answer carries a keyed hash of (survey, person) under
//! [`OutcomesConfig::survey_key`](super::config::OutcomesConfig), which never
//! enters the database, so its author alone can find it again; the hashes
//! are erased once the survey closes. An answer is grouped only by teams of
//! at least the minimum size, so a small team's answers are not told apart
//! even by someone reading the tables.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use paved_shared::surveys::{
    AnswerInput, Audience, GroupResult, OpenSurvey, Results, Round, Score, Survey, SurveyInput,
    SurveyState, SurveysOverview, Theme, ThemeComments, DEFAULT_MIN_GROUP, DEFAULT_OPEN_DAYS,
    DEFAULT_QUESTION, LOWEST_MIN_GROUP,
};
use secrecy::ExposeSecret;
use sqlx::SqlitePool;

use crate::auth::{authorize, Action, AuthMethod, Principal, TeamRole};
use crate::{audit, CoreError};

/// Results kept between reads, per survey and team filter: computing them
/// reads every answer (thousands in a company-wide round), and a results
/// page is read far more often than surveys are answered. Every answer,
/// theme edit or new survey bumps the generation, which makes every kept
/// result stale; the response rate's audience (people and teams) is at most
/// [`ResultsCache::MAX_AGE_SECS`] old.
#[derive(Default)]
pub struct ResultsCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<(String, Option<String>), Kept>>,
    /// Answers are written one at a time in this process, queued in order
    /// here rather than in SQLite's busy handler, which sleeps between tries
    /// (a company answering at once would wait tens of milliseconds).
    writes: tokio::sync::Mutex<()>,
    /// Results are computed one at a time: readers arriving together wait
    /// for the first one's and use it.
    computing: tokio::sync::Mutex<()>,
}

struct Kept {
    generation: u64,
    at: i64,
    results: Arc<Results>,
    answers: Arc<Vec<Answer>>,
}

impl std::fmt::Debug for ResultsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultsCache")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl ResultsCache {
    /// The longest a result is kept, in seconds.
    pub const MAX_AGE_SECS: i64 = 60;
    /// The most results kept (the oldest go first).
    const CAPACITY: usize = 32;

    /// Records that answers or a survey changed: every kept result is stale.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn get(
        &self,
        key: &(String, Option<String>),
        now: i64,
    ) -> Option<(Arc<Results>, Arc<Vec<Answer>>)> {
        let generation = self.generation();
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|k| {
                k.generation == generation && (0..Self::MAX_AGE_SECS).contains(&(now - k.at))
            })
            .map(|k| (k.results.clone(), k.answers.clone()))
    }

    fn put(
        &self,
        key: (String, Option<String>),
        generation: u64,
        now: i64,
        results: Arc<Results>,
        answers: Arc<Vec<Answer>>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !entries.contains_key(&key) && entries.len() >= Self::CAPACITY {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, k)| k.at)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key,
            Kept {
                generation,
                at: now,
                results,
                answers,
            },
        );
    }
}

/// The personas results are grouped by, and audiences name.
pub const PERSONAS: [&str; 3] = ["developer", "lead", "platform"];

/// A person's persona: platform people first, then team leads, then developers.
pub fn persona(principal: &Principal) -> &'static str {
    persona_of(
        !principal.platform_roles.is_empty(),
        principal.teams.values().any(|r| *r == TeamRole::Lead),
    )
}

fn persona_of(platform: bool, lead: bool) -> &'static str {
    if platform {
        "platform"
    } else if lead {
        "lead"
    } else {
        "developer"
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> CoreError {
    CoreError::Invalid {
        field,
        message: message.into(),
    }
}

fn text(field: &'static str, raw: &str, max: usize) -> Result<String, CoreError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("is longer than {max} characters")));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(value.to_owned())
}

fn check_themes(themes: &[Theme]) -> Result<Vec<Theme>, CoreError> {
    if themes.len() > 30 {
        return Err(invalid("themes", "at most 30 themes"));
    }
    themes
        .iter()
        .map(|t| {
            let name = text("themes.name", &t.name, 60)?;
            if t.keywords.is_empty() || t.keywords.len() > 30 {
                return Err(invalid(
                    "themes.keywords",
                    format!("theme {name}: give 1 to 30 keywords"),
                ));
            }
            let keywords = t
                .keywords
                .iter()
                .map(|k| text("themes.keywords", k, 40).map(|k| k.to_lowercase()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Theme { name, keywords })
        })
        .collect()
}

/// A survey as stored, checked.
struct Checked {
    title: String,
    question: String,
    drivers: Vec<String>,
    comment: bool,
    audience: Audience,
    opens_at: i64,
    closes_at: i64,
    min_group: u32,
    themes: Vec<Theme>,
}

fn check(input: &SurveyInput, now: i64) -> Result<Checked, CoreError> {
    let title = text("title", &input.title, 200)?;
    let question = match &input.question {
        Some(q) if !q.trim().is_empty() => text("question", q, 300)?,
        _ => DEFAULT_QUESTION.to_owned(),
    };
    if input.drivers.len() > 10 {
        return Err(invalid("drivers", "at most 10 driver questions"));
    }
    let drivers = input
        .drivers
        .iter()
        .map(|d| text("drivers", d, 200))
        .collect::<Result<Vec<_>, _>>()?;
    let audience = input.audience.clone().unwrap_or_default();
    for team in &audience.teams {
        if !crate::auth::is_valid_team_name(team) {
            return Err(invalid(
                "audience.teams",
                format!("`{team}` is not a team name"),
            ));
        }
    }
    for role in &audience.roles {
        if !PERSONAS.contains(&role.as_str()) {
            return Err(invalid(
                "audience.roles",
                format!("`{role}` is not one of developer, lead, platform"),
            ));
        }
    }
    let utc = jiff::tz::TimeZone::UTC;
    let opens_at = match input.opens_at.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(raw) => super::instant(raw.trim(), "opens_at", &utc)?,
        None => now,
    };
    let closes_at = match input.closes_at.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(raw) => super::instant(raw.trim(), "closes_at", &utc)?,
        None => opens_at + DEFAULT_OPEN_DAYS * 86_400,
    };
    if closes_at <= opens_at {
        return Err(invalid("closes_at", "must be after opens_at"));
    }
    if closes_at <= now {
        return Err(invalid("closes_at", "is in the past"));
    }
    if closes_at - opens_at > 366 * 86_400 {
        return Err(invalid(
            "closes_at",
            "a survey may stay open at most a year",
        ));
    }
    let min_group = input.min_group.unwrap_or(DEFAULT_MIN_GROUP);
    if !(LOWEST_MIN_GROUP..=1000).contains(&min_group) {
        return Err(invalid(
            "min_group",
            format!(
                "must be between {LOWEST_MIN_GROUP} and 1000: smaller groups could be told apart"
            ),
        ));
    }
    Ok(Checked {
        title,
        question,
        drivers,
        comment: input.comment.unwrap_or(true),
        audience,
        opens_at,
        closes_at,
        min_group,
        themes: check_themes(&input.themes)?,
    })
}

fn state(opens_at: i64, closes_at: i64, now: i64) -> SurveyState {
    if now < opens_at {
        SurveyState::Scheduled
    } else if now < closes_at {
        SurveyState::Open
    } else {
        SurveyState::Closed
    }
}

struct Row {
    id: String,
    title: String,
    question: String,
    drivers: String,
    comment: i64,
    audience_teams: String,
    audience_roles: String,
    opens_at: i64,
    closes_at: i64,
    min_group: i64,
    themes: String,
}

fn list(raw: &str) -> Vec<String> {
    serde_json::from_str(raw).unwrap_or_default()
}

/// Whether `audience` asks someone in the teams `in_team` accepts, as `persona`.
fn asks(audience: &Audience, in_team: impl Fn(&str) -> bool, persona: &str) -> bool {
    (audience.teams.is_empty() || audience.teams.iter().any(|t| in_team(t)))
        && (audience.roles.is_empty() || audience.roles.iter().any(|r| r == persona))
}

impl Row {
    fn audience(&self) -> Audience {
        Audience {
            teams: list(&self.audience_teams),
            roles: list(&self.audience_roles),
        }
    }

    fn view(&self, now: i64) -> Survey {
        Survey {
            id: self.id.clone(),
            title: self.title.clone(),
            question: self.question.clone(),
            drivers: list(&self.drivers),
            comment: self.comment != 0,
            audience: self.audience(),
            opens_at: crate::rfc3339_utc(self.opens_at),
            closes_at: crate::rfc3339_utc(self.closes_at),
            min_group: self.min_group.max(LOWEST_MIN_GROUP as i64) as u32,
            themes: serde_json::from_str(&self.themes).unwrap_or_default(),
            state: state(self.opens_at, self.closes_at, now),
        }
    }

    fn includes(&self, principal: &Principal) -> bool {
        asks(
            &self.audience(),
            |t| principal.teams.contains_key(t),
            persona(principal),
        )
    }
}

async fn load(pool: &SqlitePool, id: &str) -> Result<Row, CoreError> {
    sqlx::query_as!(
        Row,
        r#"SELECT id AS "id!", title, question, drivers, comment, audience_teams, audience_roles,
                  opens_at, closes_at, min_group, themes
           FROM surveys WHERE id = ?1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| CoreError::NotFound(format!("survey {id}")))
}

/// Erases the owner keys of surveys that have closed: from then on nothing
/// links an answer to anyone.
pub async fn erase_closed_keys(pool: &SqlitePool, now: i64) -> Result<(), CoreError> {
    let closed = sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM surveys WHERE closes_at <= ?1 AND keys_erased = 0"#,
        now
    )
    .fetch_all(pool)
    .await?;
    for id in closed {
        let mut tx = pool.begin().await?;
        sqlx::query!(
            "UPDATE survey_answers SET owner_key = NULL WHERE survey_id = ?1",
            id
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!("UPDATE surveys SET keys_erased = 1 WHERE id = ?1", id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Creates a survey (platform PMs and admins).
pub async fn create(
    core: &crate::CoreState,
    principal: &Principal,
    input: &SurveyInput,
    now: i64,
) -> Result<Survey, CoreError> {
    authorize(principal, Action::ViewPlatformInsights)?;
    let c = check(input, now)?;
    let id = uuid::Uuid::new_v4().to_string();
    let actor = principal.actor();
    let (drivers, teams, roles, themes) = (
        serde_json::to_string(&c.drivers).unwrap_or_else(|_| "[]".into()),
        serde_json::to_string(&c.audience.teams).unwrap_or_else(|_| "[]".into()),
        serde_json::to_string(&c.audience.roles).unwrap_or_else(|_| "[]".into()),
        serde_json::to_string(&c.themes).unwrap_or_else(|_| "[]".into()),
    );
    let (comment, min_group) = (c.comment as i64, c.min_group as i64);
    let mut tx = core.db.begin().await?;
    sqlx::query!(
        "INSERT INTO surveys (id, title, question, drivers, comment, audience_teams, audience_roles,
                              opens_at, closes_at, min_group, themes, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        id,
        c.title,
        c.question,
        drivers,
        comment,
        teams,
        roles,
        c.opens_at,
        c.closes_at,
        min_group,
        themes,
        actor,
        now
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        &actor,
        "outcomes.survey.create",
        &format!("survey:{id}"),
        None,
        Some(serde_json::json!({"title": c.title, "audience": {"teams": c.audience.teams, "roles": c.audience.roles}})),
    )
    .await?;
    tx.commit().await?;
    core.survey_results.changed();
    Ok(load(&core.db, &id).await?.view(now))
}

/// Replaces a survey's comment themes (platform PMs and admins).
pub async fn set_themes(
    core: &crate::CoreState,
    principal: &Principal,
    id: &str,
    themes: &[Theme],
    now: i64,
) -> Result<Survey, CoreError> {
    authorize(principal, Action::ViewPlatformInsights)?;
    let themes = check_themes(themes)?;
    load(&core.db, id).await?;
    let raw = serde_json::to_string(&themes).unwrap_or_else(|_| "[]".into());
    sqlx::query!("UPDATE surveys SET themes = ?2 WHERE id = ?1", id, raw)
        .execute(&core.db)
        .await?;
    core.survey_results.changed();
    Ok(load(&core.db, id).await?.view(now))
}

fn person(principal: &Principal) -> Result<i64, CoreError> {
    match (principal.user_id, &principal.method) {
        (Some(id), AuthMethod::Session | AuthMethod::PersonalToken) => Ok(id),
        _ => Err(CoreError::Forbidden(
            "surveys are answered by people: sign in (a service token is not a person)".into(),
        )),
    }
}

fn owner_key(core: &crate::CoreState, survey: &str, principal: &Principal) -> String {
    let key = core.config.outcomes.survey_key.expose_secret().as_bytes();
    let message = format!("{survey}\n{}", principal.subject);
    hex::encode(crate::integrations::hmac_sha256(key, message.as_bytes()))
}

async fn own_answer(
    core: &crate::CoreState,
    survey: &str,
    principal: &Principal,
) -> Result<Option<AnswerInput>, CoreError> {
    let key = owner_key(core, survey, principal);
    let row = sqlx::query!(
        "SELECT score, drivers, comment FROM survey_answers WHERE survey_id = ?1 AND owner_key = ?2",
        survey,
        key
    )
    .fetch_optional(&core.db)
    .await?;
    Ok(row.map(|r| AnswerInput {
        score: r.score.clamp(0, 10) as u8,
        drivers: serde_json::from_str(&r.drivers).unwrap_or_default(),
        comment: r.comment,
    }))
}

/// The open surveys the caller is asked (with their own answer), for the
/// survey page; with `prompt`, only those not answered, snoozed or dismissed.
pub async fn open_for(
    core: &crate::CoreState,
    principal: &Principal,
    now: i64,
    prompt: bool,
) -> Result<Vec<OpenSurvey>, CoreError> {
    let user = person(principal)?;
    erase_closed_keys(&core.db, now).await?;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id AS "id!", title, question, drivers, comment, audience_teams, audience_roles,
                  opens_at, closes_at, min_group, themes
           FROM surveys WHERE opens_at <= ?1 AND closes_at > ?1 ORDER BY closes_at, id"#,
        now
    )
    .fetch_all(&core.db)
    .await?;
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| r.includes(principal)) {
        let answered = sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!: i64" FROM survey_respondents WHERE survey_id = ?1 AND user_id = ?2"#,
            row.id,
            user
        )
        .fetch_one(&core.db)
        .await?
            > 0;
        if prompt {
            let held = sqlx::query_scalar!(
                r#"SELECT COUNT(*) AS "n!: i64" FROM survey_prompts
                   WHERE survey_id = ?1 AND user_id = ?2 AND (dismissed = 1 OR snoozed_until > ?3)"#,
                row.id,
                user,
                now
            )
            .fetch_one(&core.db)
            .await?
                > 0;
            if answered || held {
                continue;
            }
        }
        let mine = if answered {
            own_answer(core, &row.id, principal).await?
        } else {
            None
        };
        out.push(OpenSurvey {
            survey: row.view(now),
            answered,
            mine,
        });
    }
    Ok(out)
}

/// How long "later" hides the prompt.
pub const SNOOZE_SECS: i64 = 3 * 86_400;

/// Hides the prompt of survey `id` for the caller: for [`SNOOZE_SECS`], or
/// for good (`dismiss`). The survey can still be answered on its page.
pub async fn hold_prompt(
    core: &crate::CoreState,
    principal: &Principal,
    id: &str,
    dismiss: bool,
    now: i64,
) -> Result<(), CoreError> {
    let user = person(principal)?;
    load(&core.db, id).await?;
    let until = now + SNOOZE_SECS;
    let dismissed = dismiss as i64;
    sqlx::query!(
        "INSERT INTO survey_prompts (survey_id, user_id, snoozed_until, dismissed) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (survey_id, user_id) DO UPDATE SET snoozed_until = excluded.snoozed_until,
            dismissed = MAX(survey_prompts.dismissed, excluded.dismissed)",
        id,
        user,
        until,
        dismissed
    )
    .execute(&core.db)
    .await?;
    Ok(())
}

/// The teams an answer is grouped by: the person's teams in the audience
/// that have at least the minimum group of members (a smaller team could
/// never be shown, and would narrow its answers down to a few people).
async fn grouping_teams(
    pool: &SqlitePool,
    principal: &Principal,
    audience: &Audience,
    min_group: u64,
) -> Result<Vec<String>, CoreError> {
    let mut out = Vec::new();
    for team in principal.teams.keys() {
        if !audience.teams.is_empty() && !audience.teams.contains(team) {
            continue;
        }
        if team_members(pool, team).await? >= min_group {
            out.push(team.clone());
        }
    }
    Ok(out)
}

/// Keeps the caller's answer to survey `id` (or changes it while open).
pub async fn answer(
    core: &crate::CoreState,
    principal: &Principal,
    id: &str,
    input: &AnswerInput,
    now: i64,
) -> Result<AnswerInput, CoreError> {
    let user = person(principal)?;
    let row = load(&core.db, id).await?;
    let survey = row.view(now);
    match survey.state {
        SurveyState::Open => {}
        SurveyState::Scheduled => {
            return Err(CoreError::Conflict(format!(
                "this survey opens at {}",
                survey.opens_at
            )))
        }
        SurveyState::Closed => {
            return Err(CoreError::Conflict(format!(
                "this survey closed at {}",
                survey.closes_at
            )))
        }
    }
    if !row.includes(principal) {
        return Err(CoreError::Forbidden(
            "this survey asks other teams or roles".into(),
        ));
    }
    if input.score > 10 {
        return Err(invalid("score", "is 0 to 10"));
    }
    if input.drivers.len() > survey.drivers.len() {
        return Err(invalid(
            "drivers",
            format!("this survey asks {} driver questions", survey.drivers.len()),
        ));
    }
    if input.drivers.iter().flatten().any(|d| !(1..=5).contains(d)) {
        return Err(invalid(
            "drivers",
            "each answer is 1 to 5 (or null to skip)",
        ));
    }
    let comment = match input.comment.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(_) if !survey.comment => {
            return Err(invalid("comment", "this survey does not ask for a comment"))
        }
        Some(c) if c.chars().count() > 2000 => {
            return Err(invalid("comment", "is longer than 2000 characters"))
        }
        Some(c) => Some(c.to_owned()),
    };
    let mut drivers = input.drivers.clone();
    drivers.resize(survey.drivers.len(), None);
    let kept = AnswerInput {
        score: input.score,
        drivers,
        comment,
    };
    let key = owner_key(core, id, principal);
    let teams = serde_json::to_string(
        &grouping_teams(
            &core.db,
            principal,
            &survey.audience,
            survey.min_group as u64,
        )
        .await?,
    )
    .unwrap_or_else(|_| "[]".into());
    let (score, drivers_raw, persona) = (
        kept.score as i64,
        serde_json::to_string(&kept.drivers).unwrap_or_else(|_| "[]".into()),
        persona(principal),
    );
    let _turn = core.survey_results.writes.lock().await;
    let mut tx = core.db.begin_with("BEGIN IMMEDIATE").await?;
    let first = sqlx::query!(
        "INSERT INTO survey_respondents (survey_id, user_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        id,
        user
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if first {
        let answer_id = hex::encode(rand::random::<[u8; 16]>());
        sqlx::query!(
            "INSERT INTO survey_answers (survey_id, id, owner_key, teams, persona, score, drivers, comment)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            id,
            answer_id,
            key,
            teams,
            persona,
            score,
            drivers_raw,
            kept.comment
        )
        .execute(&mut *tx)
        .await?;
    } else {
        let changed = sqlx::query!(
            "UPDATE survey_answers SET score = ?3, drivers = ?4, comment = ?5
             WHERE survey_id = ?1 AND owner_key = ?2",
            id,
            key,
            score,
            drivers_raw,
            kept.comment
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(CoreError::Conflict(
                "you have answered this survey already, and that answer can no longer be found to change it (Paved restarted without PAVED_SURVEY_KEY)".into(),
            ));
        }
    }
    tx.commit().await?;
    core.survey_results.changed();
    Ok(kept)
}

struct Answer {
    teams: Vec<String>,
    persona: String,
    score: u8,
    drivers: Vec<Option<u8>>,
    comment: Option<String>,
}

async fn answers(pool: &SqlitePool, id: &str) -> Result<Vec<Answer>, CoreError> {
    Ok(sqlx::query!(
        "SELECT teams, persona, score, drivers, comment FROM survey_answers WHERE survey_id = ?1",
        id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| Answer {
        teams: serde_json::from_str(&r.teams).unwrap_or_default(),
        persona: r.persona,
        score: r.score.clamp(0, 10) as u8,
        drivers: serde_json::from_str(&r.drivers).unwrap_or_default(),
        comment: r.comment,
    })
    .collect())
}

/// Promoters' share minus detractors' in percent, rounded (0 with no answers).
fn nps(promoters: u64, detractors: u64, responses: u64) -> i32 {
    if responses == 0 {
        return 0;
    }
    let pct = |n: u64| (n * 100) as f64 / responses as f64;
    (pct(promoters) - pct(detractors)).round() as i32
}

/// NPS and its parts over `answers` with `drivers` driver questions.
fn score<'a>(answers: impl IntoIterator<Item = &'a Answer>, drivers: usize) -> Score {
    let mut out = Score {
        distribution: vec![0; 11],
        ..Score::default()
    };
    let mut sums = vec![(0u64, 0u64); drivers];
    for a in answers {
        out.responses += 1;
        out.distribution[a.score as usize] += 1;
        match a.score {
            9..=10 => out.promoters += 1,
            7..=8 => out.passives += 1,
            _ => out.detractors += 1,
        }
        for (sum, d) in sums.iter_mut().zip(&a.drivers) {
            if let Some(d) = d {
                sum.0 += *d as u64;
                sum.1 += 1;
            }
        }
    }
    out.nps = nps(out.promoters, out.detractors, out.responses);
    out.drivers = sums
        .iter()
        .map(|(sum, n)| (*n > 0).then(|| (*sum as f64 / *n as f64 * 100.0).round() / 100.0))
        .collect();
    out
}

/// The people a survey asks, counted from the directory.
async fn audience_size(pool: &SqlitePool, row: &Row) -> Result<u64, CoreError> {
    let audience = row.audience();
    let people = sqlx::query!(
        r#"SELECT u.id AS "id!", u.platform_roles, m.role AS "role?", t.name AS "team?"
           FROM users u LEFT JOIN memberships m ON m.user_id = u.id LEFT JOIN teams t ON t.id = m.team_id
           WHERE u.disabled_at IS NULL"#
    )
    .fetch_all(pool)
    .await?;
    let mut by_person: BTreeMap<i64, (bool, bool, BTreeSet<String>)> = BTreeMap::new();
    for p in people {
        let entry = by_person.entry(p.id).or_default();
        entry.0 = !p.platform_roles.trim().is_empty();
        entry.1 |= p.role.as_deref() == Some("lead");
        entry.2.extend(p.team);
    }
    Ok(by_person
        .values()
        .filter(|(platform, lead, teams)| {
            (*platform || !teams.is_empty())
                && asks(
                    &audience,
                    |t| teams.contains(t),
                    persona_of(*platform, *lead),
                )
        })
        .count() as u64)
}

fn themes_of(themes: &[Theme], comments: Vec<String>) -> Vec<ThemeComments> {
    let mut out: Vec<ThemeComments> = themes
        .iter()
        .map(|t| ThemeComments {
            theme: t.name.clone(),
            count: 0,
            comments: Vec::new(),
        })
        .collect();
    let mut other = Vec::new();
    for comment in comments {
        let lower = comment.to_lowercase();
        let mut matched = false;
        for (theme, group) in themes.iter().zip(out.iter_mut()) {
            if theme.keywords.iter().any(|k| lower.contains(k.as_str())) {
                group.comments.push(comment.clone());
                group.count += 1;
                matched = true;
            }
        }
        if !matched {
            other.push(comment);
        }
    }
    if !other.is_empty() {
        out.push(ThemeComments {
            theme: "Other".into(),
            count: other.len() as u64,
            comments: other,
        });
    }
    out.retain(|t| t.count > 0);
    out
}

/// A survey's results: platform-wide for PMs and admins, or one team's
/// (`team`) for its lead. Groups below the minimum size show nothing.
pub async fn results(
    core: &crate::CoreState,
    principal: &Principal,
    id: &str,
    team: Option<&str>,
    now: i64,
) -> Result<Results, CoreError> {
    let (kept, _, survey) = results_and_answers(core, principal, id, team, now).await?;
    Ok(shaped(&kept, survey, 1, usize::MAX, usize::MAX))
}

/// One page (from 1) of [`results`] for the results page: the teams of that
/// page and the first comments of each theme (their counts stay whole).
pub async fn results_page(
    core: &crate::CoreState,
    principal: &Principal,
    id: &str,
    team: Option<&str>,
    page: usize,
    now: i64,
) -> Result<Results, CoreError> {
    use paved_shared::surveys::{RESULT_COMMENTS_PER_THEME, RESULT_TEAMS_PER_PAGE};
    let (kept, _, survey) = results_and_answers(core, principal, id, team, now).await?;
    Ok(shaped(
        &kept,
        survey,
        page,
        RESULT_TEAMS_PER_PAGE,
        RESULT_COMMENTS_PER_THEME,
    ))
}

/// Kept results as answered: the survey as of now, page `page` (from 1,
/// clamped) of `per_page` teams, and at most `comments` comments per theme.
fn shaped(
    kept: &Results,
    survey: Survey,
    page: usize,
    per_page: usize,
    comments: usize,
) -> Results {
    let pages = kept.by_team.len().div_ceil(per_page).max(1);
    let page = page.clamp(1, pages);
    Results {
        survey,
        by_team: kept
            .by_team
            .iter()
            .skip((page - 1).saturating_mul(per_page))
            .take(per_page)
            .cloned()
            .collect(),
        teams_total: kept.by_team.len() as u64,
        themes: kept
            .themes
            .iter()
            .map(|t| ThemeComments {
                theme: t.theme.clone(),
                count: t.count,
                comments: t.comments.iter().take(comments).cloned().collect(),
            })
            .collect(),
        distribution: kept.distribution.clone(),
        drivers: kept.drivers.clone(),
        by_persona: kept.by_persona.clone(),
        hidden: kept.hidden,
        nps: kept.nps,
        responses: kept.responses,
        audience: kept.audience,
        response_rate: kept.response_rate,
        promoters: kept.promoters,
        passives: kept.passives,
        detractors: kept.detractors,
        min_group: kept.min_group,
    }
}

/// [`results`] (kept; its survey as when computed), the answers they were
/// computed from, and the survey as of `now`.
async fn results_and_answers(
    core: &crate::CoreState,
    principal: &Principal,
    id: &str,
    team: Option<&str>,
    now: i64,
) -> Result<(Arc<Results>, Arc<Vec<Answer>>, Survey), CoreError> {
    match team {
        Some(team) => {
            if authorize(principal, Action::ViewPlatformInsights).is_err() {
                authorize(principal, Action::LeadTeam(team))?;
            }
        }
        None => authorize(principal, Action::ViewPlatformInsights)?,
    }
    erase_closed_keys(&core.db, now).await?;
    let row = load(&core.db, id).await?;
    let survey = row.view(now);
    let key = (id.to_owned(), team.map(str::to_owned));
    if let Some((results, all)) = core.survey_results.get(&key, now) {
        return Ok((results, all, survey));
    }
    let _turn = core.survey_results.computing.lock().await;
    if let Some((results, all)) = core.survey_results.get(&key, now) {
        return Ok((results, all, survey));
    }
    let generation = core.survey_results.generation();
    let min = survey.min_group as u64;
    let drivers = survey.drivers.len();
    let mut all = answers(&core.db, id).await?;
    if let Some(team) = team {
        all.retain(|a| a.teams.iter().any(|t| t == team));
    }
    let overall = score(&all, drivers);
    let audience = match team {
        // A team's audience: its members, when the survey asks the team.
        Some(team) => audience_size(&core.db, &row)
            .await?
            .min(team_members(&core.db, team).await?),
        None => audience_size(&core.db, &row).await?,
    };
    let hidden = overall.responses < min;
    let group = |name: &str, of: Vec<&Answer>| {
        let s = score(of, drivers);
        if s.responses >= min {
            GroupResult::Shown {
                team: name.to_owned(),
                score: s,
            }
        } else {
            GroupResult::Hidden {
                team: name.to_owned(),
                hidden: true,
            }
        }
    };
    // Each answer into its teams' groups in one pass.
    let mut per_team: BTreeMap<&str, Vec<&Answer>> = BTreeMap::new();
    for a in &all {
        for t in &a.teams {
            if team.is_none_or(|only| only == t) {
                per_team.entry(t.as_str()).or_default().push(a);
            }
        }
    }
    let by_team = if hidden {
        Vec::new()
    } else {
        per_team.into_iter().map(|(t, of)| group(t, of)).collect()
    };
    let by_persona = if hidden {
        Vec::new()
    } else {
        PERSONAS
            .iter()
            .filter(|p| all.iter().any(|a| a.persona == **p))
            .map(|p| group(p, all.iter().filter(|a| a.persona == *p).collect()))
            .collect()
    };
    let comments: Vec<String> = all.iter().filter_map(|a| a.comment.clone()).collect();
    let results = Results {
        hidden,
        nps: (!hidden).then_some(overall.nps),
        responses: overall.responses,
        audience,
        response_rate: (audience > 0)
            .then(|| (overall.responses as f64 / audience as f64).min(1.0)),
        promoters: if hidden { 0 } else { overall.promoters },
        passives: if hidden { 0 } else { overall.passives },
        detractors: if hidden { 0 } else { overall.detractors },
        distribution: if hidden {
            Vec::new()
        } else {
            overall.distribution
        },
        drivers: if hidden { Vec::new() } else { overall.drivers },
        by_team,
        by_persona,
        themes: if hidden {
            Vec::new()
        } else {
            themes_of(&survey.themes, comments)
        },
        min_group: survey.min_group,
        teams_total: 0,
        survey: survey.clone(),
    };
    let (results, all) = (Arc::new(results), Arc::new(all));
    core.survey_results
        .put(key, generation, now, results.clone(), all.clone());
    Ok((results, all, survey))
}

async fn team_members(pool: &SqlitePool, team: &str) -> Result<u64, CoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM memberships m JOIN teams t ON t.id = m.team_id WHERE t.name = ?1"#,
        team
    )
    .fetch_one(pool)
    .await? as u64)
}

/// Every survey, newest first, with its NPS where enough people answered:
/// the rounds of the trend (platform PMs and admins).
pub async fn rounds(
    core: &crate::CoreState,
    principal: &Principal,
    now: i64,
) -> Result<Vec<Round>, CoreError> {
    authorize(principal, Action::ViewPlatformInsights)?;
    let rows = sqlx::query_as!(
        Row,
        r#"SELECT id AS "id!", title, question, drivers, comment, audience_teams, audience_roles,
                  opens_at, closes_at, min_group, themes
           FROM surveys ORDER BY opens_at DESC, id LIMIT 200"#
    )
    .fetch_all(&core.db)
    .await?;
    let tallies: std::collections::HashMap<String, (u64, u64, u64)> = sqlx::query!(
        r#"SELECT survey_id, COUNT(*) AS "responses!: i64",
                  SUM(score >= 9) AS "promoters!: i64", SUM(score <= 6) AS "detractors!: i64"
           FROM survey_answers GROUP BY survey_id"#
    )
    .fetch_all(&core.db)
    .await?
    .into_iter()
    .map(|r| {
        (
            r.survey_id,
            (r.responses as u64, r.promoters as u64, r.detractors as u64),
        )
    })
    .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let survey = row.view(now);
            let (responses, promoters, detractors) =
                tallies.get(&row.id).copied().unwrap_or_default();
            Round {
                responses,
                nps: (responses >= survey.min_group as u64)
                    .then(|| nps(promoters, detractors, responses)),
                survey,
            }
        })
        .collect())
}

/// The latest survey (by opening) whose overall NPS can be shown, as
/// (id, title, NPS, answers), and each team's NPS in it where the team's
/// group reaches the survey's minimum: for the platform home.
pub async fn latest_by_team(
    pool: &SqlitePool,
    now: i64,
) -> Result<(Option<(String, String, i32, u64)>, BTreeMap<String, i32>), CoreError> {
    // Newest first, counting each round's answers until one has enough
    // (usually the first): never every round's answers at once.
    let rounds = sqlx::query!(
        r#"SELECT id AS "id!", title, min_group FROM surveys WHERE opens_at <= ?1
           ORDER BY opens_at DESC, id"#,
        now
    )
    .fetch_all(pool)
    .await?;
    let mut latest = None;
    for round in rounds {
        let responses = sqlx::query_scalar!(
            r#"SELECT COUNT(*) AS "n!: i64" FROM survey_answers WHERE survey_id = ?1"#,
            round.id
        )
        .fetch_one(pool)
        .await?;
        if responses >= round.min_group {
            latest = Some(round);
            break;
        }
    }
    let Some(latest) = latest else {
        return Ok((None, BTreeMap::new()));
    };
    let all = answers(pool, &latest.id).await?;
    let overall = score(&all, 0);
    let min = latest.min_group.max(i64::from(LOWEST_MIN_GROUP)) as u64;
    let mut per_team: BTreeMap<String, Vec<&Answer>> = BTreeMap::new();
    for a in &all {
        for t in &a.teams {
            per_team.entry(t.clone()).or_default().push(a);
        }
    }
    let teams = per_team
        .into_iter()
        .filter_map(|(team, of)| {
            let s = score(of, 0);
            (s.responses >= min).then_some((team, s.nps))
        })
        .collect();
    Ok((
        Some((latest.id, latest.title, overall.nps, overall.responses)),
        teams,
    ))
}

/// The one survey the home page offers the caller now: open, asking them,
/// not answered, snoozed or dismissed. `None` for service tokens.
pub async fn prompt(
    core: &crate::CoreState,
    principal: &Principal,
    now: i64,
) -> Result<Option<Survey>, CoreError> {
    if person(principal).is_err() {
        return Ok(None);
    }
    Ok(open_for(core, principal, now, true)
        .await?
        .into_iter()
        .next()
        .map(|o| o.survey))
}

/// The surveys page: the open surveys the caller is asked; for platform
/// PMs and admins every round and the teams an audience may name; for team
/// leads the surveys that asked their teams.
pub async fn overview(
    core: &crate::CoreState,
    principal: &Principal,
    now: i64,
) -> Result<SurveysOverview, CoreError> {
    let open = if person(principal).is_ok() {
        open_for(core, principal, now, false).await?
    } else {
        Vec::new()
    };
    let platform = authorize(principal, Action::ViewPlatformInsights).is_ok();
    let led: Vec<String> = principal.led_teams().map(str::to_owned).collect();
    let (rounds, teams) = if platform {
        let teams = crate::teams::list(&core.db)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        (self::rounds(core, principal, now).await?, teams)
    } else {
        (Vec::new(), Vec::new())
    };
    let team_surveys = if led.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as!(
            Row,
            r#"SELECT id AS "id!", title, question, drivers, comment, audience_teams, audience_roles,
                      opens_at, closes_at, min_group, themes
               FROM surveys WHERE opens_at <= ?1 ORDER BY opens_at DESC, id LIMIT 200"#,
            now
        )
        .fetch_all(&core.db)
        .await?
        .into_iter()
        .filter(|row| {
            let audience = row.audience();
            audience.teams.is_empty() || led.iter().any(|t| audience.teams.contains(t))
        })
        .map(|row| row.view(now))
        .collect()
    };
    Ok(SurveysOverview {
        open,
        platform,
        rounds,
        led,
        team_surveys,
        teams,
    })
}

/// A survey's answers as CSV, one row per answer in no particular order:
/// nothing when the whole survey is below the minimum group, and a team
/// named only where that team's group is shown.
pub async fn csv(
    core: &crate::CoreState,
    principal: &Principal,
    id: &str,
    now: i64,
) -> Result<String, CoreError> {
    let (results, answers, _) = results_and_answers(core, principal, id, None, now).await?;
    let shown: BTreeSet<&str> = results
        .by_team
        .iter()
        .filter_map(|g| match g {
            GroupResult::Shown { team, .. } => Some(team.as_str()),
            GroupResult::Hidden { .. } => None,
        })
        .collect();
    let field = crate::budgets::usage::csv_cell;
    let mut out = String::from("score");
    for q in &results.survey.drivers {
        out.push(',');
        out.push_str(&field(q));
    }
    out.push_str(",teams,comment\n");
    if results.hidden {
        return Ok(out);
    }
    for a in answers.iter() {
        out.push_str(&a.score.to_string());
        for i in 0..results.survey.drivers.len() {
            out.push(',');
            if let Some(Some(d)) = a.drivers.get(i) {
                out.push_str(&d.to_string());
            }
        }
        let teams: Vec<&str> = a
            .teams
            .iter()
            .map(String::as_str)
            .filter(|t| shown.contains(t))
            .collect();
        out.push(',');
        out.push_str(&field(&teams.join(";")));
        out.push(',');
        out.push_str(&field(a.comment.as_deref().unwrap_or_default()));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(score: u8, drivers: &[Option<u8>]) -> Answer {
        Answer {
            teams: Vec::new(),
            persona: "developer".into(),
            score,
            drivers: drivers.to_vec(),
            comment: None,
        }
    }

    #[test]
    fn nps_is_promoters_minus_detractors_in_percent() {
        // 3 promoters (9, 10, 10), 2 passives (7, 8), 3 detractors (0, 5, 6): (3 - 3) / 8 = 0.
        let all: Vec<Answer> = [9, 10, 10, 7, 8, 0, 5, 6]
            .iter()
            .map(|s| answer(*s, &[]))
            .collect();
        let s = score(&all, 0);
        assert_eq!(
            (s.nps, s.promoters, s.passives, s.detractors, s.responses),
            (0, 3, 2, 3, 8)
        );
        assert_eq!(s.distribution, vec![1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2]);
        // 2 promoters of 3: 66.7 % - 0 % rounds to 67; all detractors is -100.
        let all: Vec<Answer> = [10, 9, 7].iter().map(|s| answer(*s, &[])).collect();
        assert_eq!(score(&all, 0).nps, 67);
        let all: Vec<Answer> = [0, 6].iter().map(|s| answer(*s, &[])).collect();
        assert_eq!(score(&all, 0).nps, -100);
        assert_eq!(score(&[], 0).nps, 0);
    }

    #[test]
    fn driver_means_skip_unanswered_questions() {
        let all = [
            answer(9, &[Some(4), None]),
            answer(8, &[Some(5), None]),
            answer(3, &[Some(2)]),
        ];
        // (4 + 5 + 2) / 3 = 3.67; nobody answered the second.
        assert_eq!(score(&all, 2).drivers, vec![Some(3.67), None]);
    }

    #[test]
    fn themes_group_comments_by_keyword_and_the_rest_is_other() {
        let themes = vec![
            Theme {
                name: "Build speed".into(),
                keywords: vec!["slow".into(), "build".into()],
            },
            Theme {
                name: "Docs".into(),
                keywords: vec!["docs".into()],
            },
        ];
        let grouped = themes_of(
            &themes,
            vec![
                "Builds are SLOW".into(),
                "Docs and build both".into(),
                "Nice portal".into(),
            ],
        );
        let names: Vec<(&str, u64)> = grouped
            .iter()
            .map(|t| (t.theme.as_str(), t.count))
            .collect();
        assert_eq!(names, [("Build speed", 2), ("Docs", 1), ("Other", 1)]);
    }

    #[test]
    fn surveys_are_checked_field_by_field() {
        let now = 1_780_000_000;
        let ok = check(
            &SurveyInput {
                title: "Q4 pulse".into(),
                ..Default::default()
            },
            now,
        )
        .unwrap();
        assert_eq!(ok.question, DEFAULT_QUESTION);
        assert_eq!(ok.closes_at - ok.opens_at, 14 * 86_400);
        assert_eq!(ok.min_group, 5);
        for (input, field) in [
            (SurveyInput::default(), "title"),
            (
                SurveyInput {
                    title: "t".into(),
                    min_group: Some(2),
                    ..Default::default()
                },
                "min_group",
            ),
            (
                SurveyInput {
                    title: "t".into(),
                    audience: Some(Audience {
                        teams: vec![],
                        roles: vec!["boss".into()],
                    }),
                    ..Default::default()
                },
                "audience.roles",
            ),
            (
                SurveyInput {
                    title: "t".into(),
                    opens_at: Some("2026-01-02".into()),
                    closes_at: Some("2026-01-01".into()),
                    ..Default::default()
                },
                "closes_at",
            ),
        ] {
            match check(&input, now) {
                Err(CoreError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {:?}", other.map(|c| c.title)),
            }
        }
    }
}
