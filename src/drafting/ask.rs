//! Asking one question of a run: the request (the question, the answers of earlier rounds it
//! builds on, the run's documents), the provider with its retries, and the citations checked
//! against the run's passages. Drafting runs and evaluation runs ask the same way.

use std::sync::Arc;

use super::evidence::{self, Evidence, RunDocument};
use super::questions::{EarlierAnswers, QuestionInfo};
use crate::llm::retry::{RetryPolicy, answer_with_retries};
use crate::llm::{AnswerRequest, Document, EarlierAnswer, LlmError, LlmProvider, PassageId, Usage};

/// What every question of a run shares.
pub struct Asking<'a> {
    pub provider: &'a dyn LlmProvider,
    pub retry: &'a RetryPolicy,
    pub assay_title: &'a str,
    pub assay_description: &'a str,
    pub documents: &'a [RunDocument],
    /// The documents as the model sees them (shared by every request).
    pub for_model: Arc<Vec<Document>>,
    /// Whether questions see the answers of the earlier rounds they build on.
    pub earlier_rounds: bool,
}

/// An answer as it is saved: text with `[n]` markers, its checked citations, the tokens used.
#[derive(Clone, Debug)]
pub struct Asked {
    pub text: String,
    pub evidence: Vec<Evidence>,
    pub usage: Usage,
}

impl Asking<'_> {
    pub async fn ask(&self, q: &QuestionInfo, earlier: &EarlierAnswers) -> Result<Asked, LlmError> {
        let earlier_answers: Vec<EarlierAnswer> = if self.earlier_rounds {
            q.context_subsections
                .iter()
                .flat_map(|s| earlier.get(s).into_iter().flatten())
                .filter(|a| a.question_id != q.row.id && !a.text.is_empty())
                .map(|a| EarlierAnswer { subsection: a.subsection_title.clone(), text: for_prompt(a, self.documents) })
                .collect()
        } else {
            Vec::new()
        };
        let row = &q.row;
        let question =
            if row.only_additional && !row.additional.is_empty() { row.additional.clone() } else { row.text.clone() };
        let request = AnswerRequest {
            assay_title: self.assay_title.to_owned(),
            assay_description: self.assay_description.to_owned(),
            subsection: row.subsection.clone(),
            guidance: row.guidance.clone(),
            question,
            additional_instruction: if row.only_additional { String::new() } else { row.additional.clone() },
            documents: if row.only_context { Arc::new(Vec::new()) } else { self.for_model.clone() },
            earlier_answers,
        };
        let completion = answer_with_retries(self.provider, &request, self.retry).await?;
        // Citations may reach a question through earlier answers: they are checked against
        // every document of the run.
        let (text, evidence) = evidence::read_citations(&completion.text, self.documents);
        Ok(Asked { text, evidence, usage: completion.usage.unwrap_or_default() })
    }
}

/// An earlier answer as a later question sees it: its `[n]` markers become citations with
/// this run's passage ids where the cited passage is part of the run, and go otherwise.
fn for_prompt(answer: &super::questions::EarlierAnswer, documents: &[RunDocument]) -> String {
    let mut text = answer.text.clone();
    for c in &answer.citations {
        let id = documents.iter().position(|d| d.document.name == c.document_name).and_then(|d| {
            let position = u32::try_from(c.passage_position?).ok()?;
            documents[d]
                .document
                .passages
                .iter()
                .any(|p| p.position == position)
                .then_some(PassageId { document: d + 1, passage: position })
        });
        let marker = format!("[{}]", c.number);
        let replacement = match id {
            Some(id) if c.verified => format!("_(Source: {id} \"{}\")_", c.quote.replace('"', "'")),
            _ => String::new(),
        };
        text = text.replace(&marker, &replacement);
    }
    text
}
