//! Reading a multipart form as it streams in: text fields into memory (small, bounded), file
//! fields into temp files on disk with their size and first bytes — never a whole file in
//! memory. Limits are enforced while reading, so an oversized upload is cut off early.

use std::collections::HashMap;

use actix_multipart::Multipart;
use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use crate::config::UploadLimits;
use crate::drafting::{FileProblem, HEAD_BYTES, IncomingFile, ProblemKind, Upload, mib};

use super::error::AppError;

/// The parts of a submitted multipart form: its text fields, and its files as an [`Upload`]
/// (whose spool directory is removed when the upload is dropped).
pub struct SpooledForm {
    pub fields: HashMap<String, Vec<String>>,
    pub upload: Upload,
}

impl SpooledForm {
    pub fn text(&self, name: &str) -> String {
        self.fields.get(name).and_then(|v| v.first()).cloned().unwrap_or_default()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields.get(name).cloned().unwrap_or_default()
    }

    /// A ticked checkbox: only a real "on" (what browsers send), "true" or "1" counts — an
    /// "off", "false" or empty value is not consent.
    pub fn checked(&self, name: &str) -> bool {
        self.fields.get(name).is_some_and(|values| values.iter().any(|v| is_ticked(v)))
    }
}

const MAX_TEXT_FIELD: usize = 64 * 1024;
const MAX_TEXT_FIELDS: usize = 400;
/// All text fields of a form together.
const MAX_TEXT_TOTAL: usize = 256 * 1024;

/// Read every field; file fields named `file_field` are spooled below `tmp_root`.
pub async fn spool(
    mut form: Multipart,
    file_field: &str,
    limits: &UploadLimits,
    tmp_root: &std::path::Path,
) -> Result<SpooledForm, AppError> {
    tokio::fs::create_dir_all(tmp_root).await.map_err(AppError::internal)?;
    let dir = tempfile::Builder::new().prefix("upload-").tempdir_in(tmp_root).map_err(AppError::internal)?;
    let mut spool = Spool {
        limits,
        dir: dir.path(),
        fields: HashMap::new(),
        files: Vec::new(),
        problems: Vec::new(),
        total: 0,
        text_total: 0,
        parts: 0,
    };
    while let Some(field) = form.try_next().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        match field.content_disposition().and_then(|cd| cd.get_filename()).map(str::to_owned) {
            Some(original) if name == file_field => spool.file(field, &original).await?,
            _ => spool.text(field, name).await?,
        }
    }
    if spool.total > limits.max_total_bytes {
        spool.files.clear(); // nothing of an oversized submission is looked at further
        spool.problems.push(FileProblem::new(
            "",
            ProblemKind::TotalTooLarge,
            format!("The files add up to more than the {} that can be uploaded at once.", mib(limits.max_total_bytes)),
        ));
    }
    let Spool { fields, files, problems, .. } = spool;
    Ok(SpooledForm { fields, upload: Upload::spooled(files, problems, dir) })
}

/// What has been read of a form so far.
struct Spool<'a> {
    limits: &'a UploadLimits,
    dir: &'a std::path::Path,
    fields: HashMap<String, Vec<String>>,
    files: Vec<IncomingFile>,
    problems: Vec<FileProblem>,
    /// File bytes received so far (every file part counts, named or not).
    total: u64,
    /// Text field bytes received so far.
    text_total: usize,
    /// File parts received so far.
    parts: usize,
}

impl Spool<'_> {
    /// Spool one file part to disk, keeping its first bytes. Nothing past the per-file or the
    /// total limit is written: such a file is read to its end (the browser sends it anyway,
    /// and then reads our answer) but not kept, up to twice the total limit, where we stop
    /// listening altogether.
    async fn file(&mut self, mut field: actix_multipart::Field, original: &str) -> Result<(), AppError> {
        let limits = self.limits;
        self.parts += 1;
        if self.parts > limits.max_files.saturating_mul(4) {
            return Err(AppError::PayloadTooLarge(format!(
                "At most {} files can be uploaded at once.",
                limits.max_files
            )));
        }
        let path = self.dir.join(format!("{}", self.parts));
        let mut out = None;
        let (mut size, mut head, mut refused) = (0u64, Vec::with_capacity(HEAD_BYTES), false);
        while let Some(chunk) = field.try_next().await.map_err(bad_form)? {
            size += chunk.len() as u64;
            self.total += chunk.len() as u64;
            if self.total > limits.max_total_bytes.saturating_mul(2) {
                return Err(AppError::PayloadTooLarge(format!(
                    "The upload is far larger than the {} we accept; nothing was stored.",
                    mib(limits.max_total_bytes)
                )));
            }
            refused |= size > limits.max_file_bytes || self.total > limits.max_total_bytes;
            if refused {
                continue;
            }
            let take = HEAD_BYTES.saturating_sub(head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            if out.is_none() {
                out = Some(tokio::fs::File::create(&path).await.map_err(AppError::internal)?);
            }
            if let Some(out) = out.as_mut() {
                out.write_all(&chunk).await.map_err(AppError::internal)?;
            }
        }
        if let Some(out) = out.as_mut() {
            out.flush().await.map_err(AppError::internal)?;
        }
        if original.is_empty() {
            // An empty file input sends a part with no name: it counts, but is no document.
            if size > 0 {
                let _ = tokio::fs::remove_file(&path).await;
            }
            return Ok(());
        }
        if out.is_none() && !refused {
            tokio::fs::File::create(&path).await.map_err(AppError::internal)?;
        }
        let original_name = crate::filenames::clean(original);
        if size > limits.max_file_bytes {
            self.problems.push(FileProblem::too_large(original_name, limits));
        } else if refused {
            let _ = tokio::fs::remove_file(&path).await; // the total was exceeded: reported below
        } else {
            self.files.push(IncomingFile { original_name, path, size, head });
        }
        Ok(())
    }

    /// Read one text field into memory (small: bounded in size and number).
    async fn text(&mut self, mut field: actix_multipart::Field, name: String) -> Result<(), AppError> {
        if self.fields.values().map(Vec::len).sum::<usize>() >= MAX_TEXT_FIELDS {
            return Err(AppError::BadRequest("The form has too many fields.".into()));
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.try_next().await.map_err(bad_form)? {
            self.text_total += chunk.len();
            if value.len() + chunk.len() > MAX_TEXT_FIELD || self.text_total > MAX_TEXT_TOTAL {
                return Err(AppError::PayloadTooLarge(format!("The field {name} is too long.")));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value)
            .map_err(|_| AppError::BadRequest(format!("The field {name} is not valid text.")))?;
        self.fields.entry(name).or_default().push(value);
        Ok(())
    }
}

fn is_ticked(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "on" | "true" | "1")
}

fn bad_form(err: actix_multipart::MultipartError) -> AppError {
    tracing::info!(error = %err, "unreadable multipart upload");
    AppError::BadRequest("The upload could not be read (was it interrupted?). Please try again.".into())
}
