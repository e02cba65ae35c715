//! Benchmark sets: cases (an assay's documents and its gold answers) frozen from kept data,
//! or imported from a folder.
//!
//! - **From kept data**: assays whose kept files are still available. Freezing copies the
//!   gold answers — the owner's *accepted* answers at that moment, so later edits do not move
//!   the target — and refers to the FileAssets (no copy of the documents).
//! - **From a folder**: documents and a `gold.json` in our own export format (the JSON the
//!   answer page exports), so a ToxTemp filled by hand can serve as gold; a folder of
//!   sub-folders is one case each. The documents are stored like uploads (SHA-256, FileAsset).
//! - **Out of scope** (negative control): the documents do not describe the method and every
//!   answer should abstain; no gold answers are needed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use diesel::prelude::*;
use serde::Deserialize;

use crate::context::AppContext;
use crate::db::models::{AnswerCitation, Assay, BenchmarkItem, BenchmarkSet, FileAsset, QuestionSet, Which};
use crate::db::schema::{answers, assays, file_assets, investigations, persons, studies};
use crate::db::{DbConn, write_transaction};
use crate::fileops::{self, UploadMeta};
use crate::ingest::DocumentKind;
use crate::storage::SourceStream;

/// Why a set (or a run) cannot be made; the text is for people. `Internal` is logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<crate::db::Unavailable> for SetError {
    fn from(err: crate::db::Unavailable) -> Self {
        Self::Internal(err.into())
    }
}

impl From<diesel::result::Error> for SetError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Internal(err.into())
    }
}

fn invalid<T>(message: impl Into<String>) -> Result<T, SetError> {
    Err(SetError::Invalid(message.into()))
}

/// What every new set says about itself.
#[derive(Clone, Debug)]
pub struct NewSet {
    pub name: String,
    pub description: String,
    pub out_of_scope: bool,
    pub created_by: Option<i32>,
}

impl NewSet {
    fn check(&self) -> Result<(), SetError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return invalid("Please name the set (at most 200 characters).");
        }
        if self.description.chars().count() > 2000 {
            return invalid("The description is too long (at most 2000 characters).");
        }
        Ok(())
    }
}

/// An assay that could become a case: it has kept documents.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub assay_id: i32,
    pub title: String,
    pub owner: String,
    pub question_set_id: Option<i32>,
    pub files: i64,
    pub accepted: i64,
}

/// Assays with available kept files, newest first, with their accepted answers counted.
pub fn candidates(conn: &mut DbConn) -> QueryResult<Vec<Candidate>> {
    use diesel::dsl::count_star;
    let files: HashMap<i32, i64> = file_assets::table
        .filter(file_assets::status.eq(crate::db::models::FileAssetStatus::Available))
        .filter(file_assets::assay_id.is_not_null())
        .group_by(file_assets::assay_id)
        .select((file_assets::assay_id.assume_not_null(), count_star()))
        .load::<(i32, i64)>(conn)?
        .into_iter()
        .collect();
    let ids: Vec<i32> = files.keys().copied().collect();
    let accepted: HashMap<i32, i64> = answers::table
        .filter(answers::assay_id.eq_any(&ids))
        .filter(answers::accepted.eq(true))
        .group_by(answers::assay_id)
        .select((answers::assay_id, count_star()))
        .load::<(i32, i64)>(conn)?
        .into_iter()
        .collect();
    let rows: Vec<(i32, String, Option<i32>, String)> = assays::table
        .inner_join(studies::table.inner_join(investigations::table.inner_join(persons::table)))
        .filter(assays::id.eq_any(&ids))
        .order(assays::id.desc())
        .select((assays::id, assays::title, assays::question_set_id, persons::email))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(assay_id, title, question_set_id, owner)| Candidate {
            files: files.get(&assay_id).copied().unwrap_or(0),
            accepted: accepted.get(&assay_id).copied().unwrap_or(0),
            assay_id,
            title,
            owner,
            question_set_id,
        })
        .collect())
}

