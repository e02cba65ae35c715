//! Configuration, read once from the environment (and an optional `.env` file) into typed
//! structs that are passed explicitly. This is the only module that reads the environment;
//! every variable is listed in the README. Secrets are wrapped (`SecretString`) so that
//! `Debug` output and logs never show them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
pub use secrecy::{ExposeSecret, SecretString};

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
    pub secret_access_key: SecretString,
    /// `AWS_S3_REGION_NAME` — must equal the server's region (Garage: `garage`).
    pub region: String,
    /// How long a storage server may keep us waiting.
    pub timeouts: S3Timeouts,
    /// `AWS_S3_KEY_PREFIX` — put before every object key, e.g. `toxtemp/`, to share a bucket.
    pub key_prefix: String,
}

/// A storage server that stops answering must not hold a request (or a worker) forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S3Timeouts {
    pub connect: Duration,
    /// Between bytes of a response's headers.
    pub read: Duration,
    /// A whole operation, retries included (a multipart upload is many operations).
    pub operation: Duration,
    /// Between two chunks of an object being downloaded (the SDK's own timeouts end with
    /// the response headers).
    pub body_idle: Duration,
}

impl Default for S3Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(60),
            operation: Duration::from_secs(900),
            body_idle: Duration::from_secs(60),
        }
    }
}

/// The language model: an OpenAI-compatible endpoint, or the offline provider.
#[derive(Clone, Debug)]
pub struct LlmConfig {
    /// `LLM_BASE_URL` — e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1` (Ollama).
    /// Unset: the offline provider.
    pub base_url: Option<String>,
    /// `LLM_API_KEY`.
    pub api_key: Option<SecretString>,
    /// `LLM_MODEL`.
    pub model: String,
    /// `LLM_AZURE_API_VERSION` — set for Azure OpenAI (`api-key` header, `?api-version=`).
    pub azure_api_version: Option<String>,
    /// `LLM_CONTEXT_CHARS` — document characters per prompt.
    pub context_chars: usize,
    /// `LLM_TIMEOUT_SECS` — per request.
    pub timeout: Duration,
    /// `LLM_SUPPORTS_IMAGES` — the model accepts images (for `extract_images`).
    pub supports_images: bool,
    /// `LLM_EMBEDDINGS_MODEL` — with `LLM_BASE_URL`, evaluation runs also compare answers to
    /// their gold answers by the cosine of their embeddings from `/embeddings`.
    pub embeddings_model: Option<String>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            api_key: None,
            model: "gpt-4o-mini".into(),
            azure_api_version: None,
            context_chars: 400_000,
            timeout: Duration::from_secs(120),
            supports_images: false,
            embeddings_model: None,
        }
    }
}

impl LlmConfig {
    /// These settings (timeout, context budget) for another OpenAI-compatible endpoint and
    /// model: without Azure, images or embeddings, with `api_key` only. Evaluation runs and
    /// the staff's model configurations build their clients from it.
    pub fn for_endpoint(&self, base_url: String, model: String, api_key: Option<SecretString>) -> LlmConfig {
        LlmConfig {
            base_url: Some(base_url),
            api_key,
            model,
            azure_api_version: None,
            supports_images: false,
            embeddings_model: None,
            ..self.clone()
        }
    }
}

/// How often a model call is tried and how long to wait in between (see `llm::retry`).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// `LLM_MAX_ATTEMPTS` — tries per question.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 5, base_delay: Duration::from_secs(1), max_delay: Duration::from_secs(60) }
    }
}

/// How a drafting run talks to the model.
#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// `LLM_CONCURRENCY` — questions answered at once per assay.
    pub concurrency: usize,
    pub retry: RetryPolicy,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self { concurrency: 4, retry: RetryPolicy::default() }
    }
}

/// Limits for one submission of the StartingForm (or of "regenerate").
#[derive(Clone, Debug)]
pub struct UploadLimits {
    /// `TOXTEMP_MAX_FILE_MB`.
    pub max_file_bytes: u64,
    /// `TOXTEMP_MAX_TOTAL_MB`.
    pub max_total_bytes: u64,
    /// `TOXTEMP_MAX_FILES`.
    pub max_files: usize,
    /// Largest image sent to the model for a description.
    pub max_image_bytes: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self { max_file_bytes: 30 * MIB, max_total_bytes: 200 * MIB, max_files: 20, max_image_bytes: 10 * MIB }
    }
}

