//! The StartingForm's work, without HTTP: check the uploaded files, store them when the
//! person consents, extract their text, and schedule the drafting job — all or nothing.
//! The web handler (and the `process` command) spool uploads to temp files and call this.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use tokio_util::io::ReaderStream;

use crate::db::models::{Answer, Assay, AssayStatus, FileAsset};
use crate::db::{Pool, write_transaction};
use crate::fileops::{self, UploadMeta};
use crate::ingest::{DocumentKind, Extractor};
use crate::jobs::{self, worker::WorkerContext};
use crate::llm::Document;
use crate::llm::pipeline::{ImageInput, PROCESS_ASSAY, ProcessAssay};
use crate::storage::{ObjectStore, SourceStream};

/// An uploaded file, already on local disk (spooled while it arrived).
#[derive(Clone, Debug)]
pub struct IncomingFile {
    pub original_name: String,
    pub path: PathBuf,
    pub size: u64,
    /// Up to the first 8 KiB, for content sniffing.
    pub head: Vec<u8>,
}

/// Limits for one submission.
#[derive(Clone, Debug)]
pub struct UploadLimits {
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
    pub max_files: usize,
    /// Largest image sent to the model for a description.
    pub max_image_bytes: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 30 * 1024 * 1024,
            max_total_bytes: 200 * 1024 * 1024,
            max_files: 20,
            max_image_bytes: 10 * 1024 * 1024,
        }
    }
}

/// A file that passed the checks.
#[derive(Clone, Debug)]
pub struct CheckedFile {
    pub file: IncomingFile,
    pub kind: DocumentKind,
}

/// Why one file was refused.
#[derive(Clone, Debug, PartialEq)]
pub struct FileProblem {
    pub name: String,
    pub reason: String,
}

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// Check every file (type by extension and content, emptiness, size) and the set (count,
/// total). All problems are reported, not just the first.
pub fn check_files(files: Vec<IncomingFile>, limits: &UploadLimits) -> Result<Vec<CheckedFile>, Vec<FileProblem>> {
    let mut problems = Vec::new();
    if files.is_empty() {
        problems.push(FileProblem { name: String::new(), reason: "Please choose at least one document.".into() });
    }
    if files.len() > limits.max_files {
        problems.push(FileProblem {
            name: String::new(),
            reason: format!("At most {} files can be uploaded at once; {} were chosen.", limits.max_files, files.len()),
        });
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total > limits.max_total_bytes {
        problems.push(FileProblem {
            name: String::new(),
            reason: format!(
                "The files add up to {}; at most {} can be uploaded at once.",
                mib(total),
                mib(limits.max_total_bytes)
            ),
        });
    }
    let mut checked = Vec::new();
    for file in files {
        let name = file.original_name.clone();
        let problem = |reason: String| FileProblem { name: name.clone(), reason };
        let Some(kind) = DocumentKind::from_filename(&file.original_name) else {
            problems.push(problem("this file type is not supported (use PDF, DOCX, TXT, MD, HTML, JSON, CSV, XLSX, XLS, PPTX or an image)".into()));
            continue;
        };
        if file.size == 0 {
            problems.push(problem("the file is empty".into()));
        } else if file.size > limits.max_file_bytes {
            problems.push(problem(format!("the file is larger than {}", mib(limits.max_file_bytes))));
        } else if !kind.matches_content(&file.head) {
            problems.push(problem(format!("the content is not a valid {} file", kind.as_str().to_uppercase())));
        } else {
            checked.push(CheckedFile { file, kind });
        }
    }
    if problems.is_empty() { Ok(checked) } else { Err(problems) }
}

/// What the person asked for.
pub struct Submission {
    pub assay_id: i32,
    pub uploader_id: i32,
    pub files: Vec<CheckedFile>,
    pub share_files_for_development: bool,
    pub extract_images: bool,
    pub overwrite: bool,
    /// Regenerate only these questions.
    pub question_ids: Option<Vec<i32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Refused(String),
    /// Storage failed; everything written for this submission was removed.
    #[error("storage unavailable: {0}")]
    Storage(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Debug)]
pub struct Submitted {
    pub job_id: i32,
    pub stored: Vec<FileAsset>,
    pub warnings: Vec<String>,
}

pub struct SubmitDeps<'a> {
    pub pool: &'a Pool,
    pub store: &'a dyn ObjectStore,
    pub extractor: &'a Extractor,
    pub workers: &'a Arc<WorkerContext>,
    pub limits: &'a UploadLimits,
}

/// Store (with consent), extract, schedule. Nothing is left behind when it fails.
pub async fn submit(deps: &SubmitDeps<'_>, sub: Submission) -> Result<Submitted, SubmitError> {
    let (assay_id, overwrite, partial) = (sub.assay_id, sub.overwrite, sub.question_ids.is_some());
    blocking(deps.pool, move |c| not_running(c, assay_id)).await?;
    let has_answers =
        blocking(deps.pool, move |c| Ok::<_, SubmitError>(!Answer::of_assay(c, assay_id)?.is_empty())).await?;
    if has_answers && !overwrite && !partial {
        return Err(SubmitError::Refused(
            "This assay already has answers. Tick “overwrite” to replace them with new drafts.".into(),
        ));
    }
    let stored = if sub.share_files_for_development { store_all(deps, &sub).await? } else { Vec::new() };
    match extract_and_schedule(deps, &sub, &stored).await {
        Ok((job_id, warnings)) => {
            deps.workers.notify.notify_one();
            Ok(Submitted { job_id, stored, warnings })
        }
        Err(err) => {
            discard(deps, &stored).await;
            Err(err)
        }
    }
}

