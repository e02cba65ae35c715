-- Password-reset (and invitation) links: only the SHA-256 of the token is stored, so a copy
-- of the database does not let anyone set a password. A row is deleted when it is used and
-- with every other open link of its person when the password changes by any route.
CREATE TABLE password_resets (
    id SERIAL PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,     -- hex SHA-256 of the token sent in the link
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
-- One open link per person: the newest replaces the others, even when two are asked for at once.
CREATE UNIQUE INDEX password_resets_person ON password_resets (person_id);

-- Shown on /admin/accounts; NULL until the person's next login.
ALTER TABLE persons ADD COLUMN last_login_at TIMESTAMP;
