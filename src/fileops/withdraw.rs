//! Consent withdrawal: the kept files of an assay (or one of them, by its uploader) are
//! deleted from storage and marked `deleted`; each gets an audit record. Rows stay, so links
//! and the audit trail still tell what was there.

use diesel::OptionalExtension;

use crate::db::models::{Assay, FileAsset, FileAssetId, FileAuditEvent, FileEvent, Which};
use crate::db::{self, Pool, write_transaction};
use crate::storage::ObjectStore;

/// What a withdrawal did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Withdrawn {
    pub deleted: usize,
    /// Objects that could not be deleted: those files stay available and can be withdrawn again.
    pub failed: usize,
}

/// Which kept files of an assay consent is withdrawn for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Withdrawal {
    /// All of them (the assay's owner); later uploads into the assay then start unticked.
    Assay,
    /// One file (its uploader, or the assay's owner), if it is kept for this assay.
    File(FileAssetId),
}

/// Delete the assay's kept files: claim them, delete their objects, then mark them deleted
/// with an audit event each (or give back those whose objects could not be deleted).
pub async fn withdraw_consent(
    pool: &Pool,
    store: &dyn ObjectStore,
    assay_id: i32,
    actor: &str,
) -> anyhow::Result<Withdrawn> {
    withdraw(pool, store, assay_id, Withdrawal::Assay, actor).await
}

/// Withdraw the consent for some of the assay's kept files (see [`Withdrawal`]).
pub async fn withdraw(
    pool: &Pool,
    store: &dyn ObjectStore,
    assay_id: i32,
    which: Withdrawal,
    actor: &str,
) -> anyhow::Result<Withdrawn> {
    let whole = which == Withdrawal::Assay;
    let assets = db::blocking(pool, move |c| {
        write_transaction(c, |c| {
            let mut assets = FileAsset::of_assay(c, assay_id, Which::Available)?;
            if let Withdrawal::File(id) = &which {
                assets.retain(|a| &a.id == id);
            }
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
            if whole {
                Assay::record_consent_withdrawal(c, assay_id)?;
            }
            Ok::<_, anyhow::Error>(())
        })
    })
    .await?;
    tracing::info!(target: "toxtemp::audit", event = "consent_withdrawn", assay = assay_id, whole, deleted = outcome.deleted, failed = outcome.failed, "consent withdrawn");
    Ok(outcome)
}

/// Consent is personal: a kept file's uploader may withdraw it, and so may the owner of the
/// investigation it is kept for (who may withdraw the whole assay's anyway).
pub fn may_withdraw_file(asset: &FileAsset, investigation_owner: i32, person_id: i32) -> bool {
    asset.uploaded_by == Some(person_id) || investigation_owner == person_id
}

/// A kept file as the assay page lists it.
#[derive(Clone, Debug)]
pub struct KeptFile {
    pub asset: FileAsset,
    /// Who uploaded it (their e-mail address), if the account still exists.
    pub uploader: Option<String>,
    /// Whether the viewer may withdraw the consent for it.
    pub withdrawable: bool,
}

/// The assay's kept files with their uploaders, and what `person_id` may withdraw.
pub fn kept_files(
    conn: &mut crate::db::DbConn,
    assay_id: i32,
    investigation_owner: i32,
    person_id: i32,
) -> diesel::QueryResult<Vec<KeptFile>> {
    let mut uploaders = std::collections::HashMap::new();
    let mut files = Vec::new();
    for asset in FileAsset::of_assay(conn, assay_id, Which::Available)? {
        if let Some(id) = asset.uploaded_by
            && !uploaders.contains_key(&id)
        {
            let email = crate::db::models::Person::find(conn, id).optional()?.map(|p| p.email);
            uploaders.insert(id, email);
        }
        let uploader = asset.uploaded_by.and_then(|id| uploaders.get(&id).cloned().flatten());
        let withdrawable = may_withdraw_file(&asset, investigation_owner, person_id);
        files.push(KeptFile { asset, uploader, withdrawable });
    }
    Ok(files)
}
