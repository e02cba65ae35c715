//! A durable, generic job queue: rows in the `jobs` table. It knows how to enqueue, claim,
//! keep alive, complete and fail a job, and nothing about what a job does — job types
//! implement [`BackgroundJob`] and are looked up by name in a [`Registry`]
//! (the shape of crates.io's `BackgroundJob`).
//!
//! - **Enqueue** inside the transaction that makes the change the job belongs to.
//! - **Claim** takes `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several server processes can
//!   share the queue; on SQLite the claim runs in a `BEGIN IMMEDIATE` transaction. Each claim
//!   gets a fresh token.
//! - **Heartbeat, complete, fail** are fenced on that token: a worker that lost its claim (its
//!   job was handed to another worker after its heartbeat stopped) can no longer change the
//!   job, so a requeued job is never finished twice.
//! - A job is about a **subject** (free text, e.g. `assay:12`) by which it can be found and
//!   removed when the subject goes away.

mod registry;
mod runner;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use tokio::sync::Notify;

use crate::db::schema::jobs;
use crate::db::{DbConn, now, write_transaction};

pub use registry::{BackgroundJob, GiveUp, Registry};
pub use runner::Runner;

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
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_after: chrono::NaiveDateTime,
    pub locked_by: Option<String>,
    pub heartbeat_at: Option<chrono::NaiveDateTime>,
    pub last_error: String,
    pub created_at: chrono::NaiveDateTime,
    pub finished_at: Option<chrono::NaiveDateTime>,
    pub subject: Option<String>,
    pub claim_token: Option<String>,
}

/// A job this worker holds: the row as claimed, and the token that proves the claim.
#[derive(Clone, Debug)]
pub struct Claim {
    pub job: Job,
    pub token: String,
}

/// Wakes idle workers when a job is enqueued, so it starts at once instead of at the next
/// poll, and knows how many of this process's workers are alive. Cheap to clone; one per
/// process.
#[derive(Clone, Debug, Default)]
pub struct Queue {
    notify: Arc<Notify>,
    alive: Arc<AtomicUsize>,
}

impl Queue {
    /// Call after the transaction that enqueued a job has committed.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.notify.notified().await
    }

    /// Worker loops of this process that are running (the readiness check compares this with
    /// the configured number).
    pub fn workers_alive(&self) -> usize {
        self.alive.load(Ordering::SeqCst)
    }

    /// Count a worker as alive for as long as the returned guard lives: held by the worker's
    /// task, it goes when the task ends, however it ends.
    pub(crate) fn worker_alive(&self) -> LiveWorker {
        self.alive.fetch_add(1, Ordering::SeqCst);
        LiveWorker(self.alive.clone())
    }
}

pub(crate) struct LiveWorker(Arc<AtomicUsize>);

impl Drop for LiveWorker {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A finished job keeps no payload (a drafting job's would be the uploaded documents' text).
const EMPTY_PAYLOAD: &str = "{}";

/// Add a job; call inside the transaction that makes the change it belongs to.
pub fn enqueue<J: BackgroundJob>(conn: &mut DbConn, job: &J) -> anyhow::Result<i32> {
    enqueue_raw(conn, J::JOB_NAME, &serde_json::to_string(job)?, job.subject().as_deref(), J::MAX_ATTEMPTS)
}

/// Add a job by name and payload text (for tools and tests; prefer [`enqueue`]).
pub fn enqueue_raw(
    conn: &mut DbConn,
    kind: &str,
    payload: &str,
    subject: Option<&str>,
    max_attempts: i32,
) -> anyhow::Result<i32> {
    let at = now();
    Ok(diesel::insert_into(jobs::table)
        .values((
            jobs::kind.eq(kind),
            jobs::payload.eq(payload),
            jobs::subject.eq(subject),
            jobs::status.eq(QUEUED),
            jobs::max_attempts.eq(max_attempts),
            jobs::run_after.eq(at),
            jobs::created_at.eq(at),
        ))
        .returning(jobs::id)
        .get_result(conn)?)
}

/// Take the oldest ready job, if any, and mark it running for `worker` under a new token.
pub fn claim_next(conn: &mut DbConn, worker: &str) -> QueryResult<Option<Claim>> {
    let at = now();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let job = match conn {
        DbConn::Postgres(pg) => diesel::sql_query(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1, heartbeat_at = $2, \
             claim_token = $3 \
             WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_after <= $2 \
                         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING *",
        )
        .bind::<diesel::sql_types::Text, _>(worker)
        .bind::<diesel::sql_types::Timestamp, _>(at)
        .bind::<diesel::sql_types::Text, _>(&token)
        .get_result::<Job>(pg)
        .optional()?,
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
                    jobs::claim_token.eq(&token),
                ))
                .execute(conn)?;
            jobs::table.find(id).select(Job::as_select()).first(conn).map(Some)
        })?,
    };
    Ok(job.map(|job| Claim { job, token }))
}

