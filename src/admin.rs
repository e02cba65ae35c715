//! Read models for the staff pages: assay list with file counts, an assay's stored files
//! with their links, all files with orphan marks, one file with everything that happened to
//! it, the download log. Lists are paged (one page is [`PER_PAGE`] rows however many there
//! are), searched and sorted in SQL, by the columns each list names.

use std::collections::HashMap;

use chrono::Duration;
use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::db::models::{
    Assay, FileAsset, FileAssetId, FileAssetStatus, FileAuditEvent, FileDownloadLog, LinkLabel, Which,
};
use crate::db::schema::{
    answer_files, answers, assays, file_assets, file_download_logs, investigations, persons, questions, studies,
};
use crate::db::{DbConn, now};

pub const PER_PAGE: i64 = 50;

diesel::define_sql_function! {
    /// SQL `lower()`: case-insensitive search on both databases (PostgreSQL's LIKE is
    /// case-sensitive; SQLite's `lower` folds ASCII only).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// One page of a list: its rows, its number (from 1) and whether another follows.
#[derive(Clone, Debug)]
pub struct Paged<T> {
    pub rows: Vec<T>,
    pub page: i64,
    pub has_next: bool,
}

impl<T> Paged<T> {
    /// From up to `PER_PAGE + 1` rows loaded for page `page`: the extra row only says that
    /// there is a next page.
    fn from_probe(mut rows: Vec<T>, page: i64) -> Self {
        let has_next = rows.len() as i64 > PER_PAGE;
        rows.truncate(PER_PAGE as usize);
        Self { rows, page, has_next }
    }

    fn map<U>(self, f: impl FnOnce(Vec<T>) -> QueryResult<Vec<U>>) -> QueryResult<Paged<U>> {
        Ok(Paged { rows: f(self.rows)?, page: self.page, has_next: self.has_next })
    }
}

/// How a list is sorted: one of the column keys the list knows, and a direction. In a URL,
/// `sort=name` sorts ascending and `sort=-name` descending; anything unknown is the list's
/// default, so a hand-edited link never fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    pub key: &'static str,
    pub descending: bool,
}

impl Order {
    pub fn parse(requested: Option<&str>, keys: &[&'static str], default: Order) -> Order {
        let Some(raw) = requested else { return default };
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw),
        };
        keys.iter().find(|k| **k == name).map_or(default, |key| Order { key, descending })
    }

    /// The `sort` parameter that asks for this order.
    pub fn param(&self) -> String {
        if self.descending { format!("-{}", self.key) } else { self.key.to_owned() }
    }
}

/// The sortable columns of the assay list, and its default (newest first).
pub const ASSAY_SORTS: &[&str] = &["created", "title", "owner", "status", "updated"];
pub const ASSAY_ORDER: Order = Order { key: "created", descending: true };
/// … of the stored-files list.
pub const FILE_SORTS: &[&str] = &["uploaded", "name", "size", "type", "status"];
pub const FILE_ORDER: Order = Order { key: "uploaded", descending: true };
/// … of the download log.
pub const DOWNLOAD_SORTS: &[&str] = &["when", "file", "who"];
pub const DOWNLOAD_ORDER: Order = Order { key: "when", descending: true };

/// … of the accounts.
pub const ACCOUNT_SORTS: &[&str] = &["email", "name", "created", "login"];
pub const ACCOUNT_ORDER: Order = Order { key: "email", descending: false };

/// `query.order(column)` for the key of `order`, ascending or descending; then `tie` (a
/// unique column) so that pages never overlap.
macro_rules! sorted {
    ($query:expr, $order:expr, tie: $tie:expr, $($key:literal => $column:expr),+ $(,)?) => {
        match ($order.key, $order.descending) {
            $(
                ($key, false) => $query.order(($column.asc(), $tie.asc())),
                ($key, true) => $query.order(($column.desc(), $tie.desc())),
            )+
            _ => $query,
        }
    };
}

/// Page numbers start at 1; anything else (0, negative, absurd) is clamped.
pub fn page_number(requested: Option<i64>) -> i64 {
    requested.unwrap_or(1).clamp(1, 1_000_000)
}

fn offset(page: i64) -> i64 {
    (page - 1) * PER_PAGE
}

/// `%`, `_` and the escape character itself match only themselves.
fn escape_like(needle: &str) -> String {
    needle.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect()
}

/// What a list's search box asks for, lower-cased (the queries compare with `lower()`);
/// `None` for an empty box.
fn needle(search: &str) -> Option<String> {
    Some(search.trim().to_lowercase()).filter(|n| !n.is_empty())
}

/// Contains `needle`.
fn like_pattern(needle: &str) -> String {
    format!("%{}%", escape_like(needle))
}

