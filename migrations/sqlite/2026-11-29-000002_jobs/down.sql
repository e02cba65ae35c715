ALTER TABLE assays DROP COLUMN completion_tokens;
ALTER TABLE assays DROP COLUMN prompt_tokens;
DROP TABLE jobs;
