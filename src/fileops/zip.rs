//! The ZIP of an assay's stored files, streamed: objects are read from storage and written
//! into the archive chunk by chunk on a blocking thread, and the archive leaves through a
//! bounded channel. Neither a whole file nor the whole ZIP is ever held in memory.
//!
//! Layout (the same on SQLite and PostgreSQL; plain queries, ordering done here):
//! ```text
//! README.txt      what this is
//! index.csv       one row per (question, file) link: which file helped answer which question
//! manifest.csv    one row per file: path, original name, type, size, SHA-256, upload time
//! files/NAME      each available file once, under a safe, de-duplicated name
//! errors.txt      only if some object could not be read
//! ```
//! Files are "stored" (not compressed): documents are mostly compressed already, and it keeps
//! the archive as fast as the storage.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use bytes::{Bytes, BytesMut};
use diesel::prelude::*;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use crate::db::DbConn;
use crate::db::models::{AnswerCitation, Assay, FileAsset, FileAssetId, LinkLabel, Which};
use crate::db::schema::{answer_files, answers, questions, sections, subsections};
use crate::storage::{ByteStream, ObjectStore, Store};

/// One file in the archive.
#[derive(Clone, Debug)]
pub struct ZipEntry {
    pub asset: FileAsset,
    /// `files/<safe name>`.
    pub path: String,
    /// Every answer that links the file, in template order.
    pub questions: Vec<ZipLink>,
}

/// What goes into an assay's archive, decided before any byte is sent.
#[derive(Clone, Debug)]
pub struct AssayZip {
    pub assay_id: i32,
    pub assay_title: String,
    pub entries: Vec<ZipEntry>,
}

impl AssayZip {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A safe download name for the archive.
    pub fn file_name(&self) -> String {
        let stem = crate::filenames::zip_entry(&self.assay_title).replace(' ', "_");
        format!("assay-{}-{}-files.zip", self.assay_id, stem.chars().take(60).collect::<String>())
    }
}

/// A file's link to a question's answer: why (`cited` / `context`) and, when cited, where.
#[derive(Clone, Debug, PartialEq)]
pub struct ZipLink {
    pub subsection: String,
    pub question: String,
    pub label: String,
    /// The locations of the verified citations of the file in this answer.
    pub cited_at: Vec<String>,
}

#[derive(Queryable)]
struct LinkRow {
    file_id: FileAssetId,
    answer_id: i32,
    subsection: String,
    question: String,
    label: Option<String>,
}

/// Decide what goes into the assay's archive: its available files — those linked to its
/// answers and those uploaded for it but not linked yet — with the questions each is linked
/// to. Nothing is read from storage yet.
#[doc(alias = "download_assay_files")]
pub fn plan_assay_zip(conn: &mut DbConn, assay_id: i32) -> QueryResult<AssayZip> {
    let assay = Assay::find(conn, assay_id)?;
    let links: Vec<LinkRow> = answer_files::table
        .inner_join(
            answers::table.inner_join(questions::table.inner_join(subsections::table.inner_join(sections::table))),
        )
        .filter(answers::assay_id.eq(assay_id))
        .order((sections::position, subsections::position, questions::position))
        .select((
            answer_files::file_id,
            answer_files::answer_id,
            subsections::title,
            questions::text,
            answer_files::label,
        ))
        .load(conn)?;
    let answer_ids: Vec<i32> = links.iter().map(|l| l.answer_id).collect();
    let mut cited_at: BTreeMap<(i32, FileAssetId), Vec<String>> = BTreeMap::new();
    for c in AnswerCitation::of_answers(conn, &answer_ids)? {
        if let (Some(file), true) = (c.file_id.clone(), c.verified) {
            cited_at.entry((c.answer_id, file)).or_default().push(c.location().describe());
        }
    }
    let assets = FileAsset::of_assay(conn, assay_id, Which::Available)?;
    let mut by_file: BTreeMap<FileAssetId, Vec<ZipLink>> = BTreeMap::new();
    for link in links {
        let mut places = cited_at.remove(&(link.answer_id, link.file_id.clone())).unwrap_or_default();
        places.dedup();
        let label = link.label.unwrap_or_else(|| LinkLabel::Context.as_str().to_owned());
        let entry = ZipLink { subsection: link.subsection, question: link.question, label, cited_at: places };
        by_file.entry(link.file_id).or_default().push(entry);
    }
    let mut taken = HashSet::new();
    let entries = assets
        .into_iter()
        .map(|asset| {
            let name = unique_name(&crate::filenames::zip_entry(&asset.original_filename), &mut taken);
            ZipEntry { path: format!("files/{name}"), questions: by_file.remove(&asset.id).unwrap_or_default(), asset }
        })
        .collect();
    Ok(AssayZip { assay_id, assay_title: assay.title, entries })
}

