-- Benchmarks: sets of cases (documents + gold answers) frozen from kept data or imported
-- from a folder, evaluation runs of a provider configuration over a set, and the answers
-- of each run with their per-question metrics. Nothing here points back into users'
-- answers: a run writes only its own rows.
CREATE TABLE benchmark_sets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    out_of_scope BOOLEAN NOT NULL DEFAULT FALSE,   -- negative control: every answer should abstain
    question_set_id INTEGER NOT NULL REFERENCES question_sets(id),
    created_by INTEGER REFERENCES persons(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX benchmark_sets_question_set ON benchmark_sets(question_set_id);
CREATE INDEX benchmark_sets_created_by ON benchmark_sets(created_by);

-- A case: one assay's documents and its gold answers.
CREATE TABLE benchmark_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    set_id INTEGER NOT NULL REFERENCES benchmark_sets(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    title TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT '',
    source_assay_id INTEGER REFERENCES assays(id) ON DELETE SET NULL,
    withdrawn_at TIMESTAMP                          -- its assay was deleted: the gold went too
);
CREATE INDEX benchmark_items_set ON benchmark_items(set_id);
CREATE INDEX benchmark_items_source_assay ON benchmark_items(source_assay_id);

CREATE TABLE benchmark_item_files (
    item_id INTEGER NOT NULL REFERENCES benchmark_items(id) ON DELETE CASCADE,
    file_id TEXT NOT NULL REFERENCES file_assets(id),
    PRIMARY KEY (item_id, file_id)
);
CREATE INDEX benchmark_item_files_file ON benchmark_item_files(file_id);

-- The accepted answer at the moment the set was frozen (later edits do not move it).
CREATE TABLE benchmark_gold (
    item_id INTEGER NOT NULL REFERENCES benchmark_items(id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(id),
    text TEXT NOT NULL,
    cited_documents TEXT NOT NULL DEFAULT '[]',     -- JSON: names of the documents it cites
    PRIMARY KEY (item_id, question_id)
);
CREATE INDEX benchmark_gold_question ON benchmark_gold(question_id);

CREATE TABLE evaluation_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    set_id INTEGER NOT NULL REFERENCES benchmark_sets(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    base_url TEXT,                                  -- NULL: the offline provider
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    price_prompt_per_mtok REAL,                     -- USD per million tokens, when known
    price_completion_per_mtok REAL,
    status TEXT NOT NULL,                           -- scheduled | busy | done | error
    notes TEXT NOT NULL DEFAULT '[]',               -- JSON: what was skipped and why
    created_by INTEGER REFERENCES persons(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX evaluation_runs_set ON evaluation_runs(set_id);
CREATE INDEX evaluation_runs_created_by ON evaluation_runs(created_by);

CREATE TABLE evaluation_answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES evaluation_runs(id) ON DELETE CASCADE,
    item_id INTEGER NOT NULL REFERENCES benchmark_items(id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(id),
    text TEXT NOT NULL,
    evidence TEXT NOT NULL DEFAULT '[]',            -- JSON: the checked citations
    failed BOOLEAN NOT NULL DEFAULT FALSE,          -- the model gave no answer
    abstained BOOLEAN NOT NULL,
    gold_abstained BOOLEAN,                         -- NULL: no gold answer for this question
    token_f1 REAL,
    rouge_l REAL,
    cosine REAL,
    citations INTEGER NOT NULL DEFAULT 0,
    verified_citations INTEGER NOT NULL DEFAULT 0,
    cited_file_agreement REAL,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    UNIQUE (run_id, item_id, question_id)
);
CREATE INDEX evaluation_answers_item ON evaluation_answers(item_id);
CREATE INDEX evaluation_answers_question ON evaluation_answers(question_id);