/// Freeze a set from these assays (see the module documentation).
pub async fn freeze_from_assays(ctx: &AppContext, new: NewSet, assays: Vec<i32>) -> Result<BenchmarkSet, SetError> {
    new.check()?;
    let mut unique = Vec::new();
    for id in assays {
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    if unique.is_empty() {
        return invalid("Choose at least one assay.");
    }
    ctx.db(move |c| write_transaction(c, |c| freeze(c, &new, &unique))).await
}

/// One assay as a case, checked.
struct Case {
    assay: Assay,
    files: Vec<FileAsset>,
    gold: Vec<(i32, String, Vec<String>)>,
}

fn freeze(c: &mut DbConn, new: &NewSet, ids: &[i32]) -> Result<BenchmarkSet, SetError> {
    let mut question_set = None;
    let mut cases = Vec::new();
    for &id in ids {
        let Some(assay) = Assay::find(c, id).optional()? else { return invalid(format!("Assay {id} does not exist.")) };
        let Some(set_id) = assay.question_set_id else {
            return invalid(format!("“{}” has no question set.", assay.title));
        };
        if question_set.is_some_and(|q| q != set_id) {
            return invalid("All assays of a set must use the same question set.");
        }
        question_set = Some(set_id);
        let files = FileAsset::of_assay(c, id, Which::Available)?;
        if files.is_empty() {
            return invalid(format!(
                "“{}” has no kept documents (none were shared, or consent was withdrawn).",
                assay.title
            ));
        }
        let gold = if new.out_of_scope { Vec::new() } else { accepted_answers(c, id)? };
        if !new.out_of_scope && gold.is_empty() {
            return invalid(format!("“{}” has no accepted answers to serve as gold.", assay.title));
        }
        cases.push(Case { assay, files, gold });
    }
    let question_set = question_set.unwrap_or_default();
    let set = BenchmarkSet::create(
        c,
        new.name.trim(),
        new.description.trim(),
        new.out_of_scope,
        question_set,
        new.created_by,
    )?;
    for (i, case) in cases.iter().enumerate() {
        let item = BenchmarkItem::create(
            c,
            set.id,
            i as i32 + 1,
            &case.assay.title,
            &case.assay.description,
            Some(case.assay.id),
        )?;
        for file in &case.files {
            BenchmarkItem::add_file(c, item.id, &file.id)?;
        }
        for (question, text, cited) in &case.gold {
            BenchmarkItem::add_gold(c, item.id, *question, text, cited)?;
        }
    }
    Ok(set)
}

/// The assay's accepted answers: (question, text, names of the documents its verified
/// citations come from).
fn accepted_answers(c: &mut DbConn, assay_id: i32) -> QueryResult<Vec<(i32, String, Vec<String>)>> {
    let rows: Vec<(i32, i32, String)> = answers::table
        .filter(answers::assay_id.eq(assay_id))
        .filter(answers::accepted.eq(true))
        .order(answers::question_id)
        .select((answers::id, answers::question_id, answers::text))
        .load(c)?;
    let ids: Vec<i32> = rows.iter().map(|r| r.0).collect();
    let citations = AnswerCitation::of_answers(c, &ids)?;
    Ok(rows
        .into_iter()
        .map(|(answer, question, text)| {
            let mut cited: Vec<String> = Vec::new();
            for citation in citations.iter().filter(|x| x.answer_id == answer && x.verified) {
                if !cited.contains(&citation.document_name) {
                    cited.push(citation.document_name.clone());
                }
            }
            (question, text, cited)
        })
        .collect())
}

/// A folder to import as a set.
#[derive(Clone, Debug)]
pub struct FolderImport {
    pub new: NewSet,
    pub dir: PathBuf,
    pub question_set_id: i32,
}

/// The gold file's name in a case folder.
pub const GOLD_FILE: &str = "gold.json";
const MAX_GOLD_BYTES: u64 = 16 * 1024 * 1024;

/// A case folder as read from disk, before anything is stored.
struct FolderCase {
    title: String,
    scope: String,
    documents: Vec<(String, PathBuf, DocumentKind)>,
    gold: Vec<(i32, String, Vec<String>)>,
}

/// Import a folder as a set (see the module documentation). Everything is checked before
/// anything is stored; if storing or the database fails, what was stored is taken back.
pub async fn import_folder(ctx: &AppContext, import: FolderImport) -> Result<BenchmarkSet, SetError> {
    import.new.check()?;
    let set_id = import.question_set_id;
    let questions = ctx.db(move |c| Ok::<_, SetError>(question_index(c, set_id)?)).await?;
    let mut cases = Vec::new();
    for dir in case_dirs(&import.dir)? {
        cases.push(read_case(&dir, &questions, import.new.out_of_scope, ctx.config.upload_limits.max_file_bytes)?);
    }
    let mut stored: Vec<Vec<FileAsset>> = Vec::new();
    for case in &cases {
        let mut files = Vec::new();
        for (name, path, kind) in &case.documents {
            match store(ctx, name, path, *kind, import.new.created_by).await {
                Ok(asset) => files.push(asset),
                Err(err) => {
                    fileops::discard(&ctx.pool, ctx.store.as_ref(), &files).await;
                    for earlier in &stored {
                        fileops::discard(&ctx.pool, ctx.store.as_ref(), earlier).await;
                    }
                    return Err(err);
                }
            }
        }
        stored.push(files);
    }
    let (new, for_rows) = (import.new.clone(), stored.clone());
    let created = ctx
        .db(move |c| {
            write_transaction(c, |c| {
                let set = BenchmarkSet::create(
                    c,
                    new.name.trim(),
                    new.description.trim(),
                    new.out_of_scope,
                    set_id,
                    new.created_by,
                )?;
                for (i, (case, files)) in cases.iter().zip(&for_rows).enumerate() {
                    let item = BenchmarkItem::create(c, set.id, i as i32 + 1, &case.title, &case.scope, None)?;
                    for file in files {
                        BenchmarkItem::add_file(c, item.id, &file.id)?;
                    }
                    for (question, text, cited) in &case.gold {
                        BenchmarkItem::add_gold(c, item.id, *question, text, cited)?;
                    }
                }
                Ok::<_, SetError>(set)
            })
        })
        .await;
    if created.is_err() {
        for files in &stored {
            fileops::discard(&ctx.pool, ctx.store.as_ref(), files).await;
        }
    }
    created
}

/// (subsection title, question text) → question id, for matching a gold file's questions.
fn question_index(c: &mut DbConn, set_id: i32) -> QueryResult<HashMap<(String, String), i32>> {
    QuestionSet::find(c, set_id)?;
    let subsections: HashMap<i32, String> =
        QuestionSet::subsections(c, set_id)?.into_iter().map(|s| (s.id, s.title)).collect();
    Ok(QuestionSet::questions(c, set_id)?
        .into_iter()
        .map(|q| ((subsections.get(&q.subsection_id).cloned().unwrap_or_default(), q.text), q.id))
        .collect())
}

/// The case folders: the sub-folders of `dir`, or `dir` itself when it has none.
fn case_dirs(dir: &Path) -> Result<Vec<PathBuf>, SetError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SetError::Invalid(format!("The folder {} cannot be read: {e}.", dir.display())))?;
    let mut subdirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    subdirs.sort();
    Ok(if subdirs.is_empty() { vec![dir.to_path_buf()] } else { subdirs })
}

