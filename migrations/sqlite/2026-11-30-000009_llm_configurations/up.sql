-- Language-model configurations kept by staff (the environment's provider is the default and
-- is not stored here), and one record per drafting run: which configuration drafted, with its
-- name, model and prices copied at the time, and the tokens it used. API keys are never
-- stored: a configuration names the environment variable that holds its key.
CREATE TABLE llm_configurations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    base_url TEXT NOT NULL,
    model TEXT NOT NULL,
    api_key_env TEXT NOT NULL DEFAULT '',          -- '' = no key (a local server)
    context_window INTEGER NOT NULL,               -- tokens
    price_prompt_per_mtok DOUBLE PRECISION,        -- per million input tokens
    price_completion_per_mtok DOUBLE PRECISION,    -- per million output tokens
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- Names differ in more than case ("GPT" and "gpt" would confuse the select on the forms).
CREATE UNIQUE INDEX llm_configurations_name_lower ON llm_configurations (lower(name));


CREATE TABLE drafting_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    assay_id INTEGER NOT NULL REFERENCES assays(id) ON DELETE CASCADE,
    job_id INTEGER,                                -- the queue's job (a resumed job keeps its run)
    configuration_id INTEGER REFERENCES llm_configurations(id),  -- NULL: the environment default
    configuration_name TEXT NOT NULL,
    model TEXT NOT NULL,
    price_prompt_per_mtok DOUBLE PRECISION,
    price_completion_per_mtok DOUBLE PRECISION,
    status TEXT NOT NULL,                          -- busy | done | error
    message TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX drafting_runs_assay ON drafting_runs(assay_id);
CREATE INDEX drafting_runs_job ON drafting_runs(job_id);
CREATE INDEX drafting_runs_configuration ON drafting_runs(configuration_id);
