//! Deleting an investigation, study, assay or a whole account. Everything below it goes:
//! the rows (answers with them, by cascade), the queued drafting work of every assay inside
//! (its payload holds the documents' text, and a job must not draft a deleted assay again),
//! and the documents kept with consent — at once, like a consent withdrawal: their objects,
//! their stored passages, their rows marked deleted with an audit event each. An object that
//! cannot be deleted right now stays claimed (`deleting`), and the orphan cleanup finishes it.

use crate::context::AppContext;
use crate::db::models::assay::Within;
use crate::db::models::workspace::{EventKind, NewEvent};
use crate::db::models::{
    Assay, BenchmarkItem, FileAsset, FileAuditEvent, FileEvent, Investigation, Person, Study, Which, Workspace,
    WorkspaceEvent,
};
use crate::db::{DbConn, write_transaction};
use crate::drafting;

/// What is being deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    Assay(i32),
    Study(i32),
    Investigation(i32),
    /// An account with all it owns, and every file it uploaded (into others' shared assays
    /// too: the consent to keep them was this person's).
    Person(i32),
}

impl Item {
    fn assays(self, conn: &mut DbConn) -> diesel::QueryResult<Vec<i32>> {
        match self {
            Item::Assay(id) => Ok(vec![id]),
            Item::Study(id) => Assay::ids_in(conn, Within::Study(id)),
            Item::Investigation(id) => Assay::ids_in(conn, Within::Investigation(id)),
            Item::Person(id) => Assay::ids_in(conn, Within::Owner(id)),
        }
    }
}

/// What a deletion did with the kept documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub files: usize,
    /// Objects that could not be deleted yet (the cleanup retries them).
    pub pending: usize,
}

/// Delete `item` with everything below it; `actor` is recorded on the kept files' audit trail.
pub async fn delete(ctx: &AppContext, item: Item, actor: &str) -> anyhow::Result<Deleted> {
    let files = ctx.db(move |c| Ok::<_, anyhow::Error>(delete_rows(c, item)?)).await?;
    let keys: Vec<String> = files.iter().map(|f| f.object_key.clone()).collect();
    let results = ctx.store.delete_many(&keys).await;
    let gone: Vec<FileAsset> = files.iter().zip(&results).filter(|(_, r)| r.is_ok()).map(|(f, _)| f.clone()).collect();
    let outcome = Deleted { files: gone.len(), pending: files.len() - gone.len() };
    let actor = actor.to_owned();
    ctx.db(move |c| {
        write_transaction(c, |c| {
            let ids: Vec<_> = gone.iter().map(|f| f.id.clone()).collect();
            FileAsset::mark_deleted(c, &ids)?;
            for file in &gone {
                FileAuditEvent::record(c, file, FileEvent::OwnerDeleted, &actor)?;
            }
            Ok::<_, anyhow::Error>(())
        })
    })
    .await?;
    if outcome.pending > 0 {
        tracing::warn!(
            pending = outcome.pending,
            "kept files of a deleted item could not be deleted yet; the cleanup retries"
        );
    }
    Ok(outcome)
}

/// In one transaction: claim the kept files of every assay inside (a submission's files
/// still waiting for their run included), forget their jobs and delete the rows. Returns the
/// claimed files.
fn delete_rows(conn: &mut DbConn, item: Item) -> diesel::QueryResult<Vec<FileAsset>> {
    write_transaction(conn, |c| {
        // The assays first (as a drafting run's save does), then their files.
        let inside = item.assays(c)?;
        let assays = Assay::lock(c, &inside)?;
        let mut files = Vec::new();
        for assay in &assays {
            files.extend(FileAsset::of_assay(c, *assay, Which::All)?);
        }
        if let Item::Person(id) = item {
            files.extend(FileAsset::kept_of_uploader(c, id)?);
        }
        let mut ids: Vec<_> = files.iter().map(|f| f.id.clone()).collect();
        ids.sort();
        ids.dedup();
        files.sort_by(|a, b| a.id.cmp(&b.id));
        files.dedup_by(|a, b| a.id == b.id);
        let claimed = FileAsset::claim_for_deletion(c, &ids)?;
        files.retain(|f| claimed.contains(&f.id));
        drafting::forget_assays(c, &assays)?;
        // Benchmark cases frozen from these assays lose their gold answers (the owner's work).
        BenchmarkItem::withdraw_of_assays(c, &assays)?;
        match item {
            Item::Assay(id) => Assay::delete(c, id),
            Item::Study(id) => Study::delete(c, id),
            Item::Investigation(id) => Investigation::delete(c, id),
            Item::Person(id) => {
                // A workspace has exactly one owner: theirs go with them (the shares end, the
                // other members keep their own work, the history stays).
                let person = Person::find(c, id)?;
                for ws in Workspace::owned_by(c, id)? {
                    let detail = "its owner's account was deleted".to_owned();
                    let event = NewEvent {
                        workspace: &ws,
                        kind: EventKind::Deleted,
                        actor: &person,
                        subject: None,
                        investigation: None,
                        detail,
                    };
                    WorkspaceEvent::record(c, event)?;
                    Workspace::delete(c, ws.id)?;
                }
                Person::delete(c, id)
            }
        }?;
        Ok(files)
    })
}

/// How many kept documents deleting `item` would delete (for the confirmation).
pub fn kept_files(conn: &mut DbConn, item: Item) -> diesel::QueryResult<usize> {
    let mut ids = std::collections::HashSet::new();
    for assay in item.assays(conn)? {
        ids.extend(FileAsset::of_assay(conn, assay, Which::Available)?.into_iter().map(|f| f.id));
    }
    if let Item::Person(id) = item {
        ids.extend(FileAsset::kept_of_uploader(conn, id)?.into_iter().map(|f| f.id));
    }
    Ok(ids.len())
}
