//! The drafting run (the seed's `process_llm_async` role), i.e. what the `DraftAssay` job
//! does: draft every question of an assay from its documents, round by round, several
//! questions at a time, and link the run's kept files to each saved answer. Each save checks,
//! in its transaction, that the assay still exists: a deleted assay stops the run and nothing
//! is written back. A job given up marks its assay failed, in words for people.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures_util::StreamExt;

use super::job::{DraftAssay, ImageInput, PROCESS_ASSAY, assay_subject};
use super::questions::{self, EarlierAnswers, QuestionInfo};
use crate::context::AppContext;
use crate::db::models::{Answer, Assay, AssayStatus, FileAssetId};
use crate::db::write_transaction;
use crate::fileops::link_files_to_answer;
use crate::jobs::{BackgroundJob, GiveUp};
use crate::llm::retry::answer_with_retries;
use crate::llm::{AnswerRequest, Document, NOT_FOUND, prompt};

#[async_trait]
impl BackgroundJob for DraftAssay {
    const JOB_NAME: &'static str = PROCESS_ASSAY;
    type Context = AppContext;

    fn subject(&self) -> Option<String> {
        Some(assay_subject(self.assay_id))
    }

    async fn run(self, ctx: &AppContext) -> anyhow::Result<()> {
        draft(ctx, self).await
    }

    /// The assay says it failed, in words for people (the detail is in the log).
    async fn given_up(ctx: &AppContext, subject: Option<&str>, why: &GiveUp) -> anyhow::Result<()> {
        let Some(assay_id) = super::assay_of(subject) else { return Ok(()) };
        let alert = match why {
            GiveUp::Failed { attempts, reference } => format!(
                "Drafting the answers failed and was given up after {attempts} attempts. Please try again; if it keeps failing, quote reference {reference}."
            ),
            GiveUp::Stalled => "Drafting the answers stopped unexpectedly several times and was given up. Please try again with fewer or smaller documents.".to_owned(),
        };
        ctx.db(move |c| {
            if Assay::exists(c, assay_id)? {
                Assay::set_status(c, assay_id, AssayStatus::Error)?;
                Assay::push_alert(c, assay_id, &alert)?;
            }
            Ok::<_, anyhow::Error>(())
        })
        .await
    }
}

/// The assay was deleted while the job ran: stop, write nothing more.
#[derive(Debug, thiserror::Error)]
#[error("the assay was deleted")]
struct AssayGone;

async fn draft(ctx: &AppContext, job: DraftAssay) -> anyhow::Result<()> {
    let assay_id = job.assay_id;
    let started = ctx
        .db(move |c| {
            write_transaction(c, |c| {
                if !Assay::exists(c, assay_id)? {
                    return Ok(None);
                }
                Assay::set_status(c, assay_id, AssayStatus::Busy)?;
                Assay::log(c, assay_id, "processing started")?;
                let assay = Assay::find(c, assay_id)?;
                let questions = questions::load(c, &assay)?;
                Ok::<_, anyhow::Error>(Some((assay, questions)))
            })
        })
        .await?;
    let Some((assay, mut questions)) = started else {
        tracing::info!(assay = assay_id, "assay deleted before processing; nothing to do");
        return Ok(());
    };
    if let Some(only) = &job.question_ids {
        questions.retain(|q| only.contains(&q.row.id));
    }
    let mut all_documents = job.documents.clone();
    all_documents.extend(describe_images(ctx, assay_id, &job.images).await?);
    let (documents, cut) = fit_context(all_documents, ctx.provider.context_chars());
    if let Some(note) = cut {
        ctx.db(move |c| Ok::<_, anyhow::Error>(Assay::push_alert(c, assay_id, &note)?)).await?;
    }
    let documents = Arc::new(documents);
    let files = Arc::new(job.file_asset_ids.clone());
    let gone = Arc::new(AtomicBool::new(false));
    let mut failed = Vec::new();
    let total = questions.len();
    for round in 1..=3 {
        let batch: Vec<QuestionInfo> = questions.iter().filter(|q| q.row.round == round).cloned().collect();
        if batch.is_empty() {
            continue;
        }
        let earlier =
            Arc::new(ctx.db(move |c| Ok::<_, anyhow::Error>(questions::earlier_answers(c, assay_id)?)).await?);
        let results: Vec<(i32, anyhow::Result<()>)> = futures_util::stream::iter(batch)
            .map(|q| {
                let (documents, earlier, files, gone) =
                    (documents.clone(), earlier.clone(), files.clone(), gone.clone());
                let assay = &assay;
                async move {
                    let id = q.row.id;
                    (id, answer_one(ctx, assay, q, documents, &earlier, files, gone).await)
                }
            })
            .buffer_unordered(ctx.config.pipeline.concurrency.max(1))
            .collect()
            .await;
        if gone.load(Ordering::SeqCst) {
            tracing::info!(assay = assay_id, "assay deleted during processing; stopped");
            return Ok(());
        }
        for (question, result) in results {
            if let Err(err) = result {
                tracing::error!(assay = assay_id, question, error = %err, "question not answered");
                failed.push(question);
            }
        }
    }
    finish(ctx, assay_id, total, failed).await
}

