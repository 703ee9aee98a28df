-- Routing: which deployment served a request, the model the caller asked for
-- when a fallback served it, how many deployments were tried and why the
-- earlier ones were passed over.
ALTER TABLE llm_usage ADD COLUMN deployment TEXT;
ALTER TABLE llm_usage ADD COLUMN requested_model TEXT;
ALTER TABLE llm_usage ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE llm_usage ADD COLUMN fallbacks TEXT;
