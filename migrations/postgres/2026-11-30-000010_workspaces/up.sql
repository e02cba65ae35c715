-- Workspaces: groups of people an investigation's owner shares investigations with. Every
-- member has one role (owner | admin | member); exactly one owner per workspace (the partial
-- unique index keeps it at most one, transfers swap roles in one transaction).
CREATE TABLE workspaces (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE workspace_members (
    id SERIAL PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    role TEXT NOT NULL,                            -- owner | admin | member
    added_at TIMESTAMP NOT NULL,
    UNIQUE (workspace_id, person_id)
);
CREATE INDEX workspace_members_person ON workspace_members(person_id);
CREATE UNIQUE INDEX workspace_members_one_owner ON workspace_members(workspace_id) WHERE role = 'owner';

-- An investigation shared into a workspace: its members see and contribute to it.
CREATE TABLE workspace_investigations (
    id SERIAL PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    investigation_id INTEGER NOT NULL REFERENCES investigations(id) ON DELETE CASCADE,
    shared_by INTEGER REFERENCES persons(id) ON DELETE SET NULL,
    shared_at TIMESTAMP NOT NULL,
    UNIQUE (workspace_id, investigation_id)
);
CREATE INDEX workspace_investigations_investigation ON workspace_investigations(investigation_id);
CREATE INDEX workspace_investigations_shared_by ON workspace_investigations(shared_by);

-- Every sharing change. Names and titles are copied, so the history still reads after the
-- person, investigation or workspace is gone (their ids then become NULL).
CREATE TABLE workspace_events (
    id SERIAL PRIMARY KEY,
    workspace_id INTEGER REFERENCES workspaces(id) ON DELETE SET NULL,
    workspace_name TEXT NOT NULL,
    kind TEXT NOT NULL,                            -- see crate::workspaces::EventKind
    actor_id INTEGER REFERENCES persons(id) ON DELETE SET NULL,
    actor TEXT NOT NULL,
    subject_id INTEGER REFERENCES persons(id) ON DELETE SET NULL,
    subject TEXT NOT NULL DEFAULT '',
    investigation_id INTEGER REFERENCES investigations(id) ON DELETE SET NULL,
    investigation TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX workspace_events_workspace ON workspace_events(workspace_id);
CREATE INDEX workspace_events_actor ON workspace_events(actor_id);
CREATE INDEX workspace_events_subject ON workspace_events(subject_id);
CREATE INDEX workspace_events_investigation ON workspace_events(investigation_id);
