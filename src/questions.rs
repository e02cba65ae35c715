//! Loading a question template (the ToxTemp JSON format) into the database.
//!
//! The bundled `seed/ToxTemp_v1.json` is the template of Krebs et al., ALTEX 36(4), 2019,
//! 685-692: 11 sections, 70 subsections, 77 questions.

use std::collections::HashMap;

use anyhow::{Context, bail};
use diesel::prelude::*;
use serde::Deserialize;

use crate::db::models::QuestionSet;
use crate::db::schema::{question_context_subsections, question_sets, questions, sections, subsections};
use crate::db::{DbConn, now, write_transaction};

/// The ToxTemp v1 template shipped inside the binary.
pub const TOXTEMP_V1_JSON: &str = include_str!("../seed/ToxTemp_v1.json");
pub const TOXTEMP_V1_LABEL: &str = "v1";

#[derive(Deserialize)]
struct TemplateFile {
    #[serde(default)]
    reference: String,
    sections: Vec<SectionIn>,
}

#[derive(Deserialize)]
struct SectionIn {
    title: String,
    #[serde(default)]
    guidance: String,
    subsections: Vec<SubsectionIn>,
}

#[derive(Deserialize)]
struct SubsectionIn {
    title: String,
    #[serde(default)]
    guidance: String,
    #[serde(flatten)]
    question: QuestionIn,
    #[serde(default)]
    subquestions: Vec<QuestionIn>,
}

#[derive(Deserialize)]
struct QuestionIn {
    question: String,
    #[serde(default = "first_round")]
    answering_round: i32,
    #[serde(default)]
    subsections_for_context_title: OneOrMany,
    #[serde(default)]
    only_subsections_for_context: bool,
    #[serde(default)]
    additional_llm_instruction: String,
    #[serde(default)]
    only_additional_llm_instruction: bool,
}

fn first_round() -> i32 {
    1
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn titles(&self) -> Vec<&str> {
        match self {
            Self::None => vec![],
            Self::One(t) => vec![t.as_str()],
            Self::Many(ts) => ts.iter().map(String::as_str).collect(),
        }
    }
}

/// What an import created.
#[derive(Debug, PartialEq, Eq)]
pub struct ImportSummary {
    pub question_set_id: i32,
    pub sections: usize,
    pub subsections: usize,
    pub questions: usize,
}

/// Load a template under `label`. A label that is already loaded is refused, and nothing is
/// written unless the whole template is valid.
pub fn import(conn: &mut DbConn, json: &str, label: &str, display_name: &str) -> anyhow::Result<ImportSummary> {
    let label = label.trim();
    if label.is_empty() {
        bail!("the question set label must not be empty");
    }
    let template: TemplateFile = serde_json::from_str(json).context("the question file is not valid ToxTemp JSON")?;
    write_transaction(conn, |conn| {
        if QuestionSet::find_by_label(conn, label)?.is_some() {
            bail!("a question set labelled {label:?} is already loaded; choose another label");
        }
        insert_template(conn, &template, label, display_name)
    })
}

