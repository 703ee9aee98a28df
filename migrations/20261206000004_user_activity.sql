-- The days each person used Paved (signed in to a page or called the API
-- with their own token), for weekly and monthly active people. One row per
-- person and day, nothing about what they did.
CREATE TABLE user_activity (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day     INTEGER NOT NULL,                 -- unix day (seconds / 86400)
    PRIMARY KEY (day, user_id)
) WITHOUT ROWID;
