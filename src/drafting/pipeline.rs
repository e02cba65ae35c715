//! The drafting run (the seed's `process_llm_async` role), i.e. what the `DraftAssay` job
//! does: draft every question of an assay from its documents, round by round, several
//! questions at a time, and link the run's kept files to each saved answer. Each save checks,
//! in its transaction, that the assay still exists: a deleted assay stops the run and nothing
//! is written back. A job given up marks its assay failed, in words for people.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use diesel::OptionalExtension;
use futures_util::StreamExt;

use super::ask::Asking;
use super::choice::{self, ModelChoice, ModelEntry};
use super::evidence::{Evidence, RunDocument};
use super::job::{DraftAssay, ImageInput, PROCESS_ASSAY, assay_subject};
use super::questions::{self, EarlierAnswers, QuestionInfo};
use super::read::{Budget, read_kept};
use crate::context::AppContext;
use crate::db::models::{
    Answer, AnswerCitation, Assay, AssayStatus, DraftingRun, DraftingRunStatus, FileAsset, FileAssetId, NewCitation,
};
use crate::db::write_transaction;
use crate::fileops::link_files_to_answer;
use crate::jobs::{BackgroundJob, GiveUp};
use crate::llm::{Document, LlmProvider, Usage};

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
                DraftingRun::fail_busy_of_assay(c, assay_id, &alert)?;
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

/// This worker no longer holds the job (it was handed to another): stop, write nothing more.
#[derive(Debug, thiserror::Error)]
#[error("the job was handed to another worker")]
struct ClaimLost;

async fn draft(ctx: &AppContext, job: DraftAssay) -> anyhow::Result<()> {
    let assay_id = job.assay_id;
    let claim = crate::jobs::current_claim();
    let (choice, llm) = (ModelChoice::from_configuration(job.configuration_id), ctx.config.llm.clone());
    let job_id = claim.as_ref().map(|c| c.job.id);
    // The default entry's runs record the name of the provider that answers ("offline
    // (extractive)", or the configured model).
    let default_model = ctx.provider.name().to_owned();
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
                // The run's record, with the model's name and prices as they are now.
                let mut model = choice::for_run(c, &llm, choice)?;
                if model.choice == ModelChoice::Default {
                    model.model = default_model;
                }
                let record = DraftingRun::start(c, &model.new_run(assay_id, job_id))?;
                Ok::<_, anyhow::Error>(Some((assay, questions, model, record.id)))
            })
        })
        .await?;
    let Some((assay, mut questions, model, run_id)) = started else {
        tracing::info!(assay = assay_id, "assay deleted before processing; nothing to do");
        return Ok(());
    };
    let provider = match choice::provider_for(ctx, &model) {
        Ok(provider) => provider,
        Err(problem) => {
            // Retrying will not set the variable: the run ends now, saying why.
            tracing::warn!(assay = assay_id, %problem, "the chosen language model cannot be used");
            return finish(ctx, assay_id, run_id, 0, vec![], Some(problem.to_string())).await;
        }
    };
    if let Some(only) = &job.question_ids {
        questions.retain(|q| only.contains(&q.row.id));
    }
    // Picked up again after its worker died: ask only what the earlier attempt left.
    if let Some(first_queued) = claim.as_ref().filter(|c| c.job.attempts > 1).map(|c| c.job.created_at) {
        let done =
            ctx.db(move |c| Ok::<_, anyhow::Error>(questions::answered_since(c, assay_id, first_queued)?)).await?;
        questions.retain(|q| !done.contains(&q.row.id));
        let note = format!("processing resumed: {} questions already answered", done.len());
        ctx.db(move |c| Ok::<_, anyhow::Error>(Assay::log(c, assay_id, &note)?)).await?;
    }
    let mut documents = job.documents.clone();
    if job.read_from_storage {
        documents.extend(read_kept_files(ctx, assay_id, &job.file_asset_ids, provider.as_ref(), &model).await?);
    }
    documents.extend(describe_images(ctx, assay_id, &job.images, provider.as_ref()).await?);
    let (documents, cut) = fit_context(documents, provider.context_chars());
    if let Some(note) = cut {
        ctx.db(move |c| Ok::<_, anyhow::Error>(Assay::push_alert(c, assay_id, &note)?)).await?;
    }
    let run = Run {
        ctx,
        for_model: Arc::new(documents.iter().map(|d| d.document.clone()).collect()),
        documents,
        files: job.file_asset_ids.clone(),
        gone: AtomicBool::new(false),
        claim,
        assay,
        provider,
        run_id,
    };
    let mut failed = Vec::new();
    let total = questions.len();
    for round in 1..=3 {
        let batch: Vec<QuestionInfo> = questions.iter().filter(|q| q.row.round == round).cloned().collect();
        if batch.is_empty() {
            continue;
        }
        let earlier = ctx.db(move |c| Ok::<_, anyhow::Error>(questions::earlier_answers(c, assay_id)?)).await?;
        let results: Vec<(i32, anyhow::Result<()>)> = futures_util::stream::iter(batch)
            .map(|q| {
                let (run, earlier) = (&run, &earlier);
                async move { (q.row.id, run.answer(q, earlier).await) }
            })
            .buffer_unordered(ctx.config.pipeline.concurrency.max(1))
            .collect()
            .await;
        if run.gone.load(Ordering::SeqCst) {
            tracing::info!(assay = assay_id, "stopped: the assay was deleted or the job went to another worker");
            return Ok(());
        }
        for (question, result) in results {
            if let Err(err) = result {
                tracing::error!(assay = assay_id, question, error = %err, "question not answered");
                failed.push(question);
            }
        }
    }
    finish(ctx, assay_id, run_id, total, failed, None).await
}