fn read_case(
    dir: &Path,
    questions: &HashMap<(String, String), i32>,
    out_of_scope: bool,
    max_file_bytes: u64,
) -> Result<FolderCase, SetError> {
    let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut documents = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SetError::Invalid(format!("{folder}: cannot be read: {e}.")))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    for path in paths {
        let name = crate::filenames::clean(&path.file_name().unwrap_or_default().to_string_lossy());
        if name == GOLD_FILE || name.starts_with('.') {
            continue;
        }
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let kind = DocumentKind::from_filename(&name)
            .filter(|k| !k.is_image())
            .ok_or_else(|| SetError::Invalid(format!("{folder}/{name}: not a document type we read.")))?;
        let head = read_head(&path)?;
        if size == 0 || size > max_file_bytes || !kind.matches_content(&head) {
            return invalid(format!("{folder}/{name}: empty, too large, or its content is not a {kind:?} file."));
        }
        documents.push((name, path, kind));
    }
    if documents.is_empty() {
        return invalid(format!("{folder}: no documents."));
    }
    let gold_path = dir.join(GOLD_FILE);
    let (mut title, mut scope, mut gold) = (folder.clone(), String::new(), Vec::new());
    if gold_path.is_file() {
        let export = read_gold(&gold_path, &folder)?;
        if !export.assay.title.trim().is_empty() {
            title = export.assay.title.trim().to_owned();
        }
        scope = export.assay.scope;
        for q in export.sections.into_iter().flat_map(|s| s.questions) {
            let Some(answer) = q.answer.filter(|a| q.accepted && !a.trim().is_empty()) else { continue };
            let Some(&id) = questions.get(&(q.subsection.clone(), q.question.clone())) else {
                return invalid(format!(
                    "{folder}/{GOLD_FILE}: the question “{}” ({}) is not in the chosen question set.",
                    q.question, q.subsection
                ));
            };
            let mut cited: Vec<String> = Vec::new();
            for e in q.evidence.into_iter().filter(|e| e.verified) {
                if !cited.contains(&e.document) {
                    cited.push(e.document);
                }
            }
            gold.push((id, answer, cited));
        }
    }
    if !out_of_scope && gold.is_empty() {
        return invalid(format!("{folder}: no accepted answers in {GOLD_FILE} to serve as gold."));
    }
    Ok(FolderCase { title, scope, documents, gold })
}