/// The job's row as long as `claim` still holds it (a macro: diesel's query types are long).
macro_rules! held {
    ($claim:expr) => {
        jobs::table
            .filter(jobs::id.eq($claim.job.id))
            .filter(jobs::status.eq(RUNNING))
            .filter(jobs::claim_token.eq(&$claim.token))
    };
}

tokio::task_local! {
    /// The claim of the job running in this task (set by the runner around `run`).
    static CURRENT: Claim;
}

/// The claim of the job this task is running, if it runs one: a job writes only while it
/// still holds it (see [`heartbeat`]), and a resumed job knows when it was first queued.
pub fn current_claim() -> Option<Claim> {
    CURRENT.try_with(Claim::clone).ok()
}

/// Run `work` as the job of `claim` (for [`current_claim`]).
pub async fn with_claim<F: std::future::Future>(claim: Claim, work: F) -> F::Output {
    CURRENT.scope(claim, work).await
}

/// Prove the job is alive; false when the claim was lost (the job went to another worker).
/// Inside a job's write transaction it also fences the write: the job row stays locked until
/// the commit, so the job cannot be handed to another worker half-way through it.
pub fn heartbeat(conn: &mut DbConn, claim: &Claim) -> QueryResult<bool> {
    let n = diesel::update(held!(claim)).set(jobs::heartbeat_at.eq(now())).execute(conn)?;
    Ok(n == 1)
}

