-- The price table on PostgreSQL (SQLite: migrations/20261127000005_llm_budgets.sql).
CREATE TABLE llm_prices (
    provider                    TEXT NOT NULL,
    model                       TEXT NOT NULL,
    input_millicents_per_mtok   BIGINT NOT NULL CHECK (input_millicents_per_mtok >= 0),
    output_millicents_per_mtok  BIGINT NOT NULL CHECK (output_millicents_per_mtok >= 0),
    updated_by                  TEXT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    PRIMARY KEY (provider, model)
);
