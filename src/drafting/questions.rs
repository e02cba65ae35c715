//! What a run needs to know about the questions of a question set, and about the answers
//! later rounds build on (a drafting run reads them from the assay; an evaluation run keeps
//! its own).

use std::collections::HashMap;

use diesel::prelude::*;

use super::evidence::Evidence;
use crate::db::DbConn;
use crate::db::models::{AnswerCitation, Assay};
use crate::db::schema::{answers, question_context_subsections, questions, sections, subsections};

/// A question as the run asks it.
#[derive(Clone, Debug, Queryable)]
pub struct QuestionRow {
    pub id: i32,
    pub subsection_id: i32,
    pub subsection: String,
    pub guidance: String,
    pub text: String,
    /// 1, 2 or 3: later rounds may use the answers of earlier ones.
    pub round: i32,
    /// Answer from the earlier answers of the context subsections only, not the documents.
    pub only_context: bool,
    pub additional: String,
    /// Ask the additional instruction instead of the question text.
    pub only_additional: bool,
}

#[derive(Clone, Debug)]
pub struct QuestionInfo {
    pub row: QuestionRow,
    /// The subsections whose answers this question builds on.
    pub context_subsections: Vec<i32>,
}

/// A citation of an earlier answer, as a later prompt needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlierCitation {
    /// The `[n]` in the answer text.
    pub number: i32,
    pub document_name: String,
    pub passage_position: Option<i32>,
    pub quote: String,
    pub verified: bool,
}

impl From<AnswerCitation> for EarlierCitation {
    fn from(c: AnswerCitation) -> Self {
        Self {
            number: c.number,
            document_name: c.document_name,
            passage_position: c.passage_position,
            quote: c.quote,
            verified: c.verified,
        }
    }
}

impl From<&Evidence> for EarlierCitation {
    fn from(e: &Evidence) -> Self {
        Self {
            number: e.number as i32,
            document_name: e.document_name.clone(),
            passage_position: e.passage.map(|p| p as i32),
            quote: e.quote.clone(),
            verified: e.verified,
        }
    }
}

/// An answer already given, as context for a later round, with its citations.
#[derive(Clone, Debug)]
pub struct EarlierAnswer {
    pub question_id: i32,
    pub subsection_title: String,
    pub text: String,
    pub citations: Vec<EarlierCitation>,
}

/// Earlier answers by subsection id.
pub type EarlierAnswers = HashMap<i32, Vec<EarlierAnswer>>;

/// The questions of the assay's question set, in template order.
pub(super) fn load(c: &mut DbConn, assay: &Assay) -> QueryResult<Vec<QuestionInfo>> {
    match assay.question_set_id {
        Some(set_id) => load_set(c, set_id),
        None => Ok(Vec::new()),
    }
}

/// The questions of a question set, in template order.
pub fn load_set(c: &mut DbConn, set_id: i32) -> QueryResult<Vec<QuestionInfo>> {
    let rows: Vec<QuestionRow> = questions::table
        .inner_join(subsections::table.inner_join(sections::table))
        .filter(sections::question_set_id.eq(set_id))
        .order((sections::position, subsections::position, questions::position))
        .select((
            questions::id,
            subsections::id,
            subsections::title,
            subsections::guidance,
            questions::text,
            questions::answering_round,
            questions::only_subsections_for_context,
            questions::additional_llm_instruction,
            questions::only_additional_llm_instruction,
        ))
        .load(c)?;
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    let links: Vec<(i32, i32)> = question_context_subsections::table
        .filter(question_context_subsections::question_id.eq_any(&ids))
        .select((question_context_subsections::question_id, question_context_subsections::subsection_id))
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|row| QuestionInfo {
            context_subsections: links.iter().filter(|(q, _)| *q == row.id).map(|(_, s)| *s).collect(),
            row,
        })
        .collect())
}

/// Questions of the assay answered at or after `since` (by an earlier attempt of this run).
pub(super) fn answered_since(c: &mut DbConn, assay_id: i32, since: chrono::NaiveDateTime) -> QueryResult<Vec<i32>> {
    answers::table
        .filter(answers::assay_id.eq(assay_id))
        .filter(answers::updated_at.ge(since))
        .select(answers::question_id)
        .load(c)
}

/// The assay's answers so far, by subsection.
pub(super) fn earlier_answers(c: &mut DbConn, assay_id: i32) -> QueryResult<EarlierAnswers> {
    let rows: Vec<(i32, i32, i32, String, String)> = answers::table
        .inner_join(questions::table.inner_join(subsections::table))
        .filter(answers::assay_id.eq(assay_id))
        .select((answers::id, subsections::id, questions::id, subsections::title, answers::text))
        .load(c)?;
    let ids: Vec<i32> = rows.iter().map(|r| r.0).collect();
    let mut citations: HashMap<i32, Vec<AnswerCitation>> = HashMap::new();
    for citation in AnswerCitation::of_answers(c, &ids)? {
        citations.entry(citation.answer_id).or_default().push(citation);
    }
    let mut map = EarlierAnswers::new();
    for (answer_id, subsection_id, question_id, subsection_title, text) in rows {
        let citations = citations.remove(&answer_id).unwrap_or_default().into_iter().map(Into::into).collect();
        map.entry(subsection_id).or_default().push(EarlierAnswer { question_id, subsection_title, text, citations });
    }
    Ok(map)
}