/// The background job workers of this process.
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// `TOXTEMP_WORKERS` — jobs run at once by this process (0: none; tests drive the queue).
    pub workers: usize,
    /// How often a running job proves it is alive.
    pub heartbeat: Duration,
    /// A running job silent for this long is handed to another worker.
    pub stale_after: Duration,
    /// How often idle workers look for work (they are also woken on enqueue).
    pub poll: Duration,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            workers: 2,
            // A dead worker's job is picked up within stale_after + stale_after / 3 (the sweep).
            heartbeat: Duration::from_secs(5),
            stale_after: Duration::from_secs(20),
            poll: Duration::from_secs(2),
        }
    }
}

/// How the connection to the SMTP server is secured (`SMTP_TLS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (default; port 587).
    StartTls,
    /// TLS from the first byte ("SMTPS"; port 465).
    Tls,
    /// No encryption: only for a relay on the same host or in tests (port 25).
    None,
}

impl SmtpTls {
    fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            "none" => Ok(Self::None),
            other => bail!("SMTP_TLS must be starttls, tls or none, got {other:?}"),
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }
}

/// The SMTP server that sends password-reset and invitation mails. Unset: links are written
/// to the log for the operator instead.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// `SMTP_HOST`.
    pub host: String,
    /// `SMTP_PORT` — default by `SMTP_TLS`: 587, 465 or 25.
    pub port: u16,
    /// `SMTP_USERNAME` + `SMTP_PASSWORD` — both or neither.
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// `SMTP_FROM` — the sender, e.g. `ToxTempAssistant <noreply@example.org>`.
    pub from: String,
    /// `SMTP_TLS`.
    pub tls: SmtpTls,
    /// How long the SMTP server may keep one command waiting.
    pub timeout: Duration,
}

/// The first admin account, created on first start when no staff account exists yet.
#[derive(Clone, Debug)]
pub struct BootstrapAdmin {
    pub email: String,
    pub password: SecretString,
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
    pub llm: LlmConfig,
    /// `LLM_CONCURRENCY`, `LLM_MAX_ATTEMPTS`.
    pub pipeline: PipelineSettings,
    /// `TOXTEMP_WORKERS`.
    pub jobs: JobSettings,
    /// `TOXTEMP_MAX_FILE_MB`, `TOXTEMP_MAX_TOTAL_MB`, `TOXTEMP_MAX_FILES`.
    pub upload_limits: UploadLimits,
    /// `TOXTEMP_EXTRACTOR` — the binary run for text extraction (default: this one).
    pub extractor_exe: Option<PathBuf>,
    /// `TOXTEMP_DATA_DIR` — local objects and other files of the embedded default.
    pub data_dir: PathBuf,
    /// `SESSION_KEY` — secret for signing and encrypting session cookies (≥ 32 chars).
    /// `None` means a random key is generated at start (sessions end at restart).
    pub session_key: Option<SecretString>,
    /// `TOXTEMP_SECURE_COOKIES` — send cookies only over HTTPS, and HSTS. Default: on unless
    /// the app is bound to a loopback address (then a TLS proxy is not assumed).
    pub secure_cookies: bool,
    /// `TOXTEMP_SESSION_HOURS` — how long a login lasts (checked by the server, not only by
    /// the cookie's Max-Age). Default 12.
    pub session_lifetime: Duration,
    /// `TOXTEMP_TRUSTED_PROXIES` — addresses of reverse proxies whose `X-Forwarded-For` names
    /// the client (comma-separated).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `ADMIN_EMAIL` + `ADMIN_PASSWORD`.
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// `TOXTEMP_IMPORT_DEFAULT_QUESTIONS` — import the bundled ToxTemp v1 set on first start.
    pub import_default_questions: bool,
    /// `TOXTEMP_DELETED_NAME_RETENTION_DAYS` — how long a deleted file's row keeps its
    /// original name (the cleanup command then removes it).
    pub deleted_name_retention: Duration,
    /// `TOXTEMP_METRICS_TOKEN` — the bearer token `/metrics` asks for (≥ 16 characters).
    /// `None` turns `/metrics` off (404).
    pub metrics_token: Option<SecretString>,
    /// `SMTP_*` — the mail server; `None`: reset links go to the log.
    pub smtp: Option<SmtpConfig>,
    /// `TOXTEMP_PUBLIC_URL` — where people reach the app, e.g. `https://toxtemp.example.org`;
    /// the base of the links in mails (required with `SMTP_HOST`: a link is never built from
    /// a request's Host header for a mail).
    pub public_url: Option<String>,
    /// Where the API keys of the staff's language-model configurations are looked up, by the
    /// name of their environment variable, when a run or a connection test needs one.
    pub secrets: SecretLookup,
}

