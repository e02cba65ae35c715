//! Configuration, read once from the environment (and an optional `.env` file) into typed
//! structs that are passed explicitly. Every variable is listed in the README.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

/// Where the app keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite database file (the embedded default).
    Sqlite(PathBuf),
    /// A `postgres://` connection URL.
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://…`/`postgresql://…` select PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or a
    /// bare path select a SQLite file.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.to_owned()));
        }
        let path = raw.strip_prefix("sqlite://").or_else(|| raw.strip_prefix("sqlite:")).unwrap_or(raw);
        if path.is_empty() || path.contains("://") {
            bail!("DATABASE_URL must be a postgres:// URL or a SQLite file path, got {raw:?}");
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

/// Where uploaded documents are kept.
#[derive(Clone, Debug)]
pub enum StorageConfig {
    /// Files below a local directory (the embedded default).
    Local { root: PathBuf, bucket: String },
    /// An S3-compatible server.
    S3(S3Config),
}

#[derive(Clone, Debug)]
pub struct S3Config {
    /// `AWS_S3_ENDPOINT_URL` — e.g. `http://127.0.0.1:3900` for Garage/MinIO; unset for AWS.
    pub endpoint: Option<String>,
    /// `AWS_STORAGE_BUCKET_NAME`.
    pub bucket: String,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `AWS_S3_REGION_NAME` — must equal the server's region (Garage: `garage`).
    pub region: String,
}

impl StorageConfig {
    /// S3 when `AWS_STORAGE_BUCKET_NAME` is set, else a local directory below `data_dir`.
    pub fn from_env(data_dir: &std::path::Path) -> anyhow::Result<Self> {
        let Some(bucket) = var("AWS_STORAGE_BUCKET_NAME") else {
            return Ok(Self::Local { root: data_dir.join("objects"), bucket: "toxtemp-local".into() });
        };
        let need =
            |name: &str| var(name).with_context(|| format!("{name} is required when AWS_STORAGE_BUCKET_NAME is set"));
        Ok(Self::S3(S3Config {
            endpoint: var("AWS_S3_ENDPOINT_URL"),
            bucket,
            access_key_id: need("AWS_ACCESS_KEY_ID")?,
            secret_access_key: need("AWS_SECRET_ACCESS_KEY")?,
            region: var("AWS_S3_REGION_NAME").unwrap_or_else(|| "us-east-1".into()),
        }))
    }
}

/// The first admin account, created on first start when no staff account exists yet.
#[derive(Clone, Debug)]
pub struct BootstrapAdmin {
    pub email: String,
    pub password: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `TOXTEMP_BIND` — address to listen on.
    pub bind: SocketAddr,
    /// `DATABASE_URL`.
    pub database: DatabaseUrl,
    /// `AWS_*` variables, or the local default.
    pub storage: StorageConfig,
    /// `LLM_*` variables; no `LLM_BASE_URL` means the offline provider.
    pub llm: crate::llm::LlmConfig,
    /// `TOXTEMP_WORKERS` — background jobs run at once by this process.
    pub workers: usize,
    /// `TOXTEMP_MAX_FILE_MB`, `TOXTEMP_MAX_TOTAL_MB`, `TOXTEMP_MAX_FILES`.
    pub upload_limits: crate::submission::UploadLimits,
    /// `TOXTEMP_EXTRACTOR` — the binary run for text extraction (default: this one).
    pub extractor_exe: Option<PathBuf>,
    /// `TOXTEMP_DATA_DIR` — local objects and other files of the embedded default.
    pub data_dir: PathBuf,
    /// `SESSION_KEY` — secret for signing and encrypting session cookies (≥ 32 chars).
    /// `None` means a random key is generated at start (sessions end at restart).
    pub session_key: Option<String>,
    /// `TOXTEMP_SECURE_COOKIES` — send cookies only over HTTPS (set behind a TLS proxy).
    pub secure_cookies: bool,
    /// `ADMIN_EMAIL` + `ADMIN_PASSWORD`.
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// `TOXTEMP_IMPORT_DEFAULT_QUESTIONS` — import the bundled ToxTemp v1 set on first start.
    pub import_default_questions: bool,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let _ = dotenvy::dotenv();
        let bind = var("TOXTEMP_BIND")
            .unwrap_or_else(|| "127.0.0.1:8000".into())
            .parse()
            .context("TOXTEMP_BIND must be HOST:PORT, e.g. 127.0.0.1:8000")?;
        let data_dir = PathBuf::from(var("TOXTEMP_DATA_DIR").unwrap_or_else(|| "data".into()));
        let database = match var("DATABASE_URL") {
            Some(raw) => DatabaseUrl::parse(&raw)?,
            None => DatabaseUrl::Sqlite(data_dir.join("toxtemp.sqlite3")),
        };
        let storage = StorageConfig::from_env(&data_dir)?;
        let llm = llm_from_env()?;
        let session_key = var("SESSION_KEY");
        if let Some(key) = &session_key
            && key.len() < 32
        {
            bail!("SESSION_KEY must be at least 32 characters long");
        }
        let bootstrap_admin = match (var("ADMIN_EMAIL"), var("ADMIN_PASSWORD")) {
            (Some(email), Some(password)) => Some(BootstrapAdmin { email, password }),
            (None, None) => None,
            _ => bail!("set both ADMIN_EMAIL and ADMIN_PASSWORD, or neither"),
        };
        Ok(Self {
            bind,
            database,
            storage,
            llm,
            workers: number("TOXTEMP_WORKERS", 2)?,
            upload_limits: limits_from_env()?,
            extractor_exe: var("TOXTEMP_EXTRACTOR").map(PathBuf::from),
            data_dir,
            session_key,
            secure_cookies: flag("TOXTEMP_SECURE_COOKIES", false)?,
            bootstrap_admin,
            import_default_questions: flag("TOXTEMP_IMPORT_DEFAULT_QUESTIONS", true)?,
        })
    }

    /// A configuration for tests: everything below `dir`, a fixed session key.
    pub fn for_tests(dir: &std::path::Path, database: DatabaseUrl) -> Self {
        Self {
            bind: "127.0.0.1:0".parse().expect("valid address"),
            database,
            storage: StorageConfig::Local { root: dir.join("objects"), bucket: "toxtemp-test".into() },
            llm: crate::llm::LlmConfig::default(),
            workers: 1,
            upload_limits: crate::submission::UploadLimits::default(),
            extractor_exe: None,
            data_dir: dir.to_path_buf(),
            session_key: Some("test-session-key-test-session-key-test-session-key".into()),
            secure_cookies: false,
            bootstrap_admin: None,
            import_default_questions: false,
        }
    }
}

