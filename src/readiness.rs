//! Is this server ready to take requests? The database answers and carries every migration,
//! storage answers, and the job workers it was started with are running. Load balancers ask
//! (`/readyz`) every few seconds, anonymously: answers are reused for a second, a database
//! that hangs is given up on after [`WAIT`], and the reasons are logged, never shown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::context::AppContext;

/// How long one check may wait for the database or storage.
pub const WAIT: Duration = Duration::from_secs(3);
/// How long an answer is reused: a flood of probes costs one check a second.
const REUSE: Duration = Duration::from_secs(1);

/// What is wrong, if anything (for the log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    pub problems: Vec<String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The checks of one process, with the last answer.
#[derive(Default)]
pub struct Probe {
    last: Mutex<Option<(Instant, Readiness)>>,
    /// A database check that timed out may still be waiting on its thread: no second one
    /// starts beside it (hung checks would otherwise pile up and take every connection).
    database_busy: Arc<AtomicBool>,
    was_unready: AtomicBool,
}

impl Probe {
    pub async fn check(&self, ctx: &AppContext) -> Readiness {
        let mut last = self.last.lock().await;
        if let Some((at, readiness)) = &*last
            && at.elapsed() < REUSE
        {
            return readiness.clone();
        }
        let readiness = self.check_now(ctx).await;
        self.log_change(&readiness);
        *last = Some((Instant::now(), readiness.clone()));
        readiness
    }

    async fn check_now(&self, ctx: &AppContext) -> Readiness {
        let (database, storage) = tokio::join!(self.database(ctx), storage(ctx));
        let problems = [database, storage, workers(ctx)].into_iter().flatten().collect();
        Readiness { problems }
    }

    async fn database(&self, ctx: &AppContext) -> Option<String> {
        if self.database_busy.swap(true, Ordering::SeqCst) {
            return Some("database: the last check has not returned yet".into());
        }
        let (pool, url, busy) = (ctx.pool.clone(), ctx.config.database.clone(), self.database_busy.clone());
        let check = tokio::task::spawn_blocking(move || {
            let result = crate::db::check_ready(&pool, &url, WAIT);
            busy.store(false, Ordering::SeqCst);
            result
        });
        match tokio::time::timeout(WAIT, check).await {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(err))) => Some(format!("database: {err:#}")),
            Ok(Err(err)) => Some(format!("database: the check failed: {err}")),
            Err(_) => Some(format!("database: no answer within {WAIT:?}")),
        }
    }

    fn log_change(&self, readiness: &Readiness) {
        let unready = !readiness.is_ready();
        if self.was_unready.swap(unready, Ordering::SeqCst) == unready {
            return;
        }
        if unready {
            tracing::warn!(problems = ?readiness.problems, "not ready");
        } else {
            tracing::info!("ready again");
        }
    }
}

async fn storage(ctx: &AppContext) -> Option<String> {
    match tokio::time::timeout(WAIT, ctx.store.reachable()).await {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(format!("storage: {err}")),
        Err(_) => Some(format!("storage: no answer within {WAIT:?}")),
    }
}

/// A server started without workers (`TOXTEMP_WORKERS=0`: web only) needs none.
fn workers(ctx: &AppContext) -> Option<String> {
    let (configured, alive) = (ctx.config.jobs.workers, ctx.queue.workers_alive());
    (alive < configured).then(|| format!("job workers: {alive} of {configured} running"))
}