#[derive(Clone, Debug)]
pub struct AssayRow {
    pub assay: Assay,
    pub owner: String,
    pub answers: i64,
    pub files: i64,
}

/// Assays in `order`, optionally only those whose title or owner email contains `search`
/// (case-insensitive); the search, the sorting and the paging run in SQL.
pub fn assay_list(conn: &mut DbConn, search: &str, order: Order, page: i64) -> QueryResult<Paged<AssayRow>> {
    let query = assays::table
        .inner_join(studies::table.inner_join(investigations::table.inner_join(persons::table)))
        .select((Assay::as_select(), persons::email))
        .limit(PER_PAGE + 1)
        .offset(offset(page))
        .into_boxed();
    let mut query = sorted!(query, order, tie: assays::id,
        "created" => assays::created_at,
        "title" => lower(assays::title),
        "owner" => persons::email,
        "status" => assays::status,
        "updated" => assays::updated_at,
    );
    if let Some(needle) = needle(search) {
        let pattern = like_pattern(&needle);
        query = query.filter(
            lower(assays::title).like(pattern.clone()).escape('\\').or(persons::email.like(pattern).escape('\\')),
        );
    }
    let rows: Vec<(Assay, String)> = query.load(conn)?;
    Paged::from_probe(rows, page).map(|rows| {
        let ids: Vec<i32> = rows.iter().map(|(a, _)| a.id).collect();
        let answer_counts = counts(
            answers::table
                .filter(answers::assay_id.eq_any(&ids))
                .group_by(answers::assay_id)
                .select((answers::assay_id, count_star()))
                .load::<(i32, i64)>(conn)?,
        );
        let file_counts = counts(
            file_assets::table
                .filter(file_assets::assay_id.eq_any(&ids))
                .filter(file_assets::status.eq(FileAssetStatus::Available))
                .group_by(file_assets::assay_id)
                .select((file_assets::assay_id.assume_not_null(), count_star()))
                .load::<(i32, i64)>(conn)?,
        );
        Ok(rows
            .into_iter()
            .map(|(assay, owner)| AssayRow {
                answers: answer_counts.get(&assay.id).copied().unwrap_or(0),
                files: file_counts.get(&assay.id).copied().unwrap_or(0),
                owner,
                assay,
            })
            .collect())
    })
}

fn counts(pairs: Vec<(i32, i64)>) -> HashMap<i32, i64> {
    pairs.into_iter().collect()
}

#[derive(Clone, Debug)]
pub struct FileRow {
    pub asset: FileAsset,
    pub uploader: String,
    /// Answers that cite a passage of the file.
    pub cited_by: usize,
    /// Answers the file was only context for (part of their run, not cited).
    pub context_for: usize,
    /// The answers themselves (cited ones first), for the list that opens on demand.
    pub answers: Vec<LinkedAnswer>,
    pub orphan: bool,
}

/// An answer a file is linked to.
#[derive(Clone, Debug)]
pub struct LinkedAnswer {
    pub assay_id: i32,
    pub question_id: i32,
    /// The question, cut to [`SHORT_QUESTION`] characters.
    pub question: String,
    pub cited: bool,
}

const SHORT_QUESTION: usize = 90;

impl FileRow {
    pub fn linked(&self) -> usize {
        self.cited_by + self.context_for
    }

    /// The first 12 hex digits of the SHA-256: enough to tell files apart on a page.
    pub fn short_sha(&self) -> &str {
        self.asset.sha256.get(..12).unwrap_or(&self.asset.sha256)
    }

    pub fn size(&self) -> String {
        human_size(self.asset.size_bytes)
    }
}

/// 1 234 567 bytes → "1.2 MiB".
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn uploaders(conn: &mut DbConn, assets: &[FileAsset]) -> QueryResult<HashMap<i32, String>> {
    let ids: Vec<i32> = assets.iter().filter_map(|a| a.uploaded_by).collect();
    Ok(persons::table
        .filter(persons::id.eq_any(ids))
        .select((persons::id, persons::email))
        .load::<(i32, String)>(conn)?
        .into_iter()
        .collect())
}

