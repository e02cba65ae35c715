-- The job queue knows nothing about assays: a job names its subject as text (drafting jobs:
-- 'assay:ID'), and each claim gets a token that fences heartbeat, completion and failure.
ALTER TABLE jobs ADD COLUMN subject TEXT;
UPDATE jobs SET subject = 'assay:' || assay_id WHERE assay_id IS NOT NULL;
ALTER TABLE jobs DROP COLUMN assay_id;
ALTER TABLE jobs ADD COLUMN claim_token TEXT;
CREATE INDEX jobs_subject ON jobs(subject);