/// `name`, or `stem (2).ext`, `stem (3).ext`, … — unique ignoring case.
fn unique_name(name: &str, taken: &mut HashSet<String>) -> String {
    let (stem, ext) = crate::filenames::split_extension(name);
    let mut candidate = name.to_owned();
    let mut n = 1;
    while !taken.insert(candidate.to_lowercase()) {
        n += 1;
        candidate = format!("{stem} ({n}){ext}");
    }
    candidate
}

/// One CSV field: quoted, and defused if a spreadsheet would read it as a formula.
fn csv_field(value: &str) -> String {
    let value =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// One CSV line (CRLF-terminated) of safely quoted fields.
pub fn csv_row(fields: &[&str]) -> String {
    let mut row = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    row.push_str("\r\n");
    row
}

fn index_csv(plan: &AssayZip) -> String {
    let mut out = csv_row(&["subsection", "question", "file", "label", "cited_at"]);
    for entry in &plan.entries {
        for link in &entry.questions {
            let cited_at = link.cited_at.join("; ");
            out.push_str(&csv_row(&[&link.subsection, &link.question, &entry.path, &link.label, &cited_at]));
        }
        if entry.questions.is_empty() {
            out.push_str(&csv_row(&["", "(not linked to an answer yet)", &entry.path, "", ""]));
        }
    }
    out
}

fn manifest_csv(plan: &AssayZip) -> String {
    let mut out =
        csv_row(&["file", "original_filename", "content_type", "size_bytes", "sha256", "uploaded_at", "file_asset_id"]);
    for e in &plan.entries {
        let a = &e.asset;
        out.push_str(&csv_row(&[
            &e.path,
            &a.original_filename,
            &a.content_type,
            &a.size_bytes.to_string(),
            &a.sha256,
            &a.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            a.id.as_str(),
        ]));
    }
    out
}

fn readme(plan: &AssayZip) -> String {
    format!(
        "Files of assay {} \"{}\" kept with the uploader's consent for improving ToxTempAssistant.\r\n\
         index.csv: which file each question's answer was drafted from; label cited = the answer cites\r\n\
         a passage of the file (cited_at says where), context = the file was part of the run.\r\n\
         manifest.csv: one row per file with its SHA-256; files/: the documents.\r\n",
        plan.assay_id, plan.assay_title
    )
}

/// Called with each file once its entry is complete in the archive and handed on (see
/// [`write_assay_zip`]): the place to record that it was downloaded.
pub type OnStreamed = Box<dyn FnMut(&FileAsset) + Send>;

/// Write the archive to `out`. Blocking: run it on a blocking thread; `runtime` is used to
/// read the objects from `store`. `on_streamed` hears of each file only after its entry,
/// data descriptor included, has been written and `out` flushed: a file that could not be
/// read, or whose entry a cancelled download never finished, is not reported.
pub fn write_assay_zip(
    plan: &AssayZip,
    store: &dyn ObjectStore,
    out: impl Write,
    runtime: &tokio::runtime::Handle,
    mut on_streamed: OnStreamed,
) -> anyhow::Result<()> {
    let mut zip = zip::ZipWriter::new_stream(out);
    let small = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, body) in
        [("README.txt", readme(plan)), ("index.csv", index_csv(plan)), ("manifest.csv", manifest_csv(plan))]
    {
        zip.start_file(name, small)?;
        zip.write_all(body.as_bytes())?;
    }
    let mut errors = Vec::new();
    // A stream-mode entry is complete (its data descriptor written) only when the next entry
    // starts or the archive finishes: each file is reported one step later.
    let mut unreported: Option<&FileAsset> = None;
    let mut report = |zip: &mut zip::ZipWriter<_>, unreported: &mut Option<&FileAsset>| -> io::Result<()> {
        if let Some(asset) = unreported.take() {
            zip.flush()?;
            on_streamed(asset);
        }
        Ok(())
    };
    for entry in &plan.entries {
        let asset = &entry.asset;
        if asset.bucket != store.bucket() {
            errors.push(format!("{}: stored in bucket {:?}, not the configured one", entry.path, asset.bucket));
            continue;
        }
        let stream: ByteStream = match runtime.block_on(store.get_stream(&asset.object_key)) {
            Ok(s) => s,
            Err(err) => {
                tracing::error!(file = %asset.id, error = %err, "object missing from the assay ZIP");
                errors.push(format!("{}: could not be read from storage", entry.path));
                continue;
            }
        };
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(asset.size_bytes >= u32::MAX as i64);
        zip.start_file(entry.path.as_str(), options)?;
        report(&mut zip, &mut unreported)?;
        let mut reader = SyncIoBridge::new_with_handle(StreamReader::new(stream), runtime.clone());
        let digest = super::upload::copy_hashing(&mut reader, &mut zip)?;
        if digest != asset.sha256 {
            tracing::error!(file = %asset.id, expected = %asset.sha256, got = %digest, "stored object does not match its SHA-256");
            errors.push(format!("{}: content does not match the recorded SHA-256", entry.path));
        }
        unreported = Some(asset);
    }
    if !errors.is_empty() {
        zip.start_file("errors.txt", small)?;
        zip.write_all(errors.join("\r\n").as_bytes())?;
    }
    let mut out = zip.finish()?.into_inner();
    out.flush()?;
    if let Some(asset) = unreported {
        on_streamed(asset);
    }
    Ok(())
}

