//! Job types and the registry that finds them by name. The queue stores a job as its name and
//! a JSON payload; the registry turns that back into the job type and runs it.

use std::collections::HashMap;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Job;

/// Why a job was given up for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// It failed on every attempt; the last error is logged under `reference`.
    Failed { attempts: i32, reference: String },
    /// The workers running it stopped responding every time (it may kill its server).
    Stalled,
}

/// A kind of background work. The payload is the job value itself (serialised as JSON), so
/// keep it small and idempotent: a job may run again after a crash.
#[async_trait]
pub trait BackgroundJob: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name stored in the queue; never change it while such jobs may be queued.
    const JOB_NAME: &'static str;
    /// Attempts before the job is given up.
    const MAX_ATTEMPTS: i32 = 3;
    /// What the job needs to run (the application context).
    type Context: Clone + Send + Sync + 'static;

    /// What the job is about (e.g. `assay:12`), to find and remove it with its subject.
    fn subject(&self) -> Option<String> {
        None
    }

    async fn run(self, ctx: &Self::Context) -> anyhow::Result<()>;

    /// Called once when a job of this kind is given up, with its subject (the payload may be
    /// what made it fail, so it is not read again).
    async fn given_up(_ctx: &Self::Context, _subject: Option<&str>, _why: &GiveUp) -> anyhow::Result<()> {
        Ok(())
    }
}

type RunFn<C> = Box<dyn Fn(C, String) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;
type GiveUpFn<C> = Box<dyn Fn(C, Option<String>, GiveUp) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

struct Handler<C> {
    run: RunFn<C>,
    given_up: GiveUpFn<C>,
}

/// The job types a worker can run, by name.
pub struct Registry<C> {
    handlers: HashMap<&'static str, Handler<C>>,
}

impl<C: Clone + Send + Sync + 'static> Default for Registry<C> {
    fn default() -> Self {
        Self { handlers: HashMap::new() }
    }
}

impl<C: Clone + Send + Sync + 'static> Registry<C> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register<J: BackgroundJob<Context = C>>(mut self) -> Self {
        let run: RunFn<C> = Box::new(|ctx, payload| {
            Box::pin(async move {
                let job: J = serde_json::from_str(&payload)
                    .map_err(|e| anyhow::anyhow!("unreadable {} payload: {e}", J::JOB_NAME))?;
                job.run(&ctx).await
            })
        });
        let given_up: GiveUpFn<C> =
            Box::new(|ctx, subject, why| Box::pin(async move { J::given_up(&ctx, subject.as_deref(), &why).await }));
        self.handlers.insert(J::JOB_NAME, Handler { run, given_up });
        self
    }

    pub(crate) async fn run(&self, ctx: &C, job: &Job) -> anyhow::Result<()> {
        let Some(handler) = self.handlers.get(job.kind.as_str()) else {
            anyhow::bail!("unknown job kind {:?}", job.kind);
        };
        (handler.run)(ctx.clone(), job.payload.clone()).await
    }

    pub(crate) async fn given_up(&self, ctx: &C, job: &Job, why: GiveUp) {
        let Some(handler) = self.handlers.get(job.kind.as_str()) else { return };
        if let Err(err) = (handler.given_up)(ctx.clone(), job.subject.clone(), why).await {
            tracing::error!(job = job.id, error = ?err, "recording a given-up job failed");
        }
    }
}