/// The assay's and the run record's end: done, some questions failed, or (`unusable`) the
/// chosen model could not be used at all.
async fn finish(
    ctx: &AppContext,
    assay_id: i32,
    run_id: i32,
    total: usize,
    failed: Vec<i32>,
    unusable: Option<String>,
) -> anyhow::Result<()> {
    ctx.db(move |c| {
        write_transaction(c, |c| {
            if !Assay::exists(c, assay_id)? {
                return Ok(());
            }
            if let Some(why) = unusable {
                Assay::set_status(c, assay_id, AssayStatus::Error)?;
                Assay::push_alert(c, assay_id, &why)?;
                Assay::log(c, assay_id, "processing not started: the chosen language model cannot be used")?;
                DraftingRun::finish(c, run_id, DraftingRunStatus::Error, &why)?;
            } else if failed.is_empty() {
                DraftingRun::finish(c, run_id, DraftingRunStatus::Done, "")?;
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
                let message = format!("{} of {total} answers could not be drafted.", failed.len());
                DraftingRun::finish(c, run_id, DraftingRunStatus::Error, &message)?;
            }
            Ok::<_, anyhow::Error>(())
        })
    })
    .await
}

/// One drafting run: what every question of it shares.
struct Run<'a> {
    ctx: &'a AppContext,
    assay: Assay,
    documents: Vec<RunDocument>,
    /// The documents as the model sees them (shared by every request).
    for_model: Arc<Vec<Document>>,
    /// The kept files of the run, linked to every answer saved.
    files: Vec<FileAssetId>,
    /// Set once a save found the assay deleted (or the job handed to another worker): the
    /// run stops.
    gone: AtomicBool,
    /// The job's claim: every save is fenced on it.
    claim: Option<crate::jobs::Claim>,
    /// The chosen model.
    provider: Arc<dyn LlmProvider>,
    /// The run's record (its tokens grow with each answer saved).
    run_id: i32,
}