/// Sends what is written, in 256 KiB chunks, into a bounded channel (backpressure: the
/// writer waits while the client is slow; it stops when the client goes away).
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
}

const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "download cancelled"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The archive as a stream of chunks, produced on a blocking thread while it is consumed.
pub fn stream_assay_zip(plan: AssayZip, store: Store, on_streamed: OnStreamed) -> ByteStream {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let runtime = tokio::runtime::Handle::current();
    let error_tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter { tx, buf: BytesMut::with_capacity(CHUNK) };
        if let Err(err) = write_assay_zip(&plan, store.as_ref(), writer, &runtime, on_streamed) {
            tracing::warn!(assay = plan.assay_id, error = %err, "assay ZIP stopped");
            let _ = error_tx.blocking_send(Err(io::Error::other("the archive could not be completed")));
        }
    });
    Box::pin(tokio_stream_from(rx))
}

fn tokio_stream_from(mut rx: mpsc::Receiver<io::Result<Bytes>>) -> impl futures_util::Stream<Item = io::Result<Bytes>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_get_numbers_ignoring_case() {
        let mut taken = HashSet::new();
        assert_eq!(unique_name("a.pdf", &mut taken), "a.pdf");
        assert_eq!(unique_name("A.pdf", &mut taken), "A (2).pdf");
        assert_eq!(unique_name("a.pdf", &mut taken), "a (3).pdf");
        assert_eq!(unique_name("noext", &mut taken), "noext");
        assert_eq!(unique_name("noext", &mut taken), "noext (2)");
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    }
}
