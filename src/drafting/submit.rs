//! Submitting documents for drafting — the StartingForm, "regenerate selected questions" and
//! the `process` command all come through [`submit`]: check the files, check and resolve the
//! target, apply the overwrite rule, create what the target asks for, store the files when the
//! person consents, extract their text, and schedule the drafting job. All or nothing: a
//! failure removes the objects and rows it stored and what it created that is still empty.

use base64::Engine;
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use crate::context::AppContext;
use crate::db::models::{Answer, Assay, AssayStatus, FileAsset, FilePassage, Person};
use crate::db::{DbConn, write_transaction};
use crate::fileops::{self, UploadMeta};
use crate::llm::Document;
use crate::storage::SourceStream;

use super::DraftError;
use super::choice::{self, ModelChoice, ModelEntry};
use super::evidence::RunDocument;
use super::job::{DraftAssay, ImageInput};
use super::read::Budget;
use super::target::{self, Target};
use super::upload::{CheckedFile, Upload, check_files, mib};

/// Which answers a submission drafts.
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    /// Every question. Replacing an assay's existing answers needs `overwrite`.
    All { overwrite: bool },
    /// Only these questions ("regenerate"); their answers are replaced, the others kept.
    Questions(Vec<i32>),
}

/// One submission: who, for which assay, which answers, which documents, and the choices the
/// person made on the form.
#[derive(Debug)]
pub struct DraftRequest {
    pub uploader: Person,
    pub target: Target,
    /// The question set chosen on the form, if any.
    pub question_set_id: Option<i32>,
    pub scope: Scope,
    pub upload: Upload,
    /// `share_files_for_development`: keep the documents for benchmarking (consent).
    pub keep_files: bool,
    pub extract_images: bool,
    /// The language model chosen on the form (unknown or disabled ones are refused).
    pub model: ModelChoice,
}

#[derive(Debug)]
pub struct Submitted {
    pub assay_id: i32,
    pub job_id: i32,
    /// The files kept with the person's consent.
    pub stored: Vec<FileAsset>,
    /// What the person should know (files without text, images left out, …).
    pub warnings: Vec<String>,
    /// The documents do not fit the chosen model's context window (also among `warnings`).
    pub context_warning: Option<String>,
}

/// Check, store (with consent), extract and schedule; see the module documentation.
pub async fn submit(ctx: &AppContext, mut request: DraftRequest) -> Result<Submitted, DraftError> {
    let checked = match check(ctx, &request).await {
        Ok(checked) => checked,
        Err(err) => {
            // Refused before anything was created: files stored while the form arrived go.
            request.upload.discard_early().await;
            return Err(err);
        }
    };
    let (checked, set, model) = checked;
    // Its own task: if the browser goes away mid-way, the submission still ends whole —
    // scheduled, or rolled back — instead of being dropped half-done.
    let ctx = ctx.clone();
    tokio::spawn(async move { create_and_schedule(&ctx, request, checked, set, model).await })
        .await
        .map_err(|e| DraftError::Internal(anyhow::anyhow!("the submission task failed: {e}")))?
}

/// The checks that need nothing created: the files, the target, the overwrite rule, the model.
async fn check(
    ctx: &AppContext,
    request: &DraftRequest,
) -> Result<(Vec<CheckedFile>, Option<i32>, ModelEntry), DraftError> {
    if matches!(&request.scope, Scope::Questions(ids) if ids.is_empty()) {
        return Err(DraftError::NoQuestionsChosen);
    }
    let checked = check_files(&request.upload, &ctx.config.upload_limits).map_err(DraftError::Files)?;
    let (viewer, target, scope, set) =
        (request.uploader.clone(), request.target.clone(), request.scope.clone(), request.question_set_id);
    let (llm, choice) = (ctx.config.llm.clone(), request.model);
    let (set, model) = ctx
        .db(move |c| {
            let model = choice::chosen(c, &llm, choice)?.ok_or(DraftError::ModelUnavailable)?;
            let set = target::check(c, &viewer, &target, set)?;
            if let Target::Existing(id) = target {
                ready_for(c, id, &scope)?;
            }
            Ok::<_, DraftError>((set, model))
        })
        .await?;
    Ok((checked, set, model))
}