/// The answers each of these files is linked to, cited ones first, in question order.
fn linked_answers(conn: &mut DbConn, ids: &[FileAssetId]) -> QueryResult<HashMap<FileAssetId, Vec<LinkedAnswer>>> {
    let links: Vec<(FileAssetId, Option<String>, i32, i32, String)> = answer_files::table
        .inner_join(answers::table.inner_join(questions::table))
        .filter(answer_files::file_id.eq_any(ids))
        .order(questions::id)
        .select((answer_files::file_id, answer_files::label, answers::assay_id, questions::id, questions::text))
        .load(conn)?;
    let mut by_file: HashMap<FileAssetId, Vec<LinkedAnswer>> = HashMap::new();
    for (file, label, assay_id, question_id, text) in links {
        let cited = label.as_deref() == Some(LinkLabel::Cited.as_str());
        let question = match text.char_indices().nth(SHORT_QUESTION) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        };
        by_file.entry(file).or_default().push(LinkedAnswer { assay_id, question_id, question, cited });
    }
    for answers in by_file.values_mut() {
        answers.sort_by_key(|a| !a.cited);
    }
    Ok(by_file)
}

fn rows(conn: &mut DbConn, assets: Vec<FileAsset>, orphan_days: i64) -> QueryResult<Vec<FileRow>> {
    let ids: Vec<FileAssetId> = assets.iter().map(|a| a.id.clone()).collect();
    let mut by_file = linked_answers(conn, &ids)?;
    let who = uploaders(conn, &assets)?;
    let cutoff = now() - Duration::days(orphan_days);
    Ok(assets
        .into_iter()
        .map(|asset| {
            let answers = by_file.remove(&asset.id).unwrap_or_default();
            let cited_by = answers.iter().filter(|a| a.cited).count();
            let context_for = answers.len() - cited_by;
            FileRow {
                orphan: answers.is_empty() && asset.is_available() && asset.created_at < cutoff,
                uploader: asset.uploaded_by.and_then(|id| who.get(&id).cloned()).unwrap_or_else(|| "—".into()),
                cited_by,
                context_for,
                answers,
                asset,
            }
        })
        .collect())
}

/// Every FileAsset an assay has or had (including deleted ones, marked as such).
pub fn assay_files(conn: &mut DbConn, assay_id: i32) -> QueryResult<Vec<FileRow>> {
    let assets = FileAsset::of_assay(conn, assay_id, Which::All)?;
    rows(conn, assets, 7)
}

/// All FileAssets in `order`, with orphans (unlinked, older than 7 days) marked; `search`
/// finds a name or type (case-insensitive, anywhere) or a SHA-256 by its first digits.
pub fn all_files(conn: &mut DbConn, search: &str, order: Order, page: i64) -> QueryResult<Paged<FileRow>> {
    let query = file_assets::table.select(FileAsset::as_select()).limit(PER_PAGE + 1).offset(offset(page)).into_boxed();
    let mut query = sorted!(query, order, tie: file_assets::id,
        "uploaded" => file_assets::created_at,
        "name" => lower(file_assets::original_filename),
        "size" => file_assets::size_bytes,
        "type" => file_assets::content_type,
        "status" => file_assets::status,
    );
    if let Some(needle) = needle(search) {
        let anywhere = like_pattern(&needle);
        let prefix = format!("{}%", escape_like(&needle));
        query = query.filter(
            lower(file_assets::original_filename)
                .like(anywhere.clone())
                .escape('\\')
                .or(lower(file_assets::content_type).like(anywhere).escape('\\'))
                .or(file_assets::sha256.like(prefix).escape('\\')),
        );
    }
    let assets = query.load(conn)?;
    Paged::from_probe(assets, page).map(|assets| rows(conn, assets, 7))
}

/// The download log in `order`; `search` finds a file name, an e-mail or an address.
pub fn downloads(conn: &mut DbConn, search: &str, order: Order, page: i64) -> QueryResult<Paged<FileDownloadLog>> {
    let query = file_download_logs::table
        .select(FileDownloadLog::as_select())
        .limit(PER_PAGE + 1)
        .offset(offset(page))
        .into_boxed();
    let mut query = sorted!(query, order, tie: file_download_logs::id,
        "when" => file_download_logs::downloaded_at,
        "file" => lower(file_download_logs::original_filename),
        "who" => file_download_logs::person_email,
    );
    if let Some(needle) = needle(search) {
        let pattern = like_pattern(&needle);
        query = query.filter(
            lower(file_download_logs::original_filename)
                .like(pattern.clone())
                .escape('\\')
                .or(file_download_logs::person_email.like(pattern.clone()).escape('\\'))
                .or(file_download_logs::ip_address.like(pattern).escape('\\')),
        );
    }
    Ok(Paged::from_probe(query.load(conn)?, page))
}

/// Everything about one file: its row, where it belongs, every answer linked to it, every
/// download and every audit event.
#[derive(Clone, Debug)]
pub struct FileDetail {
    pub file: FileRow,
    /// (investigation, study, assay) titles, while the file belongs to an assay.
    pub path: Option<(String, String, String)>,
    pub downloads: Vec<FileDownloadLog>,
    pub events: Vec<FileAuditEvent>,
}

