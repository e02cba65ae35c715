//! Submitting documents for drafting — the StartingForm, "regenerate selected questions" and
//! the `process` command all come through [`submit`]: check the files, check and resolve the
//! target, apply the overwrite rule, create what the target asks for, store the files when the
//! person consents, extract their text, and schedule the drafting job. All or nothing: a
//! failure removes the objects and rows it stored and what it created that is still empty.

use base64::Engine;
use tokio_util::io::ReaderStream;

use crate::context::AppContext;
use crate::db::models::{Answer, Assay, AssayStatus, FileAsset, FilePassage, Person};
use crate::db::{DbConn, write_transaction};
use crate::fileops::{self, UploadMeta};
use crate::llm::Document;
use crate::storage::SourceStream;

use super::DraftError;
use super::evidence::RunDocument;
use super::job::{DraftAssay, ImageInput};
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
}

#[derive(Debug)]
pub struct Submitted {
    pub assay_id: i32,
    pub job_id: i32,
    /// The files kept with the person's consent.
    pub stored: Vec<FileAsset>,
    /// What the person should know (files without text, images left out, …).
    pub warnings: Vec<String>,
}

/// Check, store (with consent), extract and schedule; see the module documentation.
pub async fn submit(ctx: &AppContext, request: DraftRequest) -> Result<Submitted, DraftError> {
    if matches!(&request.scope, Scope::Questions(ids) if ids.is_empty()) {
        return Err(DraftError::NoQuestionsChosen);
    }
    let checked = check_files(&request.upload, &ctx.config.upload_limits).map_err(DraftError::Files)?;
    let (viewer, target, scope, set) =
        (request.uploader.clone(), request.target.clone(), request.scope.clone(), request.question_set_id);
    let set = ctx
        .db(move |c| {
            let set = target::check(c, &viewer, &target, set)?;
            if let Target::Existing(id) = target {
                ready_for(c, id, &scope)?;
            }
            Ok::<_, DraftError>(set)
        })
        .await?;
    // Its own task: if the browser goes away mid-way, the submission still ends whole —
    // scheduled, or rolled back — instead of being dropped half-done.
    let ctx = ctx.clone();
    tokio::spawn(async move { create_and_schedule(&ctx, request, checked, set).await })
        .await
        .map_err(|e| DraftError::Internal(anyhow::anyhow!("the submission task failed: {e}")))?
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
    request: DraftRequest,
    checked: Vec<CheckedFile>,
    set: Option<i32>,
) -> Result<Submitted, DraftError> {
    let (viewer, target) = (request.uploader.clone(), request.target.clone());
    let (assay_id, created) = ctx.db(move |c| target::create(c, &viewer, &target, set)).await?;
    let stored = if request.keep_files { store_all(ctx, &request, assay_id, &checked).await } else { Ok(Vec::new()) };
    let result = match stored {
        Ok(stored) => match extract_and_schedule(ctx, &request, assay_id, &checked, &stored).await {
            Ok((job_id, warnings)) => Ok(Submitted { assay_id, job_id, stored, warnings }),
            Err(err) => {
                fileops::discard(&ctx.pool, ctx.store.as_ref(), &stored).await;
                Err(err)
            }
        },
        Err(err) => Err(err),
    };
    match &result {
        Ok(_) => ctx.queue.wake(),
        Err(_) if created.anything() => {
            if let Err(err) = ctx.db(move |c| Ok::<_, anyhow::Error>(created.undo(c)?)).await {
                tracing::error!(error = %err, ?created, "could not take back what a failed submission created");
            }
        }
        Err(_) => {}
    }
    result
}

