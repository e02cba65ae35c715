//! Read models for the staff pages: assay list with file counts, an assay's stored files
//! with their links, all files with orphan marks, the download log. Lists are paged: one
//! page is [`PER_PAGE`] rows however many there are.

use std::collections::HashMap;

use chrono::Duration;
use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::db::models::{Assay, FileAsset, FileAssetId, FileAssetStatus, FileDownloadLog, LinkLabel, Which};
use crate::db::schema::{
    answer_files, answers, assays, file_assets, file_download_logs, investigations, persons, studies,
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

/// Page numbers start at 1; anything else (0, negative, absurd) is clamped.
pub fn page_number(requested: Option<i64>) -> i64 {
    requested.unwrap_or(1).clamp(1, 1_000_000)
}

fn offset(page: i64) -> i64 {
    (page - 1) * PER_PAGE
}

/// `%`, `_` and the escape character itself match only themselves.
fn like_pattern(needle: &str) -> String {
    let escaped: String =
        needle.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
    format!("%{escaped}%")
}

#[derive(Clone, Debug)]
pub struct AssayRow {
    pub assay: Assay,
    pub owner: String,
    pub answers: i64,
    pub files: i64,
}

/// Assays, newest first, optionally only those whose title or owner email contains `search`
/// (case-insensitive); the search and the paging run in SQL.
pub fn assay_list(conn: &mut DbConn, search: &str, page: i64) -> QueryResult<Paged<AssayRow>> {
    let mut query = assays::table
        .inner_join(studies::table.inner_join(investigations::table.inner_join(persons::table)))
        .select((Assay::as_select(), persons::email))
        .order(assays::id.desc())
        .limit(PER_PAGE + 1)
        .offset(offset(page))
        .into_boxed();
    let needle = search.trim().to_lowercase();
    if !needle.is_empty() {
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
    pub orphan: bool,
}

impl FileRow {
    pub fn linked(&self) -> usize {
        self.cited_by + self.context_for
    }
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

fn rows(conn: &mut DbConn, assets: Vec<FileAsset>, orphan_days: i64) -> QueryResult<Vec<FileRow>> {
    let ids: Vec<FileAssetId> = assets.iter().map(|a| a.id.clone()).collect();
    let links: Vec<(FileAssetId, Option<String>)> = answer_files::table
        .filter(answer_files::file_id.eq_any(&ids))
        .select((answer_files::file_id, answer_files::label))
        .load(conn)?;
    // (cited, context) answers per file.
    let mut by_file: HashMap<FileAssetId, (usize, usize)> = HashMap::new();
    for (file, label) in links {
        let counts = by_file.entry(file).or_default();
        if label.as_deref() == Some(LinkLabel::Cited.as_str()) {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    let who = uploaders(conn, &assets)?;
    let cutoff = now() - Duration::days(orphan_days);
    Ok(assets
        .into_iter()
        .map(|asset| {
            let (cited_by, context_for) = by_file.remove(&asset.id).unwrap_or_default();
            FileRow {
                orphan: cited_by + context_for == 0 && asset.is_available() && asset.created_at < cutoff,
                uploader: asset.uploaded_by.and_then(|id| who.get(&id).cloned()).unwrap_or_else(|| "—".into()),
                cited_by,
                context_for,
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

/// All FileAssets, newest first, with orphans (unlinked, older than 7 days) marked.
pub fn all_files(conn: &mut DbConn, page: i64) -> QueryResult<Paged<FileRow>> {
    let assets = file_assets::table
        .order((file_assets::created_at.desc(), file_assets::id))
        .limit(PER_PAGE + 1)
        .offset(offset(page))
        .select(FileAsset::as_select())
        .load(conn)?;
    Paged::from_probe(assets, page).map(|assets| rows(conn, assets, 7))
}

/// The download log, newest first.
pub fn downloads(conn: &mut DbConn, page: i64) -> QueryResult<Paged<FileDownloadLog>> {
    let logs = file_download_logs::table
        .order(file_download_logs::id.desc())
        .limit(PER_PAGE + 1)
        .offset(offset(page))
        .select(FileDownloadLog::as_select())
        .load(conn)?;
    Ok(Paged::from_probe(logs, page))
}

/// An account on `/admin/accounts`.
#[derive(Clone, Debug)]
pub struct AccountRow {
    pub person: crate::db::models::Person,
    /// `None` until the person logs in (or logged in last before it was recorded).
    pub last_login_at: Option<chrono::NaiveDateTime>,
}

/// Accounts by email, optionally only those whose email or name contains `search`
/// (case-insensitive).
pub fn account_list(conn: &mut DbConn, search: &str, page: i64) -> QueryResult<Paged<AccountRow>> {
    use crate::db::models::Person;
    let mut query = persons::table
        .select((Person::as_select(), persons::last_login_at))
        .order(persons::email)
        .limit(PER_PAGE + 1)
        .offset(offset(page))
        .into_boxed();
    let needle = search.trim().to_lowercase();
    if !needle.is_empty() {
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
