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
