-- Active people without scanning every person-day: each person's last
-- active day (weekly and monthly active are one index range), and the
-- people active in each week (Monday-based), counted as they first appear.
ALTER TABLE users ADD COLUMN last_active_day INTEGER;
CREATE INDEX users_last_active ON users(last_active_day);

CREATE TABLE user_activity_weeks (
    week    INTEGER NOT NULL,                 -- unix day of the week's Monday
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (week, user_id)
) WITHOUT ROWID;

CREATE TABLE activity_weekly (
    week    INTEGER PRIMARY KEY,              -- unix day of the week's Monday
    people  INTEGER NOT NULL
);

UPDATE users SET last_active_day = (SELECT MAX(day) FROM user_activity WHERE user_id = users.id);
INSERT OR IGNORE INTO user_activity_weeks (week, user_id)
    SELECT day - ((day + 3) % 7), user_id FROM user_activity;
INSERT INTO activity_weekly (week, people)
    SELECT week, COUNT(*) FROM user_activity_weeks GROUP BY week;

-- Plain inserts and updates only (no upsert): the activity insert is
-- INSERT OR IGNORE, and its conflict policy applies inside these triggers.
CREATE TRIGGER user_activity_rollup AFTER INSERT ON user_activity
BEGIN
    UPDATE users SET last_active_day = MAX(COALESCE(last_active_day, NEW.day), NEW.day)
     WHERE id = NEW.user_id;
    INSERT OR IGNORE INTO user_activity_weeks (week, user_id)
        VALUES (NEW.day - ((NEW.day + 3) % 7), NEW.user_id);
END;

CREATE TRIGGER user_activity_weeks_count AFTER INSERT ON user_activity_weeks
BEGIN
    INSERT OR IGNORE INTO activity_weekly (week, people) VALUES (NEW.week, 0);
    UPDATE activity_weekly SET people = people + 1 WHERE week = NEW.week;
END;