/// The overwrite rule, and one run per assay at a time (two would race for its answers).
fn ready_for(c: &mut DbConn, assay_id: i32, scope: &Scope) -> Result<(), DraftError> {
    let assay = Assay::find(c, assay_id).map_err(|_| DraftError::AssayGone)?;
    if matches!(assay.status(), AssayStatus::Scheduled | AssayStatus::Busy) {
        return Err(DraftError::AlreadyRunning);
    }
    if *scope == (Scope::All { overwrite: false }) && !Answer::of_assay(c, assay_id)?.is_empty() {
        return Err(DraftError::NeedsOverwrite);
    }
    Ok(())
}

async fn create_and_schedule(
    ctx: &AppContext,
    mut request: DraftRequest,
    checked: Vec<CheckedFile>,
    set: Option<i32>,
    model: ModelEntry,
) -> Result<Submitted, DraftError> {
    let (viewer, target) = (request.uploader.clone(), request.target.clone());
    let (assay_id, created) = match ctx.db(move |c| target::create(c, &viewer, &target, set)).await {
        Ok(created) => created,
        Err(err) => {
            request.upload.discard_early().await;
            return Err(err);
        }
    };
    // Storing (or finishing what began while the form arrived) and reading the documents go
    // on side by side: both only read the spooled files.
    if !request.keep_files {
        request.upload.discard_early().await;
    }
    let early = request.upload.take_early();
    let storing = async {
        if request.keep_files { store_all(ctx, &request, assay_id, &checked, early).await } else { Ok(Vec::new()) }
    };
    let (stored, read) = tokio::join!(storing, read_documents(ctx, &request, &checked, &model));
    let context_warning = read.context_warning.clone();
    let result = match stored {
        Ok(mut stored) => match schedule(ctx, &request, assay_id, &stored, read).await {
            Ok((job_id, warnings)) => {
                stored.iter_mut().for_each(|a| a.assay_id = Some(assay_id));
                Ok(Submitted { assay_id, job_id, stored, warnings, context_warning })
            }
            Err(err) => {
                fileops::discard(&ctx.pool, ctx.store.as_ref(), &stored).await;
                Err(err)
            }
        },
        Err(err) => Err(err),
    };
    match &result {
        Ok(_) => {
            let bytes = checked.iter().map(|c| c.file.size).sum();
            ctx.metrics.documents_uploaded(request.keep_files, checked.len(), bytes);
            ctx.queue.wake()
        }
        Err(_) if created.anything() => {
            if let Err(err) = ctx.db(move |c| Ok::<_, anyhow::Error>(created.undo(c)?)).await {
                tracing::error!(error = %err, ?created, "could not take back what a failed submission created");
            }
        }
        Err(_) => {}
    }
    result
}

/// Files stored at once per submission (each a stream into storage).
const STORING_AT_ONCE: usize = 4;

