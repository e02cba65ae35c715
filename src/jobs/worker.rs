//! Workers: claim a job, keep its heartbeat going while it runs, record the outcome.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::Notify;

use super::Job;
use crate::db::models::{Assay, AssayStatus};
use crate::db::{DbConn, Pool};
use crate::llm::LlmProvider;
use crate::llm::pipeline::{self, PROCESS_ASSAY, PipelineSettings};

/// What workers need; built once at start-up (not the web state).
pub struct WorkerContext {
    pub pool: Pool,
    pub provider: Arc<dyn LlmProvider>,
    pub settings: PipelineSettings,
    /// Woken on enqueue so a new job starts at once instead of at the next poll.
    pub notify: Notify,
    pub heartbeat: Duration,
    pub stale_after: Duration,
    pub poll: Duration,
}

impl WorkerContext {
    pub fn new(pool: Pool, provider: Arc<dyn LlmProvider>, settings: PipelineSettings) -> Self {
        Self {
            pool,
            provider,
            settings,
            notify: Notify::new(),
            heartbeat: Duration::from_secs(15),
            stale_after: Duration::from_secs(90),
            poll: Duration::from_secs(2),
        }
    }

    pub async fn db<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        F: FnOnce(&mut DbConn) -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || f(&mut *pool.get()?)).await?
    }
}

/// Start `count` worker loops on the current runtime.
pub fn spawn(ctx: Arc<WorkerContext>, count: usize) {
    for n in 0..count {
        let ctx = ctx.clone();
        let name = format!("{}-{}-{n}", hostname(), std::process::id());
        tokio::spawn(async move { worker_loop(ctx, name).await });
    }
    tokio::spawn(sweeper(ctx));
}

/// Requeues jobs whose worker died (in this process or another one).
async fn sweeper(ctx: Arc<WorkerContext>) {
    loop {
        let stale = ctx.stale_after;
        if let Err(err) = ctx.db(move |c| Ok(super::requeue_stale(c, stale)?)).await {
            tracing::error!(error = %err, "requeueing stale jobs failed");
        }
        tokio::time::sleep(ctx.stale_after / 3).await;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "host".into())
}

async fn worker_loop(ctx: Arc<WorkerContext>, name: String) {
    loop {
        match run_one(&ctx, &name).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(err) => tracing::error!(error = %err, "job queue unavailable"),
        }
        tokio::select! {
            _ = ctx.notify.notified() => {}
            _ = tokio::time::sleep(ctx.poll) => {}
        }
    }
}

/// Claim and run one ready job; false when there was none.
pub async fn run_one(ctx: &WorkerContext, worker: &str) -> anyhow::Result<bool> {
    let worker_name = worker.to_owned();
    let Some(job) = ctx.db(move |c| Ok(super::claim_next(c, &worker_name)?)).await? else {
        return Ok(false);
    };
    tracing::info!(job = job.id, kind = %job.kind, attempt = job.attempts, "job started");
    let beat = {
        let pool = ctx.pool.clone();
        let (id, every) = (job.id, ctx.heartbeat);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let pool = pool.clone();
                let _ = tokio::task::spawn_blocking(move || pool.get().map(|mut c| super::heartbeat(&mut c, id))).await;
            }
        })
    };
    let _beat = AbortOnDrop(beat);
    // A panicking job is a failed job, not a dead worker with a heartbeat still beating.
    let outcome = match std::panic::AssertUnwindSafe(dispatch(ctx, &job)).catch_unwind().await {
        Ok(result) => result,
        Err(_) => Err(anyhow::anyhow!("the job panicked")),
    };
    match outcome {
        Ok(()) => {
            let id = job.id;
            ctx.db(move |c| Ok(super::complete(c, id)?)).await?;
            tracing::info!(job = job.id, "job done");
        }
        Err(err) => record_failure(ctx, &job, err).await?,
    }
    Ok(true)
}

/// Stops the heartbeat task whatever way the job ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn dispatch(ctx: &WorkerContext, job: &Job) -> anyhow::Result<()> {
    match job.kind.as_str() {
        PROCESS_ASSAY => pipeline::process_assay(ctx, serde_json::from_str(&job.payload)?).await,
        other => anyhow::bail!("unknown job kind {other:?}"),
    }
}

async fn record_failure(ctx: &WorkerContext, job: &Job, err: anyhow::Error) -> anyhow::Result<()> {
    let reference = crate::web::error::new_reference();
    tracing::error!(job = job.id, reference = %reference, error = ?err, "job failed");
    let retry_in = Duration::from_secs(10 * u64::from(job.attempts.max(1).unsigned_abs()));
    let (job_row, message) = (job.clone(), format!("{err:#} (reference {reference})"));
    let final_failure = ctx.db(move |c| Ok(super::fail(c, &job_row, &message, retry_in)?)).await?;
    if final_failure && let Some(assay_id) = job.assay_id {
        let alert = format!(
            "Drafting the answers failed and was given up after {} attempts. Please try again; if it keeps failing, quote reference {reference}.",
            job.attempts
        );
        ctx.db(move |c| {
            if Assay::exists(c, assay_id)? {
                Assay::set_status(c, assay_id, AssayStatus::Error)?;
                Assay::push_alert(c, assay_id, &alert)?;
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// Run ready jobs until none is left (tests and the `process` command drive the queue this
/// way, deterministically).
pub async fn run_pending_jobs(ctx: &WorkerContext) -> anyhow::Result<usize> {
    let mut n = 0;
    while run_one(ctx, "inline").await? {
        n += 1;
    }
    Ok(n)
}