impl Run<'_> {
    async fn answer(&self, q: QuestionInfo, earlier: &EarlierAnswers) -> anyhow::Result<()> {
        if self.gone.load(Ordering::SeqCst) {
            return Ok(());
        }
        let asking = Asking {
            provider: self.provider.as_ref(),
            retry: &self.ctx.config.pipeline.retry,
            assay_title: &self.assay.title,
            assay_description: &self.assay.description,
            documents: &self.documents,
            for_model: self.for_model.clone(),
            earlier_rounds: true,
        };
        let asked = asking.ask(&q, earlier).await?;
        self.save(q.row.id, asked.text, asked.evidence, asked.usage).await
    }

    /// Save the answer, its citations and its file links in one transaction, unless the assay
    /// is gone.
    async fn save(&self, question_id: i32, text: String, evidence: Vec<Evidence>, usage: Usage) -> anyhow::Result<()> {
        let assay_id = self.assay.id;
        let citations: Vec<NewCitation> = evidence
            .iter()
            .map(|e| NewCitation {
                number: e.number,
                file_id: e.document.and_then(|d| self.documents[d].file_asset_id.clone()),
                document_name: e.document_name.clone(),
                passage_position: e.passage,
                location: e.location.clone(),
                quote: e.quote.clone(),
                verified: e.verified,
                span: e.span,
            })
            .collect();
        let verified = evidence.iter().filter(|e| e.verified);
        let mut sources: Vec<String> = Vec::new();
        let mut cited: Vec<FileAssetId> = Vec::new();
        for e in verified {
            if !sources.contains(&e.document_name) {
                sources.push(e.document_name.clone());
            }
            if let Some(file) = e.document.and_then(|d| self.documents[d].file_asset_id.clone()) {
                cited.push(file);
            }
        }
        let (files, claim, run_id) = (self.files.clone(), self.claim.clone(), self.run_id);
        let saved = self
            .ctx
            .db(move |c| {
                write_transaction(c, |c| {
                    // The assay first, then the job: the order a deletion takes them in.
                    if Assay::lock(c, &[assay_id])?.is_empty() {
                        return Err(anyhow::Error::new(AssayGone));
                    }
                    // A worker that lost its claim (another one runs the job now) writes nothing.
                    if let Some(claim) = &claim
                        && !crate::jobs::heartbeat(c, claim)?
                    {
                        return Err(anyhow::Error::new(ClaimLost));
                    }
                    let answer = Answer::save_draft(c, assay_id, question_id, &text, &sources)?;
                    AnswerCitation::replace(c, answer.id, &citations)?;
                    link_files_to_answer(c, answer.id, &files, &cited)?;
                    if usage.prompt_tokens > 0 || usage.completion_tokens > 0 {
                        Assay::add_usage(c, assay_id, usage.prompt_tokens, usage.completion_tokens)?;
                        DraftingRun::add_usage(c, run_id, usage.prompt_tokens, usage.completion_tokens)?;
                    }
                    Ok(())
                })
            })
            .await;
        match saved {
            Err(err) if err.is::<AssayGone>() || err.is::<ClaimLost>() => {
                self.gone.store(true, Ordering::SeqCst);
                Ok(())
            }
            other => other,
        }
    }
}

