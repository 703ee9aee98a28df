-- The product feature a gateway call was made for (`X-Paved-Feature` or the
-- body's `metadata.paved_feature`), so AI cost can be read per feature.
ALTER TABLE llm_usage ADD COLUMN feature TEXT;
