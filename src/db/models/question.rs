//! The question template: QuestionSet → Section → Subsection → Question.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{question_sets, questions, sections, subsections};

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = question_sets)]
pub struct QuestionSet {
    pub id: i32,
    pub label: String,
    pub display_name: String,
    pub reference: String,
    pub created_at: chrono::NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = sections)]
pub struct Section {
    pub id: i32,
    pub question_set_id: i32,
    pub position: i32,
    pub title: String,
    pub guidance: String,
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = subsections)]
pub struct Subsection {
    pub id: i32,
    pub section_id: i32,
    pub position: i32,
    pub title: String,
    pub guidance: String,
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = questions)]
pub struct Question {
    pub id: i32,
    pub subsection_id: i32,
    pub parent_id: Option<i32>,
    pub position: i32,
    pub text: String,
    pub answering_round: i32,
    pub only_subsections_for_context: bool,
    pub additional_llm_instruction: String,
    pub only_additional_llm_instruction: bool,
}

impl Question {
    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<Question> {
        questions::table.find(id).select(Self::as_select()).first(conn)
    }
}

impl QuestionSet {
    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<QuestionSet>> {
        question_sets::table.order(question_sets::id).select(Self::as_select()).load(conn)
    }

    pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<QuestionSet> {
        question_sets::table.find(id).select(Self::as_select()).first(conn)
    }

    pub fn find_by_label(conn: &mut DbConn, label: &str) -> QueryResult<Option<QuestionSet>> {
        question_sets::table.filter(question_sets::label.eq(label)).select(Self::as_select()).first(conn).optional()
    }

    pub fn sections(conn: &mut DbConn, set_id: i32) -> QueryResult<Vec<Section>> {
        sections::table
            .filter(sections::question_set_id.eq(set_id))
            .order(sections::position)
            .select(Section::as_select())
            .load(conn)
    }

    pub fn subsections(conn: &mut DbConn, set_id: i32) -> QueryResult<Vec<Subsection>> {
        subsections::table
            .inner_join(sections::table)
            .filter(sections::question_set_id.eq(set_id))
            .order((sections::position, subsections::position))
            .select(Subsection::as_select())
            .load(conn)
    }

    /// Every question of the set, in template order.
    pub fn questions(conn: &mut DbConn, set_id: i32) -> QueryResult<Vec<Question>> {
        questions::table
            .inner_join(subsections::table.inner_join(sections::table))
            .filter(sections::question_set_id.eq(set_id))
            .order((sections::position, subsections::position, questions::position))
            .select(Question::as_select())
            .load(conn)
    }
}
