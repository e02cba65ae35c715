//! The audit trail of kept files: one row (and one `toxtemp::audit` log line) for every file
//! deleted, whoever deleted it and why. Rows carry copies of what the file was, so they
//! outlive the file and the people involved.

use diesel::prelude::*;

use crate::db::schema::file_audit_events;
use crate::db::{DbConn, now};

use super::{FileAsset, FileAssetId};

/// Why something happened to a kept file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileEvent {
    /// The orphan cleanup removed a file no answer links to.
    OrphanDeleted,
    /// Its uploader (or the assay's owner) took back the consent to keep it.
    ConsentWithdrawn,
    /// The assay it was kept for (or its study or investigation) was deleted by its owner.
    OwnerDeleted,
    /// Its object was found missing from storage (`verify-storage --repair`).
    ObjectLost,
}

impl FileEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrphanDeleted => "orphan_deleted",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::OwnerDeleted => "assay_deleted",
            Self::ObjectLost => "object_lost",
        }
    }

    fn log_message(self) -> &'static str {
        match self {
            Self::OrphanDeleted => "deleted an orphaned file asset",
            Self::ConsentWithdrawn => "deleted a kept file: consent withdrawn",
            Self::OwnerDeleted => "deleted a kept file: its assay was deleted",
            Self::ObjectLost => "a kept file's object is missing from storage",
        }
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = file_audit_events)]
pub struct FileAuditEvent {
    pub id: i32,
    pub file_id: FileAssetId,
    pub event: String,
    pub detail: String,
    pub actor: String,
    pub created_at: chrono::NaiveDateTime,
}

impl FileAuditEvent {
    /// Record `event` for `asset`; `actor` says who asked (a person, or a command).
    pub fn record(conn: &mut DbConn, asset: &FileAsset, event: FileEvent, actor: &str) -> QueryResult<usize> {
        let detail = serde_json::json!({
            "original_filename": asset.original_filename,
            "size_bytes": asset.size_bytes,
            "sha256": asset.sha256,
            "bucket": asset.bucket,
            "object_key": asset.object_key,
            "assay_id": asset.assay_id,
            "created_at": asset.created_at.to_string(),
        });
        tracing::info!(
            target: "toxtemp::audit",
            event = event.as_str(),
            file = %asset.id,
            name = %asset.original_filename,
            size = asset.size_bytes,
            key = %asset.object_key,
            actor,
            "{}",
            event.log_message()
        );
        diesel::insert_into(file_audit_events::table)
            .values((
                file_audit_events::file_id.eq(&asset.id),
                file_audit_events::event.eq(event.as_str()),
                file_audit_events::detail.eq(detail.to_string()),
                file_audit_events::actor.eq(actor),
                file_audit_events::created_at.eq(now()),
            ))
            .execute(conn)
    }

    /// Drop the original file name from the events of these files (after the retention
    /// period); everything else stays.
    pub fn forget_names(conn: &mut DbConn, files: &[FileAssetId]) -> QueryResult<usize> {
        let events: Vec<(i32, String)> = file_audit_events::table
            .filter(file_audit_events::file_id.eq_any(files))
            .select((file_audit_events::id, file_audit_events::detail))
            .load(conn)?;
        let mut changed = 0;
        for (id, detail) in events {
            let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str::<serde_json::Value>(&detail) else {
                continue;
            };
            if fields.remove("original_filename").is_some() {
                let detail = serde_json::Value::Object(fields).to_string();
                changed += diesel::update(file_audit_events::table.find(id))
                    .set(file_audit_events::detail.eq(detail))
                    .execute(conn)?;
            }
        }
        Ok(changed)
    }

    pub fn of_file(conn: &mut DbConn, file_id: &FileAssetId) -> QueryResult<Vec<FileAuditEvent>> {
        file_audit_events::table
            .filter(file_audit_events::file_id.eq(file_id))
            .order(file_audit_events::id)
            .select(Self::as_select())
            .load(conn)
    }
}
