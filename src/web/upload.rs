//! Reading a multipart form as it streams in: text fields into memory (small, bounded), file
//! fields into temp files on disk with their size and first bytes — never a whole file in
//! memory. Limits are enforced while reading, so an oversized upload is cut off early.

use std::collections::HashMap;

use actix_multipart::Multipart;
use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use crate::config::UploadLimits;
use crate::drafting::{
    ChunkSender, EarlyFile, EarlyStore, FileProblem, HEAD_BYTES, IncomingFile, ProblemKind, Upload, mib,
};
use crate::ingest::DocumentKind;

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

/// Storing files while they arrive: when the consent box came (ticked) before them in the
/// form, each file goes to storage as it is received, at the storage's pace, instead of after
/// the whole form was spooled. Refused submissions delete what was stored (see [`Upload`]).
pub struct StoreAsTheyArrive {
    pub store: EarlyStore,
    pub uploader: i32,
    /// The checkbox that says the person consents to keeping their documents.
    pub consent_field: &'static str,
}

impl StoreAsTheyArrive {
    /// For a form with the usual consent box, uploaded by `viewer`.
    pub fn for_form(state: &super::AppState, viewer: &super::viewer::Viewer) -> Option<Self> {
        Some(Self {
            store: EarlyStore::new(&state.ctx),
            uploader: viewer.person.id,
            consent_field: "share_files_for_development",
        })
    }
}

/// Read every field; file fields named `file_field` are spooled below `tmp_root` (and stored
/// at once, with `early`, when consent came first).
pub async fn spool(
    mut form: Multipart,
    file_field: &str,
    limits: &UploadLimits,
    tmp_root: &std::path::Path,
    early: Option<StoreAsTheyArrive>,
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
        early: early.as_ref(),
        stored_early: Vec::new(),
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
    let Spool { fields, files, problems, stored_early, .. } = spool;
    let upload = Upload::spooled(files, problems, dir).with_early(stored_early, early.map(|e| e.store));
    Ok(SpooledForm { fields, upload })
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
    early: Option<&'a StoreAsTheyArrive>,
    /// Files being stored as they arrived, by index in `files`.
    stored_early: Vec<(usize, EarlyFile)>,
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
        // Chunks held back until the first bytes tell whether the file may be stored early.
        let mut held: Vec<bytes::Bytes> = Vec::new();
        let mut early: Option<Early> = None;
        // Settled once the first bytes are in (or at once when the file cannot go early).
        let mut decided = !self.may_store_early(original);
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
                if let Some(sink) = early.take().and_then(|e| e.sink) {
                    // Abort the storing: nothing of this file is kept.
                    let _ = sink.send(Err(std::io::Error::other("refused while arriving"))).await;
                }
                continue;
            }
            let take = HEAD_BYTES.saturating_sub(head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            // A file stored as it arrives is read back from storage by its run: it need not
            // go to disk too (an image does, to be described before the run).
            if early.as_ref().is_none_or(|e| e.spool_too) {
                if out.is_none() {
                    out = Some(tokio::fs::File::create(&path).await.map_err(AppError::internal)?);
                }
                if let Some(out) = out.as_mut() {
                    out.write_all(&chunk).await.map_err(AppError::internal)?;
                }
            }
            if !decided {
                held.push(chunk);
                if head.len() >= HEAD_BYTES {
                    early = self.start_early(original, &head, &mut held).await;
                    decided = true;
                    held.clear();
                }
            } else if let Some(e) = early.as_mut() {
                e.send(chunk).await;
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
        if !refused && !decided && !held.is_empty() {
            // A file shorter than the sniffed head.
            early = self.start_early(original, &head, &mut held).await;
        }
        let original_name = crate::filenames::clean(original);
        if size > limits.max_file_bytes {
            self.problems.push(FileProblem::too_large(original_name, limits));
        } else if refused {
            let _ = tokio::fs::remove_file(&path).await; // the total was exceeded: reported below
        } else {
            if let Some(Early { sink, handle, .. }) = early {
                drop(sink); // the end of the file: the storing completes
                self.stored_early.push((self.files.len(), handle));
            }
            self.files.push(IncomingFile { original_name, path, size, head });
        }
        Ok(())
    }

    /// Whether a file of this name may be stored as it arrives: consent was given before it.
    fn may_store_early(&self, original: &str) -> bool {
        self.early.is_some_and(|early| {
            !original.is_empty() && self.fields.get(early.consent_field).is_some_and(|v| v.iter().any(|v| is_ticked(v)))
        })
    }

    /// Start storing the file if its name and first bytes make it an acceptable document (the
    /// full checks come later; a file refused then is deleted with the rest), and hand it the
    /// chunks held so far.
    async fn start_early(&self, original: &str, head: &[u8], held: &mut Vec<bytes::Bytes>) -> Option<Early> {
        let early = self.early?;
        let name = crate::filenames::clean(original);
        let kind = DocumentKind::from_filename(&name).filter(|k| k.matches_content(head))?;
        let (sink, handle) = early.store.start(name, kind, early.uploader);
        let mut started = Early { sink: Some(sink), handle, spool_too: kind.is_image() };
        for chunk in std::mem::take(held) {
            started.send(chunk).await;
        }
        Some(started)
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

/// A file being stored as it arrives.
struct Early {
    /// Where its bytes go; `None` once the storing failed (the submission hears of it when it
    /// awaits `handle`, and refuses with 503).
    sink: Option<ChunkSender>,
    handle: EarlyFile,
    /// Written to the spool as well (images: described before the run, from the spool).
    spool_too: bool,
}

impl Early {
    async fn send(&mut self, chunk: bytes::Bytes) {
        if let Some(sink) = &self.sink
            && sink.send(Ok(chunk)).await.is_err()
        {
            self.sink = None;
        }
    }
}

fn is_ticked(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "on" | "true" | "1")
}

fn bad_form(err: actix_multipart::MultipartError) -> AppError {
    tracing::info!(error = %err, "unreadable multipart upload");
    AppError::BadRequest("The upload could not be read (was it interrupted?). Please try again.".into())
}