/// Mark the job done and drop its payload; false when the claim was lost.
pub fn complete(conn: &mut DbConn, claim: &Claim) -> QueryResult<bool> {
    let n = diesel::update(held!(claim))
        .set((
            jobs::status.eq(DONE),
            jobs::payload.eq(EMPTY_PAYLOAD),
            jobs::finished_at.eq(now()),
            jobs::locked_by.eq(None::<String>),
            jobs::claim_token.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// What [`fail`] did with the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Back in the queue for another attempt.
    Retrying,
    /// Its attempts are used up: it stays `failed`, with its error, payload dropped.
    GivenUp,
    /// The claim was lost meanwhile: nothing was changed.
    NotHeld,
}

/// Record a failure: back to the queue after `retry_in`, or `failed` for good once the
/// attempts are used up.
pub fn fail(conn: &mut DbConn, claim: &Claim, error: &str, retry_in: Duration) -> QueryResult<Failure> {
    let job = &claim.job;
    let final_failure = job.attempts >= job.max_attempts;
    let (status, payload) = if final_failure { (FAILED, EMPTY_PAYLOAD) } else { (QUEUED, job.payload.as_str()) };
    let run_after = now() + chrono::Duration::from_std(retry_in).unwrap_or_default();
    let n = diesel::update(held!(claim))
        .set((
            jobs::status.eq(status),
            jobs::payload.eq(payload),
            jobs::last_error.eq(error),
            jobs::run_after.eq(run_after),
            jobs::locked_by.eq(None::<String>),
            jobs::claim_token.eq(None::<String>),
            jobs::finished_at.eq(final_failure.then(now)),
        ))
        .execute(conn)?;
    Ok(match (n, final_failure) {
        (0, _) => Failure::NotHeld,
        (_, true) => Failure::GivenUp,
        (_, false) => Failure::Retrying,
    })
}

/// Running jobs whose heartbeat is older than `stale_after` lost their worker: they go back to
/// the queue (a new claim token fences the old worker out), or — when their attempts are used
/// up, a job that keeps killing its server — they fail for good. Returns the jobs given up.
pub fn requeue_stale(conn: &mut DbConn, stale_after: Duration) -> QueryResult<Vec<Job>> {
    let cutoff = now() - chrono::Duration::from_std(stale_after).unwrap_or_default();
    write_transaction(conn, |conn| {
        let stale: Vec<Job> = jobs::table
            .filter(jobs::status.eq(RUNNING))
            .filter(jobs::heartbeat_at.lt(cutoff))
            .select(Job::as_select())
            .load(conn)?;
        let (exhausted, again): (Vec<Job>, Vec<Job>) = stale.into_iter().partition(|j| j.attempts >= j.max_attempts);
        let ids = |jobs: &[Job]| jobs.iter().map(|j| j.id).collect::<Vec<_>>();
        diesel::update(jobs::table.filter(jobs::id.eq_any(ids(&again))))
            .set((
                jobs::status.eq(QUEUED),
                jobs::locked_by.eq(None::<String>),
                jobs::claim_token.eq(None::<String>),
                jobs::run_after.eq(now()),
            ))
            .execute(conn)?;
        diesel::update(jobs::table.filter(jobs::id.eq_any(ids(&exhausted))))
            .set((
                jobs::status.eq(FAILED),
                jobs::payload.eq(EMPTY_PAYLOAD),
                jobs::last_error.eq("the worker running this job stopped responding too many times"),
                jobs::locked_by.eq(None::<String>),
                jobs::claim_token.eq(None::<String>),
                jobs::finished_at.eq(now()),
            ))
            .execute(conn)?;
        if !again.is_empty() {
            tracing::warn!(jobs = again.len(), "requeued jobs whose worker stopped sending heartbeats");
        }
        Ok(exhausted)
    })
}

pub fn find(conn: &mut DbConn, id: i32) -> QueryResult<Job> {
    jobs::table.find(id).select(Job::as_select()).first(conn)
}

/// Jobs about a subject, newest first.
pub fn about(conn: &mut DbConn, subject: &str) -> QueryResult<Vec<Job>> {
    jobs::table.filter(jobs::subject.eq(subject)).order(jobs::id.desc()).select(Job::as_select()).load(conn)
}

/// Is a job about this subject queued or running?
pub fn is_pending(conn: &mut DbConn, subject: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        jobs::table.filter(jobs::subject.eq(subject)).filter(jobs::status.eq_any([QUEUED, RUNNING])),
    ))
    .get_result(conn)
}

/// Remove every job about these subjects (they are being deleted; payloads may hold their data).
pub fn delete_about(conn: &mut DbConn, subjects: &[String]) -> QueryResult<usize> {
    diesel::delete(jobs::table.filter(jobs::subject.eq_any(subjects))).execute(conn)
}

/// (kind, status, count) of every job in the table.
pub fn counts(conn: &mut DbConn) -> QueryResult<Vec<(String, String, i64)>> {
    jobs::table
        .group_by((jobs::kind, jobs::status))
        .select((jobs::kind, jobs::status, diesel::dsl::count_star()))
        .load(conn)
}

/// Failed jobs, newest first, with their errors.
pub fn failed(conn: &mut DbConn) -> QueryResult<Vec<Job>> {
    jobs::table.filter(jobs::status.eq(FAILED)).order(jobs::id.desc()).select(Job::as_select()).load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_worker_counts_as_alive_until_its_task_ends_however_it_ends() {
        let queue = Queue::default();
        let (finishes, panics) = (queue.worker_alive(), queue.worker_alive());
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            let _alive = finishes;
            let _ = wait.await;
        });
        let crashed = tokio::spawn(async move {
            let _alive = panics;
            panic!("a worker loop dies");
        });
        assert!(crashed.await.is_err());
        assert_eq!(queue.workers_alive(), 1, "the crashed one is no longer counted");
        release.send(()).unwrap();
        done.await.unwrap();
        assert_eq!(queue.workers_alive(), 0);
    }
}