/// "The secret in the environment variable NAME", looked up at the moment it is needed (a key
/// set or rotated later is picked up without a restart). Tests replace it with fixed values
/// instead of changing the process environment, which their parallel threads share.
#[derive(Clone)]
pub struct SecretLookup(std::sync::Arc<LookupFn>);

/// Name → secret.
type LookupFn = dyn Fn(&str) -> Option<SecretString> + Send + Sync;

impl SecretLookup {
    /// The process environment (non-empty values only).
    pub fn from_env() -> Self {
        Self(std::sync::Arc::new(|name: &str| var(name).map(SecretString::from)))
    }

    /// Exactly these (name, secret) pairs and nothing else (tests).
    pub fn fixed<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let map: std::collections::HashMap<String, String> =
            pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Self(std::sync::Arc::new(move |name: &str| {
            map.get(name).filter(|v| !v.trim().is_empty()).cloned().map(SecretString::from)
        }))
    }

    /// The secret in the variable `name`, if it is a language-model key variable (see
    /// [`is_llm_key_variable`]) and it is set. Nothing else in the environment can be read
    /// this way: a configuration's key is sent to the base URL staff typed in.
    pub fn get(&self, name: &str) -> Option<SecretString> {
        if !is_llm_key_variable(name) {
            return None;
        }
        (self.0)(name)
    }
}

impl std::fmt::Debug for SecretLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretLookup")
    }
}

/// The start of every variable a language-model configuration may take its key from.
pub const LLM_KEY_PREFIX: &str = "TOXTEMP_LLM_KEY_";

/// May a configuration name this variable for its key? Only `TOXTEMP_LLM_KEY_…` ones: staff
/// choose where a configuration's requests go, so a configuration naming `SESSION_KEY`,
/// `AWS_SECRET_ACCESS_KEY` or `DATABASE_URL` would hand that secret to any server they like.
/// The operator decides which keys exist by setting variables with this prefix.
pub fn is_llm_key_variable(name: &str) -> bool {
    is_env_var_name(name) && name.len() > LLM_KEY_PREFIX.len() && name.starts_with(LLM_KEY_PREFIX)
}

/// Does `name` look like an environment variable name (`OPENAI_API_KEY`): a letter or `_`,
/// then letters, digits or `_`, at most 100 characters? A key itself (`sk-…`) does not.
pub fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 100
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

