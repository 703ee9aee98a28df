-- NPS and driver surveys. Anonymity by construction: answers are stored
-- without the person (no user id, no time, no insertion order: the tables
-- are WITHOUT ROWID and keyed by random ids), and who has answered is kept
-- apart, only for the one-answer rule and the response rate. While a survey
-- is open an answer carries `owner_key`, a keyed hash of the survey and the
-- person under a key Paved holds outside the database, so its author alone
-- can see and change it; the key is erased when the survey closes.

CREATE TABLE surveys (
    id              TEXT PRIMARY KEY,
    title           TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    question        TEXT NOT NULL CHECK (length(question) BETWEEN 1 AND 300),
    drivers         TEXT NOT NULL DEFAULT '[]',     -- JSON array of questions answered 1..5
    comment         INTEGER NOT NULL DEFAULT 1,     -- whether a comment is asked for
    audience_teams  TEXT NOT NULL DEFAULT '[]',     -- JSON array; empty: every team
    audience_roles  TEXT NOT NULL DEFAULT '[]',     -- JSON array of personas; empty: everyone
    opens_at        INTEGER NOT NULL,
    closes_at       INTEGER NOT NULL CHECK (closes_at > opens_at),
    min_group       INTEGER NOT NULL DEFAULT 5 CHECK (min_group >= 3),
    themes          TEXT NOT NULL DEFAULT '[]',     -- JSON [{name, keywords: [..]}], edited by PMs
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    keys_erased     INTEGER NOT NULL DEFAULT 0      -- owner keys erased after closing
);
CREATE INDEX surveys_closes ON surveys(closes_at);

CREATE TABLE survey_respondents (
    survey_id       TEXT NOT NULL REFERENCES surveys(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (survey_id, user_id)
) WITHOUT ROWID;

CREATE TABLE survey_answers (
    survey_id       TEXT NOT NULL REFERENCES surveys(id) ON DELETE CASCADE,
    id              TEXT NOT NULL,                  -- random
    owner_key       TEXT UNIQUE,                    -- NULL once the survey closed
    teams           TEXT NOT NULL DEFAULT '[]',     -- JSON array: the teams results are grouped by
    persona         TEXT NOT NULL,
    score           INTEGER NOT NULL CHECK (score BETWEEN 0 AND 10),
    drivers         TEXT NOT NULL DEFAULT '[]',     -- JSON array aligned with the survey's, 1..5 or null
    comment         TEXT CHECK (comment IS NULL OR length(comment) <= 2000),
    PRIMARY KEY (survey_id, id)
) WITHOUT ROWID;

-- The prompt: snoozed or dismissed per person and survey.
CREATE TABLE survey_prompts (
    survey_id       TEXT NOT NULL REFERENCES surveys(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    snoozed_until   INTEGER,
    dismissed       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (survey_id, user_id)
) WITHOUT ROWID;
