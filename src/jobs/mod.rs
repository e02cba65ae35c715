//! The durable job queue: rows in the `jobs` table, enqueued in the same transaction as the
//! state change they belong to, claimed by workers in the server process.
//!
//! Claiming takes `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several server processes can
//! share the queue; on SQLite the claim runs in a `BEGIN IMMEDIATE` transaction. Running jobs
//! send a heartbeat; a job whose heartbeat stopped (its server died) goes back to the queue,
//! so nothing stays `running` — or its assay `busy` — forever.

pub mod worker;

use std::time::Duration;

use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::jobs;
use crate::db::{DbConn, now, write_transaction};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

#[derive(Clone, Debug, Queryable, QueryableByName, Selectable, Identifiable, PartialEq)]
#[diesel(table_name = jobs)]
pub struct Job {
    pub id: i32,
    pub kind: String,
    pub payload: String,
    pub assay_id: Option<i32>,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_after: chrono::NaiveDateTime,
    pub locked_by: Option<String>,
    pub heartbeat_at: Option<chrono::NaiveDateTime>,
    pub last_error: String,
    pub created_at: chrono::NaiveDateTime,
    pub finished_at: Option<chrono::NaiveDateTime>,
}

/// Add a job; call inside the transaction that makes the change it belongs to.
pub fn enqueue(conn: &mut DbConn, kind: &str, payload: &impl Serialize, assay_id: Option<i32>) -> anyhow::Result<i32> {
    let payload = serde_json::to_string(payload)?;
    let at = now();
    Ok(diesel::insert_into(jobs::table)
        .values((
            jobs::kind.eq(kind),
            jobs::payload.eq(payload),
            jobs::assay_id.eq(assay_id),
            jobs::status.eq(QUEUED),
            jobs::run_after.eq(at),
            jobs::created_at.eq(at),
        ))
        .returning(jobs::id)
        .get_result(conn)?)
}

/// Take the oldest ready job, if any, and mark it running for `worker`.
pub fn claim_next(conn: &mut DbConn, worker: &str) -> QueryResult<Option<Job>> {
    let at = now();
    match conn {
        DbConn::Postgres(pg) => diesel::sql_query(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1, heartbeat_at = $2 \
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_after <= $2 \
                         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING *",
        )
        .bind::<diesel::sql_types::Text, _>(worker)
        .bind::<diesel::sql_types::Timestamp, _>(at)
        .get_result::<Job>(pg)
        .optional(),
        DbConn::Sqlite(_) => write_transaction(conn, |conn| {
            let next: Option<i32> = jobs::table
                .filter(jobs::status.eq(QUEUED))
                .filter(jobs::run_after.le(at))
                .order(jobs::id)
                .select(jobs::id)
                .first(conn)
                .optional()?;
            let Some(id) = next else { return Ok(None) };
            diesel::update(jobs::table.find(id))
                .set((
                    jobs::status.eq(RUNNING),
                    jobs::attempts.eq(jobs::attempts + 1),
                    jobs::locked_by.eq(worker),
                    jobs::heartbeat_at.eq(at),
                ))
                .execute(conn)?;
            jobs::table.find(id).select(Job::as_select()).first(conn).map(Some)
        }),
    }
}

pub fn heartbeat(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
    diesel::update(jobs::table.find(id).filter(jobs::status.eq(RUNNING)))
        .set(jobs::heartbeat_at.eq(now()))
        .execute(conn)
}

/// A finished job keeps no documents: the payload (the texts of the uploads) is dropped.
pub fn complete(conn: &mut DbConn, id: i32) -> QueryResult<usize> {
    diesel::update(jobs::table.find(id))
        .set((
            jobs::status.eq(DONE),
            jobs::payload.eq(EMPTY_PAYLOAD),
            jobs::finished_at.eq(now()),
            jobs::locked_by.eq(None::<String>),
        ))
        .execute(conn)
}