/// Store every file (a few at a time; those that began while the form arrived are awaited),
/// in the order of `checked`. If one fails, every one stored is removed again.
async fn store_all(
    ctx: &AppContext,
    request: &DraftRequest,
    assay_id: i32,
    checked: &[CheckedFile],
    early: Vec<(usize, super::upload::EarlyFile)>,
) -> Result<Vec<FileAsset>, DraftError> {
    let mut early: std::collections::HashMap<usize, super::upload::EarlyFile> = early.into_iter().collect();
    let jobs: Vec<(usize, Option<super::upload::EarlyFile>)> =
        (0..checked.len()).map(|i| (i, early.remove(&i))).collect();
    let results: Vec<(String, anyhow::Result<FileAsset>)> = futures_util::stream::iter(jobs)
        .map(|(i, early)| async move {
            let name = checked[i].file.original_name.clone();
            let stored = match early {
                Some(handle) => handle.await.map_err(anyhow::Error::from).and_then(|r| r),
                None => store_one(ctx, request, assay_id, &checked[i]).await,
            };
            (name, stored)
        })
        .buffered(STORING_AT_ONCE)
        .collect()
        .await;
    let (mut stored, mut failure) = (Vec::new(), None);
    for (name, result) in results {
        match result {
            Ok(asset) => stored.push(asset),
            Err(err) if failure.is_none() => failure = Some((name, err)),
            Err(_) => {}
        }
    }
    match failure {
        None => Ok(stored),
        Some((name, err)) => {
            let reference = crate::telemetry::new_reference();
            tracing::error!(reference = %reference, error = %err, file = %name, "storing an upload failed");
            fileops::discard(&ctx.pool, ctx.store.as_ref(), &stored).await;
            Err(DraftError::StorageUnavailable { reference })
        }
    }
}

async fn store_one(
    ctx: &AppContext,
    request: &DraftRequest,
    assay_id: i32,
    checked: &CheckedFile,
) -> anyhow::Result<FileAsset> {
    let meta = UploadMeta {
        original_filename: &checked.file.original_name,
        content_type: checked.kind.content_type(),
        uploaded_by: Some(request.uploader.id),
        assay_id: Some(assay_id),
        for_a_run: true,
    };
    let file = tokio::fs::File::open(&checked.file.path).await?;
    let mut stream = ReaderStream::with_capacity(file, 256 * 1024);
    let body: &mut SourceStream<'_> = &mut stream;
    Ok(fileops::upload_file(&ctx.pool, ctx.store.as_ref(), body, meta).await?)
}

/// What the run will read: the documents' passages (only as many as the model reads at once),
/// the images to describe, and what the person should know.
struct Read {
    /// (index in `checked`, document).
    documents: Vec<(usize, Document)>,
    images: Vec<(usize, ImageInput)>,
    warnings: Vec<String>,
    /// The documents read do not fit the chosen model's context window.
    context_warning: Option<String>,
    /// The staff configuration chosen (`None`: the default).
    configuration_id: Option<i32>,
}

