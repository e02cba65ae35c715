//! The application context: everything the use cases, the web handlers, the CLI commands and
//! the job workers share — configuration, database pool, object store, text extractor,
//! language model, the queue handle and the metrics. Built by one function, [`AppContext::build`], for
//! all of them (tests included), and cheap to clone.

use std::sync::Arc;

use anyhow::Context as _;

use crate::config::Config;
use crate::db::{self, Pool};
use crate::ingest::{ExtractLimits, Extractor};
use crate::jobs::Queue;
use crate::llm::{self, LlmProvider};
use crate::mail::Mailer;
use crate::storage::{self, Store};
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct AppContext {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub store: Store,
    pub extractor: Extractor,
    pub provider: Arc<dyn LlmProvider>,
    pub queue: Queue,
    /// What this process counts; storage and the language model count themselves.
    pub metrics: Arc<Metrics>,
    /// Password-reset and invitation mail (or none: links go to the log).
    pub mailer: Arc<Mailer>,
}

impl AppContext {
    /// Connect to the database and migrate it, and set up storage, the extractor and the
    /// language model as configured. Nothing here talks to storage or the model yet: an
    /// unreachable S3 server must not keep the app from starting.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
        let pool = db::connect(&config.database)?;
        db::run_migrations(&mut *pool.get().context("opening a database connection")?)?;
        let metrics = Arc::new(Metrics::new());
        let store = storage::metered::MeteredStore::wrap(storage::from_config(&config.storage)?, metrics.clone());
        let provider = llm::metered::MeteredProvider::wrap(llm::provider_from_config(&config.llm)?, metrics.clone());
        let exe = match &config.extractor_exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().context("finding the running binary for text extraction")?,
        };
        let extractor = Extractor::new(exe, ExtractLimits::default());
        let mailer = Arc::new(Mailer::from_config(&config)?);
        Ok(Self {
            config: Arc::new(config),
            pool,
            store,
            extractor,
            provider,
            queue: Queue::default(),
            metrics,
            mailer,
        })
    }

    /// The same context with another object store (tests, benchmarks).
    pub fn with_store(mut self, store: Store) -> Self {
        self.store = storage::metered::MeteredStore::wrap(store, self.metrics.clone());
        self
    }

    /// The same context with another language model (tests, benchmarks).
    pub fn with_provider(mut self, provider: Arc<dyn LlmProvider>) -> Self {
        self.provider = llm::metered::MeteredProvider::wrap(provider, self.metrics.clone());
        self
    }

    /// Blocking database work off the async threads (see [`db::blocking`]).
    pub async fn db<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut db::DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<db::Unavailable> + Send + 'static,
    {
        db::blocking(&self.pool, f).await
    }
}
