//! Orphans: kept files older than N days that no answer links to (the LLM run failed, …).
//! Deleting them removes the object first and the row after; a file whose object could not be
//! deleted keeps its row and is tried again next time.

use std::collections::{BTreeMap, HashSet};

use chrono::Duration;
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use crate::db::models::{AssayStatus, FileAsset, FileAssetId, FileAssetStatus, FileAuditEvent, FileEvent};
use crate::db::schema::{answer_files, assays, benchmark_item_files, cleanup_runs, file_assets};
use crate::db::{self, DbConn, Pool, now, write_transaction};
use crate::storage::{ObjectStore, Store};

/// Ids per SQL statement and keys per storage batch.
const CHUNK: usize = 500;

/// A submission that has not scheduled its run after this long died with its server.
const STALE_PENDING: Duration = Duration::days(1);

/// Orphans: FileAssets that no AnswerFile links to, no benchmark set refers to and no run
/// is waiting for (their assay is not scheduled or busy) — created more than `days` days ago, or left `deleting` by a
/// deletion that could not finish, or left `pending` by a submission that died a day ago or
/// more. The claim re-checks all of it under the row lock (`FileAsset::claim_unlinked_for_deletion`).
pub fn get_orphaned_file_assets(conn: &mut DbConn, days: u32) -> QueryResult<Vec<FileAsset>> {
    let cutoff = now() - Duration::days(i64::from(days));
    file_assets::table
        .filter(
            file_assets::status
                .eq(FileAssetStatus::Available)
                .and(file_assets::created_at.lt(cutoff))
                .or(file_assets::status.eq(FileAssetStatus::Deleting))
                .or(file_assets::status
                    .eq(FileAssetStatus::Pending)
                    .and(file_assets::created_at.lt(now() - STALE_PENDING))),
        )
        .filter(not(exists(answer_files::table.filter(answer_files::file_id.eq(file_assets::id)))))
        .filter(not(exists(benchmark_item_files::table.filter(benchmark_item_files::file_id.eq(file_assets::id)))))
        .filter(not(exists(
            assays::table
                .filter(assays::id.nullable().eq(file_assets::assay_id))
                .filter(assays::status.eq_any([AssayStatus::Scheduled.as_str(), AssayStatus::Busy.as_str()])),
        )))
        .order((file_assets::created_at, file_assets::id))
        .select(FileAsset::as_select())
        .load(conn)
}

/// What a cleanup did.
#[derive(Debug, Default)]
pub struct CleanupReport {
    pub deleted: Vec<FileAsset>,
    /// FileAsset id → why it could not be deleted (its row is kept).
    pub errors: BTreeMap<FileAssetId, String>,
    /// Linked to an answer since it was listed, or already gone: left alone.
    pub skipped: Vec<FileAssetId>,
}

impl CleanupReport {
    /// The seed's `(deleted count, errors)` pair.
    pub fn summary(&self) -> (usize, &BTreeMap<FileAssetId, String>) {
        (self.deleted.len(), &self.errors)
    }
}

/// Delete these orphans: claim them (re-checking that nothing links them), delete their
/// objects in batches, then delete the rows of those whose object is gone and record an
/// audit event for each. `actor` names who asked (e.g. the CLI command).
pub async fn delete_orphaned_file_assets(
    pool: &Pool,
    store: &dyn ObjectStore,
    assets: Vec<FileAsset>,
    actor: &str,
) -> anyhow::Result<CleanupReport> {
    let mut report = CleanupReport::default();
    for chunk in assets.chunks(CHUNK) {
        let ids: Vec<FileAssetId> = chunk.iter().map(|a| a.id.clone()).collect();
        let claimed: HashSet<FileAssetId> =
            db::blocking(pool, move |c| Ok::<_, anyhow::Error>(claim(c, &ids)?)).await?.into_iter().collect();
        let (claimed, skipped): (Vec<&FileAsset>, Vec<&FileAsset>) =
            chunk.iter().partition(|a| claimed.contains(&a.id));
        report.skipped.extend(skipped.into_iter().map(|a| a.id.clone()));
        let (ours, foreign): (Vec<&FileAsset>, Vec<&FileAsset>) =
            claimed.into_iter().partition(|a| a.bucket == store.bucket());
        let mut failed: Vec<FileAssetId> = Vec::new();
        for asset in foreign {
            let why = format!("stored in bucket {:?}, not the configured {:?}", asset.bucket, store.bucket());
            report.errors.insert(asset.id.clone(), why);
            failed.push(asset.id.clone());
        }
        let keys: Vec<String> = ours.iter().map(|a| a.object_key.clone()).collect();
        let mut gone = Vec::new();
        for (asset, result) in ours.into_iter().zip(store.delete_many(&keys).await) {
            match result {
                Ok(()) => gone.push(asset.clone()),
                Err(err) => {
                    tracing::error!(file = %asset.id, key = %asset.object_key, error = %err, "orphan object could not be deleted; row kept");
                    report.errors.insert(asset.id.clone(), err.to_string());
                    failed.push(asset.id.clone());
                }
            }
        }
        let (actor, finished) = (actor.to_owned(), gone.clone());
        db::blocking(pool, move |c| Ok::<_, anyhow::Error>(finish(c, &finished, &failed, &actor)?)).await?;
        report.deleted.extend(gone);
    }
    Ok(report)
}

