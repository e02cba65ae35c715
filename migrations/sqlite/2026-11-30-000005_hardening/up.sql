-- Hardening: revocable sessions, consent withdrawal remembered per assay, when a file was
-- deleted (its name is dropped after a retention period), login throttling shared by every
-- server, and indexes on the foreign keys used in lookups.
ALTER TABLE persons ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE assays ADD COLUMN consent_withdrawn_at TIMESTAMP;
ALTER TABLE file_assets ADD COLUMN deleted_at TIMESTAMP;

CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,                 -- 'email:…' or 'ip:…'
    failures INTEGER NOT NULL,
    window_start TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_window ON login_failures(window_start);

CREATE INDEX investigations_owner ON investigations(owner_id);
CREATE INDEX studies_investigation ON studies(investigation_id);
CREATE INDEX assays_study ON assays(study_id);
CREATE INDEX answer_edits_answer ON answer_edits(answer_id);
CREATE INDEX file_assets_uploaded_by ON file_assets(uploaded_by);
CREATE INDEX file_assets_status ON file_assets(status);
CREATE INDEX file_download_logs_file ON file_download_logs(file_id);
CREATE INDEX file_audit_events_file ON file_audit_events(file_id);
CREATE INDEX sections_question_set ON sections(question_set_id);
CREATE INDEX subsections_section ON subsections(section_id);
CREATE INDEX questions_subsection ON questions(subsection_id);
