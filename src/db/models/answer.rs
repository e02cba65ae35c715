//! Answers (one per assay and question) and their edit history.

use diesel::prelude::*;

use crate::db::schema::{answer_edits, answers};
use crate::db::{DbConn, now};

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = answers)]
pub struct Answer {
    pub id: i32,
    pub assay_id: i32,
    pub question_id: i32,
    pub text: String,
    pub accepted: bool,
    pub source_documents: String,
    pub created_at: chrono::NaiveDateTime,
    pub updated_at: chrono::NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = answer_edits)]
pub struct AnswerEdit {
    pub id: i32,
    pub answer_id: i32,
    pub editor_id: Option<i32>,
    pub old_text: String,
    pub new_text: String,
    pub edited_at: chrono::NaiveDateTime,
}

impl Answer {
    /// Names of the documents the answer was drafted from.
    pub fn source_documents(&self) -> Vec<String> {
        serde_json::from_str(&self.source_documents).unwrap_or_default()
    }

    /// The assay's answer to one question, if there is one.
    pub fn of_question(conn: &mut DbConn, assay_id: i32, question_id: i32) -> QueryResult<Option<Answer>> {
        answers::table
            .filter(answers::assay_id.eq(assay_id))
            .filter(answers::question_id.eq(question_id))
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    pub fn of_assay(conn: &mut DbConn, assay_id: i32) -> QueryResult<Vec<Answer>> {
        answers::table
            .filter(answers::assay_id.eq(assay_id))
            .order(answers::question_id)
            .select(Self::as_select())
            .load(conn)
    }

    /// Insert or replace the drafted text for (assay, question); `accepted` is reset because
    /// the person has not seen the new text yet. Call inside a transaction.
    pub fn save_draft(
        conn: &mut DbConn,
        assay_id: i32,
        question_id: i32,
        text: &str,
        sources: &[String],
    ) -> QueryResult<Answer> {
        let sources = serde_json::to_string(sources).unwrap_or_else(|_| "[]".into());
        let at = now();
        let existing: Option<(i32, String)> = answers::table
            .filter(answers::assay_id.eq(assay_id))
            .filter(answers::question_id.eq(question_id))
            .select((answers::id, answers::text))
            .first(conn)
            .optional()?;
        let id = match existing {
            Some((id, old_text)) => {
                // A redraft replaces what may be a person's edit: keep it in the history.
                if !old_text.is_empty() && old_text != text {
                    diesel::insert_into(answer_edits::table)
                        .values((
                            answer_edits::answer_id.eq(id),
                            answer_edits::editor_id.eq(None::<i32>),
                            answer_edits::old_text.eq(&old_text),
                            answer_edits::new_text.eq(text),
                            answer_edits::edited_at.eq(at),
                        ))
                        .execute(conn)?;
                }
                diesel::update(answers::table.find(id))
                    .set((
                        answers::text.eq(text),
                        answers::accepted.eq(false),
                        answers::source_documents.eq(&sources),
                        answers::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                id
            }
            None => diesel::insert_into(answers::table)
                .values((
                    answers::assay_id.eq(assay_id),
                    answers::question_id.eq(question_id),
                    answers::text.eq(text),
                    answers::accepted.eq(false),
                    answers::source_documents.eq(&sources),
                    answers::created_at.eq(at),
                    answers::updated_at.eq(at),
                ))
                .returning(answers::id)
                .get_result(conn)?,
        };
        answers::table.find(id).select(Self::as_select()).first(conn)
    }

    /// A person's edit: the old text goes into the history.
    pub fn edit(conn: &mut DbConn, answer: &Answer, editor_id: i32, new_text: &str, accepted: bool) -> QueryResult<()> {
        if answer.text != new_text {
            diesel::insert_into(answer_edits::table)
                .values((
                    answer_edits::answer_id.eq(answer.id),
                    answer_edits::editor_id.eq(Some(editor_id)),
                    answer_edits::old_text.eq(&answer.text),
                    answer_edits::new_text.eq(new_text),
                    answer_edits::edited_at.eq(now()),
                ))
                .execute(conn)?;
        }
        diesel::update(answers::table.find(answer.id))
            .set((answers::text.eq(new_text), answers::accepted.eq(accepted), answers::updated_at.eq(now())))
            .execute(conn)?;
        Ok(())
    }

    pub fn history(conn: &mut DbConn, answer_id: i32) -> QueryResult<Vec<AnswerEdit>> {
        answer_edits::table
            .filter(answer_edits::answer_id.eq(answer_id))
            .order(answer_edits::id.desc())
            .select(AnswerEdit::as_select())
            .load(conn)
    }
}