/// Claim the assets that are still unlinked. Linking takes the same row locks, so a link
/// committed while we waited makes the claim skip that asset.
fn claim(conn: &mut DbConn, ids: &[FileAssetId]) -> QueryResult<Vec<FileAssetId>> {
    write_transaction(conn, |conn| FileAsset::claim_unlinked_for_deletion(conn, ids))
}

/// Remove the rows whose objects are gone (with an audit record) and release the failures.
fn finish(conn: &mut DbConn, gone: &[FileAsset], failed: &[FileAssetId], actor: &str) -> QueryResult<()> {
    write_transaction(conn, |conn| {
        for asset in gone {
            FileAuditEvent::record(conn, asset, FileEvent::OrphanDeleted, actor)?;
        }
        let ids: Vec<FileAssetId> = gone.iter().map(|a| a.id.clone()).collect();
        FileAsset::remove_claimed(conn, &ids)?;
        FileAsset::release(conn, failed)?;
        Ok(())
    })
}

/// The seed's `FileAssetManager` role: the orphan operations over one database and store.
pub struct FileAssetManager {
    pub pool: Pool,
    pub store: Store,
}

impl FileAssetManager {
    /// Orphans older than `days` days.
    pub async fn get_orphaned(&self, days: u32) -> anyhow::Result<Vec<FileAsset>> {
        db::blocking(&self.pool, move |c| Ok::<_, anyhow::Error>(get_orphaned_file_assets(c, days)?)).await
    }

    /// Delete the orphans older than `days` days, objects first; `actor` is recorded.
    pub async fn cleanup_orphaned(&self, days: u32, actor: &str) -> anyhow::Result<CleanupReport> {
        let orphans = self.get_orphaned(days).await?;
        delete_orphaned_file_assets(&self.pool, self.store.as_ref(), orphans, actor).await
    }
}

/// Deleted files keep their original name for `retention`, then lose it — on the FileAsset
/// row, in the download log and in the audit events; SHA-256, size and the audit trail stay.
/// Returns how many files lost their name.
pub async fn forget_deleted_names(pool: &Pool, retention: std::time::Duration) -> anyhow::Result<usize> {
    let cutoff = now() - Duration::from_std(retention).unwrap_or_else(|_| Duration::days(30));
    db::blocking(pool, move |c| {
        write_transaction(c, |c| {
            let files = FileAsset::forget_names_deleted_before(c, cutoff)?;
            crate::db::models::FileDownloadLog::forget_names(c, &files)?;
            FileAuditEvent::forget_names(c, &files)?;
            Ok::<_, anyhow::Error>(files.len())
        })
    })
    .await
}

/// One run of the cleanup command, recorded when it ends (monitoring asks when the last one
/// finished and how it went).
#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = cleanup_runs)]
pub struct CleanupRun {
    #[diesel(skip_insertion)]
    pub id: i32,
    pub started_at: chrono::NaiveDateTime,
    pub finished_at: chrono::NaiveDateTime,
    pub deleted: i32,
    pub skipped: i32,
    pub errors: i32,
    pub names_forgotten: i32,
}

impl CleanupRun {
    pub fn new(started_at: chrono::NaiveDateTime, report: &CleanupReport, names_forgotten: usize) -> Self {
        let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        Self {
            id: 0,
            started_at,
            finished_at: now(),
            deleted: n(report.deleted.len()),
            skipped: n(report.skipped.len()),
            errors: n(report.errors.len()),
            names_forgotten: n(names_forgotten),
        }
    }

    pub fn record(&self, conn: &mut DbConn) -> QueryResult<()> {
        diesel::insert_into(cleanup_runs::table).values(self).execute(conn).map(drop)
    }

    pub fn last(conn: &mut DbConn) -> QueryResult<Option<CleanupRun>> {
        cleanup_runs::table.order(cleanup_runs::id.desc()).select(Self::as_select()).first(conn).optional()
    }
}