const MIB: u64 = 1024 * 1024;
const DAY: Duration = Duration::from_secs(24 * 3600);

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let _ = dotenvy::dotenv();
        let bind: SocketAddr = var("TOXTEMP_BIND")
            .unwrap_or_else(|| "127.0.0.1:8000".into())
            .parse()
            .context("TOXTEMP_BIND must be HOST:PORT, e.g. 127.0.0.1:8000")?;
        let data_dir = PathBuf::from(var("TOXTEMP_DATA_DIR").unwrap_or_else(|| "data".into()));
        let database = match var("DATABASE_URL") {
            Some(raw) => DatabaseUrl::parse(&raw)?,
            None => DatabaseUrl::Sqlite(data_dir.join("toxtemp.sqlite3")),
        };
        let session_key = var("SESSION_KEY");
        if session_key.as_ref().is_some_and(|key| key.len() < 32) {
            bail!("SESSION_KEY must be at least 32 characters long");
        }
        let bootstrap_admin = match (var("ADMIN_EMAIL"), var("ADMIN_PASSWORD")) {
            (Some(email), Some(password)) => Some(BootstrapAdmin { email, password: password.into() }),
            (None, None) => None,
            _ => bail!("set both ADMIN_EMAIL and ADMIN_PASSWORD, or neither"),
        };
        let metrics_token = var("TOXTEMP_METRICS_TOKEN");
        if metrics_token.as_ref().is_some_and(|token| token.len() < 16) {
            bail!("TOXTEMP_METRICS_TOKEN must be at least 16 characters long");
        }
        let metrics_token = metrics_token.map(SecretString::from);
        let smtp = smtp_from_env()?;
        let public_url = var("TOXTEMP_PUBLIC_URL").map(|raw| public_url(&raw)).transpose()?;
        if smtp.is_some() && public_url.is_none() {
            bail!("TOXTEMP_PUBLIC_URL is required with SMTP_HOST (the links in mails start with it)");
        }
        let jobs =
            JobSettings { workers: number("TOXTEMP_WORKERS", JobSettings::default().workers)?, ..Default::default() };
        Ok(Self {
            bind,
            database,
            storage: storage_from_env(&data_dir)?,
            llm: llm_from_env()?,
            pipeline: pipeline_from_env()?,
            jobs,
            upload_limits: limits_from_env()?,
            extractor_exe: var("TOXTEMP_EXTRACTOR").map(PathBuf::from),
            data_dir,
            session_key: session_key.map(SecretString::from),
            secure_cookies: flag("TOXTEMP_SECURE_COOKIES", secure_by_default(&bind))?,
            session_lifetime: Duration::from_secs(3600) * number("TOXTEMP_SESSION_HOURS", 12)?,
            trusted_proxies: addresses("TOXTEMP_TRUSTED_PROXIES")?,
            bootstrap_admin,
            import_default_questions: flag("TOXTEMP_IMPORT_DEFAULT_QUESTIONS", true)?,
            deleted_name_retention: DAY * number("TOXTEMP_DELETED_NAME_RETENTION_DAYS", 30)?,
            metrics_token,
            secrets: SecretLookup::from_env(),
            smtp,
            public_url,
        })
    }

    /// A configuration for tests: everything below `dir`, a fixed session key, no background
    /// workers (tests drive the queue themselves).
    pub fn for_tests(dir: &Path, database: DatabaseUrl) -> Self {
        Self {
            bind: "127.0.0.1:0".parse().expect("valid address"),
            database,
            storage: StorageConfig::Local { root: dir.join("objects"), bucket: "toxtemp-test".into() },
            llm: LlmConfig::default(),
            pipeline: PipelineSettings::default(),
            jobs: JobSettings { workers: 0, ..JobSettings::default() },
            upload_limits: UploadLimits::default(),
            extractor_exe: None,
            data_dir: dir.to_path_buf(),
            session_key: Some("test-session-key-test-session-key-test-session-key".to_owned().into()),
            secure_cookies: false,
            session_lifetime: Duration::from_secs(12 * 3600),
            trusted_proxies: Vec::new(),
            bootstrap_admin: None,
            import_default_questions: false,
            deleted_name_retention: DAY * 30,
            metrics_token: None,
            // Tests name their keys (`SecretLookup::fixed`); the process environment is not read.
            secrets: SecretLookup::fixed(Vec::<(String, String)>::new()),
            smtp: None,
            public_url: None,
        }
    }

    /// The directory where uploads are spooled while they arrive.
    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }
}

/// Cookies are sent over HTTPS only, unless the app listens on loopback only (a developer's
/// machine, or behind a proxy on the same host that is trusted to terminate TLS).
pub fn secure_by_default(bind: &SocketAddr) -> bool {
    !bind.ip().is_loopback()
}

/// `RUST_LOG`, the log filter (read before the configuration, to log its errors).
pub fn log_filter() -> Option<String> {
    var("RUST_LOG")
}

/// `TOXTEMP_LOG_FORMAT=json` writes one JSON object per log line (for log collectors);
/// anything else (or nothing) keeps the human-readable lines.
pub fn json_logs() -> bool {
    var("TOXTEMP_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"))
}