/// The kept files' text, read back from storage in order, a few at a time, up to what the
/// model reads at once (the rest are not read). Their passages are kept with them (evidence
/// shows them); what was left out is said on the assay.
async fn read_kept_files(
    ctx: &AppContext,
    assay_id: i32,
    ids: &[FileAssetId],
    provider: &dyn LlmProvider,
    model: &ModelEntry,
) -> anyhow::Result<Vec<RunDocument>> {
    use crate::db::models::FilePassage;
    let ids = ids.to_vec();
    let files: Vec<FileAsset> = ctx
        .db(move |c| {
            let mut files = Vec::new();
            for id in &ids {
                // A row removed since the submission (its file was deleted) is simply not read.
                files.extend(FileAsset::find(c, id).optional()?);
            }
            Ok::<_, anyhow::Error>(files)
        })
        .await?;
    let files: Vec<FileAsset> = files
        .into_iter()
        .filter(|f| !crate::ingest::DocumentKind::from_filename(&f.original_filename).is_some_and(|k| k.is_image()))
        .collect();
    let spent = AtomicBool::new(false);
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut reads = futures_util::stream::iter(0..files.len())
        .map(|i| {
            let (spent, files) = (&spent, &files);
            async move {
                if spent.load(Ordering::SeqCst) {
                    return (i, None);
                }
                (i, Some(read_kept(ctx, &files[i]).await))
            }
        })
        .buffered(parallel);
    let mut budget = Budget::new(provider.context_chars());
    let (mut documents, mut notes) = (Vec::new(), Vec::new());
    while let Some((i, read)) = reads.next().await {
        let file = &files[i];
        match read {
            None => budget.skip(file.shown_name()),
            Some(Err(problem)) => notes.push(problem.to_string()),
            Some(Ok(text)) => {
                if text.truncated {
                    notes.push(format!(
                        "{}: only the first part of this very long document was used.",
                        file.shown_name()
                    ));
                }
                let passages = budget.take(file.shown_name(), text.passages());
                if budget.is_spent() {
                    spent.store(true, Ordering::SeqCst);
                }
                if !passages.is_empty() {
                    let document = Document { name: file.original_filename.clone(), passages };
                    documents.push(RunDocument { document, file_asset_id: Some(file.id.clone()) });
                }
            }
        }
    }
    drop(reads);
    // The context-window check of kept files, which are read only now (before any question).
    match model.context_flag(budget.offered_chars(), budget.all_read()) {
        Some(flag) => notes.push(flag),
        None => notes.extend(budget.note()),
    }
    let kept = documents.clone();
    ctx.db(move |c| {
        write_transaction(c, |c| {
            for doc in &kept {
                if let Some(file) = &doc.file_asset_id {
                    // A resumed job reads again: the passages are replaced, not doubled.
                    FilePassage::delete_of(c, std::slice::from_ref(file))?;
                    FilePassage::insert_all(c, file, &doc.document.passages)?;
                }
            }
            for note in &notes {
                Assay::push_alert(c, assay_id, note)?;
            }
            Ok::<_, anyhow::Error>(())
        })
    })
    .await?;
    Ok(documents)
}

/// Turn images into documents through the model, when it can read images.
async fn describe_images(
    ctx: &AppContext,
    assay_id: i32,
    images: &[ImageInput],
    provider: &dyn LlmProvider,
) -> anyhow::Result<Vec<RunDocument>> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut unread = Vec::new();
    for image in images {
        let bytes = base64::engine::general_purpose::STANDARD.decode(&image.base64).unwrap_or_default();
        let described = if provider.supports_images() {
            provider.describe_image(&image.name, &image.mime, &bytes).await.ok()
        } else {
            None
        };
        match described {
            Some(c) if !c.text.trim().is_empty() => out.push(RunDocument {
                document: Document::from_text(image.name.clone(), &c.text),
                file_asset_id: image.file_asset_id.clone(),
            }),
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

/// Keep whole passages, in order, up to the model's budget; the note says what was left out.
pub fn fit_context(documents: Vec<RunDocument>, budget: usize) -> (Vec<RunDocument>, Option<String>) {
    let total: usize = documents.iter().map(|d| d.document.chars()).sum();
    if total <= budget {
        return (documents, None);
    }
    let mut left = budget;
    let mut cut_names = Vec::new();
    let fitted = documents
        .into_iter()
        .map(|mut d| {
            let before = d.document.passages.len();
            d.document.passages.retain(|p| {
                let len = p.text.chars().count();
                let keep = len <= left;
                left = if keep { left - len } else { 0 };
                keep
            });
            if d.document.passages.len() < before {
                cut_names.push(d.document.name.clone());
            }
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
    fn context_is_cut_to_the_budget_in_whole_passages_with_a_note() {
        let doc =
            |name: &str, text: &str| RunDocument { document: Document::from_text(name, text), file_asset_id: None };
        let docs =
            vec![doc("a.pdf", &"a".repeat(60)), doc("b.pdf", &format!("{}\n\n{}", "b".repeat(400), "c".repeat(400)))];
        let (fitted, note) = fit_context(docs.clone(), 500);
        assert_eq!(fitted[0].document.passages.len(), 1);
        assert_eq!(fitted[1].document.passages.len(), 1, "the passage that does not fit is left out");
        assert!(note.unwrap().contains("b.pdf"));
        assert!(fit_context(docs, 10_000).1.is_none());
    }
}
