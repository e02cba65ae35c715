//! The database: one connection type for SQLite and PostgreSQL, the pool, migrations and a
//! few helpers. Queries live as plain functions next to their row types in `models`.
//!
//! Both backends are served from one binary through diesel's `MultiConnection`: queries are
//! written once against the shared `schema`, and each backend keeps its own migration set
//! (the dialects differ only in the DDL). The URL picks the backend explicitly: we never let
//! a failed PostgreSQL connection fall through to creating a SQLite file.

pub mod models;
pub mod schema;

use std::time::Duration;

use anyhow::Context;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseUrl;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConn = r2d2::PooledConnection<ConnectionManager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Foreign keys are off by default in SQLite; WAL lets readers run beside the writer, and the
/// busy timeout makes a second writer wait instead of failing.
const SQLITE_PRAGMAS: &str = "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 15000; \
     PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

/// Opens connections for the pool, choosing the backend from the URL.
#[derive(Clone, Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                diesel::PgConnection::establish(url).map(DbConn::Postgres).map_err(r2d2::Error::ConnectionError)
            }
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_string_lossy();
                let mut conn = diesel::SqliteConnection::establish(&path).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(SQLITE_PRAGMAS).map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// Build the pool; for SQLite the database file's directory is created first.
pub fn connect(url: &DatabaseUrl) -> anyhow::Result<Pool> {
    if let DatabaseUrl::Sqlite(path) = url
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the database directory {}", dir.display()))?;
    }
    let size = if url.is_postgres() { 10 } else { 8 };
    r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(15))
        .build(ConnectionManager::new(url.clone()))
        .context("connecting to the database (check DATABASE_URL)")
}

/// Apply every pending migration of the connection's backend.
pub fn run_migrations(conn: &mut DbConn) -> anyhow::Result<()> {
    let result = match conn {
        DbConn::Postgres(pg) => {
            // Several servers may start at once: let one migrate while the others wait.
            pg.batch_execute("SELECT pg_advisory_lock(7420531)")?;
            let applied = pg.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len());
            pg.batch_execute("SELECT pg_advisory_unlock(7420531)")?;
            applied
        }
        DbConn::Sqlite(lite) => lite.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    let applied = result.map_err(|e| anyhow::anyhow!("running migrations: {e}"))?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    Ok(())
}

/// Whether the database answers and carries every migration this binary knows, asked the
/// way the readiness check needs it (blocking; the caller bounds the time). PostgreSQL is
/// asked through the pool. A SQLite file is opened afresh: a file deleted or replaced under a
/// running server goes unnoticed by its open connections, which would keep writing to what
/// is no longer the database.
pub fn check_ready(pool: &Pool, url: &DatabaseUrl, wait: Duration) -> anyhow::Result<()> {
    let pending = match url {
        DatabaseUrl::Postgres(_) => match &mut *pool.get_timeout(wait)? {
            DbConn::Postgres(pg) => pg.has_pending_migration(POSTGRES_MIGRATIONS),
            DbConn::Sqlite(lite) => lite.has_pending_migration(SQLITE_MIGRATIONS),
        },
        DatabaseUrl::Sqlite(path) => {
            anyhow::ensure!(path.is_file(), "the database file {} is gone", path.display());
            let mut lite = diesel::SqliteConnection::establish(&path.to_string_lossy())?;
            lite.has_pending_migration(SQLITE_MIGRATIONS)
        }
    };
    match pending {
        Ok(false) => Ok(()),
        Ok(true) => anyhow::bail!("the database lacks migrations this version needs"),
        Err(err) => anyhow::bail!("reading the applied migrations: {err}"),
    }
}

/// Run `f` in a transaction that takes the write lock up front. On SQLite a plain (deferred)
/// transaction that reads first and writes later can fail with SQLITE_BUSY when another
/// writer committed in between; `BEGIN IMMEDIATE` makes it wait its turn instead.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Postgres(_) => conn.transaction(f),
        DbConn::Sqlite(lite) => {
            AnsiTransactionManager::begin_transaction_sql(lite, "BEGIN IMMEDIATE")?;
            match f(conn) {
                Ok(value) => {
                    <DbConn as Connection>::TransactionManager::commit_transaction(conn)?;
                    Ok(value)
                }
                Err(err) => {
                    let _ = <DbConn as Connection>::TransactionManager::rollback_transaction(conn);
                    Err(err)
                }
            }
        }
    }
}

/// The database could not be reached from a blocking task: no connection in time, or the
/// task itself died. Callers turn it into their own error type (`E: From<Unavailable>`).
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("no database connection: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Run blocking database work on the blocking thread pool with a pooled connection — the one
/// way async code talks to the database, so the async threads never wait on SQL.
pub async fn blocking<T, E, F>(pool: &Pool, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<Unavailable> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(Unavailable::from)?;
        f(&mut conn)
    })
    .await
    .map_err(Unavailable::from)?
}

/// The current time as stored in the database: UTC, microsecond precision on both backends.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{SubsecRound, Utc};
    Utc::now().naive_utc().trunc_subsecs(6)
}