/// `TOXTEMP_PASSWORD`, the password for `create-user` (never taken from the command line).
pub fn password_from_env() -> Option<SecretString> {
    std::env::var("TOXTEMP_PASSWORD").ok().map(SecretString::from)
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

fn addresses(name: &str) -> anyhow::Result<Vec<std::net::IpAddr>> {
    let Some(raw) = var(name) else { return Ok(Vec::new()) };
    raw.split(',').map(|a| a.trim().parse().with_context(|| format!("{name}: {a:?} is not an IP address"))).collect()
}

fn flag(name: &str, default: bool) -> anyhow::Result<bool> {
    match var(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => bail!("{name} must be true or false, got {other:?}"),
    }
}

/// S3 when `AWS_STORAGE_BUCKET_NAME` is set, else a local directory below `data_dir`.
fn storage_from_env(data_dir: &Path) -> anyhow::Result<StorageConfig> {
    let Some(bucket) = var("AWS_STORAGE_BUCKET_NAME") else {
        return Ok(StorageConfig::Local { root: data_dir.join("objects"), bucket: "toxtemp-local".into() });
    };
    let need =
        |name: &str| var(name).with_context(|| format!("{name} is required when AWS_STORAGE_BUCKET_NAME is set"));
    Ok(StorageConfig::S3(S3Config {
        endpoint: var("AWS_S3_ENDPOINT_URL"),
        bucket,
        access_key_id: need("AWS_ACCESS_KEY_ID")?,
        secret_access_key: need("AWS_SECRET_ACCESS_KEY")?.into(),
        region: var("AWS_S3_REGION_NAME").unwrap_or_else(|| "us-east-1".into()),
        timeouts: S3Timeouts::default(),
        key_prefix: var("AWS_S3_KEY_PREFIX").unwrap_or_default(),
    }))
}

/// `SMTP_HOST` turns mail on; the other `SMTP_*` variables need it.
fn smtp_from_env() -> anyhow::Result<Option<SmtpConfig>> {
    let Some(host) = var("SMTP_HOST") else {
        if let Some(name) = ["SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_TLS"]
            .into_iter()
            .find(|name| var(name).is_some())
        {
            bail!("{name} is set but SMTP_HOST is not");
        }
        return Ok(None);
    };
    let tls = var("SMTP_TLS").map(|raw| SmtpTls::parse(&raw)).transpose()?.unwrap_or(SmtpTls::StartTls);
    let (username, password) = match (var("SMTP_USERNAME"), var("SMTP_PASSWORD")) {
        (Some(user), Some(password)) => (Some(user), Some(SecretString::from(password))),
        (None, None) => (None, None),
        _ => bail!("set both SMTP_USERNAME and SMTP_PASSWORD, or neither"),
    };
    let from = var("SMTP_FROM").context("SMTP_FROM (the sender address) is required with SMTP_HOST")?;
    Ok(Some(SmtpConfig {
        host: host.trim().to_owned(),
        port: number("SMTP_PORT", tls.default_port())?,
        username,
        password,
        from,
        tls,
        timeout: Duration::from_secs(20),
    }))
}

/// An absolute `http(s)://` URL without a trailing slash, query or fragment.
fn public_url(raw: &str) -> anyhow::Result<String> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !url.contains(['?', '#', '@'])
                && !url.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(url.to_owned())
        }
        _ => bail!("TOXTEMP_PUBLIC_URL must be an http(s):// URL such as https://toxtemp.example.org, got {raw:?}"),
    }
}

fn limits_from_env() -> anyhow::Result<UploadLimits> {
    let d = UploadLimits::default();
    Ok(UploadLimits {
        max_file_bytes: number("TOXTEMP_MAX_FILE_MB", d.max_file_bytes / MIB)? * MIB,
        max_total_bytes: number("TOXTEMP_MAX_TOTAL_MB", d.max_total_bytes / MIB)? * MIB,
        max_files: number("TOXTEMP_MAX_FILES", d.max_files)?,
        ..d
    })
}

fn llm_from_env() -> anyhow::Result<LlmConfig> {
    let d = LlmConfig::default();
    Ok(LlmConfig {
        base_url: var("LLM_BASE_URL"),
        api_key: var("LLM_API_KEY").map(SecretString::from),
        model: var("LLM_MODEL").unwrap_or(d.model),
        azure_api_version: var("LLM_AZURE_API_VERSION"),
        context_chars: number("LLM_CONTEXT_CHARS", d.context_chars)?,
        timeout: Duration::from_secs(number("LLM_TIMEOUT_SECS", d.timeout.as_secs())?),
        supports_images: flag("LLM_SUPPORTS_IMAGES", false)?,
        embeddings_model: var("LLM_EMBEDDINGS_MODEL"),
    })
}

