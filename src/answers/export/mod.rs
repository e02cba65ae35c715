//! Exports of an assay's answers as DOCX, one self-contained HTML file and PDF, beside the
//! JSON and Markdown of `answers::render`. Every format shows the same things, gathered once:
//! the [`Metadata`] (assay path, authors, model(s), app version, date, the SHA-256 of each
//! kept document) and the [`AnswerSheet`] — each answer under its section and question with
//! its [`Status`] and its evidence. Only verified citations are evidence; an unverified one is
//! said to be so and nothing more (as on the answer page).
//!
//! Everything is built in memory: a sheet is 77 answers, and the only large part, the PDF's
//! font, is compressed once per process.

pub mod docx;
pub mod html;
pub mod pdf;

use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::models::{Assay, FileAssetStatus, Investigation, Study};
use crate::db::schema::{answer_edits, answers, file_assets, persons};

use super::{AnswerSheet, EvidenceView, QuestionView};

/// Who and what an export is about, for its title page or header.
#[derive(Clone, Debug, Serialize)]
pub struct Metadata {
    pub investigation: String,
    pub study: String,
    pub assay: String,
    pub question_set: Option<String>,
    /// The owner first, then everyone else who edited an answer, by first edit.
    pub authors: Vec<Author>,
    /// The language model(s) that drafted the answers (see [`models_used`]).
    pub models: Vec<String>,
    pub app_version: &'static str,
    /// UTC, `YYYY-MM-DD HH:MM UTC`.
    pub exported_at: String,
    /// The assay's kept documents (available FileAssets), by name.
    pub documents: Vec<KeptDocument>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Author {
    pub name: String,
    pub email: String,
    /// `owner` or `editor`.
    pub role: &'static str,
}

impl Author {
    /// "Name <email>" (the email alone when there is no name).
    pub fn label(&self) -> String {
        if self.name.trim().is_empty() { self.email.clone() } else { format!("{} <{}>", self.name, self.email) }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct KeptDocument {
    pub name: String,
    pub size_bytes: i64,
    pub sha256: String,
}

impl Metadata {
    /// The metadata of an assay's export. `configured_model` is the name of the provider this
    /// server is configured with (`LlmProvider::name`).
    pub fn load(
        conn: &mut DbConn,
        assay: &Assay,
        study: &Study,
        investigation: &Investigation,
        question_set: Option<String>,
        configured_model: &str,
    ) -> QueryResult<Metadata> {
        let owner: (String, String) =
            persons::table.find(investigation.owner_id).select((persons::display_name, persons::email)).first(conn)?;
        let mut authors = vec![Author { name: owner.0, email: owner.1, role: "owner" }];
        // Accepting an answer without changing its text leaves no edit row: only people who
        // changed an answer can be named besides the owner.
        let editors: Vec<(String, String)> = answer_edits::table
            .inner_join(answers::table)
            .inner_join(persons::table)
            .filter(answers::assay_id.eq(assay.id))
            .order(answer_edits::id)
            .select((persons::display_name, persons::email))
            .load(conn)?;
        for (name, email) in editors {
            if !authors.iter().any(|a| a.email == email) {
                authors.push(Author { name, email, role: "editor" });
            }
        }
        let documents = file_assets::table
            .filter(file_assets::assay_id.eq(assay.id))
            .filter(file_assets::status.eq(FileAssetStatus::Available))
            .order((file_assets::original_filename, file_assets::created_at))
            .select((file_assets::original_filename, file_assets::size_bytes, file_assets::sha256))
            .load::<(String, i64, String)>(conn)?
            .into_iter()
            .map(|(name, size_bytes, sha256)| KeptDocument { name, size_bytes, sha256 })
            .collect();
        Ok(Metadata {
            investigation: investigation.title.clone(),
            study: study.title.clone(),
            assay: assay.title.clone(),
            question_set,
            authors,
            models: models_used(conn, assay, configured_model)?,
            app_version: env!("CARGO_PKG_VERSION"),
            exported_at: crate::db::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            documents,
        })
    }

    /// "Investigation / Study / Assay".
    pub fn assay_path(&self) -> String {
        format!("{} / {} / {}", self.investigation, self.study, self.assay)
    }

    /// The metadata as label–value lines, in the order every format shows them.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let mut lines = vec![("Assay", self.assay_path())];
        if let Some(set) = &self.question_set {
            lines.push(("Question set", set.clone()));
        }
        lines.push(("Authors", self.authors.iter().map(Author::label).collect::<Vec<_>>().join("; ")));
        let models =
            if self.models.is_empty() { "none (no answers drafted)".to_owned() } else { self.models.join(", ") };
        lines.push(("Model(s)", models));
        lines.push(("Exported", format!("{} by ToxTempAssistant {}", self.exported_at, self.app_version)));
        lines
    }
}

/// The language model(s) that drafted an assay's answers: the distinct models of its drafting
/// runs (`drafting_runs`), in the order first used. An assay drafted before runs were
/// recorded names the model this server is configured with, if it has any drafted answer.
pub fn models_used(conn: &mut DbConn, assay: &Assay, configured_model: &str) -> QueryResult<Vec<String>> {
    let recorded = crate::db::models::models_used(conn, assay.id)?;
    if !recorded.is_empty() {
        return Ok(recorded);
    }
    let drafted: i64 =
        answers::table.filter(answers::assay_id.eq(assay.id)).filter(answers::text.ne("")).count().get_result(conn)?;
    Ok(if drafted > 0 { vec![configured_model.to_owned()] } else { Vec::new() })
}

/// Where an answer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Accepted,
    Drafted,
    NotFound,
}

impl Status {
    pub fn of(q: &QuestionView) -> Status {
        let text = q.answer.as_deref().unwrap_or_default().trim();
        if q.accepted {
            Status::Accepted
        } else if text.is_empty() || q.not_found() {
            Status::NotFound
        } else {
            Status::Drafted
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Drafted => "drafted",
            Status::NotFound => "not found",
        }
    }
}

/// One citation as the exports write it: a verified one with its document, place and quote,
/// an unverified one only as such.
pub fn citation_line(e: &EvidenceView) -> String {
    if !e.verified {
        return format!("[{}] could not be verified", e.number);
    }
    let mut line = format!("[{}] {}", e.number, e.document);
    if !e.location.is_empty() {
        line.push_str(&format!(", {}", e.location));
    }
    if !e.quote.is_empty() {
        line.push_str(&format!(": “{}”", e.quote));
    }
    line
}

/// The answer text as the exports show it ("Not answered yet." for none).
pub fn answer_text(q: &QuestionView) -> &str {
    match q.answer.as_deref().map(str::trim) {
        Some(a) if !a.is_empty() => a,
        _ => "Not answered yet.",
    }
}

/// The export's title: the assay's.
pub fn title(sheet: &AnswerSheet) -> String {
    format!("ToxTemp: {}", sheet.assay_title)
}

/// Human-readable bytes ("1.2 MB").
pub fn size(bytes: i64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Location;

    fn question(answer: Option<&str>, accepted: bool) -> QuestionView {
        QuestionView {
            question_id: 1,
            subsection: "1.1".into(),
            guidance: String::new(),
            question: "Q?".into(),
            is_subquestion: false,
            answer: answer.map(str::to_owned),
            accepted,
            sources: Vec::new(),
            files: Vec::new(),
            evidence: Vec::new(),
            history: Vec::new(),
        }
    }

    #[test]
    fn the_status_is_accepted_drafted_or_not_found() {
        assert_eq!(Status::of(&question(Some("Cells."), true)), Status::Accepted);
        assert_eq!(Status::of(&question(Some("Cells."), false)), Status::Drafted);
        assert_eq!(Status::of(&question(Some(crate::llm::NOT_FOUND), false)), Status::NotFound);
        assert_eq!(Status::of(&question(None, false)), Status::NotFound);
    }

    #[test]
    fn an_unverified_citation_is_never_shown_as_evidence() {
        let mut e = EvidenceView {
            number: 2,
            document: "sop.pdf".into(),
            sha256: None,
            location: "page 3".into(),
            place: Location { page: Some(3), ..Default::default() },
            quote: "made up".into(),
            verified: true,
            passage: None,
            kept: true,
        };
        assert_eq!(citation_line(&e), "[2] sop.pdf, page 3: “made up”");
        e.verified = false;
        assert_eq!(citation_line(&e), "[2] could not be verified");
    }
}
