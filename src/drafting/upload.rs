//! The documents of one submission as they arrived (spooled to local files, never held in
//! memory), and the checks they must pass before anything is stored or started: type by
//! extension *and* content, emptiness, size, count and total.

use std::path::PathBuf;

use tokio::io::AsyncReadExt;

use crate::config::UploadLimits;
use crate::db::models::FileAsset;
use crate::ingest::DocumentKind;

/// How many leading bytes are kept for content sniffing.
pub const HEAD_BYTES: usize = 8192;

/// An uploaded file, already on local disk.
#[derive(Clone, Debug)]
pub struct IncomingFile {
    pub original_name: String,
    pub path: PathBuf,
    pub size: u64,
    /// Up to the first [`HEAD_BYTES`], for content sniffing.
    pub head: Vec<u8>,
}

impl IncomingFile {
    /// A file that is on disk already (the `process` command): its size and first bytes.
    pub async fn from_path(path: PathBuf, original_name: String) -> std::io::Result<Self> {
        let mut file = tokio::fs::File::open(&path).await?;
        let size = file.metadata().await?.len();
        let mut head = Vec::with_capacity(HEAD_BYTES);
        (&mut file).take(HEAD_BYTES as u64).read_to_end(&mut head).await?;
        Ok(Self { original_name, path, size, head })
    }
}

/// The documents of one submission. When they were spooled for it, the spool directory is
/// removed when this is dropped — after the submission has finished with them.
#[derive(Default)]
pub struct Upload {
    pub files: Vec<IncomingFile>,
    /// Files refused while they arrived (too large); their bytes were not kept.
    pub refused: Vec<FileProblem>,
    spool: Option<tempfile::TempDir>,
    /// Files stored while the form still arrived (consent came before them), by index in
    /// `files`. A submission takes them; whatever is left when the upload is dropped (the
    /// submission was refused) is deleted again.
    early: Vec<(usize, EarlyFile)>,
    early_store: Option<EarlyStore>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("files", &self.files).field("refused", &self.refused).finish_non_exhaustive()
    }
}

/// The storing of one file that began while it arrived.
pub type EarlyFile = tokio::task::JoinHandle<anyhow::Result<FileAsset>>;

impl Upload {
    /// Files spooled into `spool`, which goes away with the upload.
    pub fn spooled(files: Vec<IncomingFile>, refused: Vec<FileProblem>, spool: tempfile::TempDir) -> Self {
        Self { files, refused, spool: Some(spool), early: Vec::new(), early_store: None }
    }

    /// Files that live elsewhere (and stay there).
    pub fn of_files(files: Vec<IncomingFile>) -> Self {
        Self { files, refused: Vec::new(), spool: None, early: Vec::new(), early_store: None }
    }

    /// These files (by index) were stored while they arrived, by `store`.
    pub fn with_early(mut self, early: Vec<(usize, EarlyFile)>, store: Option<EarlyStore>) -> Self {
        self.early = early;
        self.early_store = store;
        self
    }

    pub fn is_spooled(&self) -> bool {
        self.spool.is_some()
    }

    /// Take the storing of the files that began early (the submission now answers for them).
    pub fn take_early(&mut self) -> Vec<(usize, EarlyFile)> {
        std::mem::take(&mut self.early)
    }

    /// The submission was refused: delete what was stored while it arrived, before answering.
    pub async fn discard_early(&mut self) {
        let early = self.take_early();
        if let Some(store) = &self.early_store {
            discard_early(store, early).await;
        }
    }
}

/// Wait for these storings to end and delete what they stored.
async fn discard_early(store: &EarlyStore, early: Vec<(usize, EarlyFile)>) {
    let mut stored = Vec::new();
    for (_, handle) in early {
        if let Ok(Ok(asset)) = handle.await {
            stored.push(asset);
        }
    }
    crate::fileops::discard(&store.pool, store.store.as_ref(), &stored).await;
}

impl Drop for Upload {
    /// A refused submission leaves nothing behind: files stored while it arrived are deleted
    /// once their storing has ended (a task, since dropping cannot wait).
    fn drop(&mut self) {
        let early = std::mem::take(&mut self.early);
        let Some(store) = self.early_store.take().filter(|_| !early.is_empty()) else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move { discard_early(&store, early).await });
    }
}

/// Stores files while they arrive, before the rest of the form is known: as `pending` files
/// of no assay yet (the submission attaches them when it schedules the run, or discards them).
#[derive(Clone)]
pub struct EarlyStore {
    pool: crate::db::Pool,
    store: crate::storage::Store,
}

/// Chunks of a file on their way to storage.
pub type ChunkSender = tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>;

impl EarlyStore {
    pub fn new(ctx: &crate::context::AppContext) -> Self {
        Self { pool: ctx.pool.clone(), store: ctx.store.clone() }
    }