fn pipeline_from_env() -> anyhow::Result<PipelineSettings> {
    let d = PipelineSettings::default();
    let retry = RetryPolicy { max_attempts: number("LLM_MAX_ATTEMPTS", d.retry.max_attempts)?.max(1), ..d.retry };
    Ok(PipelineSettings { concurrency: number("LLM_CONCURRENCY", d.concurrency)?.max(1), retry })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_language_model_key_variables_can_be_looked_up() {
        // PATH is set in every process: still not readable as a key.
        assert!(SecretLookup::from_env().get("PATH").is_none());
        let fixed = SecretLookup::fixed([("SESSION_KEY", "secret"), ("TOXTEMP_LLM_KEY_OPENAI", "sk-1")]);
        assert!(fixed.get("SESSION_KEY").is_none());
        assert_eq!(fixed.get("TOXTEMP_LLM_KEY_OPENAI").unwrap().expose_secret(), "sk-1");
        assert!(!is_llm_key_variable("TOXTEMP_LLM_KEY_"));
        assert!(!is_llm_key_variable("toxtemp_llm_key_x"));
        assert!(is_llm_key_variable("TOXTEMP_LLM_KEY_AZURE_2"));
    }

    #[test]
    fn database_urls_select_the_backend() {
        assert!(DatabaseUrl::parse("postgres://u@h/db").unwrap().is_postgres());
        assert!(DatabaseUrl::parse("postgresql://u@h/db").unwrap().is_postgres());
        assert_eq!(DatabaseUrl::parse("sqlite://data/x.db").unwrap(), DatabaseUrl::Sqlite("data/x.db".into()));
        assert_eq!(DatabaseUrl::parse("x.db").unwrap(), DatabaseUrl::Sqlite("x.db".into()));
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
    }

    #[test]
    fn cookies_are_secure_unless_bound_to_loopback() {
        assert!(!secure_by_default(&"127.0.0.1:8000".parse().unwrap()));
        assert!(!secure_by_default(&"[::1]:8000".parse().unwrap()));
        assert!(secure_by_default(&"0.0.0.0:8000".parse().unwrap()));
        assert!(secure_by_default(&"192.0.2.10:443".parse().unwrap()));
    }

    #[test]
    fn secret_lookups_take_variable_names_only() {
        let lookup = SecretLookup::fixed([("TOXTEMP_LLM_KEY_OPENAI", "sk-1"), ("TOXTEMP_LLM_KEY_EMPTY", " ")]);
        assert_eq!(lookup.get("TOXTEMP_LLM_KEY_OPENAI").map(|s| s.expose_secret().to_owned()), Some("sk-1".into()));
        assert!(lookup.get("TOXTEMP_LLM_KEY_EMPTY").is_none(), "an empty value is no key");
        assert!(lookup.get("TOXTEMP_LLM_KEY_OTHER").is_none());
        for bad in ["", "1KEY", "sk-abc123", "MY KEY", "KEY=1", &"K".repeat(101)] {
            assert!(!is_env_var_name(bad), "{bad}");
        }
        for good in ["OPENAI_API_KEY", "_X", "key2"] {
            assert!(is_env_var_name(good), "{good}");
        }
        assert_eq!(format!("{lookup:?}"), "SecretLookup");
    }

    #[test]
    fn public_urls_are_absolute_and_lose_their_trailing_slash() {
        assert_eq!(public_url("https://t.example.org/").unwrap(), "https://t.example.org");
        assert_eq!(public_url("http://127.0.0.1:8000/toxtemp").unwrap(), "http://127.0.0.1:8000/toxtemp");
        for bad in
            ["t.example.org", "https://", "https:///x", "https://a.org/?x=1", "javascript:x", "https://u@evil.org"]
        {
            assert!(public_url(bad).is_err(), "{bad}");
        }
        assert_eq!(SmtpTls::parse("STARTTLS").unwrap(), SmtpTls::StartTls);
        assert!(SmtpTls::parse("ssl").is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut config = Config::for_tests(Path::new("/tmp/x"), DatabaseUrl::Sqlite("x.db".into()));
        config.llm.api_key = Some("sk-very-secret".to_owned().into());
        config.bootstrap_admin =
            Some(BootstrapAdmin { email: "a@b.org".into(), password: "admin-password-1".to_owned().into() });
        config.storage = StorageConfig::S3(S3Config {
            endpoint: None,
            bucket: "b".into(),
            access_key_id: "GK1".into(),
            secret_access_key: "s3-secret-key".to_owned().into(),
            region: "garage".into(),
            timeouts: S3Timeouts::default(),
            key_prefix: String::new(),
        });
        config.smtp = Some(SmtpConfig {
            host: "smtp.example.org".into(),
            port: 587,
            username: Some("mailer".into()),
            password: Some("smtp-secret-password".to_owned().into()),
            from: "noreply@example.org".into(),
            tls: SmtpTls::StartTls,
            timeout: Duration::from_secs(20),
        });
        let shown = format!("{config:?}");
        for secret in
            ["sk-very-secret", "admin-password-1", "s3-secret-key", "test-session-key", "smtp-secret-password"]
        {
            assert!(!shown.contains(secret), "{secret} leaked into {shown}");
        }
        assert!(shown.contains("a@b.org"), "the rest is still shown");
    }
}