/// A non-empty environment variable.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match var(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| anyhow::anyhow!("{name} must be a number, got {raw:?}")),
    }
}

fn limits_from_env() -> anyhow::Result<crate::submission::UploadLimits> {
    let d = crate::submission::UploadLimits::default();
    const MB: u64 = 1024 * 1024;
    Ok(crate::submission::UploadLimits {
        max_file_bytes: number("TOXTEMP_MAX_FILE_MB", d.max_file_bytes / MB)? * MB,
        max_total_bytes: number("TOXTEMP_MAX_TOTAL_MB", d.max_total_bytes / MB)? * MB,
        max_files: number("TOXTEMP_MAX_FILES", d.max_files)?,
        ..d
    })
}

fn llm_from_env() -> anyhow::Result<crate::llm::LlmConfig> {
    let d = crate::llm::LlmConfig::default();
    Ok(crate::llm::LlmConfig {
        base_url: var("LLM_BASE_URL"),
        api_key: var("LLM_API_KEY"),
        model: var("LLM_MODEL").unwrap_or(d.model),
        azure_api_version: var("LLM_AZURE_API_VERSION"),
        context_chars: number("LLM_CONTEXT_CHARS", d.context_chars)?,
        timeout: std::time::Duration::from_secs(number("LLM_TIMEOUT_SECS", d.timeout.as_secs())?),
        concurrency: number("LLM_CONCURRENCY", d.concurrency)?.max(1),
        max_attempts: number("LLM_MAX_ATTEMPTS", d.max_attempts)?.max(1),
        supports_images: flag("LLM_SUPPORTS_IMAGES", false)?,
    })
}

fn flag(name: &str, default: bool) -> anyhow::Result<bool> {
    match var(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => bail!("{name} must be true or false, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_select_the_backend() {
        assert!(DatabaseUrl::parse("postgres://u@h/db").unwrap().is_postgres());
        assert!(DatabaseUrl::parse("postgresql://u@h/db").unwrap().is_postgres());
        assert_eq!(DatabaseUrl::parse("sqlite://data/x.db").unwrap(), DatabaseUrl::Sqlite("data/x.db".into()));
        assert_eq!(DatabaseUrl::parse("x.db").unwrap(), DatabaseUrl::Sqlite("x.db".into()));
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
    }
}