fn read_head(path: &Path) -> Result<Vec<u8>, SetError> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(crate::drafting::HEAD_BYTES as u64).read_to_end(&mut head))
        .map_err(|e| SetError::Invalid(format!("{} cannot be read: {e}.", path.display())))?;
    Ok(head)
}

/// The parts of our JSON export a gold file needs.
#[derive(Deserialize)]
struct Export {
    #[serde(default)]
    assay: ExportAssay,
    sections: Vec<ExportSection>,
}

#[derive(Default, Deserialize)]
struct ExportAssay {
    #[serde(default)]
    title: String,
    #[serde(default)]
    scope: String,
}

#[derive(Deserialize)]
struct ExportSection {
    questions: Vec<ExportQuestion>,
}

#[derive(Deserialize)]
struct ExportQuestion {
    subsection: String,
    question: String,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    accepted: bool,
    #[serde(default)]
    evidence: Vec<ExportEvidence>,
}

#[derive(Deserialize)]
struct ExportEvidence {
    document: String,
    #[serde(default)]
    verified: bool,
}

fn read_gold(path: &Path, folder: &str) -> Result<Export, SetError> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size > MAX_GOLD_BYTES {
        return invalid(format!("{folder}/{GOLD_FILE} is larger than 16 MiB."));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| SetError::Invalid(format!("{folder}/{GOLD_FILE} cannot be read: {e}.")))?;
    serde_json::from_str(&text)
        .map_err(|e| SetError::Invalid(format!("{folder}/{GOLD_FILE} is not a ToxTempAssistant export: {e}.")))
}

async fn store(
    ctx: &AppContext,
    name: &str,
    path: &Path,
    kind: DocumentKind,
    uploaded_by: Option<i32>,
) -> Result<FileAsset, SetError> {
    let file = tokio::fs::File::open(path).await.map_err(anyhow::Error::from)?;
    let mut stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    let body: &mut SourceStream<'_> = &mut stream;
    let meta = UploadMeta {
        original_filename: name,
        content_type: kind.content_type(),
        uploaded_by,
        assay_id: None,
        for_a_run: false,
    };
    Ok(fileops::upload_file(&ctx.pool, ctx.store.as_ref(), body, meta).await.map_err(anyhow::Error::from)?)
}
