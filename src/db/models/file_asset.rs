//! Stored documents (FileAsset), their links to answers (AnswerFile) and the audit trail of
//! downloads (FileDownloadLog).
//!
//! A FileAsset's life: `available` → (claimed for deletion) `deleting` → `deleted` (consent
//! withdrawn: the row stays for the audit trail) or gone (an orphan: the row is removed).
//! Every transition is a function here and only here, each guarded by the status it starts
//! from, so that two actors (say the orphan cleanup and a drafting run linking the file) can
//! never both win for one file.

use std::fmt;
use std::str::FromStr;

use diesel::dsl::{exists, not};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::{answer_files, answers, assays, benchmark_item_files, file_assets, file_download_logs};
use crate::db::{DbConn, now};

/// The id of a FileAsset: a UUID, stored as text on both backends.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(transparent)]
pub struct FileAssetId(String);

impl FileAssetId {
    pub fn new() -> Self {
        uuid::Uuid::new_v4().into()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn uuid(&self) -> Option<uuid::Uuid> {
        uuid::Uuid::parse_str(&self.0).ok()
    }
}

impl Default for FileAssetId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<uuid::Uuid> for FileAssetId {
    fn from(id: uuid::Uuid) -> Self {
        Self(id.to_string())
    }
}

impl fmt::Display for FileAssetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for FileAssetId {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

super::text_sql_type!(FileAssetId);

#[derive(Clone, Copy, Debug, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum FileAssetStatus {
    /// Stored by a submission that has not scheduled its run yet: not linkable, not an orphan
    /// (unless its submission died long ago).
    Pending,
    Available,
    /// Claimed by a deletion (orphan cleanup, consent withdrawal) that has not finished yet:
    /// linking refuses it; a crashed deletion is finished by the next one.
    Deleting,
    Deleted,
    /// Its object is gone from storage without us deleting it (found by `verify-storage`):
    /// the row stays, with its SHA-256 and links, as the record of what was lost.
    Lost,
}

impl FileAssetStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Available => "available",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Lost => "lost",
        }
    }
}

impl FromStr for FileAssetStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "available" => Ok(Self::Available),
            "deleting" => Ok(Self::Deleting),
            "deleted" => Ok(Self::Deleted),
            "lost" => Ok(Self::Lost),
            other => Err(format!("unknown file status {other:?}")),
        }
    }
}

impl fmt::Display for FileAssetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

super::text_sql_type!(FileAssetStatus);

/// A document kept (with consent) in object storage. The original filename lives only here,
/// never in the object key.
#[derive(Clone, Debug, Queryable, Selectable, Identifiable, Insertable, PartialEq)]
#[diesel(table_name = file_assets)]
pub struct FileAsset {
    pub id: FileAssetId,
    pub bucket: String,
    pub object_key: String,
    pub original_filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub status: FileAssetStatus,
    pub uploaded_by: Option<i32>,
    pub assay_id: Option<i32>,
    pub created_at: chrono::NaiveDateTime,
    pub deleted_at: Option<chrono::NaiveDateTime>,
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = answer_files)]
pub struct AnswerFile {
    pub id: i32,
    pub answer_id: i32,
    pub file_id: FileAssetId,
    pub label: Option<String>,
    pub created_at: chrono::NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = file_download_logs)]
pub struct FileDownloadLog {
    pub id: i32,
    pub file_id: FileAssetId,
    pub original_filename: String,
    pub person_id: Option<i32>,
    pub person_email: String,
    pub ip_address: String,
    pub downloaded_at: chrono::NaiveDateTime,
}

/// What a deleted file's name becomes after the retention period.
pub const FORGOTTEN_NAME: &str = "";

/// Why a file is linked to an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLabel {
    /// The answer cites a passage of the file (verified).
    Cited,
    /// The file was part of the run that drafted the answer, nothing more.
    Context,
}

impl LinkLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cited => "cited",
            Self::Context => "context",
        }
    }
}

/// Which of an assay's files to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// Those still kept.
    Available,
    /// Every file it has or had, deleted ones included.
    All,
}

use FileAssetStatus::{Available, Deleted, Deleting, Pending};

impl FileAsset {
    pub fn insert(conn: &mut DbConn, asset: &FileAsset) -> QueryResult<usize> {
        diesel::insert_into(file_assets::table).values(asset).execute(conn)
    }

    pub fn find(conn: &mut DbConn, id: &FileAssetId) -> QueryResult<FileAsset> {
        file_assets::table.find(id).select(Self::as_select()).first(conn)
    }

    pub fn is_available(&self) -> bool {
        self.status == Available
    }

