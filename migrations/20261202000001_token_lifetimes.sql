-- Personal tokens expire; people can be disabled by platform admins.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
-- Tokens made before lifetimes existed get the default 90 days from creation.
UPDATE api_tokens SET expires_at = created_at + 90 * 86400 WHERE expires_at IS NULL;
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
