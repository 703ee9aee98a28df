//! NPS and driver surveys on the wire (`/api/outcomes/v1/surveys…` and the
//! survey pages). Results below a survey's minimum group size are never
//! sent: a hidden group says so (`hidden: true`) and carries no score,
//! distribution or comment.

use serde::{Deserialize, Serialize};

/// The NPS question when a survey does not set its own.
pub const DEFAULT_QUESTION: &str = "How likely are you to recommend the platform to a colleague?";

/// The smallest group whose results are shown by default.
pub const DEFAULT_MIN_GROUP: u32 = 5;

/// No survey may show groups smaller than this.
pub const LOWEST_MIN_GROUP: u32 = 3;

/// How long a survey with no close date stays open, in days.
pub const DEFAULT_OPEN_DAYS: i64 = 14;

/// Who a survey asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    /// Only people in these teams (empty: every team).
    #[serde(default)]
    pub teams: Vec<String>,
    /// Only these personas: `developer`, `lead`, `platform` (empty: everyone).
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A keyword theme comments are grouped by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Theme {
    /// Its name.
    pub name: String,
    /// A comment containing any of these words (case-insensitive) belongs to it.
    pub keywords: Vec<String>,
}

/// A survey as PMs write it (`POST /surveys`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyInput {
    /// Its title.
    pub title: String,
    /// The 0–10 question (default [`DEFAULT_QUESTION`]).
    #[serde(default)]
    pub question: Option<String>,
    /// Driver questions answered 1–5.
    #[serde(default)]
    pub drivers: Vec<String>,
    /// Whether a comment is asked for (default yes).
    #[serde(default)]
    pub comment: Option<bool>,
    /// Who is asked (default everyone).
    #[serde(default)]
    pub audience: Option<Audience>,
    /// When it opens (RFC 3339 or a date; default now).
    #[serde(default)]
    pub opens_at: Option<String>,
    /// When it closes (default 14 days after it opens).
    #[serde(default)]
    pub closes_at: Option<String>,
    /// The smallest group shown (default 5, never below 3).
    #[serde(default)]
    pub min_group: Option<u32>,
    /// Comment themes.
    #[serde(default)]
    pub themes: Vec<Theme>,
}

/// Where a survey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyState {
    /// Not open yet.
    Scheduled,
    /// Taking answers.
    Open,
    /// Closed.
    Closed,
}

/// A survey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Survey {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The 0–10 question.
    pub question: String,
    /// Driver questions (1–5).
    pub drivers: Vec<String>,
    /// Whether a comment is asked for.
    pub comment: bool,
    /// Who is asked.
    pub audience: Audience,
    /// Opens (RFC 3339).
    pub opens_at: String,
    /// Closes (RFC 3339).
    pub closes_at: String,
    /// The smallest group shown.
    pub min_group: u32,
    /// Comment themes.
    pub themes: Vec<Theme>,
    /// Where it stands now.
    pub state: SurveyState,
}

/// An answer as a person gives it (`PUT /surveys/{id}/answer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerInput {
    /// 0–10.
    pub score: u8,
    /// Aligned with the survey's driver questions: 1–5, or `null` when skipped.
    #[serde(default)]
    pub drivers: Vec<Option<u8>>,
    /// A comment.
    #[serde(default)]
    pub comment: Option<String>,
}

/// A survey the caller may answer, with their own answer when they gave one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenSurvey {
    /// The survey.
    pub survey: Survey,
    /// Whether the caller has answered.
    pub answered: bool,
    /// The caller's own answer, while it can still be changed.
    pub mine: Option<AnswerInput>,
}

/// NPS and its parts for one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// −100..100.
    pub nps: i32,
    /// Answers.
    pub responses: u64,
    /// 9–10.
    pub promoters: u64,
    /// 7–8.
    pub passives: u64,
    /// 0–6.
    pub detractors: u64,
    /// How many answered each score 0..=10.
    pub distribution: Vec<u64>,
    /// Each driver's mean (1–5), aligned with the questions; `null` when unanswered.
    pub drivers: Vec<Option<f64>>,
}

/// One team's results, or that it is hidden.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GroupResult {
    /// Large enough to show.
    Shown {
        /// The team or persona.
        #[serde(alias = "persona")]
        team: String,
        /// Its numbers.
        #[serde(flatten)]
        score: Score,
    },
    /// Fewer answers than the survey's minimum group: nothing is shown.
    Hidden {
        /// The team or persona.
        team: String,
        /// Always true.
        hidden: bool,
    },
}

/// A theme with the comments that belong to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThemeComments {
    /// The theme (`Other` for comments no theme matched).
    pub theme: String,
    /// How many comments.
    pub count: u64,
    /// The comments.
    pub comments: Vec<String>,
}

/// A survey's results (`GET /surveys/{id}/results`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The survey.
    pub survey: Survey,
    /// Whether the whole survey has too few answers to show anything.
    pub hidden: bool,
    /// −100..100, or `null` while hidden.
    pub nps: Option<i32>,
    /// Answers (always shown: it is not an answer).
    pub responses: u64,
    /// People asked.
    pub audience: u64,
    /// `responses / audience`, 0..1, or `null` with no audience.
    pub response_rate: Option<f64>,
    /// 9–10 (0 while hidden).
    pub promoters: u64,
    /// 7–8.
    pub passives: u64,
    /// 0–6.
    pub detractors: u64,
    /// 0..=10 counts (empty while hidden).
    pub distribution: Vec<u64>,
    /// Each driver's mean (empty while hidden).
    pub drivers: Vec<Option<f64>>,
    /// Per team, large enough groups only.
    pub by_team: Vec<GroupResult>,
    /// Per persona, large enough groups only.
    pub by_persona: Vec<GroupResult>,
    /// Comments by theme (empty while hidden).
    pub themes: Vec<ThemeComments>,
    /// How many teams `by_team` holds in all (a page may hold fewer).
    #[serde(default)]
    pub teams_total: u64,
    /// The smallest group shown.
    pub min_group: u32,
}

/// One survey round in the trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// The survey.
    pub survey: Survey,
    /// Answers.
    pub responses: u64,
    /// NPS, or `null` while below the minimum group.
    pub nps: Option<i32>,
}

/// The surveys page (`/surveys`): what the caller is asked and the rounds
/// they may read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SurveysOverview {
    /// Open surveys the caller is asked, with their own answer.
    pub open: Vec<OpenSurvey>,
    /// Whether the caller sees platform-wide results and creates surveys.
    pub platform: bool,
    /// Every round with its NPS (platform PMs and admins).
    pub rounds: Vec<Round>,
    /// The teams the caller leads.
    pub led: Vec<String>,
    /// Surveys that asked a team the caller leads, newest first.
    pub team_surveys: Vec<Survey>,
    /// Every team's name, for choosing an audience (platform PMs and admins).
    pub teams: Vec<String>,
}

/// Teams on one page of a survey's results.
pub const RESULT_TEAMS_PER_PAGE: usize = 50;
/// Comments shown under each theme on a page (the CSV has them all).
pub const RESULT_COMMENTS_PER_THEME: usize = 20;