    /// The files of an assay, oldest first: uploaded for it (so that files not linked yet are
    /// found) or linked to any of its answers.
    pub fn of_assay(conn: &mut DbConn, assay_id: i32, which: Which) -> QueryResult<Vec<FileAsset>> {
        let linked = answer_files::table
            .inner_join(answers::table)
            .filter(answers::assay_id.eq(assay_id))
            .select(answer_files::file_id);
        let mut query = file_assets::table
            .filter(file_assets::assay_id.eq(assay_id).or(file_assets::id.eq_any(linked)))
            .order((file_assets::created_at, file_assets::id))
            .select(Self::as_select())
            .into_boxed();
        if which == Which::Available {
            query = query.filter(file_assets::status.eq(Available));
        }
        query.load(conn)
    }

    /// Take the row lock of an available file (an UPDATE that changes nothing) and say whether
    /// it is still available. Linking does this first; deletions claim with the same kind of
    /// update, so the two are serialised per file.
    pub fn lock_if_available(conn: &mut DbConn, id: &FileAssetId) -> QueryResult<bool> {
        let locked = diesel::update(file_assets::table.find(id).filter(file_assets::status.eq(Available)))
            .set(file_assets::status.eq(Available))
            .execute(conn)?;
        Ok(locked == 1)
    }

    /// Files a person uploaded that are not deleted: in their own assays, in assays shared
    /// with them (consent is the uploader's), and in none any more.
    pub fn kept_of_uploader(conn: &mut DbConn, person_id: i32) -> QueryResult<Vec<FileAsset>> {
        file_assets::table
            .filter(file_assets::uploaded_by.eq(person_id))
            .filter(file_assets::status.ne(Deleted))
            .select(Self::as_select())
            .load(conn)
    }

    /// Claim files for deletion (`available` or `pending` → `deleting`); returns the ids
    /// claimed. Files in `deleting` already (a deletion that crashed half-way) are claimed again.
    pub fn claim_for_deletion(conn: &mut DbConn, ids: &[FileAssetId]) -> QueryResult<Vec<FileAssetId>> {
        diesel::update(
            file_assets::table
                .filter(file_assets::id.eq_any(ids))
                .filter(file_assets::status.eq_any([Available, Pending, Deleting])),
        )
        .set(file_assets::status.eq(Deleting))
        .returning(file_assets::id)
        .get_results(conn)
    }

    /// Like [`Self::claim_for_deletion`], but only orphans: files that no answer links to, no
    /// benchmark set refers to and no run is waiting for (their assay is not scheduled or busy). Call inside a transaction.
    /// A link committed while the claim waited for a row lock may be invisible to the claim's
    /// own check (PostgreSQL re-checks the row, not the sub-select), so the links are looked up
    /// again afterwards and those files given back.
    pub fn claim_unlinked_for_deletion(conn: &mut DbConn, ids: &[FileAssetId]) -> QueryResult<Vec<FileAssetId>> {
        let running = [super::AssayStatus::Scheduled.as_str(), super::AssayStatus::Busy.as_str()];
        let claimed: Vec<FileAssetId> = diesel::update(
            file_assets::table
                .filter(file_assets::id.eq_any(ids))
                .filter(file_assets::status.eq_any([Available, Deleting, Pending]))
                .filter(not(exists(answer_files::table.filter(answer_files::file_id.eq(file_assets::id)))))
                .filter(not(exists(
                    benchmark_item_files::table.filter(benchmark_item_files::file_id.eq(file_assets::id)),
                )))
                .filter(not(exists(
                    assays::table
                        .filter(assays::id.nullable().eq(file_assets::assay_id))
                        .filter(assays::status.eq_any(running)),
                ))),
        )
        .set(file_assets::status.eq(Deleting))
        .returning(file_assets::id)
        .get_results(conn)?;
        let linked: Vec<FileAssetId> = answer_files::table
            .filter(answer_files::file_id.eq_any(&claimed))
            .select(answer_files::file_id)
            .distinct()
            .load(conn)?;
        if linked.is_empty() {
            return Ok(claimed);
        }
        diesel::update(file_assets::table.filter(file_assets::id.eq_any(&linked)))
            .set(file_assets::status.eq(Available))
            .execute(conn)?;
        Ok(claimed.into_iter().filter(|id| !linked.contains(id)).collect())
    }

    /// Give claimed files back (`deleting` → `available`): their objects could not be deleted.
    pub fn release(conn: &mut DbConn, ids: &[FileAssetId]) -> QueryResult<usize> {
        diesel::update(file_assets::table.filter(file_assets::id.eq_any(ids)).filter(file_assets::status.eq(Deleting)))
            .set(file_assets::status.eq(Available))
            .execute(conn)
    }

    /// Claimed files whose objects are gone: `deleting` → `deleted`; the rows stay, their
    /// stored passages (derived from the file) go.
    pub fn mark_deleted(conn: &mut DbConn, ids: &[FileAssetId]) -> QueryResult<usize> {
        super::FilePassage::delete_of(conn, ids)?;
        diesel::update(file_assets::table.filter(file_assets::id.eq_any(ids)).filter(file_assets::status.eq(Deleting)))
            .set((file_assets::status.eq(Deleted), file_assets::deleted_at.eq(Some(now()))))
            .execute(conn)
    }