    /// Begin storing a file: feed its bytes (first to last) into the sender, then drop it;
    /// an `Err` item aborts the storing (nothing is kept).
    pub fn start(&self, original_name: String, kind: DocumentKind, uploaded_by: i32) -> (ChunkSender, EarlyFile) {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
        let (pool, store) = (self.pool.clone(), self.store.clone());
        let handle = tokio::spawn(async move {
            let mut chunks = tokio_stream_of(rx);
            let body: &mut crate::storage::SourceStream<'_> = &mut chunks;
            let meta = crate::fileops::UploadMeta {
                original_filename: &original_name,
                content_type: kind.content_type(),
                uploaded_by: Some(uploaded_by),
                assay_id: None,
                for_a_run: true,
            };
            Ok(crate::fileops::upload_file(&pool, store.as_ref(), body, meta).await?)
        });
        (tx, handle)
    }
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + Unpin {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// What is wrong with a file (or with the set of files): the web layer picks the HTTP status
/// from it, people read the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    NoFiles,
    TooMany,
    TotalTooLarge,
    TooLarge,
    Unsupported,
    WrongContent,
    Empty,
}

/// Why one file (or the set, when `name` is empty) was refused.
#[derive(Clone, Debug, PartialEq)]
pub struct FileProblem {
    pub name: String,
    pub kind: ProblemKind,
    pub reason: String,
}

impl FileProblem {
    pub fn new(name: impl Into<String>, kind: ProblemKind, reason: impl Into<String>) -> Self {
        Self { name: name.into(), kind, reason: reason.into() }
    }

    /// A file cut off while it arrived because it is larger than the limit.
    pub fn too_large(name: impl Into<String>, limits: &UploadLimits) -> Self {
        Self::new(name, ProblemKind::TooLarge, format!("the file is larger than {}", mib(limits.max_file_bytes)))
    }
}

/// A file that passed the checks, with its kind.
#[derive(Clone, Debug)]
pub struct CheckedFile {
    pub file: IncomingFile,
    pub kind: DocumentKind,
}

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// Check every file and the set. All problems are reported, not just the first.
pub fn check_files(upload: &Upload, limits: &UploadLimits) -> Result<Vec<CheckedFile>, Vec<FileProblem>> {
    let files = &upload.files;
    let mut problems = upload.refused.clone();
    let count = files.len() + upload.refused.len();
    if count == 0 {
        problems.push(FileProblem::new("", ProblemKind::NoFiles, "Please choose at least one document."));
    }
    if count > limits.max_files {
        let reason = format!("At most {} files can be uploaded at once; {count} were chosen.", limits.max_files);
        problems.push(FileProblem::new("", ProblemKind::TooMany, reason));
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total > limits.max_total_bytes {
        let reason = format!(
            "The files add up to {}; at most {} can be uploaded at once.",
            mib(total),
            mib(limits.max_total_bytes)
        );
        problems.push(FileProblem::new("", ProblemKind::TotalTooLarge, reason));
    }
    let mut checked = Vec::new();
    for file in files {
        match check_one(file, limits) {
            Ok(kind) => checked.push(CheckedFile { file: file.clone(), kind }),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() { Ok(checked) } else { Err(problems) }
}

fn check_one(file: &IncomingFile, limits: &UploadLimits) -> Result<DocumentKind, FileProblem> {
    let problem = |kind, reason: String| FileProblem::new(file.original_name.clone(), kind, reason);
    let Some(kind) = DocumentKind::from_filename(&file.original_name) else {
        return Err(problem(
            ProblemKind::Unsupported,
            "this file type is not supported (use PDF, DOCX, TXT, MD, HTML, JSON, CSV, XLSX, XLS, PPTX or an image)"
                .into(),
        ));
    };
    if file.size == 0 {
        Err(problem(ProblemKind::Empty, "the file is empty".into()))
    } else if file.size > limits.max_file_bytes {
        Err(FileProblem::too_large(file.original_name.clone(), limits))
    } else if !kind.matches_content(&file.head) {
        Err(problem(
            ProblemKind::WrongContent,
            format!("the content is not a valid {} file", kind.as_str().to_uppercase()),
        ))
    } else {
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, head: &[u8], size: u64) -> IncomingFile {
        IncomingFile { original_name: name.into(), path: PathBuf::from("/nonexistent"), size, head: head.to_vec() }
    }

    #[test]
    fn every_problem_is_reported_with_its_kind() {
        let limits = UploadLimits { max_files: 3, max_file_bytes: 100, ..UploadLimits::default() };
        let upload = Upload::of_files(vec![
            file("ok.txt", b"fine", 4),
            file("virus.exe", b"MZ", 2),
            file("fake.pdf", b"hello", 5),
            file("empty.txt", b"", 0),
            file("big.txt", b"x", 101),
        ]);
        let problems = check_files(&upload, &limits).unwrap_err();
        let kinds: Vec<ProblemKind> = problems.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                ProblemKind::TooMany,
                ProblemKind::Unsupported,
                ProblemKind::WrongContent,
                ProblemKind::Empty,
                ProblemKind::TooLarge
            ]
        );
        assert_eq!(problems[1].name, "virus.exe");
        assert!(check_files(&Upload::default(), &limits).unwrap_err()[0].kind == ProblemKind::NoFiles);
        let good = check_files(&Upload::of_files(vec![file("a.pdf", b"%PDF-1.7", 8)]), &limits).unwrap();
        assert_eq!(good[0].kind, DocumentKind::Pdf);
    }
}
