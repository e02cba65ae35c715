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
CREATE INDEX answer_edits_editor ON answer_edits(editor_id);
CREATE INDEX answers_question ON answers(question_id);
CREATE INDEX assays_question_set ON assays(question_set_id);
CREATE INDEX file_download_logs_person ON file_download_logs(person_id);
CREATE INDEX question_context_subsections_subsection ON question_context_subsections(subsection_id);
CREATE INDEX questions_parent ON questions(parent_id);
