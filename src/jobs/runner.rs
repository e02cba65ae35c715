//! Workers: claim a job, keep its heartbeat going while it runs, record the outcome; and a
//! sweep that hands the jobs of dead workers (in this process or another) to live ones.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use super::{Claim, Failure, GiveUp, Queue, Registry};
use crate::config::JobSettings;
use crate::db::{self, Pool};

/// Runs the jobs of the queue with a context `C` for the job types of its registry.
pub struct Runner<C> {
    ctx: C,
    registry: Arc<Registry<C>>,
    pool: Pool,
    queue: Queue,
    settings: JobSettings,
}

impl<C: Clone + Send + Sync + 'static> Runner<C> {
    pub fn new(ctx: C, registry: Registry<C>, pool: Pool, queue: Queue, settings: JobSettings) -> Self {
        Self { ctx, registry: Arc::new(registry), pool, queue, settings }
    }

    /// Start the configured number of worker loops and the sweep on the current runtime.
    pub fn spawn(self: Arc<Self>) {
        if self.settings.workers == 0 {
            return;
        }
        for n in 0..self.settings.workers {
            let runner = self.clone();
            let name = format!("{}-{}-{n}", hostname(), std::process::id());
            let alive = self.queue.worker_alive();
            tokio::spawn(async move {
                let _alive = alive;
                runner.work(name).await
            });
        }
        tokio::spawn(self.sweep_forever());
    }

    async fn work(&self, name: String) {
        loop {
            match self.run_one(&name).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => tracing::error!(error = %err, "job queue unavailable"),
            }
            tokio::select! {
                _ = self.queue.woken() => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
            }
        }
    }

    async fn sweep_forever(self: Arc<Self>) {
        loop {
            if let Err(err) = self.sweep().await {
                tracing::error!(error = %err, "requeueing stale jobs failed");
            }
            tokio::time::sleep(self.settings.stale_after / 3).await;
        }
    }

    /// Requeue jobs whose worker went silent; give up those that used their attempts.
    pub async fn sweep(&self) -> anyhow::Result<usize> {
        let stale = self.settings.stale_after;
        let given_up =
            db::blocking(&self.pool, move |c| Ok::<_, anyhow::Error>(super::requeue_stale(c, stale)?)).await?;
        for job in &given_up {
            tracing::error!(job = job.id, kind = %job.kind, "job given up: its workers kept stopping");
            self.registry.given_up(&self.ctx, job, GiveUp::Stalled).await;
        }
        Ok(given_up.len())
    }

    /// Run ready jobs until none is left (tests and the `process` command drive the queue
    /// this way, deterministically).
    pub async fn run_pending(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        while self.run_one("inline").await? {
            n += 1;
        }
        Ok(n)
    }

    /// Claim and run one ready job; false when there was none.
    pub async fn run_one(&self, worker: &str) -> anyhow::Result<bool> {
        let worker_name = worker.to_owned();
        let claim =
            db::blocking(&self.pool, move |c| Ok::<_, anyhow::Error>(super::claim_next(c, &worker_name)?)).await?;
        let Some(claim) = claim else { return Ok(false) };
        let job = &claim.job;
        tracing::info!(job = job.id, kind = %job.kind, attempt = job.attempts, "job started");
        let mut heartbeat =
            AbortOnDrop(tokio::spawn(keep_alive(self.pool.clone(), claim.clone(), self.settings.heartbeat)));
        // A panicking job is a failed job, not a dead worker with a heartbeat still beating.
        let run = std::panic::AssertUnwindSafe(super::with_claim(claim.clone(), self.registry.run(&self.ctx, job)))
            .catch_unwind();
        let outcome = tokio::select! {
            result = run => result.unwrap_or_else(|_| Err(anyhow::anyhow!("the job panicked"))),
            _ = &mut heartbeat.0 => {
                tracing::warn!(job = job.id, "lost the claim on a running job (another worker has it now); stopped");
                return Ok(true);
            }
        };
        drop(heartbeat);
        match outcome {
            Ok(()) => {
                let held = self.with_claim(&claim, super::complete).await?;
                tracing::info!(job = job.id, finished = held, "job done");
            }
            Err(err) => self.record_failure(&claim, err).await?,
        }
        Ok(true)
    }

    async fn with_claim<T: Send + 'static>(
        &self,
        claim: &Claim,
        f: impl FnOnce(&mut db::DbConn, &Claim) -> diesel::QueryResult<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let claim = claim.clone();
        db::blocking(&self.pool, move |c| Ok::<_, anyhow::Error>(f(c, &claim)?)).await
    }

    async fn record_failure(&self, claim: &Claim, err: anyhow::Error) -> anyhow::Result<()> {
        let job = &claim.job;
        let reference = crate::telemetry::new_reference();
        tracing::error!(job = job.id, reference = %reference, error = ?err, "job failed");
        let retry_in = Duration::from_secs(10 * u64::from(job.attempts.max(1).unsigned_abs()));
        let message = format!("{err:#} (reference {reference})");
        let failure = self.with_claim(claim, move |c, claim| super::fail(c, claim, &message, retry_in)).await?;
        if failure == Failure::GivenUp {
            let why = GiveUp::Failed { attempts: job.attempts, reference };
            self.registry.given_up(&self.ctx, job, why).await;
        }
        Ok(())
    }
}

/// Beats until the claim is lost (then returns), or until aborted when the job ends.
async fn keep_alive(pool: Pool, claim: Claim, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let claim = claim.clone();
        match db::blocking(&pool, move |c| Ok::<_, anyhow::Error>(super::heartbeat(c, &claim)?)).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => tracing::warn!(error = %err, "heartbeat failed; trying again"),
        }
    }
}

/// Stops the heartbeat task whatever way the job ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "host".into())
}
