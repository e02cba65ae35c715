//! Consent withdrawal: the stored files of an assay are deleted from storage and marked
//! `deleted`; each gets an audit record. Rows stay, so links and the audit trail still tell
//! what was there.

use diesel::prelude::*;

use crate::db::models::{FileAsset, FileAssetStatus};
use crate::db::schema::{answer_files, answers, file_assets, file_audit_events};
use crate::db::{DbConn, Pool, now, write_transaction};
use crate::storage::ObjectStore;

/// Ids of the FileAssets linked to any answer of the assay.
pub fn linked_file_ids(conn: &mut DbConn, assay_id: i32) -> QueryResult<Vec<String>> {
    answer_files::table
        .inner_join(answers::table)
        .filter(answers::assay_id.eq(assay_id))
        .select(answer_files::file_id)
        .distinct()
        .load(conn)
}

/// The assay's available files: uploaded for it, or linked to its answers.
pub fn assay_file_assets(conn: &mut DbConn, assay_id: i32) -> QueryResult<Vec<FileAsset>> {
    let linked = linked_file_ids(conn, assay_id)?;
    file_assets::table
        .filter(file_assets::status.eq(FileAssetStatus::Available.as_str()))
        .filter(file_assets::id.eq_any(&linked).or(file_assets::assay_id.eq(assay_id)))
        .order(file_assets::created_at)
        .select(FileAsset::as_select())
        .load(conn)
}

/// Delete the assay's stored files; returns (deleted, failed). Failed ones stay available
/// and can be withdrawn again.
pub async fn withdraw_consent(
    pool: &Pool,
    store: &dyn ObjectStore,
    assay_id: i32,
    actor: &str,
) -> anyhow::Result<(usize, usize)> {
    let list_pool = pool.clone();
    let assets = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<FileAsset>> {
        Ok(assay_file_assets(&mut *list_pool.get()?, assay_id)?)
    })
    .await??;
    let keys: Vec<String> = assets.iter().map(|a| a.object_key.clone()).collect();
    let results = store.delete_many(&keys).await;
    let gone: Vec<FileAsset> = assets.iter().zip(&results).filter(|(_, r)| r.is_ok()).map(|(a, _)| a.clone()).collect();
    let failed = assets.len() - gone.len();
    let (pool, actor, count) = (pool.clone(), actor.to_owned(), gone.len());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut conn = pool.get()?;
        write_transaction(&mut conn, |c| {
            for asset in &gone {
                diesel::update(file_assets::table.find(&asset.id))
                    .set(file_assets::status.eq(FileAssetStatus::Deleted.as_str()))
                    .execute(c)?;
                diesel::insert_into(file_audit_events::table)
                    .values((
                        file_audit_events::file_id.eq(&asset.id),
                        file_audit_events::event.eq("consent_withdrawn"),
                        file_audit_events::detail.eq(format!("assay {assay_id}: {}", asset.original_filename)),
                        file_audit_events::actor.eq(&actor),
                        file_audit_events::created_at.eq(now()),
                    ))
                    .execute(c)?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        Ok(())
    })
    .await??;
    tracing::info!(target: "toxtemp::audit", event = "consent_withdrawn", assay = assay_id, deleted = count, failed, "consent withdrawn");
    Ok((count, failed))
}
