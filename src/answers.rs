//! The answer sheet of an assay: questions by section with their answers, the files each
//! answer was drafted from and its edit history — one read model for the answer page and
//! the exports. Also the safe rendering of answer text.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::models::{Answer, Assay, QuestionSet};
use crate::db::schema::{answer_edits, answer_files, file_assets, persons};

#[derive(Clone, Debug, Serialize)]
pub struct EditView {
    pub editor: String,
    pub edited_at: String,
    pub old_text: String,
    pub new_text: String,
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
    pub sources: Vec<String>,
    /// Stored files linked to the answer (original names).
    pub files: Vec<String>,
    pub history: Vec<EditView>,
}

impl QuestionView {
    pub fn html(&self) -> String {
        render_answer(self.answer.as_deref().unwrap_or_default())
    }

    pub fn drafted(&self) -> bool {
        self.answer.as_deref().is_some_and(|a| !a.is_empty())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SectionView {
    pub position: i32,
    pub title: String,
    pub questions: Vec<QuestionView>,
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
    let mut files: HashMap<i32, Vec<String>> = HashMap::new();
    let linked: Vec<(i32, String)> = answer_files::table
        .inner_join(file_assets::table)
        .filter(answer_files::answer_id.eq_any(&answer_ids))
        .filter(file_assets::status.eq(crate::db::models::FileAssetStatus::Available))
        .order(file_assets::original_filename)
        .select((answer_files::answer_id, file_assets::original_filename))
        .load(conn)?;
    for (answer_id, name) in linked {
        files.entry(answer_id).or_default().push(name);
    }
    let mut history: HashMap<i32, Vec<EditView>> = HashMap::new();
    let edits: Vec<(i32, Option<String>, chrono::NaiveDateTime, String, String)> = answer_edits::table
        .left_join(persons::table)
        .filter(answer_edits::answer_id.eq_any(&answer_ids))
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
            history: answer.and_then(|a| history.remove(&a.id)).unwrap_or_default(),
        };
        sheet.sections[section_index[&section_id]].questions.push(view);
    }
    Ok(sheet)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Answer text as HTML: everything escaped first, then `_(Source: …)_` citations become
/// badges and blank lines paragraphs. Nothing the model or a person typed is injected raw.
pub fn render_answer(text: &str) -> String {
    let escaped = escape(text.trim());
    let mut html = String::new();
    for para in escaped.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let mut rest = para;
        let mut out = String::new();
        while let Some(start) = rest.find("_(Source:") {
            let Some(end) = rest[start..].find(")_") else { break };
            out.push_str(&rest[..start]);
            let source = rest[start + 9..start + end].trim();
            out.push_str(&format!("<span class=\"citation badge text-bg-light\">Source: {source}</span>"));
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        html.push_str(&format!("<p>{}</p>", out.replace('\n', "<br>")));
    }
    html
}

/// The sheet as Markdown.
pub fn markdown(sheet: &AnswerSheet) -> String {
    let mut md = format!("# {}\n\n", sheet.assay_title);
    if !sheet.scope.is_empty() {
        md.push_str(&format!("_Scope:_ {}\n\n", sheet.scope));
    }
    if let Some(set) = &sheet.question_set {
        md.push_str(&format!("Question set: {set}\n\n"));
    }
    for section in &sheet.sections {
        md.push_str(&format!("## {}\n\n", section.title));
        let mut last_subsection = "";
        for q in &section.questions {
            if q.subsection != last_subsection {
                md.push_str(&format!("### {}\n\n", q.subsection));
                last_subsection = &q.subsection;
            }
            md.push_str(&format!("**{}**{}\n\n", q.question, if q.accepted { " ✓ accepted" } else { "" }));
            match q.answer.as_deref() {
                Some(a) if !a.trim().is_empty() => md.push_str(&format!("{}\n\n", a.trim())),
                _ => md.push_str("_Not answered yet._\n\n"),
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_escaped_and_citations_become_badges() {
        let html =
            render_answer("Cells <script>alert(1)</script> & co _(Source: sop.pdf)_.\n\nSecond _(Source: a\"b.docx)_");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(html.contains("<span class=\"citation badge text-bg-light\">Source: sop.pdf</span>."));
        assert!(html.contains("Source: a&quot;b.docx"));
        assert_eq!(html.matches("<p>").count(), 2);
        assert!(!html.contains("<script>"));
    }
}