async fn store_all(deps: &SubmitDeps<'_>, sub: &Submission) -> Result<Vec<FileAsset>, SubmitError> {
    let mut stored = Vec::new();
    for checked in &sub.files {
        let result = async {
            let file = tokio::fs::File::open(&checked.file.path).await.map_err(fileops::UploadError::Source)?;
            let mut stream = ReaderStream::with_capacity(file, 256 * 1024);
            let body: &mut SourceStream<'_> = &mut stream;
            let meta = UploadMeta {
                original_filename: &checked.file.original_name,
                content_type: checked.kind.content_type(),
                uploaded_by: Some(sub.uploader_id),
                assay_id: Some(sub.assay_id),
            };
            fileops::upload_file(deps.pool, deps.store, body, meta).await
        }
        .await;
        match result {
            Ok(asset) => stored.push(asset),
            Err(err) => {
                tracing::error!(error = %err, file = %checked.file.original_name, "storing an upload failed");
                discard(deps, &stored).await;
                return Err(SubmitError::Storage(err.to_string()));
            }
        }
    }
    Ok(stored)
}

/// Remove what this submission stored: objects first, then rows.
async fn discard(deps: &SubmitDeps<'_>, stored: &[FileAsset]) {
    if stored.is_empty() {
        return;
    }
    let keys: Vec<String> = stored.iter().map(|a| a.object_key.clone()).collect();
    let results = deps.store.delete_many(&keys).await;
    let (removed, stuck): (Vec<_>, Vec<_>) = stored.iter().zip(results).partition(|(_, r)| r.is_ok());
    let removed: Vec<String> = removed.into_iter().map(|(a, _)| a.id.clone()).collect();
    let stuck: Vec<String> = stuck.into_iter().map(|(a, _)| a.id.clone()).collect();
    let _ = blocking(deps.pool, move |c| {
        use crate::db::schema::file_assets;
        use diesel::prelude::*;
        diesel::delete(file_assets::table.filter(file_assets::id.eq_any(&removed))).execute(c)?;
        // Objects we could not remove: hidden from the assay and left to the orphan cleanup,
        // which retries the delete.
        diesel::update(file_assets::table.filter(file_assets::id.eq_any(&stuck)))
            .set((file_assets::status.eq("deleting"), file_assets::assay_id.eq(None::<i32>)))
            .execute(c)?;
        Ok::<_, SubmitError>(())
    })
    .await;
}

async fn extract_and_schedule(
    deps: &SubmitDeps<'_>,
    sub: &Submission,
    stored: &[FileAsset],
) -> Result<(i32, Vec<String>), SubmitError> {
    let mut documents = Vec::new();
    let mut images = Vec::new();
    let mut warnings = Vec::new();
    for checked in &sub.files {
        let name = &checked.file.original_name;
        if checked.kind.is_image() {
            if !sub.extract_images {
                warnings.push(format!(
                    "{name}: images are only read when “extract images” is ticked; this one was left out."
                ));
            } else if checked.file.size > deps.limits.max_image_bytes {
                warnings.push(format!(
                    "{name}: images larger than {} are not described.",
                    mib(deps.limits.max_image_bytes)
                ));
            } else {
                let bytes = tokio::fs::read(&checked.file.path).await.map_err(anyhow::Error::from)?;
                let base64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                images.push(ImageInput { name: name.clone(), mime: checked.kind.content_type().into(), base64 });
            }
            continue;
        }
        match deps.extractor.extract(&checked.file.path, checked.kind).await {
            Ok(done) if done.text.trim().is_empty() => {
                warnings.push(format!("{name}: no text could be found in this file (is it a scan?)."));
            }
            Ok(done) => {
                if done.truncated {
                    warnings.push(format!("{name}: only the first part of this very long document was used."));
                }
                documents.push(Document { name: name.clone(), text: done.text });
            }
            Err(err) => {
                tracing::warn!(file = %name, error = ?err, "text extraction failed");
                warnings.push(format!("{name}: {err}; it was left out."));
            }
        }
    }
    let payload = ProcessAssay {
        assay_id: sub.assay_id,
        documents,
        file_asset_ids: stored.iter().map(|a| a.id.clone()).collect(),
        question_ids: sub.question_ids.clone(),
        images,
    };
    let alerts = warnings.clone();
    let assay_id = sub.assay_id;
    let job_id = blocking(deps.pool, move |c| {
        write_transaction(c, |c| {
            if !Assay::exists(c, assay_id)? {
                return Err(SubmitError::Refused("The assay was deleted.".into()));
            }
            not_running(c, assay_id)?;
            Assay::replace_alerts(c, assay_id, &alerts)?;
            Assay::set_status(c, assay_id, AssayStatus::Scheduled)?;
            let id = jobs::enqueue(c, PROCESS_ASSAY, &payload, Some(assay_id))?;
            Ok(id)
        })
    })
    .await?;
    Ok((job_id, warnings))
}

/// Two runs on one assay would race for its answers and its status: one at a time.
fn not_running(c: &mut crate::db::DbConn, assay_id: i32) -> Result<(), SubmitError> {
    let status = Assay::find(c, assay_id)?.status();
    if matches!(status, AssayStatus::Scheduled | AssayStatus::Busy) {
        return Err(SubmitError::Refused(
            "The answers of this assay are being drafted right now. Please wait until that is done, then try again."
                .into(),
        ));
    }
    Ok(())
}

async fn blocking<T, E, F>(pool: &Pool, f: F) -> Result<T, SubmitError>
where
    F: FnOnce(&mut crate::db::DbConn) -> Result<T, E> + Send + 'static,
    E: Into<SubmitError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|e| SubmitError::Internal(e.into()))?;
        f(&mut conn).map_err(Into::into)
    })
    .await
    .map_err(|e| SubmitError::Internal(e.into()))?
}

impl From<diesel::result::Error> for SubmitError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Internal(err.into())
    }
}