fn insert_template(
    conn: &mut DbConn,
    template: &TemplateFile,
    label: &str,
    display_name: &str,
) -> anyhow::Result<ImportSummary> {
    let set_id: i32 = diesel::insert_into(question_sets::table)
        .values((
            question_sets::label.eq(label),
            question_sets::display_name.eq(display_name),
            question_sets::reference.eq(&template.reference),
            question_sets::created_at.eq(now()),
        ))
        .returning(question_sets::id)
        .get_result(conn)?;
    let mut summary = ImportSummary { question_set_id: set_id, sections: 0, subsections: 0, questions: 0 };
    let mut subsection_ids: HashMap<&str, i32> = HashMap::new();
    // Context references may point forward, so they are resolved after everything exists.
    let mut context_refs: Vec<(i32, &OneOrMany)> = Vec::new();

    for (s_pos, section) in template.sections.iter().enumerate() {
        let section_id: i32 = diesel::insert_into(sections::table)
            .values((
                sections::question_set_id.eq(set_id),
                sections::position.eq(s_pos as i32),
                sections::title.eq(&section.title),
                sections::guidance.eq(&section.guidance),
            ))
            .returning(sections::id)
            .get_result(conn)?;
        summary.sections += 1;
        for (ss_pos, sub) in section.subsections.iter().enumerate() {
            let sub_id: i32 = diesel::insert_into(subsections::table)
                .values((
                    subsections::section_id.eq(section_id),
                    subsections::position.eq(ss_pos as i32),
                    subsections::title.eq(&sub.title),
                    subsections::guidance.eq(&sub.guidance),
                ))
                .returning(subsections::id)
                .get_result(conn)?;
            subsection_ids.insert(sub.title.as_str(), sub_id);
            summary.subsections += 1;
            let main_id = insert_question(conn, sub_id, None, 0, &sub.question)?;
            context_refs.push((main_id, &sub.question.subsections_for_context_title));
            for (q_pos, subq) in sub.subquestions.iter().enumerate() {
                let id = insert_question(conn, sub_id, Some(main_id), q_pos as i32 + 1, subq)?;
                context_refs.push((id, &subq.subsections_for_context_title));
            }
            summary.questions += 1 + sub.subquestions.len();
        }
    }
    for (question_id, refs) in context_refs {
        for title in refs.titles() {
            let Some(subsection_id) = resolve_subsection(&subsection_ids, title) else {
                bail!("a question refers to the context subsection {title:?}, which the file does not define");
            };
            diesel::insert_into(question_context_subsections::table)
                .values((
                    question_context_subsections::question_id.eq(question_id),
                    question_context_subsections::subsection_id.eq(subsection_id),
                ))
                .execute(conn)?;
        }
    }
    Ok(summary)
}

/// Find a context subsection by its exact title or, failing that, by its number: the ToxTemp
/// v1 file refers to "9.2 In vivo relevance" where the subsection is titled
/// "9.2 (Potential) linkage to AOPs"; the number is what the authors meant.
fn resolve_subsection(ids: &HashMap<&str, i32>, title: &str) -> Option<i32> {
    if let Some(&id) = ids.get(title) {
        return Some(id);
    }
    let number = title.split_whitespace().next()?;
    let mut by_number = ids.iter().filter(|(t, _)| t.split_whitespace().next() == Some(number));
    match (by_number.next(), by_number.next()) {
        (Some((_, &id)), None) => Some(id),
        _ => None,
    }
}

fn insert_question(
    conn: &mut DbConn,
    subsection_id: i32,
    parent_id: Option<i32>,
    position: i32,
    q: &QuestionIn,
) -> anyhow::Result<i32> {
    if !(1..=3).contains(&q.answering_round) {
        bail!("answering_round must be 1, 2 or 3 (question {:?})", q.question);
    }
    Ok(diesel::insert_into(questions::table)
        .values((
            questions::subsection_id.eq(subsection_id),
            questions::parent_id.eq(parent_id),
            questions::position.eq(position),
            questions::text.eq(&q.question),
            questions::answering_round.eq(q.answering_round),
            questions::only_subsections_for_context.eq(q.only_subsections_for_context),
            questions::additional_llm_instruction.eq(&q.additional_llm_instruction),
            questions::only_additional_llm_instruction.eq(q.only_additional_llm_instruction),
        ))
        .returning(questions::id)
        .get_result(conn)?)
}

/// Import the bundled ToxTemp v1 template unless some question set exists already.
pub fn ensure_default(conn: &mut DbConn) -> anyhow::Result<Option<ImportSummary>> {
    if !QuestionSet::all(conn)?.is_empty() {
        return Ok(None);
    }
    import(conn, TOXTEMP_V1_JSON, TOXTEMP_V1_LABEL, "ToxTemp v1 (Krebs et al. 2019)").map(Some)
}