pub fn file_detail(conn: &mut DbConn, id: &FileAssetId) -> QueryResult<FileDetail> {
    let asset = FileAsset::find(conn, id)?;
    let path = match asset.assay_id {
        Some(assay) => assays::table
            .inner_join(studies::table.inner_join(investigations::table))
            .filter(assays::id.eq(assay))
            .select((investigations::title, studies::title, assays::title))
            .first(conn)
            .optional()?,
        None => None,
    };
    let downloads = file_download_logs::table
        .filter(file_download_logs::file_id.eq(id))
        .order(file_download_logs::id.desc())
        .select(FileDownloadLog::as_select())
        .load(conn)?;
    let events = FileAuditEvent::of_file(conn, id)?;
    let file = rows(conn, vec![asset], 7)?.remove(0);
    Ok(FileDetail { file, path, downloads, events })
}

/// An account on `/admin/accounts`.
#[derive(Clone, Debug)]
pub struct AccountRow {
    pub person: crate::db::models::Person,
    /// `None` until the person logs in (or logged in last before it was recorded).
    pub last_login_at: Option<chrono::NaiveDateTime>,
}

/// Accounts in `order`, optionally only those whose email or name contains `search`
/// (case-insensitive).
pub fn account_list(conn: &mut DbConn, search: &str, order: Order, page: i64) -> QueryResult<Paged<AccountRow>> {
    use crate::db::models::Person;
    let query = persons::table
        .select((Person::as_select(), persons::last_login_at))
        .limit(PER_PAGE + 1)
        .offset(offset(page))
        .into_boxed();
    let mut query = sorted!(query, order, tie: persons::id,
        "email" => persons::email,
        "name" => lower(persons::display_name),
        "created" => persons::created_at,
        "login" => persons::last_login_at,
    );
    if let Some(needle) = needle(search) {
        let pattern = like_pattern(&needle);
        query = query.filter(
            persons::email
                .like(pattern.clone())
                .escape('\\')
                .or(lower(persons::display_name).like(pattern).escape('\\')),
        );
    }
    let rows: Vec<(Person, Option<chrono::NaiveDateTime>)> = query.load(conn)?;
    let rows = rows.into_iter().map(|(person, last_login_at)| AccountRow { person, last_login_at }).collect();
    Ok(Paged::from_probe(rows, page))
}

/// Records a download-log row for each file the ZIP streams (on the ZIP's blocking thread).
pub fn download_logger(pool: crate::db::Pool, person_id: i32, email: String, ip: String) -> crate::fileops::OnStreamed {
    Box::new(move |asset: &FileAsset| {
        let written = pool
            .get()
            .map_err(anyhow::Error::from)
            .and_then(|mut c| Ok(FileDownloadLog::record(&mut c, asset, Some(person_id), &email, &ip)?));
        if let Err(err) = written {
            tracing::error!(file = %asset.id, error = %err, "download-log row not written");
        }
    })
}

/// What `/metrics` reads from the database: the queue, the kept files, and the last runs of
/// the maintenance commands (which run in other processes, on a timer).
pub fn operational_stats(conn: &mut DbConn) -> QueryResult<crate::telemetry::metrics::DatabaseStats> {
    use crate::db::schema::file_audit_events;
    use crate::telemetry::metrics::{CleanupStats, DatabaseStats, StorageCheckStats};
    let files =
        file_assets::table
            .group_by(file_assets::status)
            .select((file_assets::status, count_star()))
            .load::<(String, i64)>(conn)?;
    let files_deleted = file_audit_events::table
        .group_by(file_audit_events::event)
        .select((file_audit_events::event, count_star()))
        .load::<(String, i64)>(conn)?;
    let last_storage_check = crate::fileops::StorageCheck::last(conn)?.map(|check| {
        let summary = check.summary();
        let findings = summary["by_kind"]
            .as_object()
            .map(|kinds| kinds.iter().map(|(k, n)| (k.clone(), n.as_i64().unwrap_or(0))).collect())
            .unwrap_or_default();
        StorageCheckStats {
            finished_at: check.finished_at,
            findings,
            unrepaired: summary["unrepaired"].as_i64().unwrap_or(0),
        }
    });
    let last_cleanup = crate::fileops::CleanupRun::last(conn)?.map(|run| CleanupStats {
        finished_at: run.finished_at,
        deleted: run.deleted.into(),
        errors: run.errors.into(),
    });
    Ok(DatabaseStats { jobs: crate::jobs::counts(conn)?, files, files_deleted, last_storage_check, last_cleanup })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(page_number(Some(0)), 1);
        assert_eq!(page_number(Some(-4)), 1);
        assert_eq!(page_number(None), 1);
    }
}
