-- Evidence: the passages of kept files (derived data that lives and dies with the file) and
-- the citations of each answer, checked against the passages before they were saved.
CREATE TABLE file_passages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id TEXT NOT NULL REFERENCES file_assets(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,                    -- from 1, in document order
    location TEXT NOT NULL DEFAULT '{}',          -- JSON: page, slide, sheet, rows, paragraph, heading
    char_start INTEGER NOT NULL,                  -- span in the document's extracted text
    char_end INTEGER NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (file_id, position)
);

CREATE TABLE answer_citations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    answer_id INTEGER NOT NULL REFERENCES answers(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,                      -- the [n] in the answer text
    file_id TEXT REFERENCES file_assets(id) ON DELETE SET NULL,   -- when the document was kept
    document_name TEXT NOT NULL,
    passage_position INTEGER,                     -- NULL when no (known) passage was named
    location TEXT NOT NULL DEFAULT '{}',
    quote TEXT NOT NULL DEFAULT '',               -- at most 300 characters
    verified BOOLEAN NOT NULL,
    char_start INTEGER,
    char_end INTEGER
);
CREATE INDEX answer_citations_answer ON answer_citations(answer_id);
CREATE INDEX answer_citations_file ON answer_citations(file_id);
