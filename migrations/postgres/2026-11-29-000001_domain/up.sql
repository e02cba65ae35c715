-- The whole ToxTemp domain (SPEC §2). Keep in step with ../../sqlite/<same name>/up.sql:
-- the same tables, columns and constraints; only the dialect differs.

CREATE TABLE persons (
    id SERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,            -- stored lower-cased: login is case-insensitive
    password_hash TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    organization TEXT NOT NULL DEFAULT '',
    is_staff BOOLEAN NOT NULL DEFAULT FALSE,
    is_superuser BOOLEAN NOT NULL DEFAULT FALSE,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE question_sets (
    id SERIAL PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE sections (
    id SERIAL PRIMARY KEY,
    question_set_id INTEGER NOT NULL REFERENCES question_sets(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    title TEXT NOT NULL,
    guidance TEXT NOT NULL DEFAULT ''
);

CREATE TABLE subsections (
    id SERIAL PRIMARY KEY,
    section_id INTEGER NOT NULL REFERENCES sections(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    title TEXT NOT NULL,
    guidance TEXT NOT NULL DEFAULT ''
);

CREATE TABLE questions (
    id SERIAL PRIMARY KEY,
    subsection_id INTEGER NOT NULL REFERENCES subsections(id) ON DELETE CASCADE,
    parent_id INTEGER REFERENCES questions(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    answering_round INTEGER NOT NULL DEFAULT 1,
    only_subsections_for_context BOOLEAN NOT NULL DEFAULT FALSE,
    additional_llm_instruction TEXT NOT NULL DEFAULT '',
    only_additional_llm_instruction BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE question_context_subsections (
    question_id INTEGER NOT NULL REFERENCES questions(id) ON DELETE CASCADE,
    subsection_id INTEGER NOT NULL REFERENCES subsections(id) ON DELETE CASCADE,
    PRIMARY KEY (question_id, subsection_id)
);

CREATE TABLE investigations (
    id SERIAL PRIMARY KEY,
    owner_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE studies (
    id SERIAL PRIMARY KEY,
    investigation_id INTEGER NOT NULL REFERENCES investigations(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE assays (
    id SERIAL PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    question_set_id INTEGER REFERENCES question_sets(id) ON DELETE RESTRICT,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'none',
    alerts TEXT NOT NULL DEFAULT '[]',          -- JSON array of user-visible messages
    processing_log TEXT NOT NULL DEFAULT '',    -- internal, staff only
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE answers (
    id SERIAL PRIMARY KEY,
    assay_id INTEGER NOT NULL REFERENCES assays(id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(id) ON DELETE CASCADE,
    text TEXT NOT NULL DEFAULT '',
    accepted BOOLEAN NOT NULL DEFAULT FALSE,
    source_documents TEXT NOT NULL DEFAULT '[]', -- JSON array of document names
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (assay_id, question_id)
);

CREATE TABLE answer_edits (
    id SERIAL PRIMARY KEY,
    answer_id INTEGER NOT NULL REFERENCES answers(id) ON DELETE CASCADE,
    editor_id INTEGER REFERENCES persons(id) ON DELETE SET NULL,
    old_text TEXT NOT NULL,
    new_text TEXT NOT NULL,
    edited_at TIMESTAMP NOT NULL
);

CREATE TABLE file_assets (
    id TEXT PRIMARY KEY,                         -- UUID, text on both backends
    bucket TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE,
    original_filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'available',
    uploaded_by INTEGER REFERENCES persons(id) ON DELETE SET NULL,
    assay_id INTEGER REFERENCES assays(id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX file_assets_created_at ON file_assets(created_at);
CREATE INDEX file_assets_assay ON file_assets(assay_id);

CREATE TABLE answer_files (
    id SERIAL PRIMARY KEY,
    answer_id INTEGER NOT NULL REFERENCES answers(id) ON DELETE CASCADE,
    file_id TEXT NOT NULL REFERENCES file_assets(id) ON DELETE CASCADE,
    label TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (answer_id, file_id)
);
CREATE INDEX answer_files_file ON answer_files(file_id);

-- Audit rows carry copies of who/what so they outlive accounts and files.
CREATE TABLE file_download_logs (
    id SERIAL PRIMARY KEY,
    file_id TEXT NOT NULL,
    original_filename TEXT NOT NULL,
    person_id INTEGER REFERENCES persons(id) ON DELETE SET NULL,
    person_email TEXT NOT NULL,
    ip_address TEXT NOT NULL DEFAULT '',
    downloaded_at TIMESTAMP NOT NULL
);

CREATE TABLE file_audit_events (
    id SERIAL PRIMARY KEY,
    file_id TEXT NOT NULL,
    event TEXT NOT NULL,                          -- e.g. orphan_deleted, consent_withdrawn
    detail TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