/// Stream each file into storage; on the first failure remove what was stored.
async fn store_all(
    ctx: &AppContext,
    request: &DraftRequest,
    assay_id: i32,
    checked: &[CheckedFile],
) -> Result<Vec<FileAsset>, DraftError> {
    let mut stored = Vec::new();
    for checked in checked {
        let meta = UploadMeta {
            original_filename: &checked.file.original_name,
            content_type: checked.kind.content_type(),
            uploaded_by: Some(request.uploader.id),
            assay_id: Some(assay_id),
            for_a_run: true,
        };
        let result = match tokio::fs::File::open(&checked.file.path).await {
            Ok(file) => {
                let mut stream = ReaderStream::with_capacity(file, 256 * 1024);
                let body: &mut SourceStream<'_> = &mut stream;
                fileops::upload_file(&ctx.pool, ctx.store.as_ref(), body, meta).await.map_err(anyhow::Error::from)
            }
            Err(err) => Err(anyhow::Error::from(err)),
        };
        match result {
            Ok(asset) => stored.push(asset),
            Err(err) => {
                let reference = crate::telemetry::new_reference();
                tracing::error!(reference = %reference, error = %err, file = %checked.file.original_name, "storing an upload failed");
                fileops::discard(&ctx.pool, ctx.store.as_ref(), &stored).await;
                return Err(DraftError::StorageUnavailable { reference });
            }
        }
    }
    Ok(stored)
}

/// Extract the text of every document, then — in one transaction — replace the assay's alerts
/// with this run's warnings, set it `scheduled` and enqueue the drafting job.
async fn extract_and_schedule(
    ctx: &AppContext,
    request: &DraftRequest,
    assay_id: i32,
    checked: &[CheckedFile],
    stored: &[FileAsset],
) -> Result<(i32, Vec<String>), DraftError> {
    let mut documents = Vec::new();
    let mut images = Vec::new();
    let mut warnings = Vec::new();
    for (i, checked) in checked.iter().enumerate() {
        let name = &checked.file.original_name;
        if checked.kind.is_image() {
            match image_input(ctx, request, checked, stored.get(i)).await? {
                Ok(image) => images.push(image),
                Err(warning) => warnings.push(warning),
            }
            continue;
        }
        match ctx.extractor.extract(&checked.file.path, checked.kind).await {
            Ok(done) if done.is_empty() => {
                warnings.push(format!("{name}: no text could be found in this file (is it a scan?)."));
            }
            Ok(done) => {
                if done.truncated {
                    warnings.push(format!("{name}: only the first part of this very long document was used."));
                }
                let document = Document { name: name.clone(), passages: done.passages() };
                // `stored` follows `checked` one to one when the files are kept.
                documents.push(RunDocument { document, file_asset_id: stored.get(i).map(|a| a.id.clone()) });
            }
            Err(err) => {
                tracing::warn!(file = %name, error = ?err, "text extraction failed");
                warnings.push(format!("{name}: {err}; it was left out."));
            }
        }
    }
    let job = DraftAssay {
        assay_id,
        documents,
        file_asset_ids: stored.iter().map(|a| a.id.clone()).collect(),
        question_ids: match &request.scope {
            super::Scope::Questions(ids) => Some(ids.clone()),
            super::Scope::All { .. } => None,
        },
        images,
    };
    let (alerts, scope) = (warnings.clone(), request.scope.clone());
    let job_id = ctx
        .db(move |c| {
            write_transaction(c, |c| {
                ready_for(c, assay_id, &scope)?;
                // The run's files become linkable, and their passages are kept with them.
                FileAsset::make_available(c, &job.file_asset_ids)?;
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
async fn image_input(
    ctx: &AppContext,
    request: &DraftRequest,
    checked: &CheckedFile,
    kept_as: Option<&FileAsset>,
) -> Result<Result<ImageInput, String>, DraftError> {
    let name = &checked.file.original_name;
    let limit = ctx.config.upload_limits.max_image_bytes;
    if !request.extract_images {
        return Ok(Err(format!(
            "{name}: images are only read when “extract images” is ticked; this one was left out."
        )));
    }
    if checked.file.size > limit {
        return Ok(Err(format!("{name}: images larger than {} are not described.", mib(limit))));
    }
    let bytes = tokio::fs::read(&checked.file.path).await.map_err(anyhow::Error::from)?;
    let base64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let file_asset_id = kept_as.map(|a| a.id.clone());
    Ok(Ok(ImageInput { name: name.clone(), mime: checked.kind.content_type().into(), base64, file_asset_id }))
}