/// Read the documents, in order and a few at a time, keeping whole passages up to what the
/// chosen model reads at once (its context budget); documents past it are not read at all.
/// The job then carries only what the model will see, whatever was uploaded. Kept files are
/// not read here: the job reads them back from storage (and checks the context window then,
/// before the first question is asked).
async fn read_documents(ctx: &AppContext, request: &DraftRequest, checked: &[CheckedFile], model: &ModelEntry) -> Read {
    let mut read = Read {
        documents: Vec::new(),
        images: Vec::new(),
        warnings: Vec::new(),
        context_warning: None,
        configuration_id: model.choice.configuration_id(),
    };
    for (i, checked) in checked.iter().enumerate().filter(|(_, c)| c.kind.is_image()) {
        match image_input(ctx, request, checked).await {
            Ok(image) => read.images.push((i, image)),
            Err(warning) => read.warnings.push(warning),
        }
    }
    if request.keep_files {
        return read;
    }
    let full = std::sync::atomic::AtomicBool::new(false);
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let documents: Vec<usize> = (0..checked.len()).filter(|i| !checked[*i].kind.is_image()).collect();
    let mut results = futures_util::stream::iter(documents)
        .map(|i| {
            let full = &full;
            async move {
                if full.load(std::sync::atomic::Ordering::SeqCst) {
                    return (i, None);
                }
                (i, Some(ctx.extractor.extract(&checked[i].file.path, checked[i].kind).await))
            }
        })
        .buffered(parallel);
    let mut budget = Budget::new(choice::document_budget(ctx, model));
    while let Some((i, extracted)) = results.next().await {
        let name = &checked[i].file.original_name;
        match extracted {
            None => budget.skip(name),
            Some(Ok(done)) if done.is_empty() => {
                read.warnings.push(format!("{name}: no text could be found in this file (is it a scan?)."));
            }
            Some(Ok(done)) => {
                if done.truncated {
                    read.warnings.push(format!("{name}: only the first part of this very long document was used."));
                }
                let passages = budget.take(name, done.passages());
                if budget.is_spent() {
                    full.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                if !passages.is_empty() {
                    read.documents.push((i, Document { name: name.clone(), passages }));
                }
            }
            Some(Err(err)) => {
                tracing::warn!(file = %name, error = ?err, "text extraction failed");
                read.warnings.push(format!("{name}: {err}; it was left out."));
            }
        }
    }
    read.context_warning = model.context_flag(budget.offered_chars(), budget.all_read());
    match &read.context_warning {
        Some(flag) => read.warnings.push(flag.clone()),
        None => read.warnings.extend(budget.note()),
    }
    read
}

/// In one transaction: make the run's files linkable (and theirs), keep the passages the run
/// reads with the kept files, replace the assay's alerts with this run's warnings, set it
/// `scheduled` and enqueue the drafting job.
async fn schedule(
    ctx: &AppContext,
    request: &DraftRequest,
    assay_id: i32,
    stored: &[FileAsset],
    read: Read,
) -> Result<(i32, Vec<String>), DraftError> {
    // `stored` follows `checked` one to one when the files are kept.
    let kept_as = |i: usize| stored.get(i).map(|a| a.id.clone());
    let job = DraftAssay {
        assay_id,
        documents: read
            .documents
            .into_iter()
            .map(|(i, document)| RunDocument { document, file_asset_id: kept_as(i) })
            .collect(),
        file_asset_ids: stored.iter().map(|a| a.id.clone()).collect(),
        question_ids: match &request.scope {
            super::Scope::Questions(ids) => Some(ids.clone()),
            super::Scope::All { .. } => None,
        },
        images: read.images.into_iter().map(|(i, image)| ImageInput { file_asset_id: kept_as(i), ..image }).collect(),
        read_from_storage: request.keep_files,
        configuration_id: read.configuration_id,
    };
    let warnings = read.warnings;
    let (alerts, scope) = (warnings.clone(), request.scope.clone());
    let job_id = ctx
        .db(move |c| {
            write_transaction(c, |c| {
                ready_for(c, assay_id, &scope)?;
                FileAsset::make_available(c, &job.file_asset_ids, assay_id)?;
                for doc in &job.documents {
                    if let Some(file) = &doc.file_asset_id {
                        FilePassage::insert_all(c, file, &doc.document.passages)?;
                    }
                }
                Assay::replace_alerts(c, assay_id, &alerts)?;
                Assay::set_status(c, assay_id, AssayStatus::Scheduled)?;
                Ok::<_, DraftError>(crate::jobs::enqueue(c, &job)?)
            })
        })
        .await?;
    Ok((job_id, warnings))
}

/// An image for the model to describe, or the warning why it is left out.
async fn image_input(ctx: &AppContext, request: &DraftRequest, checked: &CheckedFile) -> Result<ImageInput, String> {
    let name = &checked.file.original_name;
    let limit = ctx.config.upload_limits.max_image_bytes;
    if !request.extract_images {
        return Err(format!("{name}: images are only read when “extract images” is ticked; this one was left out."));
    }
    if checked.file.size > limit {
        return Err(format!("{name}: images larger than {} are not described.", mib(limit)));
    }
    let bytes = tokio::fs::read(&checked.file.path).await.map_err(|_| format!("{name}: it could not be read."))?;
    let base64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(ImageInput { name: name.clone(), mime: checked.kind.content_type().into(), base64, file_asset_id: None })
}