async fn finish(ctx: &AppContext, assay_id: i32, total: usize, failed: Vec<i32>) -> anyhow::Result<()> {
    ctx.db(move |c| {
        write_transaction(c, |c| {
            if !Assay::exists(c, assay_id)? {
                return Ok(());
            }
            if failed.is_empty() {
                Assay::set_status(c, assay_id, AssayStatus::Done)?;
                Assay::log(c, assay_id, &format!("processing done: {total} questions"))?;
            } else {
                Assay::set_status(c, assay_id, AssayStatus::Error)?;
                Assay::push_alert(
                    c,
                    assay_id,
                    &format!(
                        "{} of {total} answers could not be drafted because the language model did not respond. \
                         The others are saved; you can regenerate the missing ones.",
                        failed.len()
                    ),
                )?;
                Assay::log(c, assay_id, &format!("processing finished with failed questions {failed:?}"))?;
            }
            Ok::<_, anyhow::Error>(())
        })
    })
    .await
}

async fn answer_one(
    ctx: &AppContext,
    assay: &Assay,
    q: QuestionInfo,
    documents: Arc<Vec<Document>>,
    earlier: &EarlierAnswers,
    files: Arc<Vec<FileAssetId>>,
    gone: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    if gone.load(Ordering::SeqCst) {
        return Ok(());
    }
    let earlier_answers: Vec<(String, String)> = q
        .context_subsections
        .iter()
        .flat_map(|s| earlier.get(s).into_iter().flatten())
        .filter(|a| a.question_id != q.row.id && !a.text.is_empty())
        .map(|a| (a.subsection_title.clone(), a.text.clone()))
        .collect();
    let q = &q.row;
    let question = if q.only_additional && !q.additional.is_empty() { q.additional.clone() } else { q.text.clone() };
    let request = AnswerRequest {
        assay_title: assay.title.clone(),
        assay_description: assay.description.clone(),
        subsection: q.subsection.clone(),
        guidance: q.guidance.clone(),
        question,
        additional_instruction: if q.only_additional { String::new() } else { q.additional.clone() },
        documents: if q.only_context { Arc::new(Vec::new()) } else { documents.clone() },
        earlier_answers,
    };
    let completion = answer_with_retries(ctx.provider.as_ref(), &request, &ctx.config.pipeline.retry).await?;
    // Citations may reach a question through earlier answers, so match against every
    // document of the run; without citations, the documents it was given are its sources.
    let names: Vec<String> = documents.iter().map(|d| d.name.clone()).collect();
    let mut sources = prompt::cited_sources(&completion.text, &names);
    if sources.is_empty() && completion.text.trim() != NOT_FOUND && !request.documents.is_empty() {
        sources = names;
    }
    let (assay_id, question_id, text, usage) = (assay.id, q.id, completion.text, completion.usage.unwrap_or_default());
    let saved = ctx
        .db(move |c| {
            write_transaction(c, |c| {
                if !Assay::exists(c, assay_id)? {
                    return Err(anyhow::Error::new(AssayGone));
                }
                let answer = Answer::save_draft(c, assay_id, question_id, &text, &sources)?;
                link_files_to_answer(c, answer.id, &files)?;
                if usage.prompt_tokens > 0 || usage.completion_tokens > 0 {
                    Assay::add_usage(c, assay_id, usage.prompt_tokens, usage.completion_tokens)?;
                }
                Ok(())
            })
        })
        .await;
    match saved {
        Err(err) if err.is::<AssayGone>() => {
            gone.store(true, Ordering::SeqCst);
            Ok(())
        }
        other => other,
    }
}

/// Turn images into text documents through the model, when it can read images.
async fn describe_images(ctx: &AppContext, assay_id: i32, images: &[ImageInput]) -> anyhow::Result<Vec<Document>> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut unread = Vec::new();
    for image in images {
        let bytes = base64::engine::general_purpose::STANDARD.decode(&image.base64).unwrap_or_default();
        let described = if ctx.provider.supports_images() {
            ctx.provider.describe_image(&image.name, &image.mime, &bytes).await.ok()
        } else {
            None
        };
        match described {
            Some(c) if !c.text.trim().is_empty() => out.push(Document { name: image.name.clone(), text: c.text }),
            _ => unread.push(image.name.clone()),
        }
    }
    if !unread.is_empty() {
        let note = format!(
            "These images could not be described by the language model and were left out: {}.",
            unread.join(", ")
        );
        ctx.db(move |c| Ok::<_, anyhow::Error>(Assay::push_alert(c, assay_id, &note)?)).await?;
    }
    Ok(out)
}

/// Cut the documents to the model's budget, in order; the note says what was left out.
pub fn fit_context(documents: Vec<Document>, budget: usize) -> (Vec<Document>, Option<String>) {
    let total: usize = documents.iter().map(|d| d.text.chars().count()).sum();
    if total <= budget {
        return (documents, None);
    }
    let mut left = budget;
    let mut cut_names = Vec::new();
    let fitted = documents
        .into_iter()
        .map(|mut d| {
            let len = d.text.chars().count();
            if len > left {
                d.text = d.text.chars().take(left).collect();
                cut_names.push(d.name.clone());
            }
            left -= d.text.chars().count();
            d
        })
        .collect();
    let note = format!(
        "The documents are longer than the language model can read at once: {budget} of {total} characters were used. \
         Answers may miss details from the end of: {}.",
        cut_names.join(", ")
    );
    (fitted, Some(note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_cut_to_the_budget_with_a_note() {
        let docs = vec![
            Document { name: "a.pdf".into(), text: "a".repeat(60) },
            Document { name: "b.pdf".into(), text: "b".repeat(60) },
        ];
        let (fitted, note) = fit_context(docs.clone(), 100);
        assert_eq!(fitted[0].text.len(), 60);
        assert_eq!(fitted[1].text.len(), 40);
        assert!(note.unwrap().contains("b.pdf"));
        assert!(fit_context(docs, 120).1.is_none());
    }
}
