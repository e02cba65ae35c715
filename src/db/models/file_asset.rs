//! Stored documents (FileAsset), their links to answers (AnswerFile) and the audit trail of
//! downloads (FileDownloadLog).

use std::fmt;
use std::str::FromStr;

use diesel::prelude::*;

use crate::db::schema::{answer_files, file_assets, file_download_logs};
use crate::db::{DbConn, now};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileAssetStatus {
    Available,
    Deleted,
}

impl FileAssetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Deleted => "deleted",
        }
    }
}

impl FromStr for FileAssetStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "available" => Ok(Self::Available),
            "deleted" => Ok(Self::Deleted),
            other => Err(format!("unknown file status {other:?}")),
        }
    }
}

impl fmt::Display for FileAssetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A document kept (with consent) in object storage. The original filename lives only here,
/// never in the object key.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable, Insertable, PartialEq)]
#[diesel(table_name = file_assets)]
pub struct FileAsset {
    pub id: String,
    pub bucket: String,
    pub object_key: String,
    pub original_filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub status: String,
    pub uploaded_by: Option<i32>,
    pub assay_id: Option<i32>,
    pub created_at: chrono::NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = answer_files)]
pub struct AnswerFile {
    pub id: i32,
    pub answer_id: i32,
    pub file_id: String,
    pub label: Option<String>,
    pub created_at: chrono::NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = file_download_logs)]
pub struct FileDownloadLog {
    pub id: i32,
    pub file_id: String,
    pub original_filename: String,
    pub person_id: Option<i32>,
    pub person_email: String,
    pub ip_address: String,
    pub downloaded_at: chrono::NaiveDateTime,
}

impl FileAsset {
    pub fn insert(conn: &mut DbConn, asset: &FileAsset) -> QueryResult<usize> {
        diesel::insert_into(file_assets::table).values(asset).execute(conn)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<FileAsset> {
        file_assets::table.find(id).select(Self::as_select()).first(conn)
    }

    pub fn status(&self) -> FileAssetStatus {
        self.status.parse().unwrap_or(FileAssetStatus::Deleted)
    }

    /// The FileAssetManager role: orphans older than `days` days.
    pub fn get_orphaned(conn: &mut DbConn, days: u32) -> QueryResult<Vec<FileAsset>> {
        crate::fileops::get_orphaned_file_assets(conn, days)
    }

    /// The FileAssetManager role: delete the orphans older than `days` days, objects first.
    pub async fn cleanup_orphaned(
        pool: &crate::db::Pool,
        store: &dyn crate::storage::ObjectStore,
        days: u32,
        actor: &str,
    ) -> anyhow::Result<crate::fileops::CleanupReport> {
        let pool2 = pool.clone();
        let orphans = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<FileAsset>> {
            Ok(Self::get_orphaned(&mut *pool2.get()?, days)?)
        })
        .await??;
        crate::fileops::delete_orphaned_file_assets(pool, store, orphans, actor).await
    }
}

impl AnswerFile {
    pub fn of_answer(conn: &mut DbConn, answer_id: i32) -> QueryResult<Vec<AnswerFile>> {
        answer_files::table
            .filter(answer_files::answer_id.eq(answer_id))
            .order(answer_files::id)
            .select(Self::as_select())
            .load(conn)
    }
}

impl FileDownloadLog {
    pub fn record(
        conn: &mut DbConn,
        asset: &FileAsset,
        person_id: Option<i32>,
        person_email: &str,
        ip_address: &str,
    ) -> QueryResult<usize> {
        diesel::insert_into(file_download_logs::table)
            .values((
                file_download_logs::file_id.eq(&asset.id),
                file_download_logs::original_filename.eq(&asset.original_filename),
                file_download_logs::person_id.eq(person_id),
                file_download_logs::person_email.eq(person_email),
                file_download_logs::ip_address.eq(ip_address),
                file_download_logs::downloaded_at.eq(now()),
            ))
            .execute(conn)
    }

    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<FileDownloadLog>> {
        file_download_logs::table.order(file_download_logs::id.desc()).select(Self::as_select()).load(conn)
    }
}
