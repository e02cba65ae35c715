//! Start-up: database, migrations, first-start seeding, and the HTTP server.

use anyhow::Context;

use crate::config::Config;
use crate::db::models::Person;
use crate::db::models::person::PersonSpec;
use crate::web::{self, AppState};
use std::sync::Arc;

use crate::jobs::worker::{self, WorkerContext};
use crate::llm::pipeline::PipelineSettings;
use crate::llm::retry::RetryPolicy;
use crate::{auth, db, llm, questions, storage};

/// Everything `serve` does before it listens: connect, migrate, seed.
pub fn prepare(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    remove_stale_spools(&config.data_dir.join("tmp"));
    let pool = db::connect(&config.database)?;
    let mut conn = pool.get().context("opening a database connection")?;
    db::run_migrations(&mut conn)?;
    if config.import_default_questions
        && let Some(s) = questions::ensure_default(&mut conn)?
    {
        tracing::info!(
            sections = s.sections,
            subsections = s.subsections,
            questions = s.questions,
            "imported the ToxTemp v1 question set"
        );
    }
    if let Some(admin) = &config.bootstrap_admin {
        bootstrap_admin(&mut conn, &admin.email, &admin.password)?;
    }
    drop(conn);
    let store = storage::from_config(&config.storage)?;
    let provider = llm::provider_from_config(&config.llm)?;
    tracing::info!(provider = provider.name(), "language model");
    let settings = PipelineSettings {
        concurrency: config.llm.concurrency,
        retry: RetryPolicy { max_attempts: config.llm.max_attempts, ..RetryPolicy::default() },
    };
    let workers = Arc::new(WorkerContext::new(pool.clone(), provider, settings));
    Ok(AppState::new(pool, store, workers, config))
}

/// Uploads spooled more than an hour ago belong to requests that died with their process
/// (a live request removes its own); another server sharing the directory keeps its fresh ones.
fn remove_stale_spools(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let old = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        if old.is_some_and(|age| age > std::time::Duration::from_secs(3600)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Create the ADMIN_EMAIL superuser once, while no staff account exists.
fn bootstrap_admin(conn: &mut db::DbConn, email: &str, password: &str) -> anyhow::Result<()> {
    if Person::count_staff(conn)? > 0 {
        return Ok(());
    }
    let spec = PersonSpec { email, display_name: "Administrator", is_staff: true, is_superuser: true };
    let person = auth::create_account(conn, &spec, password).context("creating the ADMIN_EMAIL account")?;
    tracing::info!(email = %person.email, "created the first admin account from ADMIN_EMAIL");
    Ok(())
}

/// Listen and serve until stopped.
pub async fn serve(state: AppState) -> anyhow::Result<()> {
    // Storage being down must not keep the app from starting: uploads then fail with 503.
    if let Err(err) = state.store.ensure_ready().await {
        tracing::error!(error = %err, bucket = state.store.bucket(), "object storage is not reachable");
    }
    worker::spawn(state.workers.clone(), state.config.workers);
    let bind = state.config.bind;
    let app_state = state.clone();
    let server = actix_web::HttpServer::new(move || web::app(app_state.clone()))
        .bind(bind)
        .with_context(|| format!("listening on {bind}"))?;
    for addr in server.addrs() {
        tracing::info!("ToxTempAssistant listening on http://{addr}/");
    }
    server.run().await.context("running the HTTP server")
}
