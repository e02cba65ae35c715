//! Proving every stored byte (`toxtemp verify-storage`): the database and the bucket compared
//! in one listing pass, and optionally every kept object read back and hashed.
//!
//! Findings:
//! - **missing object** — a kept file's row has no object (deleted behind our back, a bucket
//!   restored from an older backup);
//! - **stray object** — an object with no row, or whose file was deleted (an interrupted
//!   upload or deletion, a copy made by hand);
//! - **size mismatch** — the object's size differs from the row's;
//! - **content mismatch** (with `rehash`) — its SHA-256 differs from the one recorded at upload;
//! - **unreadable** (with `rehash`) — listed, but reading it failed;
//! - **incomplete upload** — begun and never completed, older than the grace period.
//!
//! `repair` marks rows with missing objects `lost` (an audit event each; a row that answers
//! link to is marked too, and the report says how many answers), deletes stray objects and
//! aborts incomplete uploads older than the grace period. Changed bytes are reported, never
//! "repaired": someone has to look. Reading is streamed and a few objects at a time.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::db::models::{FileAsset, FileAssetId, FileAssetStatus, FileAuditEvent, FileEvent};
use crate::db::schema::{answer_files, file_assets, storage_checks};
use crate::db::{self, Pool, now, write_transaction};
use crate::storage::{ObjectStore, StorageError};

/// Who is named on the audit trail of a repair.
const ACTOR: &str = "verify-storage";
/// Objects read back at once.
const AT_ONCE: usize = 4;
/// Findings kept in a stored report (all of them are printed).
const STORED_FINDINGS: usize = 1000;
/// The prefix of our object keys.
const PREFIX: &str = "fileassets/";

#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Read every kept object back and compare its SHA-256.
    pub rehash: bool,
    /// With `rehash`: the share of kept files read back, from 1 to 100.
    pub sample_percent: u8,
    pub repair: bool,
    /// Repair even when very many objects are missing or stray (see [`too_many`]).
    pub force: bool,
    /// Stray objects and incomplete uploads younger than this are left alone (they may be
    /// an upload in progress).
    pub grace: chrono::Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self { rehash: false, sample_percent: 100, repair: false, force: false, grace: chrono::Duration::hours(24) }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    MissingObject,
    StrayObject,
    SizeMismatch,
    ContentMismatch,
    Unreadable,
    IncompleteUpload,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingObject => "missing object",
            Self::StrayObject => "stray object",
            Self::SizeMismatch => "size mismatch",
            Self::ContentMismatch => "content mismatch",
            Self::Unreadable => "unreadable",
            Self::IncompleteUpload => "incomplete upload",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub key: String,
    /// The file's id and name, where a row belongs to the key.
    pub file: Option<String>,
    pub name: Option<String>,
    pub detail: String,
    /// Answers that link the file.
    pub linked: i64,
    pub repaired: bool,
    /// Too many of its kind to repair without `force`.
    #[serde(skip)]
    pub held_back: bool,
}

/// What a verification found.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    pub started_at: NaiveDateTime,
    pub finished_at: NaiveDateTime,
    /// Rows of files that should have an object.
    pub files: usize,
    /// Objects listed under our prefix.
    pub objects: usize,
    pub bytes: u64,
    pub rehashed: usize,
    pub repair: bool,
    pub findings: Vec<Finding>,
}

impl Verification {
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.repaired)
    }

    /// Findings by kind.
    pub fn counts(&self) -> Vec<(FindingKind, usize)> {
        let mut counts: Vec<(FindingKind, usize)> = Vec::new();
        for f in &self.findings {
            match counts.iter_mut().find(|(k, _)| *k == f.kind) {
                Some((_, n)) => *n += 1,
                None => counts.push((f.kind, 1)),
            }
        }
        counts
    }
}

/// A row as the verification needs it.
#[derive(Clone, Debug, Queryable)]
struct Row {
    id: FileAssetId,
    key: String,
    name: String,
    size: i64,
    sha256: String,
    status: FileAssetStatus,
}

