-- The durable job queue (the background executor) and token usage per assay.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    assay_id INTEGER,                 -- no foreign key: a job must see that its assay is gone
    status TEXT NOT NULL DEFAULT 'queued',   -- queued | running | done | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    run_after TIMESTAMP NOT NULL,
    locked_by TEXT,
    heartbeat_at TIMESTAMP,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE INDEX jobs_ready ON jobs(status, run_after);
ALTER TABLE assays ADD COLUMN prompt_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE assays ADD COLUMN completion_tokens BIGINT NOT NULL DEFAULT 0;
