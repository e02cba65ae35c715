//! Orphans: stored files older than N days that no answer links to (the LLM run failed, the
//! assay was deleted, …). Deleting them removes the object first and the row after; a file
//! whose object could not be deleted keeps its row and is tried again next time.

use std::collections::{BTreeMap, HashSet};

use chrono::Duration;
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use crate::db::models::FileAsset;
use crate::db::schema::{answer_files, file_assets, file_audit_events};
use crate::db::{DbConn, Pool, now, write_transaction};
use crate::storage::ObjectStore;

/// Internal state while a cleanup holds an asset: linking refuses it, listing still shows it
/// (so a crashed cleanup is finished by the next run).
pub(crate) const DELETING: &str = "deleting";
const AVAILABLE: &str = "available";
/// Ids per SQL statement and keys per storage batch.
const CHUNK: usize = 500;

/// FileAssets created more than `days` days ago that no AnswerFile links to.
pub fn get_orphaned_file_assets(conn: &mut DbConn, days: u32) -> QueryResult<Vec<FileAsset>> {
    let cutoff = now() - Duration::days(i64::from(days));
    file_assets::table
        .filter(file_assets::status.eq_any([AVAILABLE, DELETING]))
        .filter(file_assets::created_at.lt(cutoff))
        .filter(not(exists(answer_files::table.filter(answer_files::file_id.eq(file_assets::id)))))
        .order((file_assets::created_at, file_assets::id))
        .select(FileAsset::as_select())
        .load(conn)
}

/// What a cleanup did.
#[derive(Debug, Default)]
pub struct CleanupReport {
    pub deleted: Vec<FileAsset>,
    /// FileAsset id → why it could not be deleted (its row is kept).
    pub errors: BTreeMap<String, String>,
    /// Linked to an answer since it was listed, or already gone: left alone.
    pub skipped: Vec<String>,
}

impl CleanupReport {
    /// The seed's `(deleted count, errors)` pair.
    pub fn summary(&self) -> (usize, &BTreeMap<String, String>) {
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
        let ids: Vec<String> = chunk.iter().map(|a| a.id.clone()).collect();
        let (claimed, linked) = blocking(pool, move |conn| claim(conn, &ids)).await?;
        report.skipped.extend(linked);
        let claimed: Vec<&FileAsset> = chunk.iter().filter(|a| claimed.contains(&a.id)).collect();
        let (foreign, ours): (Vec<&FileAsset>, Vec<&FileAsset>) =
            claimed.into_iter().partition(|a| a.bucket != store.bucket());
        for asset in foreign {
            report.errors.insert(
                asset.id.clone(),
                format!("stored in bucket {:?}, not the configured {:?}", asset.bucket, store.bucket()),
            );
        }
        let keys: Vec<String> = ours.iter().map(|a| a.object_key.clone()).collect();
        let results = store.delete_many(&keys).await;
        let mut gone = Vec::new();
        for (asset, result) in ours.into_iter().zip(results) {
            match result {
                Ok(()) => gone.push(asset.clone()),
                Err(err) => {
                    tracing::error!(file = %asset.id, key = %asset.object_key, error = %err, "orphan object could not be deleted; row kept");
                    report.errors.insert(asset.id.clone(), err.to_string());
                }
            }
        }
        let failed: Vec<String> =
            report.errors.keys().filter(|id| chunk.iter().any(|a| &a.id == *id)).cloned().collect();
        let actor = actor.to_owned();
        let finished = gone.clone();
        blocking(pool, move |conn| finish(conn, &finished, &failed, &actor)).await?;
        for asset in &gone {
            tracing::info!(
                target: "toxtemp::audit",
                event = "orphan_deleted",
                file = %asset.id,
                name = %asset.original_filename,
                size = asset.size_bytes,
                bucket = %asset.bucket,
                key = %asset.object_key,
                "deleted an orphaned file asset"
            );
        }
        report.deleted.extend(gone);
    }
    Ok(report)
}

/// Mark the still-unlinked assets as being deleted, then look again for links that were
/// committed while we waited for the row locks, and give those back.
fn claim(conn: &mut DbConn, ids: &[String]) -> QueryResult<(HashSet<String>, Vec<String>)> {
    write_transaction(conn, |conn| {
        let claimed: Vec<String> = diesel::update(
            file_assets::table
                .filter(file_assets::id.eq_any(ids))
                .filter(file_assets::status.eq_any([AVAILABLE, DELETING]))
                .filter(not(exists(answer_files::table.filter(answer_files::file_id.eq(file_assets::id))))),
        )
        .set(file_assets::status.eq(DELETING))
        .returning(file_assets::id)
        .get_results(conn)?;
        let linked: Vec<String> = answer_files::table
            .filter(answer_files::file_id.eq_any(&claimed))
            .select(answer_files::file_id)
            .distinct()
            .load(conn)?;
        if !linked.is_empty() {
            diesel::update(file_assets::table.filter(file_assets::id.eq_any(&linked)))
                .set(file_assets::status.eq(AVAILABLE))
                .execute(conn)?;
        }
        let linked_set: HashSet<&String> = linked.iter().collect();
        let skipped: Vec<String> =
            ids.iter().filter(|id| !claimed.contains(id) || linked_set.contains(id)).cloned().collect();
        let claimed = claimed.into_iter().filter(|id| !linked_set.contains(id)).collect();
        Ok((claimed, skipped))
    })
}

/// Remove the rows whose objects are gone (with an audit record) and release the failures.
fn finish(conn: &mut DbConn, gone: &[FileAsset], failed: &[String], actor: &str) -> QueryResult<()> {
    write_transaction(conn, |conn| {
        let at = now();
        for asset in gone {
            diesel::insert_into(file_audit_events::table)
                .values((
                    file_audit_events::file_id.eq(&asset.id),
                    file_audit_events::event.eq("orphan_deleted"),
                    file_audit_events::detail.eq(audit_detail(asset)),
                    file_audit_events::actor.eq(actor),
                    file_audit_events::created_at.eq(at),
                ))
                .execute(conn)?;
        }
        let ids: Vec<&str> = gone.iter().map(|a| a.id.as_str()).collect();
        diesel::delete(
            file_assets::table.filter(file_assets::id.eq_any(&ids)).filter(file_assets::status.eq(DELETING)),
        )
        .execute(conn)?;
        diesel::update(
            file_assets::table.filter(file_assets::id.eq_any(failed)).filter(file_assets::status.eq(DELETING)),
        )
        .set(file_assets::status.eq(AVAILABLE))
        .execute(conn)?;
        Ok(())
    })
}

fn audit_detail(asset: &FileAsset) -> String {
    serde_json::json!({
        "original_filename": asset.original_filename,
        "size_bytes": asset.size_bytes,
        "sha256": asset.sha256,
        "bucket": asset.bucket,
        "object_key": asset.object_key,
        "created_at": asset.created_at.to_string(),
    })
    .to_string()
}

async fn blocking<T, F>(pool: &Pool, f: F) -> anyhow::Result<T>
where
    F: FnOnce(&mut DbConn) -> QueryResult<T> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<T> { Ok(f(&mut *pool.get()?)?) }).await?
}
