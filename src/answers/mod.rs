//! The answer sheet of an assay: questions by section with their answers, their evidence,
//! the files each answer was drafted from and its edit history — one read model for the
//! answer page and the exports (`render`: safe HTML and Markdown of answers; `export`: the
//! export metadata and the DOCX, HTML and PDF files).

mod diff;
mod evidence;
pub mod export;
mod render;

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::models::{Answer, Assay, LinkLabel, QuestionSet};
use crate::db::schema::{answer_edits, answer_files, file_assets, persons};

pub use diff::word_diff_html;
pub use evidence::{EvidenceView, Highlight};
pub(crate) use render::escape;
pub use render::{markdown, render_answer};

#[derive(Clone, Debug, Serialize)]
pub struct EditView {
    pub editor: String,
    pub edited_at: String,
    pub old_text: String,
    pub new_text: String,
}

impl EditView {
    /// What this edit changed, word by word, as safe HTML.
    pub fn diff_html(&self) -> String {
        word_diff_html(&self.old_text, &self.new_text)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct QuestionView {
    pub question_id: i32,
    pub subsection: String,
    pub guidance: String,
    pub question: String,
    pub is_subquestion: bool,
    pub answer: Option<String>,
    pub accepted: bool,
    /// The documents the answer's verified citations come from ("drafted from").
    pub sources: Vec<String>,
    /// Kept files linked to the answer, with why (cited / context).
    pub files: Vec<LinkedFile>,
    /// The answer's citations, by number.
    pub evidence: Vec<EvidenceView>,
    pub history: Vec<EditView>,
}

/// A kept file linked to an answer.
#[derive(Clone, Debug, Serialize)]
pub struct LinkedFile {
    pub name: String,
    /// `cited` or `context`.
    pub label: String,
}

impl QuestionView {
    pub fn html(&self) -> String {
        render_answer(self.answer.as_deref().unwrap_or_default(), self.question_id, &self.evidence)
    }

    /// Citations that could not be verified (shown as a flag, never as evidence).
    pub fn unverified(&self) -> usize {
        self.evidence.iter().filter(|e| !e.verified).count()
    }

    pub fn drafted(&self) -> bool {
        self.answer.as_deref().is_some_and(|a| !a.is_empty())
    }

    /// The answer says the documents do not answer the question.
    pub fn not_found(&self) -> bool {
        self.answer.as_deref().is_some_and(crate::llm::is_not_found)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SectionView {
    pub position: i32,
    pub title: String,
    pub questions: Vec<QuestionView>,
}

impl SectionView {
    pub fn accepted(&self) -> usize {
        self.questions.iter().filter(|q| q.accepted).count()
    }

    /// Accepted share in whole percent (100 for a section without questions).
    pub fn percent_accepted(&self) -> usize {
        match self.questions.len() {
            0 => 100,
            n => self.accepted() * 100 / n,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AnswerSheet {
    pub assay_id: i32,
    pub assay_title: String,
    pub scope: String,
    pub question_set: Option<String>,
    pub sections: Vec<SectionView>,
}

impl AnswerSheet {
    pub fn total(&self) -> usize {
        self.sections.iter().map(|s| s.questions.len()).sum()
    }
    pub fn drafted(&self) -> usize {
        self.sections.iter().flat_map(|s| &s.questions).filter(|q| q.drafted()).count()
    }
    pub fn accepted(&self) -> usize {
        self.sections.iter().flat_map(|s| &s.questions).filter(|q| q.accepted).count()
    }
    /// All citations of the assay's answers.
    pub fn citations(&self) -> usize {
        self.questions().map(|q| q.evidence.len()).sum()
    }
    /// Citations whose quote was found in the cited passage.
    pub fn verified_citations(&self) -> usize {
        self.questions().map(|q| q.evidence.iter().filter(|e| e.verified).count()).sum()
    }
    fn questions(&self) -> impl Iterator<Item = &QuestionView> {
        self.sections.iter().flat_map(|s| &s.questions)
    }

    /// The first question not accepted yet, in sheet order.
    pub fn first_unaccepted(&self) -> Option<i32> {
        self.questions().find(|q| !q.accepted).map(|q| q.question_id)
    }

    /// The next question after `question_id` that is not accepted yet, wrapping round to the
    /// start; `None` when every other question is accepted.
    /// (By reference: templates pass their loop's fields so.)
    pub fn next_unaccepted(&self, question_id: &i32) -> Option<i32> {
        let all: Vec<&QuestionView> = self.questions().collect();
        let at = all.iter().position(|q| q.question_id == *question_id)?;
        all[at + 1..].iter().chain(&all[..at]).find(|q| !q.accepted).map(|q| q.question_id)
    }
}

/// What changes an assay's answer sheet: when any of it differs, a sheet rendered before is
/// out of date (see the answer page's cache).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SheetVersion {
    assay_updated: chrono::NaiveDateTime,
    consent_withdrawn: Option<chrono::NaiveDateTime>,
    answers: i64,
    last_answer: Option<chrono::NaiveDateTime>,
    last_edit: Option<i32>,
    kept_files: i64,
}

pub fn version(conn: &mut DbConn, assay: &Assay) -> QueryResult<SheetVersion> {
    use diesel::dsl::{count_star, max};
    let (answers, last_answer): (i64, Option<chrono::NaiveDateTime>) = crate::db::schema::answers::table
        .filter(crate::db::schema::answers::assay_id.eq(assay.id))
        .select((count_star(), max(crate::db::schema::answers::updated_at)))
        .first(conn)?;
    let last_edit: Option<i32> = answer_edits::table
        .inner_join(crate::db::schema::answers::table)
        .filter(crate::db::schema::answers::assay_id.eq(assay.id))
        .select(max(answer_edits::id))
        .first(conn)?;
    let kept_files: i64 = file_assets::table
        .filter(file_assets::assay_id.eq(assay.id))
        .filter(file_assets::status.eq(crate::db::models::FileAssetStatus::Available))
        .count()
        .get_result(conn)?;
    Ok(SheetVersion {
        assay_updated: assay.updated_at,
        consent_withdrawn: assay.consent_withdrawn_at,
        answers,
        last_answer,
        last_edit,
        kept_files,
    })
}

/// The edit history of these answers, newest first, by answer id.
pub fn history_of(conn: &mut DbConn, answer_ids: &[i32]) -> QueryResult<HashMap<i32, Vec<EditView>>> {
    let mut history: HashMap<i32, Vec<EditView>> = HashMap::new();
    let edits: Vec<(i32, Option<String>, chrono::NaiveDateTime, String, String)> = answer_edits::table
        .left_join(persons::table)
        .filter(answer_edits::answer_id.eq_any(answer_ids))
        .order(answer_edits::id.desc())
        .select((
            answer_edits::answer_id,
            persons::email.nullable(),
            answer_edits::edited_at,
            answer_edits::old_text,
            answer_edits::new_text,
        ))
        .load(conn)?;
    for (answer_id, editor, at, old_text, new_text) in edits {
        history.entry(answer_id).or_default().push(EditView {
            editor: editor.unwrap_or_else(|| "the assistant (redraft) or a deleted account".into()),
            edited_at: at.format("%Y-%m-%d %H:%M UTC").to_string(),
            old_text,
            new_text,
        });
    }
    Ok(history)
}

/// The evidence of one answer with its passages, the quotes marked.
pub fn evidence_of(conn: &mut DbConn, answer_id: i32) -> QueryResult<Vec<EvidenceView>> {
    Ok(evidence::of_answers(conn, &[answer_id], true)?.remove(&answer_id).unwrap_or_default())
}

pub fn load(conn: &mut DbConn, assay: &Assay) -> QueryResult<AnswerSheet> {
    let mut sheet = AnswerSheet {
        assay_id: assay.id,
        assay_title: assay.title.clone(),
        scope: assay.description.clone(),
        question_set: None,
        sections: Vec::new(),
    };
    let Some(set_id) = assay.question_set_id else { return Ok(sheet) };
    sheet.question_set = Some(QuestionSet::find(conn, set_id)?.display_name);
    let answers: HashMap<i32, Answer> =
        Answer::of_assay(conn, assay.id)?.into_iter().map(|a| (a.question_id, a)).collect();
    let answer_ids: Vec<i32> = answers.values().map(|a| a.id).collect();
    let mut files: HashMap<i32, Vec<LinkedFile>> = HashMap::new();
    let linked: Vec<(i32, String, Option<String>)> = answer_files::table
        .inner_join(file_assets::table)
        .filter(answer_files::answer_id.eq_any(&answer_ids))
        .filter(file_assets::status.eq(crate::db::models::FileAssetStatus::Available))
        .order(file_assets::original_filename)
        .select((answer_files::answer_id, file_assets::original_filename, answer_files::label))
        .load(conn)?;
    for (answer_id, name, label) in linked {
        let label = label.unwrap_or_else(|| LinkLabel::Context.as_str().to_owned());
        files.entry(answer_id).or_default().push(LinkedFile { name, label });
    }
    let mut evidence = evidence::of_answers(conn, &answer_ids, false)?;
    let mut history = history_of(conn, &answer_ids)?;
    let subsections: HashMap<i32, (i32, String, String)> = QuestionSet::subsections(conn, set_id)?
        .into_iter()
        .map(|s| (s.id, (s.section_id, s.title, s.guidance)))
        .collect();
    for section in QuestionSet::sections(conn, set_id)? {
        sheet.sections.push(SectionView {
            position: section.position,
            title: section.title.clone(),
            questions: Vec::new(),
        });
    }
    let section_index: HashMap<i32, usize> =
        QuestionSet::sections(conn, set_id)?.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    for q in QuestionSet::questions(conn, set_id)? {
        let (section_id, subsection, guidance) = subsections[&q.subsection_id].clone();
        let answer = answers.get(&q.id);
        let view = QuestionView {
            question_id: q.id,
            subsection,
            guidance,
            question: q.text.clone(),
            is_subquestion: q.parent_id.is_some(),
            answer: answer.map(|a| a.text.clone()),
            accepted: answer.is_some_and(|a| a.accepted),
            sources: answer.map(Answer::source_documents).unwrap_or_default(),
            files: answer.and_then(|a| files.remove(&a.id)).unwrap_or_default(),
            evidence: answer.and_then(|a| evidence.remove(&a.id)).unwrap_or_default(),
            history: answer.and_then(|a| history.remove(&a.id)).unwrap_or_default(),
        };
        sheet.sections[section_index[&section_id]].questions.push(view);
    }
    Ok(sheet)
}