/// Compare the database with the bucket (see the module documentation) and store the report.
pub async fn verify_storage(
    pool: &Pool,
    store: &dyn ObjectStore,
    options: &VerifyOptions,
) -> anyhow::Result<Verification> {
    let started_at = now();
    let rows: Vec<Row> = db::blocking(pool, |c| {
        Ok::<_, anyhow::Error>(
            file_assets::table
                .select((
                    file_assets::id,
                    file_assets::object_key,
                    file_assets::original_filename,
                    file_assets::size_bytes,
                    file_assets::sha256,
                    file_assets::status,
                ))
                .load(c)?,
        )
    })
    .await?;
    let listed: HashMap<String, crate::storage::ObjectMeta> =
        store.list(PREFIX).await?.into_iter().map(|o| (o.key.clone(), o)).collect();
    let by_key: HashMap<&str, &Row> = rows.iter().map(|r| (r.key.as_str(), r)).collect();
    let kept = |r: &Row| matches!(r.status, FileAssetStatus::Available | FileAssetStatus::Pending);
    let mut findings = Vec::new();
    let old_enough = |at: Option<NaiveDateTime>| at.is_none_or(|at| at < started_at - options.grace);

    for row in rows.iter().filter(|r| kept(r)) {
        match listed.get(&row.key) {
            None => findings.push(finding(FindingKind::MissingObject, row, "no object in storage")),
            Some(o) if o.size as i64 != row.size => {
                let detail = format!("{} bytes in storage, {} recorded", o.size, row.size);
                findings.push(finding(FindingKind::SizeMismatch, row, &detail));
            }
            Some(_) => {}
        }
    }
    for object in listed.values() {
        let stray = match by_key.get(object.key.as_str()) {
            None => Some("no file row"),
            Some(r) if matches!(r.status, FileAssetStatus::Deleted | FileAssetStatus::Lost) => {
                Some("its file was deleted")
            }
            Some(_) => None,
        };
        if let Some(why) = stray
            && old_enough(object.modified)
        {
            let row = by_key.get(object.key.as_str()).copied();
            findings.push(Finding {
                kind: FindingKind::StrayObject,
                key: object.key.clone(),
                file: row.map(|r| r.id.to_string()),
                name: row.map(|r| r.name.clone()),
                detail: format!("{why} ({} bytes)", object.size),
                linked: 0,
                repaired: false,
                held_back: false,
            });
        }
    }
    let mut rehashed = 0;
    if options.rehash {
        let day = i64::from(chrono::Datelike::num_days_from_ce(&started_at.date()));
        let present: Vec<&Row> = rows
            .iter()
            .filter(|r| kept(r) && listed.get(&r.key).is_some_and(|o| o.size as i64 == r.size))
            .filter(|r| sampled(&r.id, options.sample_percent, day))
            .collect();
        rehashed = present.len();
        let digests: Vec<(&Row, Result<String, StorageError>)> = futures_util::stream::iter(present)
            .map(|row| async move { (row, digest_of(store, &row.key).await) })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
        for (row, digest) in digests {
            match digest {
                Ok(sha) if sha == row.sha256 => {}
                Ok(sha) => findings.push(finding(FindingKind::ContentMismatch, row, &format!("SHA-256 now {sha}"))),
                Err(err) => findings.push(finding(FindingKind::Unreadable, row, &err.to_string())),
            }
        }
    }
    match store.incomplete_uploads().await {
        Ok(uploads) => {
            for upload in uploads.into_iter().filter(|u| old_enough(u.initiated)) {
                findings.push(Finding {
                    kind: FindingKind::IncompleteUpload,
                    key: upload.key.clone(),
                    file: None,
                    name: None,
                    detail: format!(
                        "begun {}, never completed",
                        upload
                            .initiated
                            .map_or("at an unknown time".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
                    ),
                    linked: 0,
                    repaired: false,
                    held_back: false,
                });
                if options.repair {
                    let last = findings.last_mut().expect("just pushed");
                    match store.abort_upload(&upload).await {
                        Ok(()) => last.repaired = true,
                        Err(err) => last.detail.push_str(&format!("; not aborted: {err}")),
                    }
                }
            }
        }
        Err(err) => tracing::warn!(error = %err, "incomplete uploads could not be listed"),
    }
    count_links(pool, &mut findings).await?;
    if options.repair {
        let files = rows.iter().filter(|r| kept(r)).count();
        hold_back_mass_repairs(&mut findings, files, listed.len(), options.force);
        repair(pool, store, &mut findings).await?;
    }
    let report = Verification {
        started_at,
        finished_at: now(),
        files: rows.iter().filter(|r| kept(r)).count(),
        objects: listed.len(),
        bytes: listed.values().map(|o| o.size).sum(),
        rehashed,
        repair: options.repair,
        findings,
    };
    save(pool, &report, options.rehash).await?;
    Ok(report)
}

fn finding(kind: FindingKind, row: &Row, detail: &str) -> Finding {
    Finding {
        kind,
        key: row.key.clone(),
        file: Some(row.id.to_string()),
        name: Some(row.name.clone()),
        detail: detail.to_owned(),
        linked: 0,
        repaired: false,
        held_back: false,
    }
}

/// Whether a file is in `day`'s sample: files fall into 100 fixed slots by a hash of their
/// id, and each day's sample is the next `percent` slots — so daily runs with the same share
/// read every file back within 100 / `percent` days.
fn sampled(id: &FileAssetId, percent: u8, day: i64) -> bool {
    let hash = Sha256::digest(id.to_string().as_bytes());
    let slot = i64::from(u16::from_be_bytes([hash[0], hash[1]]) % 100);
    let share = i64::from(percent.clamp(1, 100));
    (slot - day * share).rem_euclid(100) < share
}

async fn digest_of(store: &dyn ObjectStore, key: &str) -> Result<String, StorageError> {
    let mut stream = store.get_stream(key).await?;
    let mut hash = Sha256::new();
    while let Some(chunk) = stream.next().await {
        hash.update(&chunk.map_err(StorageError::Io)?);
    }
    Ok(hex::encode(hash.finalize()))
}

async fn count_links(pool: &Pool, findings: &mut [Finding]) -> anyhow::Result<()> {
    let ids: Vec<String> = findings.iter().filter_map(|f| f.file.clone()).collect();
    let counts: HashMap<String, i64> = db::blocking(pool, move |c| {
        use diesel::dsl::count_star;
        Ok::<_, anyhow::Error>(
            answer_files::table
                .filter(answer_files::file_id.eq_any(&ids))
                .group_by(answer_files::file_id)
                .select((answer_files::file_id, count_star()))
                .load::<(String, i64)>(c)?
                .into_iter()
                .collect(),
        )
    })
    .await?;
    for f in findings.iter_mut() {
        f.linked = f.file.as_ref().and_then(|id| counts.get(id)).copied().unwrap_or(0);
    }
    Ok(())
}

/// More than this many of `total` at once is not a few lost objects but, most likely, the
/// wrong bucket, key prefix or database: a repair would then mark every file lost, or delete
/// every object.
fn too_many(n: usize, total: usize) -> bool {
    n > (total / 10).max(10)
}

/// Mark the missing and stray findings that are too many to repair without `--force` as held
/// back (repair skips findings whose `held_back` is set).
fn hold_back_mass_repairs(findings: &mut [Finding], files: usize, objects: usize, force: bool) {
    let count = |kind| findings.iter().filter(|f| f.kind == kind).count();
    let held = [
        (FindingKind::MissingObject, too_many(count(FindingKind::MissingObject), files)),
        (FindingKind::StrayObject, too_many(count(FindingKind::StrayObject), objects)),
    ];
    for (kind, too_many) in held {
        if !too_many || force {
            continue;
        }
        tracing::warn!(kind = kind.as_str(), "too many findings of one kind to repair without --force");
        for f in findings.iter_mut().filter(|f| f.kind == kind) {
            f.held_back = true;
            f.detail.push_str(
                "; not repaired: too many at once — check the bucket, key prefix and database, then repeat with --force",
            );
        }
    }
}

async fn repair(pool: &Pool, store: &dyn ObjectStore, findings: &mut [Finding]) -> anyhow::Result<()> {
    for f in findings.iter_mut().filter(|f| !f.repaired && !f.held_back) {
        match f.kind {
            FindingKind::StrayObject => match store.delete(&f.key).await {
                Ok(()) => f.repaired = true,
                Err(err) => f.detail.push_str(&format!("; not deleted: {err}")),
            },
            FindingKind::MissingObject => {
                let Some(id) = f.file.as_deref().and_then(|id| uuid::Uuid::parse_str(id).ok()) else { continue };
                let id = FileAssetId::from(id);
                let marked = db::blocking(pool, move |c| {
                    write_transaction(c, |c| {
                        let asset = FileAsset::find(c, &id)?;
                        let n = diesel::update(file_assets::table.find(&id))
                            .filter(file_assets::status.eq_any([FileAssetStatus::Available, FileAssetStatus::Pending]))
                            .set(file_assets::status.eq(FileAssetStatus::Lost))
                            .execute(c)?;
                        if n == 1 {
                            FileAuditEvent::record(c, &asset, FileEvent::ObjectLost, ACTOR)?;
                        }
                        Ok::<_, anyhow::Error>(n == 1)
                    })
                })
                .await?;
                f.repaired = marked;
                if marked && f.linked > 0 {
                    f.detail.push_str(&format!("; marked lost — {} answer(s) link it", f.linked));
                } else if marked {
                    f.detail.push_str("; marked lost");
                }
            }
            // Changed or unreadable bytes need a person; nothing is changed.
            _ => {}
        }
    }
    Ok(())
}

async fn save(pool: &Pool, report: &Verification, rehashed: bool) -> anyhow::Result<()> {
    let summary = serde_json::json!({
        "files": report.files,
        "objects": report.objects,
        "bytes": report.bytes,
        "rehashed": report.rehashed,
        "findings": report.findings.len(),
        "by_kind": report.counts().iter().map(|(k, n)| (k.as_str(), *n)).collect::<HashMap<_, _>>(),
        "unrepaired": report.findings.iter().filter(|f| !f.repaired).count(),
    })
    .to_string();
    let stored: Vec<&Finding> = report.findings.iter().take(STORED_FINDINGS).collect();
    let findings = serde_json::to_string(&stored)?;
    let (started, finished, repaired) = (report.started_at, report.finished_at, report.repair);
    db::blocking(pool, move |c| {
        diesel::insert_into(storage_checks::table)
            .values((
                storage_checks::started_at.eq(started),
                storage_checks::finished_at.eq(finished),
                storage_checks::rehashed.eq(rehashed),
                storage_checks::repaired.eq(repaired),
                storage_checks::summary.eq(summary),
                storage_checks::findings.eq(findings),
            ))
            .execute(c)?;
        Ok::<_, anyhow::Error>(())
    })
    .await
}

/// The last stored report, for the staff page.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = storage_checks)]
pub struct StorageCheck {
    pub id: i32,
    pub started_at: NaiveDateTime,
    pub finished_at: NaiveDateTime,
    pub rehashed: bool,
    pub repaired: bool,
    pub summary: String,
    pub findings: String,
}

impl StorageCheck {
    pub fn last(conn: &mut crate::db::DbConn) -> QueryResult<Option<StorageCheck>> {
        storage_checks::table.order(storage_checks::id.desc()).select(Self::as_select()).first(conn).optional()
    }

    pub fn summary(&self) -> serde_json::Value {
        serde_json::from_str(&self.summary).unwrap_or_default()
    }

    pub fn findings(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.findings).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_samples_cover_every_file_in_turn() {
        let ids: Vec<FileAssetId> = (0..500).map(|_| FileAssetId::from(uuid::Uuid::new_v4())).collect();
        for id in &ids {
            let days_sampled = (0..10).filter(|day| sampled(id, 10, 738_000 + day)).count();
            assert_eq!(days_sampled, 1, "ten nights of 10 % read each file back exactly once");
            assert!(sampled(id, 100, 5));
        }
        let one_night = ids.iter().filter(|id| sampled(id, 10, 738_000)).count();
        assert!((20..=90).contains(&one_night), "about a tenth: {one_night} of 500");
    }

    fn findings(kind: FindingKind, n: usize) -> Vec<Finding> {
        let f = Finding {
            kind,
            key: String::new(),
            file: None,
            name: None,
            detail: String::new(),
            linked: 0,
            repaired: false,
            held_back: false,
        };
        vec![f; n]
    }

    #[test]
    fn a_mass_of_missing_or_stray_objects_is_held_back_unless_forced() {
        let mut few = findings(FindingKind::MissingObject, 10);
        hold_back_mass_repairs(&mut few, 20, 10, false);
        assert!(few.iter().all(|f| !f.held_back), "ten at most are always repaired");
        let mut wrong_bucket = findings(FindingKind::MissingObject, 300);
        hold_back_mass_repairs(&mut wrong_bucket, 1000, 700, false);
        assert!(wrong_bucket.iter().all(|f| f.held_back && f.detail.contains("--force")));
        let mut wrong_database = findings(FindingKind::StrayObject, 1000);
        hold_back_mass_repairs(&mut wrong_database, 0, 1000, true);
        assert!(wrong_database.iter().all(|f| !f.held_back), "forced");
    }
}
