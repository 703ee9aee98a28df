-- Rotation reminders sent for a team's LLM provider keys: one per version
-- of the keys that outlived the team's policy.
CREATE TABLE llm_key_reminders (
    team     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (team, version)
);
