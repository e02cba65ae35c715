//! Reading a multipart form as it streams in: text fields into memory (small, bounded), file
//! fields into temp files on disk with their size and first bytes — never a whole file in
//! memory. Limits are enforced while reading, so an oversized upload is cut off early.

use std::collections::HashMap;

use actix_multipart::Multipart;
use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use crate::config::UploadLimits;
use crate::drafting::{FileProblem, HEAD_BYTES, IncomingFile, Upload, mib};

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

    pub fn checked(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }
}

const MAX_TEXT_FIELD: usize = 64 * 1024;
const MAX_TEXT_FIELDS: usize = 400;

/// Read every field; file fields named `file_field` are spooled below `tmp_root`.
pub async fn spool(
    mut form: Multipart,
    file_field: &str,
    limits: &UploadLimits,
    tmp_root: &std::path::Path,
) -> Result<SpooledForm, AppError> {
    tokio::fs::create_dir_all(tmp_root).await.map_err(AppError::internal)?;
    let dir = tempfile::Builder::new().prefix("upload-").tempdir_in(tmp_root).map_err(AppError::internal)?;
    let mut spool =
        Spool { limits, dir: dir.path(), fields: HashMap::new(), files: Vec::new(), problems: Vec::new(), total: 0 };
    while let Some(field) = form.try_next().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        match field.content_disposition().and_then(|cd| cd.get_filename()).map(str::to_owned) {
            Some(original) if name == file_field => spool.file(field, &original).await?,
            _ => spool.text(field, name).await?,
        }
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
    /// File bytes received so far.
    total: u64,
}

impl Spool<'_> {
    /// Spool one file part to disk, keeping its first bytes; a file over the size limit is
    /// read to its end (the browser sends it anyway) but not kept.
    async fn file(&mut self, mut field: actix_multipart::Field, original: &str) -> Result<(), AppError> {
        let limits = self.limits;
        if original.is_empty() {
            // An empty file input still sends a part with no name and no bytes.
            while field.try_next().await.map_err(bad_form)?.is_some() {}
            return Ok(());
        }
        if self.files.len() + self.problems.len() >= limits.max_files.saturating_mul(4) {
            return Err(AppError::PayloadTooLarge(format!(
                "At most {} files can be uploaded at once.",
                limits.max_files
            )));
        }
        let path = self.dir.join(format!("{}", self.files.len() + self.problems.len()));
        let mut out = tokio::fs::File::create(&path).await.map_err(AppError::internal)?;
        let (mut size, mut head, mut too_large) = (0u64, Vec::with_capacity(HEAD_BYTES), false);
        while let Some(chunk) = field.try_next().await.map_err(bad_form)? {
            size += chunk.len() as u64;
            self.total += chunk.len() as u64;
            // Past twice the total limit we stop listening altogether.
            if self.total > limits.max_total_bytes.saturating_mul(2) {
                return Err(AppError::PayloadTooLarge(format!(
                    "The upload is far larger than the {} we accept; nothing was stored.",
                    mib(limits.max_total_bytes)
                )));
            }
            too_large |= size > limits.max_file_bytes;
            if too_large {
                continue;
            }
            let take = HEAD_BYTES.saturating_sub(head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            out.write_all(&chunk).await.map_err(AppError::internal)?;
        }
        out.flush().await.map_err(AppError::internal)?;
        let original_name = crate::fileops::storable_filename(original);
        if too_large {
            self.problems.push(FileProblem::too_large(original_name, limits));
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
            if value.len() + chunk.len() > MAX_TEXT_FIELD {
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

fn bad_form(err: actix_multipart::MultipartError) -> AppError {
    tracing::info!(error = %err, "unreadable multipart upload");
    AppError::BadRequest("The upload could not be read (was it interrupted?). Please try again.".into())
}
