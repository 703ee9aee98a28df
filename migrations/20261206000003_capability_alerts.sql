-- Open SLO alerts of the platform's capabilities: a row while an SLO is
-- breached or burning fast, so its owner is notified once; deleted when it
-- recovers, so the next breach notifies again.
CREATE TABLE capability_alerts (
    capability TEXT NOT NULL,
    slo        TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('breach', 'fast_burn')),
    opened_at  INTEGER NOT NULL,
    PRIMARY KEY (capability, slo, kind)
) WITHOUT ROWID;
