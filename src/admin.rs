//! Read models for the staff pages: assay list with file counts, an assay's stored files
//! with their links, all files with orphan marks, the download log.

use std::collections::HashMap;

use chrono::Duration;
use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::db::models::{Assay, FileAsset, FileAssetId, FileDownloadLog, LinkLabel, Which};
use crate::db::schema::{answer_files, answers, assays, file_assets, investigations, persons, studies};
use crate::db::{DbConn, now};

#[derive(Clone, Debug)]
pub struct AssayRow {
    pub assay: Assay,
    pub owner: String,
    pub answers: i64,
    pub files: i64,
}

/// All assays (newest first), optionally filtered by a search in title or owner email.
pub fn assay_list(conn: &mut DbConn, search: &str) -> QueryResult<Vec<AssayRow>> {
    let needle = search.trim().to_lowercase();
    let rows: Vec<(Assay, String)> = assays::table
        .inner_join(studies::table.inner_join(investigations::table.inner_join(persons::table)))
        .order(assays::id.desc())
        .select((Assay::as_select(), persons::email))
        .load(conn)?;
    let answer_counts: HashMap<i32, i64> = answers::table
        .group_by(answers::assay_id)
        .select((answers::assay_id, count_star()))
        .load::<(i32, i64)>(conn)?
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for (assay, owner) in rows {
        if !needle.is_empty() && !assay.title.to_lowercase().contains(&needle) && !owner.contains(&needle) {
            continue;
        }
        let files = FileAsset::of_assay(conn, assay.id, Which::Available)?.len() as i64;
        out.push(AssayRow { answers: answer_counts.get(&assay.id).copied().unwrap_or(0), files, owner, assay });
    }
    Ok(out)
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
pub fn all_files(conn: &mut DbConn) -> QueryResult<Vec<FileRow>> {
    let assets = file_assets::table
        .order(file_assets::created_at.desc())
        .limit(1000)
        .select(FileAsset::as_select())
        .load(conn)?;
    rows(conn, assets, 7)
}

pub fn downloads(conn: &mut DbConn) -> QueryResult<Vec<FileDownloadLog>> {
    FileDownloadLog::all(conn)
}

/// Record one download-log row per file of the archive.
pub fn log_downloads(
    conn: &mut DbConn,
    assets: &[FileAsset],
    person_id: i32,
    email: &str,
    ip: &str,
) -> QueryResult<()> {
    crate::db::write_transaction(conn, |c| {
        for asset in assets {
            FileDownloadLog::record(c, asset, Some(person_id), email, ip)?;
        }
        Ok(())
    })
}
