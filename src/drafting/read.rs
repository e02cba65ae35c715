//! Reading documents for a run: kept files come back from storage (SHA-256 checked, and only
//! while they are `available`), and every run keeps whole passages, in document order, up to
//! what the model reads at once — documents past that budget are not read at all.

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::context::AppContext;
use crate::db::models::{FileAsset, FileAssetStatus};
use crate::ingest::{DocumentKind, Extracted, Passage};

/// Why a kept file gave no text to a run; `Display` says it for people.
#[derive(Debug, thiserror::Error)]
pub enum ReadProblem {
    #[error("{0} was withdrawn or deleted; it was left out.")]
    NotAvailable(String),
    #[error("{0} is not a document that is read for answers; it was left out.")]
    NotADocument(String),
    #[error("{0} no longer matches its SHA-256 in storage; it was left out.")]
    Changed(String),
    #[error("{0} could not be read from storage; it was left out.")]
    Storage(String),
    #[error("{0}: no text could be found in this file (is it a scan?).")]
    NoText(String),
    #[error("{0}: {1}; it was left out.")]
    Unreadable(String, String),
}

/// The text of a kept file, read back from storage. The file's status is checked right
/// before it is read: a withdrawn file is never read again.
pub async fn read_kept(ctx: &AppContext, file: &FileAsset) -> Result<Extracted, ReadProblem> {
    let name = file.shown_name().to_owned();
    let id = file.id.clone();
    let status = ctx.db(move |c| Ok::<_, anyhow::Error>(FileAsset::find(c, &id)?.status)).await;
    if !matches!(status, Ok(FileAssetStatus::Available)) {
        return Err(ReadProblem::NotAvailable(name));
    }
    let kind = DocumentKind::from_filename(&file.original_filename)
        .filter(|k| !k.is_image())
        .ok_or_else(|| ReadProblem::NotADocument(name.clone()))?;
    let path = match download(ctx, file).await {
        Ok(Some(path)) => path,
        Ok(None) => return Err(ReadProblem::Changed(name)),
        Err(err) => {
            tracing::error!(file = %file.id, error = %err, "reading a kept file back failed");
            return Err(ReadProblem::Storage(name));
        }
    };
    match ctx.extractor.extract(&path, kind).await {
        Ok(text) if text.is_empty() => Err(ReadProblem::NoText(name)),
        Ok(text) => Ok(text),
        Err(err) => Err(ReadProblem::Unreadable(name, err.to_string())),
    }
}

/// The object in a temporary file, or `None` when its bytes do not match its SHA-256.
async fn download(ctx: &AppContext, file: &FileAsset) -> anyhow::Result<Option<tempfile::TempPath>> {
    use futures_util::StreamExt;
    let dir = ctx.config.spool_dir();
    tokio::fs::create_dir_all(&dir).await?;
    let path = tempfile::NamedTempFile::new_in(&dir)?.into_temp_path();
    let mut out = tokio::fs::File::create(&path).await?;
    let mut stream = ctx.store.get_stream(&file.object_key).await?;
    let mut hash = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hash.update(&chunk);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok((hex::encode(hash.finalize()) == file.sha256).then_some(path))
}

/// What the model reads at once, spent document by document in order.
#[derive(Debug)]
pub struct Budget {
    total: usize,
    left: usize,
    /// Documents not read whole because the budget ran out.
    cut: Vec<String>,
    /// Characters of every passage offered, kept or not (the context-window estimate).
    offered: usize,
    /// Some document was not read at all (it is larger than `offered` says).
    skipped: bool,
}

impl Budget {
    pub fn new(chars: usize) -> Self {
        Self { total: chars, left: chars, cut: Vec::new(), offered: 0, skipped: false }
    }

    /// Characters of the documents read so far, whether they fitted or not.
    pub fn offered_chars(&self) -> usize {
        self.offered
    }

    /// Every document was read (none skipped because the budget ran out).
    pub fn all_read(&self) -> bool {
        !self.skipped
    }

    /// Nothing more fits: further documents need not be read.
    pub fn is_spent(&self) -> bool {
        self.left == 0
    }

    /// The whole passages of `name` that still fit (a passage too long for what is left is
    /// skipped, a later shorter one may still fit).
    pub fn take(&mut self, name: &str, mut passages: Vec<Passage>) -> Vec<Passage> {
        let before = passages.len();
        passages.retain(|p| {
            let len = p.text.chars().count();
            self.offered += len;
            let keep = len <= self.left;
            self.left = if keep { self.left - len } else { 0 };
            keep
        });
        if passages.len() < before {
            self.cut.push(name.to_owned());
        }
        passages
    }

    /// A document left unread because nothing more fitted.
    pub fn skip(&mut self, name: &str) {
        self.skipped = true;
        self.cut.push(name.to_owned());
    }

    /// What the person should know, if anything was cut.
    pub fn note(&self) -> Option<String> {
        (!self.cut.is_empty()).then(|| {
            format!(
                "The documents are longer than the language model can read at once ({} characters): answers may \
                 miss details from {}.",
                self.total,
                self.cut.join(", ")
            )
        })
    }
}
