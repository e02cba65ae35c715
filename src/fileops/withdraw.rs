//! Consent withdrawal: the kept files of an assay are deleted from storage and marked
//! `deleted`; each gets an audit record. Rows stay, so links and the audit trail still tell
//! what was there.

use crate::db::models::{Assay, FileAsset, FileAuditEvent, FileEvent, Which};
use crate::db::{self, Pool, write_transaction};
use crate::storage::ObjectStore;

/// What a withdrawal did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Withdrawn {
    pub deleted: usize,
    /// Objects that could not be deleted: those files stay available and can be withdrawn again.
    pub failed: usize,
}

/// Delete the assay's kept files: claim them, delete their objects, then mark them deleted
/// with an audit event each (or give back those whose objects could not be deleted).
pub async fn withdraw_consent(
    pool: &Pool,
    store: &dyn ObjectStore,
    assay_id: i32,
    actor: &str,
) -> anyhow::Result<Withdrawn> {
    let assets = db::blocking(pool, move |c| {
        write_transaction(c, |c| {
            let assets = FileAsset::of_assay(c, assay_id, Which::Available)?;
            let ids: Vec<_> = assets.iter().map(|a| a.id.clone()).collect();
            let claimed = FileAsset::claim_for_deletion(c, &ids)?;
            Ok::<_, anyhow::Error>(assets.into_iter().filter(|a| claimed.contains(&a.id)).collect::<Vec<_>>())
        })
    })
    .await?;
    let keys: Vec<String> = assets.iter().map(|a| a.object_key.clone()).collect();
    let results = store.delete_many(&keys).await;
    let (gone, stuck): (Vec<_>, Vec<_>) = assets.into_iter().zip(results).partition(|(_, r)| r.is_ok());
    let gone: Vec<FileAsset> = gone.into_iter().map(|(a, _)| a).collect();
    let stuck: Vec<_> = stuck.into_iter().map(|(a, _)| a.id).collect();
    let outcome = Withdrawn { deleted: gone.len(), failed: stuck.len() };
    let actor = actor.to_owned();
    db::blocking(pool, move |c| {
        write_transaction(c, |c| {
            let ids: Vec<_> = gone.iter().map(|a| a.id.clone()).collect();
            FileAsset::mark_deleted(c, &ids)?;
            for asset in &gone {
                FileAuditEvent::record(c, asset, FileEvent::ConsentWithdrawn, &actor)?;
            }
            FileAsset::release(c, &stuck)?;
            Assay::record_consent_withdrawal(c, assay_id)?;
            Ok::<_, anyhow::Error>(())
        })
    })
    .await?;
    tracing::info!(target: "toxtemp::audit", event = "consent_withdrawn", assay = assay_id, deleted = outcome.deleted, failed = outcome.failed, "consent withdrawn");
    Ok(outcome)
}
