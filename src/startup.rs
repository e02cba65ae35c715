//! Start-up: the application context seeded for a first start, the job runner with every job
//! type, and the HTTP server. `serve`, the `process` command and the tests all start here.

use std::net::TcpListener;
use std::sync::Arc;

use anyhow::Context;

use crate::config::{Config, ExposeSecret};
use crate::context::AppContext;
use crate::db::models::Person;
use crate::db::models::person::PersonSpec;
use crate::drafting::DraftAssay;
use crate::jobs::{Registry, Runner};
use crate::web::{self, AppState};
use crate::{auth, db, questions};

/// Everything `serve` does before it listens: build the context, then seed a first start
/// (the ToxTemp v1 questions, the ADMIN_EMAIL account) and clear stale upload spools.
pub fn prepare(config: Config) -> anyhow::Result<AppContext> {
    let ctx = AppContext::build(config)?;
    seed(&ctx)?;
    remove_stale_spools(&ctx.config.spool_dir());
    tracing::info!(provider = ctx.provider.name(), "language model");
    Ok(ctx)
}

fn seed(ctx: &AppContext) -> anyhow::Result<()> {
    let mut conn = ctx.pool.get().context("opening a database connection")?;
    if ctx.config.import_default_questions
        && let Some(s) = questions::ensure_default(&mut conn)?
    {
        tracing::info!(
            sections = s.sections,
            subsections = s.subsections,
            questions = s.questions,
            "imported the ToxTemp v1 question set"
        );
    }
    if let Some(admin) = &ctx.config.bootstrap_admin {
        bootstrap_admin(&mut conn, &admin.email, admin.password.expose_secret())?;
    }
    Ok(())
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

/// The job runner of this process, knowing every job type.
pub fn job_runner(ctx: &AppContext) -> Runner<AppContext> {
    let registry = Registry::new().register::<DraftAssay>().register::<crate::benchmark::EvaluateRun>();
    Runner::new(ctx.clone(), registry, ctx.pool.clone(), ctx.queue.clone(), ctx.config.jobs.clone())
}

/// Run queued jobs to the end in this task (the `process` command and tests, deterministically).
pub async fn run_pending_jobs(ctx: &AppContext) -> anyhow::Result<usize> {
    job_runner(ctx).run_pending().await
}

/// The web server and the job workers of one process, bound and ready to run.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    runner: Arc<Runner<AppContext>>,
}

impl Application {
    /// Bind `ctx.config.bind` (port 0 picks a free one) and build the server on it.
    pub fn build(ctx: AppContext) -> anyhow::Result<Self> {
        let bind = ctx.config.bind;
        let listener = TcpListener::bind(bind).with_context(|| format!("listening on {bind}"))?;
        let port = listener.local_addr()?.port();
        let runner = Arc::new(job_runner(&ctx));
        let state = AppState::new(ctx);
        let server = actix_web::HttpServer::new(move || web::app(state.clone()))
            .listen(listener)
            .with_context(|| format!("listening on {bind}"))?
            .run();
        Ok(Self { port, server, runner })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Start the job workers, then serve until stopped.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.runner.spawn();
        self.server.await.context("running the HTTP server")
    }
}

/// `toxtemp serve`: prepare, check storage, listen, run.
pub async fn serve(ctx: AppContext) -> anyhow::Result<()> {
    // Storage being down must not keep the app from starting: uploads then fail with 503.
    if let Err(err) = ctx.store.ensure_ready().await {
        tracing::error!(error = %err, bucket = ctx.store.bucket(), "object storage is not reachable");
    }
    let host = ctx.config.bind.ip();
    let app = Application::build(ctx)?;
    tracing::info!("ToxTempAssistant listening on http://{host}:{}/", app.port());
    app.run_until_stopped().await
}
