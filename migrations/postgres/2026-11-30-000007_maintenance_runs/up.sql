-- The reports of `toxtemp verify-storage`: staff see the last one on /admin/storage.
CREATE TABLE storage_checks (
    id SERIAL PRIMARY KEY,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    rehashed BOOLEAN NOT NULL,
    repaired BOOLEAN NOT NULL,
    summary TEXT NOT NULL,               -- JSON: counts by finding kind, files, objects, bytes
    findings TEXT NOT NULL               -- JSON: the findings (at most 1000)
);

-- The runs of `toxtemp cleanup-orphaned-files`: /metrics says when the last one finished,
-- so a timer that stopped firing is noticed.
CREATE TABLE cleanup_runs (
    id SERIAL PRIMARY KEY,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    deleted INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    names_forgotten INTEGER NOT NULL
);