const EMPTY_PAYLOAD: &str = "{}";

/// Remove an assay's jobs (the assay is being deleted): their payloads hold its documents.
pub fn delete_for_assay(conn: &mut DbConn, assay_id: i32) -> QueryResult<usize> {
    delete_for_assays(conn, &[assay_id])
}

pub fn delete_for_assays(conn: &mut DbConn, assay_ids: &[i32]) -> QueryResult<usize> {
    diesel::delete(jobs::table.filter(jobs::assay_id.eq_any(assay_ids))).execute(conn)
}

/// Record a failure: back to the queue after `retry_in`, or `failed` for good once the
/// attempts are used up. Returns true when it failed for good.
pub fn fail(conn: &mut DbConn, job: &Job, error: &str, retry_in: Duration) -> QueryResult<bool> {
    let final_failure = job.attempts >= job.max_attempts;
    let status = if final_failure { FAILED } else { QUEUED };
    let run_after = now() + chrono::Duration::from_std(retry_in).unwrap_or_default();
    let payload = if final_failure { EMPTY_PAYLOAD.to_owned() } else { job.payload.clone() };
    diesel::update(jobs::table.find(job.id))
        .set((
            jobs::status.eq(status),
            jobs::payload.eq(payload),
            jobs::last_error.eq(error),
            jobs::run_after.eq(run_after),
            jobs::locked_by.eq(None::<String>),
            jobs::finished_at.eq(final_failure.then(now)),
        ))
        .execute(conn)?;
    Ok(final_failure)
}

/// Put running jobs whose heartbeat is older than `stale_after` back in the queue — or, when
/// they used up their attempts (a job that keeps killing its server), fail them for good and
/// say so on their assay.
pub fn requeue_stale(conn: &mut DbConn, stale_after: Duration) -> QueryResult<usize> {
    let cutoff = now() - chrono::Duration::from_std(stale_after).unwrap_or_default();
    let stale = jobs::table.filter(jobs::status.eq(RUNNING)).filter(jobs::heartbeat_at.lt(cutoff));
    let exhausted: Vec<Job> =
        stale.filter(jobs::attempts.ge(jobs::max_attempts)).select(Job::as_select()).load(conn)?;
    for job in &exhausted {
        fail(conn, job, "the worker running this job stopped responding too many times", Duration::ZERO)?;
        if let Some(assay_id) = job.assay_id
            && crate::db::models::Assay::exists(conn, assay_id)?
        {
            crate::db::models::Assay::set_status(conn, assay_id, crate::db::models::AssayStatus::Error)?;
            crate::db::models::Assay::push_alert(
                conn,
                assay_id,
                "Drafting the answers stopped unexpectedly several times and was given up. Please try again with fewer or smaller documents.",
            )?;
        }
    }
    let n = diesel::update(jobs::table.filter(jobs::status.eq(RUNNING)).filter(jobs::heartbeat_at.lt(cutoff)))
        .set((jobs::status.eq(QUEUED), jobs::locked_by.eq(None::<String>), jobs::run_after.eq(now())))
        .execute(conn)?;
    if n > 0 {
        tracing::warn!(jobs = n, "requeued jobs whose worker stopped sending heartbeats");
    }
    Ok(n)
}

pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<Job> {
    jobs::table.find(id).select(Job::as_select()).first(conn)
}

/// Jobs of an assay, newest first (for the assay page and admin).
pub fn of_assay(conn: &mut DbConn, assay_id: i32) -> QueryResult<Vec<Job>> {
    jobs::table.filter(jobs::assay_id.eq(assay_id)).order(jobs::id.desc()).select(Job::as_select()).load(conn)
}

/// Failed jobs, newest first, with their errors.
pub fn failed(conn: &mut DbConn) -> QueryResult<Vec<Job>> {
    jobs::table.filter(jobs::status.eq(FAILED)).order(jobs::id.desc()).select(Job::as_select()).load(conn)
}