    /// A submission's files once its run is scheduled: `pending` → `available` (linkable), and
    /// of that assay (files stored while the form was still arriving did not know it yet).
    pub fn make_available(conn: &mut DbConn, ids: &[FileAssetId], assay_id: i32) -> QueryResult<usize> {
        diesel::update(file_assets::table.filter(file_assets::id.eq_any(ids)).filter(file_assets::status.eq(Pending)))
            .set((file_assets::status.eq(Available), file_assets::assay_id.eq(Some(assay_id))))
            .execute(conn)
    }

    /// Deleted files whose deletion is older than `cutoff` keep no original name (their SHA-256,
    /// size and audit trail stay). Returns the rows changed.
    pub fn forget_names_deleted_before(
        conn: &mut DbConn,
        cutoff: chrono::NaiveDateTime,
    ) -> QueryResult<Vec<FileAssetId>> {
        diesel::update(
            file_assets::table
                .filter(file_assets::status.eq(Deleted))
                .filter(file_assets::deleted_at.lt(cutoff))
                .filter(file_assets::original_filename.ne(FORGOTTEN_NAME)),
        )
        .set(file_assets::original_filename.eq(FORGOTTEN_NAME))
        .returning(file_assets::id)
        .get_results(conn)
    }

    /// The name shown for a file whose name was dropped after its deletion.
    pub fn shown_name(&self) -> &str {
        if self.original_filename == FORGOTTEN_NAME { "(name removed)" } else { &self.original_filename }
    }

    /// Claimed files whose objects are gone and whose rows go too (orphans).
    pub fn remove_claimed(conn: &mut DbConn, ids: &[FileAssetId]) -> QueryResult<usize> {
        diesel::delete(file_assets::table.filter(file_assets::id.eq_any(ids)).filter(file_assets::status.eq(Deleting)))
            .execute(conn)
    }

    /// Files a failed submission stored but could not remove again: detached from the assay
    /// and left `deleting`, so the orphan cleanup retries the object delete.
    pub fn abandon(conn: &mut DbConn, ids: &[FileAssetId]) -> QueryResult<usize> {
        diesel::update(file_assets::table.filter(file_assets::id.eq_any(ids)))
            .set((file_assets::status.eq(Deleting), file_assets::assay_id.eq(None::<i32>)))
            .execute(conn)
    }

    /// Rows of a submission that failed before anything linked them (their objects are gone).
    pub fn delete_unlinked_rows(conn: &mut DbConn, ids: &[FileAssetId]) -> QueryResult<usize> {
        diesel::delete(
            file_assets::table
                .filter(file_assets::id.eq_any(ids))
                .filter(not(exists(answer_files::table.filter(answer_files::file_id.eq(file_assets::id))))),
        )
        .execute(conn)
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

    /// Link a file to an answer with this label, or relabel the existing link (a redraft may
    /// cite a file the earlier draft did not); returns the link either way.
    pub fn ensure(
        conn: &mut DbConn,
        answer_id: i32,
        file_id: &FileAssetId,
        label: LinkLabel,
    ) -> QueryResult<AnswerFile> {
        let existing = answer_files::table
            .filter(answer_files::answer_id.eq(answer_id))
            .filter(answer_files::file_id.eq(file_id))
            .select(answer_files::id)
            .first::<i32>(conn)
            .optional()?;
        let id = match existing {
            Some(id) => {
                diesel::update(answer_files::table.find(id))
                    .set(answer_files::label.eq(label.as_str()))
                    .execute(conn)?;
                id
            }
            None => diesel::insert_into(answer_files::table)
                .values((
                    answer_files::answer_id.eq(answer_id),
                    answer_files::file_id.eq(file_id),
                    answer_files::label.eq(label.as_str()),
                    answer_files::created_at.eq(now()),
                ))
                .returning(answer_files::id)
                .get_result(conn)?,
        };
        answer_files::table.find(id).select(Self::as_select()).first(conn)
    }

    pub fn label(&self) -> Option<LinkLabel> {
        match self.label.as_deref() {
            Some("cited") => Some(LinkLabel::Cited),
            Some("context") => Some(LinkLabel::Context),
            _ => None,
        }
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

    /// Drop the file name from the download log of these files (after the retention period).
    pub fn forget_names(conn: &mut DbConn, files: &[FileAssetId]) -> QueryResult<usize> {
        diesel::update(file_download_logs::table.filter(file_download_logs::file_id.eq_any(files)))
            .set(file_download_logs::original_filename.eq(FORGOTTEN_NAME))
            .execute(conn)
    }

    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<FileDownloadLog>> {
        file_download_logs::table.order(file_download_logs::id.desc()).select(Self::as_select()).load(conn)
    }
}
