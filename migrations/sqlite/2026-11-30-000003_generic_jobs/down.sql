DROP INDEX jobs_subject;
ALTER TABLE jobs DROP COLUMN claim_token;
ALTER TABLE jobs ADD COLUMN assay_id INTEGER;
UPDATE jobs SET assay_id = CAST(substr(subject, 7) AS INTEGER) WHERE subject LIKE 'assay:%';
ALTER TABLE jobs DROP COLUMN subject;
