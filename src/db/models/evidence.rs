//! Evidence in the database: the passages of kept files (derived data: they go whenever the
//! file goes) and the checked citations of each answer (they stay, with their quote and
//! location, even when the document is gone).

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{answer_citations, file_assets, file_passages};
use crate::ingest::{Location, Passage};

use super::FileAssetId;

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = file_passages)]
pub struct FilePassage {
    pub id: i32,
    pub file_id: FileAssetId,
    pub position: i32,
    pub location: String,
    pub char_start: i32,
    pub char_end: i32,
    pub text: String,
}

fn location_json(location: &Location) -> String {
    serde_json::to_string(location).unwrap_or_else(|_| "{}".into())
}

impl FilePassage {
    pub fn location(&self) -> Location {
        serde_json::from_str(&self.location).unwrap_or_default()
    }

    /// Store a kept file's passages (one statement each: batch inserts are not in the SQL
    /// both backends share through one connection type).
    pub fn insert_all(conn: &mut DbConn, file_id: &FileAssetId, passages: &[Passage]) -> QueryResult<()> {
        for p in passages {
            diesel::insert_into(file_passages::table)
                .values((
                    file_passages::file_id.eq(file_id),
                    file_passages::position.eq(p.position as i32),
                    file_passages::location.eq(location_json(&p.location)),
                    file_passages::char_start.eq(p.start as i32),
                    file_passages::char_end.eq(p.end as i32),
                    file_passages::text.eq(&p.text),
                ))
                .execute(conn)?;
        }
        Ok(())
    }

    pub fn of_file(conn: &mut DbConn, file_id: &FileAssetId) -> QueryResult<Vec<FilePassage>> {
        file_passages::table
            .filter(file_passages::file_id.eq(file_id))
            .order(file_passages::position)
            .select(Self::as_select())
            .load(conn)
    }

    /// The stored passages at these (file, position) pairs.
    pub fn at(conn: &mut DbConn, wanted: &[(FileAssetId, i32)]) -> QueryResult<Vec<FilePassage>> {
        let files: Vec<&FileAssetId> = wanted.iter().map(|(f, _)| f).collect();
        let rows: Vec<FilePassage> =
            file_passages::table.filter(file_passages::file_id.eq_any(files)).select(Self::as_select()).load(conn)?;
        Ok(rows.into_iter().filter(|p| wanted.iter().any(|(f, n)| *f == p.file_id && *n == p.position)).collect())
    }

    /// Remove the passages of files that are no longer kept.
    pub fn delete_of(conn: &mut DbConn, files: &[FileAssetId]) -> QueryResult<usize> {
        diesel::delete(file_passages::table.filter(file_passages::file_id.eq_any(files))).execute(conn)
    }

    pub fn count_of(conn: &mut DbConn, files: &[FileAssetId]) -> QueryResult<i64> {
        file_passages::table.filter(file_passages::file_id.eq_any(files)).count().get_result(conn)
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = answer_citations)]
pub struct AnswerCitation {
    pub id: i32,
    pub answer_id: i32,
    pub number: i32,
    pub file_id: Option<FileAssetId>,
    pub document_name: String,
    pub passage_position: Option<i32>,
    pub location: String,
    pub quote: String,
    pub verified: bool,
    pub char_start: Option<i32>,
    pub char_end: Option<i32>,
}

/// A citation to store with an answer.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCitation {
    pub number: u32,
    pub file_id: Option<FileAssetId>,
    pub document_name: String,
    pub passage_position: Option<u32>,
    pub location: Location,
    pub quote: String,
    pub verified: bool,
    pub span: Option<(usize, usize)>,
}

impl AnswerCitation {
    pub fn location(&self) -> Location {
        serde_json::from_str(&self.location).unwrap_or_default()
    }

    /// The answer's citations become these (a redraft replaces them all). A citation of a
    /// file whose row is gone keeps its quote and location, without the file.
    pub fn replace(conn: &mut DbConn, answer_id: i32, citations: &[NewCitation]) -> QueryResult<()> {
        diesel::delete(answer_citations::table.filter(answer_citations::answer_id.eq(answer_id))).execute(conn)?;
        let named: Vec<&FileAssetId> = citations.iter().filter_map(|c| c.file_id.as_ref()).collect();
        let existing: Vec<FileAssetId> =
            file_assets::table.filter(file_assets::id.eq_any(named)).select(file_assets::id).load(conn)?;
        for c in citations {
            let file_id = c.file_id.as_ref().filter(|f| existing.contains(f));
            diesel::insert_into(answer_citations::table)
                .values((
                    answer_citations::answer_id.eq(answer_id),
                    answer_citations::number.eq(c.number as i32),
                    answer_citations::file_id.eq(file_id),
                    answer_citations::document_name.eq(&c.document_name),
                    answer_citations::passage_position.eq(c.passage_position.map(|p| p as i32)),
                    answer_citations::location.eq(location_json(&c.location)),
                    answer_citations::quote.eq(&c.quote),
                    answer_citations::verified.eq(c.verified),
                    answer_citations::char_start.eq(c.span.map(|s| s.0 as i32)),
                    answer_citations::char_end.eq(c.span.map(|s| s.1 as i32)),
                ))
                .execute(conn)?;
        }
        Ok(())
    }

    /// The citations of these answers, by answer and number.
    pub fn of_answers(conn: &mut DbConn, answer_ids: &[i32]) -> QueryResult<Vec<AnswerCitation>> {
        answer_citations::table
            .filter(answer_citations::answer_id.eq_any(answer_ids))
            .order((answer_citations::answer_id, answer_citations::number))
            .select(Self::as_select())
            .load(conn)
    }
}
