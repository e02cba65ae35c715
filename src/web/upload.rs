//! Reading a multipart form as it streams in: text fields into memory (small, bounded), file
//! fields into temp files on disk with their size and first bytes — never a whole file in
//! memory. Limits are enforced while reading, so an oversized upload is cut off early.

use std::collections::HashMap;

use actix_multipart::Multipart;
use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use crate::submission::{FileProblem, IncomingFile, UploadLimits, mib};

use super::error::AppError;

/// The parts of a submitted multipart form.
pub struct SpooledForm {
    pub fields: HashMap<String, Vec<String>>,
    pub files: Vec<IncomingFile>,
    /// Files refused while reading (too large); their bytes were discarded.
    pub problems: Vec<FileProblem>,
    /// Holds the spooled files; removed when dropped.
    pub _dir: tempfile::TempDir,
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
const HEAD: usize = 8192;

/// Read every field; file fields named `file_field` are spooled below `tmp_root`.
pub async fn spool(
    mut form: Multipart,
    file_field: &str,
    limits: &UploadLimits,
    tmp_root: &std::path::Path,
) -> Result<SpooledForm, AppError> {
    tokio::fs::create_dir_all(tmp_root).await.map_err(AppError::internal)?;
    let dir = tempfile::Builder::new().prefix("upload-").tempdir_in(tmp_root).map_err(AppError::internal)?;
    let mut fields: HashMap<String, Vec<String>> = HashMap::new();
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut total = 0u64;
    let mut text_fields = 0;
    while let Some(mut field) = form.try_next().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.content_disposition().and_then(|cd| cd.get_filename()).map(str::to_owned);
        match filename {
            Some(original) if name == file_field => {
                if original.is_empty() {
                    // An empty file input still sends a part with no name and no bytes.
                    while field.try_next().await.map_err(bad_form)?.is_some() {}
                    continue;
                }
                if files.len() + problems.len() >= limits.max_files.saturating_mul(4) {
                    return Err(AppError::PayloadTooLarge(format!(
                        "At most {} files can be uploaded at once.",
                        limits.max_files
                    )));
                }
                let path = dir.path().join(format!("{}", files.len()));
                let mut out = tokio::fs::File::create(&path).await.map_err(AppError::internal)?;
                let mut size = 0u64;
                let mut head = Vec::with_capacity(HEAD);
                let mut refused = None;
                while let Some(chunk) = field.try_next().await.map_err(bad_form)? {
                    size += chunk.len() as u64;
                    total += chunk.len() as u64;
                    // Past twice the total limit we stop listening altogether.
                    if total > limits.max_total_bytes.saturating_mul(2) {
                        return Err(AppError::PayloadTooLarge(format!(
                            "The upload is far larger than the {} we accept; nothing was stored.",
                            mib(limits.max_total_bytes)
                        )));
                    }
                    if refused.is_some() {
                        continue;
                    }
                    if size > limits.max_file_bytes {
                        refused = Some(format!("the file is larger than {}", mib(limits.max_file_bytes)));
                        continue;
                    }
                    if head.len() < HEAD {
                        let take = (HEAD - head.len()).min(chunk.len());
                        head.extend_from_slice(&chunk[..take]);
                    }
                    out.write_all(&chunk).await.map_err(AppError::internal)?;
                }
                out.flush().await.map_err(AppError::internal)?;
                let original_name = crate::fileops::storable_filename(&original);
                match refused {
                    Some(reason) => problems.push(FileProblem { name: original_name, reason }),
                    None => files.push(IncomingFile { original_name, path, size, head }),
                }
            }
            _ => {
                text_fields += 1;
                if text_fields > MAX_TEXT_FIELDS {
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
                fields.entry(name).or_default().push(value);
            }
        }
    }
    Ok(SpooledForm { fields, files, problems, _dir: dir })
}

fn bad_form(err: actix_multipart::MultipartError) -> AppError {
    tracing::info!(error = %err, "unreadable multipart upload");
    AppError::BadRequest("The upload could not be read (was it interrupted?). Please try again.".into())
}
